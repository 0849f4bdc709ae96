/**
 * The Kubernetes reconciler: observe → compare → converge, per key, until the cluster matches the
 * desired failover state, and keep it there (anchor: kubernetes sample-controller /
 * controller-runtime).
 *
 * - **Observe** from a watch-backed cache ({@linkcode ClusterView}, `lib/kube/cache.ts`) with
 *   acknowledged writes overlaid ({@linkcode AckOverlay}): a pass issues writes only, no reads.
 * - **Compare** with the pure planners of `steps.ts` (the same ones the dry run interprets).
 * - **Converge** through the {@linkcode KubeApi}: independent steps concurrently; pod deletions of
 *   a node fault only after the node's fence is acknowledged (this reconciler's `fenceNode` ack,
 *   or the cache shows it fenced). Each write gets at most `cluster.retries` quick retries
 *   (`withRetry`); a core/v1 Event (best effort) per step that changed something.
 *
 * Work queue: one state per key, keyed by the topology object (Workload / NodeTarget). A key is
 * never processed twice concurrently: a set or a cache change during a pass marks it dirty, and
 * one more pass runs with the latest desired state. Different keys run concurrently. A pass that
 * did not converge is requeued per key with exponential backoff (from `cluster.retryBackoffMs`,
 * doubling, capped at `maxRequeueDelayMs`), reset on convergence or a new desired state; terminal
 * errors (4xx other than 409/429) are reported `terminal: true` and requeued at the cap (an
 * operator may fix RBAC). A cache change to a managed object (our taint removed, a pod back on a
 * failed node, a Deployment's annotations edited) re-reconciles the key.
 *
 * A node's desired state may go from fenced to unfenced and back (`unfenceNode` removes only what
 * we added); an operator asks for that through the `sdv-failover.io/unfence-requested` Node
 * annotation, reported once per new value to {@linkcode ReconcilerOptions.onUnfenceRequest}.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import type { ClusterConfig } from "../config/schema.ts";
import type { KubeApi } from "../kube/kube_api.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import { otherSide } from "../topology/topology.ts";
import type { NodeTarget, Placement, Topology, Workload } from "../topology/topology.ts";
import { ANNOTATIONS } from "./annotations.ts";
import { AckOverlay } from "./ack_overlay.ts";
import type { ChangeKind, ClusterView, ObservedNode } from "./cluster_view.ts";
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
import { httpStatusOf, RetryError, withRetry } from "./retry.ts";
import { observeNode } from "../kube/cache.ts";
import {
  describeStep,
  fenceNodePatch,
  type FenceNodeStep,
  hasOurTaint,
  higherObservedEpochs,
  observedFenced,
  persistEpochFields,
  persistEpochPatch,
  type PersistEpochStep,
  type PlanContext,
  planNode,
  planWorkload,
  type Step,
  stepEvent,
  unfenceNeeded,
  unfenceNodePatch,
  type UnfenceNodeStep,
} from "./steps.ts";

export type {
  ClusterReconciler,
  ObservedFailoverState,
  PlacementReadiness,
  ReconcileKey,
  ReconcileReport,
  StepResult,
} from "./cluster_reconciler.ts";

/** A {@linkcode ClusterView} the reconciler owns: started by `start`, closed by `close`. */
export type StartableView = ClusterView & {
  /** Resolves once synced; rejects on failure or abort. */
  start(signal: AbortSignal): Promise<void>;
  /** Stops the watches. */
  close(): void;
};

/** Options of {@linkcode KubeReconciler}. */
export interface ReconcilerOptions {
  topology: Topology;
  /** `retries`, `retryBackoffMs`, `taintKey`, `eventSource` are used. */
  cluster: ClusterConfig;
  /** Our taint's value, the `cordoned-by` annotation, the Events' reporting instance. */
  supervisorId: string;
  /** Write API (not closed by {@linkcode KubeReconciler.close}: the caller owns it). */
  api: KubeApi;
  /** The watch-backed cache (started and closed by the reconciler). */
  view: StartableView;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: silent. */
  log?: Logger;
  /** Called with every pass's report (change-triggered passes that found nothing to do are not reported). */
  onReport?: (report: ReconcileReport) => void;
  /** Cap of the per-key requeue backoff and the requeue delay of terminal errors, ms (default 1000). */
  maxRequeueDelayMs?: number;
  /** Wall-clock source of Event timestamps (default `Date.now`). */
  wallNowMs?: () => number;
  /**
   * Called once per new value of a managed Node's `sdv-failover.io/unfence-requested` annotation
   * (`requestedAt`: the value, the request's ISO 8601 wall time), from the cache's node change
   * events. Requests already present at start are reported after {@linkcode KubeReconciler.start}
   * resolved (on a 0 ms timer of the clock), so the caller adopts the persisted state first. The
   * caller decides: to honour a request, set the node's desired state to unfenced; the
   * `unfenceNode` step then also removes the annotation.
   */
  onUnfenceRequest?: (node: NodeTarget, requestedAt: string) => void;
}

