import assert from "node:assert/strict";
import { type Config, ConfigSchema } from "../config/schema.ts";
import { buildTopology, otherSide, type Topology } from "./topology.ts";

/**
 * Two nodes (n2 with overridden topics), three sensors (c2 with an overridden topic), a workload
 * with an app heartbeat (lanes: n1 → n2) and one without (park: n2 → n1); `mutate` edits the raw
 * config before the schema applies defaults.
 */
function config(mutate: (raw: Record<string, unknown>) => void = () => {}): Config {
  const raw: Record<string, unknown> = {
    mqtt: { topicPrefix: "veh" },
    supervisor: { id: "sup-1" },
    nodes: [
      { name: "n1", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 300, requiredSensors: ["c1"] },
      {
        name: "n2",
        heartbeatPeriodMs: 50,
        heartbeatTimeoutMs: 400,
        heartbeatTopic: "custom/n2/alive",
        statusTopic: "custom/n2/status",
      },
    ],
    sensors: [
      { name: "c1", node: "n1", periodMs: 33, timeoutMs: 150 },
      { name: "c2", node: "n2", periodMs: 40, timeoutMs: 160, topic: "custom/c2/frame" },
      { name: "l1", node: "n1", periodMs: 100, timeoutMs: 300 },
    ],
    workloads: [
      {
        name: "lanes",
        asil: "B",
        fttiMs: 500,
        primary: { deployment: "lanes-a", node: "n1", sensors: ["c1", "l1"] },
        standby: { deployment: "lanes-b", node: "n2", sensors: ["c2"] },
        appHeartbeat: { periodMs: 20, timeoutMs: 100 },
        actions: ["promote", "deletePods"],
      },
      {
        name: "park",
        namespace: "adas",
        asil: "QM",
        fttiMs: 2000,
        primary: { deployment: "park-a", node: "n2" },
        standby: { deployment: "park-b", node: "n1" },
      },
    ],
  };
  mutate(raw);
  return ConfigSchema.parse(raw);
}

const labels = (t: Topology) => t.targets.map((x) => x.label);

Deno.test("targets: nodes, then sensors, then app instances; index is the position", () => {
  const t = buildTopology(config());
  assert.deepEqual(labels(t), [
    "node/n1",
    "node/n2",
    "sensor/c1",
    "sensor/c2",
    "sensor/l1",
    "app/lanes/n1",
    "app/lanes/n2",
  ]);
  t.targets.forEach((target, i) => assert.equal(target.index, i, target.label));
  assert.deepEqual(t.nodes.map((n) => n.kind), ["node", "node"]);
  assert.deepEqual(t.sensors.map((s) => s.kind), ["sensor", "sensor", "sensor"]);
  assert.deepEqual(t.apps.map((a) => a.kind), ["app", "app"]);
  assert.deepEqual([...t.nodes, ...t.sensors, ...t.apps], t.targets);
  t.workloads.forEach((w, i) => assert.equal(w.index, i, w.name));
});

Deno.test("references are resolved to objects", () => {
  const t = buildTopology(config());
  const [n1, n2] = t.nodes;
  const [c1, c2, l1] = t.sensors;
  assert.equal(c1.node, n1);
  assert.equal(c2.node, n2);
  assert.equal(l1.node, n1);
  assert.deepEqual(n1.sensors, [c1, l1]);
  assert.deepEqual(n2.sensors, [c2]);
  assert.deepEqual(n1.requiredSensors, [c1]);
  assert.deepEqual(n2.requiredSensors, []);

  const lanes = t.workload("lanes")!;
  const park = t.workload("park")!;
  assert.equal(lanes.primary.workload, lanes);
  assert.equal(lanes.primary.side, "primary");
  assert.equal(lanes.standby.side, "standby");
  assert.equal(lanes.primary.deployment, "lanes-a");
  assert.equal(lanes.primary.node, n1);
  assert.deepEqual(lanes.primary.sensors, [c1, l1]);
  const [appN1, appN2] = t.apps;
  assert.equal(lanes.primary.app, appN1);
  assert.equal(lanes.standby.app, appN2);
  assert.equal(appN1.workload, lanes);
  assert.equal(appN1.side, "primary");
  assert.equal(appN1.node, n1);
  assert.equal(appN2.side, "standby");
  assert.equal(appN2.node, n2);
  assert.equal(appN1.periodMs, 20);
  assert.equal(appN1.timeoutMs, 100);
  // A placement is trusted through its node, its sensors and its app instance, in that order.
  assert.deepEqual(lanes.primary.targets, [n1, c1, l1, appN1]);
  assert.deepEqual(lanes.standby.targets, [n2, c2, appN2]);
  // Without an app heartbeat: no app target.
  assert.equal(park.primary.app, undefined);
  assert.deepEqual(park.primary.targets, [n2]);
  assert.deepEqual(park.standby.targets, [n1]);
  // Every placement on a node, either side, in workload order.
  assert.deepEqual(n1.placements, [lanes.primary, park.standby]);
  assert.deepEqual(n2.placements, [lanes.standby, park.primary]);

  assert.equal(park.namespace, "adas");
  assert.equal(lanes.namespace, "default");
  assert.equal(lanes.asil, "B");
  assert.equal(lanes.fttiMs, 500);
  assert.deepEqual([...lanes.actions], ["promote", "deletePods"]);
  assert.equal(park.actions.size, 6); // the default: every action
  assert.equal(otherSide("primary"), "standby");
  assert.equal(otherSide("standby"), "primary");
});

