/**
 * The contract between the supervisor and whatever converges the cluster to the desired failover
 * state: the Kubernetes reconciler (`reconciler.ts`) or the dry run (`dry_run.ts`).
 *
 * The supervisor sets desired states ({@linkcode ClusterReconciler.setWorkload},
 * {@linkcode ClusterReconciler.setNode}); the reconciler observes (a watch-backed cache),
 * compares (`steps.ts` planners) and converges, requeueing each key with backoff until the
 * cluster matches, and re-reconciling a key whenever the cache reports a change to an object it
 * manages.
 *
 * @module
 */
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import type { NodeTarget, Placement, Side, Topology, Workload } from "../topology/topology.ts";
import { ANNOTATIONS, parseEpoch } from "./annotations.ts";
import type { ClusterView } from "./cluster_view.ts";
import { hasOurTaint } from "./steps.ts";

/** What one reconcile pass is about: a workload or a node (keyed by the topology object). */
export type ReconcileKey =
  | { kind: "workload"; workload: Workload }
  | { kind: "node"; node: NodeTarget };

/** What one step (or Event) of a pass did. */
export interface StepResult {
  /**
   * `markActive`, `markFailed`, `deletePods`, `fenceNode`, `unfenceNode`, `awaitFence`,
   * `event:<Reason>`.
   */
  action: string;
  /** `deployment/<ns>/<name>`, `pod/<ns>/<name>`, `node/<name>`, `event/<ns>/<Reason>`. */
  object: string;
  /** `unchanged`: found already done at write time (e.g. a pod already gone). */
  outcome: "done" | "unchanged" | "planned" | "failed";
  /** API attempts made (0 for barriers and dry runs). */
  attempts: number;
  /** From the start of the pass to this step's acknowledgement (or failure), ms. */
  doneAtMs: number;
  /** Human-readable detail (what was written, the error text). */
  detail?: string;
  /** True when the failure is not worth a quick retry (4xx other than 409/429). */
  terminal?: boolean;
}

/** One reconcile pass of one key. */
export interface ReconcileReport {
  key: ReconcileKey;
  /** The desired state this pass converged to (the latest when the pass started). */
  desired: WorkloadDesired | NodeDesired;
  /** Clock reading at the start / end of the pass, ms. */
  startedAtMs: number;
  finishedAtMs: number;
  /** Steps and Events of this pass, in completion order. Empty: nothing was needed. */
  results: StepResult[];
  /** True when nothing is left to do (Events do not count). */
  converged: boolean;
  /** Passes since the last convergence or new desired state, this one included (1 = first). */
  attempt: number;
  /** When not converged: the delay before the next pass, ms. */
  requeueAfterMs?: number;
  /** A persisted epoch higher than desired (the desired state is stale; nothing was written). */
  higherEpoch?: number;
}

/** Persisted failover state read from the cluster (see {@linkcode observedFailoverState}). */
export interface ObservedFailoverState {
  /**
   * Per workload: the max epoch over both Deployments, the side named by the active-node
   * annotation of the Deployment carrying it, and its reason annotation. Every workload of the
   * topology has an entry (epoch 0, active undefined when nothing is persisted).
   */
  workloads: Map<
    Workload,
    {
      epoch: number;
      active: Side | undefined;
      reason: string | undefined;
      /** `sdv-failover.io/failed-at` of that Deployment. */
      failedAt?: string;
    }
  >;
  /** Nodes carrying our taint or our cordon annotation (only those). */
  fencedNodes: Map<
    NodeTarget,
    { tainted: boolean; cordonedByUs: boolean; reason: string | undefined }
  >;
  /** Nodes whose fence we lifted: the `sdv-failover.io/unfenced-at` wall time (ISO 8601). */
  unfencedAt: Map<NodeTarget, string>;
}

/**
 * Whether the cluster shows a placement able to take over (see
 * {@linkcode ClusterReconciler.placementReady}); `why` is one human-readable reason.
 */
export type PlacementReadiness = { ready: true } | { ready: false; why: string };

/** The one `ready` answer (shared: the query allocates nothing when the placement is ready). */
export const READY: PlacementReadiness = Object.freeze({ ready: true as const });

