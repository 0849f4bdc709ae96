/**
 * A cancellable one-shot at an absolute time on a monotonic clock, never early.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";

/** A pending {@linkcode deadline}. */
export interface Deadline {
  /** Cancels it; idempotent, and a no-op once it has fired. */
  cancel(): void;
}

/**
 * Calls `callback` at `dueMs` on the clock, never before: the system clock's timers truncate
 * fractional delays and were seen to fire up to ≈ 0.6 ms early, so an early firing re-arms.
 */
export function deadline(clock: Clock, dueMs: number, callback: () => void): Deadline {
  let handle: TimerHandle | undefined;
  const arm = () => {
    handle = clock.setTimer(() => {
      handle = undefined;
      if (clock.nowMs() < dueMs) arm();
      else callback();
    }, dueMs - clock.nowMs());
  };
  arm();
  return {
    cancel: () => {
      if (handle !== undefined) clock.clearTimer(handle);
      handle = undefined;
    },
  };
}
