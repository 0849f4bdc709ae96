/**
 * Times every Kubernetes API call of the reconciler ({@linkcode KubeApi}) and of the supervisor
 * pair's election ({@linkcode LeaseApi}) for the `sdv_failover_kube_api_request_duration_seconds`
 * histogram: a decorator, so neither the reconciler nor the elector changes, and the observer
 * defaults to nothing. Watches (the cache's informers) are long-running streams and not timed.
 *
 * @module
 */
import type { KubeApi } from "./kube_api.ts";
import type { LeaseApi } from "../leader/lease_elector.ts";

/** Kubernetes API verbs (the RBAC verbs of the calls, `config/k3s/rbac.yaml`). */
export type KubeVerb = "get" | "list" | "patch" | "delete" | "create" | "update";

/** One finished API call. */
export interface KubeCall {
  verb: KubeVerb;
  /** The resource, plural as in RBAC rules: `deployments`, `pods`, `nodes`, `events`, `leases`. */
  resource: string;
  /** From the call to its settlement, ms. */
  durationMs: number;
  /** The call rejected (any error: HTTP status, timeout, abort, a withheld write). */
  failed: boolean;
}

/** Receives every finished call; must not throw. */
export type KubeCallObserver = (call: KubeCall) => void;

/** A clock reading in ms (monotonic). */
type Now = () => number;

function timer(observe: KubeCallObserver, nowMs: Now) {
  return <A extends unknown[], R>(
    verb: KubeVerb,
    resource: string,
    call: (...args: A) => Promise<R>,
  ) =>
  (...args: A): Promise<R> => {
    const startMs = nowMs();
    return call(...args).then(
      (value) => {
        observe({ verb, resource, durationMs: nowMs() - startMs, failed: false });
        return value;
      },
      (error) => {
        observe({ verb, resource, durationMs: nowMs() - startMs, failed: true });
        throw error;
      },
    );
  };
}

/** `api` with every call timed into `observe` (`nowMs`: default `performance.now`). */
export function timedKubeApi(
  api: KubeApi,
  observe: KubeCallObserver,
  nowMs: Now = () => performance.now(),
): KubeApi {
  const timed = timer(observe, nowMs);
  return {
    readDeployment: timed("get", "deployments", (...a) => api.readDeployment(...a)),
    patchDeployment: timed("patch", "deployments", (...a) => api.patchDeployment(...a)),
    listPods: timed("list", "pods", (...a) => api.listPods(...a)),
    deletePod: timed("delete", "pods", (...a) => api.deletePod(...a)),
    readNode: timed("get", "nodes", (...a) => api.readNode(...a)),
    patchNode: timed("patch", "nodes", (...a) => api.patchNode(...a)),
    createEvent: timed("create", "events", (...a) => api.createEvent(...a)),
    close: () => api.close(),
  };
}

/** `api` (the election's Lease) with every call timed into `observe`. */
export function timedLeaseApi(
  api: LeaseApi,
  observe: KubeCallObserver,
  nowMs: Now = () => performance.now(),
): LeaseApi {
  const timed = timer(observe, nowMs);
  return {
    get: timed("get", "leases", (...a) => api.get(...a)),
    create: timed("create", "leases", (...a) => api.create(...a)),
    replace: timed("update", "leases", (...a) => api.replace(...a)),
  };
}
