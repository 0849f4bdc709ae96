/**
 * FTTI budgets: does each workload's failover fit in its fault tolerant time interval?
 *
 * Source: ISO 26262-1:2018 (Road vehicles — Functional safety — Part 1: Vocabulary) defines the
 * **fault tolerant time interval** (FTTI, 3.61) as the minimum time-span from the occurrence of a
 * fault in an item to a possible occurrence of a hazardous event if the safety mechanisms are not
 * activated; the **fault detection time interval** (FDTI, 3.55) as the time-span from the
 * occurrence of a fault to its detection; the **fault reaction time interval** (FRTI, 3.59) as the
 * time-span from the detection of a fault to reaching a safe state or emergency operation; and the
 * fault handling time interval (FHTI, 3.56) as FDTI + FRTI. A safety mechanism is effective only
 * if `FDTI + FRTI ≤ FTTI`; the margin left over absorbs measurement error, so keep it visible.
 *
 * For the supervisor:
 * - FDTI ≤ the slowest timeout among the targets whose expiry fails the workload over (its node's
 *   heartbeat, the sensors of its placement, its app heartbeat) + `supervisor.lagToleranceMs` (how
 *   late the supervisor may notice an expiry: timer and ingest lateness, including the ingest
 *   barrier that confirms an expiry; a busy event loop fires timers several ms late, which the
 *   benchmark's load test measures). A timeout bounds detection: the last heartbeat was sent no
 *   later than the fault, and the target expires at that heartbeat's arrival + timeout (transit
 *   lateness is part of the allowance).
 * - FRTI ≤ `supervisor.reactionBudgetMs` (promotion, Kubernetes actions).
 *
 * Both sides are budgeted: after a failover the standby *is* the primary, and its targets then
 * decide how quickly the next fault is detected.
 *
 * @module
 */
import type { Asil, Config, WorkloadConfig } from "./schema.ts";

/** What bounds one side's fault detection: the target with the longest timeout. */
export interface DetectionLimit {
  /** `node` heartbeat, `sensor` ticks or the workload's `app` heartbeat. */
  kind: "node" | "sensor" | "app";
  /** Node, sensor or workload name. */
  name: string;
  /** That target's timeout in ms. */
  timeoutMs: number;
}

/** The detection bound of one side (primary or standby) of a workload. */
export interface SideBudget {
  side: "primary" | "standby";
  /** Node this side runs on. */
  node: string;
  /** The slowest timeout among this side's targets, in ms (lateness not included). */
  detectionMs: number;
  /** The target that sets {@linkcode SideBudget.detectionMs} (first in order node, sensors, app). */
  limit: DetectionLimit;
}

/**
 * The FTTI budget of one workload: the worse of its two sides.
 *
 * `detectionMs + latenessAllowanceMs` is the FDTI bound, `reactionBudgetMs` the FRTI bound, and
 * `totalMs = detectionMs + latenessAllowanceMs + reactionBudgetMs` must be ≤ `fttiMs`
 * (`marginMs = fttiMs - totalMs` ≥ 0). Example: `300 + 5 + 25 = 330 ≤ 500`, margin 170.
 */
export interface WorkloadBudget {
  workload: string;
  asil: Asil;
  /** The workload's fault tolerant time interval, ms. */
  fttiMs: number;
  /** The slowest timeout of the limiting side's targets, ms. */
  detectionMs: number;
  /** `supervisor.lagToleranceMs`: supervision lateness allowed on top of a timeout, ms. */
  latenessAllowanceMs: number;
  /** `supervisor.reactionBudgetMs`: the fault reaction budget (FRTI bound), ms. */
  reactionBudgetMs: number;
  /** `detectionMs + latenessAllowanceMs + reactionBudgetMs`, ms. */
  totalMs: number;
  /** `fttiMs - totalMs`; negative when the budget is violated. */
  marginMs: number;
  /**
   * Which side and target limit detection, e.g. `primary node worker-node2`, or
   * `primary node worker-node2 = standby node worker-node3` when both sides are equally slow.
   */
  limitedBy: string;
  /** Detection bound of the primary side. */
  primary: SideBudget;
  /** Detection bound of the standby side (its targets rule after a failover). */
  standby: SideBudget;
}

/** The parts of a workload that its budget depends on ({@linkcode WorkloadConfig} fits). */
export type BudgetWorkload = Pick<WorkloadConfig, "name" | "asil" | "fttiMs"> & {
  primary: { node: string; sensors: readonly string[] };
  standby: { node: string; sensors: readonly string[] };
  appHeartbeat?: { timeoutMs: number };
};

