import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import { kubeLeaseApi, type LeaseCalls, mapError, toLease, toObserved } from "./kube_lease_api.ts";
import {
  LEASE_DURATION_ANNOTATION,
  LeaseConflictError,
  LeaseNotFoundError,
  LeaseTerminalError,
} from "./lease_elector.ts";

/** client-node's ApiException carries the HTTP status in `code`. */
const apiError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });

Deno.test("a record round-trips through a V1Lease; the ms duration rides in the annotation", () => {
  const record = {
    holderIdentity: "sup-a/1234abcd",
    leaseDurationMs: 400,
    leaseTransitions: 7,
    acquireTime: new Date("2026-01-01T00:00:00.123Z"),
    renewTime: new Date("2026-01-01T00:00:05.456Z"),
  };
  const lease = toLease(record, "kube-system", "sdv-failover", "42");
  assert.equal(lease.metadata?.resourceVersion, "42");
  assert.equal(lease.metadata?.annotations?.[LEASE_DURATION_ANNOTATION], "400");
  assert.equal(lease.spec?.leaseDurationSeconds, 1, "whole seconds, rounded up");
  const back = toObserved(lease);
  assert.deepEqual(back.record.renewTime?.getTime(), record.renewTime.getTime());
  assert.deepEqual(
    { ...back, record: { ...back.record, acquireTime: undefined, renewTime: undefined } },
    { record: { ...record, acquireTime: undefined, renewTime: undefined }, resourceVersion: "42" },
  );
  // MicroTime on the wire: six fractional digits (Go's RFC3339Micro), as JSON.stringify sends it
  assert.match(JSON.stringify(lease.spec), /"renewTime":"2026-01-01T00:00:05\.456000Z"/);
  assert.match(JSON.stringify(lease.spec), /"acquireTime":"2026-01-01T00:00:00\.123000Z"/);
  assert.equal(toLease(record, "ns", "n").metadata?.resourceVersion, undefined);
});

Deno.test("a foreign Lease without our annotation: seconds, else client-go's 15 s", () => {
  const foreign: V1Lease = {
    metadata: { resourceVersion: "1" },
    spec: { leaseDurationSeconds: 3 },
  };
  assert.equal(toObserved(foreign).record.leaseDurationMs, 3000);
  assert.equal(toObserved({ metadata: {}, spec: {} }).record.leaseDurationMs, 15_000);
  assert.equal(toObserved({ metadata: {}, spec: {} }).record.holderIdentity, "");
});

Deno.test("HTTP errors map to the elector's typed errors", () => {
  assert(mapError(apiError(404), "Lease a/b", "get") instanceof LeaseNotFoundError);
  assert(mapError(apiError(409), "Lease a/b", "update") instanceof LeaseConflictError);
  const forbidden = mapError(apiError(403), "Lease a/b", "update");
  assert(forbidden instanceof LeaseTerminalError && forbidden.status === 403);
  assert.match(forbidden.message, /forbidden \(403\).*get, create and update.*rbac\.yaml/);
  assert(mapError(apiError(422), "L", "create") instanceof LeaseTerminalError);
  for (const retryable of [apiError(500), apiError(503), apiError(429), apiError(408)]) {
    assert.equal(mapError(retryable, "L", "get"), retryable);
  }
  const timeout = new DOMException("timed out", "TimeoutError");
  assert.equal(mapError(timeout, "L", "get"), timeout);
});

Deno.test("kubeLeaseApi: replace is conditional on the resourceVersion and errors are mapped", async () => {
  const seen: unknown[] = [];
  const calls = {
    readNamespacedLease: () => Promise.reject(apiError(404)),
    createNamespacedLease: () => Promise.reject(apiError(409)),
    replaceNamespacedLease: (param: { body: V1Lease }) => {
      seen.push(param);
      return Promise.resolve({
        ...param.body,
        metadata: { ...param.body.metadata, resourceVersion: "9" },
      });
    },
  } as unknown as LeaseCalls;
  const api = kubeLeaseApi(calls, { namespace: "kube-system", name: "sdv-failover" });
  const signal = new AbortController().signal;
  await assert.rejects(api.get(signal), LeaseNotFoundError);
  const record = { holderIdentity: "a/1", leaseDurationMs: 400, leaseTransitions: 0 };
  await assert.rejects(api.create(record, signal), LeaseConflictError);
  const written = await api.replace(record, "8", signal);
  assert.equal(written.resourceVersion, "9");
  const param = seen[0] as { namespace: string; name: string; body: V1Lease };
  assert.equal(param.name, "sdv-failover");
  assert.equal(param.body.metadata?.resourceVersion, "8");
});
