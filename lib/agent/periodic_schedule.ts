/**
 * A drift-free periodic schedule on a monotonic clock, shared by the node agent (heartbeats) and
 * the publisher (sensor ticks, app heartbeats).
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";

/**
 * A drift-free periodic schedule on a monotonic {@linkcode Clock}: slot `k` is due at
 * `startMs + k·periodMs` (k = 1, 2, …), computed from the start, never from the previous firing,
 * so lateness does not accumulate. When the event loop stalled past one or more slots, the overdue
 * timer fires ONE slot at once (the latest one due, so a stall delays a slot, it never drops the
 * beat), the earlier missed slots are merged into it (counted in
 * {@linkcode PeriodicSchedule.missedSlots}) rather than fired in a burst, and the next slot is due
 * on the original grid. A timer that fires slightly early (the system clock's timers truncate fractional delays:
 * seen up to ≈ 0.6 ms) counts as the slot it was armed for; it is not fired twice.
 */
export class PeriodicSchedule {
  readonly #clock: Clock;
  readonly #periodMs: number;
  readonly #onSlot: (slot: number, nowMs: number, lateMs: number) => void;
  #startMs = 0;
  #slot = 0;
  #timer: TimerHandle | undefined;
  #running = false;
  #missed = 0;

  /**
   * Creates a stopped schedule.
   * @param clock monotonic clock.
   * @param periodMs period in ms (> 0).
   * @param onSlot called once per slot with the slot number, the clock reading and how late the
   *   timer fired, ms (clock reading minus the due time of the slot it was armed for, ≥ 0; above
   *   `periodMs` after a stall); exceptions propagate to the timer source after the next slot has
   *   been scheduled.
   * @throws RangeError when `periodMs` is not a positive finite number.
   */
  constructor(
    clock: Clock,
    periodMs: number,
    onSlot: (slot: number, nowMs: number, lateMs: number) => void,
  ) {
    if (!(periodMs > 0) || !Number.isFinite(periodMs)) {
      throw new RangeError(`periodMs must be a positive number, got ${periodMs}`);
    }
    this.#clock = clock;
    this.#periodMs = periodMs;
    this.#onSlot = onSlot;
  }

  /**
   * Starts the schedule; the first slot is due at `startMs + periodMs`.
   * @param startMs the schedule's origin on the clock (default: now). Calling start twice is a
   *   no-op while running.
   */
  start(startMs: number = this.#clock.nowMs()): void {
    if (this.#running) return;
    this.#running = true;
    this.#startMs = startMs;
    this.#slot = 0;
    this.#arm(1);
  }

  /** Stops the schedule; pending slots are cancelled. Idempotent. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** Slots merged into a later one because the timer fired more than one period late. */
  get missedSlots(): number {
    return this.#missed;
  }

  #arm(slot: number): void {
    this.#slot = slot;
    const dueMs = this.#startMs + slot * this.#periodMs;
    this.#timer = this.#clock.setTimer(() => this.#fire(), dueMs - this.#clock.nowMs());
  }

  #fire(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const nowMs = this.#clock.nowMs();
    const slot = this.#slot;
    const lateMs = Math.max(0, nowMs - (this.#startMs + slot * this.#periodMs));
    // The slot whose due time is the latest not after now (>= slot when on time or late).
    const current = Math.max(slot, Math.floor((nowMs - this.#startMs) / this.#periodMs));
    this.#missed += current - slot;
    this.#arm(current + 1);
    this.#onSlot(current, nowMs, lateMs);
  }
}
