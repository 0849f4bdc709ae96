/**
 * Renders what `sdv-failover status` shows: per supervisor instance a header line (role in a
 * pair, lifecycle, armed, ingest, online/offline from its retained status) and four tables —
 * nodes, sensors, app instances, workloads — or the same as JSON. Plain `padEnd` columns; color
 * only when asked (the command asks only on a terminal).
 *
 * @module
 */
import type { StatusSnapshot } from "../wire/state_message.ts";

/** What the reader knows of one supervisor instance. */
export interface StatusView {
  /** The supervisor id. */
  id: string;
  /**
   * Its retained status topic (`online`, or `offline`: stopped or its Last Will), or null when
   * not known (HTTP reads a running supervisor: `online`).
   */
  status: "online" | "offline" | null;
  /** Its last snapshot, or null when none was received. */
  snapshot: StatusSnapshot | null;
}

/** Options of {@linkcode renderStatusTables}. */
export interface RenderOptions {
  /** ANSI colors for states (default false). */
  color?: boolean;
}

/** A duration for humans: `12 ms`, `1.4 s`, `3m05s`; `never` for null. */
export function formatAgeMs(ageMs: number | null): string {
  if (ageMs === null) return "never";
  if (ageMs < 1000) return `${Math.round(ageMs)} ms`;
  if (ageMs < 60_000) return `${(ageMs / 1000).toFixed(1)} s`;
  const s = Math.floor(ageMs / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, "0")}m`;
}

const COLORS: Record<string, string> = {
  OK: "\x1b[32m",
  RECOVERING: "\x1b[33m",
  INIT: "\x1b[33m",
  DEACTIVATED: "\x1b[36m",
  EXPIRED: "\x1b[31m",
  fenced: "\x1b[31m",
  pending: "\x1b[33m",
  OFFLINE: "\x1b[31m",
};

/**
 * One table: a header row and rows, columns padded to their widest cell (color codes are added
 * after padding, so they do not shift columns), two spaces apart, trailing blanks trimmed.
 */
export function renderTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  color = false,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => {
      const padded = i === cells.length - 1 ? c : c.padEnd(widths[i]);
      const code = color ? COLORS[c] : undefined;
      return code ? padded.replace(c, `${code}${c}\x1b[0m`) : padded;
    }).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** The header line of one supervisor instance. */
export function describeSupervisor(view: StatusView): string {
  const s = view.snapshot?.supervisor;
  const parts: string[] = [];
  if (view.status === "offline") parts.push("OFFLINE");
  if (s) {
    parts.push(
      s.role === "single"
        ? "single"
        : s.role === "leader"
        ? `LEADER${s.term === null ? "" : ` (term ${s.term})`}`
        : "standby",
    );
    parts.push(s.lifecycle, s.armed ? "armed" : "not armed");
    parts.push(s.ingestFaulted ? "INGEST FAULT (supervision suspended)" : "ingest ok");
    if (s.upMs !== null) parts.push(`up ${formatAgeMs(s.upMs)}`);
    if (s.reconcileQueue > 0) parts.push(`reconcile queue ${s.reconcileQueue}`);
  } else {
    parts.push("no state received");
  }
  const asOf = view.snapshot
    ? ` — ${view.status === "offline" ? "last state" : "state"} as of ${view.snapshot.generatedAt}`
    : "";
  return `supervisor ${view.id}: ${parts.join(", ")}${asOf}`;
}

/** The four tables of one snapshot. */
export function renderSnapshot(snapshot: StatusSnapshot, options: RenderOptions = {}): string {
  const color = options.color ?? false;
  const tables: string[] = [];
  tables.push(renderTable(
    ["NODE", "STATE", "HEARTBEAT AGE", "FENCE", "WHY"],
    snapshot.nodes.map((n) => [
      n.name,
      n.state,
      formatAgeMs(n.heartbeatAgeMs),
      n.fence === "none" ? (n.draining ? "draining" : "-") : n.fence,
      n.fenceReason ??
        (n.fence === "pending" ? "expiry suspect: fence waits for confirmation" : ""),
    ]),
    color,
  ));
  if (snapshot.sensors.length) {
    tables.push(renderTable(
      ["SENSOR", "NODE", "STATE", "AGE"],
      snapshot.sensors.map((s) => [s.name, s.node, s.state, formatAgeMs(s.ageMs)]),
      color,
    ));
  }
  if (snapshot.apps.length) {
    tables.push(renderTable(
      ["APP", "NODE", "SIDE", "STATE", "AGE"],
      snapshot.apps.map((a) => [a.workload, a.node, a.side, a.state, formatAgeMs(a.ageMs)]),
      color,
    ));
  }
  if (snapshot.workloads.length) {
    tables.push(renderTable(
      ["WORKLOAD", "ASIL", "FTTI", "ACTIVE", "STANDBY", "EPOCH", "WHY"],
      snapshot.workloads.map((w) => [
        w.name,
        w.asil,
        `${w.fttiMs} ms`,
        w.activeNode,
        w.standbyNode,
        String(w.epoch),
        w.failedAt ? `${w.reason} at ${w.failedAt}` : w.reason,
      ]),
      color,
    ));
  }
  return tables.join("\n\n");
}

/** Every view: its header line, then its tables (when it has a snapshot), views apart by a blank line. */
export function renderStatusTables(
  views: readonly StatusView[],
  options: RenderOptions = {},
): string {
  return views.map((v) => {
    const header = describeSupervisor(v);
    const head = options.color && v.status === "offline"
      ? header.replace("OFFLINE", `${COLORS.OFFLINE}OFFLINE\x1b[0m`)
      : header;
    return v.snapshot ? `${head}\n\n${renderSnapshot(v.snapshot, options)}` : head;
  }).join("\n\n") + "\n";
}

/** The views as one line of JSON: `[{"id":…,"status":…,"snapshot":{…}}]`. */
export function renderStatusJson(views: readonly StatusView[]): string {
  return JSON.stringify(views) + "\n";
}
