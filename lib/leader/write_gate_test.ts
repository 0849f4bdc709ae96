import assert from "node:assert/strict";
import type { KubeApi } from "../kube/kube_api.ts";
import { httpStatusOf } from "../reconcile/retry.ts";
import { gateWrites, NotLeaderError } from "./write_gate.ts";

Deno.test("writes pass only while leading; reads always; the refusal is retryable", async () => {
  const calls: string[] = [];
  const record = (name: string) => (..._args: unknown[]) => {
    calls.push(name);
    return Promise.resolve({} as never);
  };
  const api = {
    readDeployment: record("readDeployment"),
    patchDeployment: record("patchDeployment"),
    listPods: record("listPods"),
    deletePod: record("deletePod"),
    readNode: record("readNode"),
    patchNode: record("patchNode"),
    createEvent: record("createEvent"),
    close: () => calls.push("close"),
  } as unknown as KubeApi;
  let leading = false;
  const gated = gateWrites(api, () => leading);
  const writes = [
    () => gated.patchDeployment("ns", "d", {}, "merge"),
    () => gated.deletePod("ns", "p", 0),
    () => gated.patchNode("n", {}, "strategic"),
    () => gated.createEvent("ns", {}),
  ];
  for (const write of writes) {
    await assert.rejects(write(), (e) => {
      assert(e instanceof NotLeaderError);
      assert.match(e.message, /withheld: this supervisor does not lead its pair/);
      assert.equal(httpStatusOf(e), undefined, "retryable: no HTTP status");
      return true;
    });
  }
  await gated.readDeployment("ns", "d");
  await gated.listPods("ns", {});
  await gated.readNode("n");
  assert.deepEqual(calls, ["readDeployment", "listPods", "readNode"]);
  leading = true;
  for (const write of writes) await write();
  assert.deepEqual(calls.slice(3), ["patchDeployment", "deletePod", "patchNode", "createEvent"]);
});
