/**
 * Properties of the watchdog (`lib/watchdog/watchdog.ts`) over arbitrary heartbeat, time,
 * suspend and resume sequences (fast-check; a failure prints its seed and shrunk sequence):
 * - a target that heartbeats at least once per timeout (strictly within it) never expires;
 * - a target silent for its timeout in trusted time (time not suspended) is EXPIRED once its
 *   deadline after the last resume has passed, and never expires earlier;
 * - `isFailure` marks exactly the OK/INIT → EXPIRED edges (one per edge; the counter agrees);
 * - every transition follows the state machine of the module doc, from the state the target is in.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type TargetSpec,
  type TargetState,
  type Transition,
  Watchdog,
} from "../lib/watchdog/watchdog.ts";
import { FakeClock } from "./fakes/fake_clock.ts";

type Command =
  | { type: "beat"; target: number }
  | { type: "advance"; ms: number }
  | { type: "suspend" }
  | { type: "resume"; graceMs: number };

const EDGES = new Set([
  "INIT→OK",
  "INIT→EXPIRED",
  "OK→EXPIRED",
  "EXPIRED→RECOVERING",
  "RECOVERING→OK",
  "RECOVERING→EXPIRED",
  "DEACTIVATED→RECOVERING",
]);

const targetArb = fc.integer({ min: 2, max: 60 }).chain((periodMs) =>
  fc.record({
    periodMs: fc.constant(periodMs),
    timeoutMs: fc.integer({ min: 2 * periodMs, max: 6 * periodMs }),
  })
);

const scenarioArb = fc.record({
  targets: fc.array(targetArb, { minLength: 2, maxLength: 5 }),
  graceMs: fc.integer({ min: 0, max: 300 }),
  recoveryWindowMs: fc.integer({ min: 0, max: 300 }),
  /** Gaps of the steady target 0, as a fraction of its timeout (strictly below 1). */
  steadyGaps: fc.array(fc.double({ min: 0, max: 0.999, noNaN: true }), {
    minLength: 1,
    maxLength: 20,
  }),
  commands: fc.array(
    fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({ type: fc.constant("beat" as const), target: fc.nat(4) }),
      },
      {
        weight: 6,
        arbitrary: fc.record({
          type: fc.constant("advance" as const),
          ms: fc.integer({ min: 0, max: 800 }),
        }),
      },
      { weight: 1, arbitrary: fc.constant({ type: "suspend" as const }) },
      {
        weight: 1,
        arbitrary: fc.record({
          type: fc.constant("resume" as const),
          graceMs: fc.integer({ min: 0, max: 300 }),
        }),
      },
    ) as fc.Arbitrary<Command>,
    { maxLength: 150, size: "max" },
  ),
});

