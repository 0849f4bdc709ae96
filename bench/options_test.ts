import assert from "node:assert/strict";
import { parseBenchArgs } from "./options.ts";

Deno.test("bench options: defaults are a full run", () => {
  const o = parseBenchArgs([]);
  assert.ok(o !== "help");
  assert.equal(o.reps, 50);
  assert.equal(o.tunedReps, 5);
  assert.equal(o.skipK3sDefault, false);
  assert.equal(o.loadTargets, 1000);
  assert.equal(o.out, "bench/results");
});

Deno.test("bench options: --smoke is small and skips K3s default", () => {
  const o = parseBenchArgs(["--smoke", "--out", "/tmp/x"]);
  assert.ok(o !== "help");
  assert.equal(o.reps, 3);
  assert.equal(o.skipK3sDefault, true);
  assert.ok(o.loadTargets <= 100);
  assert.equal(o.out, "/tmp/x");
});

Deno.test("bench options: explicit values, help, errors", () => {
  const o = parseBenchArgs([
    "--reps",
    "7",
    "--tuned-reps",
    "2",
    "--skip-k3s-default",
    "--load-targets",
    "500",
  ]);
  assert.ok(o !== "help");
  assert.deepEqual([o.reps, o.tunedReps, o.skipK3sDefault, o.loadTargets], [7, 2, true, 500]);
  assert.equal(parseBenchArgs(["--help"]), "help");
  assert.throws(() => parseBenchArgs(["--reps", "0"]), /--reps must be an integer ≥ 1/);
  assert.throws(() => parseBenchArgs(["--reps", "x"]), /--reps/);
  assert.throws(() => parseBenchArgs(["--bogus"]));
});

Deno.test("bench options: --phases and --merge", () => {
  const all = parseBenchArgs([]);
  assert.ok(all !== "help");
  assert.deepEqual(all.phases, ["failover", "tuned", "load"]);
  const o = parseBenchArgs(["--phases", "load", "--merge", "bench/results/latest.json"]);
  assert.ok(o !== "help");
  assert.deepEqual(o.phases, ["load"]);
  assert.equal(o.merge, "bench/results/latest.json");
  assert.throws(() => parseBenchArgs(["--phases", "load,bogus"]), /unknown phase bogus/);
});