type Target = Workload | NodeTarget;
/**
 * Why a pass runs. `change` (a cache event) does not cut a pending backoff short (the requeue
 * will see the latest cache); `fence` (the failed node's fence just acknowledged or observed)
 * does, so pod deletions follow the fence at once.
 */
type Trigger = "set" | "change" | "fence" | "requeue" | "sync" | "dirty";

interface KeyState {
  key: ReconcileKey;
  desired: WorkloadDesired | NodeDesired;
  running: Promise<void> | undefined;
  dirty: boolean;
  /** Why the pending dirty pass runs (`set` wins over changes). */
  dirtyTrigger: Trigger | undefined;
  attempt: number;
  delayMs: number;
  timer: TimerHandle | undefined;
  pendingSync: boolean;
  converged: boolean;
  /** Settles when the running pass's writes are acknowledged (or failed), before its Events. */
  writesDone: Promise<void> | undefined;
  /** The node whose fence the current/last pass found missing before deleting pods. */
  blockedOnFence: NodeTarget | undefined;
}

/** The Kubernetes {@linkcode ClusterReconciler}. */
export class KubeReconciler implements ClusterReconciler {
  readonly #topology: Topology;
  readonly #cluster: ClusterConfig;
  readonly #supervisorId: string;
  readonly #api: KubeApi;
  readonly #view: StartableView;
  readonly #overlay: AckOverlay;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onReport?: (report: ReconcileReport) => void;
  readonly #onUnfenceRequest?: (node: NodeTarget, requestedAt: string) => void;
  /** Last unfence-request value reported per node (absent: none seen). */
  readonly #unfenceSeen = new Map<NodeTarget, string>();
  /** True once requests present at start were scanned (changes are reported from then on). */
  #unfenceScanned = false;
  readonly #capMs: number;
  readonly #wallNowMs: () => number;
  readonly #states = new Map<Target, KeyState>();
  readonly #abort = new AbortController();
  readonly #idleWaiters: (() => void)[] = [];
  readonly #higherEpochs = new Map<Workload, number>();
  readonly #deploymentOwner = new Map<string, Workload>();
  readonly #unsubscribe: () => void;
  #closed = false;

