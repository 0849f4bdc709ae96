/**
 * `deno task package [TARGET...] [--out DIR]`: the edge artefact, one archive per target,
 * `DIR/sdv-failover-<version>-linux-<arch>.tar.gz` (default `dist/`, both targets), that runs on
 * the target with no Node, no npm and no network:
 *
 * ```
 * sdv-failover-<version>-linux-<arch>/
 *   bin/sdv-failover            launcher (packaging/launcher.sh): lib/deno run <PERMISSIONS>, offline
 *   lib/deno                    Deno runtime for the architecture, from the npm registry
 *   lib/sdv-failover.js         the program (`deno bundle` of main.ts)
 *   systemd/*.service           agent and supervisor units (packaging/systemd/)
 *   config/                     config.yaml (= config/example.yaml), example.yaml, fast.yaml, *.env
 *   k3s/rbac.yaml               config/k3s/rbac.yaml
 *   k3s/supervisor-pod.yaml     supervisor as a pod (packaging/k3s/, config with inCluster: true)
 *   k3s/supervisor-pair.yaml    supervisor pair as a StatefulSet of 2 (config with supervisor.pair)
 *   install-rootfs.sh           scripts/install-rootfs.sh
 *   README.md, MANIFEST.json    what is inside; runtime tarball + binary checksums, npm integrity
 *   SHA256SUMS                  every file (sha256sum -c)
 * ```
 *
 * The runtime comes from `npm pack @deno/linux-<arch>-glibc@<deno version>` into a cache outside
 * the repository (`$SDV_FAILOVER_CACHE_DIR`, default `${XDG_CACHE_HOME:-~/.cache}/sdv-failover`,
 * subdirectory `deno-npm/`), verified against npm's sha512 integrity on every use.
 *
 * Reproducible: sorted names, every mtime = `SOURCE_DATE_EPOCH` (default: the last commit's time),
 * uid/gid 0 with numeric owners, fixed modes, `gzip -n`; two runs give identical archives. Needs
 * GNU tar and gzip (as on Debian/Ubuntu).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };
import { fileURLToPath } from "node:url";
import { parseAllDocuments, parseDocument } from "yaml";
import {
  fileElfMachine,
  findTarget,
  PERMISSIONS,
  type Target,
  TARGETS,
  UNSTABLE_FLAGS,
} from "./compile.ts";

/** The Deno runtime shipped in the package (the project's own Deno version). */
export const DENO_RUNTIME_VERSION = "2.9.5";

/** Flags of `deno run` in the launcher besides {@linkcode PERMISSIONS}: nothing is fetched. */
export const OFFLINE_FLAGS = [
  "--no-config",
  "--no-lock",
  "--no-remote",
  "--no-npm",
  "--cached-only",
  "--no-prompt",
];

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");

/** The archive's file name for a target. */
export function packageFileName(target: Target, version: string = denoJson.version): string {
  return `sdv-failover-${version}-linux-${target.arch}.tar.gz`;
}

/** The npm package holding the Deno runtime of a target. */
export function runtimeNpmPackage(target: Target): string {
  return `@deno/linux-${target.arch}-glibc`;
}

/** What `MANIFEST.json` holds. */
export interface Manifest {
  name: "sdv-failover";
  version: string;
  os: "linux";
  arch: Target["arch"];
  machine: Target["machine"];
  target: Target["triple"];
  libc: "glibc";
  permissions: string[];
  launcher: { file: "bin/sdv-failover"; runFlags: string[] };
  program: { file: "lib/sdv-failover.js"; sha256: string; bytes: number };
  runtime: {
    file: "lib/deno";
    denoVersion: string;
    npmPackage: string;
    npmTarball: string;
    npmIntegrity: string;
    npmShasum: string;
    tarballSha256: string;
    binarySha256: string;
    bytes: number;
  };
  sourceDateEpoch: number;
  sourceCommit: string | null;
}

/** A runtime tarball in the cache, verified. */
interface Runtime {
  tarball: string;
  filename: string;
  integrity: string;
  shasum: string;
  tarballSha256: string;
}

