import assert from "node:assert/strict";
import { renderPlots } from "./plots.ts";
import { ratioTable, renderReport, scenarioTable } from "./report.ts";
import type { BenchResults, Sample } from "./results.ts";
import { apiWriteComparison, checkGoals, fmtMs, fmtRatio } from "./summary.ts";

function sample(mode: Sample["mode"], scenario: Sample["scenario"], rep: number, f = 1): Sample {
  const k3s = mode.startsWith("k3s");
  return {
    mode,
    scenario,
    rep,
    detected: true,
    notes: [],
    faultToDetectionMs: k3s ? 43_000 * f : 30 * f,
    expiryToPromotionReceivedMs: k3s ? undefined : 3 * f,
    expiryToActionsMs: k3s ? undefined : 20 * f,
    faultToPromotionReceivedMs: k3s ? undefined : 33 * f,
    faultToReplacementRunningMs: k3s ? 343_000 * f : 200 * f,
    faultToNotReadyMs: k3s ? 43_000 * f : undefined,
    latenessMs: k3s ? undefined : 1 * f,
  };
}

export function fixture(): BenchResults {
  const samples: Sample[] = [];
  for (let rep = 1; rep <= 10; rep++) {
    for (const sc of ["node-crash", "node-hang", "sensor-loss", "app-hang"] as const) {
      samples.push(sample("ours-fast", sc, rep, 1 + rep / 100));
      samples.push(sample("ours-example", sc, rep, 3 + rep / 100));
    }
  }
  samples.push(sample("k3s-default", "node-crash", 1));
  samples.push({
    mode: "k3s-default",
    scenario: "sensor-loss",
    rep: 1,
    detected: false,
    notes: ["blind"],
  });
  const run = {
    targets: 1000,
    durationS: 20,
    sentPerS: 50_000,
    ingestPerS: 49_900,
    ingestSeries: [49_900],
    deadlinesMissed: 0,
    missedTargets: [],
    pauses: 100,
    pausesDetected: 100,
    lateness: { n: 100, p50: 1, p95: 1.5, p99: 1.9, max: 2.5, min: 0.2, mean: 1 },
    latenessSamples: [],
    silence: undefined,
    cpuPercent: 60,
    rssMaxMb: 79,
    rssEndMb: 78,
    spawnToArmedMs: 250,
    processArmedMs: 230,
    publisherBound: false,
  };
  const results: BenchResults = {
    schema: 1,
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:40:00.000Z",
    durationS: 2400,
    options: { reps: 10 },
    machine: {
      hostname: "h",
      cpus: 2,
      cpuModel: "cpu",
      memoryGiB: 24,
      kernel: "6",
      os: "linux x86_64",
      deno: "2.9.5",
      v8: "x",
      typescript: "y",
    },
    controlPlanes: {},
    samples,
    load: {
      headline: run,
      search: [{ ...run, targets: 2000, deadlinesMissed: 3 }],
      maxTargetsNoMiss: 1000,
      minTargetsWithMiss: 2000,
      searchNote: "note",
    },
    phases: [],
    goals: [],
    notes: ["a note"],
  };
  results.goals = checkGoals(samples, results.load);
  return results;
}

Deno.test("fmtMs and fmtRatio", () => {
  assert.equal(fmtMs(undefined), "—");
  assert.equal(fmtMs(1.234), "1.23 ms");
  assert.equal(fmtMs(12.34), "12.3 ms");
  assert.equal(fmtMs(123.4), "123 ms");
  assert.equal(fmtMs(1234), "1.23 s");
  assert.equal(fmtMs(343_500), "343.5 s");
  assert.equal(fmtRatio(11_433.3), "×11,433");
  assert.equal(fmtRatio(undefined), "—");
});

Deno.test("goals are checked against p99 of ours-fast and the load headline", () => {
  const goals = checkGoals(fixture().samples, fixture().load);
  const by = Object.fromEntries(goals.map((g) => [g.goal.split(" at ")[0], g.met]));
  assert.equal(by["expiry → promotion received"], true); // p99 3.03 ms ≤ 5
  assert.equal(by["expiry → all API actions acknowledged"], true); // 20.2 ≤ 25
  assert.equal(by["fault → promotion received"], true);
  assert.equal(by["detection lateness"], true);
  assert.equal(by["runtime RSS"], true);
  assert.equal(goals.length, 8);
});

Deno.test("report: tables per scenario, ratios K3s default ÷ ours, blind modes named", () => {
  const r = fixture();
  const md = renderReport(r, ["timeline.svg"]);
  assert.match(md, /!\[timeline\.svg\]\(timeline\.svg\)/);
  assert.match(md, /\| metric \| mode \| n \| p50 \| p95 \| p99 \| max \|/);
  const crash = scenarioTable(r.samples, "node-crash");
  assert.match(crash, /\| fault → replacement Running \| k3s-default \| 1 \| 343\.0 s/);
  assert.match(scenarioTable(r.samples, "sensor-loss"), /Not detected at all: \*\*k3s-default\*\*/);
  const ratios = ratioTable(r.samples, ["node-crash"]);
  // 343 s ÷ p50 of ours-fast (200 × 1.05 = 210 ms) ≈ ×1,633
  assert.match(ratios, /×1,6\d\d/);
});

Deno.test("plots render to SVG", async () => {
  const svgs = await renderPlots(fixture());
  assert.deepEqual(Object.keys(svgs).sort(), ["latency_cdf.svg", "load.svg", "timeline.svg"]);
  for (const svg of Object.values(svgs)) {
    assert.match(svg, /^<svg /);
    assert.ok(svg.length > 1000);
  }
});

Deno.test("report: expiry → all API actions beside the same run's datastore write latency", () => {
  const r = fixture();
  assert.deepEqual(apiWriteComparison(r), [], "no probe, no line");
  const summary = (p50: number, p99: number) => ({
    n: 50,
    p50,
    p95: p99,
    p99,
    max: p99,
    min: 1,
    mean: p50,
  });
  r.apiProbe = { sequential: summary(10, 40), concurrentRound: summary(17, 34), concurrency: 5 };
  const lines = apiWriteComparison(r);
  assert.equal(lines.length, 2);
  // ours-fast: expiryToActionsMs 20 × (1 + rep/100), p50 at rep 5 = 21 ms; ÷ 10 ms
  assert.match(lines[0], /^ours-fast: expiry → all API actions acknowledged p50 21\.0 ms/);
  assert.match(lines[0], /one datastore write \(merge-patch, kine\) p50 10\.0 ms \/ p99 40\.0 ms/);
  assert.match(lines[0], /5 concurrent writes p50 17\.0 ms/);
  assert.match(lines[0], /×2\.10 one write's p50/);
  assert.match(renderReport(r), /datastore write latency measured in the same run:\n\n- ours-fast/);
});
