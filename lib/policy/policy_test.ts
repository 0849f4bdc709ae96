import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { buildTopology, type Target } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import { type Decision, FailoverPolicy } from "./policy.ts";

const config = ConfigSchema.parse({
  nodes: ["worker-node1", "worker-node2", "worker-node3"].map((name) => ({
    name,
    heartbeatPeriodMs: 10,
    heartbeatTimeoutMs: 30,
  })),
  sensors: [
    { name: "camera-node2", node: "worker-node2", periodMs: 10, timeoutMs: 30 },
    { name: "camera-node3", node: "worker-node3", periodMs: 10, timeoutMs: 30 },
    { name: "lidar-node2", node: "worker-node2", periodMs: 10, timeoutMs: 30 },
  ],
  workloads: [
    {
      name: "lane-detection",
      asil: "D",
      fttiMs: 100,
      primary: { deployment: "lane-original", node: "worker-node2", sensors: ["camera-node2"] },
      standby: { deployment: "lane-standby", node: "worker-node3", sensors: ["camera-node3"] },
      appHeartbeat: { periodMs: 10, timeoutMs: 30 },
    },
    {
      name: "pose-estimation",
      asil: "QM",
      fttiMs: 1000,
      primary: { deployment: "pose-original", node: "worker-node2", sensors: ["lidar-node2"] },
      standby: { deployment: "pose-standby", node: "worker-node3" },
      actions: ["promote", "deletePods"],
    },
  ],
});
const topo = buildTopology(config);
const lane = topo.workload("lane-detection")!;
const pose = topo.workload("pose-estimation")!;
const byLabel = (label: string): Target => {
  const t = topo.targets.find((x) => x.label === label);
  assert.ok(t, label);
  return t;
};

function fail(label: string, cause: Transition["cause"] = "deadline"): Transition<Target> {
  return {
    target: byLabel(label),
    from: "OK",
    to: "EXPIRED",
    atMs: 500,
    lastHeartbeatAtMs: 470,
    deadlineMs: 500,
    latenessMs: 0,
    cause,
    isFailure: true,
  };
}

function policy(unhealthy: string[] = []) {
  return new FailoverPolicy({
    topology: topo,
    isHealthy: (t) => !unhealthy.includes(t.label),
    wallTime: () => "2026-12-02T00:00:00.000Z",
  });
}

const kinds = (ds: Decision[]) => ds.map((d) => d.kind);

Deno.test("node expiry: fence first, then every workload active on it fails over", () => {
  const p = policy();
  const all = p.onFailure(fail("node/worker-node2"));
  assert.deepEqual(kinds(all), ["fence", "failover", "failover"]);
  const fence = all[0];
  assert.ok(fence.kind === "fence");
  assert.equal(fence.desired.node, topo.node("worker-node2"));
  assert.deepEqual(
    { fenced: fence.desired.fenced, cordon: fence.desired.cordon, taint: fence.desired.taint },
    { fenced: true, cordon: true, taint: true },
  );
  assert.equal(fence.desired.reason, "node-expired");
  for (const d of all.slice(1)) {
    assert.ok(d.kind === "failover");
    assert.equal(d.desired.epoch, 1);
    assert.equal(d.desired.active, "standby");
    assert.equal(d.desired.reason, "node-expired");
    assert.equal(d.desired.nodeFault, true);
    assert.equal(d.desired.removeFailed, true);
    assert.equal(d.desired.failedAt, "2026-12-02T00:00:00.000Z");
    assert.equal(d.desired.trigger?.lastHeartbeatAtMs, 470);
    assert.equal(d.desired.trigger?.target, topo.node("worker-node2"));
  }
  assert.equal(p.workload(lane).active, "standby");
  assert.equal(p.workload(lane).epoch, 1);
  assert.equal(p.node(topo.node("worker-node2")!).fenced, true);
  assert.equal(p.node(topo.node("worker-node3")!).fenced, false);
});

Deno.test("a repeated expiry of the same node plans no failover, only the same fence", () => {
  const p = policy();
  const [first] = p.onFailure(fail("node/worker-node2"));
  const again = p.onFailure(fail("node/worker-node2"));
  assert.deepEqual(kinds(again), ["fence"]);
  assert.ok(first.kind === "fence" && again[0].kind === "fence");
  assert.equal(again[0].desired, first.desired, "unchanged desired state");
  assert.equal(p.workload(lane).epoch, 1);
});

Deno.test("a node whose workloads already moved (sensor/app expiry) is still fenced on its own expiry", () => {
  const p = policy();
  p.onFailure(fail("sensor/lidar-node2"));
  p.onFailure(fail("app/lane-detection/worker-node2"));
  assert.deepEqual(kinds(p.onFailure(fail("node/worker-node2"))), ["fence"]);
});

