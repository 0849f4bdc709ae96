import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  type BindingView,
  clusterIdentityCommand,
  type ClusterIdentityCommandOptions,
  IDENTITY_FAILED,
  IDENTITY_OK,
  IDENTITY_USAGE,
  type IdentityApi,
  parseTokenDurationS,
} from "./cluster_identity_command.ts";

const NOW_MS = Date.parse("2026-12-02T12:00:00.000Z");
const TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-token-value.sig";
const SA_SUBJECT = { kind: "ServiceAccount", name: "sdv-failover", namespace: "kube-system" };

class NotFound extends Error {
  code = 404;
}

/** A fake admin API holding the objects of config/k3s/rbac.yaml; records every call. */
class FakeIdentityApi implements IdentityApi {
  cluster = {
    name: "default",
    server: "https://10.0.0.1:6443",
    caData: btoa("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"),
  };
  calls: string[] = [];
  closed = false;
  objects = new Set([
    "sa kube-system/sdv-failover",
    "clusterrole sdv-failover",
    "role kube-system/sdv-failover-leader",
  ]);
  clusterRoleBinding: BindingView | undefined = {
    roleRef: { kind: "ClusterRole", name: "sdv-failover" },
    subjects: [{ kind: "User", name: "sdv-failover" }, SA_SUBJECT],
  };
  roleBinding: BindingView | undefined = {
    roleRef: { kind: "Role", name: "sdv-failover-leader" },
    subjects: [SA_SUBJECT],
  };
  /** Seconds the server grants at most. */
  maxGrantS = Infinity;
  tokenError: unknown;

  #read<T>(key: string, value: T): Promise<T> {
    this.calls.push(`read ${key}`);
    return this.objects.has(key) || (value !== undefined && key.startsWith("binding"))
      ? Promise.resolve(value)
      : Promise.reject(new NotFound(`${key} not found`));
  }
  readServiceAccount(namespace: string, name: string) {
    return this.#read(`sa ${namespace}/${name}`, {});
  }
  readClusterRole(name: string) {
    return this.#read(`clusterrole ${name}`, {});
  }
  readClusterRoleBinding(name: string) {
    return this.#read(`binding ${name}`, this.clusterRoleBinding!);
  }
  readRole(namespace: string, name: string) {
    return this.#read(`role ${namespace}/${name}`, {});
  }
  readRoleBinding(namespace: string, name: string) {
    return this.#read(`binding ${namespace}/${name}`, this.roleBinding!);
  }
  requestToken(namespace: string, name: string, expirationSeconds: number) {
    this.calls.push(`token ${namespace}/${name} ${expirationSeconds}`);
    if (this.tokenError) return Promise.reject(this.tokenError);
    const s = Math.min(expirationSeconds, this.maxGrantS);
    return Promise.resolve({ token: TOKEN, expiresAt: new Date(NOW_MS + s * 1000) });
  }
  close() {
    this.closed = true;
  }
}

async function setup(overrides: Partial<ClusterIdentityCommandOptions> = {}) {
  const dir = await Deno.makeTempDir({ prefix: "sdv-identity-" });
  const api = new FakeIdentityApi();
  const out: string[] = [];
  const err: string[] = [];
  const connected: string[] = [];
  const outPath = `${dir}/supervisor.kubeconfig`;
  const run = (more: Partial<ClusterIdentityCommandOptions> = {}) =>
    clusterIdentityCommand({
      adminKubeconfigPath: "/etc/rancher/k3s/k3s.yaml",
      outPath,
      connect: (p) => (connected.push(p), api),
      wallNowMs: () => NOW_MS,
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      ...overrides,
      ...more,
    });
  const cleanup = () => Deno.remove(dir, { recursive: true });
  return { dir, api, out, err, connected, outPath, run, cleanup };
}

