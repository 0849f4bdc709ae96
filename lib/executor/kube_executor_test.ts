import assert from "node:assert/strict";
import type { V1Deployment, V1Node, V1PodList } from "@kubernetes/client-node";
import { ClusterSchema, ConfigSchema } from "../config/schema.ts";
import type { KubeApi, PatchType } from "../kube/kube_client.ts";
import type { FailoverPlan, NodeFencePlan } from "../policy/policy.ts";
import { KubeExecutor } from "./kube_executor.ts";

interface Call {
  op: string;
  args: unknown[];
}

class FakeKube implements KubeApi {
  calls: Call[] = [];
  fail = new Map<string, number[]>(); // op -> status codes to throw, in order
  annotations: Record<string, Record<string, string>> = {};
  pods: Record<string, string[]> = { "worker-node2": ["lane-original-abc", "lane-original-def"] };
  #maybeFail(op: string) {
    const codes = this.fail.get(op);
    const code = codes?.shift();
    if (code) throw Object.assign(new Error(`HTTP ${code}`), { code });
  }
  readDeployment(namespace: string, name: string): Promise<V1Deployment> {
    this.calls.push({ op: "readDeployment", args: [namespace, name] });
    this.#maybeFail("readDeployment");
    return Promise.resolve({
      metadata: { name, uid: `uid-${name}`, annotations: this.annotations[name] ?? {} },
      spec: { selector: { matchLabels: { app: name } }, template: {} },
    } as V1Deployment);
  }
  patchDeployment(namespace: string, name: string, body: object, type: PatchType) {
    this.calls.push({ op: "patchDeployment", args: [namespace, name, body, type] });
    this.#maybeFail("patchDeployment");
    return Promise.resolve({} as V1Deployment);
  }
  listPods(namespace: string, selectors: { labelSelector?: string; fieldSelector?: string }) {
    this.calls.push({ op: "listPods", args: [namespace, selectors] });
    const node = selectors.fieldSelector!.replace("spec.nodeName=", "");
    return Promise.resolve(
      { items: (this.pods[node] ?? []).map((name) => ({ metadata: { name } })) } as V1PodList,
    );
  }
  deletePod(namespace: string, name: string, grace: number) {
    this.calls.push({ op: "deletePod", args: [namespace, name, grace] });
    this.#maybeFail("deletePod");
    return Promise.resolve();
  }
  nodes: Record<string, V1Node> = {};
  readNode(name: string) {
    this.calls.push({ op: "readNode", args: [name] });
    return Promise.resolve(structuredClone(this.nodes[name] ?? { metadata: { name }, spec: {} }));
  }
  patchNode(name: string, body: object, type: PatchType) {
    this.calls.push({ op: "patchNode", args: [name, body, type] });
    this.#maybeFail("patchNode");
    const spec = (body as {
      spec: {
        unschedulable?: boolean;
        taints?: V1Node["spec"] extends infer S ? S extends { taints?: infer T } ? T : never
          : never;
      };
    }).spec;
    const node = this.nodes[name] ?? { metadata: { name }, spec: {} };
    if (spec.unschedulable) node.spec!.unschedulable = true;
    if (spec.taints) node.spec!.taints = [...(node.spec!.taints ?? []), ...spec.taints];
    this.nodes[name] = node;
    return Promise.resolve(structuredClone(node));
  }
  createEvent(namespace: string, body: object) {
    this.calls.push({ op: "createEvent", args: [namespace, body] });
    this.#maybeFail("createEvent");
    return Promise.resolve();
  }
  close() {}
}

const plan = (over: Partial<FailoverPlan> = {}): FailoverPlan => ({
  workload: "lane",
  namespace: "default",
  asil: "D",
  fttiMs: 100,
  epoch: 2,
  reason: "node-expired",
  nodeFault: true,
  failed: { deployment: "lane-original", node: "worker-node2" },
  active: { deployment: "lane-standby", node: "worker-node3" },
  actions: ["promote", "markDeployments", "deletePods", "events"],
  trigger: {
    targetId: "node/worker-node2",
    expiredAtMs: 0,
    lastHeartbeatAtMs: 0,
    deadlineMs: 0,
    latenessMs: 0,
  },
  ...over,
});

const fence = (over: Partial<NodeFencePlan> = {}): NodeFencePlan => ({
  node: "worker-node2",
  reason: "node-expired",
  cordon: true,
  taint: true,
  events: true,
  trigger: plan().trigger,
  ...over,
});

const executor = (api: FakeKube) =>
  new KubeExecutor({
    api,
    cluster: ClusterSchema.parse({ retryBackoffMs: 1 }),
    supervisorId: "sup",
  });

Deno.test("kube executor: every action with the right patch types, selectors and grace 0", async () => {
  const api = new FakeKube();
  const results = await executor(api).execute(plan());
  const byAction = Object.fromEntries(results.map((r) => [r.action, r]));
  for (const a of ["markActive", "markFailed", "deletePods"]) {
    assert.equal(byAction[a]?.outcome, "done", a);
  }
  const patches = api.calls.filter((c) => c.op === "patchDeployment");
  assert.deepEqual(patches.map((c) => c.args[3]), ["merge", "merge"]);
  const active = patches.find((c) => c.args[1] === "lane-standby")!.args[2] as {
    metadata: { annotations: Record<string, string> };
  };
  assert.equal(active.metadata.annotations["sdv-failover.io/epoch"], "2");
  assert.equal(active.metadata.annotations["sdv-failover.io/role"], "active");
  assert.equal(active.metadata.annotations["sdv-failover.io/active-node"], "worker-node3");
  const list = api.calls.find((c) => c.op === "listPods")!;
  assert.deepEqual(list.args[1], {
    labelSelector: "app=lane-original",
    fieldSelector: "spec.nodeName=worker-node2",
  });
  assert.deepEqual(api.calls.filter((c) => c.op === "deletePod").map((c) => c.args[2]), [0, 0]);
  assert.ok(!api.calls.some((c) => c.op === "patchNode"), "node fencing is its own plan");
  const reasons = api.calls.filter((c) => c.op === "createEvent").map((c) =>
    (c.args[1] as { reason: string }).reason
  ).sort();
  assert.deepEqual(reasons, [
    "FailoverFenced",
    "FailoverPodsDeleted",
    "FailoverPromoted",
  ]);
});

