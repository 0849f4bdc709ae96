/**
 * Metrics every role exports: event-loop lag (a histogram fed by an {@linkcode EventLoopMonitor})
 * and the process's CPU time and resident memory, under the names of the Prometheus client
 * guidelines (`process_cpu_seconds_total`, `process_resident_memory_bytes`).
 *
 * prom-client's `collectDefaultMetrics` is not used: it runs under Deno, but with the permissions
 * the program ships with (`--allow-net --allow-read --allow-env --allow-sys`) its `/proc`-based
 * gauges (`process_resident_memory_bytes`, `process_open_fds`, …) read 0, which is worse than
 * absent. Deno's `Deno.memoryUsage()` and `process.cpuUsage()` work under those permissions.
 *
 * @module
 */
import process from "node:process";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { EventLoopMonitor } from "./event_loop_monitor.ts";

/** Buckets of lateness histograms, seconds: 0.1 ms to 1 s (a deadline timer is late by µs–ms). */
export const LATENESS_BUCKETS_S: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  1,
];

/**
 * Registers the process metrics on `registry`; returns the lag sink to give the monitor as
 * `onLag` (ms). `sdv_failover_event_loop_lag_seconds`: lateness of the monitor's probe timer.
 */
export function registerProcessMetrics(registry: Registry): { observeLagMs: (ms: number) => void } {
  const lag = new Histogram({
    name: "sdv_failover_event_loop_lag_seconds",
    help:
      "Event-loop lag: lateness of a periodic probe timer (what a deadline timer would suffer).",
    buckets: [...LATENESS_BUCKETS_S],
    registers: [registry],
  });
  let lastCpuS = 0;
  new Counter({
    name: "process_cpu_seconds_total",
    help: "Total user and system CPU time spent in seconds.",
    registers: [registry],
    collect() {
      const { user, system } = process.cpuUsage();
      const cpuS = (user + system) / 1e6;
      if (cpuS > lastCpuS) this.inc(cpuS - lastCpuS);
      lastCpuS = Math.max(lastCpuS, cpuS);
    },
  });
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    registers: [registry],
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  return { observeLagMs: (ms) => lag.observe(ms / 1000) };
}

/**
 * Liveness from the event loop: unhealthy when the loop is (or just was) late by more than
 * `unhealthyLagMs` (default {@linkcode UNHEALTHY_LAG_MS}).
 * @returns `ok` and the current lag, ms.
 */
export function eventLoopHealth(
  monitor: Pick<EventLoopMonitor, "currentLagMs">,
  unhealthyLagMs: number = UNHEALTHY_LAG_MS,
): { ok: boolean; eventLoopLagMs: number } {
  const lagMs = monitor.currentLagMs();
  return { ok: lagMs <= unhealthyLagMs, eventLoopLagMs: Math.round(lagMs * 1000) / 1000 };
}

/**
 * Event-loop lag above which `/healthz` answers 503, ms: 1 s is far beyond any heartbeat timeout
 * (30–300 ms), so the process no longer supervises anything, yet short enough for a liveness probe
 * (its default period is 10 s) to restart a process whose loop is wedged, not one that paused once
 * for a garbage collection.
 */
export const UNHEALTHY_LAG_MS = 1000;
