import assert from "node:assert/strict";
import { DEFAULT_TIMINGS, parsePairBenchArgs, parseTimings } from "./pair_options.ts";

Deno.test("parsePairBenchArgs: defaults, flags, help", () => {
  const d = parsePairBenchArgs([]);
  assert.ok(d !== "help");
  assert.equal(d.reps, 30);
  assert.equal(d.faultReps, 30);
  assert.equal(d.stressReps, 0);
  assert.deepEqual(d.timings, parseTimings(DEFAULT_TIMINGS));
  assert.deepEqual(d.timings[0], { leaseDurationMs: 400, renewDeadlineMs: 250, retryPeriodMs: 50 });
  assert.equal(d.out, "bench/results/pair.json");
  const o = parsePairBenchArgs(["--reps", "2", "--fault-reps", "0", "--timings", "100/60/10"]);
  assert.ok(o !== "help");
  assert.equal(o.reps, 2);
  assert.equal(o.faultReps, 0);
  assert.deepEqual(o.timings, [{ leaseDurationMs: 100, renewDeadlineMs: 60, retryPeriodMs: 10 }]);
  assert.equal(parsePairBenchArgs(["--help"]), "help");
});

Deno.test("parsePairBenchArgs: unknown flags, bad numbers and timings out of order are errors", () => {
  assert.throws(() => parsePairBenchArgs(["--nope"]));
  assert.throws(() => parsePairBenchArgs(["--reps", "-1"]), /--reps/);
  assert.throws(() => parseTimings("400/250"), /not leaseMs/);
  assert.throws(() => parseTimings("250/400/50"), /retry < renew deadline < lease/);
  assert.throws(() => parseTimings("400/250/250"), /retry < renew deadline < lease/);
  assert.throws(() => parseTimings(""), /at least one/);
});
