/**
 * A watch-backed cache of the objects the reconciler manages: Nodes (cluster-wide), and
 * Deployments and Pods in the managed namespaces, exposed as a {@linkcode ClusterView}.
 *
 * Built on client-node informers (list + watch), which the caller supplies through an
 * {@linkcode InformerFactory} (`kube_client.ts` makes them over the shared KubeConfig), so this
 * module imports only types from client-node and unit tests drive it with fake informers.
 *
 * Two gaps of client-node 1.x informers are closed here:
 * - an informer does not restart itself after an `error` event: the cache replaces it (re-list,
 *   then watch) with exponential backoff;
 * - a watch has no inactivity timeout: a watch silent for longer than `inactivityMs` is replaced
 *   the same way (a half-open connection otherwise goes unnoticed forever).
 * A replacement informer lists before it is swapped in; objects that differ from the old cache are
 * reported through `onChange`, so nothing changed during the gap is missed.
 *
 * Pods are indexed by namespace and node, converted once per watch event (frozen
 * {@linkcode ObservedPod}s, phase and Ready condition included): `pods()` looks at the pods of
 * one namespace on one node only and allocates just the result array, because the standby's
 * readiness is asked on the failover hot path.
 *
 * @module
 */
import type { V1Deployment, V1Node, V1Pod } from "@kubernetes/client-node";
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import {
  type ChangeKind,
  type ChangeListener,
  type ClusterView,
  matchesSelector,
  type ObservedDeployment,
  type ObservedNode,
  type ObservedPod,
} from "../reconcile/cluster_view.ts";

/** The object events an informer emits. */
export type InformerObjectVerb = "add" | "update" | "delete";

/** The subset of a client-node `Informer & ObjectCache` the cache uses. */
export interface InformerLike<T> {
  on(verb: InformerObjectVerb, cb: (obj: T) => void): void;
  on(verb: "error" | "connect", cb: (err?: unknown) => void): void;
  off(verb: InformerObjectVerb, cb: (obj: T) => void): void;
  off(verb: "error" | "connect", cb: (err?: unknown) => void): void;
  /** Lists, then watches. Resolves once the watch request is under way (errors: `error` event). */
  start(): Promise<void>;
  stop(): Promise<void>;
  get(name: string, namespace?: string): T | undefined;
  list(namespace?: string): T[];
}

/** Makes fresh (unstarted) informers. */
export interface InformerFactory {
  nodes(): InformerLike<V1Node>;
  deployments(namespace: string): InformerLike<V1Deployment>;
  pods(namespace: string): InformerLike<V1Pod>;
}

/** Options of {@linkcode WatchCache}. */
export interface WatchCacheOptions {
  /** Namespaces whose Deployments and Pods are watched (deduplicated). */
  namespaces: Iterable<string>;
  informers: InformerFactory;
  /** Replace a watch silent for longer than this, ms (default 300000; 0 disables). */
  inactivityMs?: number;
  /** First delay before replacing a failed informer, doubled per failure, ms (default 100). */
  restartBackoffMs?: number;
  /** Cap of that delay, ms (default 5000). */
  maxRestartBackoffMs?: number;
  /** An informer whose start has not completed by then counts as failed, ms (default 30000). */
  startTimeoutMs?: number;
  clock?: Clock;
  log?: Logger;
}

interface Meta {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
  };
}

/** A derived index of a slot's objects, kept in step with its live informer. */
interface SlotIndex<T> {
  /** Rebuilds from a freshly swapped-in informer's objects. */
  reset(objects: readonly T[]): void;
  /** Applies one event of the live informer. */
  apply(verb: InformerObjectVerb, obj: T): void;
}

interface PodEntry {
  labels: Readonly<Record<string, string>> | undefined;
  observed: ObservedPod;
}

/** The pods of one namespace by node name, converted once per event. */
class PodIndex implements SlotIndex<V1Pod> {
  /** nodeName → pod name → entry (unscheduled pods are kept under ""). */
  readonly byNode = new Map<string, Map<string, PodEntry>>();
  readonly #nodeOf = new Map<string, string>();

