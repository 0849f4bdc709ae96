/**
 * Watches pods, nodes and node Leases for the whole run and keeps, per object, the receipt times
 * of the transitions the benchmark measures: a pod bound, Running, marked for deletion, gone; a
 * node's Ready condition and taints; every Lease renewal.
 *
 * @module
 */
import type { KubeApi, KubeObject, WatchEvent } from "./kube_api.ts";

/** What the observer knows about one pod. */
export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  /** The `app` label. */
  app: string;
  /** `spec.nodeName` once bound. */
  node?: string;
  /** Receipt of the first event that showed it (or the initial list). */
  firstSeenWallMs: number;
  boundWallMs?: number;
  runningWallMs?: number;
  /** Receipt of the first event carrying a `deletionTimestamp` (eviction or delete). */
  deletionWallMs?: number;
  /** Receipt of its DELETED event. */
  goneWallMs?: number;
}

/** A change of a node's Ready condition or taints. */
export interface NodeSample {
  wallMs: number;
  /** The Ready condition's status: True, False, Unknown, or undefined. */
  ready?: string;
  unschedulable: boolean;
  /** `key:effect` of every taint. */
  taints: string[];
}

/** One observed renewal of a node Lease. */
export interface LeaseRenewal {
  /** `spec.renewTime`, ms since the epoch (the renewing kwok's clock = this host's). */
  renewMs: number;
  /** Receipt of the event. */
  wallMs: number;
  holder?: string;
}

function parseMicroTime(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(text);
  if (!m) return Date.parse(text);
  const base = Date.parse(`${m[1]}Z`);
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return base + frac;
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

/** The running observer; see {@linkcode observeCluster}. */
export class ClusterObserver {
  readonly pods = new Map<string, PodRecord>();
  readonly nodes = new Map<string, NodeSample[]>();
  readonly leases = new Map<string, LeaseRenewal[]>();
  readonly #waiters = new Set<Waiter>();
  readonly #stops: (() => void)[] = [];

  /** Starts the three watches; resolves when each has listed once. */
  async start(api: KubeApi): Promise<void> {
    const watches = [
      api.watch("/api/v1/pods", (e) => this.#onPod(e)),
      api.watch("/api/v1/nodes", (e) => this.#onNode(e)),
      api.watch(
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        (e) => this.#onLease(e),
      ),
    ];
    for (const w of watches) this.#stops.push(w.stop);
    await Promise.all(watches.map((w) => w.ready));
  }

  stop(): void {
    for (const s of this.#stops) s();
    for (const w of this.#waiters) w.resolve();
    this.#waiters.clear();
  }

  /**
   * Resolves with true once `check()` holds (checked now and after every event), false after
   * `timeoutMs`.
   */
  until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(check());
        },
      };
      const timer = setTimeout(() => waiter.resolve(), timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Pods of a namespace (optionally of one `app`). */
  podsOf(namespace: string, app?: string): PodRecord[] {
    return [...this.pods.values()].filter((p) =>
      p.namespace === namespace && (app === undefined || p.app === app)
    );
  }

  /** The first sample of `node` at or after `sinceWallMs` that satisfies `pred`. */
  firstNodeSample(
    node: string,
    sinceWallMs: number,
    pred: (s: NodeSample) => boolean,
  ): NodeSample | undefined {
    return (this.nodes.get(node) ?? []).find((s) => s.wallMs >= sinceWallMs && pred(s));
  }

  /** The latest sample of `node`. */
  nodeNow(node: string): NodeSample | undefined {
    return this.nodes.get(node)?.at(-1);
  }

  /** The last renewal of `node`'s Lease at or before `wallMs`. */
  lastRenewalBefore(node: string, wallMs: number): LeaseRenewal | undefined {
    const list = this.leases.get(node) ?? [];
    for (let i = list.length - 1; i >= 0; i--) if (list[i].renewMs <= wallMs) return list[i];
    return undefined;
  }

  #notify(): void {
    for (const w of [...this.#waiters]) if (w.check()) w.resolve();
  }

  #onPod(e: WatchEvent): void {
    const o = e.object;
    const uid = o.metadata.uid;
    if (!uid) return;
    let rec = this.pods.get(uid);
    if (!rec) {
      rec = {
        uid,
        namespace: o.metadata.namespace ?? "",
        name: o.metadata.name,
        app: o.metadata.labels?.app ?? "",
        firstSeenWallMs: e.wallMs,
      };
      this.pods.set(uid, rec);
    }
    const node = (o.spec as { nodeName?: string } | undefined)?.nodeName;
    if (node && !rec.node) {
      rec.node = node;
      rec.boundWallMs = e.wallMs;
    }
    const phase = (o.status as { phase?: string } | undefined)?.phase;
    if (phase === "Running" && rec.runningWallMs === undefined) rec.runningWallMs = e.wallMs;
    if (o.metadata.deletionTimestamp && rec.deletionWallMs === undefined) {
      rec.deletionWallMs = e.wallMs;
    }
    if (e.type === "DELETED") {
      rec.goneWallMs = e.wallMs;
      rec.deletionWallMs ??= e.wallMs;
    }
    this.#notify();
  }

  #onNode(e: WatchEvent): void {
    const o = e.object as KubeObject & {
      spec?: { unschedulable?: boolean; taints?: { key: string; effect: string }[] };
      status?: { conditions?: { type: string; status: string }[] };
    };
    const sample: NodeSample = {
      wallMs: e.wallMs,
      ready: o.status?.conditions?.find((c) => c.type === "Ready")?.status,
      unschedulable: o.spec?.unschedulable === true,
      taints: (o.spec?.taints ?? []).map((t) => `${t.key}:${t.effect}`).sort(),
    };
    const list = this.nodes.get(o.metadata.name) ?? [];
    const last = list.at(-1);
    if (
      e.type === "DELETED" ||
      !last || last.ready !== sample.ready || last.unschedulable !== sample.unschedulable ||
      last.taints.join() !== sample.taints.join()
    ) {
      list.push(sample);
      this.nodes.set(o.metadata.name, list);
    }
    this.#notify();
  }

  #onLease(e: WatchEvent): void {
    if (e.type === "DELETED") return;
    const spec = e.object.spec as { renewTime?: string; holderIdentity?: string } | undefined;
    const renewMs = parseMicroTime(spec?.renewTime);
    if (renewMs === undefined) return;
    const list = this.leases.get(e.object.metadata.name) ?? [];
    if (list.at(-1)?.renewMs !== renewMs) {
      list.push({ renewMs, wallMs: e.wallMs, holder: spec?.holderIdentity });
      this.leases.set(e.object.metadata.name, list);
    }
    this.#notify();
  }
}

/**
 * Renewal intervals (s) of every node's Lease over the observation, excluding gaps that span a
 * holder change (a restarted kwok) — those are outages, not the cadence.
 */
export function leaseIntervals(
  leases: Map<string, LeaseRenewal[]>,
  nodes?: string[],
): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [node, list] of leases) {
    if (nodes && !nodes.includes(node)) continue;
    const xs: number[] = [];
    for (let i = 1; i < list.length; i++) {
      if (list[i].holder !== list[i - 1].holder) continue;
      xs.push((list[i].renewMs - list[i - 1].renewMs) / 1000);
    }
    out[node] = xs;
  }
  return out;
}
