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
 * This module is imported lazily by the supervisor only: the node agent never loads client-node
 * (≈ 65 MB RSS).
 *
 * @module
 */
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  type V1Deployment,
  type V1Node,
  type V1PodList,
} from "@kubernetes/client-node";
import { Observable, type RequestContext, type ResponseContext } from "@kubernetes/client-node";
import https from "node:https";
import http from "node:http";

/** Options of {@linkcode createKubeClient}. */
export interface KubeClientOptions {
  /** Path to a kubeconfig (K3s: `/etc/rancher/k3s/k3s.yaml`). Ignored when `inCluster`. */
  kubeconfigPath?: string;
  /** Use the pod's service account (`loadFromCluster`). */
  inCluster?: boolean;
  /** Per-request timeout, ms (default 2000). */
  requestTimeoutMs?: number;
  /** Keep-alive sockets kept per host (default 16: independent actions run concurrently). */
  maxSockets?: number;
}

/** A merge or strategic-merge patch content type. */
export type PatchType = "merge" | "strategic";

/** The small API surface the executor needs; the real one and test fakes implement it. */
export interface KubeApi {
  readDeployment(namespace: string, name: string, signal?: AbortSignal): Promise<V1Deployment>;
  patchDeployment(
    namespace: string,
    name: string,
    body: object,
    type: PatchType,
    signal?: AbortSignal,
  ): Promise<V1Deployment>;
  listPods(
    namespace: string,
    selectors: { labelSelector?: string; fieldSelector?: string },
    signal?: AbortSignal,
  ): Promise<V1PodList>;
  deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal?: AbortSignal,
  ): Promise<void>;
  readNode(name: string, signal?: AbortSignal): Promise<V1Node>;
  patchNode(name: string, body: object, type: PatchType, signal?: AbortSignal): Promise<V1Node>;
  createEvent(namespace: string, body: object, signal?: AbortSignal): Promise<void>;
  /** Releases sockets. */
  close(): void;
}

/** A KubeConfig whose every request goes through one shared keep-alive agent. */
class KeepAliveKubeConfig extends KubeConfig {
  #agent: http.Agent | https.Agent | undefined;
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

  destroy(): void {
    this.#agent?.destroy();
    this.#agent = undefined;
  }
}

/**
 * Creates the executor's Kubernetes client.
 * @throws Error when the kubeconfig cannot be read or has no current cluster.
 */
export function createKubeClient(options: KubeClientOptions = {}): KubeApi {
  const kc = new KeepAliveKubeConfig(options.maxSockets ?? 16);
  if (options.inCluster) kc.loadFromCluster();
  else kc.loadFromFile(options.kubeconfigPath ?? "/etc/rancher/k3s/k3s.yaml");
  if (!kc.getCurrentCluster()) throw new Error("kubeconfig has no current cluster");
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const timeoutMs = options.requestTimeoutMs ?? 2000;

  const opts = (signal?: AbortSignal, contentType?: string) => {
    const requestSignal = signal
      ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs);
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

  return {
    readDeployment: (namespace, name, signal) =>
      apps.readNamespacedDeployment({ namespace, name }, opts(signal)),
    patchDeployment: (namespace, name, body, type, signal) =>
      apps.patchNamespacedDeployment({ namespace, name, body }, opts(signal, patchType(type))),
    listPods: (namespace, selectors, signal) =>
      core.listNamespacedPod({ namespace, ...selectors }, opts(signal)),
    deletePod: async (namespace, name, gracePeriodSeconds, signal) => {
      await core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds }, opts(signal));
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
}

/** HTTP status of a client-node error, if it carries one. */
export function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}
