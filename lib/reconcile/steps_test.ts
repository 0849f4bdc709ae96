import assert from "node:assert/strict";
import {
  failover,
  FakeCluster,
  FakeKubeApi,
  fence,
  seededCluster,
  testTopology,
} from "../../tests/fakes/fake_kube.ts";
import { ANNOTATIONS } from "./annotations.ts";
import {
  createdBeforeFailover,
  describeStep,
  fenceNodePatch,
  higherObservedEpochs,
  persistEpochPatch,
  type PlanContext,
  planNode,
  planWorkload,
  type Step,
  stepEvent,
  unfenceNodePatch,
} from "./steps.ts";

const ctx: PlanContext = { taintKey: "sdv-failover.io/unreachable", supervisorId: "sup-a" };

/** Applies steps through the fake API exactly as the reconciler builds the bodies. */
async function apply(api: FakeKubeApi, cluster: FakeCluster, steps: Step[]): Promise<void> {
  for (const s of steps) {
    if (s.kind === "persistEpoch") {
      await api.patchDeployment(
        s.workload.namespace,
        s.placement.deployment,
        persistEpochPatch(s),
        "merge",
      );
    } else if (s.kind === "fenceNode") {
      await api.patchNode(
        s.node.name,
        fenceNodePatch(s, cluster.node(s.node.name), ctx),
        "strategic",
      );
    } else if (s.kind === "unfenceNode") {
      await api.patchNode(
        s.node.name,
        unfenceNodePatch(s, cluster.node(s.node.name), ctx),
        "strategic",
      );
    } else if (s.kind === "deletePod") {
      await api.deletePod(s.workload.namespace, s.pod, 0, undefined, { uid: s.uid });
    }
  }
}

const actions = (steps: Step[]) =>
  steps.map((s) => `${describeStep(s).action} ${describeStep(s).object}`);

Deno.test("planWorkload plans nothing at epoch 0", () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const lane = t.workload("lane")!;
  assert.deepEqual(planWorkload(failover(lane, { epoch: 0, active: "primary" }), cluster, ctx), []);
});

Deno.test("a node failover plans marks, a fence barrier and the deletes; re-planning after applying is empty", async () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const api = new FakeKubeApi(cluster);
  const lane = t.workload("lane")!;
  const desired = failover(lane);
  const steps = planWorkload(desired, cluster, ctx);
  assert.deepEqual(actions(steps), [
    "markActive deployment/adas/lane-standby",
    "markFailed deployment/adas/lane-primary",
    "awaitFence node/worker-node1",
    "deletePods pod/adas/lane-primary-pod",
  ]);
  const node = fence(t, "worker-node1");
  const nodeSteps = planNode(node, cluster, ctx);
  assert.deepEqual(actions(nodeSteps), ["fenceNode node/worker-node1"]);
  await apply(api, cluster, [...nodeSteps, ...steps]);
  assert.deepEqual(planNode(node, cluster, ctx), []);
  assert.deepEqual(planWorkload(desired, cluster, ctx), []);
  const d = cluster.deployment("adas", "lane-primary")!;
  assert.equal(d.annotations[ANNOTATIONS.epoch], "1");
  assert.equal(d.annotations[ANNOTATIONS.role], "failed");
  assert.equal(d.annotations[ANNOTATIONS.activeNode], "worker-node2");
  assert.equal(d.annotations[ANNOTATIONS.failedNode], "worker-node1");
  assert.equal(d.labels[ANNOTATIONS.role], "failed");
  assert.equal(cluster.deployment("adas", "lane-standby")!.labels[ANNOTATIONS.role], "active");
});

Deno.test("no awaitFence when the failed node is already fenced or the fault is not the node", () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const lane = t.workload("lane")!;
  assert.deepEqual(
    actions(
      planWorkload(failover(lane, { nodeFault: false, reason: "app-expired" }), cluster, ctx),
    ),
    [
      "markActive deployment/adas/lane-standby",
      "markFailed deployment/adas/lane-primary",
      "deletePods pod/adas/lane-primary-pod",
    ],
  );
  cluster.mutateNode("worker-node1", (n) => n.unschedulable = true);
  assert.ok(!planWorkload(failover(lane), cluster, ctx).some((s) => s.kind === "awaitFence"));
  // An injected fence check overrides the cache.
  const pending = planWorkload(failover(lane), cluster, { ...ctx, nodeFenced: () => false });
  assert.ok(pending.some((s) => s.kind === "awaitFence"));
});

