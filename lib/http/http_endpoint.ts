/**
 * The HTTP endpoint of `run` and `agent` (`Deno.serve`, bound to `http.listen` /
 * `http.agentListen`, closed by an `AbortSignal`):
 *
 * | route      | answer                                                                          |
 * | ---------- | ------------------------------------------------------------------------------- |
 * | `/metrics` | Prometheus text exposition format 0.0.4 (prom-client)                            |
 * | `/healthz` | 200 `{"status":"ok",…}` while the event loop is responsive, else 503             |
 * | `/readyz`  | 200 `{"ready":true,"reasons":[]}` when ready, else 503 with the reasons          |
 * | `/status`  | 200 JSON from the injected `status` callback; 404 when there is none              |
 *
 * Only GET and HEAD (405 otherwise); any other path is 404. A callback that throws answers 500
 * (the error is logged), never crashes the process.
 *
 * @module
 */
import { formatListenAddress, type ListenAddress } from "../config/listen_address.ts";
import type { Logger } from "../log/log.ts";
import type { Readiness } from "./readiness.ts";

/** Options of {@linkcode startHttpEndpoint}. */
export interface HttpEndpointOptions {
  /** Where to listen (port 0: a free port, see {@linkcode HttpEndpoint.address}). */
  listen: ListenAddress;
  /** Aborting closes the listener (in-flight requests finish). */
  signal: AbortSignal;
  /** The metrics exposition text and its content type. */
  metrics: () => Promise<string>;
  /** Content type of the exposition (prom-client's `Registry.contentType`). */
  metricsContentType: string;
  /** Liveness: `ok` plus fields for the body. */
  health: () => { ok: boolean } & Record<string, unknown>;
  /** Readiness. */
  ready: () => Readiness;
  /** `/status` answers its JSON; absent: 404. */
  status?: () => unknown;
  log: Logger;
}

/** A listening endpoint. */
export interface HttpEndpoint {
  /** The bound address (the real port when 0 was asked for). */
  address: ListenAddress;
  /** Resolves once the listener is closed after the signal aborted. */
  finished: Promise<void>;
}

/** The endpoint could not listen (address in use, not available here, no permission). */
export class HttpListenError extends Error {
  constructor(address: string, cause: unknown) {
    const why = cause instanceof Deno.errors.AddrInUse
      ? "address already in use (another process listens there: stop it or change http.listen)"
      : cause instanceof Deno.errors.AddrNotAvailable
      ? "address not available on this host"
      : cause instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (cause as Error)?.message ?? String(cause);
    super(`HTTP endpoint cannot listen on ${address}: ${why}`, { cause });
    this.name = "HttpListenError";
  }
}

const JSON_TYPE = "application/json; charset=utf-8";

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body) + "\n", {
    status,
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store" },
  });
}

/**
 * Starts listening at once.
 * @throws HttpListenError when the address cannot be bound (e.g. in use).
 */
export function startHttpEndpoint(options: HttpEndpointOptions): HttpEndpoint {
  const { log } = options;
  const handler = async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    try {
      switch (pathname) {
        case "/metrics":
          return new Response(await options.metrics(), {
            headers: { "content-type": options.metricsContentType, "cache-control": "no-store" },
          });
        case "/healthz": {
          const { ok, ...fields } = options.health();
          return json(ok ? 200 : 503, { status: ok ? "ok" : "unhealthy", ...fields });
        }
        case "/readyz": {
          const verdict = options.ready();
          return json(verdict.ready ? 200 : 503, verdict);
        }
        case "/status":
          if (!options.status) return json(404, { error: "no status snapshot in this role" });
          return json(200, options.status());
        default:
          return json(404, { error: `no route ${pathname}` });
      }
    } catch (error) {
      log.error("http-handler-failed", { path: pathname, error: (error as Error).message });
      return json(500, { error: "internal error" });
    }
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  const wanted = formatListenAddress(options.listen);
  try {
    server = Deno.serve({
      hostname: options.listen.hostname,
      port: options.listen.port,
      signal: options.signal,
      onListen: () => {},
      onError: (error) => {
        log.error("http-error", { error: (error as Error).message });
        return json(500, { error: "internal error" });
      },
    }, handler);
  } catch (error) {
    throw new HttpListenError(wanted, error);
  }
  const address = { hostname: options.listen.hostname, port: server.addr.port };
  return { address, finished: server.finished };
}
