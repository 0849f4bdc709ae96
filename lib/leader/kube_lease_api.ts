/**
 * The {@linkcode LeaseApi} of the elector on one `coordination.k8s.io/v1` Lease, through
 * client-node's `CoordinationV1Api` (read, create, replace: the RBAC rule in
 * `config/k3s/rbac.yaml` grants exactly get, create and update on that Lease).
 *
 * client-node throws `ApiException` with the HTTP status in `code`; it is mapped to the elector's
 * typed errors here: 404 → {@linkcode LeaseNotFoundError}, 409 → {@linkcode LeaseConflictError},
 * 401/403 and other 4xx but 408/429 → {@linkcode LeaseTerminalError}; anything else (5xx, 408,
 * 429, network errors, timeouts) passes through and is retried by the elector.
 *
 * @module
 */
import type { ConfigurationOptions, CoordinationV1Api, V1Lease } from "@kubernetes/client-node";
import { httpStatusOf } from "../reconcile/retry.ts";
import {
  LEASE_DURATION_ANNOTATION,
  type LeaseApi,
  LeaseConflictError,
  LeaseNotFoundError,
  type LeaseRecord,
  LeaseTerminalError,
  type ObservedLease,
} from "./lease_elector.ts";

/** The three calls of `CoordinationV1Api` the elector uses. */
export type LeaseCalls = Pick<
  CoordinationV1Api,
  "readNamespacedLease" | "createNamespacedLease" | "replaceNamespacedLease"
>;

/** Where the Lease is and how requests carry the elector's signal. */
export interface KubeLeaseApiOptions {
  namespace: string;
  name: string;
  /** Per-request options (timeouts, the abort signal), as `kube_client.ts` builds them. */
  requestOptions?: (signal: AbortSignal) => ConfigurationOptions;
}

/** Builds the elector's {@linkcode LeaseApi} on `calls`. */
export function kubeLeaseApi(calls: LeaseCalls, options: KubeLeaseApiOptions): LeaseApi {
  const { namespace, name } = options;
  const opts = (signal: AbortSignal) => options.requestOptions?.(signal);
  const where = `Lease ${namespace}/${name}`;
  return {
    get: (signal) =>
      mapped(
        where,
        "get",
        async () => toObserved(await calls.readNamespacedLease({ namespace, name }, opts(signal))),
      ),
    create: (record, signal) =>
      mapped(where, "create", async () =>
        toObserved(
          await calls.createNamespacedLease(
            { namespace, body: toLease(record, namespace, name) },
            opts(signal),
          ),
        )),
    replace: (record, resourceVersion, signal) =>
      mapped(where, "update", async () =>
        toObserved(
          await calls.replaceNamespacedLease(
            { namespace, name, body: toLease(record, namespace, name, resourceVersion) },
            opts(signal),
          ),
        )),
  };
}

/**
 * A time that serialises with six fractional digits: the API server parses a Lease's MicroTime
 * fields with Go's `RFC3339Micro` layout and rejects `Date`'s three (client-node's own
 * `V1MicroTime` does the same; this copy keeps client-node out of this module at run time).
 */
class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().slice(0, -1) + "000Z";
  }
}

/** The Lease object for `record`; `resourceVersion` makes the replace conditional. */
export function toLease(
  record: LeaseRecord,
  namespace: string,
  name: string,
  resourceVersion?: string,
): V1Lease {
  return {
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: {
      namespace,
      name,
      ...(resourceVersion === undefined ? {} : { resourceVersion }),
      annotations: { [LEASE_DURATION_ANNOTATION]: String(record.leaseDurationMs) },
    },
    spec: {
      holderIdentity: record.holderIdentity,
      // whole seconds, rounded up, for kubectl and client-go readers; ours use the annotation
      leaseDurationSeconds: Math.max(1, Math.ceil(record.leaseDurationMs / 1000)),
      leaseTransitions: record.leaseTransitions,
      ...(record.acquireTime ? { acquireTime: new MicroTime(record.acquireTime) } : {}),
      ...(record.renewTime ? { renewTime: new MicroTime(record.renewTime) } : {}),
    },
  };
}

/**
 * The record of a Lease read from the API. A Lease written by another tool (no annotation) has
 * `leaseDurationSeconds × 1000` as its duration; a missing or invalid duration counts as 15 s
 * (client-go's default), so a foreign lease is never taken early.
 */
export function toObserved(lease: V1Lease): ObservedLease {
  const spec = lease.spec ?? {};
  const annotated = Number(lease.metadata?.annotations?.[LEASE_DURATION_ANNOTATION]);
  const seconds = spec.leaseDurationSeconds;
  const leaseDurationMs = Number.isFinite(annotated) && annotated > 0
    ? annotated
    : seconds !== undefined && seconds > 0
    ? seconds * 1000
    : 15_000;
  const date = (d: Date | string | undefined) => d === undefined ? undefined : new Date(d);
  return {
    resourceVersion: lease.metadata?.resourceVersion ?? "",
    record: {
      holderIdentity: spec.holderIdentity ?? "",
      leaseDurationMs,
      leaseTransitions: spec.leaseTransitions ?? 0,
      acquireTime: date(spec.acquireTime),
      renewTime: date(spec.renewTime),
    },
  };
}

/** Runs `call`, mapping client-node's HTTP errors to the elector's typed errors. */
async function mapped<T>(where: string, verb: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw mapError(error, where, verb);
  }
}

/** The elector's error for a client-node error (see the module documentation). */
export function mapError(error: unknown, where: string, verb: string): unknown {
  const status = httpStatusOf(error);
  if (status === 404) return new LeaseNotFoundError(`${where} not found`);
  if (status === 409) return new LeaseConflictError(`${where}: ${verb} conflict (409)`);
  if (status === 401) {
    return new LeaseTerminalError(
      401,
      `${where}: ${verb} unauthorized (401): the supervisor's credentials were refused`,
      { cause: error },
    );
  }
  if (status === 403) {
    return new LeaseTerminalError(
      403,
      `${where}: ${verb} forbidden (403): the supervisor's role must allow get, create and ` +
        `update on this Lease (config/k3s/rbac.yaml)`,
      { cause: error },
    );
  }
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new LeaseTerminalError(status, `${where}: ${verb} failed (${status})`, {
      cause: error,
    });
  }
  return error;
}
