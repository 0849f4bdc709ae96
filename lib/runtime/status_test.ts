import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { FakeReconciler } from "../../tests/fakes/fake_reconciler.ts";
import { type Config, ConfigSchema } from "../config/schema.ts";
import { parseConfig } from "../config/load.ts";
import { buildTopology } from "../topology/topology.ts";
import { decodeStateMessage, encodeStateMessage, MAX_STATE_BYTES } from "../wire/state_message.ts";
import { type LeadershipFactory, Supervisor } from "./supervisor.ts";
import { STATE_MIN_GAP_MS } from "./state_publisher.ts";

const baseConfig = (supervisor: Record<string, unknown> = {}) =>
  ConfigSchema.parse({
    supervisor: { id: "sup", bootWindowMs: 100, ...supervisor },
    nodes: ["worker-node2", "worker-node3"].map((name) => ({
      name,
      heartbeatPeriodMs: 10,
      heartbeatTimeoutMs: 30,
      requiredSensors: [`cam${name.slice(-1)}`],
    })),
    sensors: [
      { name: "cam2", node: "worker-node2", periodMs: 10, timeoutMs: 30 },
      { name: "cam3", node: "worker-node3", periodMs: 10, timeoutMs: 30 },
    ],
    workloads: [{
      name: "lane",
      asil: "D",
      fttiMs: 100,
      primary: { deployment: "lane-original", node: "worker-node2", sensors: ["cam2"] },
      standby: { deployment: "lane-standby", node: "worker-node3", sensors: ["cam3"] },
      appHeartbeat: { periodMs: 10, timeoutMs: 30 },
    }],
  });

const ticks = async (n = 10) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

async function setup(config: Config = baseConfig(), leadership?: LeadershipFactory) {
  const clock = new FakeClock(5000);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const sup = new Supervisor({
    config,
    client,
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock,
    leadership,
  });
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  const p = config.mqtt.topicPrefix;
  const beat = (
    nodes = config.nodes.map((n) => n.name),
    sensors = config.sensors.map((s) => s.name),
    apps = config.workloads.flatMap((w) =>
      w.appHeartbeat ? [[w.name, w.primary.node], [w.name, w.standby.node]] : []
    ),
  ) => {
    for (const n of nodes) client.deliver(`${p}/node/${n}/hb`, '{"seq":1}');
    for (const s of sensors) client.deliver(`${p}/sensor/${s}/tick`, '{"seq":1}');
    for (const [w, n] of apps) client.deliver(`${p}/app/${w}/${n}/hb`, '{"seq":1}');
  };
  const states = () =>
    client.on_topic(`${p}/supervisor/${config.supervisor.id}/state`).map((m) => {
      assert.deepEqual(m.options, { qos: 1, retain: true });
      const snapshot = decodeStateMessage(m.bytes!);
      assert.ok(snapshot, "the published state decodes");
      return snapshot;
    });
  return { clock, client, sup, beat, states };
}

Deno.test("status snapshot: healthy vehicle — states, monotonic ages at snapshot time, initial placement", async () => {
  const { clock, sup, beat } = await setup();
  beat();
  clock.advance(7);
  beat(["worker-node3"], [], []);
  clock.advance(5);
  const s = sup.statusSnapshot();
  assert.equal(s.v, 1);
  assert.ok(!Number.isNaN(Date.parse(s.generatedAt)), "generatedAt is an ISO wall time");
  assert.equal(s.supervisor.id, "sup");
  assert.equal(s.supervisor.role, "single");
  assert.equal(s.supervisor.term, null);
  assert.equal(s.supervisor.lifecycle, "running");
  assert.equal(s.supervisor.armed, true);
  assert.equal(s.supervisor.ingestFaulted, false);
  assert.equal(s.supervisor.upMs, 12);
  assert.deepEqual(s.nodes, [
    {
      name: "worker-node2",
      state: "OK",
      heartbeatAgeMs: 12,
      fence: "none",
      fenceReason: null,
      draining: false,
    },
    {
      name: "worker-node3",
      state: "OK",
      heartbeatAgeMs: 5,
      fence: "none",
      fenceReason: null,
      draining: false,
    },
  ]);
  assert.deepEqual(s.sensors.map((r) => [r.name, r.node, r.state, r.ageMs]), [
    ["cam2", "worker-node2", "OK", 12],
    ["cam3", "worker-node3", "OK", 12],
  ]);
  assert.deepEqual(s.apps.map((r) => [r.workload, r.node, r.side, r.state, r.ageMs]), [
    ["lane", "worker-node2", "primary", "OK", 12],
    ["lane", "worker-node3", "standby", "OK", 12],
  ]);
  assert.deepEqual(s.workloads, [{
    name: "lane",
    namespace: "default",
    asil: "D",
    fttiMs: 100,
    activeSide: "primary",
    activeNode: "worker-node2",
    standbyNode: "worker-node3",
    epoch: 0,
    reason: "initial",
    failedAt: null,
  }]);
  assert.equal(s.supervisor.counters.messages, 7);
  // Ages come from the monotonic clock only: the same instant gives the same ages.
  clock.advance(100);
  assert.equal(sup.statusSnapshot().nodes[1].heartbeatAgeMs, 105);
  await sup.stop();
});

