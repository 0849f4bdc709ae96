/**
 * `demo`: the whole data path on one machine with nothing installed: an in-process MQTT broker,
 * the test publisher simulating every node agent, sensor and app, the supervisor with the dry-run
 * executor, and a subscriber standing in for the apps. It injects a node crash and prints a
 * timeline with latencies.
 *
 * @module
 */
import mqtt from "mqtt";
import { type Config, ConfigSchema } from "../config/schema.ts";
import { DryRunExecutor } from "../executor/dry_run.ts";
import { buildMqttOptions, connectNoDelay } from "../ingest/mqtt_options.ts";
import type { MqttClientLike } from "../ingest/mqtt_client.ts";
import { decodePromotion, type Promotion } from "../ingest/wire.ts";
import { createLogger, type Logger, silentLogger } from "../log/log.ts";
import { parseFault } from "../publisher/faults.ts";
import { runPublisher } from "../publisher/publisher.ts";
import { Supervisor, type SupervisorEvent, supervisorWill } from "../runtime/supervisor.ts";
import { startEmbeddedBroker } from "./broker.ts";

/** The origin project's setup (same values as `config/example.yaml`), broker URL filled in later. */
export function demoConfig(url: string): Config {
  const nodes = ["worker-node1", "worker-node2", "worker-node3"];
  return ConfigSchema.parse({
    supervisor: { id: "demo", startupGraceMs: 1000 },
    mqtt: { url },
    nodes: nodes.map((name, i) => ({
      name,
      heartbeatPeriodMs: 33,
      heartbeatTimeoutMs: 300,
      requiredSensors: [`camera-node${i + 1}`],
    })),
    sensors: [
      ...nodes.map((node, i) => ({
        name: `camera-node${i + 1}`,
        node,
        periodMs: 33,
        timeoutMs: 150,
      })),
      { name: "lidar-node2", node: "worker-node2", periodMs: 100, timeoutMs: 300 },
      { name: "lidar-node3", node: "worker-node3", periodMs: 100, timeoutMs: 300 },
    ],
    workloads: [
      {
        name: "lane-detection",
        asil: "B",
        fttiMs: 500,
        primary: {
          deployment: "lane-detection-original",
          node: "worker-node2",
          sensors: ["camera-node2"],
        },
        standby: {
          deployment: "lane-detection-standby",
          node: "worker-node3",
          sensors: ["camera-node3"],
        },
        appHeartbeat: { periodMs: 33, timeoutMs: 300 },
      },
      {
        name: "pose-estimation",
        asil: "QM",
        fttiMs: 1000,
        primary: {
          deployment: "pose-estimation-original",
          node: "worker-node2",
          sensors: ["lidar-node2"],
        },
        standby: {
          deployment: "pose-estimation-standby",
          node: "worker-node3",
          sensors: ["lidar-node3"],
        },
      },
    ],
  });
}

/** Options of {@linkcode demoCommand}. */
export interface DemoOptions {
  /** Config to simulate (its broker URL is replaced by the in-process broker's). */
  config?: Config;
  /** Fault spec (default `node-crash:worker-node2@2s`). */
  fault?: string;
  /** Print the supervisor's log lines too. */
  verbose?: boolean;
  signal?: AbortSignal;
  /** Output sink (default console.log). */
  out?: (line: string) => void;
}

/** Result of {@linkcode runDemo}, for tests. */
export interface DemoResult {
  events: SupervisorEvent[];
  promotionsReceived: { promotion: Promotion; atMs: number }[];
  lines: string[];
  ok: boolean;
}

/** Runs the demo and prints the timeline; returns 0 when the failover happened as expected. */
export async function demoCommand(options: DemoOptions = {}): Promise<number> {
  const result = await runDemo(options);
  return result.ok ? 0 : 1;
}

