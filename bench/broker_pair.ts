/**
 * `deno task bench:broker-pair`: dual publishing vs client failover for the broker pair, measured
 * on two real mosquitto brokers (docs/redundancy.md, "Broker pair").
 *
 * A heartbeat publisher (every `--period-ms`, 20 ms by default) and an observer (what the
 * supervisor sees) run in this process, first as the product runs them — one session per broker,
 * every message published to both, the first copy wins (`lib/mqtt/broker_pair.ts`) — then as
 * mqtt.js's own failover (`servers: [A, B]`: one session, reconnect to the next broker), with the
 * product's reconnect period (500 ms) and keepalive (5 s). For each fault the broker the observer
 * is connected to (failover) or broker A (dual) is
 *
 * - killed (SIGKILL: sockets closed at once), or
 * - stalled (SIGSTOP for `--stall-ms`: sockets stay open, nothing moves; a dead host looks like this
 *   until TCP or the keepalive gives up),
 *
 * and the longest gap between two heartbeats at the observer around the fault is recorded: with a
 * 150 ms node timeout any gap above it is a false expiry (or, if the supervisor noticed, an ingest
 * fault that suspends supervision). Also measured: the duplicate check's cost per message.
 *
 * Writes `bench/results/broker_pair.json` (or `--out`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { machineInfo } from "./machine.ts";
import { summarize } from "./stats.ts";
import { BrokerPair } from "../lib/mqtt/broker_pair.ts";
import type { MqttClientLike } from "../lib/mqtt/client.ts";
import { openClient } from "../lib/mqtt/session.ts";
import { MqttSchema } from "../lib/config/schema.ts";
import { FakeMqttClient } from "../tests/fakes/fake_mqtt.ts";
import { type RunningMosquitto, startMosquitto } from "../tests/harness/mosquitto.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Rig {
  publisher: MqttClientLike;
  observer: MqttClientLike;
  /** Heartbeat arrival times at the observer (monotonic ms). */
  arrivals: number[];
  /** Which broker (0 = A, 1 = B) the observer is on, for failover; undefined for dual. */
  observerBroker(): number | undefined;
  close(): Promise<void>;
}

const TOPIC = "bench/node/n1/hb";

async function waitConnected(client: MqttClientLike, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!client.connected) {
    if (performance.now() > deadline) throw new Error("not connected");
    await sleep(20);
  }
}

async function dualRig(urls: [string, string]): Promise<Rig> {
  const config = MqttSchema.parse({ url: urls[0], pairUrl: urls[1] });
  const publisher = openClient({ config, clientId: "bench-pub" }, (s) => s.queueQoSZero = false);
  const observer = openClient({ config, clientId: "bench-obs" });
  const arrivals: number[] = [];
  observer.on("message", () => arrivals.push(performance.now()));
  observer.on("error", () => {});
  publisher.on("error", () => {});
  await Promise.all([waitConnected(publisher), waitConnected(observer)]);
  await observer.subscribeAsync(TOPIC, { qos: 0 });
  return {
    publisher,
    observer,
    arrivals,
    observerBroker: () => undefined,
    close: async () => {
      await publisher.endAsync(true);
      await observer.endAsync(true);
    },
  };
}

async function failoverRig(ports: [number, number]): Promise<Rig> {
  const options = {
    servers: ports.map((port) => ({ host: "127.0.0.1", port })),
    reconnectPeriod: 500,
    keepalive: 5,
    connectTimeout: 5000,
    clean: true,
  };
  const publisher = mqtt.connect({ ...options, clientId: "bench-pub-fo", queueQoSZero: false });
  const observer = mqtt.connect({ ...options, clientId: "bench-obs-fo" });
  const arrivals: number[] = [];
  observer.on("message", () => arrivals.push(performance.now()));
  observer.on("error", () => {});
  publisher.on("error", () => {});
  await Promise.all([waitConnected(publisher), waitConnected(observer)]);
  await observer.subscribeAsync(TOPIC, { qos: 0 });
  const brokerOf = (c: mqtt.MqttClient) =>
    ports.indexOf(Number((c.options as { port?: number }).port));
  return {
    publisher,
    observer,
    arrivals,
    observerBroker: () => brokerOf(observer),
    close: async () => {
      await publisher.endAsync(true);
      await observer.endAsync(true);
    },
  };
}

