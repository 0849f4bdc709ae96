/**
 * Kubernetes API access for the failover executor, built on `npm:@kubernetes/client-node` 1.4.0.
 *
 * Two things the library does not do by default, and failover latency depends on both
 * (measured against the control plane of `tests/harness/control_plane.ts`):
 * - **Connection reuse.** client-node creates a new `https.Agent` per call (`Connection: close`,
 *   one TLS handshake per request). One shared keep-alive agent cuts a call's p50 from ≈ 9 ms to
 *   ≈ 5 ms on kine/SQLite and removes handshakes after warm-up. Rotated client certificates need
 *   a new {@linkcode KubeClient}.
 * - **Request timeouts.** There are none by default; every call here carries an `AbortSignal`
 *   with `requestTimeoutMs`, combined with the caller's signal.
 *
 * One {@linkcode KubeClient} (one KubeConfig) serves both the write API and the watch-backed cache
 * (`cache.ts`): writes and lists share one capped keep-alive pool; watches, which hold their
 * connection open indefinitely, get a second keep-alive pool of the same KubeConfig so they can
 * never take the sockets that failover writes need.
 *
 * This module is imported lazily by the supervisor only: the node agent never loads client-node
 * (≈ 65 MB RSS).
 *
 * @module
 */
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  type V1Deployment,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import { Observable, type RequestContext, type ResponseContext } from "@kubernetes/client-node";
import https from "node:https";
import http from "node:http";
import type { KubeApi, PatchType } from "./kube_api.ts";
import type { LeaseApi } from "../leader/lease_elector.ts";
import { kubeLeaseApi } from "../leader/kube_lease_api.ts";
import {
  type InformerFactory,
  type InformerLike,
  WatchCache,
  type WatchCacheOptions,
} from "./cache.ts";

export type { DeletePodOptions, KubeApi, PatchType } from "./kube_api.ts";

/** Options of {@linkcode createKubeClient}. */
export interface KubeClientOptions {
  /** Path to a kubeconfig (K3s: `/etc/rancher/k3s/k3s.yaml`). Ignored when `inCluster`. */
  kubeconfigPath?: string;
  /** Use the pod's service account (`loadFromCluster`). */
  inCluster?: boolean;
  /** Per-request timeout of API calls, ms (default 2000). */
  requestTimeoutMs?: number;
  /** Timeout of the cache's list calls, ms (default 30000: a list may be large). */
  listTimeoutMs?: number;
  /** Keep-alive sockets kept per host for writes and lists (default 16: independent writes run concurrently). */
  maxSockets?: number;
}

/** Options of {@linkcode KubeClient.openCache} (see {@linkcode WatchCacheOptions}). */
export type OpenCacheOptions = Omit<WatchCacheOptions, "informers">;

/** The Kubernetes client of the supervisor: one KubeConfig for writes and watches. */
export interface KubeClient {
  /** The write API (per-request timeouts, shared keep-alive pool). */
  api: KubeApi;
  /**
   * A watch-backed cache of Nodes and of Deployments and Pods in `options.namespaces` (not
   * started: call `start(signal)`; `close()` it before {@linkcode KubeClient.close}).
   */
  openCache(options: OpenCacheOptions): WatchCache;
  /** The supervisor pair's election API on the Lease `namespace/name` (`lib/leader`). */
  leaseApi(namespace: string, name: string): LeaseApi;
  /** Releases every socket (of the API and the watches). */
  close(): void;
}

/** A KubeConfig whose every request goes through one shared keep-alive agent. */
class KeepAliveKubeConfig extends KubeConfig {
  #agent: http.Agent | https.Agent | undefined;
  #watchAgent: http.Agent | https.Agent | undefined;
  readonly #maxSockets: number;

  constructor(maxSockets: number) {
    super();
    this.#maxSockets = maxSockets;
  }

