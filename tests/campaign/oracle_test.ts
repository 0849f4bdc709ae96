import assert from "node:assert/strict";
import {
  type Expectation,
  type ObservedPromotion,
  Oracle,
  type OracleWorkload,
  type PairObservation,
} from "./oracle.ts";
import type { DrawnFault } from "./faults.ts";
import type { LeadershipPeriod } from "./supervisor_log.ts";

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

// ---- pair mode ------------------------------------------------------------------------------

const period = (
  supervisor: string,
  fromWallMs: number,
  toWallMs: number,
  term: number,
): LeadershipPeriod => ({
  supervisor,
  id: supervisor.split("#")[0],
  fromWallMs,
  toWallMs,
  term,
  open: false,
});
const pairObs = (over: Partial<PairObservation> = {}): PairObservation => ({
  leadership: [period("sup-a#1", 0, 10_000, 1)],
  leaderBefore: "sup-a",
  leaderAfter: "sup-a",
  expiries: [],
  ingestFaults: [],
  promotionsSent: [],
  ...over,
});
const pairOracle = () =>
  new Oracle(WORKLOADS, {
    plannedStopBudgetMs: 3000,
    takeoverBoundMs: 1000,
    nodeOfTarget: (t) => t.startsWith("sensor/") ? `n${t.at(-1)}` : t.split("/").at(-1),
  });
const judgePair = (
  o: Oracle,
  e: Expectation,
  pair: PairObservation,
  promotions: ObservedPromotion[] = [],
  fenced: string[] = [],
) => o.judge(e, { injectedAtWallMs: 1000, promotions, fencedNodes: new Set(fenced), pair });
const sent = (supervisor: string, workload: string, epoch: number, activeNode: string) => ({
  supervisor,
  workload,
  epoch,
  activeNode,
  wallMs: 2000,
});

