/**
 * `cluster-identity`: writes the supervisor's own kubeconfig, so that it never runs with the
 * cluster-admin kubeconfig (K3s: `/etc/rancher/k3s/k3s.yaml`).
 *
 * **Mechanism: a ServiceAccount token from the TokenRequest API** (`POST
 * /api/v1/namespaces/NS/serviceaccounts/NAME/token`, client-node
 * `CoreV1Api.createNamespacedServiceAccountToken`), for the ServiceAccount
 * `kube-system/sdv-failover` that `config/k3s/rbac.yaml` binds to the least-privilege ClusterRole
 * `sdv-failover` and the Role `kube-system/sdv-failover-leader`. Chosen over a client certificate
 * signed through the CertificateSigningRequest API because:
 * - **it can be revoked**: a token names the ServiceAccount's uid, so deleting (and re-creating)
 *   the ServiceAccount invalidates every token issued for it at once; Kubernetes has no
 *   revocation for client certificates (no CRL), a leaked certificate stays valid until it
 *   expires;
 * - **it expires**: the expiration is bounded (`--duration`, default 8760 h = 1 year; the API
 *   server may shorten it with `--service-account-max-token-expiration`, the command reports
 *   what was granted);
 * - **no key material on the host**: nothing to generate, store or protect but the kubeconfig
 *   itself; no CSR to approve with the admin identity;
 * - **one subject**: the same ServiceAccount the in-cluster pod (`packaging/k3s/supervisor-pod.yaml`)
 *   runs as, so the unit and the pod have exactly the same rights.
 *
 * The API server must sign ServiceAccount tokens (`--service-account-issuer`,
 * `--service-account-signing-key-file`; K3s does by default).
 *
 * **RBAC objects are required, not created**: the command checks with the admin kubeconfig that
 * the ServiceAccount exists and is a subject of the ClusterRoleBinding `sdv-failover` (role
 * `sdv-failover`) and of the RoleBinding `kube-system/sdv-failover-leader`, and otherwise fails
 * naming what is missing and `config/k3s/rbac.yaml` (on K3s, `install-rootfs.sh --role supervisor`
 * puts it into the auto-deploy manifests). The program therefore never writes RBAC: the shipped
 * manifest stays the one source of the identity's rights.
 *
 * The kubeconfig (mode 0600, written to a temporary file in the same directory and renamed over
 * `--out`) holds the server, CA and TLS server name of the admin kubeconfig's current cluster and
 * the token. The token is never printed or logged. `--out -` writes the kubeconfig to standard
 * output instead (the report goes to standard error), for the packaged program, which may not
 * write files: only into a pipe or a file no one else can read (`umask 077`), never onto a
 * terminal. Renew before it expires: run the command again
 * and restart the supervisor (systemd copies a `LoadCredential=` file at start).
 *
 * @module
 */
import { dirname } from "node:path";
import { stringify } from "yaml";

/** Exit status: the kubeconfig was written. */
export const IDENTITY_OK = 0;
/**
 * Exit status: the admin kubeconfig cannot be loaded, the API failed or refused, a required RBAC
 * object is missing, or the file cannot be written.
 */
export const IDENTITY_FAILED = 1;
/** Exit status: a usage error (bad `--duration`, `--name` or `--namespace`); nothing is called. */
export const IDENTITY_USAGE = 2;

/** Defaults of the command's options. */
export const IDENTITY_DEFAULTS = {
  namespace: "kube-system",
  name: "sdv-failover",
  duration: "8760h",
} as const;

/** The ClusterRole (and its ClusterRoleBinding) of `config/k3s/rbac.yaml`. */
export const CLUSTER_ROLE = "sdv-failover";
/** The supervisor pair's Role (and its RoleBinding) of `config/k3s/rbac.yaml`. */
export const LEADER_ROLE = { namespace: "kube-system", name: "sdv-failover-leader" } as const;

/** The shortest token the TokenRequest API issues (10 minutes). */
export const MIN_TOKEN_DURATION_S = 600;
/** The longest accepted `--duration` (10 years). */
export const MAX_TOKEN_DURATION_S = 10 * 365 * 24 * 3600;

/** The admin kubeconfig's current cluster, as written into the new kubeconfig. */
export interface ClusterEntry {
  /** The cluster's name in the admin kubeconfig (kept). */
  name: string;
  /** API server URL. */
  server: string;
  /** The CA bundle, base64 (PEM inside); absent when the system trust store is meant. */
  caData?: string;
  /** `tls-server-name`, when the admin kubeconfig has one. */
  tlsServerName?: string;
  /** `insecure-skip-tls-verify` of the admin kubeconfig (copied, with a warning). */
  skipTLSVerify?: boolean;
}