Deno.test("the epoch is persisted even when the workload does not allow markDeployments", async () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const api = new FakeKubeApi(cluster);
  const radar = t.workload("radar")!;
  assert.ok(!radar.actions.has("markDeployments"));
  const steps = planWorkload(failover(radar, { epoch: 4 }), cluster, ctx);
  const persists = steps.filter((s) => s.kind === "persistEpoch");
  assert.equal(persists.length, 2);
  for (const s of persists) {
    const body = persistEpochPatch(s) as { metadata: { labels?: unknown; annotations: object } };
    assert.equal(body.metadata.labels, undefined);
    assert.equal((body.metadata.annotations as Record<string, string>)[ANNOTATIONS.epoch], "4");
  }
  await apply(api, cluster, steps);
  for (const name of ["radar-primary", "radar-standby"]) {
    const d = cluster.deployment("adas", name)!;
    assert.equal(d.annotations[ANNOTATIONS.epoch], "4");
    assert.equal(d.labels[ANNOTATIONS.role], undefined);
  }
  assert.deepEqual(planWorkload(failover(radar, { epoch: 4 }), cluster, ctx), []);
  assert.ok(api.calls.every((c) => c.op !== "patchDeployment" || !("spec" in c.body!)));
});

Deno.test("an epoch is never lowered: a higher observed epoch plans nothing and is reported", () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const lane = t.workload("lane")!;
  cluster.mutateDeployment("adas", "lane-standby", (d) => d.annotations[ANNOTATIONS.epoch] = "7");
  const desired = failover(lane, { epoch: 5 });
  assert.deepEqual(planWorkload(desired, cluster, ctx), []);
  const higher = higherObservedEpochs(desired, cluster);
  assert.equal(higher.length, 1);
  assert.equal(higher[0].placement, lane.standby);
  assert.equal(higher[0].epoch, 7);
  // An equal epoch with other content is rewritten (desired wins at equal epoch).
  assert.equal(planWorkload(failover(lane, { epoch: 7 }), cluster, ctx).length, 4);
});

Deno.test("only one Deployment annotated: the other is still planned; pods already deleting are not", () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const lane = t.workload("lane")!;
  const desired = failover(lane, { nodeFault: false });
  const body = persistEpochPatch(
    planWorkload(desired, cluster, ctx).find((s) => s.kind === "persistEpoch")! as never,
  ) as { metadata: { annotations: Record<string, string>; labels: Record<string, string> } };
  cluster.mutateDeployment("adas", "lane-standby", (d) => {
    Object.assign(d.annotations, body.metadata.annotations);
    Object.assign(d.labels, body.metadata.labels);
  });
  cluster.addPod("adas", "lane-primary-pod2", "lane-primary", "worker-node1");
  cluster.addPod("adas", "lane-primary-elsewhere", "lane-primary", "worker-node3");
  const p = cluster.server.pods.get("adas/lane-primary-pod")!;
  p.deleting = true;
  p.resourceVersion = cluster.nextRv();
  cluster.flush();
  assert.deepEqual(actions(planWorkload(desired, cluster, ctx)), [
    "markFailed deployment/adas/lane-primary",
    "deletePods pod/adas/lane-primary-pod2",
  ]);
});

Deno.test("planNode adds only what is missing and never claims an operator's cordon", () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  cluster.mutateNode("worker-node1", (n) => {
    n.unschedulable = true; // the operator's cordon
    n.taints = [{
      key: "node.kubernetes.io/unreachable",
      effect: "NoExecute",
      timeAdded: "2026-01-01T00:00:00Z",
    }];
  });
  const steps = planNode(fence(t, "worker-node1"), cluster, ctx);
  assert.equal(steps.length, 1);
  const step = steps[0];
  assert.ok(step.kind === "fenceNode" && !step.cordon && step.taint);
  const observed = cluster.node("worker-node1")!;
  const body = fenceNodePatch(step, observed, ctx) as {
    metadata: { annotations: Record<string, string>; resourceVersion?: string };
    spec: { unschedulable?: boolean; taints?: unknown[] };
  };
  assert.equal(body.spec.unschedulable, undefined);
  assert.equal(body.metadata.annotations[ANNOTATIONS.cordonedBy], undefined);
  assert.equal(body.metadata.annotations[ANNOTATIONS.fenceReason], "node-expired");
  assert.equal(body.metadata.resourceVersion, observed.resourceVersion);
  assert.deepEqual(body.spec.taints, [
    {
      key: "node.kubernetes.io/unreachable",
      effect: "NoExecute",
      timeAdded: "2026-01-01T00:00:00Z",
    },
    { key: ctx.taintKey, value: "sup-a", effect: "NoExecute" },
  ]);
  // Cordon only: no taint list, no precondition, our cordon annotation.
  const fresh = seededCluster(t);
  const cordonOnly = planNode(fence(t, "worker-node2", { taint: false }), fresh, ctx)[0];
  assert.ok(cordonOnly.kind === "fenceNode");
  const b2 = fenceNodePatch(cordonOnly, fresh.node("worker-node2"), ctx) as {
    metadata: { annotations: Record<string, string>; resourceVersion?: string };
    spec: { unschedulable?: boolean; taints?: unknown[] };
  };
  assert.deepEqual(b2.spec, { unschedulable: true });
  assert.equal(b2.metadata.annotations[ANNOTATIONS.cordonedBy], "sup-a");
  assert.equal(b2.metadata.resourceVersion, undefined);
  // Nothing of ours on the node: un-fencing plans nothing (the operator's cordon and taint stay);
  // missing nodes plan nothing.
  assert.deepEqual(planNode(fence(t, "worker-node1", { fenced: false }), cluster, ctx), []);
  assert.deepEqual(
    planNode(
      { ...fence(t, "worker-node1"), node: { ...t.node("worker-node1")!, name: "gone" } },
      cluster,
      ctx,
    ),
    [],
  );
});