/** Timeouts (ms) of the supervised targets by name; `undefined` when unknown. */
export interface TimeoutLookup {
  node(name: string): number | undefined;
  sensor(name: string): number | undefined;
}

/** The supervisor settings a budget depends on. */
export interface BudgetSupervisor {
  /** FRTI bound, ms (schema default 25). */
  reactionBudgetMs: number;
  /** Supervision lateness allowance, ms (schema default 5). */
  lagToleranceMs: number;
}

/**
 * The budget of one workload, from any source of timeouts.
 * @returns `undefined` when a node or sensor the workload references has no known timeout (the
 *   semantic validation reports such references; a partial budget would understate detection).
 */
export function workloadBudget(
  workload: BudgetWorkload,
  timeouts: TimeoutLookup,
  supervisor: BudgetSupervisor,
): WorkloadBudget | undefined {
  const primary = sideBudget("primary", workload, timeouts);
  const standby = sideBudget("standby", workload, timeouts);
  if (primary === undefined || standby === undefined) return undefined;
  const worst = standby.detectionMs > primary.detectionMs ? standby : primary;
  const limitedBy = primary.detectionMs === standby.detectionMs
    ? `${describe(primary)} = ${describe(standby)}`
    : describe(worst);
  const totalMs = worst.detectionMs + supervisor.lagToleranceMs + supervisor.reactionBudgetMs;
  return {
    workload: workload.name,
    asil: workload.asil,
    fttiMs: workload.fttiMs,
    detectionMs: worst.detectionMs,
    latenessAllowanceMs: supervisor.lagToleranceMs,
    reactionBudgetMs: supervisor.reactionBudgetMs,
    totalMs,
    marginMs: workload.fttiMs - totalMs,
    limitedBy,
    primary,
    standby,
  };
}

/**
 * The FTTI budget of every workload of a validated config, in config order.
 * @throws {RangeError} when a workload references a node or sensor the config does not define
 *   (impossible for a config from `loadConfig`/`parseConfig`, which reject such references).
 */
export function computeBudgets(config: Config): WorkloadBudget[] {
  const nodes = new Map<string, number>();
  for (const n of config.nodes) if (!nodes.has(n.name)) nodes.set(n.name, n.heartbeatTimeoutMs);
  const sensors = new Map<string, number>();
  for (const s of config.sensors) if (!sensors.has(s.name)) sensors.set(s.name, s.timeoutMs);
  const lookup: TimeoutLookup = { node: (n) => nodes.get(n), sensor: (s) => sensors.get(s) };
  return config.workloads.map((w) => {
    const budget = workloadBudget(w, lookup, config.supervisor);
    if (budget === undefined) {
      throw new RangeError(`workload "${w.name}" references an undefined node or sensor`);
    }
    return budget;
  });
}

/**
 * Renders budgets as an aligned text table (one header line, one line per workload, no trailing
 * newline); times in ms, the margin signed. An empty list renders as `(no workloads)`.
 */
export function formatBudgetTable(budgets: readonly WorkloadBudget[]): string {
  if (budgets.length === 0) return "(no workloads)";
  const header = [
    "workload",
    "asil",
    "ftti ms",
    "detect ms",
    "lateness ms",
    "reaction ms",
    "total ms",
    "margin ms",
    "limited by",
  ];
  const rows = budgets.map((b) => [
    b.workload,
    b.asil,
    String(b.fttiMs),
    String(b.detectionMs),
    String(b.latenessAllowanceMs),
    String(b.reactionBudgetMs),
    String(b.totalMs),
    b.marginMs > 0 ? `+${b.marginMs}` : String(b.marginMs),
    b.limitedBy,
  ]);
  const numeric = (col: number) => col >= 2 && col <= 7;
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col].length)));
  return [header, ...rows].map((cells) =>
    cells.map((cell, col) =>
      col === cells.length - 1
        ? cell
        : numeric(col)
        ? cell.padStart(widths[col])
        : cell.padEnd(widths[col])
    ).join("  ")
  ).join("\n");
}

