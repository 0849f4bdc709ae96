/**
 * A real Kubernetes control plane for acceptance tests: kine (SQLite) +
 * kube-apiserver + kube-controller-manager + kube-scheduler, and one kwok
 * process per simulated (Jetson) node. See
 * scripts/controlplane/README.md.
 *
 * The binaries come from `scripts/controlplane/build.sh`, which caches them
 * outside the repository; {@link startControlPlane} runs it when the cache is
 * missing (≈ 9 min on 2 cores) unless `SDV_CP_NO_BUILD=1`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";

/** Options of {@link startControlPlane}. */
export interface ControlPlaneOptions {
  /** Names of the simulated nodes (one kwok process each), e.g. `["worker-node1"]`. */
  nodes: string[];
  /**
   * Directory for PKI, kubeconfigs, the SQLite state, process logs and `pids`.
   * Default: a fresh temp dir, removed by `stop()` unless `SDV_CP_KEEP_WORKDIR=1`.
   * A given directory is created if needed and never removed.
   */
  workDir?: string;
  /**
   * kube-controller-manager `--node-monitor-grace-period` in seconds.
   * Default: not passed, i.e. the upstream/K3s default (50 s since 1.32).
   */
  nodeMonitorGracePeriodS?: number;
  /**
   * kube-controller-manager `--node-monitor-period` in seconds (how often the node-lifecycle
   * controller looks at Leases and conditions). Default: not passed (upstream/K3s: 5 s).
   */
  nodeMonitorPeriodS?: number;
  /**
   * kube-apiserver `--default-not-ready-toleration-seconds`: the `tolerationSeconds` the
   * DefaultTolerationSeconds admission plugin gives every pod for `node.kubernetes.io/not-ready`.
   * Default: not passed (upstream/K3s: 300).
   */
  defaultNotReadyTolerationS?: number;
  /** Same for `node.kubernetes.io/unreachable` (`--default-unreachable-toleration-seconds`). */
  defaultUnreachableTolerationS?: number;
  /**
   * kwok `--node-lease-duration-seconds` (default 40, the kubelet's default). kwok v0.8.0 renews
   * every duration / 4 with 4 % jitter, as the kubelet does (`pkg/kwok/controllers/controller.go`:
   * `renewInterval := leaseDuration / 4`, `renewIntervalJitter := 0.04`); there is no separate
   * renewal flag.
   */
  nodeLeaseDurationS?: number;
  /** Receives the harness' progress lines (not the processes' output). Default: discard. */
  log?: (line: string) => void;
  /** Bound on the whole start (apiserver ready, nodes Ready), excluding a build. Default 120000. */
  startTimeoutMs?: number;
}

/** A running control plane returned by {@link startControlPlane}. */
export interface ControlPlane {
  /** API server URL, `https://127.0.0.1:PORT`. */
  server: string;
  /** Kubeconfig of a `system:masters` identity: for test setup and assertions only. */
  adminKubeconfigPath: string;
  /**
   * Kubeconfig of the runtime under test: client cert CN=sdv-failover O=sdv-failover,
   * authorised ONLY by config/k3s/rbac.yaml.
   */
  runtimeKubeconfigPath: string;
  /** Where PKI, kubeconfigs, logs (`*.log`) and `pids` live. */
  workDir: string;
  /** SIGKILL the kwok process of node `name` (= the node lost power); resolves once it exited. */
  killNode(name: string): Promise<void>;
  /**
   * Brings a killed node back (power restored): deletes its Lease (a new kwok has a new holder
   * identity and would otherwise wait for the old Lease to expire, up to its full duration),
   * starts a new kwok for it and resolves once the new Lease exists. A node whose kwok still
   * runs is killed first.
   */
  restartNode(name: string): Promise<void>;
  /**
   * SIGSTOP the kube-apiserver (an API outage that keeps its sockets open: requests hang until
   * their own timeouts). kine and the other components keep running.
   */
  pauseApiServer(): void;
  /** SIGCONT the kube-apiserver after {@linkcode ControlPlane.pauseApiServer}. */
  resumeApiServer(): void;
  /** The effective node-failure settings (flags passed or upstream defaults). */
  settings: ControlPlaneSettings;
  /** Kill every process (SIGTERM, then SIGKILL after 3 s). Idempotent. */
  stop(): Promise<void>;
}

