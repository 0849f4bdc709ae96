/**
 * What a publisher run reports: per node, per applied fault, and the run's times.
 *
 * @module
 */
import type { Fault } from "./faults.ts";

/**
 * What a simulated node is doing (`draining` and `stopped`: a planned stop, see the
 * `planned-stop` fault).
 */
export type SimNodeState = "running" | "hung" | "crashed" | "partitioned" | "draining" | "stopped";

/** Per-node results of a publisher run. */
export interface PublisherNodeReport {
  /** Node heartbeats that reached the node's MQTT connection (after hang and jitter). */
  heartbeatsSent: number;
  /** Clock time (ms, monotonic) of the last of them; `undefined` when none was sent. */
  lastHeartbeatAtMs: number | undefined;
  /** Heartbeat slots at which the agent reported the node `degraded` (a required sensor stale). */
  degradedPeriods: number;
  /** Sensor ticks sent on this node's connection. */
  ticksSent: number;
  /** App heartbeats sent on this node's connection. */
  appHeartbeatsSent: number;
  /** The node's state at the end of the run. */
  state: SimNodeState;
}

/** A fault as it was applied. */
export interface AppliedFault {
  /** The parsed fault. */
  fault: Fault;
  /** Its specification text. */
  spec: string;
  /** The node it acted on (for sensor-loss the sensor's node, for app-hang the primary's node). */
  node: string;
  /** Clock time (ms, monotonic) at which it was applied. */
  appliedAtMs: number;
  /** `appliedAtMs` minus the publisher's start, ms. */
  offsetMs: number;
  /** `performance.timeOrigin + appliedAtMs`: wall-clock ms for cross-process comparisons. */
  wallTimeMs: number;
  /** Clock time of the last node heartbeat of `node` sent before the fault; `undefined` if none. */
  lastHeartbeatAtMs: number | undefined;
  /** For a partition: clock time at which the node was connected again. */
  healedAtMs?: number;
  /** For a planned stop: how its drain ended (set when it has). */
  drain?: DrainReport;
}

/** How the drain of a `planned-stop` fault ended. */
export interface DrainReport {
  /** `drained`, `timed-out` (no promotion moved every workload in time), or `stopped` (run end). */
  outcome: "drained" | "timed-out" | "stopped";
  /**
   * Switchover time, ms: from `draining` published to the promotion that moved the node's last
   * active workload away (0 when none was active there); `undefined` unless `drained`.
   */
  switchoverMs: number | undefined;
  /** Workloads moved away during the drain. */
  moved: string[];
  /** Workloads still active on the node when the drain ended. */
  pending: string[];
  /** Clock time (ms, monotonic) when the node had published `offline` and disconnected. */
  stoppedAtMs: number;
}

/** The result of `runPublisher`. */
export interface PublisherReport {
  /** Clock time (ms, monotonic) when every node was connected and publishing started. */
  startedAtMs: number;
  /** `performance.timeOrigin + startedAtMs`. */
  startedWallTimeMs: number;
  /** Clock time when the ordered shutdown began (after `durationMs` or on abort). */
  shutdownAtMs: number;
  /** Clock time when every client had ended. */
  endedAtMs: number;
  /** True when the run was cut short by the abort signal. */
  aborted: boolean;
  /** Per node, by name. */
  nodes: Record<string, PublisherNodeReport>;
  /** The faults applied, in order of application. */
  faults: AppliedFault[];
  /** Faults whose time did not come before the end of the run. */
  notApplied: Fault[];
}

/** What {@linkcode buildReport} assembles. */
export interface ReportInput {
  /** See {@linkcode PublisherReport.startedAtMs}. */
  startedAtMs: number;
  /** See {@linkcode PublisherReport.shutdownAtMs}. */
  shutdownAtMs: number;
  /** See {@linkcode PublisherReport.endedAtMs}. */
  endedAtMs: number;
  /** See {@linkcode PublisherReport.aborted}. */
  aborted: boolean;
  /** Every simulated node, in config order. */
  nodes: Iterable<{ readonly name: string; report(): PublisherNodeReport }>;
  /** See {@linkcode PublisherReport.faults}. */
  faults: AppliedFault[];
  /** See {@linkcode PublisherReport.notApplied}. */
  notApplied: Fault[];
}

/** Assembles a {@linkcode PublisherReport}, adding the wall-clock start time. */
export function buildReport(input: ReportInput): PublisherReport {
  return {
    startedAtMs: input.startedAtMs,
    startedWallTimeMs: wallTimeMs(input.startedAtMs),
    shutdownAtMs: input.shutdownAtMs,
    endedAtMs: input.endedAtMs,
    aborted: input.aborted,
    nodes: Object.fromEntries([...input.nodes].map((n) => [n.name, n.report()])),
    faults: input.faults,
    notApplied: input.notApplied,
  };
}

/** `performance.timeOrigin + monotonicMs`: wall-clock ms of a `performance.now()` reading. */
export function wallTimeMs(monotonicMs: number): number {
  return performance.timeOrigin + monotonicMs;
}

/** Rounds ms to µs, for log lines. */
export function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
