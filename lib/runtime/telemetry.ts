/**
 * The supervisor's periodic `stats` log line: ingest rate, watchdog counters and lag, reconcile
 * queue depth, resident memory.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";

/** Options of {@linkcode Telemetry}. */
export interface TelemetryOptions {
  clock: Clock;
  log: Logger;
  /** Period of the `stats` line, ms; 0 disables it. */
  intervalMs: number;
  /** Current counters. */
  sample: () => Record<string, number>;
  /** Messages received so far (for the rate). */
  messages: () => number;
}

/** Emits `stats` every `intervalMs` between {@linkcode Telemetry.start} and `stop`. */
export class Telemetry {
  readonly #options: TelemetryOptions;
  #timer: TimerHandle | undefined;
  #last = { atMs: 0, messages: 0 };
  #running = false;

  /** Creates it stopped. */
  constructor(options: TelemetryOptions) {
    this.#options = options;
  }

  /** Starts the periodic line (no-op when the interval is 0 or already running). */
  start(): void {
    const { clock, intervalMs } = this.#options;
    if (intervalMs <= 0 || this.#running) return;
    this.#running = true;
    this.#last = { atMs: clock.nowMs(), messages: this.#options.messages() };
    const tick = () => {
      if (!this.#running) return;
      this.#options.log.info("stats", this.snapshot());
      this.#timer = clock.setTimer(tick, intervalMs);
    };
    this.#timer = clock.setTimer(tick, intervalMs);
  }

  /** Stops the periodic line. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#options.clock.clearTimer(this.#timer);
  }

  /** The counters now, with the message rate since the previous snapshot and RSS. */
  snapshot(): Record<string, number> {
    const nowMs = this.#options.clock.nowMs();
    const messages = this.#options.messages();
    const intervalMs = nowMs - this.#last.atMs;
    const rate = intervalMs > 0 ? ((messages - this.#last.messages) * 1000) / intervalMs : 0;
    this.#last = { atMs: nowMs, messages };
    return {
      ...this.#options.sample(),
      messagesPerS: Math.round(rate),
      rssBytes: Deno.memoryUsage().rss,
    };
  }
}