/** Node-failure settings of a running control plane (seconds). */
export interface ControlPlaneSettings {
  nodeMonitorPeriodS: number;
  nodeMonitorGracePeriodS: number;
  nodeLeaseDurationS: number;
  /** kwok's renewal interval: duration / 4 (± 4 % jitter). */
  leaseRenewIntervalS: number;
  defaultNotReadyTolerationS: number;
  defaultUnreachableTolerationS: number;
}

/** Upstream defaults of Kubernetes ≥ 1.32 (and K3s on it). */
export const UPSTREAM_DEFAULTS: Readonly<ControlPlaneSettings> = {
  nodeMonitorPeriodS: 5,
  nodeMonitorGracePeriodS: 50,
  nodeLeaseDurationS: 40,
  leaseRenewIntervalS: 10,
  defaultNotReadyTolerationS: 300,
  defaultUnreachableTolerationS: 300,
};

/** Versions baked into the cache dir name; keep in sync with build.sh. */
const CACHE_NAME = "cp-k8s1.37.2-kine0.17.5-kwok0.8.0";
const STOP_GRACE_MS = 3_000;
const NOT_READY_TAINT = "node.kubernetes.io/not-ready";

/**
 * The cache directory build.sh uses:
 * `${SDV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdv-failover}/cp-k8s…/`.
 */
