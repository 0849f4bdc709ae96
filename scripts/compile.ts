/**
 * `deno task compile [TARGET...]`: one self-contained `sdv-failover` binary per target in `dist/`
 * (`dist/sdv-failover-<version>-<target>`), with the narrowest permission set the program needs
 * (no `-A`, see {@linkcode PERMISSIONS}), the version embedded (main.ts imports it from deno.json)
 * and every module inside the binary, so nothing is fetched at run time.
 *
 * Targets: `aarch64-unknown-linux-gnu` (Jetson, JetPack 6) and `x86_64-unknown-linux-gnu`
 * (default: both; `arm64`/`aarch64`/`x64`/`x86_64` are accepted too).
 *
 * `deno compile` needs the `denort` runtime of each target, which it downloads from Deno's own
 * download host. Where that host is unreachable, give a local runtime:
 * - `DENORT_BIN=/path/to/denort` — used for the target whose architecture it is built for;
 * - `DENORT_BIN_AARCH64=…`, `DENORT_BIN_X86_64=…` — one per architecture.
 *
 * Before it starts `deno compile`, this checks within seconds that each target's runtime can be
 * had (given, already in Deno's cache, or the download host answers) and otherwise fails at once
 * with a message that names `DENORT_BIN` and how to provide it (exit 1). Where `denort` cannot be
 * had at all, `deno task package` builds the ARM64 artefact without it (see README).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/**
 * Permissions the program runs with, compiled or packaged (see README, "Permissions"). Writing is
 * allowed to one path only: systemd's notification socket (`sd_notify`, `lib/systemd/notify.ts`).
 */
export const PERMISSIONS = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
  "--allow-write=/run/systemd/notify",
];

/**
 * Unstable APIs the program uses: `net` for `Deno.listenDatagram` (unix datagram sockets, systemd's
 * notification protocol). deno.json enables it for `deno run`/`test`; the compiled binary and the
 * packaged launcher (which runs with `--no-config`) get the flag.
 */
export const UNSTABLE_FLAGS = ["--unstable-net"];

/** A build target of the edge artefact. */
export interface Target {
  /** Rust-style target triple, as `deno compile --target` takes it. */
  triple: "aarch64-unknown-linux-gnu" | "x86_64-unknown-linux-gnu";
  /** Debian/npm architecture name, used in package file names. */
  arch: "arm64" | "x64";
  /** `uname -m` / ELF machine name. */
  machine: "aarch64" | "x86_64";
  /** Suffix of the per-architecture `DENORT_BIN_*` variable. */
  envSuffix: "AARCH64" | "X86_64";
}

/** Every supported target, ARM64 first (the Jetson is the point). */
export const TARGETS: readonly Target[] = [
  { triple: "aarch64-unknown-linux-gnu", arch: "arm64", machine: "aarch64", envSuffix: "AARCH64" },
  { triple: "x86_64-unknown-linux-gnu", arch: "x64", machine: "x86_64", envSuffix: "X86_64" },
];

/**
 * Finds a target by triple, arch or machine name (`aarch64-unknown-linux-gnu`, `arm64`,
 * `aarch64`, `x86_64-unknown-linux-gnu`, `x64`, `x86_64`, `amd64`).
 * @throws Error naming the accepted values when `name` is none of them.
 */
export function findTarget(name: string): Target {
  const n = name === "amd64" ? "x64" : name;
  const t = TARGETS.find((t) => t.triple === n || t.arch === n || t.machine === n);
  if (!t) {
    throw new Error(
      `unknown target ${JSON.stringify(name)}; use one of ${
        TARGETS.map((t) => `${t.triple} (${t.arch})`).join(", ")
      }`,
    );
  }
  return t;
}

/**
 * The machine an ELF file is built for, from its header (`e_machine`), or `undefined` when the
 * bytes are not a 64-bit little-endian ELF header.
 * @param header at least the first 20 bytes of the file.
 */
export function elfMachine(header: Uint8Array): string | undefined {
  if (header.length < 20) return undefined;
  if (header[0] !== 0x7f || header[1] !== 0x45 || header[2] !== 0x4c || header[3] !== 0x46) {
    return undefined;
  }
  if (header[4] !== 2 || header[5] !== 1) return undefined; // ELFCLASS64, little endian
  const machine = header[18] | (header[19] << 8);
  switch (machine) {
    case 0xb7:
      return "aarch64";
    case 0x3e:
      return "x86_64";
    default:
      return `e_machine 0x${machine.toString(16)}`;
  }
}

