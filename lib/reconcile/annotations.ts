/**
 * Annotation and label keys the reconciler writes on Deployments and Nodes. The epoch (the
 * fencing token) is persisted on Deployments, so a restarted supervisor observes it.
 *
 * @module
 */

/** Annotation (and label) keys written by the reconciler. */
export const ANNOTATIONS = {
  /** Deployment annotation and label: `active` or `failed`. */
  role: "sdv-failover.io/role",
  /** Deployment annotation: the workload's epoch (decimal integer). */
  epoch: "sdv-failover.io/epoch",
  /** Deployment annotation: Kubernetes name of the node holding the active role. */
  activeNode: "sdv-failover.io/active-node",
  /** Deployment annotation: Kubernetes name of the node that lost the role. */
  failedNode: "sdv-failover.io/failed-node",
  /** Deployment annotation: why the active side holds the role. */
  reason: "sdv-failover.io/reason",
  /**
   * Deployment annotation: wall time (ISO 8601) of the failover decision; pods of the failed
   * instance created before it are the ones removed.
   */
  failedAt: "sdv-failover.io/failed-at",
  /** Node annotation: the supervisor id that cordoned the node (absent: not cordoned by us). */
  cordonedBy: "sdv-failover.io/cordoned-by",
  /** Node annotation: why we fenced the node. */
  fenceReason: "sdv-failover.io/fence-reason",
  /**
   * Node annotation: an operator's request (`sdv-failover unfence`) to lift our fence, valued
   * with the wall time (ISO 8601) of the request. The supervisor owns the desired state: it sees
   * the request, sets the node's desired state to unfenced, and the un-fence step removes it.
   */
  unfenceRequested: "sdv-failover.io/unfence-requested",
  /**
   * Node annotation: wall time (ISO 8601) at which we last lifted our fence from the node. A
   * restarted supervisor adopting a node-fault failover decided (`failed-at`) before it does not
   * fence the node again: that fence was written and lifted once the node was OK (see
   * `FailoverCoordinator.adopt`). Kept by the un-fence (it records history, not a fence).
   */
  unfencedAt: "sdv-failover.io/unfenced-at",
} as const;

/**
 * Parses an epoch annotation value.
 * @returns the epoch, or 0 when absent or not a non-negative decimal integer.
 */
export function parseEpoch(value: string | undefined): number {
  if (value === undefined || !/^\d+$/.test(value)) return 0;
  const n = Number.parseInt(value, 10);
  return Number.isSafeInteger(n) ? n : 0;
}
