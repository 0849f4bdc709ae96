/**
 * Summaries of the samples per mode, scenario and metric, pooled views, and the goal check of the
 * issue (item 5) — shared by the Markdown report and the plots.
 *
 * @module
 */
import type { BenchResults, GoalResult, LoadResult, ModeName, Sample } from "./results.ts";
import type { ScenarioName } from "./scenarios.ts";
import { summarize, type Summary } from "./stats.ts";

/** Samples of one mode (and scenario, unless pooled). */
export function select(samples: readonly Sample[], mode: ModeName, scenario?: ScenarioName) {
  return samples.filter((s) =>
    s.mode === mode && (scenario === undefined || s.scenario === scenario)
  );
}

/** Summary of one metric over the selected samples. */
export function metricSummary(
  samples: readonly Sample[],
  mode: ModeName,
  metric: keyof Sample,
  scenario?: ScenarioName,
): Summary | undefined {
  return summarize(select(samples, mode, scenario).map((s) => s[metric] as number | undefined));
}

/**
 * A repetition disturbed by the test bench itself: a healthy target expired, or a thread of the
 * simulated vehicle / the subscriber / the bench did not run for ≥ 20 ms around the fault (on a
 * real cluster those run on other boards). Reported, never dropped: goals use every sample.
 */
export function disturbed(s: Sample): boolean {
  return (s.spuriousExpiries?.length ?? 0) > 0 ||
    (s.stalls ?? []).some((x) =>
      x.what !== "broker" && x.ms >= 20 && x.atMs > -1000 && x.atMs < 2000
    );
}

/** Formats a duration in ms for a table: 3 significant digits, seconds from 10 s on. */
export function fmtMs(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  if (Math.abs(v) >= 10_000) return `${(v / 1000).toFixed(1)} s`;
  if (Math.abs(v) >= 1_000) return `${(v / 1000).toFixed(2)} s`;
  if (Math.abs(v) >= 100) return `${v.toFixed(0)} ms`;
  if (Math.abs(v) >= 10) return `${v.toFixed(1)} ms`;
  return `${v.toFixed(2)} ms`;
}

/** Formats a ratio: `×1,234` / `×12.3` / `×1.23`. */
export function fmtRatio(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "—";
  if (v >= 100) return `×${Math.round(v).toLocaleString("en-US")}`;
  if (v >= 10) return `×${v.toFixed(1)}`;
  return `×${v.toFixed(2)}`;
}

/** The goals for config/fast.yaml, checked against the run. */
export function checkGoals(samples: readonly Sample[], load: LoadResult | undefined): GoalResult[] {
  const pooled = (metric: keyof Sample) => metricSummary(samples, "ours-fast", metric);
  const fast = select(samples, "ours-fast");
  const clean = fast.filter((x) => !disturbed(x));
  const p99Goal = (goal: string, metric: keyof Sample, limitMs: number): GoalResult => {
    const s = pooled(metric);
    const c = summarize(clean.map((x) => x[metric] as number | undefined));
    const aside = c && clean.length < fast.length
      ? `; without the ${fast.length - clean.length} repetitions disturbed by a stall of the ` +
        `simulator: p99 ${fmtMs(c.p99)}, n=${c.n}`
      : "";
    return {
      goal,
      target: `p99 ≤ ${fmtMs(limitMs)}`,
      measured: s
        ? `p99 ${fmtMs(s.p99)} (p50 ${fmtMs(s.p50)}, max ${fmtMs(s.max)}, n=${s.n})${aside}`
        : "—",
      met: s ? s.p99 <= limitMs : undefined,
    };
  };
  const h = load?.headline;
  return [
    {
      goal: `detection lateness at ${h?.targets ?? 1000} targets`,
      target: "p99 ≤ 2.00 ms",
      measured: h?.lateness
        ? `p99 ${fmtMs(h.lateness.p99)} (p50 ${fmtMs(h.lateness.p50)}, max ${
          fmtMs(h.lateness.max)
        }, n=${h.lateness.n})`
        : "—",
      met: h?.lateness ? h.lateness.p99 <= 2 : undefined,
    },
    p99Goal("expiry → promotion received", "expiryToPromotionReceivedMs", 5),
    p99Goal("expiry → all API actions acknowledged", "expiryToActionsMs", 25),
    p99Goal("fault → promotion received", "faultToPromotionReceivedMs", 45),
    p99Goal("fault → replacement Running", "faultToReplacementRunningMs", 1000),
    ingestGoal(load),
    {
      goal: `runtime RSS at ${h?.targets ?? 1000} targets`,
      target: "≤ 80 MB",
      measured: h ? `max ${h.rssMaxMb.toFixed(1)} MB (end ${h.rssEndMb.toFixed(1)} MB)` : "—",
      met: h ? h.rssMaxMb <= 80 : undefined,
    },
    {
      goal: "start → all watchdogs armed",
      target: "≤ 300 ms",
      measured: h
        ? `${fmtMs(h.spawnToArmedMs)} from spawn (${fmtMs(h.processArmedMs)} on the process clock)`
        : "—",
      met: h ? h.spawnToArmedMs <= 300 : undefined,
    },
  ];
}

