import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { createLogger } from "./log.ts";
import { RepeatedLog } from "./repeated_log.ts";

function setup() {
  const clock = new FakeClock(0);
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    format: "json",
    write: (l) => lines.push(JSON.parse(l)),
    nowMs: () => clock.nowMs(),
  });
  return { clock, lines, repeated: new RepeatedLog({ log, clock }) };
}

const summary = (l: Record<string, unknown>) => [l.tMs, l.repeated, l.sinceMs];

Deno.test("repeated log: an error every 500 ms → first line, then summaries at 1 s, 2 s, 4 s … windows", () => {
  const { clock, lines, repeated } = setup();
  // the broker is down for 20 s: mqtt.js reports ECONNREFUSED every 500 ms
  for (let t = 0; t < 20_000; t += 500) {
    repeated.warn("mqtt-error", { error: "connect ECONNREFUSED" }, ["error"]);
    clock.advance(500);
  }
  assert.equal(lines[0].msg, "mqtt-error");
  assert.equal(lines[0].repeated, undefined, "the first one is logged as it is");
  // windows end at 1 s, 3 s (1+2), 7 s (3+4), 15 s (7+8), 31 s (15+16, the last repeats at 19.5 s)
  assert.deepEqual(lines.slice(1).map(summary), [
    [1000, 1, 1000],
    [3000, 4, 2000],
    [7000, 8, 4000],
    [15000, 16, 8000],
  ]);
  clock.advance(20_000);
  assert.deepEqual(summary(lines[5]), [31000, 10, 16000]);
  assert.equal(lines[5].error, "connect ECONNREFUSED");
  assert.equal(lines[5].level, "warn");
  // every occurrence is accounted for: 40 = 1 logged + summed repeats
  assert.equal(1 + lines.slice(1).reduce((n, l) => n + Number(l.repeated), 0), 40);
  // the next window is quiet: the episode ends, the next error is logged at once
  clock.advance(32_000);
  assert.equal(repeated.open, 0);
  repeated.warn("mqtt-error", { error: "connect ECONNREFUSED" }, ["error"]);
  assert.equal(lines.length, 7);
  assert.equal(lines[6].repeated, undefined);
  repeated.close();
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("repeated log: the window is capped", () => {
  const clock = new FakeClock(0);
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) });
  const repeated = new RepeatedLog({ log, clock, initialWindowMs: 1000, maxWindowMs: 4000 });
  for (let t = 0; t < 30_000; t += 100) {
    repeated.error("x");
    clock.advance(100);
  }
  assert.deepEqual(lines.slice(1, 4).map((l) => l.sinceMs), [1000, 2000, 4000]);
  assert.ok(lines.slice(3).every((l) => l.sinceMs === 4000), JSON.stringify(lines));
  repeated.close();
});

Deno.test("repeated log: keys are the event plus the chosen fields; close() summarises what is held", () => {
  const { clock, lines, repeated } = setup();
  repeated.error("failover-blocked", { workload: "lane", why: "standby not OK" }, [
    "workload",
    "why",
  ]);
  repeated.error("failover-blocked", { workload: "lane", why: "standby not OK" }, [
    "workload",
    "why",
  ]);
  repeated.error("failover-blocked", { workload: "pose", why: "standby not OK" }, [
    "workload",
    "why",
  ]);
  repeated.error("failover-blocked", { workload: "lane", why: "standby fenced" }, [
    "workload",
    "why",
  ]);
  assert.deepEqual(lines.map((l) => [l.workload, l.why]), [
    ["lane", "standby not OK"],
    ["pose", "standby not OK"],
    ["lane", "standby fenced"],
  ]);
  clock.advance(300);
  repeated.close();
  assert.equal(lines.length, 4);
  assert.deepEqual([lines[3].workload, lines[3].repeated, lines[3].sinceMs], ["lane", 1, 300]);
  assert.equal(clock.pendingTimers, 0);
  repeated.close();
  assert.equal(lines.length, 4);
  repeated.error("failover-blocked", { workload: "lane", why: "x" }, ["workload", "why"]);
  repeated.error("failover-blocked", { workload: "lane", why: "x" }, ["workload", "why"]);
  assert.equal(lines.length, 6, "closed: every line logged");
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("repeated log: invalid windows are refused", () => {
  const log = createLogger({ write: () => {} });
  assert.throws(() => new RepeatedLog({ log, initialWindowMs: 0 }), RangeError);
  assert.throws(
    () => new RepeatedLog({ log, initialWindowMs: 5000, maxWindowMs: 1000 }),
    RangeError,
  );
});