/** Reads the ELF machine of a file (see {@linkcode elfMachine}); `undefined` when not ELF. */
export async function fileElfMachine(path: string): Promise<string | undefined> {
  const file = await Deno.open(path, { read: true });
  try {
    const buf = new Uint8Array(64);
    let n = 0;
    while (n < buf.length) {
      const r = await file.read(buf.subarray(n));
      if (r === null) break;
      n += r;
    }
    return elfMachine(buf.subarray(0, n));
  } finally {
    file.close();
  }
}

/** The output file of {@linkcode compileTarget}. */
export function compiledPath(target: Target, version: string = denoJson.version): string {
  return `dist/sdv-failover-${version}-${target.triple}`;
}

/** Where `deno compile` keeps a downloaded runtime, and where it would download it from. */
function denortLocations(target: Target, denoDir: string): { cached: string; url: string } {
  const file = `denort-${target.triple}.zip`;
  const release = `release/v${Deno.version.deno}/${file}`;
  return { cached: `${denoDir}/dl/${release}`, url: `https://dl.deno.land/${release}` };
}

async function denoDir(): Promise<string> {
  const fromEnv = Deno.env.get("DENO_DIR");
  if (fromEnv) return fromEnv;
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdout: "piped",
      stderr: "null",
    }).output();
    const dir = JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
    if (typeof dir === "string") return dir;
  } catch {
    // fall through to the platform default
  }
  const xdg = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "."}/.cache`;
  return `${xdg}/deno`;
}

/** True when `path` runs natively here and answers `--version` like the deno CLI does. */
async function isDenoCli(path: string): Promise<boolean> {
  if (!TARGETS.some((t) => t.machine === Deno.build.arch)) return false;
  try {
    const out = await new Deno.Command(path, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
      stdin: "null",
      signal: AbortSignal.timeout(5000),
    }).output();
    return /^deno \d+\.\d+\.\d+/.test(new TextDecoder().decode(out.stdout));
  } catch {
    return false;
  }
}

/** How to provide a runtime, for error messages. */
function provideHint(target: Target): string {
  return `Provide the denort runtime of Deno ${Deno.version.deno} for ${target.triple} ` +
    `(from a machine that can reach Deno's download host, file denort-${target.triple}.zip, ` +
    `unzipped): DENORT_BIN=/path/to/denort deno task compile ${target.triple} ` +
    `(or DENORT_BIN_${target.envSuffix}=/path/to/denort). Without denort, ` +
    `\`deno task package\` builds the edge artefact from the npm runtime instead. ` +
    `See README, "Building the binary".`;
}

/** Outcome of {@linkcode resolveDenort}. */
export type DenortSource =
  | { kind: "given"; path: string; variable: string }
  | { kind: "cached"; path: string }
  | { kind: "download"; url: string }
  | { kind: "unavailable"; why: string };

/**
 * Decides, within a few seconds, where `deno compile` will get the target's runtime: a given
 * `DENORT_BIN_<ARCH>`, a `DENORT_BIN` built for this target's architecture, Deno's own cache, or
 * a download (only when the download host answers within `probeTimeoutMs`).
 */
