/**
 * The dry-run reconciler (`run --dry-run`, the demo): interprets the same steps as the Kubernetes
 * reconciler (`steps.ts`) against an in-memory model cluster, calls no API, and reports every
 * step `planned`.
 *
 * The model holds every node of the topology and both Deployments of every workload, each with
 * one pod on its placement's node. Planned steps are applied to the model, so setting the same
 * desired state again plans nothing, and the order matches a real run: pod deletions of a node
 * fault are planned only once the node's fence is (planned and) applied. Un-fencing is applied the
 * same way (our taint, our cordon and our annotations removed).
 *
 * {@linkcode DryRunReconciler.placementReady} reads the model: every placement is ready (its pod
 * Running and Ready) until a planned step changed that (its node fenced, its pod deleted).
 *
 * @module
 */
import { type Clock, systemClock } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import { otherSide } from "../topology/topology.ts";
import type { NodeTarget, Placement, Topology, Workload } from "../topology/topology.ts";
import { ANNOTATIONS } from "./annotations.ts";
import {
  type ChangeListener,
  type ClusterView,
  matchesSelector,
  type ObservedDeployment,
  type ObservedNode,
  type ObservedPod,
} from "./cluster_view.ts";
import {
  type ClusterReconciler,
  type ObservedFailoverState,
  observedFailoverState,
  type PlacementReadiness,
  placementReadiness,
  type ReconcileKey,
  type ReconcileReport,
  type StepResult,
} from "./cluster_reconciler.ts";
import {
  describeStep,
  persistEpochFields,
  type PlanContext,
  planNode,
  planWorkload,
  type Step,
  type StepDescription,
  stepEvent,
} from "./steps.ts";

/** One planned step, in planning order. */
export interface PlannedStep extends StepDescription {
  key: ReconcileKey;
  step: Step;
  /** Clock reading when it was planned, ms. */
  atMs: number;
}

/** Options of {@linkcode DryRunReconciler}. */
export interface DryRunOptions {
  topology: Topology;
  /** Key of our taint (default `sdv-failover.io/unreachable`). */
  taintKey?: string;
  /** Our taint's value and `cordoned-by` (default `supervisor`). */
  supervisorId?: string;
  /** Prints each planned step (`planned-action`). */
  log?: Logger;
  clock?: Clock;
  onReport?: (report: ReconcileReport) => void;
}

interface ModelPod extends ObservedPod {
  namespace: string;
  labels: Record<string, string>;
  nodeName: string;
}

/** The in-memory cluster a dry run plans against. */
class ModelCluster implements ClusterView {
  readonly synced = true;
  readonly nodes = new Map<string, ObservedNode & { annotations: Record<string, string> }>();
  readonly deployments = new Map<string, ObservedDeployment>();
  readonly podList: ModelPod[] = [];
  #rv = 0;

  constructor(topology: Topology) {
    for (const n of topology.nodes) {
      this.nodes.set(n.name, {
        uid: `dry-run-${n.name}`,
        unschedulable: false,
        taints: [],
        annotations: {},
        resourceVersion: this.rv(),
      });
    }
    for (const w of topology.workloads) {
      for (const p of [w.primary, w.standby]) {
        const selector = { app: p.deployment };
        this.deployments.set(`${w.namespace}/${p.deployment}`, {
          uid: `dry-run-${w.namespace}-${p.deployment}`,
          resourceVersion: this.rv(),
          annotations: {},
          labels: { ...selector },
          selector,
        });
        this.podList.push({
          namespace: w.namespace,
          name: `${p.deployment}-dry-run`,
          uid: `dry-run-${w.namespace}-${p.deployment}-pod`,
          deleting: false,
          labels: { ...selector },
          nodeName: p.node.name,
          phase: "Running",
          ready: true,
        });
      }
    }
  }

  rv(): string {
    return String(++this.#rv);
  }

  deployment(namespace: string, name: string): ObservedDeployment | undefined {
    return this.deployments.get(`${namespace}/${name}`);
  }

  pods(namespace: string, selector: Record<string, string>, nodeName: string): ObservedPod[] {
    return this.podList
      .filter((p) =>
        p.namespace === namespace && p.nodeName === nodeName && matchesSelector(p.labels, selector)
      )
      .map((p) => ({
        name: p.name,
        uid: p.uid,
        deleting: p.deleting,
        nodeName: p.nodeName,
        phase: p.phase,
        ready: p.ready,
      }));
  }

  node(name: string): ObservedNode | undefined {
    return this.nodes.get(name);
  }

  onChange(_listener: ChangeListener): () => void {
    return () => {};
  }

  /** Applies a step as the API would. */
  apply(step: Step, ctx: PlanContext): void {
    switch (step.kind) {
      case "persistEpoch": {
        const key = `${step.workload.namespace}/${step.placement.deployment}`;
        const d = this.deployments.get(key);
        if (!d) return;
        const f = persistEpochFields(step);
        this.deployments.set(key, {
          ...d,
          resourceVersion: this.rv(),
          annotations: { ...d.annotations, ...f.annotations },
          labels: { ...d.labels, ...f.labels },
        });
        return;
      }
      case "fenceNode": {
        const n = this.nodes.get(step.node.name);
        if (!n) return;
        if (step.cordon) {
          n.unschedulable = true;
          n.annotations[ANNOTATIONS.cordonedBy] = ctx.supervisorId;
        }
        if (step.taint) {
          n.taints = [...n.taints, {
            key: ctx.taintKey,
            value: ctx.supervisorId,
            effect: "NoExecute",
          }];
        }
        n.annotations[ANNOTATIONS.fenceReason] = step.reason;
        n.resourceVersion = this.rv();
        return;
      }
      case "unfenceNode": {
        const n = this.nodes.get(step.node.name);
        if (!n) return;
        if (step.uncordon) n.unschedulable = false;
        if (step.untaint) {
          n.taints = n.taints.filter((t) => !(t.key === ctx.taintKey && t.effect === "NoExecute"));
        }
        for (const k of step.annotations) delete n.annotations[k];
        n.resourceVersion = this.rv();
        return;
      }
      case "deletePod": {
        const i = this.podList.findIndex((p) => p.uid === step.uid);
        if (i >= 0) this.podList.splice(i, 1);
        return;
      }
      case "awaitFence":
        return;
    }
  }
}

/** A {@linkcode ClusterReconciler} that plans against a model and touches nothing. */
export class DryRunReconciler implements ClusterReconciler {
  /** Every planned step, in order (for tests and the demo timeline). */
  readonly planned: PlannedStep[] = [];
  /** Every pass's report, in order. */
  readonly reports: ReconcileReport[] = [];
  readonly #topology: Topology;
  readonly #model: ModelCluster;
  readonly #ctx: PlanContext;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #onReport?: (report: ReconcileReport) => void;
  readonly #desired = new Map<Workload | NodeTarget, WorkloadDesired | NodeDesired>();
  readonly #blocked = new Set<Workload>();
  #closed = false;