Deno.test("sensor expiry fails over only the workloads needing it, no node fence", () => {
  const p = policy();
  const decisions = p.onFailure(fail("sensor/lidar-node2"));
  assert.deepEqual(kinds(decisions), ["failover"]);
  const [d] = decisions;
  assert.ok(d.kind === "failover");
  assert.equal(d.desired.workload, pose);
  assert.equal(d.desired.reason, "sensor-expired:lidar-node2");
  assert.equal(d.desired.nodeFault, false);
  assert.equal(d.desired.removeFailed, true);
  assert.equal(p.node(topo.node("worker-node2")!).fenced, false);
  assert.equal(p.workload(lane).epoch, 0);
});

Deno.test("app expiry of the active instance fails it over; the standby's app does not", () => {
  const p = policy();
  assert.deepEqual(p.onFailure(fail("app/lane-detection/worker-node3")), []);
  const [d] = p.onFailure(fail("app/lane-detection/worker-node2"));
  assert.ok(d.kind === "failover");
  assert.equal(d.desired.reason, "app-expired");
});

Deno.test("never promote a standby whose node, sensor or app is not OK", () => {
  for (
    const bad of ["node/worker-node3", "sensor/camera-node3", "app/lane-detection/worker-node3"]
  ) {
    const p = policy([bad]);
    const blocked = p.onFailure(fail("node/worker-node2")).find((d) =>
      d.kind === "blocked" && d.workload === lane
    );
    assert.ok(blocked && blocked.kind === "blocked", bad);
    assert.match(blocked.why, new RegExp(bad));
    assert.deepEqual(blocked.unhealthy, [byLabel(bad)]);
    assert.equal(p.workload(lane).epoch, 0);
    assert.equal(p.workload(lane).active, "primary");
  }
});

Deno.test("workloads without removeFailed/fence actions: no pod removal, no fence", () => {
  const p = policy();
  const [d] = p.onFailure(fail("sensor/lidar-node2"));
  assert.ok(d.kind === "failover" && d.desired.removeFailed);
  // only pose allows deletePods here; a node hosting only workloads without cordon/taint is
  // not fenced
  const onlyPose = buildTopology(ConfigSchema.parse({
    ...config,
    workloads: [config.workloads[1]],
  }));
  const q = new FailoverPolicy({ topology: onlyPose, isHealthy: () => true });
  assert.deepEqual(
    kinds(q.onFailure({ ...fail("node/worker-node2"), target: onlyPose.nodes[1] })),
    [
      "failover",
    ],
  );
});

Deno.test("adoption: a higher epoch is taken over, an older one ignored, epochs only grow", () => {
  const p = policy();
  const adopted = p.adopt(lane, { epoch: 4, active: "standby", reason: "node-expired" });
  assert.ok(adopted);
  assert.equal(adopted.epoch, 4);
  assert.equal(adopted.removeFailed, true);
  assert.equal(adopted.nodeFault, true);
  assert.equal(p.node(topo.node("worker-node2")!).fenced, true, "node fault implies a fence");
  assert.equal(p.adopt(lane, { epoch: 3, active: "primary" }), undefined, "older ignored");
  assert.equal(p.adopt(lane, { epoch: 4, active: "standby" }), undefined, "same: no change");
  assert.equal(p.adopt(lane, { epoch: Number.NaN, active: "primary" }), undefined);
  // the new active's node fails later: back to the primary with the next epoch
  const back = p.onFailure(fail("node/worker-node3")).find((d) =>
    d.kind === "failover" && d.desired.workload === lane
  );
  assert.ok(back && back.kind === "failover");
  assert.equal(back.desired.epoch, 5);
  assert.equal(back.desired.active, "primary");
});

Deno.test("adoption of a fence observed on a node", () => {
  const p = policy();
  const n = topo.node("worker-node1")!;
  const d = p.adoptFence(n, { tainted: true, cordonedByUs: false });
  assert.ok(d);
  assert.deepEqual([d.fenced, d.cordon, d.taint, d.reason], [true, false, true, "adopted"]);
  assert.equal(p.adoptFence(n, { tainted: true, cordonedByUs: true }), undefined);
});

Deno.test("offline and never-seen causes name the reason", () => {
  const [fence, a] = policy().onFailure(fail("node/worker-node2", "offline"));
  assert.ok(fence.kind === "fence" && fence.desired.reason === "node-offline");
  assert.ok(a.kind === "failover" && a.desired.reason === "node-offline");
  const [, b] = policy().onFailure(fail("node/worker-node2", "never-seen"));
  assert.ok(b.kind === "failover" && b.desired.reason === "node-never-seen");
});

Deno.test("non-failure transitions decide nothing", () => {
  assert.deepEqual(policy().onFailure({ ...fail("node/worker-node2"), isFailure: false }), []);
});
