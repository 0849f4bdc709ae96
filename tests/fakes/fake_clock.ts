/**
 * A manually advanced {@linkcode Clock} for tests: time moves only when the test says so, and
 * timers fire in deadline order during {@linkcode FakeClock.advance}.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../../lib/clock/clock.ts";

interface PendingTimer {
  handle: number;
  dueMs: number;
  callback: () => void;
}

/** A deterministic clock. Starts at `startMs` (default 1000). */
export class FakeClock implements Clock {
  #nowMs: number;
  #nextHandle = 1;
  #timers = new Map<unknown, PendingTimer>();

  /** @param startMs initial reading of {@linkcode FakeClock.nowMs}. */
  constructor(startMs = 1000) {
    this.#nowMs = startMs;
  }

  /** The current fake monotonic time in ms. */
  nowMs(): number {
    return this.#nowMs;
  }

  /** Schedules `callback` at now + `delayMs` (negative delays count as 0). */
  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const handle = this.#nextHandle++;
    this.#timers.set(handle, { handle, dueMs: this.#nowMs + Math.max(0, delayMs), callback });
    return handle;
  }

  /** Cancels a pending timer. */
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle);
  }

  /** Number of timers not yet fired. */
  get pendingTimers(): number {
    return this.#timers.size;
  }

  /**
   * Moves time forward by `deltaMs`, firing every timer that falls due, in due order, with the
   * clock set to each timer's due time while its callback runs (as a punctual event loop would).
   * @param lateMs extra lateness added to each firing, to simulate a stalled event loop.
   */
  advance(deltaMs: number, lateMs = 0): void {
    const endMs = this.#nowMs + deltaMs;
    for (;;) {
      let next: PendingTimer | undefined;
      for (const t of this.#timers.values()) {
        if (t.dueMs <= endMs && (!next || t.dueMs < next.dueMs)) next = t;
      }
      if (!next) break;
      this.#timers.delete(next.handle);
      this.#nowMs = Math.max(this.#nowMs, Math.min(endMs, next.dueMs + lateMs));
      next.callback();
    }
    this.#nowMs = endMs;
  }

  /** Sets the time without firing timers (for simulating a fully stalled loop). */
  jump(deltaMs: number): void {
    this.#nowMs += deltaMs;
  }
}