  /** Creates a dry run over a fresh model of `options.topology`. */
  constructor(options: DryRunOptions) {
    this.#topology = options.topology;
    this.#model = new ModelCluster(options.topology);
    this.#ctx = {
      taintKey: options.taintKey ?? "sdv-failover.io/unreachable",
      supervisorId: options.supervisorId ?? "supervisor",
    };
    this.#log = options.log ?? silentLogger;
    this.#clock = options.clock ?? systemClock;
    this.#onReport = options.onReport;
  }

  /** Nothing to watch: resolves at once (rejects when `signal` is already aborted). */
  start(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return Promise.resolve();
  }

  /** The model's failover state: every workload starts at epoch 0, no node fenced. */
  observed(): ObservedFailoverState {
    return observedFailoverState(this.#topology, this.#model, this.#ctx.taintKey);
  }

  /** The placement's readiness in the model: ready unless a planned step changed that. */
  placementReady(placement: Placement): PlacementReadiness {
    return placementReadiness(this.#model, placement, this.#ctx.taintKey);
  }

  /** Plans (and applies to the model) what a real run would write for this workload. */
  setWorkload(desired: WorkloadDesired): void {
    if (this.#closed) return;
    this.#desired.set(desired.workload, desired);
    this.#pass({ kind: "workload", workload: desired.workload }, desired);
  }

  /** Plans the node's fence (or un-fence); then the pod deletions that waited for a fence. */
  setNode(desired: NodeDesired): void {
    if (this.#closed) return;
    this.#desired.set(desired.node, desired);
    this.#pass({ kind: "node", node: desired.node }, desired);
    for (const w of [...this.#blocked]) {
      const d = this.#desired.get(w) as WorkloadDesired;
      if (d.workload[otherSide(d.active)].node === desired.node) {
        this.#pass({ kind: "workload", workload: w }, d);
      }
    }
  }

  /** Passes are synchronous: always idle. */
  whenIdle(): Promise<void> {
    return Promise.resolve();
  }

  /** Workloads whose pod deletions wait for a node fence that was not set. */
  get queueDepth(): number {
    return this.#blocked.size;
  }

  /** Stops planning. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #pass(key: ReconcileKey, desired: WorkloadDesired | NodeDesired): void {
    const startedAtMs = this.#clock.nowMs();
    const steps = key.kind === "workload"
      ? planWorkload(desired as WorkloadDesired, this.#model, this.#ctx)
      : planNode(desired as NodeDesired, this.#model, this.#ctx);
    const results: StepResult[] = [];
    let blocked = false;
    for (const step of steps) {
      if (step.kind === "awaitFence") {
        // As in a real run: the deletes wait until the node's fence is applied.
        blocked = true;
        break;
      }
      const d = describeStep(step);
      this.planned.push({ key, step, atMs: startedAtMs, ...d });
      this.#log.info("planned-action", { key: keyLabel(key), ...d });
      results.push({ ...d, outcome: "planned", attempts: 0, doneAtMs: 0 });
      const ev = stepEvent(step);
      if (ev) {
        results.push({
          action: `event:${ev.reason}`,
          object: `event/${ev.namespace}/${ev.reason}`,
          outcome: "planned",
          attempts: 0,
          doneAtMs: 0,
          detail: ev.message,
        });
      }
      this.#model.apply(step, this.#ctx);
    }
    if (key.kind === "workload") {
      if (blocked) this.#blocked.add(key.workload);
      else this.#blocked.delete(key.workload);
    }
    const report: ReconcileReport = {
      key,
      desired,
      startedAtMs,
      finishedAtMs: this.#clock.nowMs(),
      results,
      converged: !blocked,
      attempt: 1,
    };
    this.reports.push(report);
    this.#onReport?.(report);
  }
}

function keyLabel(key: ReconcileKey): string {
  return key.kind === "workload" ? `workload/${key.workload.name}` : `node/${key.node.name}`;
}
