import assert from "node:assert/strict";
import { type Expectation, type ObservedPromotion, Oracle, type OracleWorkload } from "./oracle.ts";
import type { DrawnFault } from "./faults.ts";

const WORKLOADS: OracleWorkload[] = [
  {
    name: "lane",
    primaryNode: "n2",
    standbyNode: "n3",
    sensorsByNode: { n2: ["cam2"], n3: ["cam3"] },
    fttiMs: 500,
  },
  {
    name: "pose",
    primaryNode: "n2",
    standbyNode: "n3",
    sensorsByNode: { n2: ["lidar2"], n3: ["lidar3"] },
    fttiMs: 1000,
  },
  { name: "cluster", primaryNode: "n1", standbyNode: "n2", sensorsByNode: {}, fttiMs: 500 },
];

const oracle = () => new Oracle(WORKLOADS, { plannedStopBudgetMs: 3000 });
const fault = (f: Omit<DrawnFault, "seq">): DrawnFault => ({ seq: 1, ...f });
const promo = (
  workload: string,
  epoch: number,
  activeNode: string,
  atMs: number,
): ObservedPromotion => ({
  workload,
  epoch,
  activeNode,
  reason: "test",
  receivedAtWallMs: 1000 + atMs,
});
const judge = (
  o: Oracle,
  e: Expectation,
  promotions: ObservedPromotion[],
  fenced: string[] = [],
) => o.judge(e, { injectedAtWallMs: 1000, promotions, fencedNodes: new Set(fenced) });

Deno.test("oracle: a node failure moves the workloads active there and fences it", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "node-crash", node: "n2" }));
  assert.deepEqual(Object.fromEntries(e.promote), { lane: "n3", pose: "n3" });
  assert.deepEqual([...e.fenceRequired], ["n2"]);
  const v = judge(o, e, [promo("lane", 1, "n3", 40), promo("pose", 1, "n3", 41)], ["n2"]);
  assert.deepEqual([v.falseActions, v.missed, v.splitBrain], [[], [], []]);
  assert.deepEqual(v.reactionMs, [40, 41]);
  assert.equal(o.activeNode("lane"), "n3");
  assert.equal(o.epoch("lane"), 1);
  // the next failure of n3 moves them back, with epoch 2
  const back = o.expect(fault({ kind: "node-hang", node: "n3" }));
  assert.deepEqual(Object.fromEntries(back.promote), { lane: "n2", pose: "n2" });
});

Deno.test("oracle: a promotion not called for, or to the wrong node, is false", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "jitter", node: "n2" }));
  assert.equal(e.promote.size, 0);
  const v = judge(o, e, [promo("lane", 1, "n3", 100)], ["n2"]);
  assert.equal(v.falseActions.length, 2, v.falseActions.join("; "));
  assert.equal(o.activeNode("lane"), "n3", "the model follows reality");
});

Deno.test("oracle: a late or absent promotion is missed; a required fence not there is missed", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "partition", node: "n2" }));
  const v = judge(o, e, [promo("lane", 1, "n3", 650)]);
  assert.equal(v.missed.length, 3, v.missed.join("; ")); // lane late, pose never, n2 not fenced
  assert.match(v.missed.join(" "), /over its 500 ms budget/);
});

Deno.test("oracle: sensor loss moves only the workloads whose active side needs the sensor", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "sensor-loss", node: "n2", sensor: "lidar2" }));
  assert.deepEqual(Object.fromEntries(e.promote), { pose: "n3" });
  assert.equal(e.fenceAllowed.size, 0);
});

Deno.test("oracle: the same epoch with two active nodes, or an epoch going back, is split brain", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "app-hang", workload: "cluster", node: "n1" }));
  const v = judge(o, e, [
    promo("cluster", 1, "n2", 30),
    promo("cluster", 1, "n1", 31),
    promo("cluster", 1, "n2", 32), // a repeat of a known promotion is neither
  ]);
  assert.equal(v.splitBrain.length, 1);
  const e2 = o.expect(fault({ kind: "api-stop" }));
  const v2 = judge(o, e2, [promo("cluster", 0, "n1", 10)]);
  assert.equal(v2.splitBrain.length, 1);
  assert.equal(v2.falseActions.length, 1);
});

Deno.test("oracle: a second promotion of a moved workload in the same fault is false", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "app-hang", workload: "lane", node: "n2" }));
  const v = judge(o, e, [promo("lane", 1, "n3", 30), promo("lane", 2, "n2", 400)]);
  assert.equal(v.falseActions.length, 1);
  assert.equal(v.missed.length, 0);
});

Deno.test("oracle: a short agent stop may leave a pending fence cancelled; a planned stop never fences", () => {
  const o = oracle();
  const long = o.expect(fault({ kind: "agent-stop-long", node: "n3", durationMs: 400 }));
  assert.equal(long.promote.size, 0);
  assert.deepEqual([[...long.fenceRequired], [...long.fenceAllowed]], [[], ["n3"]]);
  const plan = o.expect(fault({ kind: "planned-stop", node: "n1" }));
  assert.deepEqual(Object.fromEntries(plan.promote), { cluster: "n2" });
  assert.equal(plan.budgetMs.get("cluster"), 3000);
  assert.equal(plan.fenceAllowed.size, 0);
});

Deno.test("oracle: an inconclusive stop allows the node's failover without requiring it", () => {
  const o = oracle();
  const e = o.expect(fault({ kind: "agent-stop-short", node: "n1", durationMs: 60 }));
  o.allowNodeFailure(e, "n1");
  const v = judge(o, e, [promo("cluster", 1, "n2", 170)], ["n1"]);
  assert.deepEqual([v.falseActions, v.missed], [[], []]);
  const e2 = o.expect(fault({ kind: "agent-stop-short", node: "n3", durationMs: 60 }));
  o.allowNodeFailure(e2, "n3");
  assert.deepEqual([judge(o, e2, []).falseActions, judge(o, e2, []).missed], [[], []]);
  // only the node's own workloads, and only to their other side
  const e3 = o.expect(fault({ kind: "agent-stop-short", node: "n2", durationMs: 60 }));
  o.allowNodeFailure(e3, "n2");
  assert.equal(judge(o, e3, [promo("lane", 1, "n1", 200)]).falseActions.length, 1);
});
