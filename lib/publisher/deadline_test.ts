import assert from "node:assert/strict";
import type { Clock } from "../clock/clock.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { deadline } from "./deadline.ts";

Deno.test("deadline fires once at its time, not before, and can be cancelled", () => {
  const clock = new FakeClock(0);
  const fired: number[] = [];
  deadline(clock, 10.5, () => fired.push(clock.nowMs()));
  const cancelled = deadline(clock, 20, () => fired.push(-1));
  clock.advance(10);
  assert.deepEqual(fired, []);
  cancelled.cancel();
  clock.advance(100);
  assert.deepEqual(fired, [10.5]);
});

Deno.test("deadline re-arms when the timer fires early", () => {
  const fake = new FakeClock(0);
  // A timer source that fires 0.6 ms early, as the system clock's truncating timers can.
  const early: Clock = {
    nowMs: () => fake.nowMs(),
    setTimer: (cb, delayMs) => fake.setTimer(cb, delayMs >= 1 ? delayMs - 0.6 : delayMs),
    clearTimer: (h) => fake.clearTimer(h),
  };
  const fired: number[] = [];
  deadline(early, 10, () => fired.push(fake.nowMs()));
  fake.advance(9.9);
  assert.deepEqual(fired, [], "the early firing at 9.4 re-armed");
  fake.advance(1);
  assert.deepEqual(fired, [10]);
});
