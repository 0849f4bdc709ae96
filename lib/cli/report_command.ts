/**
 * `report --journal FILE [--incident ID | --last] [--svg OUT.svg] [-o table|json]`: reads the
 * failover journal (and its rotated `FILE.1`); without a selection lists the incidents, with one
 * prints its steps and budget check and, with `--svg`, writes its timeline (Vega-Lite → SVG,
 * headless).
 *
 * @module
 */
import { readJournal } from "../journal/journal_file.ts";
import type { IncidentRecord } from "../journal/record.ts";
import {
  budgetChecks,
  formatIncident,
  formatIncidentList,
  incidentTimelineSpec,
  summarize,
} from "../journal/report.ts";

/** Options of {@linkcode reportCommand}. */
export interface ReportCommandOptions {
  journalPath: string;
  /** The incident's id. */
  incident?: string;
  /** The newest incident. */
  last?: boolean;
  /** Where to write the selected incident's timeline as SVG. */
  svgPath?: string;
  /** `table` (default) or `json`. */
  output?: "table" | "json";
  /** Standard output (default `console.log`). */
  write?: (text: string) => void;
  /** Standard error (default `console.error`). */
  writeError?: (text: string) => void;
}

/**
 * Runs `report`.
 * @returns 0 ok; 1 the journal cannot be read, `--last` on an empty journal, or the SVG cannot be
 *   written; 2 usage: `--incident` with `--last`, `--svg` without a selection, an unknown id.
 */
export async function reportCommand(opts: ReportCommandOptions): Promise<number> {
  const out = opts.write ?? ((t: string) => console.log(t));
  const err = opts.writeError ?? ((t: string) => console.error(t));
  if (opts.incident !== undefined && opts.last) {
    err("report: give --incident ID or --last, not both");
    return 2;
  }
  if (opts.svgPath !== undefined && opts.incident === undefined && !opts.last) {
    err("report: --svg needs an incident: --incident ID or --last");
    return 2;
  }
  let incidents: IncidentRecord[];
  try {
    const read = await readJournal(opts.journalPath);
    incidents = read.incidents;
    if (read.malformed) {
      err(`report: ${read.malformed} line(s) of ${opts.journalPath} not readable, skipped`);
    }
  } catch (error) {
    err(`report: journal "${opts.journalPath}" cannot be read: ${(error as Error).message}`);
    return 1;
  }
  const json = opts.output === "json";
  if (opts.incident === undefined && !opts.last) {
    out(json ? JSON.stringify(incidents.map(summarize), null, 2) : formatIncidentList(incidents));
    return 0;
  }
  const record = opts.last ? incidents.at(-1) : incidents.findLast((i) => i.id === opts.incident);
  if (!record) {
    if (opts.last) {
      err(`report: no incident in ${opts.journalPath}`);
      return 1;
    }
    err(
      `report: no incident "${opts.incident}" in ${opts.journalPath} (${incidents.length} ` +
        `incident(s); run without --incident to list them)`,
    );
    return 2;
  }
  out(
    json
      ? JSON.stringify({ incident: record, budget: budgetChecks(record) }, null, 2)
      : formatIncident(record),
  );
  if (opts.svgPath !== undefined) {
    try {
      const { renderSvg } = await import("../plot/svg.ts");
      const startedMs = performance.now();
      const svg = await renderSvg(incidentTimelineSpec(record));
      const renderMs = performance.now() - startedMs;
      await Deno.writeTextFile(opts.svgPath, svg);
      err(
        `report: timeline written to ${opts.svgPath} (${svg.length} bytes, rendered in ` +
          `${renderMs.toFixed(0)} ms)`,
      );
    } catch (error) {
      err(`report: --svg ${opts.svgPath}: ${(error as Error).message}`);
      return 1;
    }
  }
  return 0;
}
