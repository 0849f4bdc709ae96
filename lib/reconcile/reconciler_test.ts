import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import {
  failover,
  type FakeCluster,
  FakeKubeApi,
  fence,
  seededCluster,
  testTopology,
  timeoutError,
} from "../../tests/fakes/fake_kube.ts";
import { ClusterSchema } from "../config/schema.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import type { NodeTarget, Topology, Workload } from "../topology/topology.ts";
import { ANNOTATIONS } from "./annotations.ts";
import { KubeReconciler, type ReconcileReport } from "./reconciler.ts";
import { persistEpochPatch, planWorkload } from "./steps.ts";

const TAINT = "sdv-failover.io/unreachable";

interface Setup {
  t: Topology;
  cluster: FakeCluster;
  api: FakeKubeApi;
  clock: FakeClock;
  reports: ReconcileReport[];
  r: KubeReconciler;
  lane: Workload;
  /** Unfence requests reported, as `node requestedAt`. */
  unfenceRequests: string[];
}

async function setup(
  options: {
    retries?: number;
    cap?: number;
    cluster?: (t: Topology) => FakeCluster;
    start?: boolean;
    radarActions?: string[];
    onUnfenceRequest?: boolean;
  } = {},
): Promise<Setup> {
  const t = testTopology({ radarActions: options.radarActions });
  const cluster = (options.cluster ?? seededCluster)(t);
  const api = new FakeKubeApi(cluster);
  const clock = new FakeClock(0);
  const reports: ReconcileReport[] = [];
  const unfenceRequests: string[] = [];
  const r = new KubeReconciler({
    topology: t,
    cluster: ClusterSchema.parse({ retries: options.retries ?? 0, retryBackoffMs: 20 }),
    supervisorId: "sup-a",
    api,
    view: cluster,
    clock,
    wallNowMs: () => Date.parse("2026-12-02T07:00:00.000Z"),
    onReport: (report) => reports.push(report),
    maxRequeueDelayMs: options.cap,
    ...(options.onUnfenceRequest
      ? {
        onUnfenceRequest: (node: NodeTarget, at: string) =>
          unfenceRequests.push(`${node.name} ${at}`),
      }
      : {}),
  });
  if (options.start !== false) await r.start(new AbortController().signal);
  return { t, cluster, api, clock, reports, r, lane: t.workload("lane")!, unfenceRequests };
}

const index = (api: FakeKubeApi, op: string, name?: string) =>
  api.calls.findIndex((c) => c.op === op && c.result === "ok" && (!name || c.name === name));

/** Advances the fake clock by `ms` and lets the passes it starts finish. */
async function advance(s: Setup, ms: number): Promise<void> {
  s.clock.advance(ms);
  await s.r.whenIdle();
}

Deno.test("fast path: a node failover converges in one pass per key, writes issued synchronously, fence before delete", async () => {
  const s = await setup();
  const { t, api, cluster, r, lane } = s;
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  // No timer, no queue: the writes are already issued.
  assert.deepEqual(api.calls.map((c) => `${c.op} ${c.name}`), [
    "patchNode worker-node1",
    "patchDeployment lane-standby",
    "patchDeployment lane-primary",
  ]);
  assert.equal(r.queueDepth, 2);
  await r.whenIdle();
  assert.equal(r.queueDepth, 0);
  assert.ok(index(api, "patchNode") < index(api, "deletePod"));
  const node = cluster.node("worker-node1")!;
  assert.equal(node.unschedulable, true);
  assert.deepEqual(node.taints, [{ key: TAINT, value: "sup-a", effect: "NoExecute" }]);
  assert.equal(node.annotations[ANNOTATIONS.cordonedBy], "sup-a");
  assert.equal(cluster.pods("adas", { app: "lane-primary" }, "worker-node1").length, 0);
  assert.equal(cluster.deployment("adas", "lane-primary")!.annotations[ANNOTATIONS.epoch], "1");
  assert.deepEqual(api.ok("createEvent").map((c) => c.name).sort(), [
    "FailoverCordonedTainted",
    "FailoverFenced",
    "FailoverPodsDeleted",
    "FailoverPromoted",
  ]);
  const event = api.ok("createEvent").find((c) => c.name === "FailoverPromoted")!.body!;
  assert.match(String(event.message), /workload lane, ASIL D, FTTI 300 ms/);
  assert.ok("firstTimestamp" in event && "lastTimestamp" in event && !("eventTime" in event));
  assert.ok(s.reports.every((rep) => rep.converged && rep.attempt === 1));
  const wl = s.reports.find((rep) => rep.key.kind === "workload")!;
  assert.deepEqual(
    wl.results.filter((x) => !x.action.startsWith("event:")).map((x) => x.action).sort(),
    [
      "awaitFence",
      "deletePods",
      "markActive",
      "markFailed",
    ],
  );
  // Every later set of the same desired state writes nothing.
  const before = api.calls.length;
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  await r.whenIdle();
  assert.equal(api.calls.length, before);
  const o = r.observed();
  assert.deepEqual(o.workloads.get(lane), {
    epoch: 1,
    active: "standby",
    reason: "node-expired",
    failedAt: "2026-12-02T00:00:10.000Z",
  });
  assert.deepEqual(o.fencedNodes.get(t.node("worker-node1")!), {
    tainted: true,
    cordonedByUs: true,
    reason: "node-expired",
  });
  await r.close();
});

