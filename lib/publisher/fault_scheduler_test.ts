import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { createLogger } from "../log/log.ts";
import { buildTopology, type NodeTarget } from "../topology/topology.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { FaultScheduler } from "./fault_scheduler.ts";
import { parseFault } from "./faults.ts";
import { SimulatedNode } from "./simulated_node.ts";

function setup() {
  const topology = buildTopology(ConfigSchema.parse({
    nodes: [
      { name: "worker-node2", heartbeatPeriodMs: 20, heartbeatTimeoutMs: 100 },
      { name: "worker-node3", heartbeatPeriodMs: 20, heartbeatTimeoutMs: 100 },
    ],
    sensors: [{ name: "cam-rear", node: "worker-node3", periodMs: 20, timeoutMs: 150 }],
    workloads: [{
      name: "perception",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "perception-a", node: "worker-node3" },
      standby: { deployment: "perception-b", node: "worker-node2" },
      appHeartbeat: { periodMs: 50, timeoutMs: 150 },
    }],
  }));
  const clock = new FakeClock(0);
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    format: "json",
    level: "debug",
    write: (l) => lines.push(JSON.parse(l)),
    nowMs: () => clock.nowMs(),
  });
  const clients = new Map<string, FakeMqttClient>();
  const nodes = new Map<NodeTarget, SimulatedNode>();
  for (const node of topology.nodes) {
    const connection = new FakeMqttClient();
    connection.connect();
    clients.set(node.name, connection);
    nodes.set(node, new SimulatedNode({ node, connection, clock, log, random: () => 0 }));
  }
  for (const n of nodes.values()) n.start(0);
  const scheduler = new FaultScheduler({ topology, nodes, clock, reconnectPeriodMs: 100 });
  const sim = (name: string) => nodes.get(topology.node(name)!)!;
  return { topology, clock, clients, sim, scheduler, lines };
}

Deno.test("FaultScheduler applies each fault at its time, on the node the topology names", () => {
  const { clock, clients, sim, scheduler, lines } = setup();
  const faults = [
    "sensor-loss:cam-rear@30",
    "app-hang:perception@60",
    "node-crash:worker-node2@90",
    "node-crash:worker-node2@95",
    "node-hang:worker-node3@500",
    "jitter:worker-node3:10",
  ].map(parseFault);
  scheduler.start(faults, 0);
  assert.deepEqual(scheduler.applied.map((f) => f.spec), ["jitter:worker-node3:10"]);
  assert.equal(sim("worker-node3").client.jitterMaxMs, 10);

  clock.advance(29);
  assert.equal(scheduler.applied.length, 1, "nothing before its time");
  clock.advance(71);
  assert.deepEqual(
    scheduler.applied.map((f) => [f.spec, f.node, f.offsetMs]),
    [
      ["jitter:worker-node3:10", "worker-node3", 0],
      ["sensor-loss:cam-rear@30", "worker-node3", 30],
      ["app-hang:perception@60", "worker-node3", 60],
      ["node-crash:worker-node2@90", "worker-node2", 90],
    ],
  );
  // The lost sensor's ticks and the primary app's heartbeats stopped at their faults.
  const n3 = clients.get("worker-node3")!;
  assert.equal(n3.on_topic("sdv/sensor/cam-rear/tick").length, 2, "ticks at 0 and 20");
  assert.equal(n3.on_topic("sdv/app/perception/worker-node3/hb").length, 2, "beats at 0 and 50");
  assert.equal(
    clients.get("worker-node2")!.on_topic("sdv/app/perception/worker-node2/hb").length,
    2,
    "the standby's app goes on",
  );
  // The crash: a fake has no socket, so it is force-ended; the second crash has no effect.
  assert.equal(sim("worker-node2").state, "crashed");
  assert.deepEqual(clients.get("worker-node2")!.endCalls, [true]);
  assert.ok(
    lines.some((l) => l.event === "fault-no-effect" && l.fault === "node-crash:worker-node2@95"),
  );
  const applied = lines.find((l) => l.event === "fault-applied" && l.kind === "sensor-loss");
  assert.equal(applied?.lastTickAtMs, 20);

  scheduler.stop();
  clock.advance(1000);
  assert.equal(sim("worker-node3").state, "running", "stopped: the hang at 500 never came");
  assert.deepEqual(scheduler.notApplied.map((f) => f.spec), ["node-hang:worker-node3@500"]);
});

Deno.test("FaultScheduler: a partition of a client that cannot reconnect is logged, not healed", () => {
  const { clock, sim, scheduler, lines } = setup();
  scheduler.start([parseFault("partition:worker-node2@10+40")], 0);
  clock.advance(10);
  assert.equal(sim("worker-node2").state, "partitioned");
  assert.equal(sim("worker-node2").client.silencedBy, "partition:worker-node2@10+40");
  clock.advance(40);
  assert.ok(lines.some((l) => l.event === "partition-cannot-heal"));
  assert.equal(sim("worker-node2").client.silencedBy, undefined, "unsilenced for the reconnect");
  assert.equal(scheduler.applied[0].healedAtMs, undefined);
});
