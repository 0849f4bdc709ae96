/**
 * The read side of the reconciler: what it observes of the cluster, independent of client-node so
 * planners, the dry run and test fakes never load it. The informer-backed implementation is
 * `lib/kube/cache.ts`.
 *
 * @module
 */

/** A Deployment as observed in the cache. */
export interface ObservedDeployment {
  uid: string;
  resourceVersion: string;
  annotations: Readonly<Record<string, string>>;
  labels: Readonly<Record<string, string>>;
  /** `spec.selector.matchLabels` (empty when it has none). */
  selector: Readonly<Record<string, string>>;
}

/** A Pod as observed in the cache. */
export interface ObservedPod {
  name: string;
  uid: string;
  /** True when `metadata.deletionTimestamp` is set. */
  deleting: boolean;
  /** `metadata.creationTimestamp` (ISO 8601, second resolution); absent in models. */
  createdAt?: string;
  /** `spec.nodeName` (empty when not scheduled). */
  nodeName?: string;
  resourceVersion?: string;
  /** `status.phase` (`Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`); absent: unknown. */
  phase?: string;
  /** True when the `Ready` condition of `status.conditions` is `True`. */
  ready?: boolean;
}

/** A Node taint. */
export interface ObservedTaint {
  key: string;
  value?: string;
  effect: string;
  /** When a NoExecute taint was added (RFC 3339), kept when the taint list is rewritten. */
  timeAdded?: string;
}

/** A Node as observed in the cache. */
export interface ObservedNode {
  uid: string;
  /** `spec.unschedulable`. */
  unschedulable: boolean;
  /** `spec.taints` (every taint, ours and others). */
  taints: readonly ObservedTaint[];
  annotations: Readonly<Record<string, string>>;
  resourceVersion: string;
}

/** The kind of object a change notification is about. */
export type ChangeKind = "node" | "deployment" | "pod";

/** Called for every add, update or delete the cache sees (namespace undefined for nodes). */
export type ChangeListener = (
  kind: ChangeKind,
  namespace: string | undefined,
  name: string,
) => void;

/** A read-only view of the cluster objects the reconciler manages. */
export interface ClusterView {
  /** True once every watch has listed its objects at least once. */
  readonly synced: boolean;
  /** A Deployment by namespace and name. */
  deployment(namespace: string, name: string): ObservedDeployment | undefined;
  /**
   * Pods in `namespace` whose labels include every `selector` entry and that are bound to
   * `nodeName`. An empty selector matches nothing (never every pod).
   */
  pods(namespace: string, selector: Record<string, string>, nodeName: string): ObservedPod[];
  /** A Node by name. */
  node(name: string): ObservedNode | undefined;
  /**
   * Subscribes to changes.
   * @returns a function that unsubscribes.
   */
  onChange(listener: ChangeListener): () => void;
}

/** True when `labels` contain every entry of a non-empty `selector`. */
export function matchesSelector(
  labels: Readonly<Record<string, string>> | undefined,
  selector: Readonly<Record<string, string>>,
): boolean {
  // Allocation-free: called per pod on the failover hot path.
  let any = false;
  for (const k in selector) {
    if (labels?.[k] !== selector[k]) return false;
    any = true;
  }
  return any;
}
