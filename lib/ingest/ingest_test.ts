import assert from "node:assert/strict";
import { buildTopology, type Target } from "../topology/topology.ts";
import { Ingest } from "./ingest.ts";
import { Watchdog } from "../watchdog/watchdog.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { VEHICLE } from "../../tests/fixtures/locked_vehicle.ts";

function ingestWithClock(clock: FakeClock) {
  const topology = buildTopology(VEHICLE);
  const restored: { why: string; lastWillQuietMs: number; graceMs: number }[] = [];
  const watchdog = new Watchdog<Target>({ clock, onTransition: () => {} });
  const ingest = new Ingest({
    topology,
    barrierTopic: topology.supervisorTopics("sup").barrier,
    barrierNonce: "0123456789abcdef0123456789abcdef",
    watchdog,
    clock,
    reconnectAllowanceMs: 1400,
    onPromotion: () => undefined,
    onNodeStatus: () => {},
    isDraining: () => false,
    onDrained: () => {},
    onFault: () => {},
    onRestored: (why, lastWillQuietMs, graceMs) => restored.push({ why, lastWillQuietMs, graceMs }),
  });
  return { ingest, restored, topology };
}

Deno.test("Ingest.restore reports the resume grace: the reconnect allowance after an outage over 1 s, none after a short one", () => {
  const clock = new FakeClock();
  const { ingest, restored, topology } = ingestWithClock(clock);
  const longestNodeTimeoutMs = Math.max(...topology.nodes.map((n) => n.timeoutMs));

  ingest.fault("stall");
  clock.advance(300);
  ingest.restore("back");
  ingest.fault("stall again");
  clock.advance(2500);
  ingest.restore("reconnected");

  assert.deepEqual(restored.map((r) => r.graceMs), [0, 1400]);
  // a live Last Will waits at least a node timeout, and the whole grace when there is one
  assert.deepEqual(restored.map((r) => r.lastWillQuietMs), [
    longestNodeTimeoutMs,
    Math.max(longestNodeTimeoutMs, 1400),
  ]);
});

Deno.test("Ingest.restore: a lost connection gets the reconnect allowance however short the outage (every client reconnects)", () => {
  const clock = new FakeClock();
  const { ingest, restored } = ingestWithClock(clock);
  ingest.fault("broker connection closed", true);
  clock.advance(200); // a broker restart of 0.2 s
  ingest.restore("resubscribed");
  ingest.fault("stall"); // a later short stall: connections kept, no allowance
  clock.advance(200);
  ingest.restore("back");
  ingest.fault("stall", false);
  ingest.fault("and the connection closed during it", true);
  clock.advance(200);
  ingest.restore("resubscribed");
  assert.deepEqual(restored.map((r) => r.graceMs), [1400, 0, 1400]);
});

Deno.test("Ingest.restore without a fault reports nothing", () => {
  const { ingest, restored } = ingestWithClock(new FakeClock());
  ingest.restore("nothing to restore");
  assert.equal(restored.length, 0);
});
