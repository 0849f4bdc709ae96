/**
 * Defence in depth for a supervisor pair: the reconciler's Kubernetes writes pass only while this
 * instance leads. The coordinator already hands a standby's reconciler nothing; this gate also
 * stops work a deposed leader's reconciler still holds (requeues, cache-driven re-reconciles).
 * `isLeader()` is checked when each write is sent; a write already sent is not recalled (see
 * docs/redundancy.md, "Supervisor pair").
 *
 * @module
 */
import type { KubeApi } from "../kube/kube_api.ts";

/** Thrown instead of a write while this instance does not lead; retryable (no HTTP status). */
export class NotLeaderError extends Error {
  constructor(what: string) {
    super(`${what} withheld: this supervisor does not lead its pair`);
    this.name = "NotLeaderError";
  }
}

/** `api` whose writes (patch, delete, create) reject with {@linkcode NotLeaderError} unless leading. */
export function gateWrites(api: KubeApi, isLeader: () => boolean): KubeApi {
  const gate =
    <A extends unknown[], R>(what: string, write: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      isLeader() ? write(...args) : Promise.reject(new NotLeaderError(what));
  return {
    readDeployment: (...a) => api.readDeployment(...a),
    listPods: (...a) => api.listPods(...a),
    readNode: (...a) => api.readNode(...a),
    patchDeployment: gate("Deployment patch", (...a) => api.patchDeployment(...a)),
    deletePod: gate("Pod delete", (...a) => api.deletePod(...a)),
    patchNode: gate("Node patch", (...a) => api.patchNode(...a)),
    createEvent: gate("Event create", (...a) => api.createEvent(...a)),
    close: () => api.close(),
  };
}
