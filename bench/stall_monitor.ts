/**
 * Stall detection for the threads that stand in for the vehicle: an interval timer that notices
 * when it fired much later than scheduled (the thread did not run), and a broker round-trip probe.
 * Used to tell a stalled simulator or broker apart from a slow runtime when a healthy target
 * expires.
 *
 * @module
 */

/** One observed stall. */
export interface Stall {
  /**
   * What stalled: the simulator thread (`vehicle`), the broker round trip (`broker`), the
   * promotion subscriber's thread (`subscriber`), the bench's main thread (`bench`).
   */
  what: "vehicle" | "broker" | "subscriber" | "bench";
  /** Wall-clock ms when the stall began (approximately). */
  wallMs: number;
  /** How long, ms. */
  ms: number;
}

const wall = () => performance.timeOrigin + performance.now();

/**
 * Calls `onStall` whenever consecutive ticks of a `periodMs` interval are more than
 * `thresholdMs` further apart than scheduled. Returns a stop function.
 */
export function watchEventLoop(
  what: Stall["what"],
  onStall: (s: Stall) => void,
  periodMs = 2,
  thresholdMs = 10,
): () => void {
  let prev = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    const late = now - prev - periodMs;
    if (late > thresholdMs) onStall({ what, wallMs: wall() - late, ms: late });
    prev = now;
  }, periodMs);
  return () => clearInterval(timer);
}