/** An RBAC binding as far as the check needs it. */
export interface BindingView {
  roleRef: { kind: string; name: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/** A token granted by the TokenRequest API. */
export interface GrantedToken {
  token: string;
  /** `status.expirationTimestamp`. */
  expiresAt: Date;
}

/**
 * The calls the command makes with the admin identity. Reads reject with an error whose `code`
 * is the HTTP status (client-node's `ApiException`), 404 when the object does not exist.
 */
export interface IdentityApi {
  /** The admin kubeconfig's current cluster. */
  cluster: ClusterEntry;
  readServiceAccount(namespace: string, name: string): Promise<unknown>;
  readClusterRole(name: string): Promise<unknown>;
  readClusterRoleBinding(name: string): Promise<BindingView>;
  readRole(namespace: string, name: string): Promise<unknown>;
  readRoleBinding(namespace: string, name: string): Promise<BindingView>;
  /** TokenRequest for the ServiceAccount, `expirationSeconds` asked. */
  requestToken(namespace: string, name: string, expirationSeconds: number): Promise<GrantedToken>;
  /** Releases sockets. */
  close(): void;
}

/** Where standard output goes, for `--out -`. */
export type StdoutKind = "terminal" | "private-file" | "shared-file" | "pipe" | "unknown";

/** Options of {@linkcode clusterIdentityCommand}. */
export interface ClusterIdentityCommandOptions {
  /** A kubeconfig allowed to read RBAC objects and request tokens (the cluster admin's). */
  adminKubeconfigPath: string;
  /**
   * Where the supervisor's kubeconfig is written (mode 0600, replaced atomically); `-`: to
   * {@linkcode ClusterIdentityCommandOptions.stdout}.
   */
  outPath: string;
  /** The ServiceAccount's namespace (default `kube-system`). */
  namespace?: string;
  /** The ServiceAccount's name (default `sdv-failover`). */
  name?: string;
  /** Requested token lifetime, e.g. `8760h`, `30d`, `90m` (default `8760h`). */
  duration?: string;
  /** Per-request timeout of the API calls, ms (default 10000). */
  requestTimeoutMs?: number;
  /**
   * Opens the API over the admin kubeconfig (default: client-node, loaded only here); for tests.
   * May throw (unreadable kubeconfig, no current cluster). The command closes it.
   */
  connect?: (adminKubeconfigPath: string) => IdentityApi | Promise<IdentityApi>;
  /** Wall-clock source, for the reported remaining lifetime (default `Date.now`). */
  wallNowMs?: () => number;
  /** Receives the report lines (default `console.log`); never the token. */
  out?: (line: string) => void;
  /** Receives error and warning lines (default `console.error`); never the token. */
  err?: (line: string) => void;
  /** `--out -`: writes the kubeconfig (default: to `Deno.stdout`). */
  stdout?: (text: string) => Promise<void>;
  /** `--out -`: what standard output is (default: {@linkcode stdoutKind}). */
  stdoutKind?: () => StdoutKind;
}

/**
 * What standard output is: a terminal, a regular file readable by its owner only or by others
 * too (`/proc/self/fd/1`), anything else (a pipe, a socket), or `unknown` when it cannot be
 * judged: Deno grants `/proc/self/fd` only with all permissions, which the packaged program does
 * not have.
 */
export function stdoutKind(): StdoutKind {
  if (Deno.stdout.isTerminal()) return "terminal";
  try {
    const info = Deno.statSync("/proc/self/fd/1");
    if (info.isFile) return (info.mode ?? 0o777) & 0o077 ? "shared-file" : "private-file";
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return "unknown";
    }
    // no /proc: not a file we can judge
  }
  return "pipe";
}

const UNIT_S: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a token lifetime: a whole number with unit `s`, `m`, `h` or `d` (`8760h`, `30d`).
 * @returns seconds.
 * @throws Error naming the syntax, or the bounds {@linkcode MIN_TOKEN_DURATION_S} ..
 *   {@linkcode MAX_TOKEN_DURATION_S}.
 */
export function parseTokenDurationS(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) {
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: expected a whole number with unit s, m, h or d, ` +
        "e.g. 8760h, 30d, 90m",
    );
  }
  const seconds = Number(m[1]) * UNIT_S[m[2]];
  if (!Number.isSafeInteger(seconds) || seconds > MAX_TOKEN_DURATION_S) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: at most 10 years (87600h)`);
  }
  if (seconds < MIN_TOKEN_DURATION_S) {
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: at least 10m (the TokenRequest API's minimum)`,
    );
  }
  return seconds;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * The supervisor's kubeconfig: the cluster entry and the token user, one context, current.
 * @returns the YAML text.
 */
