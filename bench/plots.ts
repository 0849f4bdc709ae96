/**
 * Plots rendered by Vega-Lite to SVG (no browser): the failover timeline (median time from the fault
 * to each milestone, per mode and scenario, on a log axis from milliseconds to minutes), latency
 * CDFs per metric and mode, and the load search.
 *
 * @module
 */
import type * as vl from "vega-lite";
import { renderSvg } from "../lib/plot/svg.ts";
import { type BenchResults, MODES, type Sample } from "./results.ts";
import { ecdf } from "./stats.ts";
import { metricSummary, scenariosOf } from "./summary.ts";

export { renderSvg };

const MILESTONES: { key: keyof Sample; label: string }[] = [
  { key: "faultToDetectionMs", label: "detection (expiry; K3s: NotReady)" },
  { key: "faultToPromotionReceivedMs", label: "promotion received" },
  { key: "faultToActionsMs", label: "API actions acknowledged" },
  { key: "faultToTaintMs", label: "K3s: unreachable taint" },
  { key: "faultToEvictionMs", label: "K3s: pods evicted" },
  { key: "faultToReplacementRunningMs", label: "replacement Running" },
];

/** Timeline data: one point per (mode, scenario, milestone) at the median. */
export function timelineData(results: BenchResults) {
  const rows: {
    row: string;
    milestone?: string;
    ms?: number;
    note?: string;
    order: number;
  }[] = [];
  let order = 0;
  for (const mode of MODES) {
    for (const sc of scenariosOf(results)) {
      const row = `${mode} · ${sc}`;
      const samples = results.samples.filter((s) => s.mode === mode && s.scenario === sc);
      if (samples.length === 0) continue;
      let any = false;
      for (const m of MILESTONES) {
        const s = metricSummary(results.samples, mode, m.key, sc);
        if (!s) continue;
        any = true;
        rows.push({ row, milestone: m.label, ms: Math.max(s.p50, 0.1), order });
      }
      if (!any) rows.push({ row, note: "not detected", order });
      order++;
    }
  }
  return rows;
}

/** The failover timeline. */
export function timelineSpec(results: BenchResults): vl.TopLevelSpec {
  const data = timelineData(results);
  const y = {
    field: "row",
    type: "nominal" as const,
    sort: { field: "order" },
    title: null,
    axis: { labelLimit: 260 },
  };
  const x = {
    field: "ms",
    type: "quantitative" as const,
    scale: { type: "log" as const, domain: [0.5, 600_000] },
    axis: {
      title: "time after the fault (log scale)",
      values: [1, 10, 100, 1000, 10_000, 100_000],
      labelExpr: "datum.value >= 1000 ? datum.value / 1000 + ' s' : datum.value + ' ms'",
    },
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Failover timeline: median time from the fault to each milestone",
      subtitle: [
        "one row per mode × scenario (median of its repetitions); a missing milestone was not reached",
        "dashed: the 100 ms FTTI of an ASIL D function (fast.yaml's budget)",
      ],
    },
    width: 620,
    height: { step: 20 },
    data: { values: data },
    layer: [
      {
        mark: { type: "rule", strokeDash: [4, 4], color: "#999999" },
        encoding: { x: { datum: 100, type: "quantitative" } },
      },
      {
        transform: [{ filter: "isValid(datum.ms)" }],
        mark: { type: "rule", color: "#bbbbbb" },
        encoding: {
          y,
          x: { aggregate: "min", field: "ms", type: "quantitative" },
          x2: { aggregate: "max", field: "ms" },
        },
      },
      {
        transform: [{ filter: "isValid(datum.ms)" }],
        mark: { type: "point", filled: true, size: 80, opacity: 0.9 },
        encoding: {
          y,
          x,
          color: {
            field: "milestone",
            type: "nominal",
            sort: MILESTONES.map((m) => m.label),
            legend: { orient: "bottom", columns: 2, title: null, labelLimit: 320 },
          },
          shape: { field: "milestone", type: "nominal", sort: MILESTONES.map((m) => m.label) },
        },
      },
      {
        transform: [{ filter: "isValid(datum.note)" }],
        mark: { type: "text", align: "left", dx: 4, color: "#777777", fontStyle: "italic" },
        encoding: {
          y,
          x: { datum: 0.6, type: "quantitative", scale: { type: "log", domain: [0.5, 600_000] } },
          text: { field: "note" },
        },
      },
    ],
  };
}

const CDF_METRICS: { key: keyof Sample; label: string }[] = [
  { key: "faultToDetectionMs", label: "fault → detection" },
  { key: "expiryToPromotionReceivedMs", label: "expiry → promotion received" },
  { key: "expiryToActionsMs", label: "expiry → all API actions acknowledged" },
  { key: "faultToPromotionReceivedMs", label: "fault → promotion received" },
  { key: "faultToReplacementRunningMs", label: "fault → replacement Running" },
];

/** The goals of config/fast.yaml that apply to a CDF panel (ms). */
const CDF_GOALS: Partial<Record<keyof Sample, number>> = {
  expiryToPromotionReceivedMs: 5,
  expiryToActionsMs: 25,
  faultToPromotionReceivedMs: 45,
  faultToReplacementRunningMs: 1000,
};

