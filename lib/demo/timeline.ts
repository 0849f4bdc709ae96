/**
 * The demo's printout: the timeline of what the publisher, the supervisor, the dry-run reconciler
 * and the apps did, the latencies of each failure, and the verdict (did exactly the expected
 * workloads fail over?).
 *
 * Failures are related to promotions through the topology (the failed placement's targets), never
 * through id strings.
 *
 * @module
 */
import type { Fault } from "../publisher/faults.ts";
import type { PublisherReport } from "../publisher/report.ts";
import { failures, placementFailure } from "../runtime/failure_cause.ts";
import type { SupervisorEvent } from "../runtime/supervisor.ts";
import type { Target, Topology } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import type { ReceivedPromotion } from "./promotion_watcher.ts";

/** What happened in a demo run. */
export interface DemoRun {
  topology: Topology;
  fault: Fault;
  report: PublisherReport;
  events: readonly SupervisorEvent[];
  received: readonly ReceivedPromotion[];
}

/** One line of the timeline. */
export interface TimelineRow {
  /** Clock time (ms, monotonic). */
  atMs: number;
  text: string;
}

export { failures };

/** The timeline rows of a run, in time order. */
function timelineRows(run: DemoRun): TimelineRow[] {
  const rel = relativeTo(run.report.startedAtMs);
  const rows: TimelineRow[] = [];
  for (const f of run.report.faults) {
    rows.push({
      atMs: f.appliedAtMs,
      text: `publisher   fault injected: ${f.spec} (last heartbeat sent ${
        rel(f.lastHeartbeatAtMs)
      })`,
    });
  }
  for (const t of failures(run.events)) {
    rows.push({
      atMs: t.lastHeartbeatAtMs ?? t.atMs,
      text: `supervisor  last heartbeat received from ${t.target.label}`,
    });
    rows.push({
      atMs: t.atMs,
      text: `supervisor  ${t.target.label} EXPIRED (cause ${t.cause}, ` +
        `${(t.atMs - (t.lastHeartbeatAtMs ?? t.atMs)).toFixed(1)} ms after its last heartbeat, ` +
        `timeout ${t.target.timeoutMs} ms)`,
    });
  }
  for (const e of run.events) {
    if (e.type === "promotion-sent") {
      const p = e.promotion;
      rows.push({
        atMs: e.atMs,
        text: `supervisor  promotion published: ${p.workload} → ${p.activeNode} ` +
          `(epoch ${p.epoch}, ${p.reason})`,
      });
    } else if (e.type === "reconciled") {
      for (const r of e.report.results) {
        rows.push({
          atMs: e.atMs,
          text: `reconciler  planned (dry run): ${r.action} ${r.object} — ${r.detail ?? ""}`,
        });
      }
    } else if (e.type === "blocked") {
      rows.push({
        atMs: e.atMs,
        text: `policy      failover BLOCKED: ${e.decision.workload}: ${e.decision.why}`,
      });
    }
  }
  for (const r of run.received) {
    rows.push({
      atMs: r.atMs,
      text: `app         promotion received: ${r.promotion.workload} active on ` +
        `${r.promotion.activeNode} (epoch ${r.promotion.epoch})`,
    });
  }
  return rows.sort((a, b) => a.atMs - b.atMs);
}

/**
 * The failure that caused a received promotion: the earliest failure, not after its arrival, of a
 * target of the placement that lost the role.
 */
export function causeOf(
  topology: Topology,
  received: ReceivedPromotion,
  failed: readonly Transition<Target>[],
): Transition<Target> | undefined {
  const workload = topology.workload(received.promotion.workload);
  const node = topology.node(received.promotion.failedNode);
  const placement = workload && node ? topology.placementOn(workload, node) : undefined;
  return placement ? placementFailure(placement, failed, received.atMs, "earliest") : undefined;
}

/** The latency lines: per failure, fault → expiry, silence, and expiry → promotion received. */
function latencyLines(run: DemoRun): string[] {
  const failed = failures(run.events);
  const fault = run.report.faults[0];
  const lines = ["latencies"];
  for (const t of failed) {
    lines.push(`  ${t.target.label}:`);
    if (fault) {
      lines.push(
        `    fault → expiry                         ${(t.atMs - fault.appliedAtMs).toFixed(2)} ms`,
      );
    }
    if (t.lastHeartbeatAtMs !== undefined) {
      lines.push(
        `    expiry − last heartbeat received       ${
          (t.atMs - t.lastHeartbeatAtMs).toFixed(2)
        } ms (timeout ${t.target.timeoutMs} ms)`,
      );
    }
    for (const r of run.received) {
      if (causeOf(run.topology, r, failed) !== t) continue;
      lines.push(
        `    expiry → promotion received (MQTT)     ${(r.atMs - t.atMs).toFixed(2)} ms ` +
          `(${r.promotion.workload})`,
      );
    }
  }
  return lines;
}

/** The workloads a fault should fail over: those whose primary placement it breaks. */
export function expectedFailovers(topology: Topology, fault: Fault): string[] {
  return topology.workloads.filter((w) => {
    switch (fault.kind) {
      case "node-crash":
      case "node-hang":
      case "partition":
      case "planned-stop": // the drain asks for the node's active workloads to be moved
        return w.primary.node === topology.node(fault.node);
      case "sensor-loss": {
        const sensor = topology.sensor(fault.sensor);
        return sensor !== undefined && w.primary.sensors.includes(sensor);
      }
      case "app-hang":
        return w.name === fault.workload;
      case "jitter":
        return false;
    }
  }).map((w) => w.name);
}

/** The verdict: exactly the expected workloads received a promotion. */
export function verdict(run: DemoRun): { ok: boolean; line: string } {
  const expected = expectedFailovers(run.topology, run.fault);
  const got = [...new Set(run.received.map((r) => r.promotion.workload))];
  const unexpected = got.filter((w) => !expected.includes(w));
  const missing = expected.filter((w) => !got.includes(w));
  const ok = missing.length === 0 && unexpected.length === 0;
  return {
    ok,
    line: ok
      ? `OK: ${got.length} workload(s) failed over (${
        got.join(", ") || "none expected"
      }), no healthy node failed over`
      : `FAILED: missing promotions ${JSON.stringify(missing)}, unexpected ${
        JSON.stringify(unexpected)
      }`,
  };
}

/** Every line of the printout after the header. */
export function formatRun(run: DemoRun): { ok: boolean; lines: string[] } {
  const rel = relativeTo(run.report.startedAtMs);
  const { ok, line } = verdict(run);
  return {
    ok,
    lines: [
      "timeline (monotonic, from publisher start)",
      ...timelineRows(run).map((r) => `  ${rel(r.atMs)}  ${r.text}`),
      "",
      ...latencyLines(run),
      "",
      line,
    ],
  };
}

function relativeTo(t0: number): (ms: number | undefined) => string {
  return (ms) => ms === undefined ? "      —" : `+${(ms - t0).toFixed(1).padStart(7)} ms`;
}
