import assert from "node:assert/strict";
import {
  distribution,
  type PairBenchResults,
  pairMarkdown,
  summarizeSeries,
} from "./pair_report.ts";
import { type PairSeries, stepDowns } from "./pair_run.ts";
import type { LogLine } from "../tests/harness/supervisor_process.ts";

const timing = { leaseDurationMs: 250, renewDeadlineMs: 150, retryPeriodMs: 30 };
const series: PairSeries = {
  timing,
  samples: [
    { kind: "takeover", rep: 1, killed: "a", survivor: "b", takeoverMs: 270 },
    {
      kind: "fault",
      rep: 2,
      killed: "b",
      survivor: "a",
      takeoverMs: 280,
      faultToPromotionReceivedMs: 290,
    },
    {
      kind: "fault",
      rep: 3,
      killed: "a",
      survivor: "b",
      takeoverMs: 300,
      faultToPromotionReceivedMs: 600,
    },
    { kind: "fault", rep: 4, killed: "b", survivor: "a", takeoverMs: 900, error: "blocked" },
  ],
  stepDowns: [{ id: "a", reason: "renew-deadline", gapMs: 40 }, {
    id: "b",
    reason: "renew-deadline",
  }],
  durationS: 10,
};

Deno.test("distribution: nearest-rank p50/p99 of the finite values", () => {
  assert.equal(distribution([]), undefined);
  assert.deepEqual(distribution([3, undefined, 1, 2]), { n: 3, p50: 2, p99: 3, max: 3 });
});

Deno.test("summarizeSeries: failed repetitions left out and counted; FTTI share; step-downs", () => {
  const s = summarizeSeries(series, 500);
  assert.deepEqual(s.takeoverMs, { n: 3, p50: 280, p99: 300, max: 300 });
  assert.deepEqual(s.faultToPromotionReceivedMs, { n: 2, p50: 290, p99: 600, max: 600 });
  assert.deepEqual(s.withinFtti, { n: 1, of: 2, fttiMs: 500 });
  assert.equal(s.errors, 1);
  assert.deepEqual(s.stepDowns, { count: 2, byReason: { "renew-deadline": 2 }, gapMaxMs: 40 });
});

Deno.test("stepDowns: releases ignored; gap to the next election of any instance", () => {
  const line = (event: string, wallMs: number, reason?: string): LogLine => ({
    tMs: 0,
    wallMs,
    level: "info",
    event,
    ...(reason ? { reason } : {}),
  });
  const got = stepDowns([
    {
      id: "a",
      proc: {
        lines: [
          line("leader-elected", 0),
          line("leader-stepped-down", 100, "renew-deadline"),
          line("leader-stepped-down", 500, "released"),
        ],
      },
    },
    { id: "b", proc: { lines: [line("leader-elected", 130)] } },
  ]);
  assert.deepEqual(got, [{ id: "a", reason: "renew-deadline", gapMs: 30 }]);
});

Deno.test("pairMarkdown: one row per series and the failed repetitions listed", () => {
  const results = {
    date: "2026-01-01T00:00:00.000Z",
    durationS: 60,
    commit: "abc",
    machine: { cpus: 2, cpuModel: "x", memoryGiB: 1, kernel: "k", deno: "d" },
    rig: { nodeTimeoutMs: 150, periodMs: 20, fttiMs: 500, bootWindowMs: 2000 },
    summaries: [summarizeSeries(series, 500)],
    series: [series],
  } as unknown as PairBenchResults;
  const md = pairMarkdown(results);
  assert.match(
    md,
    /\| 250 \/ 150 \/ 30 \| none \| 280 \/ 300 \/ 300 \(n=3\) \| 290 \/ 600 \/ 600 \(n=2\) \| 1\/2 \|/,
  );
  assert.match(md, /- 250 \/ 150 \/ 30, repetition 4 \(fault\): blocked/);
});
