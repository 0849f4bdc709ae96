/**
 * Bounded retries with exponential backoff for Kubernetes API calls, separating retryable
 * errors (network, timeout, 409 conflict, 429, 5xx) from terminal ones (400, 401, 403, 404, 422),
 * as Kubernetes controllers do (sample-controller: requeue transient errors, drop permanent ones).
 *
 * @module
 */
import { type Clock, systemClock } from "../clock/clock.ts";

/** Options of {@linkcode withRetry}. */
export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** First backoff, doubled per retry, ms (default 20). */
  backoffMs?: number;
  /** Aborts waiting and further attempts. */
  signal?: AbortSignal;
  /** HTTP status of an error, if any (default: its numeric `code`). */
  statusOf?: (error: unknown) => number | undefined;
  /** Timer source of the backoff sleeps (default: the system clock). */
  clock?: Clock;
}

/** Thrown by {@linkcode withRetry} after the last attempt; carries the attempt count. */
export class RetryError extends Error {
  /** Attempts made. */
  readonly attempts: number;
  /** HTTP status of the last error, if any. */
  readonly status: number | undefined;
  /** True when the last error was terminal (not worth retrying). */
  readonly terminal: boolean;

  constructor(
    message: string,
    attempts: number,
    status: number | undefined,
    terminal: boolean,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = "RetryError";
    this.attempts = attempts;
    this.status = status;
    this.terminal = terminal;
  }
}

const RETRYABLE = new Set([409, 429, 500, 502, 503, 504]);

/** True when an error with this HTTP status (undefined = no response) may succeed on retry. */
function isRetryableStatus(status: number | undefined): boolean {
  return status === undefined || RETRYABLE.has(status);
}

/**
 * HTTP status of an error: the numeric `code` of a client-node `ApiException` (100–599), else
 * undefined. A `DOMException` (the per-request timeout's `TimeoutError`, an `AbortError`) also
 * has a numeric legacy `code` (23, 20): it is not an HTTP status, and such errors are retryable.
 */
export function httpStatusOf(error: unknown): number | undefined {
  if (error instanceof DOMException) return undefined;
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" && code >= 100 && code <= 599 ? code : undefined;
}

/**
 * Runs `attempt` until it succeeds, a terminal error occurs, the retries are used up or the
 * signal aborts.
 * @returns the value and the number of attempts.
 * @throws RetryError wrapping the last error.
 */
export async function withRetry<T>(
  attempt: (n: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<{ value: T; attempts: number }> {
  const retries = options.retries ?? 3;
  const statusOf = options.statusOf ?? httpStatusOf;
  const clock = options.clock ?? systemClock;
  let backoffMs = options.backoffMs ?? 20;
  let lastError: unknown;
  for (let n = 1;; n++) {
    if (n > 1 && options.signal?.aborted) {
      throw new RetryError(
        `aborted after ${n - 1} attempt(s)`,
        n - 1,
        statusOf(lastError),
        false,
        lastError,
      );
    }
    try {
      return { value: await attempt(n), attempts: n };
    } catch (error) {
      lastError = error;
      const status = statusOf(error);
      const terminal = !isRetryableStatus(status);
      const aborted = options.signal?.aborted ?? false;
      if (terminal || aborted || n > retries) {
        const text = error instanceof Error ? error.message : String(error);
        throw new RetryError(
          `${
            aborted ? "aborted" : terminal ? "terminal error" : "retries exhausted"
          } after ${n} attempt(s)` +
            `${status ? ` (HTTP ${status})` : ""}: ${text.slice(0, 300)}`,
          n,
          status,
          terminal,
          error,
        );
      }
      await sleep(clock, backoffMs, options.signal);
      backoffMs *= 2;
    }
  }
}

/**
 * Waits `ms` on `clock`, or less when `signal` aborts. The abort listener is removed when the timer
 * fires, so a long-lived signal does not collect one listener per retry.
 */
function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => {
      clock.clearTimer(timer);
      resolve();
    };
    const timer = clock.setTimer(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
