import assert from "node:assert/strict";
import type { PublisherReport } from "../publisher/report.ts";
import { parseFault } from "../publisher/faults.ts";
import type { SupervisorEvent } from "../runtime/supervisor.ts";
import { buildTopology, type Target } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import type { Promotion } from "../wire/wire.ts";
import { demoConfig } from "./demo_config.ts";
import type { ReceivedPromotion } from "./promotion_watcher.ts";
import { causeOf, type DemoRun, expectedFailovers, formatRun } from "./timeline.ts";

const topology = buildTopology(demoConfig("mqtt://127.0.0.1:1"));

function expiry(target: Target, atMs: number): SupervisorEvent {
  const transition: Transition<Target> = {
    target,
    from: "OK",
    to: "EXPIRED",
    atMs,
    lastHeartbeatAtMs: atMs - 300,
    cause: "deadline",
    isFailure: true,
  };
  return { type: "transition", transition } as SupervisorEvent;
}

function received(workload: string, atMs: number): ReceivedPromotion {
  const promotion: Promotion = {
    v: 1,
    workload,
    namespace: "default",
    activeNode: "worker-node3",
    activeDeployment: `${workload}-standby`,
    failedNode: "worker-node2",
    epoch: 1,
    reason: "node-expired",
    issuer: "supervisor",
    issuedAt: "2026-01-01T00:00:00Z",
  };
  return { promotion, atMs };
}

function run(fault: string, events: SupervisorEvent[], got: ReceivedPromotion[]): DemoRun {
  const report: PublisherReport = {
    startedAtMs: 0,
    startedWallTimeMs: 0,
    shutdownAtMs: 3500,
    endedAtMs: 3510,
    aborted: false,
    nodes: {},
    faults: [],
    notApplied: [],
  };
  return { topology, fault: parseFault(fault), report, events, received: got };
}

Deno.test("expectedFailovers follows the topology: node faults, sensor loss, app hang", () => {
  assert.deepEqual(expectedFailovers(topology, parseFault("node-crash:worker-node2@1s")), [
    "lane-detection",
    "pose-estimation",
  ]);
  assert.deepEqual(expectedFailovers(topology, parseFault("node-hang:worker-node1@1s")), []);
  assert.deepEqual(expectedFailovers(topology, parseFault("planned-stop:worker-node2@1s")), [
    "lane-detection",
    "pose-estimation",
  ]);
  assert.deepEqual(expectedFailovers(topology, parseFault("sensor-loss:lidar-node2@1s")), [
    "pose-estimation",
  ]);
  assert.deepEqual(expectedFailovers(topology, parseFault("sensor-loss:camera-node2@1s")), [
    "lane-detection",
    "pose-estimation",
  ]);
  assert.deepEqual(expectedFailovers(topology, parseFault("sensor-loss:lidar-node3@1s")), []);
  assert.deepEqual(expectedFailovers(topology, parseFault("app-hang:lane-detection@1s")), [
    "lane-detection",
  ]);
});

Deno.test("a promotion is caused by the earliest failure of the failed placement's targets", () => {
  const node2 = topology.node("worker-node2")!;
  const node3 = topology.node("worker-node3")!;
  const lidar2 = topology.sensor("lidar-node2")!;
  const failures = [expiry(lidar2, 1900), expiry(node2, 2300), expiry(node3, 2000)]
    .map((e) => (e as { transition: Transition<Target> }).transition);
  assert.equal(causeOf(topology, received("pose-estimation", 2400), failures)?.target, lidar2);
  assert.equal(causeOf(topology, received("lane-detection", 2400), failures)?.target, node2);
  assert.equal(causeOf(topology, received("lane-detection", 2200), failures), undefined);
});

Deno.test("formatRun: timeline in time order, latencies per cause, verdict", () => {
  const node2 = topology.node("worker-node2")!;
  const good = formatRun(
    run("node-crash:worker-node2@2s", [expiry(node2, 2300)], [
      received("lane-detection", 2302.5),
      received("pose-estimation", 2303),
    ]),
  );
  assert.equal(good.ok, true);
  const text = good.lines.join("\n");
  assert.match(
    text,
    / {2}\+ 2000\.0 ms {2}supervisor {2}last heartbeat received from node\/worker-node2/,
  );
  assert.match(text, /node\/worker-node2 EXPIRED \(cause deadline, 300\.0 ms after/);
  assert.match(text, /expiry → promotion received \(MQTT\)\s+2\.50 ms \(lane-detection\)/);
  assert.match(text, /OK: 2 workload\(s\) failed over/);
  const bad = formatRun(
    run("sensor-loss:lidar-node2@1s", [expiry(node2, 2300)], [received("lane-detection", 2400)]),
  );
  assert.equal(bad.ok, false);
  assert.match(
    bad.lines.at(-1)!,
    /missing promotions \["pose-estimation"\], unexpected \["lane-detection"\]/,
  );
});