Deno.test("status snapshot: never-heard targets have null ages; before start nothing is armed", () => {
  const config = baseConfig();
  const sup = new Supervisor({
    config,
    client: new FakeMqttClient(),
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock: new FakeClock(0),
  });
  const s = sup.statusSnapshot();
  assert.equal(s.supervisor.lifecycle, "created");
  assert.equal(s.supervisor.armed, false);
  assert.equal(s.supervisor.upMs, null);
  assert.ok(s.nodes.every((n) => n.state === "INIT" && n.heartbeatAgeMs === null));
  assert.ok(s.sensors.every((r) => r.ageMs === null));
});

Deno.test("status snapshot: a node crash shows EXPIRED, fenced, and the workload on the standby at a higher epoch", async () => {
  const { clock, client, sup, beat, states } = await setup();
  for (let i = 0; i < 5; i++) {
    beat();
    clock.advance(10);
  }
  client.deliver("sdv/node/worker-node2/status", "offline", { retain: false }); // Last Will
  await ticks();
  for (let i = 0; i < STATE_MIN_GAP_MS / 10; i++) {
    beat(["worker-node3"], ["cam3"], [["lane", "worker-node3"]]);
    clock.advance(10);
  }
  const s = sup.statusSnapshot();
  const node2 = s.nodes.find((n) => n.name === "worker-node2")!;
  assert.equal(node2.state, "EXPIRED");
  assert.equal(node2.fence, "fenced");
  assert.equal(node2.fenceReason, "node-offline");
  assert.equal(s.nodes.find((n) => n.name === "worker-node3")!.fence, "none");
  const [lane] = s.workloads;
  assert.equal(lane.activeNode, "worker-node3");
  assert.equal(lane.standbyNode, "worker-node2");
  assert.equal(lane.activeSide, "standby");
  assert.equal(lane.epoch, 1);
  assert.equal(lane.reason, "node-offline");
  assert.ok(lane.failedAt !== null && !Number.isNaN(Date.parse(lane.failedAt)));
  assert.equal(s.supervisor.counters.expiries >= 1, true);
  // The change was published (coalesced) without waiting for the 1 s period.
  const last = states().at(-1)!;
  assert.equal(last.workloads[0].epoch, 1);
  assert.equal(last.nodes[0].fence, "fenced");
  await sup.stop();
});

Deno.test("state topic: published at arm, coalesced on change, at the configured period, never per heartbeat", async () => {
  const { clock, sup, beat, states } = await setup(baseConfig({ stateIntervalMs: 1000 }));
  clock.advance(0);
  assert.equal(states().length, 1, "one state at arm");
  // INIT → OK of 6 targets: one coalesced publish, the least gap after the first
  for (let i = 0; i < STATE_MIN_GAP_MS / 10; i++) {
    beat();
    clock.advance(10);
  }
  assert.equal(states().length, 2);
  assert.ok(states()[1].nodes.every((n) => n.state === "OK"));
  // Healthy heartbeats for 3 s: no transition, so only the periodic publishes (3).
  for (let i = 0; i < 300; i++) {
    beat();
    clock.advance(10);
  }
  assert.equal(states().length, 5);
  await sup.stop();
  clock.advance(5000);
  assert.equal(states().length, 5, "nothing after stop");
});

