import assert from "node:assert/strict";
import { testTopology } from "../../tests/fakes/fake_kube.ts";
import type { LogFields, Logger } from "../log/log.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import { DryRunReconciler } from "./dry_run.ts";

function recordingLogger(lines: { event: string; fields?: LogFields }[]): Logger {
  const log: Logger = {
    debug: (event, fields) => lines.push({ event, fields }),
    info: (event, fields) => lines.push({ event, fields }),
    warn: (event, fields) => lines.push({ event, fields }),
    error: (event, fields) => lines.push({ event, fields }),
    child: () => log,
  };
  return log;
}

Deno.test("dry run: plans the same steps as a real run, fence before delete, and a repeat plans nothing", async () => {
  const t = testTopology();
  const lane = t.workload("lane")!;
  const lines: { event: string; fields?: LogFields }[] = [];
  const dry = new DryRunReconciler({
    topology: t,
    supervisorId: "sup-a",
    log: recordingLogger(lines),
  });
  await dry.start(new AbortController().signal);
  assert.equal(dry.observed().workloads.get(lane)!.epoch, 0);
  const desired: WorkloadDesired = {
    workload: lane,
    active: "standby",
    epoch: 1,
    reason: "node-expired",
    removeFailed: true,
    failedAt: "2026-12-02T00:00:10.000Z",
    nodeFault: true,
  };
  const node: NodeDesired = {
    node: t.node("worker-node1")!,
    fenced: true,
    cordon: true,
    taint: true,
    reason: "node-expired",
  };
  dry.setWorkload(desired); // before the fence: deletes wait
  assert.equal(dry.queueDepth, 1);
  dry.setNode(node);
  assert.equal(dry.queueDepth, 0);
  assert.deepEqual(dry.planned.map((p) => `${p.action} ${p.object}`), [
    "markActive deployment/adas/lane-standby",
    "markFailed deployment/adas/lane-primary",
    "fenceNode node/worker-node1",
    "deletePods pod/adas/lane-primary-dry-run",
  ]);
  assert.ok(dry.reports.every((r) => r.results.every((x) => x.outcome === "planned")));
  assert.deepEqual(
    dry.reports.flatMap((r) => r.results.map((x) => x.action)).filter((a) =>
      a.startsWith("event:")
    ),
    [
      "event:FailoverPromoted",
      "event:FailoverFenced",
      "event:FailoverCordonedTainted",
      "event:FailoverPodsDeleted",
    ],
  );
  assert.equal(lines.filter((l) => l.event === "planned-action").length, 4);
  const o = dry.observed();
  assert.deepEqual(o.workloads.get(lane), {
    epoch: 1,
    active: "standby",
    reason: "node-expired",
    failedAt: "2026-12-02T00:00:10.000Z",
  });
  assert.equal(o.fencedNodes.get(node.node)!.cordonedByUs, true);
  dry.setWorkload(desired);
  dry.setNode(node);
  assert.equal(dry.planned.length, 4);
  assert.deepEqual(dry.reports.at(-1)!.results, []);
  await dry.whenIdle();
  await dry.close();
});

Deno.test("dry run: the epoch is planned on both Deployments without markDeployments; a fail-back plans a new epoch", () => {
  const t = testTopology();
  const radar = t.workload("radar")!;
  const dry = new DryRunReconciler({ topology: t });
  dry.setWorkload({
    workload: radar,
    active: "standby",
    epoch: 1,
    reason: "app-expired",
    removeFailed: false,
    failedAt: "2026-12-02T00:00:10.000Z",
    nodeFault: false,
  });
  assert.deepEqual(dry.planned.map((p) => p.detail), [
    "role=active epoch=1 active-node=worker-node3 failed-node=worker-node1 (annotations only)",
    "role=failed epoch=1 active-node=worker-node3 failed-node=worker-node1 (annotations only)",
  ]);
  dry.setWorkload({
    workload: radar,
    active: "primary",
    epoch: 2,
    reason: "app-expired",
    removeFailed: true,
    failedAt: "2026-12-02T00:00:10.000Z",
    nodeFault: false,
  });
  assert.deepEqual(dry.planned.slice(2).map((p) => `${p.action} ${p.object}`), [
    "markActive deployment/adas/radar-primary",
    "markFailed deployment/adas/radar-standby",
    "deletePods pod/adas/radar-standby-dry-run",
  ]);
});

Deno.test("dry run: un-fencing is planned and applied; placements are ready until the model changes", () => {
  const t = testTopology();
  const lane = t.workload("lane")!;
  const dry = new DryRunReconciler({ topology: t, supervisorId: "sup-a" });
  assert.deepEqual(dry.placementReady(lane.primary), { ready: true });
  assert.deepEqual(dry.placementReady(lane.standby), { ready: true });
  const node = t.node("worker-node1")!;
  dry.setNode({ node, fenced: true, cordon: true, taint: true, reason: "node-offline" });
  assert.deepEqual(dry.placementReady(lane.primary), {
    ready: false,
    why: "node worker-node1 is fenced (our taint)",
  });
  dry.setNode({ node, fenced: false, cordon: false, taint: false });
  assert.deepEqual(dry.planned.map((p) => `${p.action} ${p.object}`), [
    "fenceNode node/worker-node1",
    "unfenceNode node/worker-node1",
  ]);
  assert.deepEqual(
    dry.reports.at(-1)!.results.map((x) => `${x.action} ${x.outcome}`),
    ["unfenceNode planned", "event:FailoverUnfenced planned"],
  );
  assert.equal(dry.observed().fencedNodes.size, 0);
  assert.deepEqual(dry.placementReady(lane.primary), { ready: true });
  dry.setNode({ node, fenced: false, cordon: false, taint: false });
  assert.equal(dry.planned.length, 2); // idempotent
  // A deleted pod makes its placement not ready.
  dry.setWorkload({
    workload: lane,
    active: "standby",
    epoch: 1,
    reason: "app-expired",
    removeFailed: true,
    failedAt: "2026-12-02T00:00:10.000Z",
    nodeFault: false,
  });
  assert.deepEqual(dry.placementReady(lane.primary), {
    ready: false,
    why: "no pod of lane-primary on worker-node1",
  });
});