/** Converges the cluster to desired failover states. */
export interface ClusterReconciler {
  /** Starts the watches; resolves once synced. Retries with backoff until synced or `signal` aborts (then rejects). */
  start(signal: AbortSignal): Promise<void>;
  /** Persisted failover state read from the cache (after start). */
  observed(): ObservedFailoverState;
  /** Sets the desired state of a workload and reconciles it AT ONCE (no timer, no queue delay; reads come from the cache). */
  setWorkload(desired: WorkloadDesired): void;
  /** Sets the desired state of a node and reconciles it at once. */
  setNode(desired: NodeDesired): void;
  /**
   * Whether the cluster shows `placement` able to take the active role: its Node exists and
   * carries neither our taint nor a cordon, and a pod of its Deployment (the Deployment's
   * selector) bound to that node is `Running` and `Ready` and not terminating. Synchronous, read
   * from the cache (acknowledged writes overlaid), O(pods of that Deployment's namespace on that
   * node), allocation-free when ready: it is asked on the failover hot path, besides the
   * placement's heartbeats. Not ready before the cache has synced.
   */
  placementReady(placement: Placement): PlacementReadiness;
  /** Resolves when no key is queued or in flight (keys waiting for a backoff requeue do not count). */
  whenIdle(): Promise<void>;
  /** Keys waiting (for a pass, a requeue or the initial sync) or in flight (a metric). */
  readonly queueDepth: number;
  /** Stops passes and watches; in-flight requests are aborted. */
  close(): Promise<void>;
}

/**
 * The readiness of `placement` as `view` shows it (see
 * {@linkcode ClusterReconciler.placementReady}). Checks, first failing wins: cache synced, Node
 * present, not fenced by our taint, not cordoned, Deployment present, a pod Running and Ready.
 */
export function placementReadiness(
  view: ClusterView,
  placement: Placement,
  taintKey: string,
): PlacementReadiness {
  if (!view.synced) return { ready: false, why: "cache not synced" };
  const nodeName = placement.node.name;
  const node = view.node(nodeName);
  if (!node) return { ready: false, why: `node ${nodeName} not found` };
  if (hasOurTaint(node, taintKey)) {
    return { ready: false, why: `node ${nodeName} is fenced (our taint)` };
  }
  if (node.unschedulable) return { ready: false, why: `node ${nodeName} is cordoned` };
  const ns = placement.workload.namespace;
  const deployment = view.deployment(ns, placement.deployment);
  if (!deployment) {
    return { ready: false, why: `deployment ${ns}/${placement.deployment} not found` };
  }
  const pods = view.pods(ns, deployment.selector as Record<string, string>, nodeName);
  let why: string | undefined;
  for (const p of pods) {
    if (p.deleting) why ??= `pod ${p.name} is terminating`;
    else if (p.phase !== "Running") why ??= `pod ${p.name} is ${p.phase ?? "in an unknown phase"}`;
    else if (p.ready !== true) why ??= `pod ${p.name} not Ready`;
    else return READY;
  }
  return { ready: false, why: why ?? `no pod of ${placement.deployment} on ${nodeName}` };
}

/** Reads the persisted failover state of every workload and node of `topology` from `view`. */
export function observedFailoverState(
  topology: Topology,
  view: ClusterView,
  taintKey: string,
): ObservedFailoverState {
  const workloads: ObservedFailoverState["workloads"] = new Map();
  for (const w of topology.workloads) {
    let best: {
      epoch: number;
      active: Side | undefined;
      reason: string | undefined;
      failedAt?: string;
    } = {
      epoch: 0,
      active: undefined,
      reason: undefined,
    };
    for (const p of [w.primary, w.standby]) {
      const a = view.deployment(w.namespace, p.deployment)?.annotations ?? {};
      const epoch = parseEpoch(a[ANNOTATIONS.epoch]);
      if (epoch > best.epoch) {
        const activeNode = a[ANNOTATIONS.activeNode];
        best = {
          epoch,
          active: w.primary.node.name === activeNode
            ? "primary"
            : w.standby.node.name === activeNode
            ? "standby"
            : undefined,
          reason: a[ANNOTATIONS.reason],
          failedAt: a[ANNOTATIONS.failedAt],
        };
      }
    }
    workloads.set(w, best);
  }
  const fencedNodes: ObservedFailoverState["fencedNodes"] = new Map();
  const unfencedAt: ObservedFailoverState["unfencedAt"] = new Map();
  for (const n of topology.nodes) {
    const node = view.node(n.name);
    if (!node) continue;
    const lifted = node.annotations[ANNOTATIONS.unfencedAt];
    if (lifted !== undefined) unfencedAt.set(n, lifted);
    const tainted = hasOurTaint(node, taintKey);
    const cordonedByUs = node.unschedulable && ANNOTATIONS.cordonedBy in node.annotations;
    if (tainted || cordonedByUs) {
      fencedNodes.set(n, {
        tainted,
        cordonedByUs,
        reason: node.annotations[ANNOTATIONS.fenceReason],
      });
    }
  }
  return { workloads, fencedNodes, unfencedAt };
}
