/**
 * Test harness: waiting, with a bounded loop, for a condition on real components.
 *
 * @module
 */

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `probe` every `pollMs` (default 100) until it returns a value other than `undefined`;
 * a probe that throws is retried (its last error is reported on timeout).
 * @throws Error naming `what` after `timeoutMs`.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
  pollMs = 100,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(pollMs);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms: ${what}${last ? ` (last error: ${last})` : ""}`,
  );
}