Deno.test("cluster-identity: checks rbac.yaml's objects, writes a 0600 token kubeconfig, exits 0", async () => {
  const t = await setup();
  try {
    assert.equal(await t.run(), IDENTITY_OK);
    assert.deepEqual(t.connected, ["/etc/rancher/k3s/k3s.yaml"]);
    assert.deepEqual(t.api.calls, [
      "read sa kube-system/sdv-failover",
      "read clusterrole sdv-failover",
      "read binding sdv-failover",
      "read role kube-system/sdv-failover-leader",
      "read binding kube-system/sdv-failover-leader",
      "token kube-system/sdv-failover 31536000", // 8760 h
    ]);
    assert.ok(t.api.closed);
    assert.equal((await Deno.stat(t.outPath)).mode! & 0o777, 0o600);
    const kc = parse(await Deno.readTextFile(t.outPath));
    assert.deepEqual(kc, {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "default",
        cluster: {
          server: "https://10.0.0.1:6443",
          "certificate-authority-data": t.api.cluster.caData,
        },
      }],
      users: [{ name: "system:serviceaccount:kube-system:sdv-failover", user: { token: TOKEN } }],
      contexts: [{
        name: "system:serviceaccount:kube-system:sdv-failover",
        context: { cluster: "default", user: "system:serviceaccount:kube-system:sdv-failover" },
      }],
      "current-context": "system:serviceaccount:kube-system:sdv-failover",
      preferences: {},
    });
    // The token is never printed.
    for (const line of [...t.out, ...t.err]) assert.ok(!line.includes(TOKEN), line);
    assert.deepEqual(t.err, []);
    assert.match(
      t.out[0],
      /supervisor\.kubeconfig \(mode 0600\): ServiceAccount kube-system\/sdv-failover/,
    );
    assert.match(t.out[1], /^token expires 2027-12-02T12:00:00\.000Z \(in 8760 h\)/);
    // No temporary file left behind.
    const names = [];
    for await (const e of Deno.readDir(t.dir)) names.push(e.name);
    assert.deepEqual(names, ["supervisor.kubeconfig"]);
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: an existing file with a looser mode is replaced by a 0600 one", async () => {
  const t = await setup();
  try {
    await Deno.writeTextFile(t.outPath, "old", { mode: 0o644 });
    await Deno.chmod(t.outPath, 0o644);
    assert.equal(await t.run(), IDENTITY_OK);
    assert.equal((await Deno.stat(t.outPath)).mode! & 0o777, 0o600);
    assert.notEqual(await Deno.readTextFile(t.outPath), "old");
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: --duration, --name and --namespace errors exit 2 before any call", async () => {
  const t = await setup();
  try {
    for (
      const [more, message] of [
        [{ duration: "1y" }, /--duration: invalid duration "1y": expected a whole number/],
        [{ duration: "5m" }, /at least 10m/],
        [{ duration: "100000h" }, /at most 10 years/],
        [{ name: "Bad_Name" }, /--name "Bad_Name" is not a ServiceAccount name/],
        [{ namespace: "kube.system" }, /--namespace "kube\.system" is not a namespace name/],
      ] as const
    ) {
      t.err.length = 0;
      assert.equal(await t.run(more), IDENTITY_USAGE, JSON.stringify(more));
      assert.match(t.err[0], message);
    }
    assert.deepEqual(t.connected, []);
    await assert.rejects(Deno.stat(t.outPath));
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: parseTokenDurationS units and bounds", () => {
  assert.equal(parseTokenDurationS("8760h"), 31_536_000);
  assert.equal(parseTokenDurationS("30d"), 2_592_000);
  assert.equal(parseTokenDurationS("10m"), 600);
  assert.equal(parseTokenDurationS("600s"), 600);
  for (const bad of ["", "10", "1.5h", "-1h", "h", "599s", "3651d"]) {
    assert.throws(() => parseTokenDurationS(bad), Error, bad);
  }
});

Deno.test("cluster-identity: missing RBAC objects are named, nothing requested or written, exit 1", async () => {
  const t = await setup();
  try {
    t.api.objects.delete("sa kube-system/sdv-failover");
    t.api.objects.delete("role kube-system/sdv-failover-leader");
    t.api.clusterRoleBinding!.subjects = [{ kind: "User", name: "sdv-failover" }];
    assert.equal(await t.run(), IDENTITY_FAILED);
    assert.deepEqual(t.err.slice(0, 3), [
      "cluster-identity: ServiceAccount kube-system/sdv-failover does not exist",
      "cluster-identity: ClusterRoleBinding sdv-failover does not bind ServiceAccount " +
      "kube-system/sdv-failover",
      "cluster-identity: Role kube-system/sdv-failover-leader does not exist",
    ]);
    assert.match(t.err.at(-1)!, /apply config\/k3s\/rbac\.yaml first/);
    assert.ok(!t.api.calls.some((c) => c.startsWith("token")));
    assert.ok(t.api.closed);
    await assert.rejects(Deno.stat(t.outPath));
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: another ServiceAccount must be bound by the shipped bindings", async () => {
  const t = await setup();
  try {
    t.api.objects.add("sa ops/supervisor");
    assert.equal(await t.run({ namespace: "ops", name: "supervisor" }), IDENTITY_FAILED);
    assert.deepEqual(t.err.slice(0, 2), [
      "cluster-identity: ClusterRoleBinding sdv-failover does not bind ServiceAccount ops/supervisor",
      "cluster-identity: RoleBinding kube-system/sdv-failover-leader does not bind " +
      "ServiceAccount ops/supervisor",
    ]);
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: API and kubeconfig failures exit 1 with one clear line", async () => {
  const t = await setup();
  try {
    t.api.tokenError = Object.assign(new Error("forbidden"), { code: 403 });
    assert.equal(await t.run(), IDENTITY_FAILED);
    assert.match(
      t.err[0],
      /token request for ServiceAccount kube-system\/sdv-failover: HTTP 403: the admin kubeconfig may not/,
    );
    await assert.rejects(Deno.stat(t.outPath));

    t.err.length = 0;
    const unloadable = await t.run({
      connect: () => {
        throw new Error("ENOENT: no such file");
      },
    });
    assert.equal(unloadable, IDENTITY_FAILED);
    assert.match(t.err[0], /cannot load kubeconfig \/etc\/rancher\/k3s\/k3s\.yaml: ENOENT/);

    t.err.length = 0;
    t.api.tokenError = undefined;
    const noDir = await t.run({ outPath: `${t.dir}/missing/dir/kubeconfig` });
    assert.equal(noDir, IDENTITY_FAILED);
    assert.match(t.err[0], /cannot write .*missing\/dir\/kubeconfig/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: a shortened lifetime is reported", async () => {
  const t = await setup();
  try {
    t.api.maxGrantS = 3600;
    assert.equal(await t.run({ duration: "30d" }), IDENTITY_OK);
    assert.match(t.out[1], /\(in 1 h\)/);
    assert.match(t.err[0], /720 h asked, the API server granted 1 h/);
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: --out - writes the kubeconfig to a pipe or private file, the report to stderr", async () => {
  const t = await setup();
  try {
    for (const kind of ["pipe", "private-file"] as const) {
      const written: string[] = [];
      t.out.length = 0;
      t.err.length = 0;
      const code = await t.run({
        outPath: "-",
        stdoutKind: () => kind,
        stdout: (text) => (written.push(text), Promise.resolve()),
      });
      assert.equal(code, IDENTITY_OK, kind);
      assert.equal(written.length, 1);
      assert.equal(parse(written[0]).users[0].user.token, TOKEN);
      assert.deepEqual(t.out, [], "nothing else on standard output");
      assert.match(t.err[0], /^wrote standard output: ServiceAccount kube-system\/sdv-failover/);
      for (const line of t.err) assert.ok(!line.includes(TOKEN));
    }
  } finally {
    await t.cleanup();
  }
});

Deno.test("cluster-identity: --out - onto a terminal or a file others can read exits 2 before any call", async () => {
  const t = await setup();
  try {
    for (const [kind, what] of [["terminal", "a terminal"], ["shared-file", "a file others"]]) {
      t.err.length = 0;
      const written: string[] = [];
      const code = await t.run({
        outPath: "-",
        stdoutKind: () => kind as "terminal" | "shared-file",
        stdout: (text) => (written.push(text), Promise.resolve()),
      });
      assert.equal(code, IDENTITY_USAGE);
      assert.ok(t.err[0].includes(`refusing to write the token to ${what}`), t.err[0]);
      assert.match(t.err[0], /umask 077/);
      assert.deepEqual(written, []);
    }
    assert.deepEqual(t.connected, []);
  } finally {
    await t.cleanup();
  }
});