Deno.test("pods are not deleted before the fence is acknowledged, and are deleted right after", async () => {
  const s = await setup();
  const { t, api, r, lane } = s;
  const gate = api.hold("patchNode");
  r.setWorkload(failover(lane)); // before the node's desired state is known
  r.setNode(fence(t, "worker-node1"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(gate.held, 1);
  assert.equal(api.calls.filter((c) => c.op === "deletePod").length, 0);
  const first = s.reports.find((rep) => rep.key.kind === "workload")!;
  assert.equal(first.converged, false);
  assert.ok(first.results.some((x) => x.action === "awaitFence" && x.outcome === "failed"));
  gate.release();
  await r.whenIdle(); // no clock advance: the fence ack itself re-reconciles the workload
  assert.equal(api.ok("deletePod").length, 1);
  assert.ok(index(api, "patchNode") < index(api, "deletePod"));
  assert.ok(s.reports.at(-1)!.converged);
  await r.close();
});

Deno.test("409, 429, 5xx and timeouts are requeued with growing delays, then converge; done steps are not repeated", async () => {
  const s = await setup({ radarActions: ["promote", "markDeployments"] });
  const { api, r, lane } = s;
  for (const e of [409, 429, 503, timeoutError]) {
    api.fail("patchDeployment", e, 1, "lane-standby");
  }
  r.setWorkload(failover(lane, { removeFailed: false, nodeFault: false }));
  await r.whenIdle();
  const delays: (number | undefined)[] = [s.reports.at(-1)!.requeueAfterMs];
  for (let i = 0; i < 4; i++) {
    await advance(s, s.reports.at(-1)!.requeueAfterMs!);
    delays.push(s.reports.at(-1)!.requeueAfterMs);
  }
  assert.deepEqual(delays, [20, 40, 80, 160, undefined]);
  assert.deepEqual(s.reports.map((x) => x.attempt), [1, 2, 3, 4, 5]);
  assert.ok(s.reports.at(-1)!.converged);
  assert.ok(
    s.reports.slice(0, -1).every((x) => !x.converged && x.results.every((y) => !y.terminal)),
  );
  assert.equal(api.calls.filter((c) => c.name === "lane-primary").length, 1);
  assert.equal(api.calls.filter((c) => c.name === "lane-standby").length, 5);
  assert.equal(s.clock.pendingTimers, 0);
  await r.close();
});

Deno.test("quick retries within a pass use cluster.retries and the clock", async () => {
  const s = await setup({ retries: 2 });
  const { api, r, lane } = s;
  api.fail("patchDeployment", 503, 2, "lane-standby");
  r.setWorkload(failover(lane, { removeFailed: false, nodeFault: false }));
  await new Promise((resolve) => setTimeout(resolve, 0));
  s.clock.advance(20);
  await new Promise((resolve) => setTimeout(resolve, 0));
  s.clock.advance(40);
  await r.whenIdle();
  const rep = s.reports.at(-1)!;
  assert.ok(rep.converged);
  assert.equal(rep.results.find((x) => x.action === "markActive")!.attempts, 3);
  assert.equal(rep.results.find((x) => x.action === "markActive")!.doneAtMs, 60);
  await r.close();
});

Deno.test("a terminal 403 is reported terminal and requeued at the cap; delays never exceed the cap", async () => {
  const s = await setup({ cap: 100 });
  const { t, api, r } = s;
  api.fail("patchNode", 403, 2);
  r.setNode(fence(t, "worker-node2"));
  await r.whenIdle();
  const rep = s.reports.at(-1)!;
  assert.equal(rep.converged, false);
  assert.equal(rep.results[0].terminal, true);
  assert.equal(rep.results[0].attempts, 1);
  assert.equal(rep.requeueAfterMs, 100);
  await advance(s, 99);
  assert.equal(s.reports.length, 1);
  await advance(s, 1);
  assert.equal(s.reports.length, 2);
  assert.equal(s.reports[1].requeueAfterMs, 100);
  await advance(s, 100);
  assert.ok(s.reports[2].converged);
  // Retryable failures double up to the cap.
  api.fail("patchNode", 500, 5);
  r.setNode(fence(t, "worker-node3"));
  await r.whenIdle();
  for (let i = 0; i < 5; i++) await advance(s, s.reports.at(-1)!.requeueAfterMs!);
  assert.deepEqual(s.reports.slice(3).map((x) => x.requeueAfterMs), [
    20,
    40,
    80,
    100,
    100,
    undefined,
  ]);
  await r.close();
});

Deno.test("partial failure: only the remainder is converged on the next pass", async () => {
  const s = await setup();
  const { t, api, cluster, r, lane } = s;
  cluster.addPod("adas", "lane-primary-pod2", "lane-primary", "worker-node1");
  api.fail("deletePod", 500, 1, "lane-primary-pod2");
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  await r.whenIdle();
  const wl = s.reports.filter((x) => x.key.kind === "workload");
  assert.equal(wl.at(-1)!.converged, false);
  await advance(s, wl.at(-1)!.requeueAfterMs!);
  const last = s.reports.at(-1)!;
  assert.ok(last.converged);
  assert.deepEqual(
    last.results.filter((x) => !x.action.startsWith("event:")).map((x) => x.object),
    [
      "pod/adas/lane-primary-pod2",
    ],
  );
  assert.equal(api.ok("patchNode").length, 1);
  assert.equal(api.ok("patchDeployment").length, 2);
  assert.deepEqual(api.ok("deletePod").map((c) => c.name).sort(), [
    "lane-primary-pod",
    "lane-primary-pod2",
  ]);
  assert.equal(api.calls.filter((c) => c.name === "lane-primary-pod").length, 1);
  await r.close();
});

Deno.test("restart in the middle: a fresh reconciler converges the rest of a half-done failover", async () => {
  const s = await setup({
    cluster: (t) => {
      const cluster = seededCluster(t);
      const lane = t.workload("lane")!;
      // The previous supervisor persisted the epoch on the new active Deployment only.
      const step = planWorkload(failover(lane, { epoch: 2 }), cluster, {
        taintKey: TAINT,
        supervisorId: "sup-a",
      })[0];
      assert.ok(step.kind === "persistEpoch" && step.role === "active");
      const body = persistEpochPatch(step) as {
        metadata: { annotations: Record<string, string>; labels: Record<string, string> };
      };
      cluster.mutateDeployment("adas", "lane-standby", (d) => {
        Object.assign(d.annotations, body.metadata.annotations);
        Object.assign(d.labels, body.metadata.labels);
      });
      cluster.addPod("adas", "lane-primary-pod2", "lane-primary", "worker-node1");
      return cluster;
    },
  });
  const { t, api, r, lane } = s;
  const o = r.observed();
  assert.deepEqual(o.workloads.get(lane), {
    epoch: 2,
    active: "standby",
    reason: "node-expired",
    failedAt: "2026-12-02T00:00:10.000Z",
  });
  assert.equal(o.fencedNodes.size, 0);
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane, { epoch: 2 }));
  await r.whenIdle();
  assert.ok(s.reports.every((x) => x.converged));
  assert.deepEqual(api.ok("patchDeployment").map((c) => c.name), ["lane-primary"]);
  assert.equal(api.ok("patchNode").length, 1);
  assert.deepEqual(api.calls.filter((c) => c.op === "deletePod").map((c) => c.name).sort(), [
    "lane-primary-pod",
    "lane-primary-pod2",
  ]);
  // And again: nothing left, nothing deleted twice.
  const n = api.calls.length;
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane, { epoch: 2 }));
  await r.whenIdle();
  assert.equal(api.calls.length, n);
  await r.close();
});

