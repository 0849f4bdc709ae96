import assert from "node:assert/strict";
import { httpStatusOf, RetryError, withRetry } from "./retry.ts";

const httpError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code });

Deno.test("withRetry retries transient errors and reports attempts", async () => {
  let calls = 0;
  const { value, attempts } = await withRetry(() => {
    calls++;
    if (calls < 3) throw calls === 1 ? httpError(503) : new Error("socket hang up");
    return Promise.resolve("ok");
  }, { retries: 3, backoffMs: 1 });
  assert.equal(value, "ok");
  assert.equal(attempts, 3);
});

Deno.test("withRetry stops at once on a terminal error", async () => {
  let calls = 0;
  const error = await withRetry(() => {
    calls++;
    throw httpError(403);
  }, { retries: 5, backoffMs: 1 }).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(calls, 1);
  assert.equal(error.terminal, true);
  assert.equal(error.status, 403);
});

Deno.test("withRetry gives up after the bound", async () => {
  let calls = 0;
  const error = await withRetry(() => {
    calls++;
    throw httpError(500);
  }, { retries: 2, backoffMs: 1 }).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal(calls, 3);
  assert.equal(error.attempts, 3);
  assert.match(error.message, /retries exhausted/);
});

Deno.test("withRetry removes its abort listener from the caller's signal after each sleep", async () => {
  const controller = new AbortController();
  let added = 0;
  let removed = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    added++;
    add(...args);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    removed++;
    remove(...args);
  }) as typeof signal.removeEventListener;
  let calls = 0;
  await withRetry(() => {
    calls++;
    if (calls <= 3) throw httpError(503);
    return Promise.resolve(1);
  }, { retries: 3, backoffMs: 1, signal });
  assert.equal(added, 3);
  assert.equal(removed, 3);
});

Deno.test("withRetry sleeps on the injected clock and stops when aborted", async () => {
  const { FakeClock } = await import("../../tests/fakes/fake_clock.ts");
  const clock = new FakeClock();
  const controller = new AbortController();
  let calls = 0;
  const done = withRetry(() => {
    calls++;
    throw httpError(500);
  }, { retries: 5, backoffMs: 10, signal: controller.signal, clock }).catch((e) => e);
  await Promise.resolve();
  assert.equal(calls, 1);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(10);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(calls, 2);
  controller.abort();
  const error = await done;
  assert.ok(error instanceof RetryError);
  assert.equal(calls, 2); // the aborted sleep returns early and no further attempt is made
  assert.match(error.message, /aborted/);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("a request timeout (DOMException with a legacy numeric code) is retryable, not terminal", async () => {
  assert.equal(httpStatusOf(new DOMException("timed out", "TimeoutError")), undefined);
  assert.equal(httpStatusOf(new DOMException("aborted", "AbortError")), undefined);
  assert.equal(httpStatusOf(httpError(429)), 429);
  assert.equal(httpStatusOf(Object.assign(new Error("x"), { code: "ECONNRESET" })), undefined);
  let calls = 0;
  const { attempts } = await withRetry(() => {
    if (++calls === 1) throw new DOMException("timed out", "TimeoutError");
    return Promise.resolve(1);
  }, { retries: 1, backoffMs: 1 });
  assert.equal(attempts, 2);
});