async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
  } catch (error) {
    throw new Error(`${cmd}: ${(error as Error).message}`);
  }
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited ${out.code}: ${dec.decode(out.stderr).trim()}`,
    );
  }
  return dec.decode(out.stdout);
}

async function digest(algorithm: "SHA-256" | "SHA-512", path: string): Promise<Uint8Array> {
  // Whole-file read: the largest input is the ≈ 95 MB runtime; fine for a build step.
  return new Uint8Array(await crypto.subtle.digest(algorithm, await Deno.readFile(path)));
}

/** Hex SHA-256 of a file. */
export async function sha256File(path: string): Promise<string> {
  return [...await digest("SHA-256", path)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sriSha512(path: string): Promise<string> {
  const bytes = await digest("SHA-512", path);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `sha512-${btoa(bin)}`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The cache directory of runtime tarballs (outside the repository). */
export function runtimeCacheDir(): string {
  const base = Deno.env.get("SDV_FAILOVER_CACHE_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/sdv-failover`;
  return `${base}/deno-npm`;
}

/**
 * The runtime tarball of a target: from the cache when its sha512 matches the npm integrity
 * recorded beside it, else `npm pack` from the registry (then verified the same way).
 */
async function obtainRuntime(target: Target, log: (l: string) => void): Promise<Runtime> {
  const dir = runtimeCacheDir();
  await Deno.mkdir(dir, { recursive: true });
  const spec = `${runtimeNpmPackage(target)}@${DENO_RUNTIME_VERSION}`;
  const filename = `deno-linux-${target.arch}-glibc-${DENO_RUNTIME_VERSION}.tgz`;
  const tarball = `${dir}/${filename}`;
  const metaFile = `${tarball}.json`;
  const verified = async (): Promise<Runtime | undefined> => {
    if (!await exists(tarball) || !await exists(metaFile)) return undefined;
    const meta = JSON.parse(await Deno.readTextFile(metaFile));
    if (meta.integrity !== await sriSha512(tarball)) {
      log(`package: cached ${filename} does not match its npm integrity; fetching it again`);
      return undefined;
    }
    return {
      tarball,
      filename,
      integrity: meta.integrity,
      shasum: meta.shasum,
      tarballSha256: await sha256File(tarball),
    };
  };
  const cached = await verified();
  if (cached) return cached;
  log(`package: npm pack ${spec} → ${dir}`);
  const staging = await Deno.makeTempDir({ dir, prefix: ".pack-" });
  try {
    let json: string;
    try {
      json = await run("npm", ["pack", "--json", "--pack-destination", staging, spec], {
        cwd: staging,
      });
    } catch (error) {
      throw new Error(
        `cannot fetch the Deno runtime ${spec} from the npm registry (${
          (error as Error).message
        }). Needs npm and the npm registry once; or place ${filename} with its npm pack --json ` +
          `metadata as ${filename}.json in ${dir}.`,
      );
    }
    const meta = JSON.parse(json)[0];
    if (meta?.filename !== filename || typeof meta.integrity !== "string") {
      throw new Error(`npm pack ${spec}: unexpected answer ${json.slice(0, 300)}`);
    }
    const got = await sriSha512(`${staging}/${filename}`);
    if (got !== meta.integrity) {
      throw new Error(`npm pack ${spec}: tarball sha512 ${got} ≠ registry ${meta.integrity}`);
    }
    await Deno.writeTextFile(
      `${staging}/${filename}.json`,
      JSON.stringify(
        { id: meta.id, filename, integrity: meta.integrity, shasum: meta.shasum },
        null,
        2,
      ) + "\n",
    );
    await Deno.rename(`${staging}/${filename}`, tarball);
    await Deno.rename(`${staging}/${filename}.json`, metaFile);
  } finally {
    await Deno.remove(staging, { recursive: true }).catch(() => {});
  }
  const fresh = await verified();
  if (!fresh) throw new Error(`${tarball}: verification failed right after download`);
  return fresh;
}

/**
 * The epoch every archive entry carries (SOURCE_DATE_EPOCH, else the last commit's time, else 0)
 * and the commit recorded in MANIFEST.json.
 */
export async function sourceDateEpoch(): Promise<{ epoch: number; commit: string | null }> {
  let commit: string | null = null;
  let commitTime: number | undefined;
  try {
    const [hash, time] = (await run("git", ["log", "-1", "--format=%H %ct"], { cwd: ROOT }))
      .trim().split(" ");
    commit = hash || null;
    commitTime = Number(time);
  } catch {
    // not a git checkout
  }
  const env = Deno.env.get("SOURCE_DATE_EPOCH");
  if (env !== undefined && /^\d+$/.test(env)) return { epoch: Number(env), commit };
  if (commitTime !== undefined && Number.isInteger(commitTime)) {
    return { epoch: commitTime, commit };
  }
  return { epoch: 0, commit };
}