Deno.test("kube executor: sensor fault neither cordons nor taints; no pods means unchanged, no event", async () => {
  const api = new FakeKube();
  api.pods = {};
  const results = await executor(api).execute(
    plan({ nodeFault: false, actions: ["markDeployments", "deletePods", "events"] }),
  );
  assert.ok(!api.calls.some((c) => c.op === "patchNode"));
  assert.equal(results.find((r) => r.action === "deletePods")?.outcome, "unchanged");
  const reasons = api.calls.filter((c) => c.op === "createEvent").map((c) =>
    (c.args[1] as { reason: string }).reason
  );
  assert.ok(!reasons.includes("FailoverPodsDeleted"));
});

Deno.test("kube executor: retries a 503, reports a 403 as failed without retrying, tolerates 404 on delete", async () => {
  const api = new FakeKube();
  api.fail.set("patchNode", [503]);
  api.fail.set("patchDeployment", [403]);
  api.fail.set("deletePod", [404]);
  const results = await executor(api).execute(plan());
  const byAction = Object.fromEntries(results.map((r) => [r.action, r]));
  const [fenced] = await executor(api).fenceNode(fence());
  assert.equal(fenced.outcome, "done");
  assert.equal(fenced.attempts, 3, "one read + a patch retried once after 503");
  const failedMarks = results.filter((r) => r.action.startsWith("mark") && r.outcome === "failed");
  assert.equal(failedMarks.length, 1);
  assert.equal(failedMarks[0].attempts, 1);
  assert.match(failedMarks[0].detail!, /403/);
  assert.equal(byAction.deletePods.outcome, "done");
});

Deno.test("kube executor: fencing observes first, patches only what is missing, strategic merge", async () => {
  const api = new FakeKube();
  api.nodes["worker-node2"] = {
    metadata: { name: "worker-node2" },
    spec: { taints: [{ key: "other", effect: "NoSchedule" }] },
  };
  const ex = executor(api);
  const [first] = await ex.fenceNode(fence());
  assert.equal(first.outcome, "done");
  const patch = api.calls.find((c) => c.op === "patchNode")!;
  assert.equal(patch.args[2], "strategic");
  assert.deepEqual(patch.args[1], {
    spec: {
      unschedulable: true,
      taints: [{ key: "sdv-failover.io/unreachable", value: "sup", effect: "NoExecute" }],
    },
  });
  const events = () => api.calls.filter((c) => c.op === "createEvent").length;
  assert.equal(events(), 1);
  // a second fence of the same node: read only, no write, no Event
  const [second] = await ex.fenceNode(fence());
  assert.equal(second.outcome, "unchanged");
  assert.equal(api.calls.filter((c) => c.op === "patchNode").length, 1);
  assert.equal(events(), 1);
  // concurrent fences share one observe + patch
  api.nodes = {};
  api.calls = [];
  await Promise.all([ex.fenceNode(fence()), ex.fenceNode(fence())]);
  assert.equal(api.calls.filter((c) => c.op === "readNode").length, 1);
  assert.equal(api.calls.filter((c) => c.op === "patchNode").length, 1);
});

Deno.test("kube executor: observe reads the persisted epoch and active node", async () => {
  const api = new FakeKube();
  api.annotations["lane-standby"] = {
    "sdv-failover.io/epoch": "7",
    "sdv-failover.io/active-node": "worker-node3",
  };
  api.annotations["lane-original"] = { "sdv-failover.io/epoch": "6" };
  const config = ConfigSchema.parse({
    nodes: [{ name: "worker-node2", heartbeatPeriodMs: 10, heartbeatTimeoutMs: 30 }, {
      name: "worker-node3",
      heartbeatPeriodMs: 10,
      heartbeatTimeoutMs: 30,
    }],
    workloads: [{
      name: "lane",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "lane-original", node: "worker-node2" },
      standby: { deployment: "lane-standby", node: "worker-node3" },
    }],
  });
  const observed = await executor(api).observe(config);
  assert.deepEqual(observed.get("lane"), { epoch: 7, activeNode: "worker-node3" });
});

Deno.test("kube executor: on a node fault the failed pods are deleted only after the node is fenced", async () => {
  const api = new FakeKube();
  const order: string[] = [];
  const patchNode = api.patchNode.bind(api);
  api.patchNode = async (...args: Parameters<FakeKube["patchNode"]>) => {
    await new Promise((r) => setTimeout(r, 20));
    order.push("patchNode");
    return await patchNode(...args);
  };
  const deletePod = api.deletePod.bind(api);
  api.deletePod = (...args: Parameters<FakeKube["deletePod"]>) => {
    order.push("deletePod");
    return deletePod(...args);
  };
  const ex = executor(api);
  await Promise.all([ex.fenceNode(fence()), ex.execute(plan())]);
  assert.deepEqual(order, ["patchNode", "deletePod", "deletePod"]);
});
