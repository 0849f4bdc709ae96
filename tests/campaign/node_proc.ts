/**
 * The campaign's handle on one simulated Jetson process (`node_process.ts`) running inside the
 * node's network namespace: start, control commands, signals, exit.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const NODE_PROCESS = fileURLToPath(new URL("./node_process.ts", import.meta.url));

/** Options of {@linkcode startNodeProc}. */
export interface NodeProcOptions {
  /** The node's name. */
  node: string;
  /** The campaign's config file. */
  configPath: string;
  /** Broker URL as seen from inside the namespace (the node's fault proxy). */
  url: string;
  /** The second broker of a broker pair (`mqtt.pairUrl`), through its own fault proxy. */
  pairUrl?: string;
  /** argv prefix that runs a command inside the node's namespace (empty: the host's). */
  execPrefix: readonly string[];
  /** Bound on the wait for the MQTT connection, ms (default 15000). */
  connectTimeoutMs?: number;
}

/** A running simulated node. */
export interface NodeProc {
  /** The node's name. */
  readonly node: string;
  /** The Deno process's pid (ip netns exec execs it: signals reach the node itself). */
  readonly pid: number;
  /** False once the process exited. */
  readonly running: boolean;
  /**
   * With a broker pair: how many of the two brokers the node is connected to now (from its
   * `brokers` lines; 1 until the second session connects). Undefined without `pairUrl`.
   */
  readonly brokersConnected: number | undefined;
  /**
   * The process's own stalls (`stall` lines: it did not run for `gapMs`, ending at `endWallMs`),
   * oldest first.
   */
  readonly stalls: readonly { endWallMs: number; gapMs: number }[];
  /** Sends one control command and waits for its ack; throws on a problem or after `timeoutMs`. */
  command(line: string, timeoutMs?: number): Promise<void>;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, ...); a no-op once exited. */
  signal(signal: Deno.Signal): void;
  /** Resolves with the exit code. */
  readonly exited: Promise<number>;
  /** Last lines of the process's stderr (diagnostics). */
  stderrTail(): string;
  /** Closes the process's stdin: it stops in order (retained `offline`, DISCONNECT). */
  closeInput(): Promise<void>;
}

/**
 * Starts the node's process and waits until its MQTT connection is up.
 * @throws Error when it exits or does not connect within `connectTimeoutMs` (it is killed first).
 */
export async function startNodeProc(opts: NodeProcOptions): Promise<NodeProc> {
  const [cmd, ...prefixArgs] = [...opts.execPrefix, Deno.execPath()];
  const child = new Deno.Command(cmd, {
    args: [
      ...prefixArgs,
      "run",
      "--allow-all",
      NODE_PROCESS,
      "--config",
      opts.configPath,
      "--node",
      opts.node,
      "--url",
      opts.url,
      ...(opts.pairUrl === undefined ? [] : ["--pair-url", opts.pairUrl]),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  const acks: { resolve: (problem?: string) => void }[] = [];
  let connected: (() => void) | undefined;
  let running = true;
  let brokersConnected = opts.pairUrl === undefined ? undefined : 0;
  const stalls: { endWallMs: number; gapMs: number }[] = [];
  const stderr: string[] = [];
  const exited = child.status.then((s) => {
    running = false;
    for (const a of acks.splice(0)) a.resolve("exited");
    return s.code;
  });
  (async () => {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: "", done: true }));
      if (done) break;
      buffer += value;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: {
          event?: string;
          problem?: string;
          connected?: number;
          gapMs?: number;
          wallMs?: number;
        };
        try {
          line = JSON.parse(text);
        } catch {
          continue;
        }
        if (line.event === "connected") {
          if (brokersConnected === 0) brokersConnected = 1;
          connected?.();
        }
        if (line.event === "brokers") brokersConnected = Number(line.connected);
        if (line.event === "stall") {
          stalls.push({ endWallMs: Number(line.wallMs), gapMs: Number(line.gapMs) });
        }
        if (line.event === "ack") acks.shift()?.resolve(line.problem);
      }
    }
  })();
  (async () => {
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: "", done: true }));
      if (done) break;
      stderr.push(value);
      if (stderr.length > 50) stderr.shift();
    }
  })();
  const proc: NodeProc = {
    node: opts.node,
    pid: child.pid,
    get running() {
      return running;
    },
    get brokersConnected() {
      return brokersConnected;
    },
    stalls,
    exited,
    async command(line, timeoutMs = 5000) {
      if (!running) throw new Error(`${opts.node}: process exited, cannot ${line}`);
      const ack = new Promise<string | undefined>((resolve) => acks.push({ resolve }));
      await writer.write(encoder.encode(line + "\n"));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const problem = await Promise.race([
        ack,
        new Promise<string>((r) => timer = setTimeout(() => r("no ack"), timeoutMs)),
      ]);
      clearTimeout(timer);
      if (problem) throw new Error(`${opts.node}: ${line}: ${problem}`);
    },
    signal(signal) {
      if (!running) return;
      try {
        Deno.kill(child.pid, signal);
      } catch { /* exited meanwhile */ }
    },
    stderrTail: () => stderr.join("").slice(-2000),
    closeInput: () => writer.close().catch(() => {}),
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    new Promise<"connected">((r) => connected = () => r("connected")),
    exited.then(() => "exited" as const),
    new Promise<"timeout">((r) =>
      timer = setTimeout(() => r("timeout"), opts.connectTimeoutMs ?? 15_000)
    ),
  ]);
  clearTimeout(timer);
  if (outcome !== "connected") {
    proc.signal("SIGKILL");
    await exited;
    throw new Error(`${opts.node}: ${outcome} before connecting: ${proc.stderrTail()}`);
  }
  return proc;
}

/** Closes stdin (the node stops in order: retained offline, DISCONNECT), SIGKILL after 3 s. */
export async function stopNodeProc(proc: NodeProc): Promise<void> {
  if (!proc.running) return;
  proc.signal("SIGCONT");
  const timer = setTimeout(() => proc.signal("SIGKILL"), 3000);
  await proc.closeInput();
  await proc.exited;
  clearTimeout(timer);
}