Deno.test("a stale cache never makes a pass repeat an acknowledged write", async () => {
  const s = await setup();
  const { t, api, cluster, r, lane } = s;
  cluster.manualFlush = true;
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  await r.whenIdle();
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  await r.whenIdle();
  assert.equal(api.calls.filter((c) => c.op === "patchNode").length, 1);
  assert.equal(api.calls.filter((c) => c.op === "patchDeployment").length, 2);
  assert.equal(api.calls.filter((c) => c.op === "deletePod").length, 1);
  cluster.flush();
  await r.whenIdle();
  assert.equal(api.calls.filter((c) => c.op !== "createEvent").length, 4);
  await r.close();
});

Deno.test("a desired change while a pass is in flight: no concurrent pass, one more pass with the latest", async () => {
  const s = await setup();
  const { api, cluster, r, lane } = s;
  const gate = api.hold("patchDeployment");
  const d1 = failover(lane, { removeFailed: false, nodeFault: false });
  r.setWorkload(d1);
  r.setWorkload({ ...d1, epoch: 2 });
  r.setWorkload({ ...d1, epoch: 3 });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(gate.held, 2);
  assert.equal(api.calls.length, 2);
  assert.equal(r.queueDepth, 1);
  gate.release();
  await r.whenIdle();
  assert.equal(s.reports.length, 2);
  assert.equal((s.reports[0].desired as WorkloadDesired).epoch, 1);
  assert.equal((s.reports[1].desired as WorkloadDesired).epoch, 3);
  assert.equal(cluster.deployment("adas", "lane-primary")!.annotations[ANNOTATIONS.epoch], "3");
  assert.equal(api.calls.filter((c) => c.op === "patchDeployment").length, 4);
  await r.close();
});

