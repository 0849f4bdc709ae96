/**
 * The desired state the failover policy decides and the reconciler converges the cluster to.
 *
 * Per workload: which side is active, at which epoch (the fencing token) and why; per node:
 * whether it should be fenced (cordoned and/or tainted by us) and why. The policy produces it
 * from confirmed expiries (pure logic); the supervisor publishes the promotion first (fast path)
 * and hands the desired state to the reconciler, which observes the cluster, compares and
 * converges, and keeps doing so until the cluster matches.
 *
 * @module
 */
import type { ExpiryCause } from "../watchdog/watchdog.ts";
import type { NodeTarget, Side, Target, Workload } from "../topology/topology.ts";

/** The confirmed expiry that led to a decision (monotonic ms), for logs and measurements. */
export interface Trigger {
  target: Target;
  cause: ExpiryCause;
  /** When the expiry was confirmed. */
  expiredAtMs: number;
  /** When the passed deadline (or Last Will) was first noticed, before the confirmation. */
  noticedAtMs?: number;
  lastHeartbeatAtMs: number | undefined;
  deadlineMs: number | undefined;
  latenessMs: number | undefined;
}

/** Why a node should be fenced. */
export type NodeFenceReason = "node-expired" | "node-offline" | "node-never-seen";

/** Desired state of one workload. */
export interface WorkloadDesired {
  workload: Workload;
  /** The side that should hold the active role. */
  active: Side;
  /** Fencing token: 0 = never failed over; strictly increasing per workload. */
  epoch: number;
  /**
   * Why `active` holds the role: `initial` at epoch 0, else the failover reason
   * (`node-expired`, `node-offline`, `node-never-seen`, `sensor-expired:<sensor>`, `app-expired`,
   * or `adopted` when taken over from the cluster or a retained promotion without one).
   */
  reason: string;
  /**
   * True when the instance that lost the role must not run on its node any more (its pods are
   * deleted): set by failovers when the workload allows `deletePods`.
   */
  removeFailed: boolean;
  /** True when the failed side's node itself is the fault: its pods go only once it is fenced. */
  nodeFault: boolean;
  /**
   * Wall time (ISO 8601) of the failover decision, or `undefined` at epoch 0. Only pods of the
   * failed instance created before it are removed: a replacement the ReplicaSet creates afterwards
   * is a fresh instance, not the failed one. Wall time is used here only because Kubernetes
   * timestamps are wall time (the supervisor runs on the server node, beside the API server).
   */
  failedAt: string | undefined;
  /** The expiry that caused the current epoch (absent when adopted). */
  trigger?: Trigger;
}

/** Desired state of one node. */
export interface NodeDesired {
  node: NodeTarget;
  /** True when the node should be fenced (our cordon and/or our NoExecute taint). */
  fenced: boolean;
  /** Mark it unschedulable (cordon). */
  cordon: boolean;
  /** Add our NoExecute taint. */
  taint: boolean;
  /** Why (absent when not fenced). */
  reason?: NodeFenceReason | "adopted";
  /** The expiry that caused it (absent when adopted). */
  trigger?: Trigger;
}
