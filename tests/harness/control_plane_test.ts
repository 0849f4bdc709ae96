/**
 * Smoke test of the control-plane harness: real scheduler places a pinned pod on a
 * kwok node, the runtime identity has exactly the RBAC of config/k3s/rbac.yaml, and
 * killing a node's kwok stops its Lease renewals.
 *
 * Skipped with SDV_SKIP_CONTROLPLANE=1. Builds the binaries on first use (≈ 9 min)
 * unless SDV_CP_NO_BUILD=1.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { startControlPlane } from "./control_plane.ts";

const NODES = ["worker-node1", "worker-node2", "worker-node3"];

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `intervalMs` until it returns a value, or throws after `timeoutMs`. */
async function pollUntil<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
  intervalMs = 100,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const v = await check();
    if (v !== undefined) return v;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Runs `fn` and returns the HTTP status of the ApiException it throws (or 200 if none). */
async function statusOf(fn: () => Promise<unknown>): Promise<number> {
  try {
    await fn();
    return 200;
  } catch (e) {
    if (e instanceof k8s.ApiException) return e.code;
    throw e;
  }
}

function kubeConfig(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

Deno.test({
  name: "control plane: scheduler + kwok nodes + runtime RBAC + node power loss",
  ignore: Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1",
  // client-node closes its sockets asynchronously; child processes are reaped by stop().
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const tStart = performance.now();
    const cp = await startControlPlane({
      nodes: NODES,
      log: (l) => console.log(`[cp] ${l}`),
    });
    try {
      const startS = (performance.now() - tStart) / 1000;
      console.log(`control plane up, all nodes Ready: ${startS.toFixed(2)} s (${cp.server})`);
      assert.match(cp.server, /^https:\/\/127\.0\.0\.1:\d+$/);

      const admin = kubeConfig(cp.adminKubeconfigPath);
      const runtime = kubeConfig(cp.runtimeKubeconfigPath);
      const adminCore = admin.makeApiClient(k8s.CoreV1Api);
      const adminApps = admin.makeApiClient(k8s.AppsV1Api);
      const adminCoord = admin.makeApiClient(k8s.CoordinationV1Api);
      const rtCore = runtime.makeApiClient(k8s.CoreV1Api);
      const rtApps = runtime.makeApiClient(k8s.AppsV1Api);

      // ---- nodes as created by the harness --------------------------------------
      const nodes = await adminCore.listNode();
      assert.deepEqual(nodes.items.map((n) => n.metadata?.name).sort(), NODES);
      for (const n of nodes.items) {
        assert.equal(n.metadata?.labels?.["kubernetes.io/hostname"], n.metadata?.name);
        const ready = n.status?.conditions?.find((c) => c.type === "Ready");
        assert.equal(ready?.status, "True", `${n.metadata?.name} Ready`);
      }

      // ---- a pinned Deployment is scheduled and made Running ----------------------
      const tDeploy = performance.now();
      await adminApps.createNamespacedDeployment({
        namespace: "default",
        body: {
          metadata: { name: "probe", labels: { app: "probe" } },
          spec: {
            replicas: 1,
            selector: { matchLabels: { app: "probe" } },
            template: {
              metadata: { labels: { app: "probe" } },
              spec: {
                nodeSelector: { "kubernetes.io/hostname": "worker-node2" },
                containers: [{ name: "probe", image: "registry.local/probe:1" }],
              },
            },
          },
        },
      });
      const pod = await pollUntil("probe pod Running on worker-node2", 60_000, async () => {
        const pods = await adminCore.listNamespacedPod({
          namespace: "default",
          labelSelector: "app=probe",
        });
        return pods.items.find((p) =>
          p.status?.phase === "Running" && p.spec?.nodeName === "worker-node2"
        );
      }, 50);
      const podMs = performance.now() - tDeploy;
      console.log(
        `probe pod ${pod.metadata?.name} Running on worker-node2 ${
          podMs.toFixed(0)
        } ms after create`,
      );
      // DefaultTolerationSeconds admission is on: the K3s 300 s tolerations are there.
      const unreachable = pod.spec?.tolerations?.find((t) =>
        t.key === "node.kubernetes.io/unreachable"
      );
      assert.equal(unreachable?.tolerationSeconds, 300);

      // ---- runtime identity: allowed -------------------------------------------------
      const smp = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch);
      const cordoned = await rtCore.patchNode(
        { name: "worker-node1", body: { spec: { unschedulable: true } } },
        smp,
      );
      assert.equal(cordoned.spec?.unschedulable, true);
      const uncordoned = await rtCore.patchNode(
        { name: "worker-node1", body: { spec: { unschedulable: null } } },
        smp,
      );
      assert.ok(!uncordoned.spec?.unschedulable, "uncordoned");
      const rtPods = await rtCore.listPodForAllNamespaces();
      assert.ok(rtPods.items.some((p) => p.metadata?.name === pod.metadata?.name));
      const rtPodsOnNode = await rtCore.listPodForAllNamespaces({
        fieldSelector: "spec.nodeName=worker-node2",
      });
      assert.equal(rtPodsOnNode.items.length, 1);

      // ---- runtime identity: forbidden -----------------------------------------------
      assert.equal(
        await statusOf(() => rtCore.listNamespacedSecret({ namespace: "kube-system" })),
        403,
        "runtime must not list secrets",
      );
      assert.equal(
        await statusOf(() => rtCore.listSecretForAllNamespaces()),
        403,
        "runtime must not list secrets cluster-wide",
      );
      assert.equal(
        await statusOf(() =>
          rtApps.deleteNamespacedDeployment({ name: "probe", namespace: "default" })
        ),
        403,
        "runtime must not delete deployments",
      );
      // The deployment is still there.
      await adminApps.readNamespacedDeployment({ name: "probe", namespace: "default" });

      // ---- the in-cluster ServiceAccount gets exactly the same rules (SubjectAccessReview) --
      const authz = admin.makeApiClient(k8s.AuthorizationV1Api);
      const can = async (
        verb: string,
        resource: string,
        group = "",
        namespace = "default",
        name?: string,
      ): Promise<boolean> => {
        const sar = await authz.createSubjectAccessReview({
          body: {
            spec: {
              user: "system:serviceaccount:kube-system:sdv-failover",
              groups: ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
              resourceAttributes: { verb, resource, group, namespace, name },
            },
          },
        });
        return sar.status?.allowed === true;
      };
      const lease = ["leases", "coordination.k8s.io"] as const;
      const allowed: [string, string, string?, string?, string?][] = [
        ["patch", "nodes"],
        ["watch", "pods"],
        ["delete", "pods"],
        ["patch", "deployments", "apps"],
        ["create", "events"],
        // the supervisor pair's one Lease
        ["get", ...lease, "kube-system", "sdv-failover"],
        ["update", ...lease, "kube-system", "sdv-failover"],
        ["create", ...lease, "kube-system"],
      ];
      const denied: [string, string, string?, string?, string?][] = [
        ["get", "secrets"],
        ["delete", "nodes"],
        ["create", "pods"],
        ["create", "deployments", "apps"],
        ["delete", "deployments", "apps"],
        ["get", "configmaps"],
        // rbac.yaml holds only the verbs the runtime's calls use (lib/kube/rbac_rules_test.ts)
        ["get", "pods"],
        ["patch", "events"],
        ["delete", ...lease, "kube-system", "sdv-failover"],
        ["patch", ...lease, "kube-system", "sdv-failover"],
        ["list", ...lease, "kube-system"],
        ["update", ...lease, "kube-system", "another-lease"],
        ["update", ...lease, "default", "sdv-failover"],
        ["create", ...lease, "default"],
        ["update", ...lease, "kube-node-lease", "worker-node1"],
      ];
      for (const [verb, res, group, ns, name] of allowed) {
        assert.equal(await can(verb, res, group, ns, name), true, `SA may ${verb} ${res} ${name}`);
      }
      for (const [verb, res, group, ns, name] of denied) {
        assert.equal(
          await can(verb, res, group, ns, name),
          false,
          `SA must not ${verb} ${res} ${ns}/${name}`,
        );
      }

      // ---- power loss: the Lease of the killed node stops moving ------------------------
      const renewMs = async (name: string): Promise<number> => {
        const lease = await adminCoord.readNamespacedLease({
          name,
          namespace: "kube-node-lease",
        });
        const t = lease.spec?.renewTime;
        assert.ok(t, `lease ${name} has renewTime`);
        return new Date(t).getTime();
      };
      await cp.killNode("worker-node3");
      await sleep(500); // let an in-flight renewal (sent before the kill) land
      const frozen = await renewMs("worker-node3");
      const tKill = performance.now();
      const seen: Record<string, number[]> = { "worker-node1": [], "worker-node2": [] };
      for (const n of Object.keys(seen)) seen[n].push(await renewMs(n));
      // renewTime is the time of the last renewal, so consecutive distinct values are
      // exact renewal intervals. Watch ≥ 12 s and until every live node renewed once.
      await pollUntil("12 s of observation and one full renewal interval", 45_000, async () => {
        assert.equal(await renewMs("worker-node3"), frozen, "killed node's lease must not move");
        for (const n of Object.keys(seen)) {
          const t = await renewMs(n);
          if (t !== seen[n].at(-1)) seen[n].push(t);
        }
        const observedMs = performance.now() - tKill;
        const full = Object.values(seen).every((ts) => ts.length >= 2);
        return observedMs >= 12_000 && full ? true : undefined;
      }, 250);
      const intervals = Object.fromEntries(
        Object.entries(seen).map((
          [n, ts],
        ) => [n, ts.slice(1).map((t, i) => ((t - ts[i]) / 1000).toFixed(2) + " s")]),
      );
      console.log(
        `worker-node3 lease frozen for ${((performance.now() - tKill) / 1000).toFixed(1)} s; ` +
          `live lease renewal intervals: ${JSON.stringify(intervals)}`,
      );
      for (const n of Object.keys(seen)) {
        assert.ok(seen[n].length >= 2, `live node ${n} kept renewing its lease`);
      }
    } finally {
      await cp.stop();
    }
    await cp.stop(); // idempotent
  },
});