Deno.test("state topic: stateIntervalMs 0 disables it", async () => {
  const { clock, sup, beat, states } = await setup(baseConfig({ stateIntervalMs: 0 }));
  beat();
  clock.advance(3000);
  assert.equal(states().length, 0);
  assert.equal(sup.statusSnapshot().supervisor.armed, true, "the snapshot is still available");
  await sup.stop();
});

Deno.test("status snapshot: a pair instance shows leader with its term, or standby", async () => {
  let leader = false;
  let started: ((term: number) => void) | undefined;
  const leadership: LeadershipFactory = (hooks) => {
    started = hooks.onStartedLeading;
    return Promise.resolve({
      isLeader: () => leader,
      run: (signal) =>
        new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve())),
    });
  };
  const config = baseConfig({ pair: { ids: ["sup", "sup-b"] } });
  const { sup } = await setup(config, leadership);
  assert.equal(sup.statusSnapshot().supervisor.role, "standby");
  assert.equal(sup.statusSnapshot().supervisor.term, null);
  leader = true;
  started!(3);
  const s = sup.statusSnapshot();
  assert.equal(s.supervisor.role, "leader");
  assert.equal(s.supervisor.term, 3);
  await sup.stop();
});

/** A vehicle of `nodes` nodes (camera required + lidar each) and nodes/2 workloads with app heartbeats. */
export function vehicleConfig(nodes: number): Config {
  const names = Array.from({ length: nodes }, (_, i) => `worker-node${i + 1}`);
  return ConfigSchema.parse({
    supervisor: { id: "supervisor", bootWindowMs: 100 },
    nodes: names.map((name, i) => ({
      name,
      heartbeatPeriodMs: 33,
      heartbeatTimeoutMs: 300,
      requiredSensors: [`camera-node${i + 1}`],
    })),
    sensors: names.flatMap((name, i) =>
      ["camera", "lidar"].map((kind) => ({
        name: `${kind}-node${i + 1}`,
        node: name,
        periodMs: 33,
        timeoutMs: 150,
      }))
    ),
    workloads: Array.from({ length: Math.floor(nodes / 2) }, (_, i) => ({
      name: `workload-${i + 1}`,
      asil: "B",
      fttiMs: 500,
      primary: {
        deployment: `workload-${i + 1}-original`,
        node: names[2 * i],
        sensors: [`camera-node${2 * i + 1}`, `lidar-node${2 * i + 1}`],
      },
      standby: {
        deployment: `workload-${i + 1}-standby`,
        node: names[2 * i + 1],
        sensors: [`camera-node${2 * i + 2}`, `lidar-node${2 * i + 2}`],
      },
      appHeartbeat: { periodMs: 33, timeoutMs: 300 },
    })),
  });
}

/** Heartbeats every target at a different instant, so that every age differs (worst for gzip). */
async function measured(config: Config) {
  const { clock, sup, client } = await setup(config);
  const topology = buildTopology(config);
  for (const t of topology.targets) {
    client.deliver(t.topic, '{"seq":1}');
    clock.advance(1.37);
  }
  const snapshot = sup.statusSnapshot();
  // the worst case of every variable field: failed over, fenced, long reasons
  for (const w of snapshot.workloads) {
    Object.assign(w, {
      epoch: 2 ** 31 - 1,
      reason: "sensor-expired:camera-node10",
      failedAt: new Date().toISOString(),
    });
  }
  for (const n of snapshot.nodes) {
    Object.assign(n, { fence: "fenced", fenceReason: "node-expired" });
  }
  await sup.stop();
  return {
    json: new TextEncoder().encode(JSON.stringify(snapshot)).length,
    gzip: encodeStateMessage(snapshot).length,
  };
}

Deno.test("state size: config/example.yaml and a 20-node vehicle fit the broker's 4096-byte limit", async () => {
  const example = parseConfig(
    await Deno.readTextFile(new URL("../../config/example.yaml", import.meta.url)),
  );
  const small = await measured(example);
  const large = await measured(vehicleConfig(20));
  console.log(
    `state payload: example.yaml ${small.gzip} B gzip (${small.json} B JSON); ` +
      `20 nodes ${large.gzip} B gzip (${large.json} B JSON); limit ${MAX_STATE_BYTES} B`,
  );
  assert.ok(small.gzip <= MAX_STATE_BYTES);
  assert.ok(large.gzip <= MAX_STATE_BYTES);
  assert.ok(large.json > MAX_STATE_BYTES, "the plain JSON would not fit: why it is compressed");
});