export function kubeconfigYaml(cluster: ClusterEntry, userName: string, token: string): string {
  const clusterFields: Record<string, unknown> = { server: cluster.server };
  if (cluster.caData) clusterFields["certificate-authority-data"] = cluster.caData;
  if (cluster.tlsServerName) clusterFields["tls-server-name"] = cluster.tlsServerName;
  if (cluster.skipTLSVerify) clusterFields["insecure-skip-tls-verify"] = true;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster.name, cluster: clusterFields }],
    users: [{ name: userName, user: { token } }],
    contexts: [{ name: userName, context: { cluster: cluster.name, user: userName } }],
    "current-context": userName,
    preferences: {},
  });
}

/**
 * Writes `text` to `path` with mode 0600: into a new temporary file (created 0600) in the same
 * directory, then renamed over `path`, so neither a reader nor a crash sees a partial file and an
 * existing file's looser mode is not kept.
 * @throws Deno's file system errors (e.g. NotFound for a missing directory); the temporary file
 *   is removed.
 */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  const tmp = await Deno.makeTempFile({ dir: dirname(path), prefix: ".sdv-kubeconfig-" });
  try {
    await Deno.chmod(tmp, 0o600);
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/**
 * Checks the RBAC objects, requests the token and writes the kubeconfig.
 * @returns {@linkcode IDENTITY_OK} when written; {@linkcode IDENTITY_USAGE} for a bad
 *   `duration`, `name` or `namespace` (nothing is called); {@linkcode IDENTITY_FAILED} when the
 *   admin kubeconfig cannot be loaded, an API call fails (401/403: not an admin kubeconfig), a
 *   required object is missing (the message names it and `config/k3s/rbac.yaml`) or the file
 *   cannot be written. Never throws, never prints the token.
 */
export async function clusterIdentityCommand(opts: ClusterIdentityCommandOptions): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  const err = opts.err ?? ((line: string) => console.error(line));
  const namespace = opts.namespace ?? IDENTITY_DEFAULTS.namespace;
  const name = opts.name ?? IDENTITY_DEFAULTS.name;
  let durationS: number;
  try {
    durationS = parseTokenDurationS(opts.duration ?? IDENTITY_DEFAULTS.duration);
  } catch (error) {
    err(`cluster-identity: --duration: ${errorText(error)}`);
    return IDENTITY_USAGE;
  }
  if (!DNS_LABEL.test(namespace)) {
    err(`cluster-identity: --namespace ${JSON.stringify(namespace)} is not a namespace name`);
    return IDENTITY_USAGE;
  }
  if (!DNS_SUBDOMAIN.test(name)) {
    err(`cluster-identity: --name ${JSON.stringify(name)} is not a ServiceAccount name`);
    return IDENTITY_USAGE;
  }
  const sa = `ServiceAccount ${namespace}/${name}`;
  const toStdout = opts.outPath === "-";
  if (toStdout) {
    const kind = (opts.stdoutKind ?? stdoutKind)();
    if (kind === "terminal" || kind === "shared-file") {
      err(
        `cluster-identity: --out -: refusing to write the token to ${
          kind === "terminal" ? "a terminal" : "a file others can read"
        }; redirect it into a private file: (umask 077; sdv-failover cluster-identity … ` +
          "--out - > /etc/sdv-failover/supervisor.kubeconfig)",
      );
      return IDENTITY_USAGE;
    }
    if (kind === "unknown") {
      err(
        "cluster-identity: --out -: cannot check where standard output goes (no permission for " +
          "/proc/self/fd); make sure it is a private file: (umask 077; sdv-failover " +
          "cluster-identity … --out - > /etc/sdv-failover/supervisor.kubeconfig)",
      );
    }
  }
  // With --out -, standard output carries the kubeconfig: the report goes to standard error.
  const report = toStdout ? err : out;

  let api: IdentityApi;
  try {
    api = await (opts.connect ?? ((p: string) => connectClientNode(p, opts.requestTimeoutMs)))(
      opts.adminKubeconfigPath,
    );
  } catch (error) {
    err(
      `cluster-identity: cannot load kubeconfig ${opts.adminKubeconfigPath}: ${errorText(error)}`,
    );
    return IDENTITY_FAILED;
  }
  try {
    const missing = await missingRbac(api, namespace, name);
    if (missing.length > 0) {
      for (const line of missing) err(`cluster-identity: ${line}`);
      err(
        "cluster-identity: apply config/k3s/rbac.yaml first (kubectl apply -f; on K3s, " +
          "install-rootfs.sh --role supervisor puts it into /var/lib/rancher/k3s/server/manifests/)",
      );
      return IDENTITY_FAILED;
    }
    let granted: GrantedToken;
    try {
      granted = await api.requestToken(namespace, name, durationS);
    } catch (error) {
      err(`cluster-identity: token request for ${sa}: ${apiErrorText(error)}`);
      return IDENTITY_FAILED;
    }
    if (api.cluster.skipTLSVerify) {
      err(
        "cluster-identity: warning: the admin kubeconfig skips TLS verification " +
          "(insecure-skip-tls-verify); the new kubeconfig does too",
      );
    }
    const userName = `system:serviceaccount:${namespace}:${name}`;
    try {
      const text = kubeconfigYaml(api.cluster, userName, granted.token);
      if (toStdout) {
        await (opts.stdout ?? writeStdout)(text);
      } else {
        await writePrivateFile(opts.outPath, text);
      }
    } catch (error) {
      err(`cluster-identity: cannot write ${opts.outPath}: ${errorText(error)}`);
      return IDENTITY_FAILED;
    }
    const nowMs = (opts.wallNowMs ?? Date.now)();
    const grantedS = Math.round((granted.expiresAt.getTime() - nowMs) / 1000);
    report(
      `wrote ${toStdout ? "standard output" : `${opts.outPath} (mode 0600)`}: ${sa} on ` +
        api.cluster.server,
    );
    report(
      `token expires ${granted.expiresAt.toISOString()} (in ${formatHours(grantedS)}); run ` +
        "this command again before then and restart the supervisor",
    );
    if (grantedS < durationS - 60) {
      err(
        `cluster-identity: note: ${formatHours(durationS)} asked, the API server granted ` +
          `${formatHours(grantedS)} (--service-account-max-token-expiration)`,
      );
    }
    return IDENTITY_OK;
  } catch (error) {
    err(`cluster-identity: ${apiErrorText(error)}`);
    return IDENTITY_FAILED;
  } finally {
    api.close();
  }
}