Deno.test("oracle pair: a single broker loss must expire nothing, fault no ingest, move nothing", () => {
  const o = pairOracle();
  const e = o.expect(fault({ kind: "broker-kill", broker: 0, durationMs: 500 }));
  assert.equal(e.promote.size, 0);
  assert.equal(e.leadership, "stay");
  const clean = judgePair(o, e, pairObs());
  assert.deepEqual([clean.falseActions, clean.missed, clean.splitBrain], [[], [], []]);
  const bad = judgePair(
    o,
    e,
    pairObs({
      expiries: [{ supervisor: "sup-b#1", target: "node/n1", wallMs: 1200 }],
      ingestFaults: [{ supervisor: "sup-a#1", why: "broker connection closed", wallMs: 1100 }],
    }),
    [promo("cluster", 1, "n2", 300)],
  );
  assert.equal(bad.falseActions.length, 3, bad.falseActions.join("; "));
  assert.match(bad.falseActions.join(" "), /node\/n1 expired on sup-b#1/);
  assert.match(bad.falseActions.join(" "), /ingest fault on sup-a#1/);
  // a pair's broker stall too; the single mode's broker stall is not judged on its logs
  const stall = o.expect(fault({ kind: "broker-stall", broker: 1, durationMs: 500 }));
  assert.deepEqual([...stall.expiryAllowedNodes!], []);
  const single = o.expect(fault({ kind: "broker-stall", durationMs: 500 }));
  assert.equal(single.expiryAllowedNodes, undefined);
  assert.equal(single.leadership, undefined);
});

Deno.test("oracle pair: a crash while a broker or the leader is lost moves its workloads; budget FTTI + takeover", () => {
  const o = pairOracle();
  const b = o.expect(fault({ kind: "broker-kill-crash", broker: 1, node: "n1", delayMs: 100 }));
  assert.deepEqual(Object.fromEntries(b.promote), { cluster: "n2" });
  assert.equal(b.budgetMs.get("cluster"), 500, "a broker loss changes nothing: the FTTI");
  assert.deepEqual([...b.expiryAllowedNodes!], ["n1"]);
  // the crashed node's targets may expire, another node's may not
  const v = judgePair(
    o,
    b,
    pairObs({
      expiries: [
        { supervisor: "sup-a#1", target: "node/n1", wallMs: 1100 },
        { supervisor: "sup-b#1", target: "app/cluster/n1", wallMs: 1100 },
        { supervisor: "sup-b#1", target: "sensor/cam3", wallMs: 1100 },
      ],
    }),
    [promo("cluster", 1, "n2", 20)],
    ["n1"],
  );
  assert.deepEqual(v.missed, []);
  assert.equal(v.falseActions.length, 1, v.falseActions.join("; "));
  assert.match(v.falseActions[0], /sensor\/cam3/);

  const k = o.expect(
    fault({ kind: "supervisor-kill-crash", role: "leader", supervisor: "sup-a", node: "n2" }),
  );
  assert.deepEqual(Object.fromEntries(k.promote), { lane: "n3", pose: "n3", cluster: "n1" });
  assert.equal(k.budgetMs.get("lane"), 1500);
  assert.equal(k.budgetMs.get("pose"), 2000);
  assert.equal(k.leadership, "move");
  // 1200 ms after the crash: within FTTI + takeover, though over the FTTI alone
  const ok = judgePair(
    o,
    k,
    pairObs({
      leadership: [period("sup-a#1", 0, 1000, 1), period("sup-b#1", 1600, 9000, 2)],
      leaderAfter: "sup-b",
      takeoverMs: 600,
    }),
    [promo("lane", 1, "n3", 1200), promo("pose", 1, "n3", 1201), promo("cluster", 2, "n1", 1202)],
    ["n2"],
  );
  assert.deepEqual([ok.falseActions, ok.missed, ok.splitBrain], [[], [], []]);
  assert.equal(ok.takeoverMs, 600);
  // a side partition loses no leader: the FTTI alone
  const s = o.expect(fault({ kind: "supervisor-partition-crash", scope: "sides", node: "n3" }));
  assert.equal(s.budgetMs.get("lane"), 500);
  assert.equal(s.leadership, "stay");
  assert.deepEqual([...s.ingestFaultAllowed!], [], "each side keeps its own broker");
});

Deno.test("oracle pair: a leader that was killed or lost its bus and still leads is missed", () => {
  const o = pairOracle();
  const e = o.expect(
    fault({
      kind: "supervisor-partition",
      scope: "leader-bus",
      role: "leader",
      supervisor: "sup-a",
    }),
  );
  assert.deepEqual([...e.ingestFaultAllowed!], ["sup-a"], "the cut leader may fault");
  const v = judgePair(
    o,
    e,
    pairObs({
      ingestFaults: [{ supervisor: "sup-a#1", why: "barrier", wallMs: 1400 }],
      leaderAfter: "sup-a",
    }),
  );
  assert.deepEqual(v.falseActions, []);
  assert.equal(v.missed.length, 1);
  assert.match(v.missed[0], /sup-a still leads/);
  // a standby's cut: the lead stays; a change is noted, not judged
  const st = o.expect(
    fault({
      kind: "supervisor-partition",
      scope: "standby-bus",
      role: "standby",
      supervisor: "sup-b",
    }),
  );
  const moved = judgePair(o, st, pairObs({ leaderAfter: "sup-b" }));
  assert.deepEqual([moved.falseActions, moved.missed, moved.splitBrain], [[], [], []]);
  assert.deepEqual(moved.handovers, ["lead moved from sup-a to sup-b"]);
});

Deno.test("oracle pair: overlapping leadership, a term led twice or an epoch decided twice is split brain", () => {
  const o = pairOracle();
  const e = o.expect(fault({ kind: "supervisor-kill", role: "leader", supervisor: "sup-a" }));
  const overlap = judgePair(
    o,
    e,
    pairObs({
      leadership: [period("sup-a#1", 0, 1500, 1), period("sup-b#1", 1400, 9000, 2)],
      leaderAfter: "sup-b",
    }),
  );
  assert.equal(overlap.splitBrain.length, 1, overlap.splitBrain.join("; "));
  assert.match(overlap.splitBrain[0], /led at once for 100\.0 ms/);
  // reported once, by the first fault that sees it
  const again = judgePair(
    o,
    o.expect(fault({ kind: "api-stop" })),
    pairObs({
      leadership: [period("sup-a#1", 0, 1500, 1), period("sup-b#1", 1400, 9000, 2)],
      leaderBefore: "sup-b",
      leaderAfter: "sup-b",
    }),
  );
  assert.deepEqual(again.splitBrain, []);
  // disjoint periods of the same term
  const term = judgePair(
    pairOracle(),
    e,
    pairObs({
      leadership: [period("sup-a#1", 0, 1000, 3), period("sup-b#1", 1500, 9000, 3)],
      leaderAfter: "sup-b",
    }),
  );
  assert.equal(term.splitBrain.length, 1);
  assert.match(term.splitBrain[0], /term 3 led by sup-a#1 and sup-b#1/);
  // one epoch decided by both processes (even naming one node), or naming two nodes
  const epochs = judgePair(
    pairOracle(),
    e,
    pairObs({
      leadership: [period("sup-a#1", 0, 1000, 1), period("sup-b#1", 1500, 9000, 2)],
      leaderAfter: "sup-b",
      promotionsSent: [
        sent("sup-a#1", "lane", 1, "n3"),
        sent("sup-b#1", "lane", 1, "n3"),
        sent("sup-b#1", "pose", 1, "n3"),
        sent("sup-b#1", "pose", 1, "n2"),
        sent("sup-b#1", "cluster", 1, "n2"),
        sent("sup-b#1", "cluster", 2, "n1"),
      ],
    }),
  );
  assert.equal(epochs.splitBrain.length, 2, epochs.splitBrain.join("; "));
  assert.match(
    epochs.splitBrain.join(" "),
    /lane epoch 1 decided by sup-a#1 \(n3\) and by sup-b#1/,
  );
  assert.match(epochs.splitBrain.join(" "), /pose epoch 1 .* \(n3\) and by sup-b#1 \(n2\)/);
});

Deno.test("oracle pair: an expiry whose silence a stall of the node's own process covers is the rig's", () => {
  const o = new Oracle(WORKLOADS, {
    plannedStopBudgetMs: 3000,
    nodeOfTarget: (t) => t.split("/").at(-1),
    stallExplainsMs: 90,
  });
  const e = o.expect(fault({ kind: "broker-kill", broker: 1, durationMs: 500 }));
  const expiry = { supervisor: "sup-a#1", target: "node/n1", wallMs: 2000, silenceMs: 152 };
  const stalled = judgePair(
    o,
    e,
    pairObs({
      expiries: [expiry],
      nodeStalls: [{ node: "n1", fromWallMs: 1850, toWallMs: 1960 }],
    }),
  );
  assert.deepEqual(stalled.falseActions, []);
  assert.equal(stalled.rigStalls?.length, 1);
  assert.match(stalled.rigStalls![0], /n1 itself did not run for 110 of its 152 ms/);
  // too short a stall, another node's stall, or an expiry by Last Will: the fault's
  for (
    const [x, stalls] of [
      [expiry, [{ node: "n1", fromWallMs: 1900, toWallMs: 1960 }]],
      [expiry, [{ node: "n2", fromWallMs: 1850, toWallMs: 1960 }]],
      [{ ...expiry, silenceMs: undefined }, [{ node: "n1", fromWallMs: 1850, toWallMs: 1960 }]],
    ] as const
  ) {
    const v = judgePair(o, e, pairObs({ expiries: [x], nodeStalls: stalls }));
    assert.equal(v.falseActions.length, 1, JSON.stringify(x));
    assert.equal(v.rigStalls, undefined);
  }
});