/**
 * Bundles main.ts with code splitting into `outDir`: the entry `sdv-failover.js` plus chunks. The
 * commands' dynamic imports stay lazy chunks, so the node `agent` never parses client-node (one
 * flat bundle cost the agent ≈ 35 MB RSS more: `version` 84 MB flat vs 51 MB split).
 * @returns the entry file's path.
 */
async function bundle(outDir: string): Promise<string> {
  await run(
    Deno.execPath(),
    ["bundle", "--platform=deno", "--code-splitting", "--outdir", outDir, "main.ts"],
    { cwd: ROOT, env: { NO_COLOR: "1" } },
  );
  const out = `${outDir}/sdv-failover.js`;
  await Deno.rename(`${outDir}/main.js`, out); // nothing imports the entry: safe to rename
  const text = await Deno.readTextFile(out);
  if (!text.includes(JSON.stringify(denoJson.version))) {
    throw new Error(`bundle ${out} does not embed the version ${denoJson.version}`);
  }
  return out;
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/@([A-Z_]+)@/g, (m, key: string) => values[key] ?? m);
}

/**
 * The supervisor config for the K3s pod: the package's config.yaml with in-cluster API access
 * (`cluster.kubeconfig` replaced by `cluster.inCluster: true`), comments kept.
 */
export function inClusterConfig(configYaml: string): string {
  const header =
    "# In-cluster variant of config.yaml (made by scripts/package.ts): the API is reached with\n" +
    "# the pod's ServiceAccount kube-system/sdv-failover (config/k3s/rbac.yaml).\n";
  const edited = configYaml.replace(
    /^(cluster:[ \t]*\n(?:(?:[ \t]+.*)?\n)*?)([ \t]+)kubeconfig:.*\n/m,
    (_m, before: string, indent: string) => `${before}${indent}inCluster: true\n`,
  );
  const check = parseDocument(edited).toJS();
  if (check?.cluster?.inCluster === true && check.cluster.kubeconfig === undefined) {
    return header + edited;
  }
  const doc = parseDocument(configYaml);
  if (doc.hasIn(["cluster", "kubeconfig"])) doc.deleteIn(["cluster", "kubeconfig"]);
  doc.setIn(["cluster", "inCluster"], true);
  return header + doc.toString({ lineWidth: 0 });
}

/**
 * The supervisor pair's K3s manifest (`packaging/k3s/supervisor-pair.yaml`, template filled with
 * `values`): its ConfigMap gets {@linkcode inClusterConfig} of `configYaml` with
 * `supervisor.pair.ids` set to the StatefulSet's two pod names (`<name>-0`, `<name>-1`), which
 * each pod passes as `run --id` (downward API `metadata.name`).
 * @throws Error when the template has no StatefulSet of 2 replicas.
 */
export function pairManifest(
  template: string,
  configYaml: string,
  values: Record<string, string>,
): string {
  const filled = fill(template, values);
  const sts = parseAllDocuments(filled).map((d) => d.toJS()).find((d) => d?.kind === "StatefulSet");
  if (sts?.spec?.replicas !== 2) {
    throw new Error("supervisor-pair.yaml: no StatefulSet of 2 replicas");
  }
  const name = String(sts.metadata.name);
  const doc = parseDocument(inClusterConfig(configYaml));
  doc.setIn(["supervisor", "pair"], doc.createNode({ ids: [`${name}-0`, `${name}-1`] }));
  const indented = doc.toString({ lineWidth: 0 }).trimEnd().split("\n")
    .map((l) => (l ? `    ${l}` : "")).join("\n");
  return filled.replace(/^ {4}# @CONFIG@.*$/m, () => indented);
}

async function write(path: string, text: string | Uint8Array, mode = 0o644): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
  if (typeof text === "string") await Deno.writeTextFile(path, text);
  else await Deno.writeFile(path, text);
  await Deno.chmod(path, mode);
}

async function walkFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) {
      await Deno.chmod(`${dir}/${e.name}`, 0o755);
      out.push(...await walkFiles(`${dir}/${e.name}`, rel));
    } else if (e.isFile) out.push(rel);
  }
  return out.sort();
}