Deno.test("cache changes re-reconcile: a removed taint is restored, a pod back on the failed node is deleted", async () => {
  const s = await setup();
  const { t, api, cluster, r, lane } = s;
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  await r.whenIdle();
  const reports = s.reports.length;
  // An operator removes our taint (keeps the cordon).
  cluster.mutateNode("worker-node1", (n) => n.taints = []);
  await r.whenIdle();
  assert.equal(api.ok("patchNode").length, 2);
  const body = api.ok("patchNode")[1].body as { spec: Record<string, unknown> };
  assert.deepEqual(Object.keys(body.spec), ["taints"]); // the cordon is still there: not re-sent
  assert.equal(cluster.node("worker-node1")!.taints.length, 1);
  // A replacement pod lands on the failed node again.
  cluster.addPod("adas", "lane-primary-again", "lane-primary", "worker-node1");
  await r.whenIdle();
  assert.deepEqual(api.ok("deletePod").map((c) => c.name), [
    "lane-primary-pod",
    "lane-primary-again",
  ]);
  assert.equal(s.reports.length, reports + 2); // our own echoes are not reported
  // Pods elsewhere and unrelated changes cause no writes.
  const n = api.calls.length;
  cluster.addPod("adas", "lane-primary-ok", "lane-primary", "worker-node3");
  cluster.mutateNode("worker-node2", (x) => x.annotations.foo = "bar");
  await r.whenIdle();
  assert.equal(api.calls.length, n);
  await r.close();
});

Deno.test("an epoch is never lowered: a higher persisted epoch plans nothing and is exposed", async () => {
  const s = await setup();
  const { api, cluster, r, lane } = s;
  cluster.mutateDeployment("adas", "lane-primary", (d) => d.annotations[ANNOTATIONS.epoch] = "9");
  r.setWorkload(failover(lane, { epoch: 3 }));
  await r.whenIdle();
  assert.equal(api.calls.length, 0);
  assert.equal(s.reports[0].higherEpoch, 9);
  assert.ok(s.reports[0].converged);
  assert.equal(r.higherEpochs().get(lane), 9);
  assert.equal(r.observed().workloads.get(lane)!.epoch, 9);
  await r.close();
});

