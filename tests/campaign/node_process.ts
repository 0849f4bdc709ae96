/**
 * One simulated Jetson of the fault campaign, as its own process (started inside the node's
 * network namespace): the real {@linkcode NodeAgent} on one MQTT connection (client id
 * `sdv-sim-<node>`, the node's Last Will), the ticks of the node's sensors and the app heartbeats of
 * every workload instance placed on the node (see `lib/publisher/simulated_node.ts`).
 *
 * Usage: `deno run -A tests/campaign/node_process.ts --config FILE --node NAME --url mqtt://H:P
 * [--pair-url mqtt://H:Q]` (`--url` replaces the config's broker URL and `--pair-url` its
 * `mqtt.pairUrl`: the node reaches each broker through its own fault proxy).
 *
 * Control, one command per stdin line (each answered by an `ack` line on stdout):
 * `sensor-stop SENSOR` / `sensor-start SENSOR`, `app-stop WORKLOAD` / `app-start WORKLOAD` (the
 * instance on this node), `hang` / `unhang` (every publish stops; the connection and its keepalive
 * go on), `planned-stop` (the agent's drain, then `offline` and exit 0). SIGKILL is a crash (the
 * broker publishes the Last Will); SIGSTOP a frozen node. stdout carries JSON lines:
 * `{"event":"connected"}`, `{"event":"ack","cmd":…}`, `{"event":"stopped","drain":…}`, and with a
 * broker pair `{"event":"brokers","connected":N}` whenever the number of connected brokers changes,
 * and `{"event":"stall","gapMs":G}` when the process itself did not run for ≥ 50 ms (a 5 ms timer
 * came G ms after the previous one: its event loop blocked or the process descheduled; `wallMs`
 * is the stall's end). A node that stalls really is silent: the rig's own share of an expiry.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../../lib/config/load.ts";
import { systemClock } from "../../lib/clock/clock.ts";
import { createLogger } from "../../lib/log/log.ts";
import { buildTopology } from "../../lib/topology/topology.ts";
import { agentWill } from "../../lib/agent/agent.ts";
import { openAgentSession } from "../../lib/agent/agent_session.ts";
import { SimulatedNode } from "../../lib/publisher/simulated_node.ts";
import { BrokerPair } from "../../lib/mqtt/broker_pair.ts";

const encoder = new TextEncoder();
function emit(event: string, fields: Record<string, unknown> = {}): void {
  Deno.stdout.writeSync(
    encoder.encode(JSON.stringify({ event, wallMs: Date.now(), ...fields }) + "\n"),
  );
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      config: { type: "string" },
      node: { type: "string" },
      url: { type: "string" },
      "pair-url": { type: "string" },
      "drain-timeout-ms": { type: "string", default: "3000" },
    },
  });
  if (!values.config || !values.node) {
    console.error("usage: node_process.ts --config FILE --node NAME [--url URL]");
    return 2;
  }
  const config = await loadConfig(values.config);
  if (values.url) config.mqtt.url = values.url;
  if (values["pair-url"]) config.mqtt.pairUrl = values["pair-url"];
  const topology = buildTopology(config);
  const node = topology.node(values.node);
  if (!node) {
    console.error(`unknown node ${values.node}`);
    return 2;
  }
  const log = createLogger({ level: "warn", write: (line) => console.error(line) });
  const connection = openAgentSession({
    config: config.mqtt,
    clientId: `sdv-sim-${node.name}`,
    will: agentWill(node),
  });
  connection.on("error", () => {});
  if (connection instanceof BrokerPair) {
    connection.onBrokerChange((_broker, _up, connected) => emit("brokers", { connected }));
  }
  const sim = new SimulatedNode({
    node,
    connection,
    clock: systemClock,
    log,
    random: Math.random,
  });
  await new Promise<void>((resolve) => {
    if (connection.connected) resolve();
    else connection.on("connect", () => resolve());
  });
  sim.start(systemClock.nowMs());
  emit("connected", { node: node.name });
  watchStalls();

  const drainTimeoutMs = Number(values["drain-timeout-ms"]);
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const [cmd, arg] = buffer.slice(0, nl).trim().split(/\s+/);
      buffer = buffer.slice(nl + 1);
      if (cmd === "planned-stop") {
        emit("ack", { cmd });
        const drain = await sim.plannedStop(drainTimeoutMs, 2000);
        emit("stopped", { drain });
        await reader.cancel();
        return 0;
      }
      const problem = apply(sim, cmd, arg);
      emit("ack", { cmd, arg, ...(problem ? { problem } : {}) });
    }
  }
  // stdin closed: the campaign ended; stop like the agent does (retained offline, DISCONNECT)
  sim.stopGenerators();
  await sim.stop(2000);
  return 0;
}

/** Reported stalls of this process are at least this long, ms. */
const STALL_REPORT_MS = 50;

/** Emits a `stall` line whenever a 5 ms timer comes ≥ {@linkcode STALL_REPORT_MS} late. */
function watchStalls(): void {
  let lastMs = performance.now();
  const timer = setInterval(() => {
    const nowMs = performance.now();
    const gapMs = nowMs - lastMs;
    lastMs = nowMs;
    if (gapMs >= STALL_REPORT_MS) emit("stall", { gapMs: Math.round(gapMs * 10) / 10 });
  }, 5);
  Deno.unrefTimer(timer);
}

/** Applies one control command; returns a problem text when it cannot. */
function apply(sim: SimulatedNode, cmd: string, arg: string | undefined): string | undefined {
  switch (cmd) {
    case "sensor-stop":
    case "sensor-start": {
      const sensor = sim.node.sensors.find((s) => s.name === arg);
      const source = sensor && sim.sensor(sensor);
      if (!source) return `no sensor ${arg} on ${sim.name}`;
      source.stopped = cmd === "sensor-stop";
      return undefined;
    }
    case "app-stop":
    case "app-start": {
      const app = sim.node.placements.find((p) => p.workload.name === arg)?.app;
      const source = app && sim.app(app);
      if (!source) return `no app instance of ${arg} on ${sim.name}`;
      source.stopped = cmd === "app-stop";
      return undefined;
    }
    case "hang":
      sim.silence("campaign-hang");
      return undefined;
    case "unhang":
      sim.silence(undefined);
      return undefined;
    default:
      return `unknown command ${cmd}`;
  }
}

if (import.meta.main) Deno.exitCode = await main();
