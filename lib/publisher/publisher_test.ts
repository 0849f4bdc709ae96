import assert from "node:assert/strict";
import { type Config, ConfigSchema } from "../config/schema.ts";
import type { SessionOptions } from "../mqtt/session.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { parseFault } from "./faults.ts";
import { runPublisher } from "./publisher.ts";

function testConfig(): Config {
  return ConfigSchema.parse({
    nodes: [
      {
        name: "worker-node2",
        heartbeatPeriodMs: 20,
        heartbeatTimeoutMs: 100,
        requiredSensors: ["cam-front"],
      },
      { name: "worker-node3", heartbeatPeriodMs: 20, heartbeatTimeoutMs: 100 },
    ],
    sensors: [{ name: "cam-front", node: "worker-node2", periodMs: 20, timeoutMs: 150 }],
    workloads: [{
      name: "perception",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "perception-a", node: "worker-node2" },
      standby: { deployment: "perception-b", node: "worker-node3" },
      appHeartbeat: { periodMs: 50, timeoutMs: 150 },
    }],
  });
}

/** Opens connected fakes that echo like a broker (the agent hears its own node's ticks). */
function fakeSessions() {
  const sessions: SessionOptions[] = [];
  const clients = new Map<string, FakeMqttClient>();
  const openClient = (options: SessionOptions) => {
    sessions.push(options);
    const client = new FakeMqttClient();
    client.syncEcho = true;
    client.connect();
    clients.set(options.clientId, client);
    return client;
  };
  return { sessions, clients, openClient };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const payloads = (client: FakeMqttClient | undefined, topic: string) =>
  client!.on_topic(topic).map((p) => p.payload);

Deno.test("runPublisher: a session per node, beats on topology topics, a hang at its time, ordered stop", async () => {
  const clock = new FakeClock(0);
  const { sessions, clients, openClient } = fakeSessions();
  const running = runPublisher({
    config: testConfig(),
    faults: [parseFault("node-hang:worker-node2@110ms")],
    durationMs: 310,
    openClient,
    clock,
  });
  await settle();
  clock.advance(310);
  const report = await running;

  assert.deepEqual(sessions.map((s) => [s.clientId, s.will?.topic]), [
    ["sdv-sim-worker-node2", "sdv/node/worker-node2/status"],
    ["sdv-sim-worker-node3", "sdv/node/worker-node3/status"],
  ]);
  const n2 = clients.get("sdv-sim-worker-node2");
  const n3 = clients.get("sdv-sim-worker-node3");
  // worker-node2: ticks at 0..100, heartbeats at 20..100, app at 0, 50, 100; then hung: silent.
  assert.equal(payloads(n2, "sdv/sensor/cam-front/tick").length, 6);
  assert.deepEqual(
    payloads(n2, "sdv/node/worker-node2/hb"),
    [1, 2, 3, 4, 5].map((n) => `{"seq":${n}}`),
  );
  assert.equal(payloads(n2, "sdv/app/perception/worker-node2/hb").length, 3);
  assert.deepEqual(payloads(n2, "sdv/node/worker-node2/status"), ["online"], "hung: no offline");
  // worker-node3 runs to the end and stops in order.
  assert.equal(payloads(n3, "sdv/node/worker-node3/hb").length, 15);
  assert.equal(payloads(n3, "sdv/app/perception/worker-node3/hb").length, 7);
  assert.deepEqual(payloads(n3, "sdv/node/worker-node3/status"), ["online", "offline"]);
  assert.deepEqual(n3!.endCalls, [false]);

  assert.equal(report.aborted, false);
  assert.equal(report.startedAtMs, 0);
  assert.equal(report.shutdownAtMs, 310);
  assert.deepEqual(report.nodes["worker-node2"], {
    heartbeatsSent: 5,
    lastHeartbeatAtMs: 100,
    // Hung, the node's ticks stop too: the last one (at 100) is stale from 250 on (260, 280, 300);
    // the agent's `degraded` is silenced with the rest.
    degradedPeriods: 3,
    ticksSent: 6,
    appHeartbeatsSent: 3,
    state: "hung",
  });
  assert.equal(report.nodes["worker-node3"].state, "running");
  assert.equal(report.faults.length, 1);
  assert.equal(report.faults[0].offsetMs, 110);
  assert.equal(report.faults[0].lastHeartbeatAtMs, 100);
  assert.equal(report.faults[0].wallTimeMs, performance.timeOrigin + 110);
  assert.deepEqual(report.notApplied, []);
});

Deno.test("runPublisher: faults after the end are reported as not applied; abort ends early", async () => {
  const clock = new FakeClock(0);
  const { openClient } = fakeSessions();
  const controller = new AbortController();
  const running = runPublisher({
    config: testConfig(),
    faults: [parseFault("app-hang:perception@5s")],
    durationMs: 10_000,
    openClient,
    clock,
    signal: controller.signal,
  });
  await settle();
  clock.advance(100);
  controller.abort();
  const report = await running;
  assert.equal(report.aborted, true);
  assert.equal(report.shutdownAtMs, 100);
  assert.deepEqual(report.faults, []);
  assert.deepEqual(report.notApplied.map((f) => f.spec), ["app-hang:perception@5s"]);
});

Deno.test("runPublisher: a node that never connects → error naming it, every connection ended", async () => {
  const clock = new FakeClock(0);
  const opened: FakeMqttClient[] = [];
  const running = runPublisher({
    config: testConfig(),
    faults: [],
    durationMs: 100,
    clock,
    openClient: (options) => {
      const client = new FakeMqttClient();
      if (options.clientId === "sdv-sim-worker-node2") client.connect();
      opened.push(client);
      return client;
    },
  });
  await settle();
  clock.advance(testConfig().mqtt.connectTimeoutMs);
  await assert.rejects(running, /node\(s\) worker-node3 did not connect to mqtt:\/\/.* within/);
  assert.deepEqual(opened.map((c) => c.endCalls), [[true], [true]]);
});

Deno.test("runPublisher rejects inapplicable faults and a bad duration before connecting", async () => {
  let opened = 0;
  const openClient = () => {
    opened++;
    return new FakeMqttClient();
  };
  await assert.rejects(
    runPublisher({
      config: testConfig(),
      faults: [parseFault("node-crash:worker-node9@1s")],
      durationMs: 100,
      openClient,
    }),
    /inapplicable faults: node-crash:worker-node9@1s: unknown node/,
  );
  await assert.rejects(
    runPublisher({ config: testConfig(), faults: [], durationMs: -1, openClient }),
    /durationMs must be a non-negative number/,
  );
  assert.equal(opened, 0);
});

Deno.test("runPublisher: only the named nodes are simulated; a fault on another is refused", async () => {
  const clock = new FakeClock(0);
  const { sessions, clients, openClient } = fakeSessions();
  const running = runPublisher({
    config: testConfig(),
    nodes: ["worker-node3"],
    faults: [parseFault("node-crash:worker-node3@50ms")],
    durationMs: 100,
    openClient,
    clock,
  });
  await settle();
  clock.advance(100);
  const report = await running;
  assert.deepEqual(sessions.map((s) => s.clientId), ["sdv-sim-worker-node3"]);
  assert.equal(clients.get("sdv-sim-worker-node2"), undefined, "worker-node2 stays silent");
  assert.deepEqual(Object.keys(report.nodes), ["worker-node3"]);
  assert.equal(report.faults.length, 1);
  await assert.rejects(
    runPublisher({
      config: testConfig(),
      nodes: ["worker-node3"],
      faults: [parseFault("sensor-loss:cam-front@1s")],
      durationMs: 100,
      openClient,
      clock,
    }),
    /cam-front@1s: node worker-node2 is not simulated/,
  );
  await assert.rejects(
    runPublisher({
      config: testConfig(),
      nodes: ["nowhere"],
      faults: [],
      durationMs: 1,
      openClient,
    }),
    /unknown node\(s\) to simulate: nowhere/,
  );
});

const PROMOTION_TOPIC = "sdv/workload/perception/promotion";

function promotionTo(activeNode: string, epoch = 1): string {
  return JSON.stringify({
    v: 1,
    workload: "perception",
    namespace: "default",
    activeNode,
    activeDeployment: activeNode === "worker-node3" ? "perception-b" : "perception-a",
    failedNode: activeNode === "worker-node3" ? "worker-node2" : "worker-node3",
    epoch,
    reason: "node-draining",
    issuer: "supervisor",
    issuedAt: "2026-01-01T00:00:00Z",
  });
}

Deno.test("runPublisher: sensor-loss keeps the node heartbeat going and makes the node degraded", async () => {
  const clock = new FakeClock(0);
  const { clients, openClient } = fakeSessions();
  const running = runPublisher({
    config: testConfig(),
    faults: [parseFault("sensor-loss:cam-front@110ms")],
    durationMs: 410,
    openClient,
    clock,
  });
  await settle();
  clock.advance(410);
  const report = await running;
  const n2 = clients.get("sdv-sim-worker-node2");
  assert.equal(payloads(n2, "sdv/sensor/cam-front/tick").length, 6, "ticks at 0..100");
  assert.equal(payloads(n2, "sdv/node/worker-node2/hb").length, 20, "every slot 20..400");
  // The tick at 100 is fresh until 250: degraded at the slot at 260, retained, once.
  assert.deepEqual(payloads(n2, "sdv/node/worker-node2/status"), [
    "online",
    "degraded:cam-front",
    "offline",
  ]);
  const degraded = n2!.on_topic("sdv/node/worker-node2/status")[1];
  assert.deepEqual(degraded.options, { qos: 1, retain: true });
  assert.equal(report.nodes["worker-node2"].degradedPeriods, 8, "260..400");
  assert.equal(report.nodes["worker-node2"].state, "running");
  assert.equal(report.nodes["worker-node3"].degradedPeriods, 0);
});

Deno.test("runPublisher: planned-stop drains (draining → promotion → offline), reports the switchover", async () => {
  const clock = new FakeClock(0);
  const { clients, openClient } = fakeSessions();
  const running = runPublisher({
    config: testConfig(),
    faults: [parseFault("planned-stop:worker-node2@100ms")],
    durationMs: 400,
    openClient,
    clock,
  });
  await settle();
  clock.advance(100);
  const n2 = clients.get("sdv-sim-worker-node2")!;
  assert.deepEqual(payloads(n2, "sdv/node/worker-node2/status"), ["online", "draining"]);
  clock.advance(45);
  assert.equal(payloads(n2, "sdv/node/worker-node2/hb").length, 7, "beats go on while draining");
  // The supervisor moves the workload: its promotion reaches the draining agent.
  n2.deliver(PROMOTION_TOPIC, promotionTo("worker-node3"), { retain: true });
  await settle();
  assert.deepEqual(payloads(n2, "sdv/node/worker-node2/status"), [
    "online",
    "draining",
    "offline",
  ]);
  assert.deepEqual(n2.endCalls, [false], "DISCONNECT: no Last Will");
  const beats = payloads(n2, "sdv/node/worker-node2/hb").length;
  clock.advance(255);
  const report = await running;
  assert.equal(payloads(n2, "sdv/node/worker-node2/hb").length, beats, "silent once stopped");
  assert.equal(payloads(n2, "sdv/sensor/cam-front/tick").length, 8, "ticks 0..140, then stopped");
  assert.equal(report.nodes["worker-node2"].state, "stopped");
  assert.equal(report.faults[0].spec, "planned-stop:worker-node2@100ms");
  assert.deepEqual(report.faults[0].drain, {
    outcome: "drained",
    switchoverMs: 45,
    moved: ["perception"],
    pending: [],
    stoppedAtMs: 145,
  });
  // The end of the run stays an ordered stop without drain.
  const n3 = clients.get("sdv-sim-worker-node3")!;
  assert.deepEqual(payloads(n3, "sdv/node/worker-node3/status"), ["online", "offline"]);
});

Deno.test("runPublisher: a planned-stop without promotion times out and still stops", async () => {
  const clock = new FakeClock(0);
  const { clients, openClient } = fakeSessions();
  const running = runPublisher({
    config: testConfig(),
    faults: [
      parseFault("planned-stop:worker-node2@100ms"),
      parseFault("planned-stop:worker-node3@100ms"),
      parseFault("node-crash:worker-node2@350ms"),
    ],
    durationMs: 400,
    drainTimeoutMs: 200,
    openClient,
    clock,
  });
  await settle();
  clock.advance(299);
  await settle();
  const n2 = clients.get("sdv-sim-worker-node2")!;
  assert.deepEqual(payloads(n2, "sdv/node/worker-node2/status"), ["online", "draining"]);
  clock.advance(1);
  await settle();
  assert.deepEqual(payloads(n2, "sdv/node/worker-node2/status"), [
    "online",
    "draining",
    "offline",
  ]);
  clock.advance(100);
  const report = await running;
  const [stop2, stop3] = report.faults;
  assert.deepEqual(stop2.drain, {
    outcome: "timed-out",
    switchoverMs: undefined,
    moved: [],
    pending: ["perception"],
    stoppedAtMs: 300,
  });
  // worker-node3 runs only the standby: nothing to move, it stops at once.
  assert.deepEqual(stop3.drain?.outcome, "drained");
  assert.deepEqual(stop3.drain?.switchoverMs, 0);
  assert.equal(report.faults.length, 2, "the crash of a stopped node has no effect");
  assert.equal(report.nodes["worker-node2"].state, "stopped");
});
