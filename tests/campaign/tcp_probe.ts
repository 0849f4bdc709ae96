/**
 * Fault campaign: a TCP round-trip probe that runs as its own process (e.g. inside a node's
 * network namespace) and talks to an echo server.
 *
 * As a script (`deno run --allow-net tcp_probe.ts HOST PORT CONNECT_TIMEOUT_MS`) it connects,
 * prints one JSON line (`{"event":"connected","connectMs":…}` or
 * `{"event":"connect-failed","error":…}` and exits 1), then for each stdin line `ping TIMEOUT_MS`
 * sends a sequence number and prints `{"event":"pong","seq":…,"rttMs":…}` when it comes back, or
 * `{"event":"timeout","seq":…}` when it does not within TIMEOUT_MS (a later echo of it is ignored).
 * Stdin EOF closes the connection and exits 0.
 *
 * {@linkcode startProbe} spawns it and drives it from a test; {@linkcode startEchoServer} is the
 * other end.
 *
 * @module
 */
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(import.meta.url);

/** Result of one {@linkcode Probe.ping}. */
export type PingResult = { ok: true; rttMs: number } | { ok: false };

/** A running probe process, connected to its echo server. */
export interface Probe {
  /** Sends one ping; `ok: false` when no echo came within `timeoutMs`. */
  ping(timeoutMs: number): Promise<PingResult>;
  /** Closes stdin (the probe closes its connection and exits) and waits; kills it after 5 s. */
  close(): Promise<void>;
}

/** Outcome of {@linkcode startProbe}. */
export type StartProbeResult =
  | { connected: true; connectMs: number; probe: Probe }
  | { connected: false; error: string };

/**
 * Spawns the probe (`prefix` first, e.g. a namespace's `execPrefix()`) and waits for its connect
 * result; on failure the process has exited.
 */
export async function startProbe(
  prefix: string[],
  host: string,
  port: number,
  connectTimeoutMs: number,
): Promise<StartProbeResult> {
  const argv = [
    ...prefix,
    Deno.execPath(),
    "run",
    "--no-config",
    "--allow-net",
    "--no-prompt",
    SCRIPT,
    host,
    String(port),
    String(connectTimeoutMs),
  ];
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines())
    .getReader();
  const next = async (): Promise<Record<string, unknown>> => {
    const { value, done } = await lines.read();
    if (done) throw new Error("probe exited");
    return JSON.parse(value);
  };
  const writer = child.stdin.getWriter();
  const encoder = new TextEncoder();
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await writer.close().catch(() => {});
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, 5000);
      await child.status;
      clearTimeout(timer);
      // Drain what is left so the stream's resource is released.
      while (!(await lines.read().catch(() => ({ done: true }))).done) { /* discard */ }
    })();
    return closed;
  };
  let first: Record<string, unknown>;
  try {
    first = await next();
  } catch (error) {
    await close();
    return { connected: false, error: String(error) };
  }
  if (first.event !== "connected") {
    await close();
    return { connected: false, error: String(first.error) };
  }
  return {
    connected: true,
    connectMs: first.connectMs as number,
    probe: {
      async ping(timeoutMs) {
        await writer.write(encoder.encode(`ping ${timeoutMs}\n`));
        const reply = await next();
        return reply.event === "pong" ? { ok: true, rttMs: reply.rttMs as number } : { ok: false };
      },
      close,
    },
  };
}

/** A TCP echo server (every byte received is sent back). */
export interface EchoServer {
  /** The port it listens on. */
  readonly port: number;
  /** Stops listening and closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** Starts a TCP echo server on `hostname` and a free port. */
export function startEchoServer(hostname: string): EchoServer {
  const listener = Deno.listen({ hostname, port: 0 });
  const conns = new Set<Deno.Conn>();
  const piping: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      piping.push(
        conn.readable.pipeTo(conn.writable).catch(() => {}).finally(() => conns.delete(conn)),
      );
    }
  })().catch(() => {});
  let closed: Promise<void> | undefined;
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      closed ??= (async () => {
        try {
          listener.close();
        } catch { /* closed */ }
        await accepting;
        for (const conn of conns) {
          try {
            conn.close();
          } catch { /* closed by the pipe */ }
        }
        await Promise.all(piping);
      })();
      return closed;
    },
  };
}

/** Splits a text stream into lines (without the newline). */
function splitLines(): TransformStream<string, string> {
  let buffer = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      let at: number;
      while ((at = buffer.indexOf("\n")) >= 0) {
        controller.enqueue(buffer.slice(0, at));
        buffer = buffer.slice(at + 1);
      }
    },
    flush(controller) {
      if (buffer) controller.enqueue(buffer);
    },
  });
}

/** The probe process itself. */
async function main(host: string, port: number, connectTimeoutMs: number): Promise<void> {
  const print = (o: Record<string, unknown>) => console.log(JSON.stringify(o));
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let conn: Deno.TcpConn;
  try {
    conn = await Promise.race([
      Deno.connect({ hostname: host, port }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`connect timed out after ${connectTimeoutMs} ms`)),
          connectTimeoutMs,
        );
      }),
    ]);
  } catch (error) {
    print({ event: "connect-failed", error: String(error) });
    Deno.exit(1);
  }
  clearTimeout(timer);
  conn.setNoDelay(true);
  print({ event: "connected", connectMs: performance.now() - t0 });

  // Echoed sequence numbers, as they arrive.
  const echoed = new Map<number, number>();
  let wake: (() => void) | undefined;
  (async () => {
    let buffer = "";
    for await (const chunk of conn.readable.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let at: number;
      while ((at = buffer.indexOf("\n")) >= 0) {
        echoed.set(Number(buffer.slice(0, at)), performance.now());
        buffer = buffer.slice(at + 1);
      }
      wake?.();
    }
  })().catch(() => {});

  const writer = conn.writable.getWriter();
  let seq = 0;
  for await (
    const line of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
      .pipeThrough(splitLines())
  ) {
    const m = /^ping (\d+)$/.exec(line.trim());
    if (!m) continue;
    const timeoutMs = Number(m[1]);
    const mine = ++seq;
    const sent = performance.now();
    await writer.write(new TextEncoder().encode(`${mine}\n`));
    const deadline = sent + timeoutMs;
    while (!echoed.has(mine) && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, deadline - performance.now());
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    const at = echoed.get(mine);
    print(
      at === undefined ? { event: "timeout", seq: mine } : {
        event: "pong",
        seq: mine,
        rttMs: at - sent,
      },
    );
  }
  try {
    conn.close();
  } catch { /* already closed */ }
  Deno.exit(0);
}

if (import.meta.main) {
  const [host, port, connectTimeoutMs] = Deno.args;
  await main(host, Number(port), Number(connectTimeoutMs));
}
