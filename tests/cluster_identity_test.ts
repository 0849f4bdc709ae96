/**
 * `cluster-identity` on a real kube-apiserver (tests/harness/control_plane.ts): the command,
 * run with the admin kubeconfig, writes a kubeconfig holding a TokenRequest token of the
 * ServiceAccount kube-system/sdv-failover; with it, every call the runtime makes succeeds
 * (through the runtime's own client, `createKubeClient`: the watch-backed cache of nodes, pods
 * and deployments, node read/patch, pod deletion, deployment read/patch, Events, the pair's
 * Lease), and what it must not do is a real 403 from the API server (secrets, creating or
 * deleting Deployments, exec into a pod, another Lease, …). Deleting the ServiceAccount revokes
 * the token (401).
 *
 * Skipped with SDV_SKIP_CONTROLPLANE=1.
 */
import assert from "node:assert/strict";
import * as k8s from "@kubernetes/client-node";
import { parse } from "yaml";
import { startControlPlane } from "./harness/control_plane.ts";
import {
  clusterIdentityCommand,
  IDENTITY_FAILED,
  IDENTITY_OK,
} from "../lib/cli/cluster_identity_command.ts";
import { createKubeClient } from "../lib/kube/kube_client.ts";

const NODE = "worker-node1";
const NS = "default";

