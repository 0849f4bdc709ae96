/**
 * Fault campaign: a running toxiproxy-server (Shopify's TCP fault proxy) and its HTTP API.
 *
 * Each simulated node reaches the broker through its own proxy (listening on the host end of the
 * node's veth, forwarding to the broker on 127.0.0.1), so latency and jitter can be set per node.
 * The binary is built once into a cache outside the repository by `scripts/toxiproxy/build.sh`
 * (run by `scripts/setup_test_deps.sh`); {@linkcode toxiproxyBinary} finds it.
 *
 * Streams are named as toxiproxy names them: `upstream` is client → upstream server (node →
 * broker), `downstream` is server → client (broker → node).
 *
 * @module
 */

/** Version built by `scripts/toxiproxy/build.sh` (part of the cache dir name; keep in sync). */
export const TOXIPROXY_VERSION = "2.5.0";

/** A direction of a proxied connection, in toxiproxy's terms. */
export type ToxicStream = "upstream" | "downstream";

/** A running toxiproxy-server. */
export interface Toxiproxy {
  /** Base URL of its HTTP API, `http://127.0.0.1:PORT`. */
  readonly apiUrl: string;
  /** The toxiproxy-server process's pid. */
  readonly pid: number;
  /**
   * Creates and enables proxy `name` listening on `listen` (`"127.10.1.1:18830"`; port 0 picks a
   * free one) and forwarding each connection to `upstream` (`"127.0.0.1:PORT"`).
   *
   * @returns the address it listens on, `host:port` (with the chosen port).
   * @throws Error when the name exists or the address cannot be bound (the API's message).
   */
  addProxy(name: string, listen: string, upstream: string): Promise<string>;
  /**
   * Sets (adds or updates) a latency toxic on proxy `name`: every chunk in the given streams
   * (default both) is delayed `latencyMs` ± `jitterMs` (uniform) after toxiproxy read it. With
   * both streams a round trip takes at least 2 × (latencyMs − jitterMs) more.
   *
   * @throws Error when a value is not a non-negative integer, jitterMs > latencyMs, or the API
   *   answers with an error.
   */
  setLatency(
    name: string,
    latencyMs: number,
    jitterMs: number,
    streams?: readonly ToxicStream[],
  ): Promise<void>;
  /** Removes every toxic of proxy `name` (the proxy stays). */
  clearToxics(name: string): Promise<void>;
  /**
   * SIGTERM, SIGKILL after 2 s, and waits for the exit. Idempotent. Proxies and their
   * connections end with the process.
   */
  stop(): Promise<void>;
}

/** Options for {@linkcode startToxiproxy}. */
export interface StartToxiproxyOptions {
  /** Address of the HTTP API (default `127.0.0.1`). */
  host?: string;
  /** Port of the HTTP API (default: a free one; on a clash the start is retried on another). */
  port?: number;
  /** Aborting it stops the server (also during the start, which then rejects). */
  signal?: AbortSignal;
  /** Upper bound on the wait for the API to answer, per attempt (default 5000 ms). */
  readyTimeoutMs?: number;
  /** Binary to run (default {@linkcode toxiproxyBinary}). */
  binary?: string;
}

/**
 * The cache directory `scripts/toxiproxy/build.sh` uses:
 * `${SDV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sdv-failover}/toxiproxy-2.5.0`.
 */