/** Runs the demo (see module doc). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const out = options.out ?? ((line: string) => console.log(line));
  const lines: string[] = [];
  const print = (line: string) => {
    lines.push(line);
    out(line);
  };
  const broker = await startEmbeddedBroker();
  const base = options.config ?? demoConfig(broker.url);
  const config: Config = { ...base, mqtt: { ...base.mqtt, url: broker.url } };
  const fault = parseFault(options.fault ?? "node-crash:worker-node2@2s");
  const log: Logger = options.verbose
    ? createLogger({ level: "info" }, { role: "supervisor" })
    : silentLogger;

  const events: SupervisorEvent[] = [];
  const promotionsReceived: { promotion: Promotion; atMs: number }[] = [];
  const subscriber = mqtt.connect(broker.url, {
    clientId: "demo-app-subscriber",
    reconnectPeriod: 0,
  });
  await new Promise<void>((resolve, reject) => {
    subscriber.once("connect", () => resolve());
    subscriber.once("error", reject);
  });
  subscriber.on("message", (_topic, payload) => {
    const atMs = performance.now();
    const promotion = decodePromotion(payload);
    if (promotion) promotionsReceived.push({ promotion, atMs });
  });
  await subscriber.subscribeAsync(`${config.mqtt.topicPrefix}/workload/+/promotion`, { qos: 1 });

  const executor = new DryRunExecutor({ log });
  const client = connectNoDelay(
    broker.url,
    buildMqttOptions(config.mqtt, { clientId: "sdv-failover-demo", will: supervisorWill(config) }),
  ) as unknown as MqttClientLike;
  const supervisor = new Supervisor({
    config,
    client,
    executor,
    log,
    onEvent: (e) => events.push(e),
  });
  let report;
  try {
    await supervisor.start(options.signal);
    const faultAtMs = "atMs" in fault ? fault.atMs : 0;
    const publishing = runPublisher({
      config,
      faults: [fault],
      durationMs: faultAtMs + 1500,
      signal: options.signal,
    });
    // Stop supervising before the simulated nodes shut down: their ordered shutdown publishes
    // `offline`, which a running supervisor rightly treats as a node going away.
    await Promise.race([publishing, new Promise((r) => setTimeout(r, faultAtMs + 1300))]);
    await supervisor.stop();
    report = await publishing;
  } finally {
    await supervisor.stop();
    await subscriber.endAsync();
    await broker.close();
  }

  const t0 = report.startedAtMs;
  const rel = (ms: number | undefined) =>
    ms === undefined ? "      —" : `+${(ms - t0).toFixed(1).padStart(7)} ms`;
  const rows: { atMs: number; text: string }[] = [];
  for (const f of report.faults) {
    rows.push({
      atMs: f.appliedAtMs,
      text: `publisher   fault injected: ${f.spec} (last heartbeat sent ${
        rel(f.lastHeartbeatAtMs)
      })`,
    });
  }
  const failures = events.flatMap((e) =>
    e.type === "transition" && e.transition.isFailure ? [e.transition] : []
  );
  for (const t of failures) {
    rows.push({
      atMs: t.lastHeartbeatAtMs ?? t.atMs,
      text: `supervisor  last heartbeat received from ${t.target.id}`,
    });
    rows.push({
      atMs: t.atMs,
      text: `supervisor  ${t.target.id} EXPIRED (cause ${t.cause}, ` +
        `${(t.atMs - (t.lastHeartbeatAtMs ?? t.atMs)).toFixed(1)} ms after its last heartbeat, ` +
        `timeout ${t.target.timeoutMs} ms)`,
    });
  }
  for (const e of events) {
    if (e.type === "promotion-sent") {
      rows.push({
        atMs: e.atMs,
        text: `supervisor  promotion published: ${e.plan.workload} → ${e.plan.active.node} ` +
          `(epoch ${e.plan.epoch}, ${e.plan.reason})`,
      });
    } else if (e.type === "fence-done") {
      for (const r of e.results) {
        rows.push({
          atMs: e.atMs,
          text: `executor    planned (dry run): ${r.action} ${r.object} — ${r.detail ?? ""}`,
        });
      }
    } else if (e.type === "actions-done") {
      for (const r of e.results) {
        rows.push({
          atMs: e.atMs,
          text: `executor    planned (dry run): ${r.action} ${r.object} — ${r.detail ?? ""}`,
        });
      }
    } else if (e.type === "blocked") {
      rows.push({
        atMs: e.atMs,
        text: `policy      failover BLOCKED: ${e.decision.workload}: ${e.decision.why}`,
      });
    }
  }
  for (const p of promotionsReceived) {
    rows.push({
      atMs: p.atMs,
      text:
        `app         promotion received: ${p.promotion.workload} active on ${p.promotion.activeNode} ` +
        `(epoch ${p.promotion.epoch})`,
    });
  }
  rows.sort((a, b) => a.atMs - b.atMs);

  print(
    `sdv-failover demo — in-process broker ${broker.url}, dry-run executor, fault ${
      fault.spec ?? ""
    }`.trim(),
  );
  print(
    `nodes: ${
      config.nodes.map((n) =>
        `${n.name} (${n.heartbeatPeriodMs} ms / timeout ${n.heartbeatTimeoutMs} ms)`
      ).join(", ")
    }`,
  );
  print("");
  print("timeline (monotonic, from publisher start)");
  for (const r of rows) print(`  ${rel(r.atMs)}  ${r.text}`);
  print("");

  const faultNode = report.faults[0]?.node;
  const expected = config.workloads.filter((w) =>
    fault.kind === "node-crash" || fault.kind === "node-hang" || fault.kind === "partition"
      ? w.primary.node === faultNode
      : fault.kind === "sensor-loss"
      ? w.primary.sensors.includes(fault.sensor)
      : fault.kind === "app-hang"
      ? w.name === fault.workload
      : false
  ).map((w) => w.name);
  const got = [...new Set(promotionsReceived.map((p) => p.promotion.workload))];
  print("latencies");
  for (const t of failures) {
    const sent = events.find((e) =>
      e.type === "promotion-sent" && e.plan.trigger.targetId === t.target.id
    );
    const received = promotionsReceived.find((p) =>
      sent?.type === "promotion-sent" && p.promotion.workload === sent.plan.workload
    );
    const done = events.find((e) =>
      e.type === "actions-done" && e.plan.trigger.targetId === t.target.id
    );
    print(`  ${t.target.id}:`);
    if (report.faults[0]) {
      print(
        `    fault → expiry                         ${
          (t.atMs - report.faults[0].appliedAtMs).toFixed(2)
        } ms`,
      );
    }
    if (t.lastHeartbeatAtMs !== undefined) {
      print(
        `    expiry − last heartbeat received       ${
          (t.atMs - t.lastHeartbeatAtMs).toFixed(2)
        } ms (timeout ${t.target.timeoutMs} ms)`,
      );
    }
    if (received) {
      print(`    expiry → promotion received (MQTT)     ${(received.atMs - t.atMs).toFixed(2)} ms`);
    }
    if (done?.type === "actions-done") {
      print(`    expiry → API plan ready (dry run)      ${done.expiryToDoneMs.toFixed(2)} ms`);
    }
  }
  const unexpected = got.filter((w) => !expected.includes(w));
  const missing = expected.filter((w) => !got.includes(w));
  const ok = missing.length === 0 && unexpected.length === 0;
  print("");
  print(
    ok
      ? `OK: ${got.length} workload(s) failed over (${
        got.join(", ") || "none expected"
      }), no healthy node failed over`
      : `FAILED: missing promotions ${JSON.stringify(missing)}, unexpected ${
        JSON.stringify(unexpected)
      }`,
  );
  return { events, promotionsReceived, lines, ok };
}
