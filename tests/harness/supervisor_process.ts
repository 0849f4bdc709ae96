/**
 * Runs `main.ts run` as a separate process (its own identity, its own event loop), with JSON
 * logs parsed line by line so tests can wait for and measure events.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** One parsed JSON log line of the supervisor. */
export interface LogLine {
  tMs: number;
  wallMs: number;
  level: string;
  event: string;
  [key: string]: unknown;
}

/** A running supervisor (or other `main.ts`) process. */
export interface SupervisorProcess {
  /** The `deno` process's pid. */
  pid: number;
  /** Every JSON log line so far. */
  lines: LogLine[];
  /** Non-JSON stderr/stdout text (for diagnostics). */
  raw: string[];
  /** Resolves with the exit status once the process has exited. */
  exited: Promise<Deno.CommandStatus>;
  /** Resolves with the first line (already seen or future) matching `predicate`. */
  waitFor(
    predicate: (line: LogLine) => boolean,
    timeoutMs: number,
    what?: string,
  ): Promise<LogLine>;
  /** SIGTERM, then the exit code (SIGKILL after `timeoutMs`, default 5000). */
  stop(timeoutMs?: number): Promise<number>;
  /** SIGKILL (no ordered shutdown: the broker publishes its Last Will); resolves once exited. */
  kill(): Promise<void>;
}

const MAIN = fileURLToPath(new URL("../../main.ts", import.meta.url));

/** The `deno run` flags of {@linkcode spawnMain}: the permissions the runtime ships with. */
export const MAIN_FLAGS: readonly string[] = [
  "--allow-net",
  "--allow-read",
  "--allow-env",
  "--allow-sys",
];

/** Options of {@linkcode spawnMain} and {@linkcode watchMain}. */
export interface SpawnOptions {
  /** `deno run` flags (default {@linkcode MAIN_FLAGS}). */
  flags?: readonly string[];
  /** Also `--allow-write=DIR`, as the package's launcher gives `run` for `$STATE_DIRECTORY`. */
  allowWrite?: string;
}

/**
 * Spawns `deno run <flags> main.ts <args>` (default flags: {@linkcode MAIN_FLAGS}, the permissions
 * the runtime ships with). `run` and `agent` get `--http-listen 127.0.0.1:0` (a free port) unless
 * `args` name an address: tests run several of them on one host, where the default ports would
 * collide.
 */
export function spawnMain(
  args: string[],
  env: Record<string, string> = {},
  options: SpawnOptions = {},
): Deno.ChildProcess {
  const write = options.allowWrite === undefined ? [] : [`--allow-write=${options.allowWrite}`];
  const http = (args[0] === "run" || args[0] === "agent") && !args.includes("--http-listen")
    ? ["--http-listen", "127.0.0.1:0"]
    : [];
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...(options.flags ?? MAIN_FLAGS), ...write, MAIN, ...args, ...http],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env,
  }).spawn();
}

/**
 * Spawns `main.ts <args>` (see {@linkcode spawnMain}; give `--log-format json` in `args`) and
 * parses its JSON log lines as they come. `env` is added to the inherited environment.
 */
export function watchMain(
  args: string[],
  env: Record<string, string> = {},
  options: SpawnOptions = {},
): SupervisorProcess {
  const child = spawnMain(args, env, options);
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const waiters: { predicate: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: LogLine | undefined;
        try {
          line = JSON.parse(text);
        } catch {
          raw.push(text);
          continue;
        }
        lines.push(line!);
        for (const w of [...waiters]) {
          if (w.predicate(line!)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line!);
          }
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const proc: SupervisorProcess = {
    pid: child.pid,
    lines,
    raw,
    exited: status,
    waitFor(predicate, timeoutMs, what = "log line") {
      const seen = lines.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what}; last lines:\n` +
                [...raw.slice(-10), ...lines.slice(-15).map((l) => JSON.stringify(l))].join("\n"),
            ),
          );
        }, timeoutMs);
        const entry = {
          predicate,
          resolve: (l: LogLine) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        waiters.push(entry);
      });
    },
    async kill() {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await status;
      await pumps;
    },
    async stop(timeoutMs = 5000) {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }, timeoutMs);
      const s = await status;
      clearTimeout(timer);
      await pumps;
      return s.code;
    },
  };
  return proc;
}

/**
 * Starts the supervisor with `--log-format json` (and `--id` when `options.id` is given: one
 * instance of a supervisor pair) and waits until its watchdog is armed.
 */
export async function startSupervisor(
  configPath: string,
  options: {
    dryRun?: boolean;
    armedTimeoutMs?: number;
    env?: Record<string, string>;
    id?: string;
    /** A directory the supervisor may write (`--allow-write=DIR`: its journal's state directory). */
    allowWrite?: string;
  } = {},
): Promise<SupervisorProcess> {
  const args = ["run", "--config", configPath, "--log-format", "json"];
  if (options.dryRun) args.push("--dry-run");
  if (options.id !== undefined) args.push("--id", options.id);
  const proc = watchMain(args, options.env, { allowWrite: options.allowWrite });
  const { lines, raw } = proc;
  const status = proc.exited;
  try {
    await Promise.race([
      proc.waitFor((l) => l.event === "armed", options.armedTimeoutMs ?? 30_000, "armed"),
      status.then((s) => {
        throw new Error(
          `supervisor exited with ${s.code} before arming:\n${raw.join("\n")}\n${
            JSON.stringify(lines.slice(-5))
          }`,
        );
      }),
    ]);
  } catch (error) {
    await proc.stop();
    throw error;
  }
  return proc;
}
