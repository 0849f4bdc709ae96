import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { buildTopology } from "../topology/topology.ts";
import { checkPromotion } from "./promotion_check.ts";
import type { Promotion } from "./wire.ts";

const topology = buildTopology(ConfigSchema.parse({
  supervisor: { id: "sup" },
  nodes: ["n1", "n2", "n3"].map((name) => ({
    name,
    heartbeatPeriodMs: 10,
    heartbeatTimeoutMs: 30,
  })),
  workloads: [{
    name: "w",
    asil: "D",
    fttiMs: 100,
    primary: { deployment: "w-a", node: "n1" },
    standby: { deployment: "w-b", node: "n2" },
  }],
}));
const w = topology.workload("w")!;

function p(overrides: Partial<Promotion>): Promotion {
  return {
    v: 1,
    workload: "w",
    namespace: "default",
    activeNode: "n2",
    activeDeployment: "w-b",
    failedNode: "n1",
    epoch: 2,
    reason: "node-expired",
    issuer: "sup",
    issuedAt: "2026-12-02T00:00:00Z",
    ...overrides,
  };
}

Deno.test("checkPromotion: issuers come from the config's supervisor id", () => {
  assert.deepEqual([...w.issuers], ["sup"]);
  assert.equal(checkPromotion(w, p({}), undefined).kind, "obey");
  const v = checkPromotion(w, p({ issuer: "mallory" }), undefined);
  assert.equal(v.kind === "refused" && v.reason, "unknown-issuer");
});

Deno.test("checkPromotion: the active node must be one of the workload's two placements", () => {
  assert.equal(checkPromotion(w, p({ activeNode: "n1" }), undefined).kind, "obey");
  for (const activeNode of ["nowhere", "n3", ""]) {
    const v = checkPromotion(w, p({ activeNode }), undefined);
    assert.equal(v.kind === "refused" && v.reason, "foreign-active-node", activeNode);
  }
});

Deno.test("checkPromotion: an epoch held with another active node is refused; lower or repeated is stale", () => {
  const held = { epoch: 2, activeNode: "n2" };
  assert.equal(checkPromotion(w, p({}), held).kind, "stale", "the same again");
  assert.equal(checkPromotion(w, p({ epoch: 1, activeNode: "n1" }), held).kind, "stale");
  const v = checkPromotion(w, p({ activeNode: "n1" }), held);
  assert.equal(v.kind === "refused" && v.reason, "epoch-reused");
  assert.equal(checkPromotion(w, p({ epoch: 3, activeNode: "n1" }), held).kind, "obey");
  // nothing held yet (epoch 0): any epoch ≥ 1 is new
  assert.equal(checkPromotion(w, p({ epoch: 1 }), { epoch: 0, activeNode: "n1" }).kind, "obey");
});
