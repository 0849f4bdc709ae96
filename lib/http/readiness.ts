/**
 * The `/readyz` verdicts of the supervisor and of the node agent: pure functions of a few facts,
 * so every state is unit-tested without a process.
 *
 * @module
 */
import type { SupervisorState } from "../runtime/supervisor.ts";

/** A readiness verdict: ready, or the reasons why not (each a short sentence). */
export interface Readiness {
  ready: boolean;
  /** Empty when ready. */
  reasons: string[];
}

/** What the supervisor's readiness depends on. */
export interface SupervisorReadinessFacts {
  /** The lifecycle state (`running`: armed AND the cluster state adopted). */
  state: SupervisorState;
  /** The watchdog is armed (subscribed on the first broker connection). */
  armed: boolean;
  /** Ingest is faulted (broker lost or stalled): supervision is suspended. */
  ingestFaulted: boolean;
  /** The reconciler's cache has synced and the persisted failover state is adopted. */
  clusterSynced: boolean;
}

/**
 * The supervisor is ready when it is running, its watchdog armed, ingest not faulted and the
 * cluster cache synced (the reconciler started and the persisted state adopted; a dry run's model
 * counts as synced once started). A standby of a pair is ready too: it supervises warm.
 */
export function supervisorReadiness(facts: SupervisorReadinessFacts): Readiness {
  const reasons: string[] = [];
  if (facts.state === "stopping" || facts.state === "stopped") {
    reasons.push(`shutting down (${facts.state})`);
  } else {
    if (!facts.armed) reasons.push("watchdog not armed: no broker connection yet");
    if (!facts.clusterSynced) {
      reasons.push("cluster cache not synced: persisted failover state not adopted yet");
    }
    if (facts.ingestFaulted) {
      reasons.push("ingest fault: broker lost or stalled, supervision suspended");
    }
    if (reasons.length === 0 && facts.state !== "running") reasons.push(`state ${facts.state}`);
  }
  return { ready: reasons.length === 0, reasons };
}

/** A required sensor's freshness as the agent knows it. */
export type AgentSensorState = "fresh" | "stale" | "unknown";

/** What the node agent's readiness depends on. */
export interface AgentReadinessFacts {
  /** Connected to the broker. */
  connected: boolean;
  /** Each required sensor's state (`unknown`: not watched for a full timeout since connecting). */
  sensors: readonly { sensor: string; state: AgentSensorState }[];
  /** Draining or stopping. */
  stopping: boolean;
}

/**
 * The agent is ready when it is connected to the broker and knows whether each required sensor
 * is fresh or stale (its `online` / `degraded:…` status then means something). A stale sensor does
 * not make it unready: the agent reports it correctly.
 */
export function agentReadiness(facts: AgentReadinessFacts): Readiness {
  const reasons: string[] = [];
  if (facts.stopping) reasons.push("stopping");
  if (!facts.connected) reasons.push("not connected to the broker");
  else {
    const unknown = facts.sensors.filter((s) => s.state === "unknown").map((s) => s.sensor);
    if (unknown.length) reasons.push(`sensor state not known yet: ${unknown.join(", ")}`);
  }
  return { ready: reasons.length === 0, reasons };
}