Deno.test("Events are best effort and only for workloads allowing them", async () => {
  const s = await setup();
  const { t, api, r, lane } = s;
  const radar = t.workload("radar")!;
  api.fail("createEvent", 500, 10);
  r.setWorkload(failover(lane, { nodeFault: false }));
  r.setWorkload(failover(radar, { nodeFault: false }));
  await r.whenIdle();
  assert.ok(s.reports.every((x) => x.converged));
  const laneReport = s.reports.find((x) => x.key.kind === "workload" && x.key.workload === lane)!;
  assert.equal(laneReport.results.filter((x) => x.action.startsWith("event:")).length, 3);
  assert.ok(
    laneReport.results.filter((x) => x.action.startsWith("event:")).every((x) =>
      x.outcome === "failed"
    ),
  );
  const radarReport = s.reports.find((x) => x.key.kind === "workload" && x.key.workload === radar)!;
  assert.equal(radarReport.results.filter((x) => x.action.startsWith("event:")).length, 0);
  assert.equal(api.calls.filter((c) => c.op === "createEvent").length, 3);
  assert.equal(s.clock.pendingTimers, 0);
  await r.close();
});

Deno.test("close() aborts in-flight requests, cancels requeues and closes the watches", async () => {
  const s = await setup();
  const { t, api, cluster, r, lane } = s;
  const gate = api.hold("patchNode");
  api.fail("patchDeployment", 500, 1);
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane, { removeFailed: false }));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(gate.held, 1);
  assert.equal(s.clock.pendingTimers, 1); // the workload's requeue
  await r.close();
  assert.equal(s.clock.pendingTimers, 0);
  assert.equal(cluster.closed, true);
  assert.equal(cluster.listenerCount, 0);
  assert.equal(api.calls.find((c) => c.op === "patchNode")!.result, "aborted");
  const nodeReport = s.reports.find((x) => x.key.kind === "node")!;
  assert.equal(nodeReport.converged, false);
  assert.equal(nodeReport.requeueAfterMs !== undefined, true);
  assert.equal(s.clock.pendingTimers, 0);
  assert.deepEqual(api.calls.map((c) => `${c.op} ${c.name} ${c.result}`), [
    "patchNode worker-node1 aborted",
    "patchDeployment lane-standby 500",
    "patchDeployment lane-primary ok",
    "createEvent FailoverFenced ok",
  ]);
  r.setWorkload(failover(lane, { epoch: 5 }));
  assert.equal(api.calls.length, 4);
  assert.equal(r.queueDepth, 0);
  await r.whenIdle();
});

Deno.test("start retries the cache with backoff; keys set before the sync run after it", async () => {
  const s = await setup({ start: false });
  const { cluster, api, r, lane, clock } = s;
  cluster.synced = false;
  cluster.startError = new Error("connection refused");
  r.setWorkload(failover(lane, { removeFailed: false }));
  assert.equal(api.calls.length, 0);
  assert.equal(r.queueDepth, 1);
  const started = r.start(new AbortController().signal);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(cluster.starts, 1);
  clock.advance(20);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(cluster.starts, 2);
  cluster.startError = undefined;
  clock.advance(40);
  await started;
  assert.equal(cluster.starts, 3);
  await r.whenIdle();
  assert.equal(api.ok("patchDeployment").length, 2);
  // An aborted start rejects.
  const s2 = await setup({ start: false });
  s2.cluster.startError = new Error("down");
  const controller = new AbortController();
  const p = s2.r.start(controller.signal);
  await new Promise((resolve) => setTimeout(resolve, 0));
  controller.abort(new Error("shutdown"));
  await assert.rejects(p, /shutdown/);
  await r.close();
  await s2.r.close();
});

Deno.test("pod deletions wait for the fence write, not for the node's Event", async () => {
  const s = await setup();
  const { t, api, r, lane } = s;
  const gate = api.hold("createEvent", "FailoverCordonedTainted");
  r.setNode(fence(t, "worker-node1"));
  r.setWorkload(failover(lane));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(gate.held, 1);
  assert.equal(api.ok("deletePod").length, 1);
  gate.release();
  await r.whenIdle();
  assert.ok(s.reports.every((x) => x.converged));
  await r.close();
});

const unfence = (t: Topology, name: string): NodeDesired => ({
  node: t.node(name)!,
  fenced: false,
  cordon: false,
  taint: false,
});

const OPERATOR_TAINT = { key: "operator/maintenance", value: "x", effect: "NoSchedule" };

