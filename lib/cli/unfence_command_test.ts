import assert from "node:assert/strict";
import {
  FakeKubeApi,
  seededCluster,
  testConfig,
  testTopology,
} from "../../tests/fakes/fake_kube.ts";
import { ANNOTATIONS } from "../reconcile/annotations.ts";
import {
  UNFENCE_FAILED,
  UNFENCE_OK,
  UNFENCE_UNKNOWN_NODE,
  unfenceCommand,
} from "./unfence_command.ts";

const AT_MS = Date.parse("2026-12-02T08:00:00.000Z");

function setup() {
  const cluster = seededCluster(testTopology());
  const api = new FakeKubeApi(cluster);
  const connected: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const run = (nodeName: string, kubeconfigPath?: string) =>
    unfenceCommand({
      config: testConfig(),
      nodeName,
      kubeconfigPath,
      connect: (path) => (connected.push(path), api),
      wallNowMs: () => AT_MS,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
    });
  return { cluster, api, connected, out, err, run };
}

Deno.test("unfence: writes the request annotation (merge patch, metadata only) and exits 0", async () => {
  const { cluster, api, connected, out, err, run } = setup();
  cluster.mutateNode("worker-node2", (n) => {
    n.unschedulable = true;
    n.annotations[ANNOTATIONS.cordonedBy] = "sup-a";
  });
  assert.equal(await run("worker-node2"), UNFENCE_OK);
  assert.deepEqual(connected, ["/etc/rancher/k3s/k3s.yaml"]); // the config's kubeconfig
  assert.deepEqual(api.calls.map((c) => [c.op, c.name, c.type, c.result]), [
    ["patchNode", "worker-node2", "merge", "ok"],
  ]);
  assert.deepEqual(api.calls[0].body, {
    metadata: { annotations: { [ANNOTATIONS.unfenceRequested]: "2026-12-02T08:00:00.000Z" } },
  });
  const node = cluster.server.nodes.get("worker-node2")!;
  assert.equal(node.annotations[ANNOTATIONS.unfenceRequested], "2026-12-02T08:00:00.000Z");
  // The fence itself is the supervisor's business: untouched.
  assert.equal(node.unschedulable, true);
  assert.equal(node.annotations[ANNOTATIONS.cordonedBy], "sup-a");
  assert.ok(api.closed);
  assert.deepEqual(err, []);
  assert.match(out[0], /^node\/worker-node2: unfence requested at 2026-12-02T08:00:00\.000Z/);
});

Deno.test("unfence: --kubeconfig overrides the config's", async () => {
  const { connected, run } = setup();
  assert.equal(await run("worker-node1", "/home/op/.kube/config"), UNFENCE_OK);
  assert.deepEqual(connected, ["/home/op/.kube/config"]);
});

Deno.test("unfence: a node not in the config exits 2 and calls nothing", async () => {
  const { api, connected, out, err, run } = setup();
  assert.equal(await run("worker-node9"), UNFENCE_UNKNOWN_NODE);
  assert.equal(UNFENCE_UNKNOWN_NODE, 2);
  assert.deepEqual(connected, []);
  assert.deepEqual(api.calls, []);
  assert.deepEqual(out, []);
  assert.match(err[0], /"worker-node9" is not in the config; configured nodes: worker-node1, /);
});

Deno.test("unfence: API errors exit 1 (404: the Node is not in the cluster; 403; network)", async () => {
  const { cluster, api, err, run } = setup();
  cluster.server.nodes.delete("worker-node3");
  assert.equal(await run("worker-node3"), UNFENCE_FAILED);
  assert.equal(UNFENCE_FAILED, 1);
  assert.match(err.at(-1)!, /node\/worker-node3: no such Node in the cluster \(HTTP 404\)/);
  api.fail("patchNode", 403);
  assert.equal(await run("worker-node1"), UNFENCE_FAILED);
  assert.match(err.at(-1)!, /HTTP 403/);
  api.fail("patchNode", () => new TypeError("connection refused"));
  assert.equal(await run("worker-node1"), UNFENCE_FAILED);
  assert.match(err.at(-1)!, /connection refused/);
  assert.equal(
    cluster.server.nodes.get("worker-node1")!.annotations[ANNOTATIONS.unfenceRequested],
    undefined,
  );
});

Deno.test("unfence: an unloadable kubeconfig exits 1", async () => {
  const out: string[] = [];
  const err: string[] = [];
  const code = await unfenceCommand({
    config: testConfig(),
    nodeName: "worker-node1",
    connect: () => {
      throw new Error("ENOENT: no such file");
    },
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  assert.equal(code, UNFENCE_FAILED);
  assert.match(err[0], /cannot load kubeconfig \/etc\/rancher\/k3s\/k3s\.yaml: ENOENT/);
});
