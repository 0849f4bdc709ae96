/**
 * The pair benchmark's results: per series (Lease timing, with or without CPU stress) the
 * distributions of takeover and of fault → promotion during a takeover, the leadership gaps, and
 * the markdown summary written beside `bench/results/pair.json`.
 *
 * @module
 */
import type { LeaseTiming } from "../tests/harness/pair_rig.ts";
import type { MachineInfo } from "./machine.ts";
import type { PairSample, PairSeries, StepDown } from "./pair_run.ts";
import { quantile, sortedFinite } from "./stats.ts";

/** n / p50 / p99 / max of one metric, ms (nearest rank: every value was measured). */
export interface Distribution {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

/** What one series measured. */
export interface SeriesSummary {
  timing: LeaseTiming;
  stress?: string;
  /** SIGKILL of the leader → the survivor's `leader-elected`, every repetition. */
  takeoverMs?: Distribution;
  /** Fault repetitions: node crash → the last of its promotions received. */
  faultToPromotionReceivedMs?: Distribution;
  /** Fault repetitions: node crash → its expiry on the survivor's watchdog. */
  faultToExpiryMs?: Distribution;
  /** Fault repetitions: the survivor's `leader-elected` → its last promotion sent. */
  leaderToPromotionSentMs?: Distribution;
  /** Fault repetitions whose promotion arrived within the workloads' smallest FTTI. */
  withinFtti: { n: number; of: number; fttiMs: number };
  /** Repetitions that failed (see the samples' `error`). */
  errors: number;
  /** Leadership periods ended by a missed renew deadline (or a lost Lease), and their gaps. */
  stepDowns: { count: number; byReason: Record<string, number>; gapMaxMs?: number };
}

/** The file `bench/results/pair.json`. */
export interface PairBenchResults {
  kind: "supervisor-pair";
  date: string;
  /** The commit under test (`git describe --always --dirty`). */
  commit: string;
  durationS: number;
  machine: MachineInfo;
  options: Record<string, unknown>;
  /** The rig's supervision timing (as `tests/pair_test.ts`). */
  rig: { nodeTimeoutMs: number; periodMs: number; fttiMs: number; bootWindowMs: number };
  summaries: SeriesSummary[];
  series: PairSeries[];
}

/** The distribution of the finite values; `undefined` when there are none. */
export function distribution(xs: readonly (number | undefined)[]): Distribution | undefined {
  const s = sortedFinite(xs);
  if (s.length === 0) return undefined;
  return { n: s.length, p50: quantile(s, 0.5)!, p99: quantile(s, 0.99)!, max: s[s.length - 1] };
}

/** Summarizes one series; `fttiMs` is the smallest FTTI of the crashed node's workloads. */
export function summarizeSeries(series: PairSeries, fttiMs: number): SeriesSummary {
  const ok = series.samples.filter((s) => s.error === undefined);
  const faults = ok.filter((s) => s.kind === "fault");
  const pick = (xs: PairSample[], key: keyof PairSample) =>
    distribution(xs.map((s) => s[key] as number | undefined));
  const byReason: Record<string, number> = {};
  for (const d of series.stepDowns) byReason[d.reason] = (byReason[d.reason] ?? 0) + 1;
  const gaps = series.stepDowns.map((d: StepDown) => d.gapMs).filter((g) => g !== undefined);
  return {
    timing: series.timing,
    ...(series.stress ? { stress: series.stress } : {}),
    takeoverMs: pick(ok, "takeoverMs"),
    faultToPromotionReceivedMs: pick(faults, "faultToPromotionReceivedMs"),
    faultToExpiryMs: pick(faults, "faultToExpiryMs"),
    leaderToPromotionSentMs: pick(faults, "leaderToPromotionSentMs"),
    withinFtti: {
      n: faults.filter((s) =>
        s.faultToPromotionReceivedMs !== undefined && s.faultToPromotionReceivedMs <= fttiMs
      ).length,
      of: faults.length,
      fttiMs,
    },
    errors: series.samples.length - ok.length,
    stepDowns: {
      count: series.stepDowns.length,
      byReason,
      ...(gaps.length ? { gapMaxMs: Math.max(...gaps) } : {}),
    },
  };
}

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
const dist = (d: Distribution | undefined) =>
  d ? `${ms(d.p50)} / ${ms(d.p99)} / ${ms(d.max)} (n=${d.n})` : "—";
const timingLabel = (t: LeaseTiming) =>
  `${t.leaseDurationMs} / ${t.renewDeadlineMs} / ${t.retryPeriodMs}`;

/** The markdown summary: one table row per series, then the run's facts. */
export function pairMarkdown(r: PairBenchResults): string {
  const m = r.machine;
  const lines = [
    "# Supervisor pair benchmark",
    "",
    `Run ${r.date} (${(r.durationS / 60).toFixed(1)} min), commit ${r.commit}, on ${m.cpus} × ` +
    `${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Deno ${m.deno}; real kube-apiserver ` +
    `(kine/SQLite), mosquitto, simulated Jetsons (node timeout ${r.rig.nodeTimeoutMs} ms, ` +
    `period ${r.rig.periodMs} ms). \`deno task bench:pair\`; every sample is in \`pair.json\`.`,
    "",
    "Takeover = leader SIGKILLed → the survivor's `leader-elected`. Fault → promotion = a node " +
    "crashed right after the leader's SIGKILL → the last of its workloads' promotions received " +
    "by an MQTT subscriber. Step-downs: leadership periods ended by a missed renew deadline " +
    "(a gap with no leader). Values p50 / p99 / max in ms.",
    "",
    "| lease / renew deadline / retry ms | CPU stress | takeover | fault → promotion received | " +
    `within FTTI ${r.rig.fttiMs} ms | fault → expiry | elected → promotion sent | step-downs | ` +
    "failed reps |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...r.summaries.map((s) =>
      `| ${timingLabel(s.timing)} | ${s.stress ? `\`${s.stress}\`` : "none"} | ${
        dist(s.takeoverMs)
      } | ${dist(s.faultToPromotionReceivedMs)} | ${s.withinFtti.n}/${s.withinFtti.of} | ${
        dist(s.faultToExpiryMs)
      } | ${dist(s.leaderToPromotionSentMs)} | ${s.stepDowns.count}${
        s.stepDowns.gapMaxMs !== undefined ? ` (gap ≤ ${ms(s.stepDowns.gapMaxMs)} ms)` : ""
      } | ${s.errors} |`
    ),
    "",
    ...r.series.flatMap((s) => {
      const label = `${timingLabel(s.timing)}${s.stress ? " (stress)" : ""}`;
      return [
        ...s.samples.filter((x) => x.error).map((x) =>
          `- ${label}, repetition ${x.rep} (${x.kind}): ${x.error}`
        ),
        ...(s.aborted ? [`- ${label}: series aborted: ${s.aborted}`] : []),
      ];
    }),
  ];
  return lines.join("\n") + "\n";
}
