import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { demoConfig } from "../demo/demo_config.ts";
import type { NodeDesired, Trigger, WorkloadDesired } from "../policy/desired.ts";
import type { PlacementReadiness, ReconcileReport, StepResult } from "../reconcile/reconciler.ts";
import type { SupervisorEvent } from "../runtime/supervisor.ts";
import { buildTopology, type Target, type Workload } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import type { IncidentRecord } from "./record.ts";
import { IncidentRecorder, type IncidentRecorderOptions, MAX_STEPS } from "./recorder.ts";

const topology = buildTopology(demoConfig("mqtt://127.0.0.1:1"));
const node2 = topology.node("worker-node2")!;
const node3 = topology.node("worker-node3")!;
const lane = topology.workload("lane-detection")!;
const pose = topology.workload("pose-estimation")!;
const lidar2 = topology.sensor("lidar-node2")!;

function expiry(
  target: Target,
  lastHeartbeatAtMs: number | undefined,
  noticedAtMs: number,
  atMs: number,
  cause: "deadline" | "offline" | "never-seen" = "offline",
): Transition<Target> {
  return {
    target,
    from: "OK",
    to: "EXPIRED",
    atMs,
    lastHeartbeatAtMs,
    noticedAtMs,
    cause,
    isFailure: true,
  };
}

function triggerOf(t: Transition<Target>): Trigger {
  return {
    target: t.target,
    cause: t.cause!,
    expiredAtMs: t.atMs,
    noticedAtMs: t.noticedAtMs,
    lastHeartbeatAtMs: t.lastHeartbeatAtMs,
    deadlineMs: t.deadlineMs,
    latenessMs: t.latenessMs,
  };
}

function failover(w: Workload, trigger: Trigger | undefined, epoch = 1): WorkloadDesired {
  return {
    workload: w,
    active: "standby",
    epoch,
    reason: "node-offline",
    removeFailed: true,
    nodeFault: true,
    failedAt: "2026-03-14T10:15:02.000Z",
    trigger,
  };
}

function promotionSent(desired: WorkloadDesired, atMs: number): SupervisorEvent {
  const w = desired.workload;
  return {
    type: "promotion-sent",
    atMs,
    desired,
    promotion: {
      v: 1,
      workload: w.name,
      namespace: w.namespace,
      activeNode: w.standby.node.name,
      activeDeployment: w.standby.deployment,
      failedNode: w.primary.node.name,
      epoch: desired.epoch,
      reason: desired.reason,
      issuer: "vehicle",
      issuedAt: desired.failedAt!,
    },
  };
}

function result(
  action: string,
  object: string,
  doneAtMs: number,
  outcome: StepResult["outcome"] = "done",
): StepResult {
  return { action, object, outcome, attempts: 1, doneAtMs };
}

function reconciled(
  desired: WorkloadDesired | NodeDesired,
  startedAtMs: number,
  results: StepResult[],
  converged = true,
): SupervisorEvent {
  const report: ReconcileReport = {
    key: "workload" in desired
      ? { kind: "workload", workload: desired.workload }
      : { kind: "node", node: desired.node },
    desired,
    startedAtMs,
    finishedAtMs: startedAtMs + Math.max(0, ...results.map((r) => r.doneAtMs)),
    results,
    converged,
    attempt: 1,
  };
  return { type: "reconciled", atMs: report.finishedAtMs, report };
}

function recorder(
  clock: FakeClock,
  extra: Partial<IncidentRecorderOptions> = {},
): { rec: IncidentRecorder; out: IncidentRecord[] } {
  const out: IncidentRecord[] = [];
  const rec = new IncidentRecorder({
    supervisorId: "vehicle",
    lagToleranceMs: 5,
    reactionBudgetMs: 25,
    convergeTimeoutMs: 10_000,
    clock,
    wallNowMs: () => Date.parse("2026-03-14T10:15:03.000Z"),
    onIncident: (r) => out.push(r),
    ...extra,
  });
  return { rec, out };
}