Deno.test("un-fence: fenced → unfenced → fenced again, idempotent; only what we added is removed", async () => {
  const s = await setup();
  const { t, api, cluster, r } = s;
  cluster.mutateNode("worker-node1", (n) => n.taints = [OPERATOR_TAINT]);
  r.setNode(fence(t, "worker-node1"));
  await r.whenIdle();
  cluster.mutateNode("worker-node1", (n) => n.annotations["operator/note"] = "keep");
  await r.whenIdle();
  const fencedCalls = api.calls.length;
  const rvBefore = cluster.node("worker-node1")!.resourceVersion;
  r.setNode(unfence(t, "worker-node1"));
  await r.whenIdle();
  const patches = api.ok("patchNode");
  assert.equal(patches.length, 2);
  assert.deepEqual(patches[1].body, {
    metadata: {
      annotations: {
        [ANNOTATIONS.cordonedBy]: null,
        [ANNOTATIONS.fenceReason]: null,
        // history: a restarted supervisor does not fence it again for an older failover
        [ANNOTATIONS.unfencedAt]: "2026-12-02T07:00:00.000Z",
      },
      resourceVersion: rvBefore, // the atomic taint list's precondition
    },
    spec: { unschedulable: false, taints: [OPERATOR_TAINT] },
  });
  assert.equal(patches[1].type, "strategic");
  const node = cluster.node("worker-node1")!;
  assert.equal(node.unschedulable, false);
  assert.deepEqual(node.taints, [OPERATOR_TAINT]);
  assert.deepEqual(node.annotations, {
    "operator/note": "keep",
    [ANNOTATIONS.unfencedAt]: "2026-12-02T07:00:00.000Z",
  });
  assert.equal(r.observed().unfencedAt.get(t.node("worker-node1")!), "2026-12-02T07:00:00.000Z");
  const report = s.reports.at(-1)!;
  assert.ok(report.converged && report.key.kind === "node");
  assert.deepEqual(report.results.map((x) => `${x.action} ${x.outcome}`), [
    "unfenceNode done",
    "event:FailoverUnfenced done",
  ]);
  const ev = api.ok("createEvent").at(-1)!.body!;
  assert.equal(ev.type, "Normal");
  assert.match(String(ev.message), /^unfenced \(remove taint NoExecute \+ uncordon/);
  assert.equal(r.observed().fencedNodes.size, 0);
  // Idempotent: setting it again, or a change echo, writes nothing.
  const n = api.calls.length;
  r.setNode(unfence(t, "worker-node1"));
  cluster.mutateNode("worker-node1", (x) => x.annotations["operator/other"] = "y");
  await r.whenIdle();
  assert.equal(api.calls.length, n);
  // Fenced again: our cordon, taint and annotations come back; the operator's taint stays.
  r.setNode(fence(t, "worker-node1"));
  await r.whenIdle();
  const again = cluster.node("worker-node1")!;
  assert.equal(again.unschedulable, true);
  assert.deepEqual(again.taints.map((x) => x.key), [OPERATOR_TAINT.key, TAINT]);
  assert.equal(again.annotations[ANNOTATIONS.cordonedBy], "sup-a");
  assert.ok(fencedCalls > 0 && api.ok("patchNode").length === 3);
  await r.close();
});

Deno.test("un-fence never lifts an operator's cordon, and our taint removed by hand stays removed", async () => {
  const s = await setup();
  const { t, api, cluster, r } = s;
  cluster.mutateNode("worker-node2", (n) => n.unschedulable = true); // the operator's
  r.setNode(fence(t, "worker-node2"));
  await r.whenIdle();
  assert.equal(cluster.node("worker-node2")!.annotations[ANNOTATIONS.cordonedBy], undefined);
  r.setNode(unfence(t, "worker-node2"));
  await r.whenIdle();
  const body = api.ok("patchNode").at(-1)!.body as { spec: Record<string, unknown> };
  assert.deepEqual(body.spec, { taints: [] });
  assert.equal(cluster.node("worker-node2")!.unschedulable, true);
  assert.deepEqual(cluster.node("worker-node2")!.taints, []);
  // Unfenced: the reconciler does not restore a fence someone adds or removes by hand.
  const n = api.calls.length;
  cluster.mutateNode("worker-node2", (x) => x.unschedulable = false);
  await r.whenIdle();
  assert.equal(api.calls.length, n);
  await r.close();
});

Deno.test("un-fence: a concurrent taint change fails with 409 and is retried with the fresh taint list", async () => {
  const s = await setup();
  const { t, api, cluster, r } = s;
  r.setNode(fence(t, "worker-node1"));
  await r.whenIdle();
  const gate = api.hold("patchNode");
  r.setNode(unfence(t, "worker-node1"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(gate.held, 1);
  // Someone adds a taint while our patch is in flight (built from the older list).
  cluster.mutateNode("worker-node1", (n) => n.taints.push(OPERATOR_TAINT));
  gate.release();
  await r.whenIdle();
  const first = s.reports.at(-1)!;
  assert.equal(first.converged, false);
  assert.match(first.results[0].detail!, /HTTP 409/);
  assert.equal(first.requeueAfterMs, 20);
  assert.equal(cluster.node("worker-node1")!.unschedulable, true); // nothing half-applied
  await advance(s, 20);
  assert.ok(s.reports.at(-1)!.converged);
  assert.deepEqual(api.calls.filter((c) => c.op === "patchNode").map((c) => c.result), [
    "ok",
    "409",
    "ok",
  ]);
  const node = cluster.node("worker-node1")!;
  assert.deepEqual(node.taints, [OPERATOR_TAINT]); // the concurrent taint survived
  assert.equal(node.unschedulable, false);
  await r.close();
});

Deno.test("un-fence: a 409 against a lagging cache reads the Node fresh; the next pass succeeds", async () => {
  // found by the fault campaign: a Node whose status is updated often made every un-fence fail
  // with 409 for 90 s while the cache lagged behind
  const s = await setup();
  const { t, api, cluster, r } = s;
  r.setNode(fence(t, "worker-node1"));
  await r.whenIdle();
  cluster.manualFlush = true; // the cache stops following
  const server = cluster.server.nodes.get("worker-node1")!;
  server.resourceVersion = cluster.nextRv(); // a status update the cache has not seen
  r.setNode(unfence(t, "worker-node1"));
  await r.whenIdle();
  assert.match(s.reports.at(-1)!.results[0].detail!, /HTTP 409/);
  assert.deepEqual(api.nodeReads, ["worker-node1"], "read fresh after the 409");
  await advance(s, 20);
  assert.ok(s.reports.at(-1)!.converged, "converged without the cache catching up");
  assert.deepEqual(api.calls.filter((c) => c.op === "patchNode").map((c) => c.result), [
    "ok",
    "409",
    "ok",
  ]);
  assert.equal(cluster.server.nodes.get("worker-node1")!.unschedulable, false);
  await r.close();
});

Deno.test("placementReady: Running and Ready pod on a node that is neither fenced nor cordoned", async () => {
  const s = await setup({ start: false });
  const { t, api, cluster, r, lane } = s;
  cluster.synced = false;
  assert.deepEqual(r.placementReady(lane.standby), { ready: false, why: "cache not synced" });
  await r.start(new AbortController().signal);
  const ready = r.placementReady(lane.standby);
  assert.deepEqual(ready, { ready: true });
  assert.equal(r.placementReady(lane.primary), ready); // the shared answer: no allocation
  cluster.mutatePod("adas", "lane-standby-pod", (p) => p.ready = false);
  assert.deepEqual(r.placementReady(lane.standby), {
    ready: false,
    why: "pod lane-standby-pod not Ready",
  });
  cluster.mutatePod("adas", "lane-standby-pod", (p) => p.phase = "Pending");
  assert.deepEqual(r.placementReady(lane.standby), {
    ready: false,
    why: "pod lane-standby-pod is Pending",
  });
  // A second pod that is Running and Ready (a rollout) is enough.
  cluster.addPod("adas", "lane-standby-pod2", "lane-standby", "worker-node2");
  assert.deepEqual(r.placementReady(lane.standby), { ready: true });
  cluster.mutatePod("adas", "lane-standby-pod2", (p) => p.deleting = true);
  assert.deepEqual(r.placementReady(lane.standby), {
    ready: false,
    why: "pod lane-standby-pod is Pending",
  });
  cluster.server.pods.delete("adas/lane-standby-pod");
  cluster.server.pods.delete("adas/lane-standby-pod2");
  cluster.flush();
  assert.deepEqual(r.placementReady(lane.standby), {
    ready: false,
    why: "no pod of lane-standby on worker-node2",
  });
  // A pod of it on another node does not count.
  cluster.addPod("adas", "lane-standby-elsewhere", "lane-standby", "worker-node3");
  assert.equal(r.placementReady(lane.standby).ready, false);
  // The node: cordoned (by anyone), fenced by our taint.
  const radar = t.workload("radar")!;
  assert.deepEqual(r.placementReady(radar.standby), { ready: true });
  cluster.mutateNode("worker-node3", (n) => n.unschedulable = true);
  assert.deepEqual(r.placementReady(radar.standby), {
    ready: false,
    why: "node worker-node3 is cordoned",
  });
  cluster.mutateNode("worker-node3", (n) => {
    n.unschedulable = false;
    n.taints = [{ key: TAINT, value: "sup-a", effect: "NoExecute" }];
  });
  assert.deepEqual(r.placementReady(radar.standby), {
    ready: false,
    why: "node worker-node3 is fenced (our taint)",
  });
  cluster.mutateNode("worker-node3", (n) => n.taints = []);
  assert.deepEqual(r.placementReady(radar.standby), { ready: true });
  // Being fenced by this reconciler (write in flight): not ready before the cache shows it.
  const gate = api.hold("patchNode");
  r.setNode(fence(t, "worker-node3"));
  assert.deepEqual(r.placementReady(radar.standby), {
    ready: false,
    why: "node worker-node3 is being fenced",
  });
  gate.release();
  await r.whenIdle();
  assert.deepEqual(r.placementReady(radar.standby), {
    ready: false,
    why: "node worker-node3 is fenced (our taint)",
  });
  cluster.server.deployments.delete("adas/lane-standby");
  cluster.flush();
  assert.deepEqual(r.placementReady(lane.standby), {
    ready: false,
    why: "deployment adas/lane-standby not found",
  });
  await r.close();
});

Deno.test("unfence requests: reported once per value, at start after the caller's continuation, then on changes", async () => {
  const s = await setup({ start: false, onUnfenceRequest: true });
  const { t, api, cluster, r, clock, unfenceRequests } = s;
  cluster.synced = false;
  r.setNode(fence(t, "worker-node1"));
  cluster.mutateNode("worker-node1", (n) => n.annotations[ANNOTATIONS.unfenceRequested] = "T1");
  assert.deepEqual(unfenceRequests, []); // not started: nothing reported
  await r.start(new AbortController().signal);
  assert.deepEqual(unfenceRequests, []); // the caller adopts first
  clock.advance(0);
  assert.deepEqual(unfenceRequests, ["worker-node1 T1"]);
  await r.whenIdle();
  // Our own writes (the fence) and unrelated changes do not repeat it.
  cluster.mutateNode("worker-node1", (n) => n.annotations.foo = "bar");
  cluster.mutateNode("worker-node2", (n) => n.annotations.foo = "bar");
  await r.whenIdle();
  assert.deepEqual(unfenceRequests, ["worker-node1 T1"]);
  assert.equal(cluster.node("worker-node1")!.annotations[ANNOTATIONS.unfenceRequested], "T1");
  // A new request value is reported; a request on a node outside the topology is not.
  cluster.mutateNode("worker-node1", (n) => n.annotations[ANNOTATIONS.unfenceRequested] = "T2");
  cluster.addNode("other-node", { annotations: { [ANNOTATIONS.unfenceRequested]: "T9" } });
  assert.deepEqual(unfenceRequests, ["worker-node1 T1", "worker-node1 T2"]);
  // The caller honours it: the un-fence step removes the request too.
  r.setNode(unfence(t, "worker-node1"));
  await r.whenIdle();
  const node = cluster.node("worker-node1")!;
  assert.equal(node.annotations[ANNOTATIONS.unfenceRequested], undefined);
  assert.equal(node.unschedulable, false);
  assert.deepEqual(node.taints, []);
  assert.equal(api.ok("patchNode").length, 2);
  // A later request (even with an old value) is reported again.
  cluster.mutateNode("worker-node1", (n) => n.annotations[ANNOTATIONS.unfenceRequested] = "T2");
  assert.deepEqual(unfenceRequests.length, 3);
  await r.whenIdle();
  await r.close();
});
