/**
 * Event-loop lag, measured the way the watchdog sees it: a timer is set every `intervalMs` and
 * the lateness of each firing (now − due) is the lag a deadline timer would have suffered. The
 * clock is injected (unit tests advance a fake one).
 *
 * prom-client's own monitor (`collectDefaultMetrics`, `perf_hooks.monitorEventLoopDelay`) does run
 * under Deno, but its gauges are reset at every scrape and measure a different loop phase; this
 * one feeds a histogram (so quantiles can be taken over any window) and backs `/healthz`.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";

/** Options of {@linkcode EventLoopMonitor}. */
export interface EventLoopMonitorOptions {
  clock: Clock;
  /** Period of the probe timer, ms (default 100). */
  intervalMs?: number;
  /** Receives every probe's lateness, ms (≥ 0). */
  onLag?: (lagMs: number) => void;
}

/** Measures timer lateness between {@linkcode EventLoopMonitor.start} and `stop`. */
export class EventLoopMonitor {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #onLag: (lagMs: number) => void;
  #timer: TimerHandle | undefined;
  #dueMs = 0;
  #lastLagMs = 0;
  #maxLagMs = 0;
  #running = false;

  /** Creates it stopped. */
  constructor(options: EventLoopMonitorOptions) {
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs ?? 100;
    this.#onLag = options.onLag ?? (() => {});
  }

  /** Period of the probe, ms. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** Lateness of the last probe, ms (0 before the first). */
  get lastLagMs(): number {
    return this.#lastLagMs;
  }

  /** Largest lateness seen, ms. */
  get maxLagMs(): number {
    return this.#maxLagMs;
  }

  /**
   * How late the loop is right now, ms: the lateness of the last probe, or, when the next probe
   * is already overdue (the loop is blocked or starved), how overdue it is. 0 while stopped.
   */
  currentLagMs(nowMs: number = this.#clock.nowMs()): number {
    if (!this.#running) return 0;
    return Math.max(this.#lastLagMs, nowMs - this.#dueMs);
  }

  /** Starts probing (no-op when running). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Stops probing. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    this.#dueMs = this.#clock.nowMs() + this.#intervalMs;
    this.#timer = this.#clock.setTimer(() => this.#fire(), this.#intervalMs);
  }

  #fire(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const lagMs = Math.max(0, this.#clock.nowMs() - this.#dueMs);
    this.#lastLagMs = lagMs;
    if (lagMs > this.#maxLagMs) this.#maxLagMs = lagMs;
    this.#onLag(lagMs);
    this.#schedule();
  }
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
