/**
 * `sdv-failover report`: what the journal's incidents say, for the vehicle team after the fact —
 * a list of incidents, one incident's steps as a table (time since the last heartbeat and delta
 * to the previous step), its budget check against the FTTI (ISO 26262-1:2018 3.61; the detection
 * and reaction bounds of `lib/config/budget.ts`), and its timeline as a Vega-Lite spec (a
 * horizontal Gantt of the steps with the FTTI as a line) rendered to SVG.
 *
 * @module
 */
import type * as vl from "vega-lite";
import type { IncidentRecord, StepKind } from "./record.ts";

/** One line of the incident list. */
export interface IncidentSummary {
  id: string;
  startedAt: string;
  workloads: string[];
  /** `<target> <cause>`, e.g. `node/worker-node2 offline`. */
  cause: string;
  outcome: IncidentRecord["outcome"];
  fttiMet: boolean | null;
  /** Last heartbeat → the last step (converged, timeout, abandoned), ms. */
  endToEndMs: number;
}

/** The list entry of an incident. */
export function summarize(record: IncidentRecord): IncidentSummary {
  return {
    id: record.id,
    startedAt: record.startedAt,
    workloads: record.workloads.map((w) => w.name),
    cause: `${record.trigger.target} ${record.trigger.cause}`,
    outcome: record.outcome,
    fttiMet: record.fttiMet,
    endToEndMs: record.endToEndMs,
  };
}

/** One check of the budget: measured against its bound, ms. */
export interface BudgetCheck {
  /** `detection`, `reaction` or `FTTI <workload> (ASIL x)`. */
  check: string;
  /** What was measured, e.g. `last heartbeat → expiry confirmed`. */
  span: string;
  /** null: not measurable (no promotion published). */
  measuredMs: number | null;
  budgetMs: number;
  /** measured ≤ budget (false when not measurable). */
  ok: boolean;
}

/**
 * The budget check of an incident: detection (last heartbeat → expiry confirmed ≤ the trigger's
 * timeout + lateness allowance), reaction (expiry confirmed → the last promotion published ≤
 * `supervisor.reactionBudgetMs`; absent when no promotion was published) and, per workload, last
 * heartbeat → its promotion ≤ its FTTI.
 */
export function budgetChecks(record: IncidentRecord): BudgetCheck[] {
  const confirmed = record.steps.find((s) => s.step.startsWith("expiry confirmed"))?.tMs ?? null;
  const promotions = record.workloads.flatMap((w) =>
    w.promotionMs === undefined ? [] : [w.promotionMs]
  );
  const reactionMs = confirmed !== null && promotions.length
    ? round(Math.max(...promotions) - confirmed)
    : null;
  const checks: BudgetCheck[] = [
    {
      check: "detection",
      span: record.trigger.heardFrom
        ? "last heartbeat → expiry confirmed"
        : "(never heard from) notice → expiry confirmed",
      measuredMs: confirmed,
      budgetMs: record.budget.detectionMs,
      ok: confirmed !== null && confirmed <= record.budget.detectionMs,
    },
  ];
  // no promotion (a fence only, every failover blocked): no reaction to check
  if (reactionMs !== null) {
    checks.push({
      check: "reaction",
      span: "expiry confirmed → last promotion published",
      measuredMs: reactionMs,
      budgetMs: record.budget.reactionMs,
      ok: reactionMs <= record.budget.reactionMs,
    });
  }
  for (const w of record.workloads) {
    checks.push({
      check: `FTTI ${w.name} (ASIL ${w.asil})`,
      span: w.outcome === "blocked"
        ? `failover blocked: ${w.why ?? ""}`
        : "last heartbeat → promotion published",
      measuredMs: w.promotionMs ?? null,
      budgetMs: w.fttiMs,
      ok: w.fttiMet,
    });
  }
  return checks;
}

/** The incident list as an aligned text table (`(no incidents)` when empty). */
export function formatIncidentList(records: readonly IncidentRecord[]): string {
  if (records.length === 0) return "(no incidents)";
  return table(
    ["id", "started (wall)", "workloads", "cause", "outcome", "FTTI met", "end-to-end ms"],
    records.map(summarize).map((s) => [
      s.id,
      s.startedAt,
      s.workloads.join(",") || "—",
      s.cause,
      s.outcome,
      s.fttiMet === null ? "—" : s.fttiMet ? "yes" : "NO",
      s.endToEndMs.toFixed(1),
    ]),
    new Set([6]),
  );
}

/**
 * One incident as text: a header, the steps (step, t since the last heartbeat in ms, delta to the
 * previous step in ms) and the budget check.
 */
