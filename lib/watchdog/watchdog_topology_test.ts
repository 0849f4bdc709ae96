import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { ConfigSchema } from "../config/schema.ts";
import { buildTopology, type Target } from "../topology/topology.ts";
import { type Transition, Watchdog } from "./watchdog.ts";

/** n1 (camera c1) runs w's primary, n2 (camera c2) its standby; w has an app heartbeat. */
const topology = () =>
  buildTopology(ConfigSchema.parse({
    nodes: [
      { name: "n1", heartbeatPeriodMs: 10, heartbeatTimeoutMs: 30, requiredSensors: ["c1"] },
      { name: "n2", heartbeatPeriodMs: 10, heartbeatTimeoutMs: 30, requiredSensors: ["c2"] },
    ],
    sensors: [
      { name: "c1", node: "n1", periodMs: 10, timeoutMs: 40 },
      { name: "c2", node: "n2", periodMs: 10, timeoutMs: 40 },
    ],
    workloads: [{
      name: "w",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "w-a", node: "n1", sensors: ["c1"] },
      standby: { deployment: "w-b", node: "n2", sensors: ["c2"] },
      appHeartbeat: { periodMs: 10, timeoutMs: 50 },
    }],
  }));

Deno.test("the topology's targets, added in order: watchdog index = target.index", () => {
  const t = topology();
  const wd = new Watchdog<Target>({ clock: new FakeClock(), onTransition: () => {} });
  for (const target of t.targets) assert.equal(wd.add(target), target.index, target.label);
  assert.equal(wd.size, t.targets.length);
  for (const target of t.targets) assert.strictEqual(wd.describe(target.index)?.spec, target);
});

Deno.test("a silent node expires as its topology target, with its own timeout", () => {
  const t = topology();
  const clock = new FakeClock(1000);
  const transitions: Transition<Target>[] = [];
  const wd = new Watchdog<Target>({ clock, onTransition: (x) => transitions.push(x) });
  for (const target of t.targets) wd.add(target);
  wd.start(0);
  const n1 = t.node("n1")!;
  const others = t.targets.filter((x) => x !== n1);
  for (const target of t.targets) wd.heartbeatAt(target.index);
  for (let k = 0; k < 5; k++) {
    clock.advance(10);
    for (const target of others) wd.heartbeatAt(target.index);
  }
  const failures = transitions.filter((x) => x.isFailure);
  assert.equal(failures.length, 1);
  const [expiry] = failures;
  // The same object as the topology's: the policy follows references, never parses labels.
  assert.strictEqual(expiry.target, n1);
  assert.equal(expiry.deadlineMs, 1000 + n1.timeoutMs);
  assert.ok(expiry.target.kind === "node" && expiry.target.placements[0].side === "primary");
  assert.equal(wd.stateAt(n1.index), "EXPIRED");
  for (const target of others) assert.equal(wd.stateAt(target.index), "OK", target.label);
});
