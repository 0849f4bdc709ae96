/**
 * The HTTP endpoint of one role (`run` or `agent`) with its event-loop monitor: what both commands
 * start after the config is validated and close last in their ordered shutdown.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock/clock.ts";
import {
  formatListenAddress,
  type ListenAddress,
  parseListenAddress,
} from "../config/listen_address.ts";
import type { Logger } from "../log/log.ts";
import { eventLoopHealth, EventLoopMonitor } from "../metrics/event_loop_monitor.ts";
import { HttpListenError, startHttpEndpoint } from "./http_endpoint.ts";
import type { Readiness } from "./readiness.ts";

/**
 * Content type of the Prometheus text format 0.0.4 (prom-client's `Registry.contentType` by
 * default; a constant here so the endpoint does not load prom-client).
 */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metrics of a role, as the endpoint uses them (`SupervisorMetrics`, `AgentMetrics`). */
export interface RoleMetrics {
  /** Content type of the exposition (prom-client's `Registry.contentType`). */
  readonly contentType: string;
  metrics(): Promise<string>;
  readiness(): Readiness;
  readonly observeEventLoopLagMs: (lagMs: number) => void;
}

/** Options of {@linkcode openRoleEndpoint}. */
export interface RoleEndpointOptions {
  /** `HOST:PORT` (validated by the config or the `--http-listen` flag); `""` disables it. */
  listen: string;
  metrics: RoleMetrics;
  /** `/status` (absent: 404). */
  status?: () => unknown;
  log: Logger;
  /** Clock of the event-loop monitor (default: the system clock). */
  clock?: Clock;
}

/** A listening role endpoint. */
export interface RoleEndpoint {
  /** The bound address (the real port when 0 was asked for). */
  readonly address: ListenAddress;
  /** Closes the listener (in-flight requests finish) and stops the monitor. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the event-loop monitor and the endpoint, and logs `http-listening` with the address.
 * @returns the endpoint, or `undefined` when `listen` is `""` (disabled).
 * @throws HttpListenError when the address is malformed or cannot be bound (e.g. in use).
 */
export function openRoleEndpoint(options: RoleEndpointOptions): RoleEndpoint | undefined {
  if (options.listen === "") return undefined;
  const listen = parseListenAddress(options.listen);
  if ("problem" in listen) {
    throw new HttpListenError(options.listen, new Error(listen.problem));
  }
  const { metrics, log } = options;
  const monitor = new EventLoopMonitor({
    clock: options.clock ?? systemClock,
    onLag: metrics.observeEventLoopLagMs,
  });
  const abort = new AbortController();
  const endpoint = startHttpEndpoint({
    listen,
    signal: abort.signal,
    metrics: () => metrics.metrics(),
    metricsContentType: metrics.contentType,
    health: () => eventLoopHealth(monitor),
    ready: () => metrics.readiness(),
    status: options.status,
    log,
  });
  monitor.start();
  log.info("http-listening", {
    address: formatListenAddress(endpoint.address),
    routes: "/metrics /healthz /readyz /status",
  });
  let closed: Promise<void> | undefined;
  return {
    address: endpoint.address,
    close: () =>
      closed ??= (async () => {
        monitor.stop();
        abort.abort();
        await endpoint.finished;
      })(),
  };
}