  /** Lets client-node build its per-call agent, then swaps in one shared keep-alive agent. */
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (!this.#agent) {
      const perCall = context.getAgent() as
        | (https.Agent & { options?: https.AgentOptions })
        | undefined;
      const options = { ...perCall?.options, keepAlive: true, maxSockets: this.#maxSockets };
      this.#agent = this.getCurrentCluster()?.server.startsWith("http:")
        ? new http.Agent(options)
        : new https.Agent(options);
    }
    context.setAgent(this.#agent);
  }

  /**
   * Watches (client-node `Watch`, fetch-based) get their own keep-alive agent: a watch holds its
   * socket open indefinitely and must not take sockets from the capped write pool.
   */
  override async applyToFetchOptions(
    opts: https.RequestOptions,
  ): Promise<Awaited<ReturnType<KubeConfig["applyToFetchOptions"]>>> {
    const init = await super.applyToFetchOptions(opts);
    if (!this.#watchAgent) {
      const perCall = init.agent as (https.Agent & { options?: https.AgentOptions }) | undefined;
      const options = { ...perCall?.options, keepAlive: true };
      this.#watchAgent = this.getCurrentCluster()?.server.startsWith("http:")
        ? new http.Agent(options)
        : new https.Agent(options);
    }
    return { ...init, agent: this.#watchAgent };
  }

  destroy(): void {
    this.#agent?.destroy();
    this.#agent = undefined;
    this.#watchAgent?.destroy();
    this.#watchAgent = undefined;
  }
}

/**
 * Creates the supervisor's Kubernetes client: the write API and a factory of watch-backed caches
 * over one KubeConfig.
 * @throws Error when the kubeconfig cannot be read or has no current cluster.
 */
export function createKubeClient(options: KubeClientOptions = {}): KubeClient {
  const kc = new KeepAliveKubeConfig(options.maxSockets ?? 16);
  if (options.inCluster) kc.loadFromCluster();
  else kc.loadFromFile(options.kubeconfigPath ?? "/etc/rancher/k3s/k3s.yaml");
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig has no current cluster");
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const timeoutMs = options.requestTimeoutMs ?? 2000;

  const listTimeoutMs = options.listTimeoutMs ?? 30_000;

  const opts = (signal?: AbortSignal, contentType?: string, requestTimeoutMs = timeoutMs) => {
    const requestSignal = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)])
      : AbortSignal.timeout(requestTimeoutMs);
    return {
      middleware: [{
        pre: (ctx: RequestContext) => {
          ctx.setSignal(requestSignal);
          if (contentType) ctx.setHeaderParam("Content-Type", contentType);
          return new Observable(Promise.resolve(ctx));
        },
        post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
      }],
      middlewareMergeStrategy: "append" as const,
    };
  };
  const patchType = (t: PatchType) =>
    t === "merge" ? PatchStrategy.MergePatch : PatchStrategy.StrategicMergePatch;

  const api: KubeApi = {
    readDeployment: (namespace, name, signal) =>
      apps.readNamespacedDeployment({ namespace, name }, opts(signal)),
    patchDeployment: (namespace, name, body, type, signal) =>
      apps.patchNamespacedDeployment({ namespace, name, body }, opts(signal, patchType(type))),
    listPods: (namespace, selectors, signal) =>
      core.listNamespacedPod({ namespace, ...selectors }, opts(signal)),
    deletePod: async (namespace, name, gracePeriodSeconds, signal, deleteOptions) => {
      await core.deleteNamespacedPod({
        namespace,
        name,
        gracePeriodSeconds,
        ...(deleteOptions?.uid
          ? { body: { gracePeriodSeconds, preconditions: { uid: deleteOptions.uid } } }
          : {}),
      }, opts(signal));
    },
    readNode: (name, signal) => core.readNode({ name }, opts(signal)),
    patchNode: (name, body, type, signal) =>
      core.patchNode({ name, body }, opts(signal, patchType(type))),
    createEvent: async (namespace, body, signal) => {
      // deno-lint-ignore no-explicit-any
      await core.createNamespacedEvent({ namespace, body: body as any }, opts(signal));
    },
    close: () => kc.destroy(),
  };

  // client-node's Informer has overloaded on/off; the cache needs only this structural subset.
  const informer = <T>(i: unknown) => i as InformerLike<T>;
  const informers: InformerFactory = {
    nodes: () =>
      informer<V1Node>(
        makeInformer(kc, "/api/v1/nodes", () =>
          core.listNode({}, opts(undefined, undefined, listTimeoutMs))),
      ),
    deployments: (namespace) =>
      informer<V1Deployment>(
        makeInformer(
          kc,
          `/apis/apps/v1/namespaces/${namespace}/deployments`,
          () =>
            apps.listNamespacedDeployment({ namespace }, opts(undefined, undefined, listTimeoutMs)),
        ),
      ),
    pods: (namespace) =>
      informer<V1Pod>(
        makeInformer(
          kc,
          `/api/v1/namespaces/${namespace}/pods`,
          () => core.listNamespacedPod({ namespace }, opts(undefined, undefined, listTimeoutMs)),
        ),
      ),
  };

  return {
    api,
    openCache: (cacheOptions) => new WatchCache({ ...cacheOptions, informers }),
    leaseApi: (namespace, name) =>
      kubeLeaseApi(kc.makeApiClient(CoordinationV1Api), {
        namespace,
        name,
        requestOptions: (signal) => opts(signal),
      }),
    close: () => kc.destroy(),
  };
}