export function controlPlaneCacheDir(): string {
  const root = Deno.env.get("SDV_CACHE_DIR") ||
    `${Deno.env.get("XDG_CACHE_HOME") || `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/sdv-failover`;
  return `${root}/${CACHE_NAME}`;
}

const BUILD_SCRIPT = fileURLToPath(
  new URL("../../scripts/controlplane/build.sh", import.meta.url),
);
const RBAC_YAML = fileURLToPath(new URL("../../config/k3s/rbac.yaml", import.meta.url));

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function tail(path: string, lines = 25): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Ensures the binaries exist (building them if allowed); returns the cache dir. */
async function ensureBinaries(workDir: string, log: (l: string) => void): Promise<string> {
  const dir = controlPlaneCacheDir();
  if (exists(`${dir}/.complete`)) return dir;
  if (Deno.env.get("SDV_CP_NO_BUILD") === "1") {
    throw new Error(
      `control-plane binaries missing (no ${dir}/.complete) and SDV_CP_NO_BUILD=1: ` +
        `run scripts/controlplane/build.sh first`,
    );
  }
  const buildLog = `${workDir}/build.log`;
  const msg = `building control-plane binaries with ${BUILD_SCRIPT} (≈ 9 min on 2 cores), ` +
    `log: ${buildLog}`;
  log(msg);
  console.error(`[control-plane] ${msg}`);
  const out = await new Deno.Command("sh", {
    args: ["-c", 'exec bash "$0" >>"$SDV_CP_BUILD_LOG" 2>&1', BUILD_SCRIPT],
    env: { SDV_CP_BUILD_LOG: buildLog },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  if (!out.success || !exists(`${dir}/.complete`)) {
    throw new Error(
      `scripts/controlplane/build.sh failed (exit ${out.code}); last lines of ${buildLog}:\n` +
        (await tail(buildLog)),
    );
  }
  log(`build finished: ${dir}`);
  return dir;
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdin: "null" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (exit ${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

const OPENSSL_CNF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.43.0.1
[v3_client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function randomSerial(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f; // positive
  return "0x" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Client identities: file stem → subject. */
const CLIENTS: Record<string, string> = {
  admin: "/O=system:masters/CN=sdv-test-admin",
  "controller-manager": "/O=system:masters/CN=system:kube-controller-manager",
  scheduler: "/O=system:masters/CN=system:kube-scheduler",
  kwok: "/O=system:masters/CN=kwok",
  runtime: "/O=sdv-failover/CN=sdv-failover",
};

/** Makes CA, serving cert, client certs and the service-account key pair in `pki`. */
async function makePki(pki: string): Promise<void> {
  await Deno.mkdir(pki, { recursive: true });
  await Deno.writeTextFile(`${pki}/openssl.cnf`, OPENSSL_CNF);
  const ecKey = (name: string) =>
    run("openssl", [
      "genpkey",
      "-algorithm",
      "EC",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-out",
      `${name}.key`,
    ], pki);
  await ecKey("ca");
  await run("openssl", [
    "req",
    "-x509",
    "-new",
    "-config",
    "openssl.cnf",
    "-extensions",
    "v3_ca",
    "-key",
    "ca.key",
    "-subj",
    "/CN=sdv-failover-test-ca",
    "-days",
    "3650",
    "-set_serial",
    randomSerial(),
    "-out",
    "ca.crt",
  ], pki);
  const leaf = async (name: string, subj: string, ext: string) => {
    await ecKey(name);
    await run("openssl", [
      "req",
      "-new",
      "-config",
      "openssl.cnf",
      "-key",
      `${name}.key`,
      "-subj",
      subj,
      "-out",
      `${name}.csr`,
    ], pki);
    await run("openssl", [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-set_serial",
      randomSerial(),
      "-days",
      "365",
      "-extfile",
      "openssl.cnf",
      "-extensions",
      ext,
      "-out",
      `${name}.crt`,
    ], pki);
  };
  await Promise.all([
    leaf("apiserver", "/CN=kube-apiserver", "v3_server"),
    ...Object.entries(CLIENTS).map(([name, subj]) => leaf(name, subj, "v3_client")),
    (async () => {
      await run("openssl", [
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "sa.key",
      ], pki);
      await run("openssl", ["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], pki);
    })(),
  ]);
}

/** Free 127.0.0.1 TCP ports (all listeners held until every port is chosen). */
function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

const b64 = (s: string) => btoa(s);

async function writeKubeconfig(
  path: string,
  server: string,
  pki: string,
  identity: string,
): Promise<void> {
  const [ca, cert, key] = await Promise.all([
    Deno.readTextFile(`${pki}/ca.crt`),
    Deno.readTextFile(`${pki}/${identity}.crt`),
    Deno.readTextFile(`${pki}/${identity}.key`),
  ]);
  const doc = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "sdv-test",
      cluster: { server, "certificate-authority-data": b64(ca) },
    }],
    users: [{
      name: identity,
      user: { "client-certificate-data": b64(cert), "client-key-data": b64(key) },
    }],
    contexts: [{ name: identity, context: { cluster: "sdv-test", user: identity } }],
    "current-context": identity,
    preferences: {},
  };
  await Deno.writeTextFile(path, stringify(doc), { mode: 0o600 });
}

interface Proc {
  name: string;
  pid: number;
  logPath: string;
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
}

/** Minimal JSON client over mTLS, for setup and readiness checks. */
class Api {
  #client: Deno.HttpClient;
  constructor(readonly server: string, ca: string, cert: string, key: string) {
    this.#client = Deno.createHttpClient({ caCerts: [ca], cert, key });
  }

  async request(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; json: unknown; text: string }> {
    const res = await fetch(`${this.server}${path}`, {
      method,
      client: this.#client,
      headers: body === undefined ? {} : { "content-type": contentType },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    let json: unknown = undefined;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON (e.g. /readyz)
    }
    return { status: res.status, json, text };
  }

  close(): void {
    this.#client.close();
  }
}

/** Resource path (for server-side apply) of the kinds rbac.yaml may contain. */
function resourcePath(obj: Record<string, unknown>): string {
  const kind = obj.kind as string;
  const md = (obj.metadata ?? {}) as { name?: string; namespace?: string };
  if (!md.name) throw new Error(`object of kind ${kind} without metadata.name`);
  const ns = md.namespace ?? "default";
  switch (kind) {
    case "Namespace":
      return `/api/v1/namespaces/${md.name}`;
    case "ServiceAccount":
      return `/api/v1/namespaces/${ns}/serviceaccounts/${md.name}`;
    case "ClusterRole":
      return `/apis/rbac.authorization.k8s.io/v1/clusterroles/${md.name}`;
    case "ClusterRoleBinding":
      return `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${md.name}`;
    case "Role":
      return `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/${md.name}`;
    case "RoleBinding":
      return `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/${md.name}`;
    default:
      throw new Error(`control_plane.ts cannot apply kind ${kind} (extend resourcePath)`);
  }
}

/** Server-side applies every document of a YAML file. */
async function applyYamlFile(api: Api, path: string): Promise<number> {
  const docs = parseAllDocuments(await Deno.readTextFile(path));
  let applied = 0;
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0].message}`);
    const obj = doc.toJS() as Record<string, unknown> | null;
    if (!obj) continue;
    const res = await api.request(
      "PATCH",
      `${resourcePath(obj)}?fieldManager=sdv-test-harness&force=true`,
      obj,
      "application/apply-patch+yaml",
    );
    if (res.status >= 300) {
      throw new Error(`apply ${obj.kind} from ${path}: HTTP ${res.status} ${res.text}`);
    }
    applied++;
  }
  return applied;
}

