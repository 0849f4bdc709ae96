/**
 * The informer-backed cache and the Kubernetes reconciler against a real control plane
 * (kine + kube-apiserver + controller-manager + scheduler + kwok nodes, `harness/control_plane.ts`),
 * authenticated as the least-privilege runtime identity (config/k3s/rbac.yaml); the operator's
 * `unfence` request is written with the admin identity.
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1. Never builds the binaries (SDV_CP_NO_BUILD=1).
 *
 * @module
 */
import { pinnedDeployment } from "./harness/workloads.ts";
import assert from "node:assert/strict";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { type ControlPlane, startControlPlane } from "./harness/control_plane.ts";
import { ConfigSchema } from "../lib/config/schema.ts";
import { buildTopology } from "../lib/topology/topology.ts";
import { createKubeClient } from "../lib/kube/kube_client.ts";
import { KubeReconciler, type ReconcileReport } from "../lib/reconcile/reconciler.ts";
import { ANNOTATIONS } from "../lib/reconcile/annotations.ts";
import { unfenceCommand } from "../lib/cli/unfence_command.ts";

const SKIP = Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1";
const NODES = ["worker-node1", "worker-node2"];
const NS = "reconcile-cp";
const TAINT = "sdv-failover.io/unreachable";

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test({
  name:
    "control plane: WatchCache + KubeReconciler fence, persist the epoch, delete pods and keep the fence",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    Deno.env.set("SDV_CP_NO_BUILD", "1");
    let cp: ControlPlane | undefined;
    const client = { close: () => {} };
    let reconciler: KubeReconciler | undefined;
    try {
      cp = await startControlPlane({ nodes: NODES });
      const kc = new KubeConfig();
      kc.loadFromFile(cp.adminKubeconfigPath);
      const admin = { apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
      await admin.core.createNamespace({ body: { metadata: { name: NS } } });
      await admin.apps.createNamespacedDeployment({
        namespace: NS,
        body: pinnedDeployment("lane-primary", "worker-node1"),
      });
      await admin.apps.createNamespacedDeployment({
        namespace: NS,
        body: pinnedDeployment("lane-standby", "worker-node2"),
      });

      const config = ConfigSchema.parse({
        cluster: { kubeconfig: cp.runtimeKubeconfigPath, retries: 2 },
        nodes: NODES.map((name) => ({ name, heartbeatPeriodMs: 50, heartbeatTimeoutMs: 200 })),
        workloads: [{
          name: "lane",
          namespace: NS,
          asil: "D",
          fttiMs: 300,
          primary: { deployment: "lane-primary", node: "worker-node1" },
          standby: { deployment: "lane-standby", node: "worker-node2" },
        }],
      });
      const topology = buildTopology(config);
      const kube = createKubeClient({ kubeconfigPath: cp.runtimeKubeconfigPath });
      client.close = () => kube.close();
      const cache = kube.openCache({ namespaces: [NS] });
      const t0 = performance.now();
      const reports: ReconcileReport[] = [];
      const unfenceRequests: string[] = [];
      reconciler = new KubeReconciler({
        topology,
        cluster: config.cluster,
        supervisorId: "cp-test",
        api: kube.api,
        view: cache,
        onReport: (r) => reports.push(r),
        // The supervisor's part: honour the request by setting the node's desired state.
        onUnfenceRequest: (node, at) => {
          unfenceRequests.push(`${node.name} ${at}`);
          reconciler?.setNode({ node, fenced: false, cordon: false, taint: false });
        },
      });
      await reconciler.start(AbortSignal.timeout(30_000));
      console.log(`cache synced in ${(performance.now() - t0).toFixed(1)} ms`);
      const primaryPod = await until(
        "lane-primary pod on worker-node1 in the cache",
        60_000,
        () => cache.pods(NS, { app: "lane-primary" }, "worker-node1")[0],
      );
      assert.equal(reconciler.observed().workloads.get(topology.workloads[0])!.epoch, 0);

      const lane = topology.workloads[0];
      const node1 = topology.node("worker-node1")!;
      await until(
        "lane-standby ready (Running and Ready on worker-node2)",
        60_000,
        () => reconciler!.placementReady(lane.standby).ready ? true : undefined,
      );
      const tSet = performance.now();
      const failedAt = new Date(Date.now() + 1500).toISOString();
      reconciler.setNode({
        node: node1,
        fenced: true,
        cordon: true,
        taint: true,
        reason: "node-expired",
      });
      reconciler.setWorkload({
        workload: lane,
        active: "standby",
        epoch: 1,
        reason: "node-expired",
        removeFailed: true,
        nodeFault: true,
        // decided now: the pods were created seconds ago (≥ 1 s before, Kubernetes timestamps have
        // second resolution; a real failed instance runs far longer)
        failedAt,
      });
      await reconciler.whenIdle();
      console.log(`converged in ${(performance.now() - tSet).toFixed(1)} ms`);
      for (const r of reports) {
        console.log(
          r.key.kind,
          r.converged,
          r.results.map((x) => `${x.action}:${x.outcome}@${x.doneAtMs.toFixed(1)}`).join(" "),
        );
      }
      assert.ok(reports.every((r) => r.converged));

      const node = await admin.core.readNode({ name: "worker-node1" });
      assert.equal(node.spec?.unschedulable, true);
      assert.ok(
        node.spec?.taints?.some((x) =>
          x.key === TAINT && x.effect === "NoExecute" && x.value === "cp-test"
        ),
      );
      assert.equal(node.metadata?.annotations?.[ANNOTATIONS.cordonedBy], "cp-test");
      for (const name of ["lane-primary", "lane-standby"]) {
        const d = await admin.apps.readNamespacedDeployment({ namespace: NS, name });
        assert.equal(d.metadata?.annotations?.[ANNOTATIONS.epoch], "1");
      }
      const pods = await admin.core.listNamespacedPod({
        namespace: NS,
        labelSelector: "app=lane-primary",
      });
      assert.ok(
        !pods.items.some((p) =>
          p.metadata?.uid === primaryPod.uid && !p.metadata?.deletionTimestamp
        ),
      );
      assert.ok(
        !pods.items.some((p) =>
          p.spec?.nodeName === "worker-node1" && !p.metadata?.deletionTimestamp
        ),
      );
      const events = await admin.core.listNamespacedEvent({ namespace: NS });
      assert.ok(events.items.some((e) => e.reason === "FailoverPromoted"));
      assert.deepEqual(reconciler.observed().workloads.get(lane), {
        epoch: 1,
        active: "standby",
        reason: "node-expired",
        failedAt,
      });
      assert.deepEqual(reconciler.placementReady(lane.primary), {
        ready: false,
        why: "node worker-node1 is fenced (our taint)",
      });

      // Someone removes our taint: the reconciler puts it back (it keeps the cluster converged).
      const patches = reports.length;
      const taints = (node.spec?.taints ?? []).filter((x) => x.key !== TAINT);
      await admin.core.patchNode(
        { name: "worker-node1", body: { spec: { taints } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      const tRemoved = performance.now();
      await until("our taint restored", 10_000, async () => {
        const n = await admin.core.readNode({ name: "worker-node1" });
        return n.spec?.taints?.some((x) => x.key === TAINT) ? true : undefined;
      });
      console.log(
        `taint restored ${(performance.now() - tRemoved).toFixed(1)} ms after its removal`,
      );
      // the pass that restored it reports once its write is acknowledged (the admin's read may
      // see the taint a moment before)
      await until(
        "the restoring pass reported",
        5000,
        () => Promise.resolve(reports.length > patches ? true : undefined),
      );

      // Un-fence round trip: an operator taint added while fenced stays; our taint, our cordon
      // and our annotations go; the failed side's replacement is scheduled and becomes ready.
      const fenced = await admin.core.readNode({ name: "worker-node1" });
      const operatorTaint = { key: "operator/maintenance", value: "x", effect: "PreferNoSchedule" };
      await admin.core.patchNode(
        {
          name: "worker-node1",
          body: { spec: { taints: [...(fenced.spec?.taints ?? []), operatorTaint] } },
        },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      const lines: string[] = [];
      const tRequest = performance.now();
      assert.equal(
        await unfenceCommand({
          config,
          nodeName: "worker-node1",
          kubeconfigPath: cp.adminKubeconfigPath,
          out: (l) => lines.push(l),
          err: (l) => lines.push(l),
        }),
        0,
        lines.join("\n"),
      );
      const unfenced = await until("worker-node1 unfenced", 10_000, async () => {
        const n = await admin.core.readNode({ name: "worker-node1" });
        const a = n.metadata?.annotations ?? {};
        return !n.spec?.unschedulable && !n.spec?.taints?.some((x) => x.key === TAINT) &&
            !(ANNOTATIONS.cordonedBy in a) && !(ANNOTATIONS.fenceReason in a) &&
            !(ANNOTATIONS.unfenceRequested in a)
          ? n
          : undefined;
      });
      console.log(`unfenced ${(performance.now() - tRequest).toFixed(1)} ms after the request`);
      assert.equal(unfenceRequests.length, 1);
      assert.deepEqual(
        unfenced.spec?.taints?.filter((x) => x.key === operatorTaint.key).map((x) => x.effect),
        ["PreferNoSchedule"],
      );
      const unfenceEvents = await admin.core.listNamespacedEvent({ namespace: "default" });
      assert.ok(unfenceEvents.items.some((e) => e.reason === "FailoverUnfenced"));
      assert.equal(reconciler.observed().fencedNodes.size, 0);
      await until(
        "lane-primary ready again on worker-node1",
        60_000,
        () => reconciler!.placementReady(lane.primary).ready ? true : undefined,
      );
    } finally {
      await reconciler?.close();
      client.close();
      await cp?.stop();
    }
  },
});
