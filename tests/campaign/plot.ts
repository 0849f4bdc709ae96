/**
 * The campaign's picture: reaction time (fault → promotion received) of every required promotion
 * by fault kind, against the FTTI budgets.
 *
 * @module
 */
import type * as vl from "vega-lite";
import type { FaultRecord } from "./campaign.ts";

/**
 * A vega-lite strip plot of reaction times by fault kind, findings marked; with `takeoverBoundMs`
 * (pair mode) also the budget of a node fault during the loss of the leader, FTTI + the bound.
 */
export function campaignPlotSpec(
  records: readonly FaultRecord[],
  takeoverBoundMs?: number,
): vl.TopLevelSpec {
  const budgets = [
    { budget: 500, label: "FTTI 500 ms (ASIL B)" },
    ...(takeoverBoundMs === undefined ? [] : [{
      budget: 500 + takeoverBoundMs,
      label: `FTTI + takeover bound (${500 + takeoverBoundMs} ms)`,
    }]),
  ];
  const values = records.flatMap((r) =>
    r.verdict.reactionMs.map((ms) => ({
      kind: r.fault.kind,
      reactionMs: Math.round(ms * 10) / 10,
      ok: r.verdict.falseActions.length + r.verdict.missed.length +
            r.verdict.splitBrain.length === 0
        ? "judged ok"
        : "finding",
    }))
  );
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `Fault campaign: fault → promotion received (${records.length} faults)`,
    width: 640,
    height: 260,
    data: { values },
    layer: [
      {
        mark: { type: "tick", thickness: 1.5 },
        encoding: {
          y: { field: "kind", type: "nominal", title: null },
          x: {
            field: "reactionMs",
            type: "quantitative",
            title: "ms (log scale)",
            scale: { type: "log" },
          },
          color: { field: "ok", type: "nominal", title: null },
        },
      },
      {
        data: { values: budgets },
        mark: { type: "rule", strokeDash: [4, 4], color: "firebrick" },
        encoding: { x: { field: "budget", type: "quantitative" } },
      },
    ],
  };
}