  /** Creates the reconciler; nothing runs until {@linkcode start} or a set. */
  constructor(options: ReconcilerOptions) {
    this.#topology = options.topology;
    this.#cluster = options.cluster;
    this.#supervisorId = options.supervisorId;
    this.#api = options.api;
    this.#view = options.view;
    this.#overlay = new AckOverlay(options.view);
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
    this.#onReport = options.onReport;
    this.#onUnfenceRequest = options.onUnfenceRequest;
    this.#capMs = options.maxRequeueDelayMs ?? 1000;
    this.#wallNowMs = options.wallNowMs ?? Date.now;
    for (const w of this.#topology.workloads) {
      for (const p of [w.primary, w.standby]) {
        this.#deploymentOwner.set(`${w.namespace}/${p.deployment}`, w);
      }
    }
    this.#unsubscribe = this.#view.onChange((kind, namespace, name) =>
      this.#onChange(kind, namespace, name)
    );
  }

  /**
   * Starts the watches; resolves once synced, then runs every key set before. Retries a failed
   * start with backoff (from `cluster.retryBackoffMs`, doubling, capped at `maxRequeueDelayMs`).
   * @throws the abort reason when `signal` aborts or the reconciler is closed first.
   */
  async start(signal: AbortSignal): Promise<void> {
    const both = AbortSignal.any([signal, this.#abort.signal]);
    let delayMs = this.#cluster.retryBackoffMs;
    for (;;) {
      both.throwIfAborted();
      try {
        await this.#view.start(both);
        break;
      } catch (error) {
        both.throwIfAborted();
        this.#log.warn("cache-start-failed", { error: errorText(error), retryInMs: delayMs });
        await abortableSleep(this.#clock, delayMs, both);
        delayMs = Math.min(this.#capMs, delayMs * 2);
      }
    }
    for (const state of this.#states.values()) {
      if (state.pendingSync) {
        state.pendingSync = false;
        this.#trigger(state, "sync");
      }
    }
    if (this.#onUnfenceRequest && !this.#unfenceScanned) {
      // After the caller's continuation (it adopts the persisted state first).
      this.#clock.setTimer(() => {
        if (this.#closed || this.#unfenceScanned) return;
        this.#unfenceScanned = true;
        for (const node of this.#topology.nodes) this.#checkUnfenceRequest(node);
      }, 0);
    }
  }

  /** Persisted failover state from the cache (with acknowledged writes overlaid). */
  observed(): ObservedFailoverState {
    return observedFailoverState(this.#topology, this.#overlay, this.#cluster.taintKey);
  }

  /**
   * Whether the cluster shows `placement` able to take over (see
   * {@linkcode ClusterReconciler.placementReady}); also not ready while this reconciler is
   * fencing its node (desired fenced, not yet observed).
   */
  placementReady(placement: Placement): PlacementReadiness {
    const ns = this.#states.get(placement.node);
    if (ns && (ns.desired as NodeDesired).fenced && this.#view.synced) {
      const observed = this.#overlay.node(placement.node.name);
      if (observed && planNode(ns.desired as NodeDesired, this.#overlay, this.#ctx()).length > 0) {
        return { ready: false, why: `node ${placement.node.name} is being fenced` };
      }
    }
    return placementReadiness(this.#overlay, placement, this.#cluster.taintKey);
  }

  /** Workloads whose persisted epoch is higher than their desired one (last seen in a pass). */
  higherEpochs(): ReadonlyMap<Workload, number> {
    return this.#higherEpochs;
  }

  /** Sets a workload's desired state and starts a pass at once (or marks a running one dirty). */
  setWorkload(desired: WorkloadDesired): void {
    this.#set(desired.workload, { kind: "workload", workload: desired.workload }, desired);
  }

  /** Sets a node's desired state and starts a pass at once (or marks a running one dirty). */
  setNode(desired: NodeDesired): void {
    this.#set(desired.node, { kind: "node", node: desired.node }, desired);
  }

  /** Resolves when no pass is in flight or about to run (backoff requeues do not count). */
  whenIdle(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Keys in flight, dirty, waiting for a requeue or for the initial sync. */
  get queueDepth(): number {
    let n = 0;
    for (const s of this.#states.values()) {
      if (s.running || s.dirty || s.timer !== undefined || s.pendingSync) n++;
    }
    return n;
  }

  /** Aborts in-flight requests, cancels requeues, waits for running passes, stops the watches. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort(new DOMException("reconciler closed", "AbortError"));
    this.#unsubscribe();
    for (const s of this.#states.values()) {
      if (s.timer !== undefined) this.#clock.clearTimer(s.timer);
      s.timer = undefined;
      s.dirty = false;
      s.pendingSync = false;
    }
    await Promise.all([...this.#states.values()].map((s) => s.running));
    this.#view.close();
    this.#notifyIdle();
  }

  #set(target: Target, key: ReconcileKey, desired: WorkloadDesired | NodeDesired): void {
    if (this.#closed) return;
    let state = this.#states.get(target);
    if (!state) {
      state = {
        key,
        desired,
        running: undefined,
        dirty: false,
        dirtyTrigger: undefined,
        attempt: 0,
        delayMs: this.#cluster.retryBackoffMs,
        timer: undefined,
        pendingSync: false,
        converged: false,
        blockedOnFence: undefined,
        writesDone: undefined,
      };
      this.#states.set(target, state);
    }
    state.desired = desired;
    state.attempt = 0;
    state.delayMs = this.#cluster.retryBackoffMs;
    state.converged = false;
    this.#trigger(state, "set");
  }

  #trigger(state: KeyState, trigger: Trigger): void {
    if (this.#closed) return;
    if (!this.#view.synced) {
      state.pendingSync = true;
      return;
    }
    if (state.running) {
      state.dirty = true;
      state.dirtyTrigger = state.dirtyTrigger === "set" ? "set" : trigger;
      return;
    }
    if (trigger === "change" && state.timer !== undefined) return; // the requeue will see it
    if (state.timer !== undefined) {
      this.#clock.clearTimer(state.timer);
      state.timer = undefined;
    }
    const running = this.#pass(state, trigger).catch((error) =>
      this.#log.error("reconcile-pass-crashed", { error: errorText(error) })
    ).finally(() => {
      state.running = undefined;
      if (state.dirty && !this.#closed) {
        const next = state.dirtyTrigger ?? "dirty";
        state.dirty = false;
        state.dirtyTrigger = undefined;
        this.#trigger(state, next);
      }
      this.#notifyIdle();
    });
    state.running = running;
  }

  #onChange(kind: ChangeKind, namespace: string | undefined, name: string): void {
    if (this.#closed) return;
    if (kind === "node") {
      const node = this.#topology.node(name);
      if (!node) return;
      const ns = this.#states.get(node);
      if (ns) this.#trigger(ns, "change");
      this.#fenceChanged(node);
      if (this.#unfenceScanned) this.#checkUnfenceRequest(node);
    } else if (kind === "deployment") {
      const w = this.#deploymentOwner.get(`${namespace}/${name}`);
      const ws = w && this.#states.get(w);
      if (ws) this.#trigger(ws, "change");
    } else {
      for (const w of this.#topology.workloads) {
        if (w.namespace !== namespace) continue;
        const ws = this.#states.get(w);
        if (!ws) continue;
        const d = ws.desired as WorkloadDesired;
        if (!d.removeFailed || d.epoch <= 0) continue;
        const failed = w[otherSide(d.active)];
        const dep = this.#overlay.deployment(w.namespace, failed.deployment);
        if (!dep) continue;
        const pods = this.#overlay.pods(w.namespace, { ...dep.selector }, failed.node.name);
        if (pods.some((p) => p.name === name && !p.deleting)) this.#trigger(ws, "change");
      }
    }
  }

  /** Reports a new value of `node`'s unfence-request annotation (once per value). */
  #checkUnfenceRequest(node: NodeTarget): void {
    const value = this.#overlay.node(node.name)?.annotations[ANNOTATIONS.unfenceRequested];
    if (value === undefined) {
      this.#unfenceSeen.delete(node); // handled (or withdrawn): the same value may come again
      return;
    }
    if (this.#unfenceSeen.get(node) === value) return;
    this.#unfenceSeen.set(node, value);
    this.#log.info("unfence-requested", { node: node.name, requestedAt: value });
    try {
      this.#onUnfenceRequest?.(node, value);
    } catch (error) {
      this.#log.error("unfence-listener-failed", { error: errorText(error) });
    }
  }

  /** Re-reconciles, at once, the workloads whose pod deletions wait for `node`'s fence. */
  #fenceChanged(node: NodeTarget): void {
    for (const p of node.placements) {
      const ws = this.#states.get(p.workload);
      if (ws?.blockedOnFence === node) this.#trigger(ws, "fence");
    }
  }

  #ctx(): PlanContext {
    return {
      taintKey: this.#cluster.taintKey,
      supervisorId: this.#supervisorId,
      nodeFenced: (node) => this.#fenced(node),
    };
  }

  /** Fenced for pod deletion: our desired fence is fully observed (or, with none, the cache says so). */
  #fenced(node: NodeTarget): boolean {
    const ns = this.#states.get(node);
    if (ns && ns.key.kind === "node" && (ns.desired as NodeDesired).fenced) {
      const observed = this.#overlay.node(node.name);
      return !observed || planNode(ns.desired as NodeDesired, this.#overlay, this.#ctx())
            .length === 0;
    }
    return observedFenced(this.#overlay, node, this.#cluster.taintKey);
  }

  async #pass(state: KeyState, trigger: Trigger): Promise<void> {
    const signal = this.#abort.signal;
    const desired = state.desired;
    const startedAtMs = this.#clock.nowMs();
    const ctx = this.#ctx();
    let steps: Step[];
    let higherEpoch: number | undefined;
    if (state.key.kind === "workload") {
      const d = desired as WorkloadDesired;
      const higher = higherObservedEpochs(d, this.#overlay);
      if (higher.length > 0) {
        higherEpoch = Math.max(...higher.map((h) => h.epoch));
        this.#higherEpochs.set(d.workload, higherEpoch);
      } else this.#higherEpochs.delete(d.workload);
      steps = planWorkload(d, this.#overlay, ctx);
    } else {
      steps = planNode(desired as NodeDesired, this.#overlay, ctx);
    }
    if (
      steps.length === 0 && trigger === "change" && state.converged && higherEpoch === undefined
    ) {
      return; // a change that needs nothing: no report
    }
    state.attempt++;
    state.blockedOnFence = undefined;
    let writesDone!: () => void;
    state.writesDone = new Promise((resolve) => writesDone = resolve);
    const results: StepResult[] = [];
    const events: Promise<void>[] = [];
    let failed = false;
    let terminal = false;
    const elapsed = () => this.#clock.nowMs() - startedAtMs;

    const run = async (step: Step): Promise<void> => {
      const { action, object } = describeStep(step);
      try {
        const r = await withRetry(() => this.#write(step, signal), {
          retries: this.#cluster.retries,
          backoffMs: this.#cluster.retryBackoffMs,
          signal,
          clock: this.#clock,
        });
        results.push({
          action,
          object,
          outcome: r.value.outcome,
          attempts: r.attempts,
          doneAtMs: elapsed(),
          detail: r.value.detail,
        });
        if (r.value.outcome === "done") events.push(this.#event(step, signal, elapsed, results));
      } catch (error) {
        failed = true;
        const isTerminal = error instanceof RetryError && error.terminal;
        if (isTerminal) terminal = true;
        results.push({
          action,
          object,
          outcome: "failed",
          attempts: error instanceof RetryError ? error.attempts : 1,
          doneAtMs: elapsed(),
          detail: errorText(error),
          ...(isTerminal ? { terminal: true } : {}),
        });
      }
    };

    const barrier = steps.findIndex((s) => s.kind === "awaitFence");
    const before = barrier < 0 ? steps : steps.slice(0, barrier);
    const after = barrier < 0 ? [] : steps.slice(barrier + 1);
    const gated = (async () => {
      if (barrier < 0) return;
      const step = steps[barrier] as Extract<Step, { kind: "awaitFence" }>;
      // Wait for the node's fence write in flight (not for its Event), then look.
      await this.#states.get(step.node)?.writesDone;
      const { action, object } = describeStep(step);
      if (signal.aborted || !this.#fenced(step.node)) {
        failed = true;
        state.blockedOnFence = step.node;
        results.push({
          action,
          object,
          outcome: "failed",
          attempts: 0,
          doneAtMs: elapsed(),
          detail: `${step.node.name} not fenced yet: ${after.length} pod deletion(s) deferred`,
        });
        return;
      }
      results.push({ action, object, outcome: "done", attempts: 0, doneAtMs: elapsed() });
      // The fence may have been ours or already there; re-plan the deletes against the cache.
      await Promise.all(after.map(run));
    })();
    try {
      await Promise.all([...before.map(run), gated]);
    } finally {
      writesDone();
    }
    if (state.key.kind === "node" && results.some((r) => r.outcome === "done")) {
      // A fence just acknowledged: workloads waiting for it go now (fence before delete).
      this.#fenceChanged(state.key.node);
    }
    await Promise.all(events);

    const converged = !failed;
    const finishedAtMs = this.#clock.nowMs();
    let requeueAfterMs: number | undefined;
    if (converged) {
      state.converged = true;
    } else {
      state.converged = false;
      requeueAfterMs = terminal ? this.#capMs : Math.min(this.#capMs, state.delayMs);
      state.delayMs = Math.min(this.#capMs, state.delayMs * 2);
    }
    const report: ReconcileReport = {
      key: state.key,
      desired,
      startedAtMs,
      finishedAtMs,
      results,
      converged,
      attempt: state.attempt,
      ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}),
      ...(higherEpoch !== undefined ? { higherEpoch } : {}),
    };
    if (converged) {
      state.attempt = 0;
      state.delayMs = this.#cluster.retryBackoffMs;
    }
    this.#logReport(report);
    try {
      this.#onReport?.(report);
    } catch (error) {
      this.#log.error("report-listener-failed", { error: errorText(error) });
    }
    if (requeueAfterMs !== undefined && !this.#closed) {
      state.timer = this.#clock.setTimer(() => {
        state.timer = undefined;
        this.#trigger(state, "requeue");
      }, requeueAfterMs);
    }
  }

  /** One attempt of a step's write. Reads the overlay at attempt time (a retry sees fresher state). */
  async #write(
    step: Step,
    signal: AbortSignal,
  ): Promise<{ outcome: "done" | "unchanged"; detail?: string }> {
    switch (step.kind) {
      case "persistEpoch":
        return await this.#persist(step, signal);
      case "fenceNode":
        return await this.#fenceNode(step, signal);
      case "unfenceNode":
        return await this.#unfenceNode(step, signal);
      case "deletePod": {
        const ns = step.workload.namespace;
        if (this.#overlay.podDeleted(step.uid)) return { outcome: "unchanged", detail: "deleted" };
        try {
          await this.#api.deletePod(ns, step.pod, 0, signal, { uid: step.uid });
        } catch (error) {
          const status = httpStatusOf(error);
          // 404: gone; 409 on a uid precondition: the pod we meant is gone (a new one has its name).
          if (status !== 404 && status !== 409) throw error;
          this.#overlay.recordPodDeleted(step.uid);
          return { outcome: "unchanged", detail: `already gone (HTTP ${status})` };
        }
        this.#overlay.recordPodDeleted(step.uid);
        return { outcome: "done", detail: `grace 0 uid=${step.uid}` };
      }
      case "awaitFence":
        return { outcome: "unchanged" };
    }
  }

  async #persist(step: PersistEpochStep, signal: AbortSignal) {
    const ns = step.workload.namespace;
    const name = step.placement.deployment;
    const before = this.#overlay.deployment(ns, name);
    const res = await this.#api.patchDeployment(ns, name, persistEpochPatch(step), "merge", signal);
    if (before) {
      const f = persistEpochFields(step);
      this.#overlay.recordDeployment(ns, name, {
        ...before,
        resourceVersion: res?.metadata?.resourceVersion ?? before.resourceVersion,
        annotations: { ...before.annotations, ...f.annotations },
        labels: { ...before.labels, ...f.labels },
      });
    }
    return { outcome: "done" as const, detail: describeStep(step).detail };
  }

  /**
   * Patches a Node. On 409 (our resourceVersion precondition lost a race) the Node is read fresh
   * and laid over the cache before the error goes to the retry: the next attempt builds its patch
   * from that, not from a cache that may lag behind a Node whose status is updated often (found by
   * the fault campaign: an un-fence failed with 409 for 90 s while the cache lagged).
   */
  async #patchNode(name: string, body: object, signal: AbortSignal) {
    try {
      return await this.#api.patchNode(name, body, "strategic", signal);
    } catch (error) {
      if (httpStatusOf(error) === 409) {
        const fresh = await this.#api.readNode(name, signal).catch(() => undefined);
        if (fresh) this.#overlay.recordNode(name, observeNode(fresh));
      }
      throw error;
    }
  }

  async #fenceNode(step: FenceNodeStep, signal: AbortSignal) {
    const observed = this.#overlay.node(step.node.name);
    // Re-check what is missing now (a retry after a 409 must not clobber a newer state).
    const now: FenceNodeStep = observed
      ? {
        ...step,
        cordon: step.cordon && !observed.unschedulable,
        taint: step.taint && !hasOurTaint(observed, this.#cluster.taintKey),
      }
      : step;
    if (!now.cordon && !now.taint) {
      return { outcome: "unchanged" as const, detail: "already fenced" };
    }
    const body = fenceNodePatch(now, observed, this.#ctx());
    const res = await this.#patchNode(step.node.name, body, signal);
    if (observed) {
      const spec = body.spec as { unschedulable?: boolean; taints?: ObservedNode["taints"] };
      const meta = body.metadata as { annotations: Record<string, string> };
      this.#overlay.recordNode(step.node.name, {
        ...observed,
        resourceVersion: res?.metadata?.resourceVersion ?? observed.resourceVersion,
        unschedulable: spec.unschedulable ?? observed.unschedulable,
        taints: spec.taints ?? observed.taints,
        annotations: { ...observed.annotations, ...meta.annotations },
      });
    }
    return { outcome: "done" as const, detail: describeStep(now).detail };
  }

  async #unfenceNode(step: UnfenceNodeStep, signal: AbortSignal) {
    const observed = this.#overlay.node(step.node.name);
    if (!observed) return { outcome: "unchanged" as const, detail: "node not found" };
    // Re-check what is left now (a retry after a 409 must not clobber a newer state).
    const need = unfenceNeeded(observed, this.#cluster.taintKey);
    if (!need) return { outcome: "unchanged" as const, detail: "already unfenced" };
    const now: UnfenceNodeStep = { ...step, ...need };
    const unfencedAt = new Date(this.#wallNowMs()).toISOString();
    const body = unfenceNodePatch(now, observed, this.#ctx(), unfencedAt);
    const res = await this.#patchNode(step.node.name, body, signal);
    const spec = body.spec as { unschedulable?: boolean; taints?: ObservedNode["taints"] };
    const annotations = { ...observed.annotations };
    for (const k of now.annotations) delete annotations[k];
    const written = (body.metadata as { annotations: Record<string, string | null> }).annotations;
    if (written[ANNOTATIONS.unfencedAt]) annotations[ANNOTATIONS.unfencedAt] = unfencedAt;
    this.#overlay.recordNode(step.node.name, {
      ...observed,
      resourceVersion: res?.metadata?.resourceVersion ?? observed.resourceVersion,
      unschedulable: spec.unschedulable ?? observed.unschedulable,
      taints: spec.taints ?? observed.taints,
      annotations,
    });
    return { outcome: "done" as const, detail: describeStep(now).detail };
  }

  async #event(
    step: Step,
    signal: AbortSignal,
    elapsed: () => number,
    results: StepResult[],
  ): Promise<void> {
    const ev = stepEvent(step);
    if (!ev) return;
    const uid = ev.involved.kind === "Node"
      ? this.#overlay.node(ev.involved.name)?.uid
      : this.#overlay.deployment(ev.namespace, ev.involved.name)?.uid;
    const now = new Date(this.#wallNowMs()).toISOString();
    const body = {
      metadata: { generateName: `${ev.involved.name}.sdv-failover.`, namespace: ev.namespace },
      involvedObject: {
        kind: ev.involved.kind,
        apiVersion: ev.involved.kind === "Deployment" ? "apps/v1" : "v1",
        name: ev.involved.name,
        ...(ev.involved.namespace ? { namespace: ev.involved.namespace } : {}),
        ...(uid ? { uid } : {}),
      },
      reason: ev.reason,
      message: ev.message,
      type: ev.type,
      source: { component: this.#cluster.eventSource },
      reportingComponent: this.#cluster.eventSource,
      reportingInstance: this.#supervisorId,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const action = `event:${ev.reason}`;
    const object = `event/${ev.namespace}/${ev.reason}`;
    try {
      // Best effort: one attempt (bounded by the request timeout), never retried or requeued.
      await this.#api.createEvent(ev.namespace, body, signal);
      results.push({ action, object, outcome: "done", attempts: 1, doneAtMs: elapsed() });
    } catch (error) {
      this.#log.warn("event-failed", { reason: ev.reason, error: errorText(error) });
      results.push({
        action,
        object,
        outcome: "failed",
        attempts: 1,
        doneAtMs: elapsed(),
        detail: errorText(error),
      });
    }
  }

  #logReport(r: ReconcileReport): void {
    const key = r.key.kind === "workload"
      ? `workload/${r.key.workload.name}`
      : `node/${r.key.node.name}`;
    for (const s of r.results) {
      const fields = { key, ...s };
      if (s.outcome === "failed") this.#log.warn("reconcile-step-failed", fields);
      else this.#log.debug("reconcile-step", fields);
    }
    if (r.higherEpoch !== undefined) {
      this.#log.warn("epoch-behind-cluster", {
        key,
        desiredEpoch: (r.desired as WorkloadDesired).epoch,
        observedEpoch: r.higherEpoch,
      });
    }
    if (!r.converged) {
      this.#log.info("reconcile-requeue", {
        key,
        attempt: r.attempt,
        requeueAfterMs: r.requeueAfterMs,
      });
    }
  }

  #idle(): boolean {
    for (const s of this.#states.values()) if (s.running || s.dirty) return false;
    return true;
  }

  #notifyIdle(): void {
    if (!this.#idle()) return;
    for (const w of this.#idleWaiters.splice(0)) w();
  }
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

function abortableSleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimer(timer);
      reject(signal.reason);
    };
    const timer = clock.setTimer(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
