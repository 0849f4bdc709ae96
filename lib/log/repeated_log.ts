/**
 * Summarises repeated log lines: with the broker down, mqtt.js reports the same `mqtt-error` at
 * every reconnect attempt (every `reconnectPeriodMs`, e.g. 500 ms), which would bury everything
 * else in the journal.
 *
 * A line is identified by a key: its event name plus the values of chosen fields (e.g. the error
 * message). The first line of a key is logged at once; repeats within the following window are
 * counted, not logged; at the window's end one summary line is logged (the same event and level,
 * the last repeat's fields plus `repeated` = how many were held back and `sinceMs` = over how long)
 * and the next window is twice as long (1 s, 2 s, 4 s … up to `maxWindowMs`, default 60 s). A
 * window without a repeat ends the episode: the next line of that key is logged at once again.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import type { LogFields, Logger, LogLevel } from "./log.ts";

/** Options of {@linkcode RepeatedLog}. */
export interface RepeatedLogOptions {
  /** Where lines go. */
  log: Logger;
  /** Monotonic clock and timers (default {@linkcode systemClock}). */
  clock?: Clock;
  /** First window after a logged line, ms (default 1000). */
  initialWindowMs?: number;
  /** Longest window, ms (default 60 000). */
  maxWindowMs?: number;
}

interface Episode {
  level: LogLevel;
  event: string;
  windowMs: number;
  windowStartMs: number;
  /** Repeats held back in the current window. */
  repeated: number;
  /** Fields of the last repeat. */
  fields: LogFields;
  timer: TimerHandle;
}

/** A logger front that logs the first of repeated lines and summarises the rest with backoff. */
export class RepeatedLog {
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #initialWindowMs: number;
  readonly #maxWindowMs: number;
  readonly #episodes = new Map<string, Episode>();
  #closed = false;

  /** @throws RangeError when a window is not a positive number or the first exceeds the cap. */
  constructor(options: RepeatedLogOptions) {
    this.#log = options.log;
    this.#clock = options.clock ?? systemClock;
    this.#initialWindowMs = options.initialWindowMs ?? 1000;
    this.#maxWindowMs = options.maxWindowMs ?? 60_000;
    if (!(this.#initialWindowMs > 0) || !(this.#maxWindowMs >= this.#initialWindowMs)) {
      throw new RangeError(
        `windows must satisfy 0 < initialWindowMs (${this.#initialWindowMs}) <= maxWindowMs ` +
          `(${this.#maxWindowMs})`,
      );
    }
  }

  /**
   * Logs `event` at `level` unless a line of the same key was logged within the current window
   * (then it is counted for the summary). After {@linkcode RepeatedLog.close} every line is logged.
   * @param keyFields names of the fields that, with the event, identify repeats (default: none,
   *   every line of the event is one key).
   */
  log(level: LogLevel, event: string, fields: LogFields = {}, keyFields: string[] = []): void {
    const key = JSON.stringify([event, ...keyFields.map((k) => fields[k] ?? null)]);
    const episode = this.#episodes.get(key);
    if (episode) {
      episode.repeated++;
      episode.fields = fields;
      return;
    }
    this.#log[level](event, fields);
    if (!this.#closed) this.#open(key, level, event, fields, this.#initialWindowMs);
  }

  /** {@linkcode RepeatedLog.log} at `warn`. */
  warn(event: string, fields?: LogFields, keyFields?: string[]): void {
    this.log("warn", event, fields, keyFields);
  }

  /** {@linkcode RepeatedLog.log} at `error`. */
  error(event: string, fields?: LogFields, keyFields?: string[]): void {
    this.log("error", event, fields, keyFields);
  }

  /** Keys in an episode (a line logged, its window not yet quiet). */
  get open(): number {
    return this.#episodes.size;
  }

  /**
   * Logs the summaries of repeats still held back and cancels every timer; from now on every line
   * is logged as it comes (no timer is started). Idempotent.
   */
  close(): void {
    this.#closed = true;
    for (const [key, e] of this.#episodes) {
      this.#clock.clearTimer(e.timer);
      this.#summarise(e);
      this.#episodes.delete(key);
    }
  }

  #open(key: string, level: LogLevel, event: string, fields: LogFields, windowMs: number): void {
    const episode: Episode = {
      level,
      event,
      windowMs,
      windowStartMs: this.#clock.nowMs(),
      repeated: 0,
      fields,
      timer: undefined,
    };
    episode.timer = this.#clock.setTimer(() => this.#windowEnd(key, episode), windowMs);
    this.#episodes.set(key, episode);
  }

  #windowEnd(key: string, e: Episode): void {
    if (this.#episodes.get(key) !== e) return;
    this.#episodes.delete(key);
    if (e.repeated === 0) return; // quiet: the episode is over
    this.#summarise(e);
    this.#open(key, e.level, e.event, e.fields, Math.min(2 * e.windowMs, this.#maxWindowMs));
  }

  #summarise(e: Episode): void {
    if (e.repeated === 0) return;
    this.#log[e.level](e.event, {
      ...e.fields,
      repeated: e.repeated,
      sinceMs: Math.round(this.#clock.nowMs() - e.windowStartMs),
    });
  }
}