Deno.test("planNode un-fence removes only what we added, keeps an operator's cordon and taints", async () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const api = new FakeKubeApi(cluster);
  const k3sTaint = {
    key: "node.kubernetes.io/unreachable",
    effect: "NoExecute",
    timeAdded: "2026-01-01T00:00:00Z",
  };
  // worker-node1: fenced by us (cordon + taint), with another taint added before and after.
  cluster.mutateNode("worker-node1", (n) => n.taints = [k3sTaint]);
  await apply(api, cluster, planNode(fence(t, "worker-node1"), cluster, ctx));
  cluster.mutateNode("worker-node1", (n) => {
    n.taints.push({ key: "operator/maintenance", value: "x", effect: "NoSchedule" });
    n.annotations[ANNOTATIONS.unfenceRequested] = "2026-12-02T08:00:00.000Z";
    n.annotations["operator/note"] = "keep";
  });
  const unfenced = fence(t, "worker-node1", { fenced: false, reason: undefined });
  const steps = planNode(unfenced, cluster, ctx);
  assert.equal(steps.length, 1);
  const step = steps[0];
  assert.ok(step.kind === "unfenceNode");
  assert.deepEqual([step.untaint, step.uncordon], [true, true]);
  assert.deepEqual(step.annotations.sort(), [
    ANNOTATIONS.cordonedBy,
    ANNOTATIONS.fenceReason,
    ANNOTATIONS.unfenceRequested,
  ]);
  const observed = cluster.node("worker-node1")!;
  const body = unfenceNodePatch(step, observed, ctx) as {
    metadata: { annotations: Record<string, null>; resourceVersion?: string };
    spec: { unschedulable?: boolean; taints?: unknown[] };
  };
  assert.equal(body.metadata.resourceVersion, observed.resourceVersion);
  assert.equal(body.spec.unschedulable, false);
  assert.deepEqual(body.spec.taints, [
    k3sTaint,
    { key: "operator/maintenance", value: "x", effect: "NoSchedule" },
  ]);
  assert.deepEqual(Object.values(body.metadata.annotations), [null, null, null]);
  assert.deepEqual(describeStep(step), {
    action: "unfenceNode",
    object: "node/worker-node1",
    detail:
      "remove taint NoExecute + uncordon + remove sdv-failover.io/cordoned-by, sdv-failover.io/fence-reason, sdv-failover.io/unfence-requested",
  });
  await apply(api, cluster, steps);
  const after = cluster.node("worker-node1")!;
  assert.equal(after.unschedulable, false);
  assert.deepEqual(after.taints.map((x) => x.key), [k3sTaint.key, "operator/maintenance"]);
  assert.deepEqual(after.annotations, { "operator/note": "keep" });
  assert.deepEqual(planNode(unfenced, cluster, ctx), []); // idempotent
  // Fenced again: our cordon and taint come back.
  await apply(api, cluster, planNode(fence(t, "worker-node1"), cluster, ctx));
  assert.equal(cluster.node("worker-node1")!.unschedulable, true);
  assert.equal(cluster.node("worker-node1")!.annotations[ANNOTATIONS.cordonedBy], "sup-a");

  // worker-node2: cordoned by the operator first, then tainted by us: the cordon stays.
  cluster.mutateNode("worker-node2", (n) => n.unschedulable = true);
  await apply(api, cluster, planNode(fence(t, "worker-node2"), cluster, ctx));
  assert.equal(cluster.node("worker-node2")!.annotations[ANNOTATIONS.cordonedBy], undefined);
  const s2 = planNode(fence(t, "worker-node2", { fenced: false }), cluster, ctx);
  assert.ok(s2[0].kind === "unfenceNode" && s2[0].untaint && !s2[0].uncordon);
  const b2 = unfenceNodePatch(s2[0], cluster.node("worker-node2"), ctx) as {
    spec: { unschedulable?: boolean; taints?: unknown[] };
  };
  assert.deepEqual(b2.spec, { taints: [] });
  await apply(api, cluster, s2);
  assert.equal(cluster.node("worker-node2")!.unschedulable, true);
  assert.deepEqual(cluster.node("worker-node2")!.taints, []);
  assert.equal(stepEvent(s2[0])!.reason, "FailoverUnfenced");
  assert.equal(stepEvent(s2[0])!.type, "Normal");

  // worker-node3: only a stale request annotation: removed, no taint list, no precondition, no Event.
  cluster.mutateNode("worker-node3", (n) => n.annotations[ANNOTATIONS.unfenceRequested] = "x");
  const s3 = planNode(fence(t, "worker-node3", { fenced: false }), cluster, ctx);
  assert.ok(s3[0].kind === "unfenceNode" && !s3[0].untaint && !s3[0].uncordon);
  const b3 = unfenceNodePatch(s3[0], cluster.node("worker-node3"), ctx) as {
    metadata: Record<string, unknown>;
    spec: object;
  };
  assert.deepEqual(b3, {
    metadata: { annotations: { [ANNOTATIONS.unfenceRequested]: null } },
    spec: {},
  });
  assert.equal(stepEvent(s3[0]), undefined);
});