/** Result of {@linkcode buildPackage}. */
export interface BuiltPackage {
  target: Target;
  path: string;
  bytes: number;
  sha256: string;
  manifest: Manifest;
}

/**
 * Builds the archive of one target from an existing bundle into `outDir`.
 * @param bundlePath output of `deno bundle` (platform independent, shared by the targets).
 */
export async function buildPackage(
  target: Target,
  opts: {
    bundlePath: string;
    outDir: string;
    epoch: number;
    commit: string | null;
    log?: (line: string) => void;
  },
): Promise<BuiltPackage> {
  const log = opts.log ?? console.log;
  const version = denoJson.version;
  const name = `sdv-failover-${version}-linux-${target.arch}`;
  const runtime = await obtainRuntime(target, log);
  const work = await Deno.makeTempDir({ prefix: `sdv-package-${target.arch}-` });
  try {
    const pkg = `${work}/${name}`;
    await Deno.mkdir(`${pkg}/lib`, { recursive: true });
    await run("tar", ["-xzf", runtime.tarball, "-C", work, "package/deno"]);
    await Deno.rename(`${work}/package/deno`, `${pkg}/lib/deno`);
    await Deno.remove(`${work}/package`, { recursive: true });
    await Deno.chmod(`${pkg}/lib/deno`, 0o755);
    const machine = await fileElfMachine(`${pkg}/lib/deno`);
    if (machine !== target.machine) {
      throw new Error(`${runtime.filename}: deno is ${machine}, expected ${target.machine}`);
    }
    // the entry and its chunks (relative imports: they stay side by side)
    const bundleDir = opts.bundlePath.slice(0, opts.bundlePath.lastIndexOf("/"));
    for await (const entry of Deno.readDir(bundleDir)) {
      if (!entry.isFile || !entry.name.endsWith(".js")) continue;
      await Deno.copyFile(`${bundleDir}/${entry.name}`, `${pkg}/lib/${entry.name}`);
      await Deno.chmod(`${pkg}/lib/${entry.name}`, 0o644);
    }

    const text = (rel: string) => Deno.readTextFile(`${ROOT}/${rel}`);
    const programSha256 = await sha256File(`${pkg}/lib/sdv-failover.js`);
    const values = {
      PROGRAM_ID: `${version}-${programSha256.slice(0, 16)}`,
      VERSION: version,
      TARGET: target.triple,
      ARCH: target.arch,
      DENO_VERSION: DENO_RUNTIME_VERSION,
      NPM_PACKAGE: runtimeNpmPackage(target),
      PERMISSIONS: PERMISSIONS.join(" "),
      UNSTABLE: UNSTABLE_FLAGS.join(" "),
    };
    await write(
      `${pkg}/bin/sdv-failover`,
      fill(await text("packaging/launcher.sh"), values),
      0o755,
    );
    for (const unit of ["sdv-failover-agent.service", "sdv-failover-supervisor.service"]) {
      await write(`${pkg}/systemd/${unit}`, await text(`packaging/systemd/${unit}`));
    }
    const example = await text("config/example.yaml");
    await write(`${pkg}/config/config.yaml`, example);
    await write(`${pkg}/config/example.yaml`, example);
    await write(`${pkg}/config/fast.yaml`, await text("config/fast.yaml"));
    for (const env of ["agent.env", "supervisor.env"]) {
      await write(`${pkg}/config/${env}`, await text(`packaging/config/${env}`));
    }
    await write(`${pkg}/k3s/rbac.yaml`, await text("config/k3s/rbac.yaml"));
    const indented = inClusterConfig(example).trimEnd().split("\n")
      .map((l) => (l ? `    ${l}` : "")).join("\n");
    const pod = fill(await text("packaging/k3s/supervisor-pod.yaml"), values)
      .replace(/^ {4}# @CONFIG@.*$/m, () => indented);
    await write(`${pkg}/k3s/supervisor-pod.yaml`, pod);
    await write(
      `${pkg}/k3s/supervisor-pair.yaml`,
      pairManifest(await text("packaging/k3s/supervisor-pair.yaml"), example, values),
    );
    await write(`${pkg}/install-rootfs.sh`, await text("scripts/install-rootfs.sh"), 0o755);
    await write(`${pkg}/README.md`, fill(await text("packaging/README.package.md"), values));

    const denoStat = await Deno.stat(`${pkg}/lib/deno`);
    const manifest: Manifest = {
      name: "sdv-failover",
      version,
      os: "linux",
      arch: target.arch,
      machine: target.machine,
      target: target.triple,
      libc: "glibc",
      permissions: [...PERMISSIONS],
      launcher: {
        file: "bin/sdv-failover",
        runFlags: [...OFFLINE_FLAGS, ...PERMISSIONS, ...UNSTABLE_FLAGS],
      },
      program: {
        file: "lib/sdv-failover.js",
        sha256: programSha256,
        bytes: (await Deno.stat(`${pkg}/lib/sdv-failover.js`)).size,
      },
      runtime: {
        file: "lib/deno",
        denoVersion: DENO_RUNTIME_VERSION,
        npmPackage: runtimeNpmPackage(target),
        npmTarball: runtime.filename,
        npmIntegrity: runtime.integrity,
        npmShasum: runtime.shasum,
        tarballSha256: runtime.tarballSha256,
        binarySha256: await sha256File(`${pkg}/lib/deno`),
        bytes: denoStat.size,
      },
      sourceDateEpoch: opts.epoch,
      sourceCommit: opts.commit,
    };
    await write(`${pkg}/MANIFEST.json`, JSON.stringify(manifest, null, 2) + "\n");
    const files = await walkFiles(pkg);
    const sums: string[] = [];
    for (const f of files) sums.push(`${await sha256File(`${pkg}/${f}`)}  ${f}`);
    await write(`${pkg}/SHA256SUMS`, sums.join("\n") + "\n");
    await Deno.chmod(pkg, 0o755);

    await Deno.mkdir(opts.outDir, { recursive: true });
    const out = `${opts.outDir}/${packageFileName(target, version)}`;
    const partial = `${out}.partial`;
    await run("bash", [
      "-c",
      'set -euo pipefail; tar --sort=name --format=gnu --mtime="@$1" --owner=0 --group=0 ' +
      '--numeric-owner -C "$2" -cf - "$3" | gzip -n > "$4"',
      "package",
      String(opts.epoch),
      work,
      name,
      partial,
    ], { env: { LC_ALL: "C", TZ: "UTC" } });
    await Deno.rename(partial, out);
    const sha256 = await sha256File(out);
    await Deno.writeTextFile(`${out}.sha256`, `${sha256}  ${packageFileName(target, version)}\n`);
    return { target, path: out, bytes: (await Deno.stat(out)).size, sha256, manifest };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * Builds the archives of `targets` (default both) into `outDir` (default `dist/`).
 * @param source the archive mtime and the commit recorded (default {@linkcode sourceDateEpoch}).
 */
export async function buildPackages(
  targets: readonly Target[] = TARGETS,
  outDir = `${ROOT}/dist`,
  log: (line: string) => void = console.log,
  source?: { epoch: number; commit: string | null },
): Promise<BuiltPackage[]> {
  const { epoch, commit } = source ?? await sourceDateEpoch();
  const tmp = await Deno.makeTempDir({ prefix: "sdv-bundle-" });
  try {
    const bundlePath = await bundle(tmp);
    return await Promise.all(
      targets.map((target) => buildPackage(target, { bundlePath, outDir, epoch, commit, log })),
    );
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  const args = [...Deno.args];
  let outDir = `${ROOT}/dist`;
  const names: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--out") outDir = args[++i] ?? "";
    else if (args[i].startsWith("--out=")) outDir = args[i].slice(6);
    else names.push(args[i]);
  }
  let targets: Target[];
  try {
    if (!outDir) throw new Error("--out needs a directory");
    targets = names.length ? names.map(findTarget) : [...TARGETS];
  } catch (error) {
    console.error(`package: ${(error as Error).message}`);
    Deno.exit(2);
  }
  try {
    for (const p of await buildPackages(targets, outDir)) {
      console.log(
        `packaged ${p.path} (${
          (p.bytes / 1e6).toFixed(1)
        } MB, sha256 ${p.sha256}; runtime ${p.manifest.runtime.npmPackage}@${p.manifest.runtime.denoVersion} ${p.manifest.runtime.npmIntegrity})`,
      );
    }
  } catch (error) {
    console.error(`package: ${(error as Error).message}`);
    Deno.exit(1);
  }
}