export function formatIncident(record: IncidentRecord): string {
  const w = record.workloads.map((x) =>
    x.outcome === "failover"
      ? `${x.name} (ASIL ${x.asil}, FTTI ${x.fttiMs} ms) → ${x.activeNode} epoch ${x.epoch}`
      : `${x.name} (ASIL ${x.asil}, FTTI ${x.fttiMs} ms) BLOCKED: ${x.why ?? ""}`
  );
  const sup = record.supervisor;
  const header = [
    `incident ${record.id}: ${record.outcome}`,
    `  started   ${record.startedAt} (last heartbeat${
      record.trigger.heardFrom ? "" : ": never heard from, times from the first notice"
    })`,
    `  trigger   ${record.trigger.target} (${record.trigger.cause}, timeout ${record.trigger.timeoutMs} ms) on ${record.node}`,
    ...w.map((x, i) => `  ${i === 0 ? "workloads" : "         "} ${x}`),
    `  recorded  by supervisor ${sup.id}${sup.term === null ? "" : ` (leader term ${sup.term})`}`,
  ];
  let previous: number | undefined;
  const steps = table(
    ["step", "t ms", "delta ms", "detail"],
    record.steps.map((s) => {
      const delta = previous === undefined ? "" : (s.tMs - previous).toFixed(1);
      previous = s.tMs;
      return [s.step, s.tMs.toFixed(1), delta, s.detail ?? ""];
    }),
    new Set([1, 2]),
  );
  const budget = table(
    ["budget", "span", "measured ms", "bound ms", "met"],
    budgetChecks(record).map((c) => [
      c.check,
      c.span,
      c.measuredMs === null ? "—" : c.measuredMs.toFixed(1),
      String(c.budgetMs),
      c.ok ? "yes" : "NO",
    ]),
    new Set([2, 3]),
  );
  const dropped = record.stepsDropped
    ? [`  (${record.stepsDropped} steps left out to bound the line)`]
    : [];
  return [...header, "", steps, ...dropped, "", budget].join("\n");
}

const KIND_LABELS: Record<StepKind, string> = {
  detect: "detection",
  decide: "decision",
  mqtt: "promotion (MQTT)",
  kube: "Kubernetes API",
  event: "Kubernetes Event",
  end: "end",
};

/**
 * The incident's timeline as a Vega-Lite spec: one row per step (in time order), a bar from its
 * start to its end (a tick for an instant), coloured by kind; a dashed line at the smallest FTTI
 * of its workloads. Linear axis in ms since the last heartbeat.
 */
export function incidentTimelineSpec(record: IncidentRecord): vl.TopLevelSpec {
  const width = String(record.steps.length).length;
  const rows = record.steps.map((s, i) => ({
    row: `${String(i + 1).padStart(width, "0")} ${s.step}`,
    order: i,
    from: s.fromMs ?? s.tMs,
    to: s.tMs,
    kind: KIND_LABELS[s.kind],
    detail: s.detail ?? "",
  }));
  const y = {
    field: "row",
    type: "nominal" as const,
    sort: { field: "order" },
    title: null,
    // headless, text widths are estimated at ≈ 0.8 em per character: no truncation of a label
    axis: { labelLimit: 2000 },
  };
  const x = { field: "from", type: "quantitative" as const, title: "ms since the last heartbeat" };
  const ftti = record.fttiMs;
  const w = record.workloads.map((x) => x.name).join(", ") || "no workload";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Incident ${record.id}: ${record.trigger.target} ${record.trigger.cause}`,
      subtitle: [
        `${w}; outcome ${record.outcome}; end to end ${record.endToEndMs.toFixed(1)} ms` +
        (ftti === null ? "" : `; FTTI ${ftti} ms ${record.fttiMet ? "met" : "MISSED"}`),
        "bars: from the start of a step (a reconcile pass, the notice of an expiry) to its end",
      ],
    },
    width: 560,
    height: { step: 16 },
    data: { values: rows },
    layer: [
      {
        mark: { type: "bar", height: 10, cornerRadius: 2 },
        encoding: {
          y,
          x,
          x2: { field: "to" },
          color: {
            field: "kind",
            type: "nominal",
            sort: Object.values(KIND_LABELS),
            legend: { orient: "bottom", title: null },
          },
          tooltip: [{ field: "row" }, { field: "to", title: "t ms" }, { field: "detail" }],
        },
      },
      {
        mark: { type: "tick", thickness: 2, size: 12 },
        encoding: {
          y,
          x: { field: "to", type: "quantitative" },
          color: { field: "kind", type: "nominal", sort: Object.values(KIND_LABELS) },
        },
      },
      ...(ftti === null ? [] : [
        {
          data: { values: [{ ftti, label: `FTTI ${ftti} ms` }] },
          mark: { type: "rule" as const, strokeDash: [6, 4], color: "#d62728", size: 2 },
          encoding: { x: { field: "ftti", type: "quantitative" as const } },
        },
        {
          data: { values: [{ ftti, label: `FTTI ${ftti} ms` }] },
          mark: {
            type: "text" as const,
            color: "#d62728",
            align: "right" as const,
            dx: -4,
            dy: -4,
            baseline: "bottom" as const,
          },
          encoding: {
            x: { field: "ftti", type: "quantitative" as const },
            y: { value: 0 },
            text: { field: "label" },
          },
        },
      ]),
    ],
  } as vl.TopLevelSpec;
}

/** An aligned text table; `numeric` columns are right-aligned; the last column is not padded. */
function table(header: string[], rows: string[][], numeric: Set<number>): string {
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col].length)));
  return [header, ...rows].map((cells) =>
    cells.map((cell, col) =>
      col === cells.length - 1
        ? cell
        : numeric.has(col)
        ? cell.padStart(widths[col])
        : cell.padEnd(widths[col])
    ).join("  ").trimEnd()
  ).join("\n");
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