Deno.test("describeStep and stepEvent name the actions and Events", () => {
  const t = testTopology();
  const cluster = seededCluster(t);
  const lane = t.workload("lane")!;
  const radar = t.workload("radar")!;
  const steps = planWorkload(failover(lane), cluster, ctx);
  assert.deepEqual(steps.map((s) => stepEvent(s)?.reason), [
    "FailoverPromoted",
    "FailoverFenced",
    undefined,
    "FailoverPodsDeleted",
  ]);
  assert.match(stepEvent(steps[0])!.message, /workload lane, ASIL D, FTTI 300 ms/);
  // radar does not allow events.
  assert.ok(planWorkload(failover(radar), cluster, ctx).every((s) => stepEvent(s) === undefined));
  const nodeStep = planNode(fence(t, "worker-node1"), cluster, ctx)[0];
  const ev = stepEvent(nodeStep)!;
  assert.equal(ev.reason, "FailoverCordonedTainted");
  assert.equal(ev.involved.kind, "Node");
  assert.match(ev.message, /workload lane/);
  assert.doesNotMatch(ev.message, /workload radar/);
  // worker-node3 only hosts radar (no events).
  assert.equal(stepEvent(planNode(fence(t, "worker-node3"), cluster, ctx)[0]), undefined);
  assert.deepEqual(describeStep(nodeStep), {
    action: "fenceNode",
    object: "node/worker-node1",
    detail: "unschedulable + taint NoExecute (node-expired)",
  });
});

Deno.test("only the failed instance is removed: a replacement created after the decision stays", () => {
  assert.equal(createdBeforeFailover("2026-12-02T00:00:00Z", "2026-12-02T00:00:10.000Z"), true);
  assert.equal(
    createdBeforeFailover("2026-12-02T00:00:10Z", "2026-12-02T00:00:10.400Z"),
    false,
    "same second as the decision: a replacement (second-resolution timestamps)",
  );
  assert.equal(createdBeforeFailover("2026-12-02T00:00:11Z", "2026-12-02T00:00:10.000Z"), false);
  assert.equal(createdBeforeFailover(undefined, undefined), false, "no decision time: none");
  assert.equal(createdBeforeFailover("garbage", "2026-12-02T00:00:10.000Z"), false);
  const t = testTopology();
  const cluster = seededCluster(t);
  const lane = t.workload("lane")!;
  const pods = cluster.pods(lane.namespace, { app: lane.primary.deployment }, "worker-node1");
  assert.ok(pods.length > 0, "seeded pod of the failed instance");
  const desired = failover(lane, { nodeFault: false });
  const before = planWorkload(desired, cluster, ctx).filter((s) => s.kind === "deletePod");
  assert.equal(before.length, pods.length, "the old instance is removed");
  assert.deepEqual(
    planWorkload({ ...desired, failedAt: undefined }, cluster, ctx).filter((s) =>
      s.kind === "deletePod"
    ),
    [],
    "unknown decision time: nothing destructive",
  );
});
