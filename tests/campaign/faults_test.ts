import assert from "node:assert/strict";
import { seededRandom } from "../../bench/stats.ts";
import {
  type DrawContext,
  FAULT_KINDS,
  FaultDraw,
  PAIR_ONLY_KINDS,
  PAIR_WEIGHTS,
} from "./faults.ts";

const CTX: DrawContext = {
  nodes: ["n1", "n2", "n3"],
  sensorsOf: (n) => (n === "n1" ? [] : [`cam-${n}`]),
  appWorkloads: ["lane"],
  activeNodeOf: () => "n2",
  periodMs: 20,
  timeoutMs: 150,
  bootWindowMs: 4000,
};

Deno.test("faults: one seed, one sequence; another seed, another", () => {
  const a = new FaultDraw(7), b = new FaultDraw(7), c = new FaultDraw(8);
  const seq = (d: FaultDraw) => Array.from({ length: 50 }, () => JSON.stringify(d.next(CTX)));
  const sa = seq(a);
  assert.deepEqual(sa, seq(b));
  assert.notDeepEqual(sa, seq(c));
});

Deno.test("faults: every kind is drawn, shaped within its bounds", () => {
  const d = new FaultDraw(1);
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const f = d.next(CTX);
    seen.add(f.kind);
    if (f.kind === "agent-stop-short") {
      assert.ok(f.durationMs! >= 20 && f.durationMs! <= 150 - 3 * 20, `short ${f.durationMs}`);
    }
    if (f.kind === "agent-stop-long") assert.ok(f.durationMs! >= 300);
    if (f.kind === "jitter") {
      // worst gap between heartbeats: period + latency + 2 × jitter stays below the timeout
      assert.ok(20 + f.latencyMs! + 2 * f.jitterMs! < 150, JSON.stringify(f));
      assert.ok(f.jitterMs! <= f.latencyMs!, "toxiproxy: jitter ≤ latency");
    }
    if (f.kind === "sensor-loss") assert.notEqual(f.node, "n1", "n1 has no sensor");
    if (f.kind === "boot") {
      for (const ms of Object.values(f.bootDelaysMs!)) assert.ok(ms >= 0 && ms <= 2000);
    }
  }
  assert.deepEqual(
    [...seen].sort(),
    FAULT_KINDS.filter((k) => !PAIR_ONLY_KINDS.includes(k)).sort(),
    "the single mode draws no pair-only kind",
  );
});

Deno.test("faults: pair mode draws the pair's faults, striking who holds the role when drawn", () => {
  let leader = "sup-a";
  const ctx: DrawContext = {
    ...CTX,
    pair: { leader: () => leader, standby: () => (leader === "sup-a" ? "sup-b" : "sup-a") },
  };
  const d = new FaultDraw(5, PAIR_WEIGHTS);
  const seen = new Set<string>();
  const scopes = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    if (i === 2500) leader = "sup-b";
    const f = d.next(ctx);
    seen.add(f.kind);
    if (f.kind === "broker-kill" || f.kind === "broker-kill-crash" || f.kind === "broker-stall") {
      assert.ok(f.broker === 0 || f.broker === 1, JSON.stringify(f));
    }
    if (f.kind === "broker-stall") assert.ok(f.durationMs! >= 50 && f.durationMs! <= 8000);
    if (f.kind === "broker-kill") assert.ok(f.durationMs! >= 0 && f.durationMs! <= 3000);
    if (f.kind === "supervisor-kill" || f.kind === "supervisor-kill-crash") {
      assert.deepEqual([f.role, f.supervisor], ["leader", leader]);
    }
    if (f.kind === "supervisor-restart") {
      assert.deepEqual([f.role, f.supervisor !== leader], ["standby", true]);
    }
    if (PAIR_ONLY_KINDS.includes(f.kind) && f.kind.endsWith("-crash")) {
      assert.ok(CTX.nodes.includes(f.node!), JSON.stringify(f));
      assert.ok(f.delayMs! >= 0 && f.delayMs! <= 1000);
    }
    if (f.kind === "supervisor-partition" || f.kind === "supervisor-partition-crash") {
      scopes.add(`${f.kind}:${f.scope}`);
      if (f.scope === "sides") assert.equal(f.supervisor, undefined);
      else assert.equal(f.supervisor, f.scope === "leader-bus" ? leader : ctx.pair!.standby());
    }
  }
  assert.deepEqual(
    [...seen].sort(),
    FAULT_KINDS.filter((k) => PAIR_WEIGHTS[k] > 0).sort(),
  );
  assert.ok(!seen.has("api-stop-crash") && !seen.has("broker-restart"), "off in pair mode");
  assert.deepEqual([...scopes].sort(), [
    "supervisor-partition-crash:leader-bus",
    "supervisor-partition-crash:sides",
    "supervisor-partition:leader-bus",
    "supervisor-partition:sides",
    "supervisor-partition:standby-bus",
  ]);
});

Deno.test("faults: weights select kinds; all-zero weights are an error", () => {
  const d = new FaultDraw(3, { "node-crash": 1 });
  for (let i = 0; i < 100; i++) assert.equal(d.next(CTX).kind, "node-crash");
  assert.throws(() => new FaultDraw(3, { "node-crash": 0 }), /every fault weight is 0/);
});

Deno.test("faults: the PRNG is uniform enough for a draw", () => {
  const r = seededRandom(42);
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 100_000; i++) buckets[Math.floor(r() * 10)]++;
  for (const b of buckets) assert.ok(b > 9_500 && b < 10_500, `bucket ${b}`);
});
