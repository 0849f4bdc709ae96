/**
 * The supervisor pair's K3s manifest (`packaging/k3s/supervisor-pair.yaml` as
 * `scripts/package.ts` fills it, without building a package): the ids of the config are the
 * StatefulSet's pod names that each pod passes as `run --id`, the two pods never share a host,
 * the config is valid and names the Lease the RBAC manifest grants; and the API server accepts the
 * objects (server-side dry run on the real control plane; skipped with SDV_SKIP_CONTROLPLANE=1).
 */
import assert from "node:assert/strict";
import { AppsV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { parseConfig } from "../lib/config/load.ts";
import { pairManifest } from "../scripts/package.ts";
import { startControlPlane } from "./harness/control_plane.ts";

const SKIP_CP = Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1";
const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

// deno-lint-ignore no-explicit-any
type Doc = any;

async function manifest(): Promise<{ cm: Doc; sts: Doc; text: string }> {
  const text = pairManifest(
    await read("packaging/k3s/supervisor-pair.yaml"),
    await read("config/example.yaml"),
    { VERSION: "0.0.0-test" },
  );
  const docs = parseAllDocuments(text).map((d) => d.toJS());
  return {
    cm: docs.find((d) => d?.kind === "ConfigMap"),
    sts: docs.find((d) => d?.kind === "StatefulSet"),
    text,
  };
}

Deno.test("pair manifest: the config's pair ids are the pods' names, passed as run --id", async () => {
  const { cm, sts, text } = await manifest();
  assert.ok(cm && sts);
  assert.doesNotMatch(text, /@[A-Z_]+@/, "every placeholder filled");
  assert.equal(sts.spec.replicas, 2);
  const config = parseConfig(cm.data["config.yaml"]);
  assert.deepEqual(config.supervisor.pair?.ids, [
    `${sts.metadata.name}-0`,
    `${sts.metadata.name}-1`,
  ]);
  assert.equal(config.cluster.inCluster, true);
  // the pod's volume is this ConfigMap
  const pod = sts.spec.template.spec;
  assert.equal(
    pod.volumes.find((v: Doc) => v.name === "config").configMap.name,
    cm.metadata.name,
  );
  const c = pod.containers[0];
  const at = c.command.indexOf("--id");
  assert.ok(at > 0, "run --id given");
  assert.equal(c.command[at + 1], "$(SDV_ID)");
  const env = c.env.find((e: Doc) => e.name === "SDV_ID");
  assert.equal(env.valueFrom.fieldRef.fieldPath, "metadata.name");
});

Deno.test("pair manifest: the two pods never share a host; least privilege as the single pod", async () => {
  const { sts } = await manifest();
  const spec = sts.spec.template.spec;
  const terms = spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  assert.equal(terms.length, 1);
  assert.equal(terms[0].topologyKey, "kubernetes.io/hostname");
  // the anti-affinity selects the StatefulSet's own pods
  for (const [k, v] of Object.entries(terms[0].labelSelector.matchLabels)) {
    assert.equal(sts.spec.template.metadata.labels[k], v, k);
  }
  assert.deepEqual(sts.spec.selector.matchLabels, terms[0].labelSelector.matchLabels);
  assert.equal(spec.hostNetwork, true);
  assert.equal(spec.serviceAccountName, "sdv-failover");
  assert.equal(spec.containers[0].securityContext.allowPrivilegeEscalation, false);
});

Deno.test("pair manifest: the RBAC Role grants get/update on the Lease the config elects on", async () => {
  const { cm } = await manifest();
  const pair = parseConfig(cm.data["config.yaml"]).supervisor.pair!;
  const rbac = parseAllDocuments(await read("config/k3s/rbac.yaml")).map((d) => d.toJS());
  const role = rbac.find((d) => d?.kind === "Role" && d.metadata.namespace === pair.leaseNamespace);
  assert.ok(role, `a Role in ${pair.leaseNamespace}`);
  const rule = role.rules.find((r: Doc) => r.resources.includes("leases") && r.resourceNames);
  assert.deepEqual(rule.resourceNames, [pair.leaseName]);
  assert.deepEqual([...rule.verbs].sort(), ["get", "update"]);
  const binding = rbac.find((d) =>
    d?.kind === "RoleBinding" && d.roleRef.name === role.metadata.name
  );
  assert.ok(
    binding.subjects.some((s: Doc) => s.kind === "ServiceAccount" && s.name === "sdv-failover"),
  );
});

Deno.test({
  name: "pair manifest: the real API server accepts it (server-side dry run)",
  ignore: SKIP_CP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { cm, sts } = await manifest();
    const cp = await startControlPlane({ nodes: ["server-a"] });
    try {
      const kc = new KubeConfig();
      kc.loadFromFile(cp.adminKubeconfigPath);
      const core = kc.makeApiClient(CoreV1Api);
      const apps = kc.makeApiClient(AppsV1Api);
      const createdCm = await core.createNamespacedConfigMap({
        namespace: cm.metadata.namespace,
        body: cm,
        dryRun: "All",
      });
      assert.equal(createdCm.metadata?.name, cm.metadata.name);
      const created = await apps.createNamespacedStatefulSet({
        namespace: sts.metadata.namespace,
        body: sts,
        dryRun: "All",
      });
      // defaulted and validated by the server, nothing stored
      assert.equal(created.spec?.replicas, 2);
      assert.equal(created.spec?.podManagementPolicy, "Parallel");
      const stored = await apps.listNamespacedStatefulSet({ namespace: sts.metadata.namespace });
      assert.equal(stored.items.length, 0);
    } finally {
      await cp.stop();
    }
  },
});

Deno.test("pair under systemd: the env file's --id example reaches run through $SDV_RUN_ARGS", async () => {
  const env = await read("packaging/config/supervisor.env");
  const unit = await read("packaging/systemd/sdv-failover-supervisor.service");
  assert.match(unit, /^EnvironmentFile=-\/etc\/sdv-failover\/supervisor\.env$/m);
  assert.match(unit, /^ExecStart=\S+ run .*\$SDV_RUN_ARGS$/m);
  // the examples name two different ids, each one of the documented ids
  const ids = [...env.matchAll(/SDV_RUN_ARGS="--id ([a-z0-9-]+)"/g)].map((m) => m[1]);
  assert.equal(ids.length, 2);
  assert.notEqual(ids[0], ids[1]);
  const listed = /ids \[([a-z0-9-]+), ([a-z0-9-]+)\]/.exec(env);
  assert.ok(listed);
  assert.deepEqual(ids, [listed[1], listed[2]]);
  // the active line stays empty: a single supervisor needs no id
  assert.match(env, /^SDV_RUN_ARGS=$/m);
});