/** ECDF points per metric and mode (pooled over the scenarios), and goal markers. */
export function cdfData(samples: readonly Sample[]) {
  const rows: { metric: string; mode?: string; ms: number; p?: number; goal?: string }[] = [];
  for (const m of CDF_METRICS) {
    for (const mode of MODES) {
      const pts = ecdf(samples.filter((s) => s.mode === mode).map((s) => s[m.key] as number));
      for (const pt of pts) rows.push({ metric: m.label, mode, ms: Math.max(pt.x, 0.05), p: pt.p });
    }
    const goal = CDF_GOALS[m.key];
    if (goal !== undefined) rows.push({ metric: m.label, ms: goal, goal: `goal p99 ≤ ${goal} ms` });
  }
  return rows;
}

/** Latency CDFs, one panel per metric. */
export function cdfSpec(results: BenchResults): vl.TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Latency CDFs (all scenarios pooled, log scale)",
      subtitle: "fraction of repetitions at or below a latency; dashed: the fast.yaml goal (p99)",
    },
    data: { values: cdfData(results.samples) },
    facet: {
      row: {
        field: "metric",
        type: "nominal",
        sort: CDF_METRICS.map((m) => m.label),
        title: null,
        header: {
          labelAngle: 0,
          labelOrient: "top",
          labelAnchor: "start",
          labelFontSize: 12,
          labelFontWeight: "bold",
        },
      },
    },
    resolve: { scale: { x: "independent" } },
    spec: {
      width: 560,
      height: 120,
      layer: [
        {
          transform: [{ filter: "isValid(datum.p)" }],
          mark: { type: "line", interpolate: "step-after", strokeWidth: 2 },
          encoding: {
            x: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "ms" },
            y: {
              field: "p",
              type: "quantitative",
              title: "fraction ≤ x",
              scale: { domain: [0, 1] },
            },
            color: { field: "mode", type: "nominal", sort: [...MODES], legend: { orient: "top" } },
          },
        },
        {
          transform: [{ filter: "isValid(datum.goal)" }],
          mark: { type: "rule", strokeDash: [4, 4], color: "#444444" },
          encoding: { x: { field: "ms", type: "quantitative" } },
        },
      ],
    },
  };
}

/** Load: per target count, what the runtime received, its lateness, CPU and memory. */
export function loadData(results: BenchResults) {
  const runs = [...(results.load?.search ?? [])];
  if (results.load?.headline) runs.push(results.load.headline);
  const rows: { targets: number; panel: string; series: string; v: number; missed: boolean }[] = [];
  for (const r of runs) {
    const missed = r.deadlinesMissed > 0;
    const add = (panel: string, series: string, v: number | undefined) => {
      if (v !== undefined && Number.isFinite(v)) {
        rows.push({ targets: r.targets, panel, series, v, missed });
      }
    };
    add("heartbeats per second", "sent", r.sentPerS);
    add("heartbeats per second", "received by the runtime", r.ingestPerS);
    add("detection lateness (ms)", "lateness p50", r.lateness?.p50);
    add("detection lateness (ms)", "lateness p99", r.lateness?.p99);
    add("CPU (% of one core)", "runtime CPU", r.cpuPercent);
    add("CPU (% of one core)", "broker CPU", r.brokerCpuPercent);
    add("CPU (% of one core)", "publisher CPU", r.publisherCpuPercent);
    add("runtime RSS (MB)", "runtime RSS", r.rssMaxMb);
  }
  return rows;
}

/** The load plot (undefined without load runs). */
export function loadSpec(results: BenchResults): vl.TopLevelSpec | undefined {
  const rows = loadData(results);
  if (rows.length === 0) return undefined;
  const panels = [
    "heartbeats per second",
    "detection lateness (ms)",
    "CPU (% of one core)",
    "runtime RSS (MB)",
  ];
  const x = {
    field: "targets",
    type: "quantitative" as const,
    scale: { type: "log" as const },
    title: "supervised targets, each at 50 Hz",
  };
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Load: supervised targets at 50 Hz through mosquitto",
      subtitle: "hollow points: at least one deadline was missed in that run",
    },
    data: { values: rows },
    facet: {
      row: {
        field: "panel",
        type: "nominal",
        sort: panels,
        title: null,
        header: {
          labelAngle: 0,
          labelOrient: "top",
          labelAnchor: "start",
          labelFontWeight: "bold",
        },
      },
    },
    resolve: { scale: { y: "independent" } },
    spec: {
      width: 520,
      height: 130,
      layer: [
        {
          mark: { type: "line" },
          encoding: {
            x,
            y: { field: "v", type: "quantitative", title: null },
            color: {
              field: "series",
              type: "nominal",
              legend: { orient: "bottom", title: null, columns: 4 },
            },
          },
        },
        {
          mark: { type: "point", size: 60, strokeWidth: 2, opacity: 1 },
          encoding: {
            x,
            y: { field: "v", type: "quantitative" },
            color: { field: "series", type: "nominal" },
            fill: {
              condition: { test: "datum.missed", value: "white" },
              field: "series",
              type: "nominal",
            },
          },
        },
      ],
    },
  };
}

/** Renders every plot; returns file name → SVG. */
export async function renderPlots(results: BenchResults): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  out["timeline.svg"] = await renderSvg(timelineSpec(results));
  out["latency_cdf.svg"] = await renderSvg(cdfSpec(results));
  const load = loadSpec(results);
  if (load) out["load.svg"] = await renderSvg(load);
  return out;
}
