import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import { FailoverPolicy } from "./policy.ts";
import { targetsOf } from "./targets.ts";

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
    },
  ],
});

function fail(id: string, cause: Transition["cause"] = "deadline"): Transition {
  const target = targetsOf(config).find((t) => t.id === id)!;
  assert.ok(target, id);
  return {
    target,
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
  return new FailoverPolicy({ config, isHealthy: (id) => !unhealthy.includes(id) });
}

Deno.test("node expiry fails over every workload active on it and fences the node", () => {
  const p = policy();
  const all = p.onFailure(fail("node/worker-node2"));
  const fences = all.filter((d) => d.kind === "fence");
  assert.equal(fences.length, 1);
  assert.deepEqual(fences[0].plan, {
    node: "worker-node2",
    reason: "node-expired",
    cordon: true,
    taint: true,
    events: true,
    trigger: fences[0].plan.trigger,
  });
  const decisions = all.filter((d) => d.kind !== "fence");
  assert.equal(decisions.length, 2);
  for (const d of decisions) {
    assert.equal(d.kind, "failover");
    if (d.kind !== "failover") continue;
    assert.equal(d.plan.epoch, 1);
    assert.equal(d.plan.failed.node, "worker-node2");
    assert.equal(d.plan.active.node, "worker-node3");
    assert.equal(d.plan.reason, "node-expired");
    assert.ok(!d.plan.actions.includes("cordon"), "node actions live in the fence plan");
    assert.equal(d.plan.trigger.lastHeartbeatAtMs, 470);
  }
  assert.deepEqual(p.state("lane-detection"), { active: "standby", epoch: 1 });
});

Deno.test("a repeated expiry of the same node plans no failover, only an idempotent fence", () => {
  const p = policy();
  p.onFailure(fail("node/worker-node2"));
  assert.deepEqual(p.onFailure(fail("node/worker-node2")).map((d) => d.kind), ["fence"]);
});

Deno.test("a node whose workloads already moved (sensor expiry) is still fenced on its own expiry", () => {
  const p = policy();
  p.onFailure(fail("sensor/lidar-node2"));
  p.onFailure(fail("app/lane-detection/worker-node2"));
  const d = p.onFailure(fail("node/worker-node2"));
  assert.deepEqual(d.map((x) => x.kind), ["fence"]);
});

Deno.test("sensor expiry fails over only the workloads needing it, without node actions", () => {
  const decisions = policy().onFailure(fail("sensor/lidar-node2"));
  assert.equal(decisions.length, 1);
  const [d] = decisions;
  assert.ok(d.kind === "failover");
  assert.equal(d.plan.workload, "pose-estimation");
  assert.equal(d.plan.reason, "sensor-expired:lidar-node2");
  assert.ok(!d.plan.actions.includes("cordon") && !d.plan.actions.includes("taint"));
  assert.ok(d.plan.actions.includes("deletePods"));
});

Deno.test("app expiry of the active instance fails it over; the standby's app does not", () => {
  const p = policy();
  assert.deepEqual(p.onFailure(fail("app/lane-detection/worker-node3")), []);
  const [d] = p.onFailure(fail("app/lane-detection/worker-node2"));
  assert.ok(d.kind === "failover");
  assert.equal(d.plan.reason, "app-expired");
});

Deno.test("never promote a standby whose node, sensor or app is not OK", () => {
  for (
    const bad of ["node/worker-node3", "sensor/camera-node3", "app/lane-detection/worker-node3"]
  ) {
    const p = policy([bad]);
    const lane = p.onFailure(fail("node/worker-node2")).find((d) =>
      d.workload === "lane-detection"
    );
    assert.ok(lane && lane.kind === "blocked", bad);
    assert.match(lane.why, new RegExp(bad));
    assert.deepEqual(p.state("lane-detection"), { active: "primary", epoch: 0 });
  }
});

Deno.test("observed state (annotations, retained promotions) is adopted only when not older", () => {
  const p = policy();
  assert.ok(p.observe("lane-detection", 4, "worker-node3"));
  assert.deepEqual(p.state("lane-detection"), { active: "standby", epoch: 4 });
  assert.ok(!p.observe("lane-detection", 3, "worker-node2"), "older epoch ignored");
  assert.deepEqual(
    p.onFailure(fail("node/worker-node2")).filter((d) =>
      d.kind !== "fence" &&
      d.kind === "failover" && d.plan.workload === "lane-detection"
    ),
    [],
  );
  // the standby's node fails later: fail back to the primary with the next epoch
  const [back] = p.onFailure(fail("node/worker-node3")).filter((d) => d.kind === "failover");
  assert.ok(back && back.kind === "failover");
  assert.equal(back.plan.workload, "lane-detection");
  assert.equal(back.plan.epoch, 5);
  assert.equal(back.plan.active.node, "worker-node2");
});

Deno.test("offline and never-seen causes name the reason", () => {
  const [fence, a] = policy().onFailure(fail("node/worker-node2", "offline"));
  assert.ok(fence.kind === "fence" && fence.plan.reason === "node-offline", "fence comes first");
  assert.ok(a.kind === "failover" && a.plan.reason === "node-offline");
  const [, b] = policy().onFailure(fail("node/worker-node2", "never-seen"));
  assert.ok(b.kind === "failover" && b.plan.reason === "node-never-seen");
});