/** The HTTP status of the ApiException `fn` throws (200 when none). */
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
  name: "cluster-identity: the generated kubeconfig may do what the runtime does, and nothing else",
  ignore: Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const cp = await startControlPlane({ nodes: [NODE], log: (l) => console.log(`[cp] ${l}`) });
    const closers: (() => void)[] = [];
    try {
      const admin = kubeConfig(cp.adminKubeconfigPath);
      const adminCore = admin.makeApiClient(k8s.CoreV1Api);
      const adminApps = admin.makeApiClient(k8s.AppsV1Api);
      const adminCoord = admin.makeApiClient(k8s.CoordinationV1Api);

      // ---- fixtures (admin) -------------------------------------------------------------
      await adminApps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name: "app", labels: { app: "app" } },
          spec: {
            replicas: 0,
            selector: { matchLabels: { app: "app" } },
            template: {
              metadata: { labels: { app: "app" } },
              spec: { containers: [{ name: "app", image: "registry.local/app:1" }] },
            },
          },
        },
      });
      for (const name of ["victim", "bystander"]) {
        await adminCore.createNamespacedPod({
          namespace: NS,
          body: {
            metadata: { name, labels: { app: name } },
            spec: { nodeName: NODE, containers: [{ name, image: "registry.local/x:1" }] },
          },
        });
      }
      await adminCore.createNamespacedSecret({
        namespace: "kube-system",
        body: { metadata: { name: "precious" }, stringData: { key: "value" } },
      });
      await adminCoord.createNamespacedLease({
        namespace: "kube-system",
        body: { metadata: { name: "another-lease" }, spec: { holderIdentity: "someone" } },
      });

      // ---- the command ----------------------------------------------------------------
      const outPath = `${cp.workDir}/supervisor.kubeconfig`;
      const out: string[] = [];
      const err: string[] = [];
      const code = await clusterIdentityCommand({
        adminKubeconfigPath: cp.adminKubeconfigPath,
        outPath,
        duration: "1h",
        out: (l) => out.push(l),
        err: (l) => err.push(l),
      });
      assert.equal(code, IDENTITY_OK, err.join("\n"));
      console.log(out.join("\n"));
      assert.equal((await Deno.stat(outPath)).mode! & 0o777, 0o600);
      const written = parse(await Deno.readTextFile(outPath));
      const token: string = written.users[0].user.token;
      assert.ok(token.length > 100, "a JWT");
      assert.deepEqual(Object.keys(written.users[0].user), ["token"], "no client certificate");
      for (const line of [...out, ...err]) assert.ok(!line.includes(token), "token printed");
      assert.equal(written.clusters[0].cluster.server, cp.server);
      // The token expires as asked (1 h, ± a minute).
      const exp = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")))
        .exp as number;
      assert.ok(Math.abs(exp * 1000 - Date.now() - 3_600_000) < 60_000, `exp ${exp}`);

      // A ServiceAccount that rbac.yaml does not bind: refused, nothing written.
      await adminCore.createNamespacedServiceAccount({
        namespace: "kube-system",
        body: { metadata: { name: "intruder" } },
      });
      const refused: string[] = [];
      assert.equal(
        await clusterIdentityCommand({
          adminKubeconfigPath: cp.adminKubeconfigPath,
          outPath: `${cp.workDir}/intruder.kubeconfig`,
          name: "intruder",
          err: (l) => refused.push(l),
          out: () => {},
        }),
        IDENTITY_FAILED,
      );
      assert.match(refused[0], /ClusterRoleBinding sdv-failover does not bind ServiceAccount/);
      await assert.rejects(Deno.stat(`${cp.workDir}/intruder.kubeconfig`));

      // ---- who the token is -------------------------------------------------------------
      const id = kubeConfig(outPath);
      const review = await id.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({
        body: {},
      });
      assert.equal(
        review.status?.userInfo?.username,
        "system:serviceaccount:kube-system:sdv-failover",
      );

      // ---- allowed: the runtime's own calls, through the runtime's client ---------------
      const client = createKubeClient({ kubeconfigPath: outPath, requestTimeoutMs: 5000 });
      closers.push(() => client.close());
      const cache = client.openCache({ namespaces: [NS] }); // list + watch nodes, pods, deployments
      closers.unshift(() => cache.close());
      await cache.start(AbortSignal.timeout(20_000));
      const api = client.api;
      assert.equal((await api.readNode(NODE)).metadata?.name, NODE);
      await api.patchNode(
        NODE,
        { metadata: { annotations: { "sdv-failover.io/identity-test": "1" } } },
        "merge",
      );
      await api.patchNode(NODE, { spec: { unschedulable: true } }, "strategic");
      await api.patchNode(NODE, { spec: { unschedulable: false } }, "strategic");
      const onNode = await api.listPods(NS, { fieldSelector: `spec.nodeName=${NODE}` });
      assert.ok(onNode.items.some((p) => p.metadata?.name === "victim"));
      await api.deletePod(NS, "victim", 0);
      assert.equal((await api.readDeployment(NS, "app")).metadata?.name, "app");
      await api.patchDeployment(
        NS,
        "app",
        { metadata: { annotations: { "sdv-failover.io/epoch": "1" } } },
        "merge",
      );
      await api.createEvent(NS, {
        metadata: { generateName: "app." },
        involvedObject: { kind: "Deployment", namespace: NS, name: "app", apiVersion: "apps/v1" },
        reason: "IdentityTest",
        message: "the supervisor's identity may record events",
        type: "Normal",
        source: { component: "sdv-failover" },
      });
      // The supervisor pair's Lease: create (first candidate), get, update.
      const lease = client.leaseApi("kube-system", "sdv-failover");
      const signal = AbortSignal.timeout(10_000);
      const record = {
        holderIdentity: "supervisor-a",
        leaseDurationMs: 400,
        acquireTime: new Date(),
        renewTime: new Date(),
        leaseTransitions: 0,
      };
      const created = await lease.create(record, signal);
      const got = await lease.get(signal);
      await lease.replace({ ...record, renewTime: new Date() }, got.resourceVersion, signal);
      assert.ok(created.resourceVersion);

      // ---- forbidden: real 403s from the API server -------------------------------------
      const core = id.makeApiClient(k8s.CoreV1Api);
      const apps = id.makeApiClient(k8s.AppsV1Api);
      const coord = id.makeApiClient(k8s.CoordinationV1Api);
      const forbidden: [string, () => Promise<unknown>][] = [
        [
          "read a secret",
          () => core.readNamespacedSecret({ namespace: "kube-system", name: "precious" }),
        ],
        ["list secrets", () => core.listSecretForAllNamespaces()],
        ["read a configmap", () => core.listNamespacedConfigMap({ namespace: "kube-system" })],
        ["create a Deployment", () =>
          apps.createNamespacedDeployment({
            namespace: NS,
            body: {
              metadata: { name: "evil" },
              spec: {
                selector: { matchLabels: { app: "evil" } },
                template: {
                  metadata: { labels: { app: "evil" } },
                  spec: { containers: [{ name: "evil", image: "registry.local/evil:1" }] },
                },
              },
            },
          })],
        [
          "delete a Deployment",
          () => apps.deleteNamespacedDeployment({ namespace: NS, name: "app" }),
        ],
        ["exec into a pod", () =>
          core.connectPostNamespacedPodExec({
            namespace: NS,
            name: "bystander",
            command: "sh",
            stdout: true,
          })],
        [
          "read a pod by name (no get)",
          () => core.readNamespacedPod({ namespace: NS, name: "bystander" }),
        ],
        ["create a pod", () =>
          core.createNamespacedPod({
            namespace: NS,
            body: {
              metadata: { name: "evil" },
              spec: { containers: [{ name: "evil", image: "registry.local/evil:1" }] },
            },
          })],
        ["delete a node", () => core.deleteNode({ name: NODE })],
        [
          "update a node",
          () => core.replaceNode({ name: NODE, body: { metadata: { name: NODE } } }),
        ],
        [
          "read another Lease",
          () => coord.readNamespacedLease({ namespace: "kube-system", name: "another-lease" }),
        ],
        ["update another Lease", () =>
          coord.replaceNamespacedLease({
            namespace: "kube-system",
            name: "another-lease",
            body: { metadata: { name: "another-lease" }, spec: { holderIdentity: "mallory" } },
          })],
        ["update a node's Lease", () =>
          coord.replaceNamespacedLease({
            namespace: "kube-node-lease",
            name: NODE,
            body: { metadata: { name: NODE }, spec: { holderIdentity: "mallory" } },
          })],
        ["create a Lease outside kube-system", () =>
          coord.createNamespacedLease({
            namespace: NS,
            body: { metadata: { name: "sdv-failover" }, spec: {} },
          })],
        [
          "delete its own Lease",
          () => coord.deleteNamespacedLease({ namespace: "kube-system", name: "sdv-failover" }),
        ],
        ["list Leases", () => coord.listNamespacedLease({ namespace: "kube-system" })],
        ["request a token", () =>
          core.createNamespacedServiceAccountToken({
            namespace: "kube-system",
            name: "sdv-failover",
            body: { spec: { audiences: [] } },
          })],
      ];
      for (const [what, call] of forbidden) {
        assert.equal(await statusOf(call), 403, `the supervisor's identity must not ${what}`);
      }
      // The admin sees the fixtures untouched.
      await adminApps.readNamespacedDeployment({ namespace: NS, name: "app" });
      await adminCore.readNamespacedSecret({ namespace: "kube-system", name: "precious" });

      // ---- revocation: deleting the ServiceAccount invalidates the token ------------------
      await adminCore.deleteNamespacedServiceAccount({
        namespace: "kube-system",
        name: "sdv-failover",
      });
      const revoked = await (async () => {
        // The API server caches a successful token authentication for up to 10 s.
        for (let i = 0; i < 150; i++) {
          const s = await statusOf(() => core.listNode());
          if (s === 401) return s;
          await new Promise((r) => setTimeout(r, 100));
        }
        return statusOf(() => core.listNode());
      })();
      assert.equal(revoked, 401, "a deleted ServiceAccount's token is rejected");
    } finally {
      for (const close of closers) close();
      await cp.stop();
    }
  },
});
