import assert from "node:assert/strict";
import { ecdf, quantile, ratio, seededRandom, sortedFinite, summarize } from "./stats.ts";

Deno.test("quantile is nearest-rank: a reported value was measured", () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(quantile(xs, 0.5), 50);
  assert.equal(quantile(xs, 0.95), 95);
  assert.equal(quantile(xs, 0.99), 99);
  assert.equal(quantile(xs, 1), 100);
  assert.equal(quantile([7], 0.99), 7);
  assert.equal(quantile([1, 2, 3], 0.5), 2);
  assert.equal(quantile([], 0.5), undefined);
  assert.throws(() => quantile(xs, 0), RangeError);
  assert.throws(() => quantile(xs, 1.5), RangeError);
});

Deno.test("summarize ignores missing and non-finite samples", () => {
  assert.equal(summarize([]), undefined);
  assert.equal(summarize([undefined, null, NaN]), undefined);
  const s = summarize([3, undefined, 1, 2, Infinity, null])!;
  assert.deepEqual(
    { n: s.n, p50: s.p50, max: s.max, min: s.min, mean: s.mean },
    { n: 3, p50: 2, max: 3, min: 1, mean: 2 },
  );
  assert.deepEqual(sortedFinite([3, -1, NaN, 2]), [-1, 2, 3]);
});

Deno.test("ratio only for positive finite denominators", () => {
  assert.equal(ratio(350_000, 35), 10_000);
  assert.equal(ratio(1, 0), undefined);
  assert.equal(ratio(undefined, 1), undefined);
  assert.equal(ratio(1, undefined), undefined);
  assert.equal(ratio(-1, 1), undefined);
});

Deno.test("ecdf is ascending and ends at 1", () => {
  const pts = ecdf([30, 10, 20, undefined]);
  assert.deepEqual(pts.map((p) => p.x), [10, 20, 30]);
  assert.deepEqual(pts.map((p) => p.p), [1 / 3, 2 / 3, 1]);
});

Deno.test("seededRandom is deterministic and in [0, 1)", () => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  const xs = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(xs.slice(0, 5), Array.from({ length: 5 }, () => b()));
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  assert.notDeepEqual(xs.slice(0, 5), Array.from({ length: 5 }, seededRandom(43)));
});
