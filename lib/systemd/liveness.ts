/**
 * What counts as alive for the service manager's watchdog (see `service_watchdog.ts`), per role,
 * as pure functions of monotonic readings, and the one-line statuses.
 *
 * Bounds: a fault of the broker connection (supervisor: an ingest fault; agent: disconnected) is
 * tolerated for {@linkcode connectionFaultBoundMs} — 5 × the service watchdog's timeout, at least
 * the reconnect allowance (2 × `reconnectPeriodMs` + 1 s): a broker restart or a short outage
 * within the reconnect and resume grace never restarts the service, while a process that lost its
 * broker for good stops looking healthy and systemd restarts it `WatchdogSec` after the last ping
 * (a fresh MQTT client; the new process reports READY only once connected and armed). A timer of
 * ours (the heartbeat watchdog's deadline timer, the agent's heartbeat schedule) is alive when it
 * ran within one ping interval of when it was due.
 *
 * @module
 */

/** Factor of the service watchdog's timeout that a broker-connection fault is tolerated for. */
export const CONNECTION_FAULT_TIMEOUTS = 5;

/**
 * How long a broker-connection fault may last before the pings stop, ms:
 * max({@linkcode CONNECTION_FAULT_TIMEOUTS} × `watchdogTimeoutMs`, 2 × `reconnectPeriodMs` + 1000).
 */
export function connectionFaultBoundMs(
  watchdogTimeoutMs: number,
  reconnectPeriodMs: number,
): number {
  return Math.max(CONNECTION_FAULT_TIMEOUTS * watchdogTimeoutMs, 2 * reconnectPeriodMs + 1000);
}

/** Readings of the supervisor for {@linkcode supervisorUnhealthy}. */
export interface SupervisorReadings {
  nowMs: number;
  /** The supervisor's lifecycle state is `running`. */
  running: boolean;
  /** `watchdog.timerOverdueMs(nowMs)`: how late the deadline timer is (∞ once stopped). */
  deadlineTimerOverdueMs: number;
  /** Start of the current ingest fault (monotonic ms), undefined while ingest is healthy. */
  ingestFaultSinceMs: number | undefined;
}

/** Bounds of {@linkcode supervisorUnhealthy} and {@linkcode agentUnhealthy}, ms. */
export interface LivenessBounds {
  /** Longest tolerated lateness of our own timer (deadline timer, heartbeat slot). */
  timerBoundMs: number;
  /** Longest tolerated broker-connection fault ({@linkcode connectionFaultBoundMs}). */
  connectionFaultBoundMs: number;
}

/** Why the supervisor must not look alive, or undefined when it may. */
export function supervisorUnhealthy(r: SupervisorReadings, b: LivenessBounds): string | undefined {
  if (!r.running) return "supervisor not running";
  if (r.deadlineTimerOverdueMs === Infinity) return "heartbeat watchdog stopped or without timer";
  if (r.deadlineTimerOverdueMs > b.timerBoundMs) {
    return `heartbeat watchdog's deadline timer ${Math.round(r.deadlineTimerOverdueMs)} ms overdue`;
  }
  if (r.ingestFaultSinceMs !== undefined) {
    const faultMs = r.nowMs - r.ingestFaultSinceMs;
    if (faultMs > b.connectionFaultBoundMs) {
      return `ingest fault for ${
        Math.round(faultMs)
      } ms (tolerated ${b.connectionFaultBoundMs} ms)`;
    }
  }
  return undefined;
}

/** Readings of the agent for {@linkcode agentUnhealthy}. */
export interface AgentReadings {
  nowMs: number;
  /** Clock reading of the last heartbeat slot (sent or skipped while disconnected). */
  lastSlotAtMs: number | undefined;
  /** The heartbeat period, ms. */
  periodMs: number;
  /** Since when the broker connection is down (monotonic ms), undefined while connected. */
  disconnectedSinceMs: number | undefined;
}

/** Why the agent must not look alive, or undefined when it may. */
export function agentUnhealthy(r: AgentReadings, b: LivenessBounds): string | undefined {
  if (r.lastSlotAtMs === undefined) return "heartbeat schedule not running";
  const sinceSlotMs = r.nowMs - r.lastSlotAtMs;
  if (sinceSlotMs > r.periodMs + b.timerBoundMs) {
    return `no heartbeat slot for ${Math.round(sinceSlotMs)} ms (period ${r.periodMs} ms)`;
  }
  if (r.disconnectedSinceMs !== undefined) {
    const downMs = r.nowMs - r.disconnectedSinceMs;
    if (downMs > b.connectionFaultBoundMs) {
      return `broker connection down for ${Math.round(downMs)} ms ` +
        `(tolerated ${b.connectionFaultBoundMs} ms)`;
    }
  }
  return undefined;
}

/** What {@linkcode supervisorStatus} shows. */
export interface SupervisorStatusInput {
  nowMs: number;
  /** Targets supervised. */
  targets: number;
  /** Targets whose deadline is armed. */
  armed: number;
  /** Targets EXPIRED. */
  expired: number;
  /** In a supervisor pair: whether this instance leads (undefined: no pair). */
  leader: boolean | undefined;
  ingestFaultSinceMs: number | undefined;
  /** The ingest fault's cause. */
  ingestFaultWhy: string | undefined;
}

/** `running: 6/6 armed, 0 expired, leader, ingest ok` (or `ingest fault 3.2 s: <why>`). */
export function supervisorStatus(s: SupervisorStatusInput): string {
  const role = s.leader === undefined ? "" : s.leader ? ", leader" : ", standby";
  const ingest = s.ingestFaultSinceMs === undefined
    ? "ingest ok"
    : `ingest fault ${((s.nowMs - s.ingestFaultSinceMs) / 1000).toFixed(1)} s: ${
      s.ingestFaultWhy ?? "?"
    }`;
  return `running: ${s.armed}/${s.targets} armed, ${s.expired} expired${role}, ${ingest}`;
}

/** `heartbeating 30 Hz, online, broker connected` (or `broker down 3.2 s`). */
export function agentStatus(s: {
  nowMs: number;
  periodMs: number;
  /** The node status published (`online`, `degraded:cam`, `draining`). */
  status: string;
  disconnectedSinceMs: number | undefined;
}): string {
  const hz = Math.round(1000 / s.periodMs);
  const broker = s.disconnectedSinceMs === undefined
    ? "broker connected"
    : `broker down ${((s.nowMs - s.disconnectedSinceMs) / 1000).toFixed(1)} s`;
  return `heartbeating ${hz} Hz, ${s.status}, ${broker}`;
}
