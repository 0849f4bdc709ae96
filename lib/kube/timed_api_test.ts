import assert from "node:assert/strict";
import type { KubeApi } from "./kube_api.ts";
import type { LeaseApi } from "../leader/lease_elector.ts";
import { type KubeCall, timedKubeApi, timedLeaseApi } from "./timed_api.ts";

Deno.test("timedKubeApi: every call timed by verb and resource, failures too, results passed through", async () => {
  let nowMs = 0;
  const calls: KubeCall[] = [];
  const resolveAfter = <T>(ms: number, value: T) => {
    nowMs += ms;
    return Promise.resolve(value);
  };
  const api = {
    readDeployment: () => resolveAfter(2, { metadata: { name: "d" } }),
    patchDeployment: () => resolveAfter(3, {}),
    listPods: () => resolveAfter(4, { items: [] }),
    deletePod: () => {
      nowMs += 5;
      return Promise.reject(Object.assign(new Error("gone"), { code: 404 }));
    },
    readNode: () => resolveAfter(6, {}),
    patchNode: () => resolveAfter(7, {}),
    createEvent: () => resolveAfter(8, undefined),
    close: () => calls.push({ verb: "get", resource: "closed", durationMs: 0, failed: false }),
  } as unknown as KubeApi;
  const timed = timedKubeApi(api, (c) => calls.push(c), () => nowMs);
  assert.deepEqual(await timed.readDeployment("ns", "d"), { metadata: { name: "d" } });
  await timed.patchDeployment("ns", "d", {}, "merge");
  await timed.listPods("ns", {});
  await assert.rejects(timed.deletePod("ns", "p", 0), /gone/);
  await timed.readNode("n");
  await timed.patchNode("n", {}, "strategic");
  await timed.createEvent("ns", {});
  timed.close();
  assert.deepEqual(calls.map((c) => `${c.verb} ${c.resource} ${c.durationMs} ${c.failed}`), [
    "get deployments 2 false",
    "patch deployments 3 false",
    "list pods 4 false",
    "delete pods 5 true",
    "get nodes 6 false",
    "patch nodes 7 false",
    "create events 8 false",
    "get closed 0 false",
  ]);
});

Deno.test("timedLeaseApi: get, create, update (replace) of the Lease", async () => {
  let nowMs = 0;
  const calls: KubeCall[] = [];
  const lease = { record: {}, resourceVersion: "1" };
  const api = {
    get: () => (nowMs += 1, Promise.resolve(lease)),
    create: () => (nowMs += 2, Promise.resolve(lease)),
    replace: () => (nowMs += 3, Promise.reject(new Error("conflict"))),
  } as unknown as LeaseApi;
  const timed = timedLeaseApi(api, (c) => calls.push(c), () => nowMs);
  const signal = new AbortController().signal;
  assert.equal(await timed.get(signal), lease);
  await timed.create({} as never, signal);
  await assert.rejects(timed.replace({} as never, "1", signal), /conflict/);
  assert.deepEqual(calls.map((c) => `${c.verb} ${c.resource} ${c.durationMs} ${c.failed}`), [
    "get leases 1 false",
    "create leases 2 false",
    "update leases 3 true",
  ]);
});
