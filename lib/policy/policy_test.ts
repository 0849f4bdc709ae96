import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { buildTopology, type Target } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import { MAX_EPOCH } from "../wire/wire.ts";
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

Deno.test("a repeated expiry of the same node plans nothing: no failover, the fence stands", () => {
  const p = policy();
  const [first] = p.onFailure(fail("node/worker-node2"));
  assert.ok(first.kind === "fence");
  // the same node expires again later (after a recovery that did not last)
  assert.deepEqual(p.onFailure({ ...fail("node/worker-node2"), atMs: 5000 }), []);
  assert.equal(p.node(topo.node("worker-node2")!), first.desired, "unchanged desired state");
  assert.equal(p.workload(lane).epoch, 1);
});

Deno.test("a node whose expiry moved no workload is fenced only after a confirmation window", () => {
  let healthy = true;
  const p = new FailoverPolicy({
    topology: topo,
    isHealthy: (t) => t.label !== "node/worker-node2" || healthy,
    fenceConfirmationMs: 2000,
  });
  p.onFailure(fail("sensor/lidar-node2"));
  p.onFailure(fail("app/lane-detection/worker-node2"));
  healthy = false;
  // long after (not the same incident): the node's own expiry moved nothing
  const [pending] = p.onFailure({ ...fail("node/worker-node2"), atMs: 5000 });
  assert.ok(pending.kind === "fence-pending");
  assert.equal(pending.why, "no-workload-moved");
  assert.equal(pending.confirmAfterMs, 2000);
  assert.equal(p.node(topo.node("worker-node2")!).fenced, false, "not yet");
  const confirmed = p.confirm(topo.node("worker-node2")!);
  assert.equal(confirmed.node?.fenced, true, "still silent: fenced");
});

Deno.test("a pending fence is dropped when the node comes back within the window", () => {
  let healthy = false;
  const p = new FailoverPolicy({
    topology: topo,
    isHealthy: (t) => t.label !== "node/worker-node2" || healthy,
  });
  p.onFailure(fail("sensor/lidar-node2"));
  p.onFailure(fail("app/lane-detection/worker-node2"));
  assert.equal(p.onFailure({ ...fail("node/worker-node2"), atMs: 5000 })[0].kind, "fence-pending");
  healthy = true;
  assert.deepEqual(p.confirm(topo.node("worker-node2")!), { workloads: [] });
  assert.equal(p.node(topo.node("worker-node2")!).fenced, false);
});

Deno.test("never seen in the boot window: no fence; workloads move to a healthy standby", () => {
  const p = policy(["node/worker-node2"]);
  const ds = p.onFailure(fail("node/worker-node2", "never-seen"));
  assert.deepEqual(kinds(ds), ["never-seen", "failover", "failover"]);
  for (const d of ds) {
    if (d.kind !== "failover") continue;
    assert.equal(d.desired.reason, "node-never-seen");
    assert.equal(d.desired.nodeFault, false);
    assert.equal(d.desired.removeFailed, false, "its pods may still be starting");
  }
  assert.equal(p.node(topo.node("worker-node2")!).fenced, false);
});

Deno.test("planned stop: workloads move first, no fence, no pod removal; its silence fences nothing", () => {
  const unhealthy = new Set<string>();
  const p = new FailoverPolicy({ topology: topo, isHealthy: (t) => !unhealthy.has(t.label) });
  const n2 = topo.node("worker-node2")!;
  const ds = p.onPlannedStop(n2);
  assert.deepEqual(kinds(ds), ["failover", "failover"]);
  for (const d of ds) {
    assert.ok(d.kind === "failover");
    assert.equal(d.desired.reason, "planned-stop");
    assert.equal(d.desired.removeFailed, false);
  }
  assert.ok(p.isDraining(n2));
  unhealthy.add("node/worker-node2");
  assert.deepEqual(p.onFailure(fail("node/worker-node2", "offline")), [], "gone as announced");
  assert.equal(p.node(n2).fenced, false);
  unhealthy.delete("node/worker-node2");
  assert.equal(p.onRecovered(n2), undefined, "back: nothing to unfence");
  assert.ok(!p.isDraining(n2));
});

Deno.test("mass expiry: promotions to healthy standbys go out, fences and pod removal wait", () => {
  const down = new Set(["node/worker-node1", "node/worker-node2"]);
  const p = new FailoverPolicy({ topology: topo, isHealthy: (t) => !down.has(t.label) });
  const ds = p.onFailures([fail("node/worker-node1"), fail("node/worker-node2")]);
  // worker-node1 hosts no workload (nothing to fence); worker-node2's fence waits
  assert.deepEqual(kinds(ds), ["fence-pending", "failover", "failover"]);
  assert.ok(ds[0].kind === "fence-pending" && ds[0].why === "mass-expiry");
  for (const d of ds) {
    if (d.kind === "failover") {
      assert.equal(d.desired.removeFailed, false, "pods wait for the confirmation");
      assert.equal(d.desired.epoch, 1, "the data-plane switch is not delayed");
    }
  }
  const confirmed = p.confirm(topo.node("worker-node2")!);
  assert.equal(confirmed.node?.fenced, true);
  assert.deepEqual(confirmed.workloads.map((w) => [w.workload.name, w.removeFailed]), [
    ["lane-detection", true],
    ["pose-estimation", true],
  ]);
});