interface NodeJson {
  metadata: { name: string };
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

/**
 * Starts kine, kube-apiserver, kube-controller-manager, kube-scheduler and one kwok per
 * node, creates the Node objects, waits until every node is Ready (and its not-ready
 * taint is gone, so pods can be scheduled), applies config/k3s/rbac.yaml and writes the
 * admin and runtime kubeconfigs. On failure everything started is killed and the error
 * names the workDir (kept) and the tail of the failing log.
 *
 * Builds the binaries first (scripts/controlplane/build.sh) when the cache is missing,
 * unless `SDV_CP_NO_BUILD=1`, in which case it throws.
 */
export async function startControlPlane(opts: ControlPlaneOptions): Promise<ControlPlane> {
  const log = opts.log ?? (() => {});
  const startTimeoutMs = opts.startTimeoutMs ?? 120_000;
  const leaseDurationS = opts.nodeLeaseDurationS ?? UPSTREAM_DEFAULTS.nodeLeaseDurationS;
  if (!Number.isInteger(leaseDurationS) || leaseDurationS < 1) {
    throw new Error(`startControlPlane: nodeLeaseDurationS must be a whole number ≥ 1`);
  }
  if (opts.nodes.length === 0) throw new Error("startControlPlane: nodes must not be empty");
  if (new Set(opts.nodes).size !== opts.nodes.length) {
    throw new Error(`startControlPlane: duplicate node names in ${opts.nodes.join(",")}`);
  }
  if (
    Deno.env.get("SDV_CP_NO_BUILD") === "1" && !exists(`${controlPlaneCacheDir()}/.complete`)
  ) {
    // Fail before creating a temp dir that nobody would remove.
    await ensureBinaries("", log);
  }
  const ownWorkDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? (await Deno.makeTempDir({ prefix: "sdv-cp-" }));
  await Deno.mkdir(workDir, { recursive: true });

  const cache = await ensureBinaries(workDir, log);
  const bin = (name: string) => `${cache}/bin/${name}`;
  const stages = [...Deno.readDirSync(`${cache}/stages`)]
    .filter((e) => e.name.endsWith(".yaml"))
    .map((e) => `${cache}/stages/${e.name}`)
    .sort();

  const t0 = performance.now();
  const elapsed = () => `${((performance.now() - t0) / 1000).toFixed(2)} s`;
  const deadline = t0 + startTimeoutMs;

  const pki = `${workDir}/pki`;
  await makePki(pki);
  log(`PKI ready in ${workDir}/pki (${elapsed()})`);

  const procs: Proc[] = [];
  const pidsPath = `${workDir}/pids`;
  await Deno.writeTextFile(pidsPath, "");

  // Watchdog: if this Deno process dies without stop(), the pipe closes and the
  // watchdog SIGKILLs every pid in workDir/pids.
  const watchdog = new Deno.Command("sh", {
    args: [
      "-c",
      'while read -r _; do :; done; kill -9 $(cat "$0") 2>/dev/null; exit 0',
      pidsPath,
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
  watchdog.unref();
  const watchdogStdin = watchdog.stdin.getWriter();

  const spawn = async (name: string, path: string, args: string[]): Promise<Proc> => {
    const logPath = `${workDir}/${name}.log`;
    const child = new Deno.Command("sh", {
      args: ["-c", 'exec "$0" "$@" >>"$SDV_CP_LOG" 2>&1', path, ...args],
      env: { SDV_CP_LOG: logPath },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const proc: Proc = {
      name,
      pid: child.pid,
      logPath,
      child,
      status: child.status,
      exited: false,
    };
    proc.status = child.status.then((s) => {
      proc.exited = true;
      return s;
    });
    // Unref'd: a forgotten stop() must not keep the test process alive (the watchdog
    // then kills the children when this process exits). Re-ref'd before awaiting exit.
    child.unref();
    procs.push(proc);
    await Deno.writeTextFile(pidsPath, `${child.pid}\n`, { append: true });
    log(`started ${name} pid ${child.pid} (${elapsed()})`);
    return proc;
  };

  let api: Api | undefined;
  let stopped: Promise<void> | undefined;
  const onUnload = () => {
    for (const p of procs) {
      if (!p.exited) {
        try {
          Deno.kill(p.pid, "SIGKILL");
        } catch { /* gone */ }
      }
    }
  };
  globalThis.addEventListener("unload", onUnload);

  const killAll = async (removeWorkDir: boolean): Promise<void> => {
    globalThis.removeEventListener("unload", onUnload);
    api?.close();
    for (const p of procs) {
      if (!p.exited) {
        try {
          p.child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
    }
    await Promise.all(procs.map(async (p) => {
      p.child.ref();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        p.status.then(() => false),
        new Promise<boolean>((r) => timer = setTimeout(() => r(true), STOP_GRACE_MS)),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        try {
          p.child.kill("SIGKILL");
        } catch { /* gone */ }
        await p.status;
      }
    }));
    // Everything is dead: end the watchdog without letting it kill (possibly reused) pids.
    watchdog.ref();
    try {
      watchdog.kill("SIGKILL");
    } catch { /* gone */ }
    await watchdog.status;
    try {
      await watchdogStdin.close();
    } catch { /* pipe already broken */ }
    if (removeWorkDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
  };

  const stop = (): Promise<void> => {
    stopped ??= killAll(ownWorkDir && Deno.env.get("SDV_CP_KEEP_WORKDIR") !== "1").then(() =>
      log(`control plane stopped`)
    );
    return stopped;
  };

  /** Polls `check` until it returns true; fails fast if a process died. */
  const waitUntil = async (
    what: string,
    check: () => Promise<boolean>,
    intervalMs = 100,
  ): Promise<void> => {
    let lastErr: unknown;
    while (performance.now() < deadline) {
      const dead = procs.find((p) => p.exited);
      if (dead) {
        throw new Error(
          `${dead.name} exited while waiting for ${what}; last lines of ${dead.logPath}:\n` +
            (await tail(dead.logPath)),
        );
      }
      try {
        if (await check()) return;
      } catch (e) {
        lastErr = e;
      }
      await sleep(intervalMs);
    }
    throw new Error(
      `timed out after ${startTimeoutMs} ms waiting for ${what}` +
        (lastErr ? ` (last error: ${lastErr})` : ""),
    );
  };

  try {
    const nodeCount = opts.nodes.length;
    const [kinePort, apiPort, cmPort, schedPort, ...kwokPorts] = freePorts(4 + nodeCount);
    const server = `https://127.0.0.1:${apiPort}`;

    // ---- kine ---------------------------------------------------------------
    await spawn("kine", bin("kine"), [
      "--listen-address",
      `127.0.0.1:${kinePort}`,
      "--endpoint",
      `sqlite://${workDir}/state.db?_journal=WAL&cache=shared`,
      "--metrics-bind-address",
      "0",
    ]);
    await waitUntil("kine to listen", async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: kinePort });
      conn.close();
      return true;
    });
    log(`kine listening on ${kinePort} (${elapsed()})`);

    // ---- kube-apiserver -----------------------------------------------------
    const apiserver = await spawn("kube-apiserver", bin("kube-apiserver"), [
      `--etcd-servers=http://127.0.0.1:${kinePort}`,
      "--storage-backend=etcd3",
      "--bind-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      "--advertise-address=127.0.0.1",
      // Loopback advertise address is refused by the default endpoint reconciler.
      "--endpoint-reconciler-type=none",
      `--tls-cert-file=${pki}/apiserver.crt`,
      `--tls-private-key-file=${pki}/apiserver.key`,
      `--client-ca-file=${pki}/ca.crt`,
      "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
      `--service-account-key-file=${pki}/sa.pub`,
      `--service-account-signing-key-file=${pki}/sa.key`,
      "--service-cluster-ip-range=10.43.0.0/16",
      "--authorization-mode=Node,RBAC",
      // No token controller runs; DefaultTolerationSeconds stays on (default plugin set),
      // so pods get the 300 s not-ready/unreachable tolerations like on K3s.
      "--disable-admission-plugins=ServiceAccount",
      "--enable-admission-plugins=DefaultTolerationSeconds",
      "--allow-privileged=true",
      "--profiling=false",
      ...(opts.defaultNotReadyTolerationS === undefined
        ? []
        : [`--default-not-ready-toleration-seconds=${opts.defaultNotReadyTolerationS}`]),
      ...(opts.defaultUnreachableTolerationS === undefined
        ? []
        : [`--default-unreachable-toleration-seconds=${opts.defaultUnreachableTolerationS}`]),
    ]);
    const [ca, adminCert, adminKey] = await Promise.all([
      Deno.readTextFile(`${pki}/ca.crt`),
      Deno.readTextFile(`${pki}/admin.crt`),
      Deno.readTextFile(`${pki}/admin.key`),
    ]);
    api = new Api(server, ca, adminCert, adminKey);
    const adminApi = api;
    await waitUntil("kube-apiserver /readyz", async () => {
      const res = await adminApi.request("GET", "/readyz");
      return res.status === 200;
    }, 200);
    log(`kube-apiserver ready at ${server} (${elapsed()})`);

    // ---- kubeconfigs ----------------------------------------------------------
    const kc = (identity: string) => `${workDir}/${identity}.kubeconfig`;
    await Promise.all(
      Object.keys(CLIENTS).map((id) => writeKubeconfig(kc(id), server, pki, id)),
    );

    // ---- RBAC for the runtime -------------------------------------------------
    const applied = await applyYamlFile(adminApi, RBAC_YAML);
    log(`applied ${applied} objects from config/k3s/rbac.yaml (${elapsed()})`);

    // ---- controller-manager and scheduler -------------------------------------
    await spawn("kube-controller-manager", bin("kube-controller-manager"), [
      `--kubeconfig=${kc("controller-manager")}`,
      `--authentication-kubeconfig=${kc("controller-manager")}`,
      `--authorization-kubeconfig=${kc("controller-manager")}`,
      "--leader-elect=false",
      "--use-service-account-credentials=false",
      "--controllers=*,-serviceaccount-token",
      `--root-ca-file=${pki}/ca.crt`,
      `--service-account-private-key-file=${pki}/sa.key`,
      `--cluster-signing-cert-file=${pki}/ca.crt`,
      `--cluster-signing-key-file=${pki}/ca.key`,
      "--bind-address=127.0.0.1",
      `--secure-port=${cmPort}`,
      "--profiling=false",
      ...(opts.nodeMonitorGracePeriodS === undefined
        ? []
        : [`--node-monitor-grace-period=${opts.nodeMonitorGracePeriodS}s`]),
      ...(opts.nodeMonitorPeriodS === undefined
        ? []
        : [`--node-monitor-period=${opts.nodeMonitorPeriodS}s`]),
    ]);
    await spawn("kube-scheduler", bin("kube-scheduler"), [
      `--kubeconfig=${kc("scheduler")}`,
      `--authentication-kubeconfig=${kc("scheduler")}`,
      `--authorization-kubeconfig=${kc("scheduler")}`,
      "--leader-elect=false",
      "--bind-address=127.0.0.1",
      `--secure-port=${schedPort}`,
      "--profiling=false",
    ]);

    // ---- nodes -------------------------------------------------------------------
    for (const [i, name] of opts.nodes.entries()) {
      const res = await adminApi.request("POST", "/api/v1/nodes", {
        apiVersion: "v1",
        kind: "Node",
        metadata: {
          name,
          labels: {
            "kubernetes.io/hostname": name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "arm64",
            "node.kubernetes.io/instance-type": "jetson",
            type: "kwok",
          },
          annotations: {
            "kwok.x-k8s.io/node": "fake",
            "node.alpha.kubernetes.io/ttl": "0",
          },
        },
        spec: { podCIDR: `10.42.${i}.0/24`, podCIDRs: [`10.42.${i}.0/24`] },
      });
      if (res.status !== 201 && res.status !== 409) {
        throw new Error(`create node ${name}: HTTP ${res.status} ${res.text}`);
      }
    }
    const kwokByNode = new Map<string, Proc>();
    const kwokArgs = (name: string) => {
      const i = opts.nodes.indexOf(name);
      return [
        `--kubeconfig=${kc("kwok")}`,
        `--manage-single-node=${name}`,
        `--server-address=127.0.0.1:${kwokPorts[i]}`,
        // Without it kwok creates no Lease and nodes flap NotReady; renewals every duration / 4.
        `--node-lease-duration-seconds=${leaseDurationS}`,
        `--node-ip=10.0.0.${i + 1}`,
        `--cidr=10.42.${i}.0/24`,
        ...stages.flatMap((s) => ["-c", s]),
      ];
    };
    for (const name of opts.nodes) {
      kwokByNode.set(name, await spawn(`kwok-${name}`, bin("kwok"), kwokArgs(name)));
    }

    await waitUntil(`nodes ${opts.nodes.join(",")} Ready and untainted`, async () => {
      const res = await adminApi.request("GET", "/api/v1/nodes");
      if (res.status !== 200) return false;
      const items = (res.json as { items: NodeJson[] }).items;
      return opts.nodes.every((name) => {
        const n = items.find((x) => x.metadata.name === name);
        if (!n) return false;
        const ready = n.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
        const tainted = (n.spec?.taints ?? []).some((t) => t.key === NOT_READY_TAINT);
        return ready && !tainted;
      });
    }, 250);
    await waitUntil("node Leases in kube-node-lease", async () => {
      const res = await adminApi.request(
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
      );
      if (res.status !== 200) return false;
      const names = new Set(
        (res.json as { items: { metadata: { name: string } }[] }).items.map((l) => l.metadata.name),
      );
      return opts.nodes.every((n) => names.has(n));
    });
    log(`all ${nodeCount} nodes Ready (${elapsed()})`);

    const killNode = async (name: string): Promise<void> => {
      const p = kwokByNode.get(name);
      if (!p) throw new Error(`killNode: unknown node ${name} (have ${opts.nodes.join(",")})`);
      p.child.ref();
      if (!p.exited) {
        try {
          p.child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await p.status;
      log(`killed kwok of ${name} (pid ${p.pid})`);
    };

    const leasePath = (name: string) =>
      `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`;
    const restarts = new Map<string, number>();
    const restartNode = async (name: string): Promise<void> => {
      if (!kwokByNode.has(name)) {
        throw new Error(`restartNode: unknown node ${name} (have ${opts.nodes.join(",")})`);
      }
      await killNode(name);
      const del = await adminApi.request("DELETE", leasePath(name));
      if (del.status >= 300 && del.status !== 404) {
        throw new Error(`restartNode ${name}: delete Lease: HTTP ${del.status} ${del.text}`);
      }
      const n = (restarts.get(name) ?? 0) + 1;
      restarts.set(name, n);
      const p = await spawn(`kwok-${name}-r${n}`, bin("kwok"), kwokArgs(name));
      kwokByNode.set(name, p);
      const until = performance.now() + 30_000;
      for (;;) {
        if (p.exited) {
          throw new Error(
            `restartNode ${name}: kwok exited; last lines of ${p.logPath}:\n${await tail(
              p.logPath,
            )}`,
          );
        }
        const res = await adminApi.request("GET", leasePath(name)).catch(() => undefined);
        if (res?.status === 200) break;
        if (performance.now() > until) {
          throw new Error(`restartNode ${name}: no new Lease within 30 s (log ${p.logPath})`);
        }
        await sleep(50);
      }
      log(`restarted kwok of ${name} (pid ${p.pid})`);
    };

    return {
      server,
      adminKubeconfigPath: kc("admin"),
      runtimeKubeconfigPath: kc("runtime"),
      workDir,
      killNode,
      restartNode,
      pauseApiServer: () => {
        Deno.kill(apiserver.pid, "SIGSTOP");
        log(`paused kube-apiserver (pid ${apiserver.pid})`);
      },
      resumeApiServer: () => {
        Deno.kill(apiserver.pid, "SIGCONT");
        log(`resumed kube-apiserver (pid ${apiserver.pid})`);
      },
      settings: {
        nodeMonitorPeriodS: opts.nodeMonitorPeriodS ?? UPSTREAM_DEFAULTS.nodeMonitorPeriodS,
        nodeMonitorGracePeriodS: opts.nodeMonitorGracePeriodS ??
          UPSTREAM_DEFAULTS.nodeMonitorGracePeriodS,
        nodeLeaseDurationS: leaseDurationS,
        leaseRenewIntervalS: leaseDurationS / 4,
        defaultNotReadyTolerationS: opts.defaultNotReadyTolerationS ??
          UPSTREAM_DEFAULTS.defaultNotReadyTolerationS,
        defaultUnreachableTolerationS: opts.defaultUnreachableTolerationS ??
          UPSTREAM_DEFAULTS.defaultUnreachableTolerationS,
      },
      stop,
    };
  } catch (e) {
    await killAll(false);
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`startControlPlane failed (logs kept in ${workDir}): ${msg}`, { cause: e });
  }
}
