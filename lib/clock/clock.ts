/**
 * The monotonic clock and timer source that the watchdog and everything time-critical use.
 *
 * Wall-clock time (`Date.now()`) can jump (NTP, GNSS time sync at ignition); it is never used for
 * a deadline. Injecting the clock lets the watchdog be driven without sleeping in tests.
 *
 * @module
 */

/** An opaque timer handle returned by {@linkcode Clock.setTimer}. */
export type TimerHandle = unknown;

/** A monotonic clock with one-shot timers. */
export interface Clock {
  /** Milliseconds on a monotonic time base (fractional); only differences are meaningful. */
  nowMs(): number;
  /** Calls `callback` once, no earlier than `delayMs` from now. */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  /** Cancels a timer; unknown or fired handles are ignored. */
  clearTimer(handle: TimerHandle): void;
}

/** The process's monotonic clock: `performance.now()` and the event loop's timers. */
export const systemClock: Clock = {
  nowMs: () => performance.now(),
  // setTimeout truncates fractional delays; round up so a timer never fires before delayMs.
  setTimer: (callback, delayMs) => setTimeout(callback, Math.max(0, Math.ceil(delayMs))),
  clearTimer: (handle) => clearTimeout(handle as number),
};
