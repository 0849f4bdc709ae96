/**
 * An in-memory Kubernetes for reconciler tests: {@linkcode FakeCluster} is both the "server"
 * (what the API changed) and a {@linkcode ClusterView} cache that lags it until
 * {@linkcode FakeCluster.flush} (automatic after every write unless `manualFlush`), and
 * {@linkcode FakeKubeApi} is a {@linkcode KubeApi} over it with error injection, call recording
 * and gates that hold a call in flight. No network, no timers.
 *
 * @module
 */
import type { V1Deployment, V1Node, V1PodList } from "@kubernetes/client-node";
import type { DeletePodOptions, KubeApi, PatchType } from "../../lib/kube/kube_api.ts";
import {
  type ChangeKind,
  type ChangeListener,
  type ClusterView,
  matchesSelector,
  type ObservedDeployment,
  type ObservedNode,
  type ObservedPod,
  type ObservedTaint,
} from "../../lib/reconcile/cluster_view.ts";
import { type Config, ConfigSchema } from "../../lib/config/schema.ts";
import { buildTopology, type Topology, type Workload } from "../../lib/topology/topology.ts";
import type { NodeDesired, WorkloadDesired } from "../../lib/policy/desired.ts";

/** A stored Node. */
export interface FakeNode {
  name: string;
  uid: string;
  resourceVersion: string;
  unschedulable: boolean;
  taints: ObservedTaint[];
  annotations: Record<string, string>;
}

/** A stored Deployment. */
export interface FakeDeployment {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  annotations: Record<string, string>;
  labels: Record<string, string>;
  selector: Record<string, string>;
}

/** A stored Pod. */
export interface FakePod {
  namespace: string;
  name: string;
  uid: string;
  resourceVersion: string;
  labels: Record<string, string>;
  nodeName: string;
  deleting: boolean;
  /** `metadata.creationTimestamp` (ISO 8601); absent: created long ago. */
  createdAt?: string;
  /** `status.phase` (default `Running`). */
  phase: string;
  /** The `Ready` condition is `True` (default true). */
  ready: boolean;
}

interface Store {
  nodes: Map<string, FakeNode>;
  deployments: Map<string, FakeDeployment>;
  pods: Map<string, FakePod>;
}

const clone = <T>(v: T): T => structuredClone(v);
const emptyStore = (): Store => ({ nodes: new Map(), deployments: new Map(), pods: new Map() });
const cloneStore = (s: Store): Store => ({
  nodes: new Map([...s.nodes].map(([k, v]) => [k, clone(v)])),
  deployments: new Map([...s.deployments].map(([k, v]) => [k, clone(v)])),
  pods: new Map([...s.pods].map(([k, v]) => [k, clone(v)])),
});

/** An HTTP error as client-node reports it (`code` = status). */
export function httpError(status: number): Error {
  return Object.assign(new Error(`HTTP ${status}`), { code: status });
}

/** A request timeout as the per-request AbortSignal reports it. */
export function timeoutError(): Error {
  return new DOMException("The signal has been aborted", "TimeoutError");
}

/** The server state plus a lagging cache exposed as a {@linkcode ClusterView}. */
export class FakeCluster implements ClusterView {
  /** What the API server holds (writes land here at once). */
  server: Store = emptyStore();
  #cache: Store = emptyStore();
  #listeners = new Set<ChangeListener>();
  #rv = 100;
  #uid = 0;
  /** When true, writes reach the cache only on {@linkcode flush}. */
  manualFlush = false;
  synced = true;
  /** Times start() was called; set `startError` to make it reject. */
  starts = 0;
  startError: Error | undefined;
  closed = false;