export function toxiproxyCacheDir(): string {
  const root = Deno.env.get("SDV_CACHE_DIR") ||
    `${Deno.env.get("XDG_CACHE_HOME") || `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/sdv-failover`;
  return `${root}/toxiproxy-${TOXIPROXY_VERSION}`;
}

/** Path of the cached `toxiproxy-server`, or undefined when it is not built (completely). */
export function toxiproxyBinary(): string | undefined {
  const dir = toxiproxyCacheDir();
  try {
    Deno.statSync(`${dir}/.complete`);
    const bin = `${dir}/bin/toxiproxy-server`;
    return Deno.statSync(bin).isFile ? bin : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts toxiproxy-server with its API on `host:port` and waits (bounded) until the API answers.
 *
 * @throws Error when the binary is missing (with the build hint), when the server exits or its API
 *   does not answer within `readyTimeoutMs` (3 attempts on fresh ports unless `port` is given; the
 *   message carries the tail of its log), or when `signal` aborts first.
 */
export async function startToxiproxy(opts: StartToxiproxyOptions = {}): Promise<Toxiproxy> {
  const binary = opts.binary ?? toxiproxyBinary();
  if (binary === undefined) {
    throw new Error(
      `toxiproxy-server not built (no ${toxiproxyCacheDir()}/.complete); ` +
        "run scripts/toxiproxy/build.sh (or scripts/setup_test_deps.sh)",
    );
  }
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < (opts.port === undefined ? 3 : 1); attempt++) {
    opts.signal?.throwIfAborted();
    try {
      return await startOnce(binary, opts);
    } catch (error) {
      lastError = error as Error;
    }
  }
  throw lastError;
}

async function startOnce(binary: string, opts: StartToxiproxyOptions): Promise<Toxiproxy> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? freePort(host);
  const apiUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5000;
  const child = new Deno.Command(binary, {
    args: ["-host", host, "-port", String(port)],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { LOG_LEVEL: Deno.env.get("LOG_LEVEL") ?? "info" },
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  // Keep the last lines of its (JSON) log for error messages; draining also keeps it unblocked.
  const logTail: string[] = [];
  const drain = (stream: ReadableStream<Uint8Array>) =>
    (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        logTail.push(...chunk.split("\n").filter(Boolean));
        logTail.splice(0, Math.max(0, logTail.length - 20));
      }
    })().catch(() => {});
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const client = Deno.createHttpClient({});

  let stopped: Promise<void> | undefined;
  const onAbort = () => void stop();
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      opts.signal?.removeEventListener("abort", onAbort);
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        let killTimer: ReturnType<typeof setTimeout> | undefined;
        const forced = new Promise<void>((resolve) => {
          killTimer = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch { /* already gone */ }
            resolve();
          }, 2000);
        });
        await Promise.race([status, forced]);
        clearTimeout(killTimer);
      }
      await status;
      await drained;
      client.close();
    })();
    return stopped;
  };
  opts.signal?.addEventListener("abort", onAbort, { once: true });

  /** One API call; its status and body text if the status is in `ok` (`/version` is not JSON). */
  const api = async (
    method: string,
    path: string,
    body?: unknown,
    ok: number[] = [200, 201, 204],
  ): Promise<{ status: number; text: string }> => {
    const response = await fetch(`${apiUrl}${path}`, {
      method,
      client,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    if (!ok.includes(response.status)) {
      throw new Error(`toxiproxy ${method} ${path}: HTTP ${response.status} ${text.trim()}`);
    }
    return { status: response.status, text };
  };

  const deadline = performance.now() + readyTimeoutMs;
  for (;;) {
    if (opts.signal?.aborted) {
      await stop();
      throw opts.signal.reason ?? new Error("aborted");
    }
    if (exited) {
      const s = await status;
      await stop();
      throw new Error(
        `toxiproxy-server exited (code ${s.code}) before its API answered on ${apiUrl}: ` +
          logTail.slice(-5).join(" | "),
      );
    }
    try {
      await api("GET", "/version");
      break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      await stop();
      throw new Error(
        `toxiproxy-server API did not answer on ${apiUrl} within ${readyTimeoutMs} ms: ` +
          logTail.slice(-5).join(" | "),
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }

  const proxyPath = (name: string) => `/proxies/${encodeURIComponent(name)}`;
  return {
    apiUrl,
    pid: child.pid,
    async addProxy(name, listen, upstream) {
      const { text } = await api("POST", "/proxies", { name, listen, upstream, enabled: true }, [
        201,
      ]);
      return (JSON.parse(text) as { listen: string }).listen;
    },
    async setLatency(name, latencyMs, jitterMs, streams = ["upstream", "downstream"]) {
      for (const [what, v] of [["latencyMs", latencyMs], ["jitterMs", jitterMs]] as const) {
        if (!Number.isSafeInteger(v) || v < 0) {
          throw new Error(`${what} must be a non-negative integer (ms), got ${v}`);
        }
      }
      if (jitterMs > latencyMs) {
        throw new Error(`jitterMs (${jitterMs}) must not exceed latencyMs (${latencyMs})`);
      }
      const attributes = { latency: latencyMs, jitter: jitterMs };
      for (const stream of streams) {
        const toxic = `latency_${stream}`;
        const created = await api(
          "POST",
          `${proxyPath(name)}/toxics`,
          { name: toxic, type: "latency", stream, toxicity: 1, attributes },
          [200, 201, 409],
        );
        if (created.status === 409) {
          await api("POST", `${proxyPath(name)}/toxics/${toxic}`, { toxicity: 1, attributes });
        }
      }
    },
    async clearToxics(name) {
      const { text } = await api("GET", `${proxyPath(name)}/toxics`);
      for (const toxic of JSON.parse(text) as { name: string }[]) {
        await api(
          "DELETE",
          `${proxyPath(name)}/toxics/${encodeURIComponent(toxic.name)}`,
          undefined,
          [
            204,
            404,
          ],
        );
      }
    },
    stop,
  };
}

function freePort(hostname: string): number {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