Deno.test("a node crash: one incident from the last heartbeat to convergence, steps in order", () => {
  const clock = new FakeClock(10_000);
  let ready: PlacementReadiness = { ready: false, why: "pod not Ready" };
  const fence: NodeDesired = {
    node: node2,
    fenced: true,
    cordon: true,
    taint: true,
    reason: "node-offline",
  };
  const { rec, out } = recorder(clock, {
    probe: { nodeDesired: () => fence, placementReady: () => ready },
  });
  rec.term = 3;
  const t = expiry(node2, 9_000, 9_020, 9_022.5);
  const trigger = triggerOf(t);
  fence.trigger = trigger;
  const laneD = failover(lane, trigger);
  const poseD = failover(pose, trigger);
  rec.onEvent({ type: "transition", transition: t });
  rec.onEvent(promotionSent(laneD, 9_023));
  rec.onEvent(promotionSent(poseD, 9_023.5));
  rec.onEvent({ type: "promotion-acked", atMs: 9_025, workload: lane, epoch: 1 });
  assert.equal(out.length, 0, "nothing before the queue is worked (off the hot path)");
  clock.advance(1);
  assert.equal(rec.openCount, 1);
  rec.onEvent(reconciled(fence, 9_030, [result("fenceNode", "node/worker-node2", 12)]));
  rec.onEvent(reconciled(laneD, 9_030, [
    result("markActive", "deployment/default/lane-detection-standby", 8),
    result("deletePods", "pod/default/lane-1", 20),
    result("event:FailoverPromoted", "event/default/FailoverPromoted", 25),
  ]));
  clock.advance(1);
  assert.equal(out.length, 0, "pose-estimation has not converged yet");
  rec.onEvent(
    reconciled(poseD, 9_031, [
      result("markActive", "deployment/default/pose-estimation-standby", 9),
    ]),
  );
  clock.advance(1);
  assert.equal(out.length, 0, "the active instance is not Ready yet");
  ready = { ready: true };
  clock.advance(60);
  assert.equal(out.length, 1);
  const r = out[0];
  assert.equal(r.v, 1);
  assert.equal(r.trigger.target, "node/worker-node2");
  assert.equal(r.trigger.cause, "offline");
  assert.equal(r.node, "worker-node2");
  assert.deepEqual(r.supervisor, { id: "vehicle", term: 3 });
  assert.equal(r.outcome, "converged");
  assert.equal(r.asil, "B");
  assert.equal(r.fttiMs, 500);
  assert.equal(r.fttiMet, true);
  assert.deepEqual(r.workloads.map((w) => [w.name, w.epoch, w.activeNode, w.promotionMs]), [
    ["lane-detection", 1, "worker-node3", 23],
    ["pose-estimation", 1, "worker-node3", 23.5],
  ]);
  // the queue was worked at 10 000 ms, 1000 ms after the last heartbeat, when the wall clock read
  // 10:15:03
  assert.equal(r.startedAt, new Date(Date.parse("2026-03-14T10:15:03.000Z") - 1000).toISOString());
  assert.match(r.id, /^20260314T101502\.\d{3}Z-node-worker-node2$/);
  const steps = r.steps.map((s) => [s.step, s.tMs]);
  assert.deepEqual(steps.slice(0, 4), [
    ["last heartbeat: node/worker-node2", 0],
    ["expiry detected: Last Will (offline)", 20],
    ["expiry confirmed (ingest barrier)", 22.5],
    ["promotion published: lane-detection epoch 1 → worker-node3", 23],
  ]);
  assert.deepEqual(steps.find(([s]) => s === "fenceNode node/worker-node2"), [
    "fenceNode node/worker-node2",
    42,
  ]);
  assert.ok(
    steps.some(([s]) => s === "active instance Running and Ready: lane-detection on worker-node3"),
  );
  assert.equal(r.steps.at(-1)!.step, "converged");
  for (let i = 1; i < r.steps.length; i++) {
    assert.ok(r.steps[i].tMs >= r.steps[i - 1].tMs, `in time order at ${r.steps[i].step}`);
  }
  assert.equal(r.endToEndMs, r.steps.at(-1)!.tMs);
  assert.equal(r.budget.detectionMs, node2.timeoutMs + 5);
  assert.equal(rec.openCount, 0);
});

