/**
 * The small Kubernetes write/read API surface the reconciler needs. The real implementation is
 * `kube_client.ts` (client-node); tests use `tests/fakes/fake_kube.ts`. Only types come from
 * client-node here (erased at run time), so importing this module never loads it.
 *
 * @module
 */
import type { V1Deployment, V1Node, V1PodList } from "@kubernetes/client-node";

/** A merge or strategic-merge patch content type. */
export type PatchType = "merge" | "strategic";

/** Options of {@linkcode KubeApi.deletePod}. */
export interface DeletePodOptions {
  /** Precondition: delete only the pod with this uid (else the API answers 409). */
  uid?: string;
}

/** The API calls the reconciler makes; every call honours `signal` and a per-request timeout. */
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
  /** Deletes a pod; rejects with `code` 404 when it is gone, 409 when the uid precondition fails. */
  deletePod(
    namespace: string,
    name: string,
    gracePeriodSeconds: number,
    signal?: AbortSignal,
    options?: DeletePodOptions,
  ): Promise<void>;
  readNode(name: string, signal?: AbortSignal): Promise<V1Node>;
  patchNode(name: string, body: object, type: PatchType, signal?: AbortSignal): Promise<V1Node>;
  createEvent(namespace: string, body: object, signal?: AbortSignal): Promise<void>;
  /** Releases sockets. */
  close(): void;
}