/**
 * One line per ours mode putting "expiry → all API actions acknowledged" beside the API server's
 * datastore write latency (kine/SQLite) measured by the write probe of the same run: the probe runs
 * on the failover phase's control plane right after ours and origin, and an earlier phase merged
 * in (`--merge`) brings its probe along, so both numbers always come from one run. `[]` when the
 * run has no probe or no ours sample with API actions.
 */
export function apiWriteComparison(results: BenchResults): string[] {
  const probe = results.apiProbe;
  if (!probe?.sequential) return [];
  const pair = (s: Summary | undefined) => s ? `p50 ${fmtMs(s.p50)} / p99 ${fmtMs(s.p99)}` : "—";
  const writes = `one datastore write (merge-patch, kine) ${pair(probe.sequential)}; ` +
    `${probe.concurrency} concurrent writes ${pair(probe.concurrentRound)}`;
  const lines: string[] = [];
  for (const mode of ["ours-fast", "ours-example"] as const) {
    const actions = metricSummary(results.samples, mode, "expiryToActionsMs");
    if (!actions) continue;
    const perWrite = actions.p50 / probe.sequential.p50;
    lines.push(
      `${mode}: expiry → all API actions acknowledged ${pair(actions)} (n=${actions.n}), ` +
        `beside ${writes} — the p50 is ${fmtRatio(perWrite)} one write's p50.`,
    );
  }
  return lines;
}

/** The scenarios present in the results, in canonical order. */
export function scenariosOf(results: BenchResults): ScenarioName[] {
  const order: ScenarioName[] = ["node-crash", "node-hang", "sensor-loss", "app-hang"];
  return order.filter((s) => results.samples.some((x) => x.scenario === s));
}

const n = (v: number) => Math.round(v).toLocaleString("en-US");

/**
 * Ingest ≥ 50,000 heartbeats/s with no deadline missed: the best load run without a miss (and with
 * a publisher that kept its schedule), next to the headline run.
 */
function ingestGoal(load: LoadResult | undefined): GoalResult {
  const runs = [...(load?.search ?? []), ...(load?.headline ? [load.headline] : [])];
  const clean = runs.filter((r) => r.deadlinesMissed === 0 && !r.publisherBound);
  const best = clean.sort((a, b) => b.ingestPerS - a.ingestPerS)[0];
  const h = load?.headline;
  const headline = h
    ? `; at ${h.targets} targets ${n(h.ingestPerS)} /s received of ${n(h.sentPerS)} /s sent, ` +
      `${h.deadlinesMissed} missed`
    : "";
  return {
    goal: "ingest with no deadline missed",
    target: "≥ 50,000 heartbeats/s",
    measured: best
      ? `${n(best.ingestPerS)} /s at ${best.targets} targets, 0 missed${headline}`
      : `no run without a missed deadline${headline}`,
    met: runs.length ? best !== undefined && best.ingestPerS >= 50_000 : undefined,
  };
}
