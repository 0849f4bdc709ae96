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

export { eventLoopHealth, UNHEALTHY_LAG_MS } from "./event_loop_monitor.ts";
