import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { PeriodicSchedule } from "./periodic_schedule.ts";

Deno.test("PeriodicSchedule rejects a non-positive or infinite period", () => {
  const clock = new FakeClock();
  assert.throws(() => new PeriodicSchedule(clock, 0, () => {}), RangeError);
  assert.throws(() => new PeriodicSchedule(clock, Infinity, () => {}), RangeError);
});

Deno.test("PeriodicSchedule fires on the start + k·period grid, skips stalled slots, stops", () => {
  const clock = new FakeClock(0);
  const slots: [number, number][] = [];
  const schedule = new PeriodicSchedule(clock, 10, (slot, nowMs) => slots.push([slot, nowMs]));
  schedule.start(0);
  schedule.start(5); // no-op while running
  clock.advance(30, 3); // each firing 3 ms late: no drift
  assert.deepEqual(slots, [[1, 13], [2, 23], [3, 30]]);
  clock.jump(45); // t = 75: slots 4..7 pass without firing
  clock.advance(0);
  assert.deepEqual(slots.at(-1), [7, 75]);
  assert.equal(schedule.missedSlots, 3);
  schedule.stop();
  clock.advance(100);
  assert.equal(slots.length, 4);
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("PeriodicSchedule reports how late each slot fired (a stall: more than a period)", () => {
  const clock = new FakeClock(0);
  const late: [number, number][] = [];
  const schedule = new PeriodicSchedule(
    clock,
    10,
    (slot, _nowMs, lateMs) => late.push([slot, lateMs]),
  );
  schedule.start(0);
  clock.advance(10); // on time
  clock.advance(14, 4); // 4 ms late, at 24
  clock.jump(31); // t = 55: slot 3 (due 30) fires 25 ms late, as slot 5
  clock.advance(0);
  clock.advance(5); // slot 6 at 60, on the grid again
  assert.deepEqual(late, [[1, 0], [2, 4], [5, 25], [6, 0]]);
  schedule.stop();
});