  reset(objects: readonly V1Pod[]): void {
    this.byNode.clear();
    this.#nodeOf.clear();
    for (const p of objects) this.apply("add", p);
  }

  apply(verb: InformerObjectVerb, p: V1Pod): void {
    const name = p.metadata?.name ?? "";
    const before = this.#nodeOf.get(name);
    if (before !== undefined) {
      const bucket = this.byNode.get(before)!;
      bucket.delete(name);
      if (bucket.size === 0) this.byNode.delete(before);
      this.#nodeOf.delete(name);
    }
    if (verb === "delete") return;
    const nodeName = p.spec?.nodeName ?? "";
    let bucket = this.byNode.get(nodeName);
    if (!bucket) this.byNode.set(nodeName, bucket = new Map());
    bucket.set(name, { labels: p.metadata?.labels, observed: observedPod(p) });
    this.#nodeOf.set(name, nodeName);
  }
}

/** A client-node Pod as an {@linkcode ObservedPod} (frozen: shared by every query). */
function observedPod(p: V1Pod): ObservedPod {
  return Object.freeze({
    name: p.metadata?.name ?? "",
    uid: p.metadata?.uid ?? "",
    deleting: p.metadata?.deletionTimestamp !== undefined &&
      p.metadata?.deletionTimestamp !== null,
    createdAt: isoOf(p.metadata?.creationTimestamp),
    nodeName: p.spec?.nodeName,
    resourceVersion: p.metadata?.resourceVersion,
    phase: p.status?.phase,
    ready: p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true,
  });
}

/** One watched collection: its current informer and restart state. */
class Slot<T extends Meta> {
  readonly kind: ChangeKind;
  readonly namespace: string | undefined;
  readonly make: () => InformerLike<T>;
  /** Kept in step with the live informer (optional). */
  readonly index: SlotIndex<T> | undefined;
  informer: InformerLike<T> | undefined;
  synced = false;
  lastEventMs = 0;
  backoffMs: number;
  restarting = false;
  timer: TimerHandle | undefined;
  firstSync: Promise<void>;
  resolveFirstSync!: () => void;
  detach: (() => void) | undefined;

  constructor(
    kind: ChangeKind,
    namespace: string | undefined,
    make: () => InformerLike<T>,
    backoffMs: number,
    index?: SlotIndex<T>,
  ) {
    this.kind = kind;
    this.namespace = namespace;
    this.make = make;
    this.index = index;
    this.backoffMs = backoffMs;
    this.firstSync = new Promise((resolve) => this.resolveFirstSync = resolve);
  }

  get label(): string {
    return this.namespace ? `${this.kind}s/${this.namespace}` : `${this.kind}s`;
  }
}

/** The informer-backed {@linkcode ClusterView}. */
export class WatchCache implements ClusterView {
  readonly #nodes: Slot<V1Node>;
  readonly #deployments = new Map<string, Slot<V1Deployment>>();
  readonly #pods = new Map<string, Slot<V1Pod>>();
  readonly #podIndex = new Map<string, PodIndex>();
  readonly #listeners = new Set<ChangeListener>();
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #inactivityMs: number;
  readonly #baseBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #startTimeoutMs: number;
  #inactivityTimer: TimerHandle | undefined;
  #started = false;
  #closed = false;

  /** Creates the cache; nothing is watched until {@linkcode start}. */
  constructor(options: WatchCacheOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
    this.#inactivityMs = options.inactivityMs ?? 300_000;
    this.#baseBackoffMs = options.restartBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxRestartBackoffMs ?? 5000;
    this.#startTimeoutMs = options.startTimeoutMs ?? 30_000;
    const f = options.informers;
    this.#nodes = new Slot("node", undefined, () => f.nodes(), this.#baseBackoffMs);
    for (const ns of new Set(options.namespaces)) {
      this.#deployments.set(
        ns,
        new Slot("deployment", ns, () => f.deployments(ns), this.#baseBackoffMs),
      );
      const index = new PodIndex();
      this.#podIndex.set(ns, index);
      this.#pods.set(ns, new Slot("pod", ns, () => f.pods(ns), this.#baseBackoffMs, index));
    }
  }

