/**
 * What the fault campaign reads from a supervisor's JSON log (`run --log-format json`): leadership
 * periods of a pair instance, its broker connections, expiries, ingest faults and the promotions it
 * decided. Pure functions of the parsed lines; only the fields named here are read, so fields added
 * to the lines (`msg`, `time`, …) change nothing.
 *
 * The event's name is `event` (or `msg`, which the logger writes beside it). Events read:
 * `leader-elected {identity, term}`, `leader-stepped-down {term, reason}`,
 * `broker-up {broker, connected}`, `broker-lost {broker, connected}`, `ingest-fault {why}`,
 * `ingest-restored {graceMs}`, `expired {target}`, `promotion-sent {workload, epoch, activeNode}`;
 * every line carries `wallMs` (the process's time origin + its monotonic clock: lines of two
 * processes on one host compare).
 *
 * @module
 */

/** One parsed JSON log line (as `tests/harness/supervisor_process.ts` parses it). */
export interface SupervisorLogLine {
  wallMs: number;
  event?: string;
  [key: string]: unknown;
}

/** The line's event name: `event`, else `msg`. */
export function eventOf(line: SupervisorLogLine): string {
  return typeof line.event === "string" ? line.event : String(line.msg);
}

/** One leadership period of one supervisor process. */
export interface LeadershipPeriod {
  /** The process (e.g. `sup-a#2`: the second process run with id sup-a). */
  supervisor: string;
  /** Its `supervisor.id`. */
  id: string;
  /** `leader-elected`, wall ms. */
  fromWallMs: number;
  /** `leader-stepped-down`, or the end given for a period still open (killed or running), ms. */
  toWallMs: number;
  /** The Lease's `leaseTransitions` of the period. */
  term: number;
  /** True when no `leader-stepped-down` closed it. */
  open: boolean;
}

/**
 * The leadership periods in `lines`: `leader-elected` → `leader-stepped-down`; a period still
 * open ends at `endWallMs` (when the process was killed, or now while it runs).
 */
export function leadershipPeriods(
  lines: readonly SupervisorLogLine[],
  who: { supervisor: string; id: string },
  endWallMs: number,
): LeadershipPeriod[] {
  const periods: LeadershipPeriod[] = [];
  let open: { fromWallMs: number; term: number } | undefined;
  for (const l of lines) {
    if (eventOf(l) === "leader-elected") {
      if (open) periods.push({ ...who, ...open, toWallMs: l.wallMs, open: false });
      open = { fromWallMs: l.wallMs, term: Number(l.term) };
    } else if (eventOf(l) === "leader-stepped-down" && open) {
      periods.push({ ...who, ...open, toWallMs: l.wallMs, open: false });
      open = undefined;
    }
  }
  if (open) {
    periods.push({ ...who, ...open, toWallMs: Math.max(endWallMs, open.fromWallMs), open: true });
  }
  return periods;
}

/** Whether the process leads now by its log: its last leadership line is `leader-elected`. */
export function leadsByLog(lines: readonly SupervisorLogLine[]): boolean {
  const last = lines.findLast((l) =>
    eventOf(l) === "leader-elected" || eventOf(l) === "leader-stepped-down"
  );
  return last !== undefined && eventOf(last) === "leader-elected";
}

/**
 * How many brokers of a pair the process is connected to by its log: the `connected` of its last
 * `broker-up` / `broker-lost` line; undefined before any. (The loss of the last broker is logged
 * as an `ingest-fault`, not as `broker-lost`; its return as `broker-up` with `connected` 1: the
 * count is right again once a broker is back. Ingest faults are judged on their own.)
 */
export function brokersConnectedByLog(lines: readonly SupervisorLogLine[]): number | undefined {
  const last = lines.findLast((l) => eventOf(l) === "broker-up" || eventOf(l) === "broker-lost");
  return last === undefined ? undefined : Number(last.connected);
}

/** An expiry logged by a supervisor. */
export interface LoggedExpiry {
  supervisor: string;
  target: string;
  wallMs: number;
  /** The silence that expired it (`silenceMs`), ms; undefined for an offline status or Last Will. */
  silenceMs?: number;
}

/** The `expired` lines at or after `sinceWallMs`. */
export function expiriesSince(
  lines: readonly SupervisorLogLine[],
  supervisor: string,
  sinceWallMs: number,
): LoggedExpiry[] {
  return lines.filter((l) => eventOf(l) === "expired" && l.wallMs >= sinceWallMs)
    .map((l) => ({
      supervisor,
      target: String(l.target),
      wallMs: l.wallMs,
      ...(typeof l.silenceMs === "number" && l.cause === "deadline"
        ? { silenceMs: l.silenceMs }
        : {}),
    }));
}

/** An ingest fault logged by a supervisor. */
export interface LoggedIngestFault {
  supervisor: string;
  why: string;
  wallMs: number;
}

/** The `ingest-fault` lines at or after `sinceWallMs`. */
export function ingestFaultsSince(
  lines: readonly SupervisorLogLine[],
  supervisor: string,
  sinceWallMs: number,
): LoggedIngestFault[] {
  return lines.filter((l) => eventOf(l) === "ingest-fault" && l.wallMs >= sinceWallMs)
    .map((l) => ({ supervisor, why: String(l.why), wallMs: l.wallMs }));
}

/** A promotion a supervisor decided and published (`promotion-sent`; re-publishes are not). */
export interface SentPromotion {
  supervisor: string;
  workload: string;
  epoch: number;
  activeNode: string;
  wallMs: number;
}

/** The `promotion-sent` lines. */
export function promotionsSent(
  lines: readonly SupervisorLogLine[],
  supervisor: string,
): SentPromotion[] {
  return lines.filter((l) => eventOf(l) === "promotion-sent").map((l) => ({
    supervisor,
    workload: String(l.workload),
    epoch: Number(l.epoch),
    activeNode: String(l.activeNode),
    wallMs: l.wallMs,
  }));
}