/**
 * What of `config/k3s/rbac.yaml` is missing for the ServiceAccount `namespace/name`.
 * @returns one line per missing object or binding; `[]` when everything is there.
 * @throws the API error of a read that failed other than with 404.
 */
async function missingRbac(api: IdentityApi, namespace: string, name: string): Promise<string[]> {
  const missing: string[] = [];
  const exists = async (what: string, read: () => Promise<unknown>) => {
    try {
      return await read();
    } catch (error) {
      if (statusOf(error) !== 404) throw error;
      missing.push(`${what} does not exist`);
      return undefined;
    }
  };
  const isSubject = (b: BindingView) =>
    (b.subjects ?? []).some((s) =>
      s.kind === "ServiceAccount" && s.name === name && s.namespace === namespace
    );
  await exists(
    `ServiceAccount ${namespace}/${name}`,
    () => api.readServiceAccount(namespace, name),
  );
  await exists(`ClusterRole ${CLUSTER_ROLE}`, () => api.readClusterRole(CLUSTER_ROLE));
  const crb = await exists(
    `ClusterRoleBinding ${CLUSTER_ROLE}`,
    () => api.readClusterRoleBinding(CLUSTER_ROLE),
  ) as BindingView | undefined;
  if (crb && (crb.roleRef.kind !== "ClusterRole" || crb.roleRef.name !== CLUSTER_ROLE)) {
    missing.push(
      `ClusterRoleBinding ${CLUSTER_ROLE} does not refer to ClusterRole ${CLUSTER_ROLE}`,
    );
  } else if (crb && !isSubject(crb)) {
    missing.push(
      `ClusterRoleBinding ${CLUSTER_ROLE} does not bind ServiceAccount ${namespace}/${name}`,
    );
  }
  const leader = `${LEADER_ROLE.namespace}/${LEADER_ROLE.name}`;
  await exists(`Role ${leader}`, () => api.readRole(LEADER_ROLE.namespace, LEADER_ROLE.name));
  const rb = await exists(
    `RoleBinding ${leader}`,
    () => api.readRoleBinding(LEADER_ROLE.namespace, LEADER_ROLE.name),
  ) as BindingView | undefined;
  if (rb && (rb.roleRef.kind !== "Role" || rb.roleRef.name !== LEADER_ROLE.name)) {
    missing.push(`RoleBinding ${leader} does not refer to Role ${LEADER_ROLE.name}`);
  } else if (rb && !isSubject(rb)) {
    missing.push(`RoleBinding ${leader} does not bind ServiceAccount ${namespace}/${name}`);
  }
  return missing;
}

