/**
 * A recording {@linkcode ClusterReconciler} for unit tests of the supervisor and the
 * coordinator: it records every desired state handed to it, reports a configurable observed
 * state, and can hold `start()` until the test releases it.
 *
 * @module
 */
import type { NodeDesired, WorkloadDesired } from "../../lib/policy/desired.ts";
import type {
  ClusterReconciler,
  ObservedFailoverState,
  PlacementReadiness,
  ReconcileReport,
} from "../../lib/reconcile/reconciler.ts";
import type { Placement } from "../../lib/topology/topology.ts";

/** A fake reconciler. */
export class FakeReconciler implements ClusterReconciler {
  /** Desired workload states received, in order. */
  readonly workloads: WorkloadDesired[] = [];
  /** Desired node states received, in order. */
  readonly nodes: NodeDesired[] = [];
  /** What `observed()` returns. */
  observedState: ObservedFailoverState = {
    workloads: new Map(),
    fencedNodes: new Map(),
    unfencedAt: new Map(),
  };
  /** What `placementReady()` answers per deployment name (default: ready). */
  readonly readiness = new Map<string, PlacementReadiness>();
  /** Placements asked about, in order. */
  readonly readinessAsked: Placement[] = [];
  /** Resolve to let `start()` finish (already resolved unless `hold` was passed). */
  readonly release: () => void;
  started = false;
  closed = false;
  readonly onReport: (r: ReconcileReport) => void;
  readonly #gate: Promise<void>;

  constructor(options: { hold?: boolean; onReport?: (r: ReconcileReport) => void } = {}) {
    let release!: () => void;
    this.#gate = options.hold ? new Promise<void>((r) => (release = r)) : Promise.resolve();
    this.release = release ?? (() => {});
    this.onReport = options.onReport ?? (() => {});
  }

  async start(_signal: AbortSignal): Promise<void> {
    await this.#gate;
    this.started = true;
  }

  observed(): ObservedFailoverState {
    return this.observedState;
  }

  placementReady(placement: Placement): PlacementReadiness {
    this.readinessAsked.push(placement);
    return this.readiness.get(placement.deployment) ?? { ready: true };
  }

  setWorkload(desired: WorkloadDesired): void {
    this.workloads.push(desired);
  }

  setNode(desired: NodeDesired): void {
    this.nodes.push(desired);
  }

  whenIdle(): Promise<void> {
    return Promise.resolve();
  }

  get queueDepth(): number {
    return 0;
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
