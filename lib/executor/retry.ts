/**
 * Bounded retries with exponential backoff for Kubernetes API calls, separating retryable
 * errors (network, timeout, 409 conflict, 429, 5xx) from terminal ones (400, 401, 403, 404, 422),
 * as Kubernetes controllers do (sample-controller: requeue transient errors, drop permanent ones).
 *
 * @module
 */

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
export function isRetryableStatus(status: number | undefined): boolean {
  return status === undefined || RETRYABLE.has(status);
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
  const statusOf = options.statusOf ??
    ((e: unknown) =>
      typeof (e as { code?: unknown })?.code === "number"
        ? (e as { code: number }).code
        : undefined);
  let backoffMs = options.backoffMs ?? 20;
  for (let n = 1;; n++) {
    try {
      return { value: await attempt(n), attempts: n };
    } catch (error) {
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
      await sleep(backoffMs, options.signal);
      backoffMs *= 2;
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