/**
 * The {@linkcode IdentityApi} over client-node and the admin kubeconfig (CA file inlined).
 * @throws Error when the kubeconfig cannot be read or has no current cluster.
 */
async function connectClientNode(
  adminKubeconfigPath: string,
  requestTimeoutMs = 10_000,
): Promise<IdentityApi> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(adminKubeconfigPath);
  const current = kc.getCurrentCluster();
  if (!current) throw new Error("kubeconfig has no current cluster");
  let caData = current.caData;
  if (!caData && current.caFile) {
    const pem = await Deno.readFile(current.caFile);
    caData = btoa(Array.from(pem, (b) => String.fromCharCode(b)).join(""));
  }
  const cluster: ClusterEntry = {
    name: current.name,
    server: current.server,
    caData,
    tlsServerName: current.tlsServerName,
    skipTLSVerify: current.skipTLSVerify,
  };
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const opts = () => ({
    middleware: [{
      pre: (ctx: import("@kubernetes/client-node").RequestContext) => {
        ctx.setSignal(AbortSignal.timeout(requestTimeoutMs));
        return new k8s.Observable(Promise.resolve(ctx));
      },
      post: (res: import("@kubernetes/client-node").ResponseContext) =>
        new k8s.Observable(Promise.resolve(res)),
    }],
    middlewareMergeStrategy: "append" as const,
  });
  const binding = (b: import("@kubernetes/client-node").V1RoleBinding): BindingView => ({
    roleRef: { kind: b.roleRef.kind, name: b.roleRef.name },
    subjects: b.subjects?.map((s) => ({ kind: s.kind, name: s.name, namespace: s.namespace })),
  });
  return {
    cluster,
    readServiceAccount: (namespace, name) =>
      core.readNamespacedServiceAccount({ namespace, name }, opts()),
    readClusterRole: (name) => rbac.readClusterRole({ name }, opts()),
    readClusterRoleBinding: async (name) =>
      binding(await rbac.readClusterRoleBinding({ name }, opts())),
    readRole: (namespace, name) => rbac.readNamespacedRole({ namespace, name }, opts()),
    readRoleBinding: async (namespace, name) =>
      binding(await rbac.readNamespacedRoleBinding({ namespace, name }, opts())),
    requestToken: async (namespace, name, expirationSeconds) => {
      const res = await core.createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { audiences: [], expirationSeconds } },
      }, opts());
      const token = res.status?.token;
      const expiresAt = res.status?.expirationTimestamp;
      if (!token || !expiresAt) throw new Error("the TokenRequest answer has no token");
      return { token, expiresAt: new Date(expiresAt) };
    },
    close: () => {},
  };
}

async function writeStdout(text: string): Promise<void> {
  const bytes = new TextEncoder().encode(text);
  for (let done = 0; done < bytes.length;) done += await Deno.stdout.write(bytes.subarray(done));
}

function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" && code >= 100 && code <= 599 ? code : undefined;
}

/** An API error as one line: `HTTP 403 (not allowed: …)`; never a response body with secrets. */
function apiErrorText(error: unknown): string {
  const status = statusOf(error);
  if (status === 401 || status === 403) {
    return `HTTP ${status}: the admin kubeconfig may not do this (it must be allowed to read ` +
      `RBAC objects and create serviceaccounts/token): ${errorText(error)}`;
  }
  return status === undefined ? errorText(error) : `HTTP ${status}: ${errorText(error)}`;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}

function formatHours(seconds: number): string {
  return seconds >= 3600 && seconds % 3600 === 0
    ? `${seconds / 3600} h`
    : seconds >= 3600
    ? `${(seconds / 3600).toFixed(1)} h`
    : `${Math.round(seconds / 60)} min`;
}