Deno.test("a node fence expected by the policy is waited for; an unrelated reconcile is ignored", () => {
  const clock = new FakeClock(0);
  const t = expiry(node2, 100, 400, 402, "deadline");
  const trigger = triggerOf(t);
  const fence: NodeDesired = { node: node2, fenced: true, cordon: true, taint: true, trigger };
  const { rec, out } = recorder(clock, { probe: { nodeDesired: () => fence } });
  const laneD = failover(lane, trigger);
  rec.onEvent({ type: "transition", transition: t });
  rec.onEvent(promotionSent(laneD, 403));
  rec.onEvent(reconciled(failover(pose, undefined, 7), 404, [result("markActive", "x", 1)]));
  rec.onEvent(reconciled(laneD, 404, [result("markActive", "x", 1)]));
  clock.advance(5);
  assert.equal(out.length, 0, "the fence of worker-node2 is still missing");
  rec.onEvent(
    reconciled(fence, 404, [result("fenceNode", "node/worker-node2", 3, "failed")], false),
  );
  clock.advance(5);
  assert.equal(out.length, 0, "a failed fence is no convergence");
  rec.onEvent(reconciled(fence, 440, [result("fenceNode", "node/worker-node2", 3)]));
  clock.advance(5);
  assert.equal(out.length, 1);
  assert.equal(out[0].outcome, "converged");
  assert.equal(
    out[0].workloads.length,
    1,
    "pose-estimation's adopted epoch 7 is not this incident",
  );
  assert.deepEqual(
    out[0].steps.filter((s) => s.step.startsWith("fenceNode")).map((s) => s.detail),
    ["failed: ", "done"],
  );
  assert.equal(out[0].fttiMet, true);
  assert.equal(out[0].steps[1].step, "expiry detected: deadline passed");
});

Deno.test("an incident that does not converge within the bound is recorded as a timeout", () => {
  const clock = new FakeClock(0);
  const { rec, out } = recorder(clock, { convergeTimeoutMs: 3000 });
  const t = expiry(lidar2, 1000, 1300, 1302, "deadline");
  const poseD = { ...failover(pose, triggerOf(t)), reason: "sensor-expired:lidar-node2" };
  rec.onEvent({ type: "transition", transition: t });
  rec.onEvent(promotionSent(poseD, 1303));
  clock.advance(1400);
  rec.onEvent(reconciled(poseD, 1400, [result("markActive", "x", 5, "failed")], false));
  clock.advance(1000);
  assert.equal(out.length, 0);
  clock.advance(2000);
  assert.equal(out.length, 1);
  const r = out[0];
  assert.equal(r.outcome, "timeout");
  assert.equal(r.steps.at(-1)!.step, "timeout: not converged 3000 ms after the expiry");
  assert.equal(r.steps.at(-1)!.tMs, 1302 + 3000 - 1000);
  assert.equal(r.asil, "QM");
  assert.equal(r.node, "worker-node2", "a sensor's node");
});

