/**
 * `publish`: the test publisher. Simulates every node agent, sensor and app heartbeat of a config
 * on the broker, injects the given faults, and prints a summary at the end.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { SessionOptions } from "../mqtt/session.ts";
import type { Logger } from "../log/log.ts";
import { type Fault, parseFault, validateFaults } from "../publisher/faults.ts";
import {
  type AppliedFault,
  type PublisherReport,
  runPublisher,
  type SimConnection,
} from "../publisher/publisher.ts";
import { buildTopology } from "../topology/topology.ts";

/** Options of {@linkcode publishCommand}. */
export interface PublishCommandOptions {
  /** Validated configuration. */
  config: Config;
  /** Fault specifications, e.g. `node-crash:worker-node2@2s` (see `lib/publisher/faults.ts`). */
  faults: string[];
  /** How long to publish, ms. */
  durationMs: number;
  /** Aborting ends the run early (ordered shutdown, summary still printed). */
  signal: AbortSignal;
  /** Logger for the run. */
  log: Logger;
  /** Summary line sink (default `console.log`). */
  out?: (line: string) => void;
  /** Usage-error line sink (default `console.error`). */
  err?: (line: string) => void;
  /** Opens one connection per node (default `openAgentSession`); for tests. */
  openClient?: (options: SessionOptions) => SimConnection;
}

/**
 * Runs the publisher and prints a summary (one line per node and per fault).
 * @returns 0 after a completed or aborted run; 2 when a fault spec is malformed or names an
 *   unknown node, sensor or workload, or `durationMs` is not a non-negative number (every problem
 *   is printed to `err`); 1 when the run fails (broker unreachable within `connectTimeoutMs`,
 *   credentials unreadable). Never throws, never calls `Deno.exit`.
 */
export async function publishCommand(opts: PublishCommandOptions): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  const err = opts.err ?? ((line: string) => console.error(line));
  const faults: Fault[] = [];
  const problems: string[] = [];
  for (const spec of opts.faults) {
    try {
      faults.push(parseFault(spec));
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  const topology = buildTopology(opts.config);
  problems.push(...validateFaults(faults, topology));
  if (!(opts.durationMs >= 0) || !Number.isFinite(opts.durationMs)) {
    problems.push(`duration must be a non-negative number of ms, got ${opts.durationMs}`);
  }
  if (problems.length > 0) {
    for (const p of problems) err(`publish: ${p}`);
    return 2;
  }
  let report: PublisherReport;
  try {
    report = await runPublisher({
      config: opts.config,
      topology,
      faults,
      durationMs: opts.durationMs,
      signal: opts.signal,
      log: opts.log,
      openClient: opts.openClient,
    });
  } catch (error) {
    opts.log.error("publisher-failed", { error: (error as Error).message });
    return 1;
  }
  for (const line of formatSummary(report)) out(line);
  return 0;
}

/** The drain part of a `planned-stop`'s summary line (empty for other faults). */
function drainSummary(f: AppliedFault): string {
  const d = f.drain;
  if (!d) return "";
  const pending = d.pending.length > 0 ? ` (still active: ${d.pending.join(", ")})` : "";
  const outcome = d.outcome === "drained"
    ? `drained, switchover ${d.switchoverMs!.toFixed(1)} ms`
    : d.outcome === "timed-out"
    ? `drain timed out${pending}`
    : `drain cut by the end of the run${pending}`;
  return `, ${outcome}, offline ${(d.stoppedAtMs - f.appliedAtMs).toFixed(1)} ms after it`;
}

/**
 * The human-readable summary of a run: a header, one line per node, one line per fault. Times are
 * ms relative to the publisher's start; wall-clock times are ISO 8601 (for cross-process logs).
 */
function formatSummary(report: PublisherReport): string[] {
  const rel = (ms: number | undefined) =>
    ms === undefined ? "never" : `+${(ms - report.startedAtMs).toFixed(1)} ms`;
  const lines = [
    `publisher: ran ${(report.shutdownAtMs - report.startedAtMs).toFixed(0)} ms` +
    `${report.aborted ? " (aborted)" : ""}, started ${
      new Date(report.startedWallTimeMs).toISOString()
    }, shutdown took ${(report.endedAtMs - report.shutdownAtMs).toFixed(1)} ms`,
  ];
  for (const [name, n] of Object.entries(report.nodes)) {
    lines.push(
      `  node ${name}: ${n.state}, ${n.heartbeatsSent} heartbeats (last ${
        rel(n.lastHeartbeatAtMs)
      }), ${n.degradedPeriods} degraded periods, ${n.ticksSent} sensor ticks, ${n.appHeartbeatsSent} app heartbeats`,
    );
  }
  for (const f of report.faults) {
    const before = f.lastHeartbeatAtMs === undefined
      ? "no heartbeat before it"
      : `last heartbeat of ${f.node} ${(f.appliedAtMs - f.lastHeartbeatAtMs).toFixed(1)} ms before`;
    const healed = f.healedAtMs === undefined ? "" : `, reconnected ${rel(f.healedAtMs)}`;
    lines.push(
      `  fault ${f.spec}: applied ${rel(f.appliedAtMs)} (${
        new Date(f.wallTimeMs).toISOString()
      }, wall ${f.wallTimeMs.toFixed(3)}), ${before}${healed}${drainSummary(f)}`,
    );
  }
  for (const f of report.notApplied) {
    lines.push(`  fault ${f.spec}: not applied (the run ended first)`);
  }
  return lines;
}