Deno.test("timing comes from the config", () => {
  const t = buildTopology(config());
  const [n1, n2] = t.nodes;
  assert.deepEqual([n1.periodMs, n1.timeoutMs], [33, 300]);
  assert.deepEqual([n2.periodMs, n2.timeoutMs], [50, 400]);
  const timing = t.sensors.map((s) => `${s.periodMs}/${s.timeoutMs}`);
  assert.deepEqual(timing, ["33/150", "40/160", "100/300"]);
});

Deno.test("topics: defaults under the prefix, config overrides applied", () => {
  const t = buildTopology(config());
  assert.equal(t.prefix, "veh");
  const [n1, n2] = t.nodes;
  assert.equal(n1.topic, "veh/node/n1/hb");
  assert.equal(n1.statusTopic, "veh/node/n1/status");
  assert.equal(n2.topic, "custom/n2/alive");
  assert.equal(n2.statusTopic, "custom/n2/status");
  assert.deepEqual(t.sensors.map((s) => s.topic), [
    "veh/sensor/c1/tick",
    "custom/c2/frame",
    "veh/sensor/l1/tick",
  ]);
  // An app instance's topic names the node it runs on, never an overridden node topic.
  assert.deepEqual(t.apps.map((a) => a.topic), ["veh/app/lanes/n1/hb", "veh/app/lanes/n2/hb"]);
  assert.equal(t.workload("lanes")!.promotionTopic, "veh/workload/lanes/promotion");
  assert.deepEqual(t.supervisorTopics("sup-1"), {
    status: "veh/supervisor/sup-1/status",
    barrier: "veh/supervisor/sup-1/barrier",
    state: "veh/supervisor/sup-1/state",
  });
  // Every topic is distinct (the validator guarantees it for valid configs).
  const topics = [...t.targets.map((x) => x.topic), ...t.nodes.map((n) => n.statusTopic)];
  assert.equal(new Set(topics).size, topics.length);
});

Deno.test("lookups by name and placementOn", () => {
  const t = buildTopology(config());
  const [n1, n2] = t.nodes;
  assert.equal(t.node("n2"), n2);
  assert.equal(t.sensor("c2"), t.sensors[1]);
  assert.equal(t.workload("park"), t.workloads[1]);
  assert.equal(t.node("nope"), undefined);
  assert.equal(t.sensor("nope"), undefined);
  assert.equal(t.workload("nope"), undefined);

  const lanes = t.workload("lanes")!;
  assert.equal(t.placementOn(lanes, n1), lanes.primary);
  assert.equal(t.placementOn(lanes, n2), lanes.standby);
  const lone = buildTopology(config((raw) => {
    (raw.nodes as unknown[]).push({ name: "n3", heartbeatPeriodMs: 10, heartbeatTimeoutMs: 30 });
  }));
  assert.equal(lone.placementOn(lone.workload("lanes")!, lone.node("n3")!), undefined);
});

Deno.test("an unknown reference throws (a config that bypassed validation)", () => {
  type Raw = Record<string, Record<string, unknown>[]>;
  const cases: [string, (raw: Raw) => void, RegExp][] = [
    ["sensor node", (r) => (r.sensors[0].node = "zz"), /sensor c1: unknown node zz/],
    [
      "required sensor",
      (r) => (r.nodes[0].requiredSensors = ["zz"]),
      /node n1: unknown sensor zz/,
    ],
    [
      "placement node",
      (r) => ((r.workloads[0].standby as Record<string, unknown>).node = "zz"),
      /workload lanes standby: unknown node zz/,
    ],
    [
      "placement sensor",
      (r) => ((r.workloads[0].primary as Record<string, unknown>).sensors = ["zz"]),
      /workload lanes primary: unknown sensor zz/,
    ],
  ];
  for (const [what, mutate, message] of cases) {
    const broken = config((raw) => mutate(raw as Raw));
    assert.throws(() => buildTopology(broken), message, what);
  }
});