function sideBudget(
  side: "primary" | "standby",
  workload: BudgetWorkload,
  timeouts: TimeoutLookup,
): SideBudget | undefined {
  const placement = workload[side];
  const nodeTimeoutMs = timeouts.node(placement.node);
  if (nodeTimeoutMs === undefined) return undefined;
  const limits: DetectionLimit[] = [{
    kind: "node",
    name: placement.node,
    timeoutMs: nodeTimeoutMs,
  }];
  for (const sensor of placement.sensors) {
    const timeoutMs = timeouts.sensor(sensor);
    if (timeoutMs === undefined) return undefined;
    limits.push({ kind: "sensor", name: sensor, timeoutMs });
  }
  if (workload.appHeartbeat !== undefined) {
    limits.push({ kind: "app", name: workload.name, timeoutMs: workload.appHeartbeat.timeoutMs });
  }
  // Ties go to the first target in the order node, sensors, app.
  const limit = limits.reduce((a, b) => (b.timeoutMs > a.timeoutMs ? b : a));
  return { side, node: placement.node, detectionMs: limit.timeoutMs, limit };
}

function describe(side: SideBudget): string {
  const target = side.limit.kind === "app"
    ? `app heartbeat on ${side.node}`
    : `${side.limit.kind} ${side.limit.name}`;
  return `${side.side} ${target}`;
}

/** The Lease timing of a supervisor pair ({@linkcode PairConfig} fits). */
export interface PairTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/**
 * Upper bound of a takeover, ms: from the active supervisor's death to the standby leading.
 *
 * The standby observes the leader's last renew at most `retryPeriodMs` after it was written,
 * takes over once it has observed no change for `leaseDurationMs`, and its acquiring write is cut
 * at `renewDeadlineMs` (`lib/leader/lease_elector.ts`, client-go's `tools/leaderelection` rules).
 * The death comes after the last renew, so `leaseDurationMs + retryPeriodMs + renewDeadlineMs`
 * bounds death → leading when the API answers within the renew deadline (an API slower than that
 * is an outage: nobody leads, see docs/design.md "API outage").
 */
export function takeoverBoundMs(pair: PairTiming): number {
  return pair.leaseDurationMs + pair.retryPeriodMs + pair.renewDeadlineMs;
}

/**
 * A workload's budget when a fault coincides with the loss of the active supervisor of a pair:
 * the standby has detected the fault (its watchdog is warm) but decides only once it leads, so in
 * the worst case (the leader dies just before it would have acted) detection and takeover add up:
 * `withTakeoverMs = totalMs + takeoverMs` (detection + lateness + takeover + reaction).
 */
export interface TakeoverBudget {
  workload: string;
  fttiMs: number;
  /** The single-supervisor budget's total ({@linkcode WorkloadBudget.totalMs}), ms. */
  totalMs: number;
  /** {@linkcode takeoverBoundMs} of the pair's timing, ms. */
  takeoverMs: number;
  /** `totalMs + takeoverMs`, ms. */
  withTakeoverMs: number;
  /** `fttiMs - withTakeoverMs`; negative: a fault during a takeover may exceed the FTTI. */
  marginMs: number;
}

/**
 * The budgets of {@linkcode computeBudgets} with a pair's takeover added, in config order;
 * `undefined` without `supervisor.pair`.
 * @throws {RangeError} as {@linkcode computeBudgets}.
 */
export function computeTakeoverBudgets(config: Config): TakeoverBudget[] | undefined {
  const pair = config.supervisor.pair;
  if (pair === undefined) return undefined;
  const takeoverMs = takeoverBoundMs(pair);
  return computeBudgets(config).map((b) => ({
    workload: b.workload,
    fttiMs: b.fttiMs,
    totalMs: b.totalMs,
    takeoverMs,
    withTakeoverMs: b.totalMs + takeoverMs,
    marginMs: b.fttiMs - b.totalMs - takeoverMs,
  }));
}

/**
 * Lines saying whether each workload's FTTI holds when its fault coincides with a takeover:
 * `lane-detection: 330 + takeover 700 = 1030 ms > FTTI 500 ms (short by 530 ms)` or `… ≤ FTTI
 * … (margin N ms)`.
 */
export function formatTakeoverBudgets(budgets: readonly TakeoverBudget[]): string[] {
  return budgets.map((b) =>
    `${b.workload}: ${b.totalMs} + takeover ${b.takeoverMs} = ${b.withTakeoverMs} ms ` +
    (b.marginMs >= 0
      ? `≤ FTTI ${b.fttiMs} ms (margin ${b.marginMs} ms)`
      : `> FTTI ${b.fttiMs} ms (short by ${-b.marginMs} ms)`)
  );
}