  /** A fresh resourceVersion. */
  nextRv(): string {
    return String(++this.#rv);
  }

  /** A fresh uid. */
  nextUid(prefix: string): string {
    return `${prefix}-uid-${++this.#uid}`;
  }

  /** Adds a node (and flushes it to the cache). */
  addNode(name: string, init: Partial<FakeNode> = {}): FakeNode {
    const n: FakeNode = {
      name,
      uid: this.nextUid(name),
      resourceVersion: this.nextRv(),
      unschedulable: false,
      taints: [],
      annotations: {},
      ...init,
    };
    this.server.nodes.set(name, n);
    this.flush();
    return n;
  }

  /** Adds a Deployment whose selector is `{app: name}`. */
  addDeployment(namespace: string, name: string, init: Partial<FakeDeployment> = {}) {
    const d: FakeDeployment = {
      namespace,
      name,
      uid: this.nextUid(name),
      resourceVersion: this.nextRv(),
      annotations: {},
      labels: { app: name },
      selector: { app: name },
      ...init,
    };
    this.server.deployments.set(`${namespace}/${name}`, d);
    this.flush();
    return d;
  }

  /** Adds a pod labelled `{app: deployment}` bound to `nodeName`. */
  addPod(namespace: string, name: string, deployment: string, nodeName: string): FakePod {
    const p: FakePod = {
      namespace,
      name,
      uid: this.nextUid(name),
      resourceVersion: this.nextRv(),
      labels: { app: deployment },
      nodeName,
      deleting: false,
      phase: "Running",
      ready: true,
    };
    this.server.pods.set(`${namespace}/${name}`, p);
    this.flush();
    return p;
  }

  /** Mutates a server object, bumps its resourceVersion and flushes (unless manual). */
  mutateNode(name: string, fn: (n: FakeNode) => void): void {
    const n = this.server.nodes.get(name)!;
    fn(n);
    n.resourceVersion = this.nextRv();
    this.written();
  }

  /** Mutates a server Deployment (see {@linkcode mutateNode}). */
  mutateDeployment(namespace: string, name: string, fn: (d: FakeDeployment) => void): void {
    const d = this.server.deployments.get(`${namespace}/${name}`)!;
    fn(d);
    d.resourceVersion = this.nextRv();
    this.written();
  }

  /** Mutates a server Pod (see {@linkcode mutateNode}). */
  mutatePod(namespace: string, name: string, fn: (p: FakePod) => void): void {
    const p = this.server.pods.get(`${namespace}/${name}`)!;
    fn(p);
    p.resourceVersion = this.nextRv();
    this.written();
  }

  /** Called by the API after every write. */
  written(): void {
    if (!this.manualFlush) this.flush();
  }

  /** Copies the server state to the cache and notifies listeners of every difference. */
  flush(): void {
    const changes: [ChangeKind, string | undefined, string][] = [];
    const diff = <T extends { resourceVersion: string }>(
      kind: ChangeKind,
      a: Map<string, T>,
      b: Map<string, T>,
      split: (key: string) => [string | undefined, string],
    ) => {
      for (const key of new Set([...a.keys(), ...b.keys()])) {
        if (a.get(key)?.resourceVersion !== b.get(key)?.resourceVersion) {
          changes.push([kind, ...split(key)]);
        }
      }
    };
    const nsName = (k: string): [string, string] => k.split("/") as [string, string];
    diff("node", this.#cache.nodes, this.server.nodes, (k) => [undefined, k]);
    diff("deployment", this.#cache.deployments, this.server.deployments, nsName);
    diff("pod", this.#cache.pods, this.server.pods, nsName);
    this.#cache = cloneStore(this.server);
    for (const c of changes) for (const l of [...this.#listeners]) l(...c);
  }

  deployment(namespace: string, name: string): ObservedDeployment | undefined {
    const d = this.#cache.deployments.get(`${namespace}/${name}`);
    return d && clone({
      uid: d.uid,
      resourceVersion: d.resourceVersion,
      annotations: d.annotations,
      labels: d.labels,
      selector: d.selector,
    });
  }

  pods(namespace: string, selector: Record<string, string>, nodeName: string): ObservedPod[] {
    return [...this.#cache.pods.values()]
      .filter((p) =>
        p.namespace === namespace && p.nodeName === nodeName && matchesSelector(p.labels, selector)
      )
      .map((p) => ({
        name: p.name,
        uid: p.uid,
        deleting: p.deleting,
        createdAt: p.createdAt,
        nodeName: p.nodeName,
        resourceVersion: p.resourceVersion,
        phase: p.phase,
        ready: p.ready,
      }));
  }

  node(name: string): ObservedNode | undefined {
    const n = this.#cache.nodes.get(name);
    return n && clone({
      uid: n.uid,
      unschedulable: n.unschedulable,
      taints: n.taints,
      annotations: n.annotations,
      resourceVersion: n.resourceVersion,
    });
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Number of change listeners (a reconciler subscribes one). */
  get listenerCount(): number {
    return this.#listeners.size;
  }

  /** For the reconciler: resolves at once (or rejects with `startError`). */
  start(_signal: AbortSignal): Promise<void> {
    this.starts++;
    if (this.startError) return Promise.reject(this.startError);
    this.synced = true;
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }
}

/** One recorded API call. */
export interface FakeCall {
  op: "patchDeployment" | "patchNode" | "deletePod" | "createEvent";
  namespace?: string;
  name: string;
  body?: Record<string, unknown>;
  type?: PatchType;
  uid?: string;
  /** The call's outcome: `ok` or the HTTP status / error name thrown. */
  result: string;
}

interface Fault {
  op: FakeCall["op"];
  name?: string;
  error: () => Error;
  times: number;
}

interface Gate {
  op: FakeCall["op"];
  name?: string;
  waiting: (() => void)[];
  open: boolean;
}

/** A {@linkcode KubeApi} over a {@linkcode FakeCluster}. */
export class FakeKubeApi implements KubeApi {
  readonly cluster: FakeCluster;
  /** Every write call, in order (failed ones too). */
  readonly calls: FakeCall[] = [];
  #faults: Fault[] = [];
  #gates: Gate[] = [];
  closed = false;

  constructor(cluster: FakeCluster) {
    this.cluster = cluster;
  }

  /** The next `times` calls of `op` (on object `name`, if given) throw `error`. */
  fail(op: FakeCall["op"], error: number | (() => Error), times = 1, name?: string): void {
    this.#faults.push({
      op,
      name,
      times,
      error: typeof error === "number" ? () => httpError(error) : error,
    });
  }

  /**
   * Holds calls of `op` (on `name`, if given) in flight until the returned `release()`; an aborted
   * held call rejects with the signal's reason.
   */
  hold(op: FakeCall["op"], name?: string): { release: () => void; readonly held: number } {
    const gate: Gate = { op, name, waiting: [], open: false };
    this.#gates.push(gate);
    return {
      release: () => {
        gate.open = true;
        this.#gates.splice(this.#gates.indexOf(gate), 1);
        for (const w of gate.waiting.splice(0)) w();
      },
      get held() {
        return gate.waiting.length;
      },
    };
  }

  /** Calls of `op` that succeeded. */
  ok(op: FakeCall["op"]): FakeCall[] {
    return this.calls.filter((c) => c.op === op && c.result === "ok");
  }

  async #enter(call: FakeCall, signal?: AbortSignal): Promise<void> {
    this.calls.push(call);
    const gate = this.#gates.find((g) => g.op === call.op && (!g.name || g.name === call.name));
    if (gate) {
      await new Promise<void>((resolve, reject) => {
        gate.waiting.push(resolve);
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
      }).catch((e) => {
        call.result = "aborted";
        throw e;
      });
    }
    if (signal?.aborted) {
      call.result = "aborted";
      throw signal.reason;
    }
    const fault = this.#faults.find((f) =>
      f.op === call.op && (!f.name || f.name === call.name) && f.times > 0
    );
    if (fault) {
      fault.times--;
      const error = fault.error();
      call.result = String((error as { code?: number }).code ?? error.name);
      throw error;
    }
  }

  async patchDeployment(
    namespace: string,
    name: string,
    body: object,
    type: PatchType,
    signal?: AbortSignal,
  ): Promise<V1Deployment> {
    const call: FakeCall = {
      op: "patchDeployment",
      namespace,
      name,
      body: clone(body) as Record<string, unknown>,
      type,
      result: "pending",
    };
    await this.#enter(call, signal);
    const d = this.cluster.server.deployments.get(`${namespace}/${name}`);
    if (!d) {
      call.result = "404";
      throw httpError(404);
    }
    const meta = (body as { metadata?: Record<string, Record<string, string | null>> }).metadata ??
      {};
    mergeInto(d.annotations, meta.annotations);
    mergeInto(d.labels, meta.labels);
    d.resourceVersion = this.cluster.nextRv();
    call.result = "ok";
    this.cluster.written();
    return { metadata: { name, namespace, uid: d.uid, resourceVersion: d.resourceVersion } };
  }

  async patchNode(
    name: string,
    body: object,
    type: PatchType,
    signal?: AbortSignal,
  ): Promise<V1Node> {
    const call: FakeCall = {
      op: "patchNode",
      name,
      body: clone(body) as Record<string, unknown>,
      type,
      result: "pending",
    };
    await this.#enter(call, signal);
    const n = this.cluster.server.nodes.get(name);
    if (!n) {
      call.result = "404";
      throw httpError(404);
    }
    const b = body as {
      metadata?: { annotations?: Record<string, string | null>; resourceVersion?: string };
      spec?: { unschedulable?: boolean; taints?: ObservedTaint[] };
    };
    if (b.metadata?.resourceVersion && b.metadata.resourceVersion !== n.resourceVersion) {
      call.result = "409";
      throw httpError(409);
    }
    mergeInto(n.annotations, b.metadata?.annotations);
    if (b.spec?.unschedulable !== undefined) n.unschedulable = b.spec.unschedulable;
    if (b.spec?.taints) n.taints = clone(b.spec.taints); // atomic list: replaced
    n.resourceVersion = this.cluster.nextRv();
    call.result = "ok";
    this.cluster.written();
    return { metadata: { name, uid: n.uid, resourceVersion: n.resourceVersion } };
  }

  async deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal?: AbortSignal,
    options?: DeletePodOptions,
  ): Promise<void> {
    const call: FakeCall = {
      op: "deletePod",
      namespace,
      name,
      uid: options?.uid,
      body: { gracePeriodSeconds },
      result: "pending",
    };
    await this.#enter(call, signal);
    const key = `${namespace}/${name}`;
    const p = this.cluster.server.pods.get(key);
    if (!p) {
      call.result = "404";
      throw httpError(404);
    }
    if (options?.uid && options.uid !== p.uid) {
      call.result = "409";
      throw httpError(409);
    }
    this.cluster.server.pods.delete(key); // grace 0: gone at once
    call.result = "ok";
    this.cluster.written();
  }

  async createEvent(namespace: string, body: object, signal?: AbortSignal): Promise<void> {
    const b = body as { reason?: string };
    const call: FakeCall = {
      op: "createEvent",
      namespace,
      name: b.reason ?? "",
      body: clone(body) as Record<string, unknown>,
      result: "pending",
    };
    await this.#enter(call, signal);
    call.result = "ok";
  }

  readDeployment(): Promise<V1Deployment> {
    return Promise.reject(new Error("the reconciler reads from the cache, not the API"));
  }

  listPods(): Promise<V1PodList> {
    return Promise.reject(new Error("the reconciler reads from the cache, not the API"));
  }

  /** Names of the Nodes read with {@linkcode FakeKubeApi.readNode}. */
  nodeReads: string[] = [];

  /** What the API server holds now (the reconciler reads it only after a 409). */
  readNode(name: string): Promise<V1Node> {
    this.nodeReads.push(name);
    const n = this.cluster.server.nodes.get(name);
    if (!n) return Promise.reject(httpError(404));
    return Promise.resolve({
      metadata: {
        name,
        uid: n.uid,
        resourceVersion: n.resourceVersion,
        annotations: clone(n.annotations),
      },
      spec: {
        unschedulable: n.unschedulable,
        taints: clone(n.taints) as V1Node["spec"] extends { taints?: infer T } ? T : never,
      },
    });
  }

  close(): void {
    this.closed = true;
  }
}

function mergeInto(
  target: Record<string, string>,
  patch: Record<string, string | null> | undefined,
): void {
  for (const [k, v] of Object.entries(patch ?? {})) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}

/**
 * A two-node, two-workload test config: `lane` (namespace `adas`, every action, primary
 * `lane-primary` on worker-node1, standby `lane-standby` on worker-node2) and `radar` (namespace
 * `adas`, actions as given, default `promote` + `deletePods` only; primary on worker-node1,
 * standby on worker-node3).
 */
export function testConfig(
  options: { radarActions?: string[] } = {},
): Config {
  return ConfigSchema.parse({
    nodes: ["worker-node1", "worker-node2", "worker-node3"].map((name) => ({
      name,
      heartbeatPeriodMs: 50,
      heartbeatTimeoutMs: 200,
    })),
    workloads: [
      {
        name: "lane",
        namespace: "adas",
        asil: "D",
        fttiMs: 300,
        primary: { deployment: "lane-primary", node: "worker-node1" },
        standby: { deployment: "lane-standby", node: "worker-node2" },
      },
      {
        name: "radar",
        namespace: "adas",
        asil: "B",
        fttiMs: 500,
        primary: { deployment: "radar-primary", node: "worker-node1" },
        standby: { deployment: "radar-standby", node: "worker-node3" },
        actions: options.radarActions ?? ["promote", "deletePods"],
      },
    ],
  });
}

/** The topology of {@linkcode testConfig}. */
export function testTopology(options: { radarActions?: string[] } = {}): Topology {
  return buildTopology(testConfig(options));
}

/**
 * A cluster holding every node of `topology`, both Deployments of every workload and one pod per
 * Deployment on its placement's node (named `<deployment>-pod`).
 */
export function seededCluster(topology: Topology): FakeCluster {
  const cluster = new FakeCluster();
  for (const n of topology.nodes) cluster.addNode(n.name);
  for (const w of topology.workloads) {
    for (const p of [w.primary, w.standby]) {
      cluster.addDeployment(w.namespace, p.deployment);
      cluster.addPod(w.namespace, `${p.deployment}-pod`, p.deployment, p.node.name);
    }
  }
  return cluster;
}

/** A node-fault failover of `w` to its standby at epoch 1 (override any field). */
export function failover(w: Workload, over: Partial<WorkloadDesired> = {}): WorkloadDesired {
  return {
    workload: w,
    active: "standby",
    epoch: 1,
    reason: "node-expired",
    removeFailed: true,
    failedAt: "2026-12-02T00:00:10.000Z",
    nodeFault: true,
    ...over,
  };
}

/** A cordon-and-taint fence of node `name` (override any field). */
export function fence(t: Topology, name: string, over: Partial<NodeDesired> = {}): NodeDesired {
  return {
    node: t.node(name)!,
    fenced: true,
    cordon: true,
    taint: true,
    reason: "node-expired",
    ...over,
  };
}
