import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { EventLoopMonitor } from "./event_loop_monitor.ts";
import { eventLoopHealth, UNHEALTHY_LAG_MS } from "./process_metrics.ts";

Deno.test("EventLoopMonitor: each probe's lateness, the current lag of an overdue probe, stop", () => {
  const clock = new FakeClock(0);
  const lags: number[] = [];
  const monitor = new EventLoopMonitor({ clock, intervalMs: 100, onLag: (ms) => lags.push(ms) });
  assert.equal(monitor.currentLagMs(), 0, "stopped");
  monitor.start();
  clock.advance(100);
  assert.deepEqual(lags, [0], "on time");
  clock.advance(107, 7); // due at 200, fires at 207
  assert.deepEqual(lags, [0, 7]);
  // A fully stalled loop: no timer fires while time passes; the overdue probe shows the lag.
  clock.jump(400); // now 607, next probe due at 307
  assert.equal(monitor.currentLagMs(), 300);
  assert.equal(lags.length, 2, "nothing fired during the stall");
  clock.advance(0);
  assert.deepEqual(lags, [0, 7, 300], "measured once the loop runs again");
  assert.equal(monitor.maxLagMs, 300);
  monitor.stop();
  clock.advance(1000);
  assert.equal(lags.length, 3, "no probe after stop");
  assert.equal(monitor.currentLagMs(), 0);
});

Deno.test("EventLoopMonitor: a late firing is measured from its due time", () => {
  let nowMs = 0;
  let fire: (() => void) | undefined;
  const clock = {
    nowMs: () => nowMs,
    setTimer: (cb: () => void) => (fire = cb, 1),
    clearTimer: () => {},
  };
  const lags: number[] = [];
  const monitor = new EventLoopMonitor({ clock, intervalMs: 50, onLag: (ms) => lags.push(ms) });
  monitor.start();
  nowMs = 180; // due at 50, fired at 180
  fire!();
  assert.deepEqual(lags, [130]);
  assert.equal(monitor.lastLagMs, 130);
  assert.equal(monitor.maxLagMs, 130);
  assert.equal(monitor.currentLagMs(200), 130, "next due at 230: last lag counts");
  assert.deepEqual(eventLoopHealth(monitor), { ok: true, eventLoopLagMs: 130 });
  assert.equal(eventLoopHealth(monitor, 100).ok, false);
  nowMs = 230 + UNHEALTHY_LAG_MS + 1; // the next probe is overdue by more than the limit
  assert.deepEqual(eventLoopHealth(monitor), { ok: false, eventLoopLagMs: UNHEALTHY_LAG_MS + 1 });
  monitor.stop();
});