  /** True once every watch has listed at least once. */
  get synced(): boolean {
    return this.#slots().every((s) => s.synced);
  }

  /**
   * Starts every watch; resolves once all have listed. Failed informers are replaced with
   * backoff until they sync.
   * @throws the abort reason when `signal` aborts first (the watches keep retrying until close).
   */
  start(signal: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("cache closed"));
    if (!this.#started) {
      this.#started = true;
      for (const slot of this.#slots()) void this.#replace(slot as Slot<Meta>);
      this.#scheduleInactivityCheck();
    }
    const all = Promise.all(this.#slots().map((s) => s.firstSync)).then(() => {});
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      all.then(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  /** Stops every watch and timer. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#inactivityTimer !== undefined) this.#clock.clearTimer(this.#inactivityTimer);
    for (const slot of this.#slots()) {
      if (slot.timer !== undefined) this.#clock.clearTimer(slot.timer);
      slot.detach?.();
      void slot.informer?.stop().catch(() => {});
    }
    this.#listeners.clear();
  }

  deployment(namespace: string, name: string): ObservedDeployment | undefined {
    const d = this.#deployments.get(namespace)?.informer?.get(name, namespace);
    if (!d) return undefined;
    return {
      uid: d.metadata?.uid ?? "",
      resourceVersion: d.metadata?.resourceVersion ?? "",
      annotations: d.metadata?.annotations ?? {},
      labels: d.metadata?.labels ?? {},
      selector: d.spec?.selector?.matchLabels ?? {},
    };
  }

  /**
   * Pods of `namespace` on `nodeName` matching `selector`: O(pods of that namespace on that
   * node). The returned objects are frozen and shared between calls.
   */
  pods(namespace: string, selector: Record<string, string>, nodeName: string): ObservedPod[] {
    const out: ObservedPod[] = [];
    if (nodeName === "") return out;
    const bucket = this.#podIndex.get(namespace)?.byNode.get(nodeName);
    if (!bucket) return out;
    for (const e of bucket.values()) if (matchesSelector(e.labels, selector)) out.push(e.observed);
    return out;
  }

  node(name: string): ObservedNode | undefined {
    const n = this.#nodes.informer?.get(name);
    return n ? observeNode(n) : undefined;
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #slots(): Slot<Meta>[] {
    return [
      this.#nodes,
      ...this.#deployments.values(),
      ...this.#pods.values(),
    ] as Slot<Meta>[];
  }

  #emit(kind: ChangeKind, obj: Meta): void {
    const namespace = kind === "node" ? undefined : obj.metadata?.namespace;
    const name = obj.metadata?.name ?? "";
    for (const l of [...this.#listeners]) {
      try {
        l(kind, namespace, name);
      } catch (error) {
        this.#log.error("cache-listener-failed", { error: String(error) });
      }
    }
  }

  /**
   * Starts a fresh informer for `slot`; once it has listed, swaps it in, reports what differs
   * from the old one, and stops the old one. On failure, retries with backoff.
   */
  async #replace(slot: Slot<Meta>): Promise<void> {
    if (this.#closed || slot.restarting) return;
    slot.restarting = true;
    slot.timer = undefined;
    const fresh = slot.make();
    let failed: unknown;
    let live = false; // events are forwarded only once swapped in
    const onObjectOf = (verb: InformerObjectVerb) => (obj: Meta) => {
      if (!live || this.#closed) return;
      slot.lastEventMs = this.#clock.nowMs();
      slot.index?.apply(verb, obj);
      this.#emit(slot.kind, obj);
    };
    const onConnect = () => {
      slot.lastEventMs = this.#clock.nowMs();
    };
    const onError = (err?: unknown) => {
      if (!live) {
        failed = err ?? new Error("informer error");
        return;
      }
      if (this.#closed || slot.informer !== fresh) return;
      this.#log.warn("watch-failed", { watch: slot.label, error: errorText(err) });
      this.#scheduleReplace(slot);
    };
    const verbs: InformerObjectVerb[] = ["add", "update", "delete"];
    const handlers = verbs.map((v) => [v, onObjectOf(v)] as const);
    for (const [v, h] of handlers) fresh.on(v, h);
    fresh.on("connect", onConnect);
    fresh.on("error", onError);
    const detach = () => {
      for (const [v, h] of handlers) fresh.off(v, h);
      fresh.off("connect", onConnect);
      fresh.off("error", onError);
    };
    let timer: TimerHandle | undefined;
    try {
      await Promise.race([
        fresh.start(),
        new Promise<void>((_, reject) => {
          timer = this.#clock.setTimer(
            () => reject(new Error(`start timed out after ${this.#startTimeoutMs} ms`)),
            this.#startTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      failed = error;
    } finally {
      this.#clock.clearTimer(timer);
    }
    slot.restarting = false;
    if (this.#closed || failed !== undefined) {
      detach();
      void fresh.stop().catch(() => {});
      if (!this.#closed) {
        this.#log.warn("watch-start-failed", {
          watch: slot.label,
          error: errorText(failed),
          retryInMs: slot.backoffMs,
        });
        this.#scheduleReplace(slot);
      }
      return;
    }
    const old = slot.informer;
    const oldDetach = slot.detach;
    const before = new Map((old?.list() ?? []).map((o) => [key(o), o.metadata?.resourceVersion]));
    slot.informer = fresh;
    slot.detach = detach;
    slot.index?.reset(fresh.list());
    live = true;
    slot.lastEventMs = this.#clock.nowMs();
    slot.backoffMs = this.#baseBackoffMs;
    oldDetach?.();
    void old?.stop().catch(() => {});
    if (!slot.synced) {
      slot.synced = true;
      slot.resolveFirstSync();
      this.#log.debug("watch-synced", { watch: slot.label });
    } else {
      // Report what changed while the watch was down.
      const now = fresh.list();
      for (const o of now) {
        if (before.get(key(o)) !== o.metadata?.resourceVersion) this.#emit(slot.kind, o);
        before.delete(key(o));
      }
      for (const k of before.keys()) {
        const [namespace, name] = k.split("/");
        this.#emit(slot.kind, { metadata: { namespace: namespace || undefined, name } });
      }
      this.#log.info("watch-restarted", { watch: slot.label });
    }
  }

  #scheduleReplace(slot: Slot<Meta>): void {
    if (this.#closed || slot.timer !== undefined || slot.restarting) return;
    const delayMs = slot.backoffMs;
    slot.backoffMs = Math.min(this.#maxBackoffMs, slot.backoffMs * 2);
    slot.timer = this.#clock.setTimer(() => void this.#replace(slot), delayMs);
  }

  #scheduleInactivityCheck(): void {
    if (this.#inactivityMs <= 0 || this.#closed) return;
    const periodMs = Math.max(1, this.#inactivityMs / 4);
    this.#inactivityTimer = this.#clock.setTimer(() => {
      const now = this.#clock.nowMs();
      for (const slot of this.#slots()) {
        if (
          slot.synced && !slot.restarting && slot.timer === undefined &&
          now - slot.lastEventMs > this.#inactivityMs
        ) {
          this.#log.info("watch-inactive", { watch: slot.label, silentMs: now - slot.lastEventMs });
          void this.#replace(slot);
        }
      }
      this.#scheduleInactivityCheck();
    }, periodMs);
  }
}

function key(o: Meta): string {
  return `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

/** A client-node timestamp (a Date after deserialisation, or a string) as ISO 8601. */
function isoOf(value: unknown): string | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
  return typeof value === "string" ? value : undefined;
}

/** What the reconciler needs of a Node object (from the cache or a direct GET). */
export function observeNode(n: V1Node): ObservedNode {
  return {
    uid: n.metadata?.uid ?? "",
    unschedulable: n.spec?.unschedulable === true,
    taints: (n.spec?.taints ?? []).map((t) => ({
      key: t.key,
      effect: t.effect,
      ...(t.value !== undefined ? { value: t.value } : {}),
      ...(t.timeAdded ? { timeAdded: new Date(t.timeAdded).toISOString() } : {}),
    })),
    annotations: n.metadata?.annotations ?? {},
    resourceVersion: n.metadata?.resourceVersion ?? "",
  };
}