/** Longest gap between arrivals in [fromMs, toMs] (including the edges as arrivals), ms. */
function longestGapMs(arrivals: readonly number[], fromMs: number, toMs: number): number {
  const inside = [fromMs, ...arrivals.filter((t) => t > fromMs && t < toMs), toMs];
  let gap = 0;
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i] - inside[i - 1]);
  return gap;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      runs: { type: "string", default: "10" },
      "stall-runs": { type: "string", default: "3" },
      "stall-ms": { type: "string", default: "10000" },
      "period-ms": { type: "string", default: "20" },
      out: { type: "string", default: "bench/results/broker_pair.json" },
    },
  });
  const runs = Number(values.runs);
  const stallRuns = Number(values["stall-runs"]);
  const stallMs = Number(values["stall-ms"]);
  const periodMs = Number(values["period-ms"]);
  const dir = await Deno.makeTempDir({ prefix: "sdv-bench-bpair-" });
  Deno.mkdirSync(`${dir}/a`);
  Deno.mkdirSync(`${dir}/b`);
  const brokers: RunningMosquitto[] = [
    await startMosquitto({ workDir: `${dir}/a`, tcpNoDelay: true }),
    await startMosquitto({ workDir: `${dir}/b`, tcpNoDelay: true }),
  ];
  const ports: [number, number] = [brokers[0].port, brokers[1].port];
  const restart = async (i: number) => {
    brokers[i] = await startMosquitto({
      workDir: `${dir}/${"ab"[i]}`,
      tcpNoDelay: true,
      port: ports[i],
    });
  };
  const results: Record<string, Record<string, unknown>> = {};
  try {
    for (const mode of ["dual", "failover"] as const) {
      const rig = mode === "dual"
        ? await dualRig([brokers[0].url, brokers[1].url])
        : await failoverRig(ports);
      let seq = 0;
      const timer = setInterval(
        () => rig.publisher.publish(TOPIC, `{"seq":${++seq}}`, { qos: 0 }),
        periodMs,
      );
      const kills: number[] = [];
      const stalls: number[] = [];
      try {
        await sleep(1000);
        for (let r = 0; r < runs + stallRuns; r++) {
          const stall = r >= runs;
          await sleep(300 + Math.random() * periodMs); // a random phase
          const victim = rig.observerBroker() ?? 0;
          const atMs = performance.now();
          if (stall) brokers[victim].pause();
          else await brokers[victim].kill();
          const windowMs = stall ? stallMs : 3000;
          await sleep(windowMs);
          if (stall) brokers[victim].resume();
          const gap = longestGapMs(rig.arrivals, atMs - periodMs, performance.now());
          (stall ? stalls : kills).push(gap);
          console.error(
            `${mode} ${stall ? "stall" : "kill"} ${r}: longest gap ${gap.toFixed(1)} ms`,
          );
          if (!stall) await restart(victim);
          await sleep(1500); // both clients back on (or able to fail over to) either broker
        }
        const received = rig.arrivals.length;
        results[mode] = {
          kill: summarize(kills),
          stall: summarize(stalls),
          killGapsMs: kills.map((g) => Math.round(g * 10) / 10),
          stallGapsMs: stalls.map((g) => Math.round(g * 10) / 10),
          heartbeatsPublished: seq,
          heartbeatsReceived: received,
          ...(rig.observer instanceof BrokerPair ? { observer: rig.observer.stats } : {}),
        };
      } finally {
        clearInterval(timer);
        await rig.close();
      }
    }
  } finally {
    for (const b of brokers) await b.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const out = {
    what: "broker pair: longest heartbeat gap at the observer when one broker is killed or stalled",
    periodMs,
    stallMs,
    failoverSettings: { reconnectPeriodMs: 500, keepaliveS: 5 },
    // the first rounds include the JIT's warm-up: the best of five
    duplicateCheckNsPerMessage: Math.min(...Array.from({ length: 5 }, duplicateCheckCostNs)),
    commit: await gitCommit(),
    date: new Date().toISOString(),
    machine: machineInfo(),
    ...results,
  };
  await Deno.writeTextFile(values.out, JSON.stringify(out, null, 2) + "\n");
  console.log(JSON.stringify(out, null, 2));
}

/**
 * Cost of the first-copy-wins check per received copy, ns: two copies of 200,000 heartbeats over 20
 * topics through a pair of fake sessions, minus the same deliveries through one fake session.
 */
function duplicateCheckCostNs(): number {
  const a = new FakeMqttClient();
  const b = new FakeMqttClient();
  const pair = new BrokerPair({ sessions: [a, b] });
  let delivered = 0;
  pair.on("message", () => delivered++);
  const payloads = Array.from(
    { length: 200_000 },
    (_, i) => new TextEncoder().encode(`{"seq":${i}}`),
  );
  const topics = Array.from({ length: 20 }, (_, i) => `sdv/node/n${i}/hb`);
  const start = performance.now();
  for (let i = 0; i < payloads.length; i++) {
    const topic = topics[i % 20];
    a.emit("message", topic, payloads[i], {});
    b.emit("message", topic, payloads[i], {});
  }
  const pairNs = ((performance.now() - start) * 1e6) / (2 * payloads.length);
  if (delivered !== payloads.length) throw new Error(`duplicate check delivered ${delivered}`);
  // the same deliveries through one session without the pair: the fake's own cost
  const single = new FakeMqttClient();
  let direct = 0;
  single.on("message", () => direct++);
  const t0 = performance.now();
  for (let i = 0; i < payloads.length; i++) {
    single.emit("message", topics[i % 20], payloads[i], {});
    single.emit("message", topics[i % 20], payloads[i], {});
  }
  const baseNs = ((performance.now() - t0) * 1e6) / (2 * payloads.length);
  if (direct !== 2 * payloads.length) throw new Error("baseline lost messages");
  return Math.round(pairNs - baseNs);
}

async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", { args: ["describe", "--always", "--dirty"] })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}

if (import.meta.main) await main();