Deno.test("a standby that expires in the same batch is not promoted", () => {
  const down = new Set(["node/worker-node2", "node/worker-node3"]);
  const p = new FailoverPolicy({ topology: topo, isHealthy: (t) => !down.has(t.label) });
  const ds = p.onFailures([fail("node/worker-node2"), fail("node/worker-node3")]);
  assert.ok(ds.filter((d) => d.kind === "failover").length === 0, "nothing promoted");
  assert.ok(ds.some((d) => d.kind === "blocked" && d.workload === lane));
});

Deno.test("a standby not ready in the cluster blocks the failover and says why", () => {
  const p = new FailoverPolicy({
    topology: topo,
    isHealthy: () => true,
    isReady: (pl) =>
      pl.deployment === "lane-standby"
        ? { ready: false, why: "no pod of lane-standby on worker-node3" }
        : { ready: true },
  });
  const blocked = p.onFailure(fail("app/lane-detection/worker-node2"));
  assert.equal(blocked[0].kind, "blocked");
  assert.ok(blocked[0].kind === "blocked");
  assert.match(blocked[0].why, /not ready in the cluster: no pod of lane-standby on worker-node3/);
});

Deno.test("undo: a fenced node OK again is unfenced; the next fault of the new active fails back", () => {
  const down = new Set<string>();
  const p = new FailoverPolicy({ topology: topo, isHealthy: (t) => !down.has(t.label) });
  const n2 = topo.node("worker-node2")!;
  down.add("node/worker-node2");
  p.onFailure(fail("node/worker-node2"));
  assert.equal(p.node(n2).fenced, true);
  // a fenced standby is not trusted even with heartbeats
  down.delete("node/worker-node2");
  const blocked = p.onFailure(fail("app/lane-detection/worker-node3"));
  assert.ok(blocked[0].kind === "blocked" && /node worker-node2 is fenced/.test(blocked[0].why));
  const unfenced = p.onRecovered(n2);
  assert.deepEqual([unfenced?.fenced, unfenced?.cordon, unfenced?.taint], [false, false, false]);
  const back = p.onFailure(fail("node/worker-node3")).find((d) => d.kind === "failover");
  assert.ok(back && back.kind === "failover");
  assert.equal(back.desired.active, "primary");
  assert.equal(back.desired.epoch, 2);
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
  // the failed node is fenced: no promotion back onto it until it is unfenced
  const blocked = p.onFailure(fail("node/worker-node3")).find((d) => d.kind === "blocked");
  assert.ok(blocked && blocked.kind === "blocked" && /worker-node2 is fenced/.test(blocked.why));
  p.onRecovered(topo.node("worker-node2")!);
  p.onRecovered(topo.node("worker-node3")!);
  // the new active's node fails later: back to the primary with the next epoch
  const back = p.onFailure(fail("node/worker-node3")).find((d) =>
    d.kind === "failover" && d.desired.workload === lane
  );
  assert.ok(back && back.kind === "failover");
  assert.equal(back.desired.epoch, 5);
  assert.equal(back.desired.active, "primary");
});

Deno.test("epochs are bounded: nothing above MAX_EPOCH is adopted or issued; at the bound the failover is blocked", () => {
  const p = policy();
  for (const epoch of [MAX_EPOCH + 1, 2 ** 53 - 1, 2 ** 53]) {
    assert.equal(p.adopt(lane, { epoch, active: "standby", reason: "app-expired" }), undefined);
  }
  assert.equal(p.workload(lane).epoch, 0);
  assert.ok(p.adopt(lane, { epoch: MAX_EPOCH - 1, active: "standby", reason: "app-expired" }));
  const last = p.onFailure(fail("app/lane-detection/worker-node3")).find((d) =>
    d.kind === "failover"
  );
  assert.ok(last && last.kind === "failover" && last.desired.epoch === MAX_EPOCH, "up to it");
  p.onRecovered(topo.node("worker-node3")!);
  const blocked = p.onFailure(fail("app/lane-detection/worker-node2")).find((d) =>
    d.kind === "blocked"
  );
  assert.ok(blocked && blocked.kind === "blocked" && /cannot grow/.test(blocked.why));
  assert.equal(p.workload(lane).epoch, MAX_EPOCH);
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

Deno.test("a hung node: its sensor expires first and moves the workloads; the node's own expiry then fences at once", () => {
  const down = new Set<string>();
  const p = new FailoverPolicy({ topology: topo, isHealthy: (t) => !down.has(t.label) });
  down.add("sensor/camera-node2");
  down.add("sensor/lidar-node2");
  const first = p.onFailures([
    { ...fail("sensor/camera-node2"), atMs: 150 },
    { ...fail("sensor/lidar-node2"), atMs: 150 },
  ]);
  assert.equal(first.filter((d) => d.kind === "failover").length, 2, "both moved");
  down.add("node/worker-node2");
  // the node's timeout (30 ms) later: the same incident
  const second = p.onFailure({ ...fail("node/worker-node2"), atMs: 175 });
  assert.deepEqual(kinds(second), ["fence"], "same incident: no confirmation wait");
  // a standby-only node expiring long after: the wait applies
  const later = p.onFailure({ ...fail("node/worker-node3"), atMs: 5000 });
  assert.ok(later.some((d) => d.kind === "blocked" || d.kind === "fence-pending"));
});
