/**
 * The shipped ClusterRole and Role (config/k3s/rbac.yaml) hold exactly the verbs the runtime's
 * calls need: every client-node call in the runtime's Kubernetes modules is mapped to the
 * (resource, verb) it is authorised as, an unmapped call fails the test, and the union must equal
 * the rules — a verb no call needs is as much a failure as a call no verb allows.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));

/** The modules through which the runtime (not `cluster-identity`) talks to the API. */
const RUNTIME_MODULES = ["lib/kube/kube_client.ts", "lib/leader/kube_lease_api.ts"];

/** client-node method → the (group/resource, verb) RBAC authorises it as. */
const METHOD_RULE: Record<string, string> = {
  readNamespacedDeployment: "apps/deployments get",
  patchNamespacedDeployment: "apps/deployments patch",
  listNamespacedDeployment: "apps/deployments list",
  listNamespacedPod: "pods list",
  deleteNamespacedPod: "pods delete",
  readNode: "nodes get",
  patchNode: "nodes patch",
  listNode: "nodes list",
  createNamespacedEvent: "events create",
  readNamespacedLease: "coordination.k8s.io/leases get",
  createNamespacedLease: "coordination.k8s.io/leases create",
  replaceNamespacedLease: "coordination.k8s.io/leases update",
};

/** An informer's watch path → the watch it is authorised as. */
const INFORMER_RULE: [RegExp, string][] = [
  [/^\/api\/v1\/nodes$/, "nodes watch"],
  [/^\/api\/v1\/namespaces\/\$\{namespace\}\/pods$/, "pods watch"],
  [/^\/apis\/apps\/v1\/namespaces\/\$\{namespace\}\/deployments$/, "apps/deployments watch"],
];

async function usedRules(): Promise<Set<string>> {
  const used = new Set<string>();
  for (const path of RUNTIME_MODULES) {
    const text = await read(path);
    for (const m of text.matchAll(/\b(?:core|apps|calls)\.([a-zA-Z]+)\(/g)) {
      const rule = METHOD_RULE[m[1]];
      assert.ok(rule, `${path}: ${m[1]}() is not mapped to an RBAC rule here`);
      used.add(rule);
    }
    for (const m of text.matchAll(/makeInformer\(\s*kc,\s*[`"]([^`"]+)[`"]/g)) {
      const hit = INFORMER_RULE.find(([re]) => re.test(m[1]));
      assert.ok(hit, `${path}: informer on ${m[1]} is not mapped to an RBAC rule here`);
      used.add(hit[1]);
    }
  }
  return used;
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

async function shippedRules(): Promise<Set<string>> {
  const rules = new Set<string>();
  for (const doc of parseAllDocuments(await read("config/k3s/rbac.yaml"))) {
    const obj = doc.toJS() as { kind?: string; rules?: Rule[] } | null;
    if (obj?.kind !== "ClusterRole" && obj?.kind !== "Role") continue;
    for (const rule of obj.rules ?? []) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs) {
            rules.add(`${group ? `${group}/` : ""}${resource} ${verb}`);
          }
        }
      }
    }
  }
  return rules;
}

Deno.test("rbac.yaml: the ClusterRole and Role hold exactly the verbs the runtime's calls use", async () => {
  const used = await usedRules();
  const shipped = await shippedRules();
  assert.deepEqual([...shipped].sort(), [...used].sort());
});

Deno.test("rbac.yaml: only kube_client.ts (and the admin-side cluster-identity) load client-node", async () => {
  const loaders: string[] = [];
  for await (const entry of Deno.readDir(new URL("lib/", ROOT))) {
    if (!entry.isDirectory) continue;
    for await (const file of Deno.readDir(new URL(`lib/${entry.name}/`, ROOT))) {
      if (!file.name.endsWith(".ts") || file.name.endsWith("_test.ts")) continue;
      const path = `lib/${entry.name}/${file.name}`;
      const text = await read(path);
      const valueImport = /^import (?!type )[^;]*from "@kubernetes\/client-node"/m.test(text) ||
        /await import\("@kubernetes\/client-node"\)/.test(text);
      if (valueImport) loaders.push(path);
    }
  }
  assert.deepEqual(loaders.sort(), [
    "lib/cli/cluster_identity_command.ts",
    "lib/kube/kube_client.ts",
  ]);
});
