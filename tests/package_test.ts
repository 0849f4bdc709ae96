/**
 * The ARM64 edge artefact: `deno task compile` failing fast without denort, `deno task package`
 * (contents, checksums, reproducibility, units, K3s manifest), `scripts/install-rootfs.sh` into a
 * root file system directory, and the packaged runtime + program actually running: natively
 * (x86_64) and, for the ARM64 package, under `qemu-aarch64-static` — `version`, `check` on the
 * shipped configs, and an MQTT round trip of `agent` and `run --dry-run` against a real mosquitto
 * (heartbeats seen, crash detected).
 *
 * Tests that need emulation are skipped with `SDV_SKIP_EMULATION=1` (they take ≈ 2 min: every
 * emulated Deno start costs 15–25 s); `scripts/setup_test_deps.sh` installs qemu otherwise.
 * Footprint figures (sizes, RSS, start → first heartbeat) are printed and written to
 * `tests/.results/package.json`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { parseAllDocuments } from "yaml";
import denoJson from "../deno.json" with { type: "json" };
import {
  elfMachine,
  fileElfMachine,
  PERMISSIONS,
  type Target,
  TARGETS,
} from "../scripts/compile.ts";
import {
  buildPackages,
  type BuiltPackage,
  type Manifest,
  OFFLINE_FLAGS,
  packageFileName,
  runtimeCacheDir,
  sha256File,
  sourceDateEpoch,
} from "../scripts/package.ts";
import { startMosquitto } from "./harness/mosquitto.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const SKIP_EMULATION = Deno.env.get("SDV_SKIP_EMULATION") === "1";
const QEMU = "qemu-aarch64-static";
const QEMU_LD_PREFIX = "/usr/aarch64-linux-gnu";
const VERSION = denoJson.version;
const ARM64 = TARGETS.find((t) => t.arch === "arm64")!;
const X64 = TARGETS.find((t) => t.arch === "x64")!;
/** Bound of one emulated Deno process (start-up alone is 15–25 s on 2 cores). */
const EMULATED_TIMEOUT_MS = 180_000;
const dec = new TextDecoder();

// ---------------------------------------------------------------------------------------------
// Shared fixtures: the packages are built once (twice, for the reproducibility check) per run.