Deno.test("property: watchdog deadlines, expiries and state machine", () => {
  fc.assert(
    fc.property(scenarioArb, (s) => {
      const clock = new FakeClock(0);
      const specs: TargetSpec[] = s.targets.map((t, i) => ({
        label: `t${i}`,
        kind: "node",
        periodMs: t.periodMs,
        timeoutMs: t.timeoutMs,
      }));
      const n = specs.length;
      // model
      const state: TargetState[] = specs.map(() => "INIT");
      const lastBeatTrusted: (number | undefined)[] = specs.map(() => undefined);
      const recoveringSince: number[] = specs.map(() => 0);
      const failures: number[] = specs.map(() => 0);
      const failureEdges: number[] = specs.map(() => 0);
      let suspended = false;
      let suspendedAt = 0;
      let suspendedTotal = 0;
      let resumedAt = -Infinity;
      let floorGraceMs = 0;
      let inHeartbeat = -1;
      const trusted = (t: number) => t - suspendedTotal - (suspended ? t - suspendedAt : 0);

      const onTransition = (tr: Transition<TargetSpec>) => {
        const i = specs.indexOf(tr.target);
        const edge = `${tr.from}→${tr.to}`;
        assert.equal(
          tr.from,
          state[i],
          `transition of t${i} from ${tr.from}, model says ${state[i]}`,
        );
        assert.ok(EDGES.has(edge), `illegal edge ${edge}`);
        assert.equal(tr.atMs, clock.nowMs());
        if (tr.to === "EXPIRED") {
          assert.ok(!suspended, "an expiry while suspended");
          assert.notEqual(i, 0, "the steady target expired");
          assert.equal(inHeartbeat, -1, "an expiry inside a heartbeat");
          assert.equal(tr.isFailure, tr.from === "OK" || tr.from === "INIT", edge);
          assert.equal(tr.cause, tr.from === "INIT" ? "never-seen" : "deadline");
          const last = lastBeatTrusted[i];
          if (last !== undefined) {
            const silence = trusted(tr.atMs) - last;
            assert.ok(
              silence >= specs[i].timeoutMs,
              `t${i} expired after ${silence} ms of silence`,
            );
          }
          if (tr.from === "OK" || tr.from === "INIT") failureEdges[i]++;
          if (tr.isFailure) failures[i]++;
        } else {
          assert.equal(inHeartbeat, i, `${edge} outside a heartbeat of t${i}`);
          assert.equal(tr.isFailure, false);
          if (edge === "RECOVERING→OK") {
            assert.ok(tr.atMs - recoveringSince[i] >= s.recoveryWindowMs, "recovered too early");
          }
          if (tr.to === "RECOVERING") recoveringSince[i] = tr.atMs;
        }
        state[i] = tr.to;
      };

      const wd = new Watchdog<TargetSpec>({
        clock,
        onTransition,
        recoveryWindowMs: s.recoveryWindowMs,
      });
      for (const spec of specs) wd.add(spec);
      wd.start(s.graceMs);

      const beat = (i: number) => {
        inHeartbeat = i;
        wd.heartbeatAt(i, clock.nowMs());
        inHeartbeat = -1;
        lastBeatTrusted[i] = trusted(clock.nowMs());
      };
      let gap = 0;
      let steadyDue = 0;
      const nextSteady = () => {
        const f = s.steadyGaps[gap++ % s.steadyGaps.length];
        steadyDue = clock.nowMs() + Math.max(1, Math.floor(f * specs[0].timeoutMs));
      };
      beat(0);
      nextSteady();

      const check = () => {
        for (let i = 0; i < n; i++) assert.equal(wd.stateAt(i), state[i], `state of t${i}`);
        if (suspended) return;
        const now = clock.nowMs();
        for (let i = 0; i < n; i++) {
          const last = lastBeatTrusted[i];
          if (last === undefined || (state[i] !== "OK" && state[i] !== "RECOVERING")) continue;
          const spec = specs[i];
          const floor = Math.max(floorGraceMs, Math.min(spec.timeoutMs, 2 * spec.periodMs));
          const settled = now - resumedAt >= floor;
          if (settled && trusted(now) - last >= spec.timeoutMs) {
            assert.fail(
              `t${i} silent ${trusted(now) - last} ms (timeout ${spec.timeoutMs}) but ${state[i]}`,
            );
          }
        }
      };

      for (const c of s.commands) {
        switch (c.type) {
          case "beat":
            if (c.target % n !== 0) beat(c.target % n);
            break;
          case "advance": {
            let left = c.ms;
            while (left > 0) {
              const step = Math.min(left, steadyDue - clock.nowMs());
              clock.advance(step);
              left -= step;
              if (clock.nowMs() === steadyDue) {
                beat(0);
                nextSteady();
              }
              check();
            }
            break;
          }
          case "suspend":
            if (!suspended) {
              wd.suspend();
              suspended = true;
              suspendedAt = clock.nowMs();
            }
            break;
          case "resume":
            if (suspended) {
              suspendedTotal += clock.nowMs() - suspendedAt;
              suspended = false;
              resumedAt = clock.nowMs();
              floorGraceMs = c.graceMs;
              wd.resume(c.graceMs);
            }
            break;
        }
        check();
      }
      for (let i = 0; i < n; i++) assert.equal(failures[i], failureEdges[i], `failures of t${i}`);
      assert.equal(wd.stats.expiries, failures.reduce((a, b) => a + b, 0));
      assert.notEqual(state[0], "EXPIRED");
    }),
    { numRuns: 400 },
  );
});