Deno.test("FTTI missed, blocked failovers, never-seen targets, abandon at close", () => {
  const clock = new FakeClock(0);
  const { rec, out } = recorder(clock);
  // lane-detection's promotion 600 ms after the last heartbeat: past its 500 ms FTTI
  const t = expiry(node2, 0, 590, 595);
  const laneD = failover(lane, triggerOf(t));
  rec.onEvent({ type: "transition", transition: t });
  rec.onEvent(promotionSent(laneD, 600));
  rec.onEvent({
    type: "blocked",
    atMs: 600,
    decision: {
      kind: "blocked",
      workload: pose,
      reason: "node-offline",
      why: "standby worker-node3 not healthy",
      unhealthy: [node3],
    },
  });
  // a node never heard from: offsets from the notice
  const never = expiry(node3, undefined, 5000, 5001, "never-seen");
  rec.onEvent({ type: "transition", transition: never });
  rec.onEvent({
    type: "blocked",
    atMs: 5002,
    decision: {
      kind: "blocked",
      workload: lane,
      reason: "node-never-seen",
      why: "x",
      unhealthy: [],
    },
  });
  clock.advance(6000);
  assert.equal(out.length, 1, "the blocked-only incident is finished at once");
  assert.equal(out[0].outcome, "blocked");
  assert.equal(out[0].trigger.heardFrom, false);
  assert.equal(out[0].steps[0].step, "expiry detected: never seen in the boot window");
  assert.equal(out[0].steps[0].tMs, 0);
  assert.equal(out[0].fttiMet, false);
  rec.close();
  assert.equal(out.length, 2);
  const r = out[1];
  assert.equal(r.outcome, "abandoned");
  assert.equal(r.fttiMet, false);
  assert.deepEqual(r.workloads.map((w) => [w.name, w.outcome, w.fttiMet]), [
    ["lane-detection", "failover", false],
    ["pose-estimation", "blocked", false],
  ]);
  assert.equal(r.asil, "B");
  rec.onEvent({ type: "transition", transition: t });
  assert.equal(clock.pendingTimers, 0, "nothing recorded after close");
});

Deno.test("a fence pending without a workload moved ends when the confirmed fence converges", () => {
  const clock = new FakeClock(0);
  const { rec, out } = recorder(clock);
  const t = expiry(node2, 100, 250, 251, "deadline");
  rec.onEvent({ type: "transition", transition: t });
  rec.onEvent({
    type: "fence-pending",
    atMs: 252,
    decision: {
      kind: "fence-pending",
      node: node2,
      reason: "node-expired",
      confirmAfterMs: 2000,
      why: "no-workload-moved",
    },
  });
  clock.advance(2300);
  assert.equal(out.length, 0);
  const fence: NodeDesired = {
    node: node2,
    fenced: true,
    cordon: true,
    taint: true,
    trigger: triggerOf(t),
  };
  rec.onEvent(reconciled(fence, 2300, [result("fenceNode", "node/worker-node2", 10)]));
  clock.advance(1);
  assert.equal(out.length, 1);
  assert.equal(out[0].outcome, "converged");
  assert.equal(out[0].asil, null);
  assert.equal(out[0].fttiMet, null);
  assert.deepEqual(out[0].steps.map((s) => s.kind), [
    "detect",
    "detect",
    "detect",
    "decide",
    "kube",
    "end",
  ]);
});

Deno.test("a pass retried for long keeps the line bounded: MAX_STEPS, the end marker kept", () => {
  const clock = new FakeClock(0);
  const { rec, out } = recorder(clock);
  const t = expiry(node2, 0, 10, 11);
  const laneD = failover(lane, triggerOf(t));
  rec.onEvent({ type: "transition", transition: t });
  rec.onEvent(promotionSent(laneD, 12));
  for (let i = 0; i < MAX_STEPS + 50; i++) {
    rec.onEvent(reconciled(laneD, 20 + i, [result("markActive", "x", 1, "failed")], false));
  }
  rec.onEvent(reconciled(laneD, 500, [result("markActive", "x", 1)]));
  clock.advance(600);
  assert.equal(out.length, 1);
  assert.equal(out[0].steps.length, MAX_STEPS + 1);
  assert.equal(out[0].stepsDropped, 3 + 1 + MAX_STEPS + 50 + 1 - MAX_STEPS);
  assert.equal(out[0].steps.at(-1)!.step, "converged");
});