const tempDirs: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  tempDirs.push(dir);
  return dir;
}
globalThis.addEventListener("unload", () => {
  for (const dir of tempDirs) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** Resolved once, so a commit landing between two builds cannot make them differ. */
let source: ReturnType<typeof sourceDateEpoch> | undefined;
let built: Promise<{ dir: string; packages: BuiltPackage[] }> | undefined;
/** The packages of both targets, built once into a temporary directory. */
function packages(): Promise<{ dir: string; packages: BuiltPackage[] }> {
  built ??= (async () => {
    const dir = await tempDir("sdv-pkg-a-");
    source ??= sourceDateEpoch();
    return { dir, packages: await buildPackages(TARGETS, dir, () => {}, await source) };
  })();
  return built;
}

const unpackedDirs = new Map<string, Promise<string>>();
/** The package of `target`, unpacked once; returns its root directory. */
function unpacked(target: Target): Promise<string> {
  let p = unpackedDirs.get(target.arch);
  if (!p) {
    p = (async () => {
      const { packages: pkgs } = await packages();
      const pkg = pkgs.find((p) => p.target.arch === target.arch)!;
      const dir = await tempDir(`sdv-unpacked-${target.arch}-`);
      await run("tar", ["-xzf", pkg.path, "-C", dir]);
      return `${dir}/sdv-failover-${VERSION}-linux-${target.arch}`;
    })();
    unpackedDirs.set(target.arch, p);
  }
  return p;
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    env: opts.env,
    cwd: opts.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, opts.timeoutMs ?? 60_000);
  try {
    const out = await child.output();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      ms: performance.now() - t0,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** True when `unshare -n` (a network namespace with no interface up) works here. */
let unshareOk: Promise<boolean> | undefined;
function canUnshareNet(): Promise<boolean> {
  unshareOk ??= run("unshare", ["-n", "true"]).then((r) => r.code === 0, () => false);
  return unshareOk;
}

/** Environment that runs the ARM64 runtime through qemu, via the launcher's emulator hook. */
function emulatorEnv(denoDir: string): Record<string, string> {
  return { SDV_FAILOVER_EMULATOR: QEMU, QEMU_LD_PREFIX, DENO_DIR: denoDir };
}

/** Runs the packaged launcher; offline (`unshare -n`) when `offline` and possible. */
async function launch(
  pkgRoot: string,
  args: string[],
  opts: { env?: Record<string, string>; offline?: boolean; timeoutMs?: number } = {},
): Promise<RunResult & { offline: boolean }> {
  const launcher = `${pkgRoot}/bin/sdv-failover`;
  const offline = (opts.offline ?? false) && await canUnshareNet();
  const r = offline
    ? await run("unshare", ["-n", launcher, ...args], opts)
    : await run(launcher, args, opts);
  return { ...r, offline };
}

const footprint: Record<string, unknown> = {};
async function recordFootprint(key: string, value: unknown): Promise<void> {
  footprint[key] = value;
  console.log(`footprint ${key}: ${JSON.stringify(value)}`);
  await Deno.mkdir(`${ROOT}/tests/.results`, { recursive: true });
  await Deno.writeTextFile(
    `${ROOT}/tests/.results/package.json`,
    JSON.stringify(footprint, null, 2) + "\n",
  );
}

// ---------------------------------------------------------------------------------------------
// compile

Deno.test("compile: without a denort runtime it fails fast and says how to provide DENORT_BIN", async () => {
  const denoDir = await tempDir("sdv-compile-denodir-");
  const env = {
    DENO_DIR: denoDir, // no cached denort
    DENORT_BIN: "",
    DENORT_BIN_AARCH64: "",
    DENORT_BIN_X86_64: "",
  };
  const args = ["run", "--allow-all", `${ROOT}/scripts/compile.ts`];
  // Offline for certain where a network namespace can be made; else the probe decides.
  const r = await canUnshareNet()
    ? await run("unshare", ["-n", Deno.execPath(), ...args], { env, cwd: ROOT })
    : await run(Deno.execPath(), args, { env, cwd: ROOT });
  if (r.code === 0) {
    // Deno's download host was reachable here: nothing to prove about the offline path.
    console.log("compile: the download host is reachable here; compiled instead of failing");
    return;
  }
  assert.equal(r.code, 1, r.stderr);
  assert.ok(r.ms < 20_000, `failed after ${r.ms} ms, not fast`);
  for (const t of TARGETS) {
    assert.match(r.stderr, new RegExp(`compile ${t.triple}: .*DENORT_BIN=/path/to/denort`));
    assert.match(r.stderr, new RegExp(`DENORT_BIN_${t.envSuffix}=`));
  }
  assert.match(r.stderr, /README, "Building the binary"/);
});

Deno.test("compile: a DENORT_BIN that is missing, of the wrong architecture or the deno CLI is refused at once", async () => {
  const x64Deno = `${await unpacked(X64)}/lib/deno`;
  const script = `${ROOT}/scripts/compile.ts`;
  const cases: [Record<string, string>, string, RegExp][] = [
    [
      { DENORT_BIN: "/nonexistent/denort" },
      "x86_64-unknown-linux-gnu",
      /DENORT_BIN=\/nonexistent\/denort: No such file/,
    ],
    [{ DENORT_BIN_AARCH64: x64Deno }, "arm64", /DENORT_BIN_AARCH64=\S+ is x86_64, not aarch64/],
    [{ DENORT_BIN: x64Deno }, "x64", /is the full deno CLI, not denort/],
  ];
  for (const [env, target, expected] of cases) {
    const r = await run(Deno.execPath(), ["run", "--allow-all", script, target], {
      env,
      cwd: ROOT,
    });
    assert.equal(r.code, 1, `${JSON.stringify(env)}: ${r.stderr}`);
    assert.match(r.stderr, expected);
    assert.ok(r.ms < 20_000, `${JSON.stringify(env)} took ${r.ms} ms`);
  }
  assert.equal(elfMachine(new Uint8Array(8)), undefined);
});

// ---------------------------------------------------------------------------------------------
// package

Deno.test("package: two runs give byte-identical archives", async () => {
  const a = await packages();
  const dirB = await tempDir("sdv-pkg-b-");
  const b = await buildPackages(TARGETS, dirB, () => {}, await source);
  for (const target of TARGETS) {
    const pa = a.packages.find((p) => p.target.arch === target.arch)!;
    const pb = b.find((p) => p.target.arch === target.arch)!;
    assert.equal(pa.path, `${a.dir}/${packageFileName(target)}`);
    assert.equal(pa.sha256, pb.sha256, `${target.arch}: archives differ`);
    assert.equal(await sha256File(pb.path), pb.sha256);
    assert.equal(
      (await Deno.readTextFile(`${pb.path}.sha256`)).trim(),
      `${pb.sha256}  ${packageFileName(target)}`,
    );
  }
  await recordFootprint(
    "packageBytes",
    Object.fromEntries(a.packages.map((p) => [p.target.arch, p.bytes])),
  );
});

Deno.test("package: contents, owners, modes and one fixed mtime; SHA256SUMS verify", async () => {
  const { packages: pkgs } = await packages();
  for (const pkg of pkgs) {
    const name = `sdv-failover-${VERSION}-linux-${pkg.target.arch}`;
    const listing = await run("tar", ["--utc", "--full-time", "-tvzf", pkg.path]);
    assert.equal(listing.code, 0, listing.stderr);
    const when = new Date(pkg.manifest.sourceDateEpoch * 1000).toISOString().slice(0, 19)
      .replace("T", " ");
    const entries = new Map<string, { mode: string; owner: string; time: string }>();
    for (const line of listing.stdout.trim().split("\n")) {
      const m = line.match(/^(\S+) (\S+)\s+\d+ (\S+ \S+) (.+)$/);
      assert.ok(m, line);
      entries.set(m[4], { mode: m[1], owner: m[2], time: m[3] });
    }
    const names = [...entries.keys()];
    assert.deepEqual(names, [...names].sort(), "entries sorted by name");
    for (const [path, e] of entries) {
      assert.ok(path === `${name}/` || path.startsWith(`${name}/`), path);
      assert.equal(e.owner, "0/0", path);
      assert.equal(e.time, when, path);
    }
    const files = [
      "bin/sdv-failover",
      "lib/deno",
      "lib/sdv-failover.js",
      "systemd/sdv-failover-agent.service",
      "systemd/sdv-failover-supervisor.service",
      "config/config.yaml",
      "config/example.yaml",
      "config/fast.yaml",
      "config/agent.env",
      "config/supervisor.env",
      "k3s/rbac.yaml",
      "k3s/supervisor-pod.yaml",
      "k3s/supervisor-pair.yaml",
      "install-rootfs.sh",
      "README.md",
      "MANIFEST.json",
      "SHA256SUMS",
    ];
    for (const f of files) assert.ok(entries.has(`${name}/${f}`), `${f} missing`);
    for (const f of ["bin/sdv-failover", "lib/deno", "install-rootfs.sh"]) {
      assert.equal(entries.get(`${name}/${f}`)!.mode, "-rwxr-xr-x", f);
    }
    assert.equal(entries.get(`${name}/config/config.yaml`)!.mode, "-rw-r--r--");

    const root = await unpacked(pkg.target);
    const sums = await run("sha256sum", ["--strict", "-c", "SHA256SUMS"], { cwd: root });
    assert.equal(sums.code, 0, sums.stdout + sums.stderr);
    const listed = (await Deno.readTextFile(`${root}/SHA256SUMS`)).trim().split("\n")
      .map((l) => l.slice(66));
    // every archived file (the fixed list above plus the bundle's lazily loaded chunks)
    const archived = [...entries.keys()].filter((p) => !p.endsWith("/"))
      .map((p) => p.slice(name.length + 1)).filter((f) => f !== "SHA256SUMS").sort();
    assert.deepEqual(listed, archived);
    assert.ok(
      archived.some((f) => /^lib\/kube_client-[A-Z0-9]+\.js$/.test(f)),
      "client-node is its own chunk",
    );
    assert.equal(
      await Deno.readTextFile(`${root}/config/config.yaml`),
      await Deno.readTextFile(`${ROOT}/config/example.yaml`),
    );
    assert.equal(
      await Deno.readTextFile(`${root}/k3s/rbac.yaml`),
      await Deno.readTextFile(`${ROOT}/config/k3s/rbac.yaml`),
    );
  }
});

Deno.test("package: runtime from npm with recorded checksums; ELF headers match the architecture", async () => {
  const { packages: pkgs } = await packages();
  for (const pkg of pkgs) {
    const root = await unpacked(pkg.target);
    const manifest: Manifest = JSON.parse(await Deno.readTextFile(`${root}/MANIFEST.json`));
    assert.deepEqual(manifest, pkg.manifest);
    assert.equal(manifest.version, VERSION);
    assert.equal(manifest.arch, pkg.target.arch);
    assert.equal(manifest.runtime.npmPackage, `@deno/linux-${pkg.target.arch}-glibc`);
    assert.equal(manifest.runtime.denoVersion, Deno.version.deno);
    assert.match(manifest.runtime.npmIntegrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
    // The npm tarball in the build cache is the one recorded.
    const tarball = `${runtimeCacheDir()}/${manifest.runtime.npmTarball}`;
    assert.equal(await sha256File(tarball), manifest.runtime.tarballSha256);
    assert.equal(await sha256File(`${root}/lib/deno`), manifest.runtime.binarySha256);
    assert.equal(await sha256File(`${root}/lib/sdv-failover.js`), manifest.program.sha256);
    // ELF: 64-bit little-endian, the target's machine.
    assert.equal(await fileElfMachine(`${root}/lib/deno`), pkg.target.machine);
    const readelf = await run("readelf", ["-h", `${root}/lib/deno`]).catch(() => undefined);
    if (readelf?.code === 0) {
      assert.match(
        readelf.stdout,
        pkg.target.arch === "arm64"
          ? /Machine:\s+AArch64/
          : /Machine:\s+Advanced Micro Devices X86-64/,
      );
      assert.match(readelf.stdout, /Class:\s+ELF64/);
    }
    // Launcher: the same permission set as the compiled binary, offline flags, never -A.
    const launcher = await Deno.readTextFile(`${root}/bin/sdv-failover`);
    assert.ok(launcher.includes([...OFFLINE_FLAGS.slice(-1), ...PERMISSIONS].join(" ")));
    for (const flag of OFFLINE_FLAGS) assert.ok(launcher.includes(flag), flag);
    assert.doesNotMatch(
      launcher,
      /(^|\s)(-A|--allow-all|--allow-run|--allow-write|--allow-ffi)(\s|$)/m,
    );
    // the write permissions: systemd's notification socket (in the shipped set, named in the
    // header comment too) and `run`'s journal in systemd's state directory
    assert.deepEqual(launcher.match(/--allow-write=\S*/g), [
      "--allow-write=/run/systemd/notify",
      "--allow-write=/run/systemd/notify",
      '--allow-write=${STATE_DIRECTORY%%:*}"',
    ]);
    assert.deepEqual(manifest.permissions, PERMISSIONS);
    // The version is embedded in the program.
    assert.ok(
      (await Deno.readTextFile(`${root}/lib/sdv-failover.js`)).includes(JSON.stringify(VERSION)),
    );
  }
});

Deno.test("package: the x86_64 package runs offline with its own runtime: version, check on the shipped configs", async () => {
  const root = await unpacked(X64);
  const denoDir = await tempDir("sdv-denodir-x64-");
  const env = { DENO_DIR: denoDir };
  const v = await launch(root, ["version"], { env, offline: true });
  assert.equal(v.code, 0, v.stderr);
  assert.equal(
    v.stdout.trim(),
    `sdv-failover ${VERSION} (deno ${Deno.version.deno}, x86_64-unknown-linux-gnu)`,
  );
  assert.equal(v.stderr, "");
  for (const cfg of ["config.yaml", "example.yaml", "fast.yaml"]) {
    const c = await launch(root, ["check", "--config", `${root}/config/${cfg}`], {
      env,
      offline: true,
    });
    assert.equal(c.code, 0, `${cfg}: ${c.stdout}${c.stderr}`);
    assert.match(c.stdout, /FTTI budgets/);
  }
  const broken = await launch(root, ["check", "--config", `${ROOT}/tests/fixtures/broken.yaml`], {
    env,
    offline: true,
  });
  assert.equal(broken.code, 2);
  console.log(
    `x86_64 package ran ${
      v.offline ? "in a network namespace with no network" : "(unshare -n unavailable)"
    }`,
  );
});

Deno.test("package: systemd units (restart, ordering, hardening) verify with systemd-analyze", async () => {
  const root = await unpacked(X64);
  for (const role of ["agent", "supervisor"]) {
    const unit = await Deno.readTextFile(`${root}/systemd/sdv-failover-${role}.service`);
    const has = (line: string) => assert.ok(unit.split("\n").includes(line), `${role}: ${line}`);
    has("Restart=always");
    has("RestartPreventExitStatus=2");
    has("StartLimitIntervalSec=0");
    has("Wants=network-online.target");
    assert.match(unit, /^After=network-online\.target k3s\.service/m);
    for (
      const opt of [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "PrivateTmp=yes",
        "SystemCallFilter=@system-service",
      ]
    ) has(opt);
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=yes/m, "V8's JIT needs W+X pages");
    has("WantedBy=multi-user.target");
    assert.match(
      unit,
      new RegExp(
        `^ExecStart=/opt/sdv-failover/bin/sdv-failover ${
          role === "agent" ? "agent" : "run"
        } --config `,
        "m",
      ),
    );
  }
  if (!await run("systemd-analyze", ["--version"]).then((r) => r.code === 0, () => false)) {
    console.log("systemd-analyze not available: unit verification skipped");
    return;
  }
  // verify: ExecStart must exist, so point the units at the unpacked package.
  const dir = await tempDir("sdv-units-");
  const units: string[] = [];
  for (const role of ["agent", "supervisor"]) {
    const text = (await Deno.readTextFile(`${root}/systemd/sdv-failover-${role}.service`))
      .replaceAll("/opt/sdv-failover", root);
    units.push(`${dir}/sdv-failover-${role}.service`);
    await Deno.writeTextFile(units.at(-1)!, text);
  }
  const verify = await run("systemd-analyze", ["verify", ...units]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr.trim(), "", "no warnings");
  // Exposure score on the installed tree (offline analysis, no running systemd needed).
  const rootfs = await fakeRootfs("aarch64");
  const inst = await installRootfs(rootfs, [
    "--role",
    "agent",
    "--role",
    "supervisor",
    "--package",
    (await packages()).packages.find((p) => p.target.arch === "arm64")!.path,
  ]);
  assert.equal(inst.code, 0, inst.stderr);
  const exposure: Record<string, number> = {};
  for (const role of ["agent", "supervisor"]) {
    const sec = await run("systemd-analyze", [
      "security",
      "--offline=yes",
      `--root=${rootfs}`,
      `sdv-failover-${role}.service`,
    ]);
    const m = sec.stdout.match(/Overall exposure level for \S+: (\d+\.\d+)/);
    if (!m) {
      console.log(`systemd-analyze security --offline unsupported here: ${sec.stderr.trim()}`);
      return;
    }
    exposure[role] = Number(m[1]);
    assert.ok(exposure[role] < 3.0, `${role} exposure ${m[1]} (systemd: < 3 is "OK")`);
  }
  await recordFootprint("systemdExposure", exposure);
});

Deno.test("package: K3s manifest runs the supervisor as a critical hostNetwork pod with a valid in-cluster config", async () => {
  const root = await unpacked(X64);
  const docs = parseAllDocuments(await Deno.readTextFile(`${root}/k3s/supervisor-pod.yaml`))
    .map((d) => d.toJS());
  const cm = docs.find((d) => d?.kind === "ConfigMap");
  const dep = docs.find((d) => d?.kind === "Deployment");
  assert.ok(cm && dep);
  assert.equal(dep.metadata.namespace, "kube-system");
  assert.equal(dep.metadata.labels["app.kubernetes.io/version"], VERSION);
  assert.equal(dep.spec.replicas, 1);
  assert.equal(dep.spec.strategy.type, "Recreate");
  const pod = dep.spec.template.spec;
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
  assert.match(pod.priorityClassName, /^system-(cluster|node)-critical$/);
  assert.equal(pod.serviceAccountName, "sdv-failover");
  const keys = pod.tolerations.map((t: { key: string }) => t.key);
  for (
    const k of [
      "CriticalAddonsOnly",
      "node-role.kubernetes.io/control-plane",
      "node.kubernetes.io/unreachable",
    ]
  ) {
    assert.ok(keys.includes(k), k);
  }
  const c = pod.containers[0];
  assert.deepEqual(c.command.slice(0, 2), ["/opt/sdv-failover/bin/sdv-failover", "run"]);
  // The probes reach the endpoint on the node's address (hostNetwork: the pod IP).
  assert.deepEqual(c.command.slice(-2), ["--http-listen", "$(POD_IP):9464"]);
  assert.deepEqual(c.env.find((e: { name: string }) => e.name === "POD_IP").valueFrom, {
    fieldRef: { fieldPath: "status.podIP" },
  });
  assert.deepEqual(c.ports, [{ name: "metrics", containerPort: 9464, protocol: "TCP" }]);
  assert.equal(c.livenessProbe.httpGet.path, "/healthz");
  assert.equal(c.readinessProbe.httpGet.path, "/readyz");
  assert.equal(c.livenessProbe.httpGet.port, "metrics");
  assert.equal(c.readinessProbe.httpGet.port, "metrics");
  assert.equal(c.securityContext.allowPrivilegeEscalation, false);
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  // The ServiceAccount it names is the one of the RBAC manifest.
  const rbac = parseAllDocuments(await Deno.readTextFile(`${root}/k3s/rbac.yaml`)).map((d) =>
    d.toJS()
  );
  assert.ok(
    rbac.some((d) =>
      d?.kind === "ServiceAccount" && d.metadata.name === pod.serviceAccountName &&
      d.metadata.namespace === "kube-system"
    ),
  );
  // Its config is the package's, in-cluster, and valid.
  const cfgFile = `${await tempDir("sdv-podcfg-")}/config.yaml`;
  await Deno.writeTextFile(cfgFile, cm.data["config.yaml"]);
  const parsed = parseAllDocuments(cm.data["config.yaml"])[0].toJS();
  assert.equal(parsed.cluster.inCluster, true);
  assert.equal(parsed.cluster.kubeconfig, undefined);
  const check = await launch(root, ["check", "--config", cfgFile], {
    env: { DENO_DIR: await tempDir("sdv-denodir-") },
  });
  assert.equal(check.code, 0, check.stdout + check.stderr);
});

// ---------------------------------------------------------------------------------------------
// install-rootfs.sh

/** A directory that looks like a root file system of `machine` (an ELF usr/bin/env header). */
async function fakeRootfs(machine: "aarch64" | "x86_64"): Promise<string> {
  const dir = await tempDir("sdv-rootfs-");
  await Deno.mkdir(`${dir}/usr/bin`, { recursive: true });
  const h = new Uint8Array(64);
  h.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  h[16] = 2; // ET_EXEC
  h[18] = machine === "aarch64" ? 0xb7 : 0x3e;
  await Deno.writeFile(`${dir}/usr/bin/env`, h);
  return dir;
}

function installRootfs(
  rootfs: string,
  args: string[],
  script = `${ROOT}/scripts/install-rootfs.sh`,
) {
  return run("bash", [script, rootfs, ...args]);
}

/** Every path under `dir` with its type, mode, link target or content hash. */
async function snapshot(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const entries = [];
  for await (const e of Deno.readDir(`${dir}${rel}`)) entries.push(e);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const e of entries) {
    const path = `${rel}/${e.name}`;
    const st = await Deno.lstat(`${dir}${path}`);
    const mode = (st.mode! & 0o7777).toString(8);
    const mtime = st.mtime?.getTime();
    if (e.isSymlink) out.push(`${path} -> ${await Deno.readLink(`${dir}${path}`)} ${mtime}`);
    else if (e.isDirectory) out.push(`${path}/ ${mode} ${mtime}`, ...await snapshot(dir, path));
    else {out.push(
        `${path} ${mode} ${st.size} ${st.mtime?.getTime()} ${
          st.size < 1e6 ? await sha256File(`${dir}${path}`) : ""
        }`,
      );}
  }
  return out;
}

Deno.test("install-rootfs: installs the ARM64 package into a rootfs, enables the unit by symlink, idempotent, config kept", async () => {
  const { packages: pkgs } = await packages();
  const arm64 = pkgs.find((p) => p.target.arch === "arm64")!;
  const rootfs = await fakeRootfs("aarch64");
  const first = await installRootfs(rootfs, [
    "--role",
    "agent",
    "--node",
    "worker-node2",
    "--package",
    arm64.path,
  ]);
  assert.equal(first.code, 0, first.stderr);
  const opt = `${rootfs}/opt/sdv-failover`;
  assert.equal(await fileElfMachine(`${opt}/lib/deno`), "aarch64");
  const sums = await run("sha256sum", ["--strict", "-c", "SHA256SUMS"], { cwd: opt });
  assert.equal(sums.code, 0, sums.stdout);
  assert.equal(
    await Deno.readLink(`${rootfs}/usr/local/bin/sdv-failover`),
    "/opt/sdv-failover/bin/sdv-failover",
  );
  const wants = `${rootfs}/etc/systemd/system/multi-user.target.wants`;
  assert.equal(
    await Deno.readLink(`${wants}/sdv-failover-agent.service`),
    "/etc/systemd/system/sdv-failover-agent.service",
  );
  await assert.rejects(Deno.lstat(`${wants}/sdv-failover-supervisor.service`));
  assert.ok(
    (await Deno.stat(`${rootfs}/etc/systemd/system/sdv-failover-supervisor.service`)).isFile,
  );
  const agentEnv = await Deno.readTextFile(`${rootfs}/etc/sdv-failover/agent.env`);
  assert.match(agentEnv, /^SDV_NODE=worker-node2$/m);
  assert.equal((await Deno.stat(`${rootfs}/etc/sdv-failover/agent.env`)).mode! & 0o777, 0o600);
  assert.equal(
    await Deno.readTextFile(`${rootfs}/etc/sdv-failover/config.yaml`),
    await Deno.readTextFile(`${ROOT}/config/example.yaml`),
  );

  // Idempotent: a second run changes nothing, not even an mtime.
  const before = await snapshot(rootfs);
  const second = await installRootfs(rootfs, [
    "--role",
    "agent",
    "--node",
    "worker-node2",
    "--package",
    arm64.path,
  ]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stdout, /already holds sdv-failover/);
  assert.deepEqual(await snapshot(rootfs), before);

  // Configuration present is never overwritten, even when asked for another node.
  await Deno.writeTextFile(`${rootfs}/etc/sdv-failover/config.yaml`, "# edited on the device\n");
  const third = await installRootfs(rootfs, ["--node", "worker-node3", "--package", arm64.path]);
  assert.equal(third.code, 0, third.stderr);
  assert.equal(
    await Deno.readTextFile(`${rootfs}/etc/sdv-failover/config.yaml`),
    "# edited on the device\n",
  );
  assert.equal(await Deno.readTextFile(`${rootfs}/etc/sdv-failover/agent.env`), agentEnv);
  assert.match(third.stdout, /--node worker-node3 not applied/);

  // Switching roles: supervisor enabled, agent disabled, RBAC dropped into K3s's manifests.
  const sup = await installRootfs(rootfs, ["--role", "supervisor", "--package", arm64.path]);
  assert.equal(sup.code, 0, sup.stderr);
  assert.equal(
    await Deno.readLink(`${wants}/sdv-failover-supervisor.service`),
    "/etc/systemd/system/sdv-failover-supervisor.service",
  );
  await assert.rejects(Deno.lstat(`${wants}/sdv-failover-agent.service`));
  const manifests = `${rootfs}/var/lib/rancher/k3s/server/manifests`;
  assert.ok((await Deno.stat(`${manifests}/sdv-failover-rbac.yaml`)).isFile);
  // ... or as a K3s pod instead of the unit.
  const pod = await installRootfs(rootfs, [
    "--role",
    "supervisor",
    "--k3s-pod",
    "--package",
    arm64.path,
  ]);
  assert.equal(pod.code, 0, pod.stderr);
  await assert.rejects(Deno.lstat(`${wants}/sdv-failover-supervisor.service`));
  assert.ok((await Deno.stat(`${manifests}/sdv-failover-supervisor.yaml`)).isFile);

  // The copy inside the package installs the package it belongs to.
  const fresh = await fakeRootfs("aarch64");
  const inner = await installRootfs(fresh, [], `${await unpacked(ARM64)}/install-rootfs.sh`);
  assert.equal(inner.code, 0, inner.stderr);
  assert.equal(
    await sha256File(`${fresh}/opt/sdv-failover/lib/deno`),
    arm64.manifest.runtime.binarySha256,
  );
  assert.ok(
    (await Deno.lstat(
      `${fresh}/etc/systemd/system/multi-user.target.wants/sdv-failover-agent.service`,
    )).isSymlink,
  );
});

Deno.test("install-rootfs: clear errors for a wrong architecture, a missing directory, a bare tree, a damaged package", async () => {
  const { packages: pkgs } = await packages();
  const x64 = pkgs.find((p) => p.target.arch === "x64")!;
  const arm64 = pkgs.find((p) => p.target.arch === "arm64")!;
  const jetson = await fakeRootfs("aarch64");
  const wrong = await installRootfs(jetson, ["--package", x64.path]);
  assert.equal(wrong.code, 2);
  assert.match(
    wrong.stderr,
    /wrong architecture: .*linux-x64\.tar\.gz' is for x86_64 \(x64\), but ROOTFS .* is aarch64; use sdv-failover-[\d.]+-linux-arm64\.tar\.gz/,
  );
  await assert.rejects(Deno.lstat(`${jetson}/opt/sdv-failover`), "nothing installed");
  const pc = await fakeRootfs("x86_64");
  assert.equal((await installRootfs(pc, ["--package", arm64.path])).code, 2);

  const missing = await installRootfs(`${jetson}/no/such/rootfs`, ["--package", arm64.path]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /is not a directory \(expected the target's root file system/);

  const bare = await tempDir("sdv-bare-");
  const b = await installRootfs(bare, ["--package", arm64.path]);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /cannot tell the architecture .* --arch arm64/);
  assert.equal((await installRootfs(bare, ["--arch", "arm64", "--package", arm64.path])).code, 0);
  const contra = await installRootfs(jetson, ["--arch", "x86_64", "--package", arm64.path]);
  assert.equal(contra.code, 2);
  assert.match(contra.stderr, /wrong architecture: --arch says x86_64/);

  // A package whose files no longer match its SHA256SUMS.
  const damaged = await tempDir("sdv-damaged-");
  await run("cp", ["-R", await unpacked(ARM64), `${damaged}/pkg`]);
  await Deno.writeTextFile(`${damaged}/pkg/lib/sdv-failover.js`, "// tampered\n", { append: true });
  const d = await installRootfs(jetson, ["--package", `${damaged}/pkg`]);
  assert.equal(d.code, 2);
  assert.match(d.stderr, /damaged: its files do not match its SHA256SUMS/);

  const usage = await installRootfs(jetson, ["--role", "server"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--role 'server': use agent or supervisor/);
  assert.equal(
    (await installRootfs(jetson, ["--node", "Bad_Name", "--package", arm64.path])).code,
    2,
  );
});

// ---------------------------------------------------------------------------------------------
// Running the packages: an MQTT round trip of agent + supervisor against a real mosquitto.

/** A spawned packaged program whose JSON log lines are collected. */
interface Proc {
  child: Deno.ChildProcess;
  lines: Record<string, unknown>[];
  raw: string[];
  spawnedAt: number;
  waitFor(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Record<string, unknown>>;
  /** VmRSS and VmHWM in kB from /proc. */
  memory(): Promise<{ rssKb: number; hwmKb: number }>;
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

function spawnPackaged(pkgRoot: string, args: string[], env: Record<string, string>): Proc {
  const spawnedAt = performance.now();
  const child = new Deno.Command(`${pkgRoot}/bin/sdv-failover`, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const waiters: {
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text);
        } catch {
          raw.push(text);
          continue;
        }
        lines.push(line);
        for (const w of [...waiters]) {
          if (w.pred(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let status: Deno.CommandStatus | undefined;
  const done = child.status.then((s) => (status = s));
  return {
    child,
    lines,
    raw,
    spawnedAt,
    waitFor(pred, timeoutMs, what) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what}:\n${
                [...raw.slice(-10), ...lines.slice(-10).map((l) => JSON.stringify(l))].join("\n")
              }`,
            ),
          );
        }, timeoutMs);
        const entry = {
          pred,
          resolve: (l: Record<string, unknown>) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        waiters.push(entry);
        done.then(() => {
          if (!waiters.includes(entry)) return;
          waiters.splice(waiters.indexOf(entry), 1);
          clearTimeout(timer);
          reject(
            new Error(
              `${what}: process exited ${status?.code}:\n${
                [...raw.slice(-10), ...lines.slice(-10).map((l) => JSON.stringify(l))].join("\n")
              }`,
            ),
          );
        });
      });
    },
    async memory() {
      const text = await Deno.readTextFile(`/proc/${child.pid}/status`);
      const kb = (key: string) => Number(text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"))?.[1]);
      return { rssKb: kb("VmRSS"), hwmKb: kb("VmHWM") };
    },
    async stop(signal: Deno.Signal = "SIGTERM") {
      if (!status) {
        try {
          child.kill(signal);
        } catch { /* gone */ }
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 20_000);
      const s = await child.status;
      clearTimeout(timer);
      await pumps;
      return s;
    },
  };
}

/**
 * Starts the agent of `agentPkg` against a fresh mosquitto and measures its first heartbeat, then
 * the supervisor of `supervisorPkg` (`run --dry-run`), lets both run, samples their memory,
 * SIGKILLs the agent and waits for the supervisor's expiry of that node.
 */
async function roundTrip(
  label: string,
  agentPkg: { root: string; env: Record<string, string>; node: string },
  supervisorPkg: { root: string; env: Record<string, string> },
  timeoutMs: number,
  opts: { cache: "cold" | "warm"; maxAgentRssMB?: number },
): Promise<void> {
  const broker = await startMosquitto();
  const procs: Proc[] = [];
  const sub = mqtt.connect(broker.url, { clientId: `package-test-${label}`, reconnectPeriod: 0 });
  try {
    const node = agentPkg.node;
    const dir = await tempDir("sdv-roundtrip-");
    const config = `${dir}/config.yaml`;
    // Generous timeouts: under emulation timers and GC are ≈ 10× slower than on the Jetson.
    await Deno.writeTextFile(
      config,
      [
        "supervisor:",
        "  bootWindowMs: 600000",
        "  barrierTimeoutMs: 3000",
        "  shutdownTimeoutMs: 3000",
        "mqtt:",
        `  url: ${broker.url}`,
        "nodes:",
        `  - name: ${node}`,
        "    heartbeatPeriodMs: 100",
        "    heartbeatTimeoutMs: 3000",
        "",
      ].join("\n"),
    );
    const beats: number[] = [];
    let firstBeat: () => void = () => {};
    const firstBeatSeen = new Promise<void>((resolve) => (firstBeat = resolve));
    // The client was created before the awaits above: it may be connected already, and a
    // `connect` listener added now would never fire (this hung a CI run). Bounded as well.
    let subTimer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve, reject) => {
      const subscribe = () =>
        sub.subscribe(`sdv/node/${node}/hb`, { qos: 0 }, (e) => (e ? reject(e) : resolve()));
      if (sub.connected) subscribe();
      else sub.once("connect", subscribe);
      sub.once("error", reject);
      subTimer = setTimeout(() => reject(new Error("subscriber did not connect in 10 s")), 10_000);
    }).finally(() => clearTimeout(subTimer));
    sub.on("message", () => {
      beats.push(performance.now());
      if (beats.length === 1) firstBeat();
    });

    // Agent and supervisor start together (each emulated start takes tens of seconds); the
    // long start-up grace keeps the supervisor from failing a node that is still starting.
    const agent = spawnPackaged(agentPkg.root, [
      "agent",
      "--config",
      config,
      "--node",
      node,
      "--log-format",
      "json",
    ], agentPkg.env);
    procs.push(agent);
    const supervisor = spawnPackaged(supervisorPkg.root, [
      "run",
      "--config",
      config,
      "--dry-run",
      "--log-format",
      "json",
    ], supervisorPkg.env);
    procs.push(supervisor);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      firstBeatSeen,
      agent.child.status.then((s) => {
        throw new Error(
          `agent exited ${s.code} before its first heartbeat:\n${agent.raw.join("\n")}`,
        );
      }),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `no heartbeat of ${node} within ${timeoutMs} ms: ${
                  JSON.stringify(agent.lines.slice(-5))
                }`,
              ),
            ),
          timeoutMs,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    const startToFirstBeatMs = beats[0] - agent.spawnedAt;
    await supervisor.waitFor((l) => l.event === "armed", timeoutMs, "supervisor armed");
    // Steady state: heartbeats flow and the supervisor sees them (no expiry).
    const steadyFrom = beats.length;
    await new Promise((r) => setTimeout(r, 3000));
    const steadyBeats = beats.length - steadyFrom;
    assert.ok(steadyBeats >= 10, `only ${steadyBeats} heartbeats in 3 s`);
    assert.deepEqual(
      supervisor.lines.filter((l) => l.event === "expired"),
      [],
      "no expiry while healthy",
    );
    const agentMem = await agent.memory();
    const supervisorMem = await supervisor.memory();

    // Crash: SIGKILL, so the broker publishes the agent's Last Will.
    const killedAt = Date.now();
    agent.child.kill("SIGKILL");
    const expired = await supervisor.waitFor(
      (l) => l.event === "expired" && l.target === `node/${node}`,
      timeoutMs,
      `expiry of node/${node}`,
    );
    assert.equal(expired.from, "OK", "the supervisor had seen the node's heartbeats");
    assert.equal(typeof expired.lastHeartbeatAtMs, "number");
    assert.equal(expired.cause, "offline", "Last Will of the crashed agent");
    const crashToExpiryMs = Number(expired.wallMs) - killedAt;
    assert.equal((await agent.stop()).signal, "SIGKILL");
    assert.equal((await supervisor.stop()).code, 0, "ordered shutdown");
    if (opts.maxAgentRssMB !== undefined) {
      assert.ok(
        agentMem.rssKb / 1024 < opts.maxAgentRssMB,
        `agent RSS ${agentMem.rssKb} kB (the launcher's cache warm-up keeps it near 105 MB)`,
      );
    }
    await recordFootprint(label, {
      denoDirCache: opts.cache,
      startToFirstHeartbeatMs: Math.round(startToFirstBeatMs),
      heartbeatsIn3s: steadyBeats,
      agentRssMB: +(agentMem.rssKb / 1024).toFixed(1),
      agentPeakRssMB: +(agentMem.hwmKb / 1024).toFixed(1),
      runRssMB: +(supervisorMem.rssKb / 1024).toFixed(1),
      runPeakRssMB: +(supervisorMem.hwmKb / 1024).toFixed(1),
      crashToExpiryMs,
    });
  } finally {
    // Bounded clean-up: a step that hangs must not hang the whole test run.
    for (const p of procs) await bounded(p.stop("SIGKILL"), 30_000, "process stop");
    await bounded(broker.stop(), 10_000, "mosquitto stop");
    await bounded(sub.endAsync(true), 5_000, "subscriber end");
  }
}

/** Waits for `p` at most `ms`; a rejection or a timeout is logged, never thrown. */
async function bounded(p: Promise<unknown>, ms: number, what: string): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<string>((
    resolve,
  ) => (timer = setTimeout(() => resolve("timeout"), ms)));
  try {
    const r = await Promise.race([p.then(() => "ok"), timedOut]);
    if (r === "timeout") console.error(`${what}: still pending after ${ms} ms, left behind`);
  } catch (error) {
    console.error(`${what}: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("package: x86_64 agent and supervisor round trip over a real mosquitto (native)", async () => {
  const root = await unpacked(X64);
  const env = { DENO_DIR: await tempDir("sdv-denodir-rt-x64-") };
  // A fresh DENO_DIR, as on a device's first boot: the launcher warms the cache first.
  await roundTrip("native-x86_64", { root, env, node: "jetson-x64" }, { root, env }, 60_000, {
    cache: "cold",
    maxAgentRssMB: 160,
  });
});

// ---------------------------------------------------------------------------------------------
// ARM64 under emulation (skipped with SDV_SKIP_EMULATION=1)

let armDenoDir: Promise<string> | undefined;
/** One DENO_DIR for every emulated run: its V8 code cache halves the later start-ups. */
function armDenoDirOnce(): Promise<string> {
  armDenoDir ??= tempDir("sdv-denodir-arm64-");
  return armDenoDir;
}

async function requireQemu(): Promise<void> {
  const ok = await run(QEMU, ["--version"]).then((r) => r.code === 0, () => false);
  if (!ok) {
    throw new Error(
      `${QEMU} not found: apt-get install -y qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross ` +
        "(scripts/setup_test_deps.sh does), or skip with SDV_SKIP_EMULATION=1",
    );
  }
}

Deno.test({
  name:
    "emulation: the ARM64 package runs offline under qemu: version, check on the shipped configs",
  ignore: SKIP_EMULATION,
  async fn() {
    await requireQemu();
    const root = await unpacked(ARM64);
    const env = { ...emulatorEnv(await armDenoDirOnce()), PATH: "/usr/local/bin:/usr/bin:/bin" };
    const v = await launch(root, ["version"], {
      env,
      offline: true,
      timeoutMs: EMULATED_TIMEOUT_MS,
    });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(
      v.stdout.trim(),
      `sdv-failover ${VERSION} (deno ${Deno.version.deno}, aarch64-unknown-linux-gnu)`,
    );
    // The shipped configs, two at a time (2 cores), each a fresh emulated start on a warm cache.
    const results = await Promise.all(
      ["config.yaml", "fast.yaml"].map((cfg) =>
        launch(root, ["check", "--config", `${root}/config/${cfg}`], {
          env,
          offline: true,
          timeoutMs: EMULATED_TIMEOUT_MS,
        })
          .then((r) => ({ cfg, ...r }))
      ),
    );
    for (const r of results) {
      assert.equal(r.code, 0, `${r.cfg}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /FTTI budgets/);
    }
    assert.match(results[1].stdout, /lane-detection\s+D\s+100\s+30\s+5\s+25\s+60\s+\+40/);
    await recordFootprint("emulated-aarch64-startup", {
      coldVersionMs: Math.round(v.ms),
      warmCheckMs: results.map((r) => Math.round(r.ms)),
      offline: v.offline,
    });
  },
});

Deno.test({
  name:
    "emulation: ARM64 agent and supervisor round trip over a real mosquitto (heartbeats seen, crash detected)",
  ignore: SKIP_EMULATION,
  async fn() {
    await requireQemu();
    const root = await unpacked(ARM64);
    // Warm: the DENO_DIR of the previous emulated test (unless that one was filtered out).
    const cache = armDenoDir ? "warm" : "cold";
    const env = emulatorEnv(await armDenoDirOnce());
    await roundTrip(
      "emulated-aarch64",
      { root, env, node: "jetson-arm64" },
      { root, env },
      EMULATED_TIMEOUT_MS,
      { cache },
    );
  },
});
