import assert from "node:assert/strict";
import { RetryError, withRetry } from "./retry.ts";

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