export async function resolveDenort(
  target: Target,
  opts: { env?: (name: string) => string | undefined; probeTimeoutMs?: number } = {},
): Promise<DenortSource> {
  const env = opts.env ?? ((n: string) => Deno.env.get(n));
  const perArch = `DENORT_BIN_${target.envSuffix}`;
  let otherArch = "";
  for (const variable of [perArch, "DENORT_BIN"]) {
    const path = env(variable);
    if (!path) continue;
    let machine: string | undefined;
    try {
      machine = await fileElfMachine(path);
    } catch (error) {
      return {
        kind: "unavailable",
        why: `${variable}=${path}: ${(error as Error).message}. ${provideHint(target)}`,
      };
    }
    if (machine === target.machine) {
      if (await isDenoCli(path)) {
        return {
          kind: "unavailable",
          why: `${variable}=${path} is the full deno CLI, not denort: a binary compiled on it ` +
            `starts a REPL instead of the program. ${provideHint(target)}`,
        };
      }
      return { kind: "given", path, variable };
    }
    if (variable === perArch || machine === undefined) {
      return {
        kind: "unavailable",
        why: `${variable}=${path} is ${machine ?? "not an ELF executable"}, not ${target.machine}` +
          ` (${target.triple}). ${provideHint(target)}`,
      };
    }
    // DENORT_BIN is for the other architecture: it serves that target, not this one.
    otherArch = ` (DENORT_BIN=${path} is ${machine}, for the other target)`;
  }
  const { cached, url } = denortLocations(target, await denoDir());
  try {
    if ((await Deno.stat(cached)).isFile) return { kind: "cached", path: cached };
  } catch {
    // not cached
  }
  try {
    const res = await fetch(url, {
      method: "HEAD",
      signal: AbortSignal.timeout(opts.probeTimeoutMs ?? 5000),
    });
    await res.body?.cancel();
    if (res.ok) return { kind: "download", url };
    return {
      kind: "unavailable",
      why: `the denort runtime for ${target.triple} is not downloadable (${url}: HTTP ` +
        `${res.status}) and no DENORT_BIN was given for it${otherArch}. ${provideHint(target)}`,
    };
  } catch (error) {
    return {
      kind: "unavailable",
      why: `the denort runtime for ${target.triple} cannot be obtained: Deno's download host is ` +
        `not reachable (${(error as Error).name}: ${(error as Error).message}) and no ` +
        `DENORT_BIN was given for it${otherArch}. ${provideHint(target)}`,
    };
  }
}

/**
 * Compiles `main.ts` for one target. Checks the runtime first (see {@linkcode resolveDenort}),
 * then the output's ELF machine, and for the host's own architecture runs `version` on it.
 * @returns the output path, or an error message.
 */
export async function compileTarget(
  target: Target,
  log: (line: string) => void = console.log,
): Promise<{ ok: true; output: string } | { ok: false; error: string }> {
  const source = await resolveDenort(target);
  if (source.kind === "unavailable") return { ok: false, error: source.why };
  const output = compiledPath(target);
  log(
    `compile ${target.triple}: runtime ${
      source.kind === "download" ? `download ${source.url}` : source.path
    }`,
  );
  const env: Record<string, string> = source.kind === "given" ? { DENORT_BIN: source.path } : {};
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--target",
      target.triple,
      "--output",
      output,
      ...PERMISSIONS,
      ...UNSTABLE_FLAGS,
      "--no-prompt",
      "main.ts",
    ],
    env,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    return {
      ok: false,
      error:
        `deno compile ${target.triple} failed: ${new TextDecoder().decode(out.stderr).trim()}` +
        (source.kind === "given" ? "" : `\n${provideHint(target)}`),
    };
  }
  const fail = async (error: string) => {
    await Deno.remove(output).catch(() => {});
    return { ok: false as const, error };
  };
  const machine = await fileElfMachine(output);
  if (machine !== target.machine) {
    return fail(`${output} is ${machine ?? "not ELF"}, expected ${target.machine}`);
  }
  if (target.machine === (Deno.build.arch as string)) {
    const v = await new Deno.Command(output, { args: ["version"], stdout: "piped" }).output();
    const text = new TextDecoder().decode(v.stdout).trim();
    if (v.code !== 0 || !text.includes(` ${denoJson.version} `)) {
      return fail(
        `${output} version printed ${JSON.stringify(text)} (exit ${v.code}), expected ` +
          `${denoJson.version}; is DENORT_BIN really denort of Deno ${Deno.version.deno}?`,
      );
    }
  }
  return { ok: true, output };
}

if (import.meta.main) {
  let targets: Target[];
  try {
    targets = Deno.args.length ? Deno.args.map(findTarget) : [...TARGETS];
  } catch (error) {
    console.error(`compile: ${(error as Error).message}`);
    Deno.exit(2);
  }
  Deno.mkdirSync("dist", { recursive: true });
  let failed = 0;
  for (const target of targets) {
    const result = await compileTarget(target);
    if (result.ok) {
      console.log(`compiled ${result.output}`);
    } else {
      failed++;
      console.error(`compile ${target.triple}: ${result.error}`);
    }
  }
  if (failed) Deno.exitCode = 1;
}
