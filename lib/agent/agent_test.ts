import assert from "node:assert/strict";
import { type Config, ConfigSchema } from "../config/schema.ts";
import { createLogger } from "../log/log.ts";
import { buildTopology, type NodeTarget, type Topology } from "../topology/topology.ts";
import type { Promotion } from "../wire/wire.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { agentWill, NodeAgent, type PromotionEvent } from "./agent.ts";

/** The `seq`s of the heartbeats `client` published for `node`, in order. */
function heartbeats(client: FakeMqttClient, node = "worker-node2"): number[] {
  return client.on_topic(`sdv/node/${node}/hb`).map((p) => JSON.parse(p.payload).seq);
}

function testConfig(): Config {
  return ConfigSchema.parse({
    nodes: [
      {
        name: "worker-node2",
        heartbeatPeriodMs: 33,
        heartbeatTimeoutMs: 100,
        requiredSensors: ["cam-front"],
      },
      { name: "worker-node3", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 100 },
    ],
    sensors: [{ name: "cam-front", node: "worker-node2", periodMs: 33, timeoutMs: 150 }],
    workloads: [{
      name: "perception",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "perception-a", node: "worker-node2" },
      standby: { deployment: "perception-b", node: "worker-node3" },
    }],
  });
}

function promotion(overrides: Partial<Promotion> = {}): string {
  return JSON.stringify({
    v: 1,
    workload: "perception",
    namespace: "default",
    activeNode: "worker-node3",
    activeDeployment: "perception-b",
    failedNode: "worker-node2",
    epoch: 1,
    reason: "node-expired",
    supervisor: "supervisor",
    issuedAt: "2026-01-01T00:00:00Z",
    ...overrides,
  });
}

function nodeOf(topology: Topology, name: string): NodeTarget {
  const node = topology.node(name);
  assert.ok(node, `node ${name}`);
  return node;
}

function setup(nodeName = "worker-node2", config = testConfig()) {
  const clock = new FakeClock(1000);
  const client = new FakeMqttClient();
  client.echo = false;
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    format: "json",
    level: "debug",
    write: (l) => lines.push(JSON.parse(l)),
    nowMs: () => clock.nowMs(),
  });
  const node = nodeOf(buildTopology(config), nodeName);
  const agent = new NodeAgent({ node, client, clock, log });
  return { clock, client, agent, lines };
}

/** Delivers a tick of cam-front every 33 ms for `durationMs`, advancing the clock. */
function tickFor(
  clock: FakeClock,
  client: FakeMqttClient,
  durationMs: number,
  stepMs = 33,
  seq = { n: 0 },
) {
  const end = clock.nowMs() + durationMs;
  while (clock.nowMs() + stepMs <= end) {
    clock.advance(stepMs);
    client.deliver("sdv/sensor/cam-front/tick", `{"seq":${++seq.n}}`);
  }
  clock.advance(end - clock.nowMs());
}

Deno.test("agentWill: retained QoS 1 offline on the node status topic (config override too)", () => {
  const topology = buildTopology(testConfig());
  assert.deepEqual(agentWill(nodeOf(topology, "worker-node2")), {
    topic: "sdv/node/worker-node2/status",
    payload: "offline",
    qos: 1,
    retain: true,
  });
  const config = testConfig();
  config.nodes[1].statusTopic = "fleet/n3/alive";
  assert.equal(agentWill(nodeOf(buildTopology(config), "worker-node3")).topic, "fleet/n3/alive");
});

Deno.test("topics come from the topology: overridden heartbeat and tick topics are used", () => {
  const config = testConfig();
  config.nodes[0].heartbeatTopic = "fleet/n2/beat";
  config.sensors[0].topic = "fleet/cam/front";
  const { clock, client, agent } = setup("worker-node2", config);
  agent.start();
  assert.deepEqual([...client.subscribed], [
    "fleet/cam/front",
    "sdv/workload/perception/promotion",
  ]);
  client.connect();
  client.deliver("fleet/cam/front", '{"seq":1}');
  clock.advance(33);
  assert.deepEqual(client.on_topic("fleet/n2/beat").map((p) => p.payload), ['{"seq":1}']);
  assert.deepEqual(heartbeats(client), [], "nothing on the default topic");
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":2}'); // not this sensor's topic
  clock.advance(200);
  // Slots at +33..+132 are within 150 ms of the tick at +0; +165 is not.
  assert.equal(agent.stats.heartbeatsSent, 4);
});

Deno.test("start: subscribes to required ticks and promotions, retained online on every connect", () => {
  const { client, agent } = setup();
  agent.start();
  assert.deepEqual([...client.subscribed], [
    "sdv/sensor/cam-front/tick",
    "sdv/workload/perception/promotion",
  ]);
  assert.equal(client.published.length, 0, "nothing published before connect");
  client.connect();
  assert.deepEqual(client.published, [{
    topic: "sdv/node/worker-node2/status",
    payload: "online",
    options: { qos: 1, retain: true },
  }]);
  client.drop();
  client.connect();
  assert.equal(client.published.filter((s) => s.payload === "online").length, 2);
});

Deno.test("start on an already connected client announces online at once", () => {
  const { client, agent } = setup("worker-node3");
  client.connected = true;
  agent.start();
  assert.equal(client.published[0].payload, "online");
});

Deno.test("heartbeats at the period with increasing seq while the sensor is fresh", () => {
  const { clock, client, agent } = setup();
  agent.start();
  client.connect();
  const t0 = clock.nowMs();
  const times: number[] = [];
  const origPublish = client.publish.bind(client);
  client.publish = (topic, message, options, cb) => {
    if (topic.endsWith("/hb")) times.push(clock.nowMs() - t0);
    return origPublish(topic, message, options, cb);
  };
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":0}');
  tickFor(clock, client, 33 * 10);
  const seqs = heartbeats(client);
  assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(times, [33, 66, 99, 132, 165, 198, 231, 264, 297, 330]);
  for (const s of client.published.filter((s) => s.topic.endsWith("/hb"))) {
    assert.deepEqual(s.options, { qos: 0, retain: false });
  }
  assert.equal(agent.stats.heartbeatsSent, 10);
  assert.equal(agent.stats.lastHeartbeatAtMs, t0 + 330);
  assert.equal(agent.stats.gatedPeriods, 0);
});

Deno.test("a node without required sensors beats without any tick", () => {
  const { clock, client, agent } = setup("worker-node3");
  agent.start();
  client.connect();
  clock.advance(100);
  assert.deepEqual(heartbeats(client, "worker-node3"), [1, 2, 3]);
});

Deno.test("no heartbeat before the first tick, none while stale, resumes when ticks return", () => {
  const { clock, client, agent, lines } = setup();
  agent.start();
  client.connect();
  clock.advance(33 * 3);
  assert.deepEqual(heartbeats(client), [], "never-seen sensor gates");
  assert.equal(agent.stats.gatedPeriods, 3);

  const seq = { n: 0 };
  tickFor(clock, client, 33 * 6, 33, seq); // fresh: beats at every slot
  const beforeLoss = heartbeats(client).length;
  assert.ok(beforeLoss >= 5, `beats while fresh: ${beforeLoss}`);

  // Ticks stop: the tick at t is fresh until t + 150 ms, so at most 4 more slots (33 ms apart).
  clock.advance(600);
  const afterLoss = heartbeats(client).length;
  assert.ok(afterLoss - beforeLoss <= 5, `beats after loss: ${afterLoss - beforeLoss}`);
  const gatedAfter = agent.stats.gatedPeriods;
  assert.ok(gatedAfter >= 3 + 13, `gated periods ${gatedAfter}`);
  clock.advance(330);
  assert.equal(heartbeats(client).length, afterLoss, "still gated");
  assert.ok(lines.some((l) => l.event === "heartbeat-gated"));

  tickFor(clock, client, 33 * 4, 33, seq);
  const resumed = heartbeats(client);
  assert.ok(resumed.length > afterLoss, "resumed");
  assert.deepEqual(resumed, resumed.map((_s, i) => i + 1), "seq continues without gaps");
  assert.ok(lines.some((l) => l.event === "heartbeat-resumed"));
});

Deno.test("freshness boundary: a tick exactly timeoutMs old still counts, older does not", () => {
  const { clock, client, agent } = setup();
  agent.start();
  client.connect();
  // Tick at t0+48; heartbeat slots at t0+33k: slot 6 (t0+198) is exactly 150 ms after the tick.
  clock.advance(48);
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":1}');
  clock.advance(198 - 48);
  assert.equal(agent.stats.heartbeatsSent, 5, "slots 2..6 beat (slot 1 had no tick yet)");
  clock.advance(33);
  assert.equal(agent.stats.heartbeatsSent, 5, "slot 7 is 183 ms after the tick: gated");
});

Deno.test("schedule is drift-free and skips missed slots instead of bursting", () => {
  const { clock, client, agent } = setup("worker-node3");
  agent.start();
  client.connect();
  clock.advance(33 * 3, 5); // each firing 5 ms late: the next one is still due at start + k·33
  assert.equal(agent.stats.heartbeatsSent, 3);
  clock.jump(33 * 4 + 10); // a stalled loop: 4 slots pass without firing
  clock.advance(0); // the overdue timer fires once
  assert.equal(agent.stats.heartbeatsSent, 4, "one beat for the stall, no burst");
  assert.equal(agent.stats.missedSlots, 3, "slots 4..6 skipped, slot 7 fired late");
  clock.advance(33);
  assert.equal(agent.stats.heartbeatsSent, 5);
  assert.equal(agent.stats.lastHeartbeatAtMs, 1000 + 33 * 8, "back on the start + k·period grid");
});

Deno.test("heartbeats are not queued while disconnected", () => {
  const { clock, client, agent } = setup("worker-node3");
  agent.start();
  clock.advance(100);
  assert.deepEqual(heartbeats(client, "worker-node3"), []);
  assert.equal(agent.stats.offlinePeriods, 3);
  client.connect();
  clock.advance(33);
  assert.deepEqual(heartbeats(client, "worker-node3"), [1]);
});

Deno.test("retained or malformed ticks do not refresh the sensor", () => {
  const { clock, client, agent } = setup();
  agent.start();
  client.connect();
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":1}', { retain: true });
  client.deliver("sdv/sensor/cam-front/tick", "garbage");
  clock.advance(66);
  assert.equal(agent.stats.heartbeatsSent, 0);
  assert.equal(agent.stats.malformed, 1);
});

Deno.test("fencing: a higher-epoch promotion naming another node logs fenced once", () => {
  const { client, agent, lines } = setup("worker-node2");
  const events: PromotionEvent[] = [];
  agent.onPromotion((e) => events.push(e));
  agent.start();
  client.connect();
  client.deliver("sdv/workload/perception/promotion", promotion({ epoch: 3 }), { retain: true });
  assert.equal(events.length, 1);
  assert.equal(events[0].fenced, true);
  assert.equal(events[0].role, "primary");
  assert.equal(events[0].placement.deployment, "perception-a");
  assert.equal(events[0].promotion.epoch, 3);
  assert.equal(agent.stats.fenced, 1);
  const fenced = lines.filter((l) => l.event === "fenced");
  assert.equal(fenced.length, 1);
  assert.equal(fenced[0].workload, "perception");
  assert.equal(fenced[0].activeNode, "worker-node3");
  assert.equal(fenced[0].node, "worker-node2");

  // Same or lower epoch (e.g. the retained copy again after a reconnect): ignored.
  client.deliver("sdv/workload/perception/promotion", promotion({ epoch: 3 }), { retain: true });
  client.deliver("sdv/workload/perception/promotion", promotion({ epoch: 2 }));
  assert.equal(events.length, 1);
  assert.equal(agent.stats.fenced, 1);

  // Fail-back to this node at a higher epoch: promoted, not fenced.
  client.deliver(
    "sdv/workload/perception/promotion",
    promotion({ epoch: 4, activeNode: "worker-node2", failedNode: "worker-node3" }),
  );
  assert.equal(events.length, 2);
  assert.equal(events[1].fenced, false);
  assert.ok(lines.some((l) => l.event === "promoted"));
});

Deno.test("the standby sees its own promotion as promoted, other workloads are ignored", () => {
  const { client, agent } = setup("worker-node3");
  const events: PromotionEvent[] = [];
  const off = agent.onPromotion((e) => events.push(e));
  agent.start();
  client.connect();
  client.deliver("sdv/workload/perception/promotion", promotion({ epoch: 1 }));
  assert.deepEqual(events.map((e) => [e.fenced, e.role]), [[false, "standby"]]);
  client.deliver(
    "sdv/workload/other/promotion",
    promotion({ workload: "other", epoch: 9, activeNode: "worker-node2" }),
  );
  assert.equal(events.length, 1);
  assert.equal(agent.stats.fenced, 0);
  off();
  client.deliver("sdv/workload/perception/promotion", promotion({ epoch: 2 }));
  assert.equal(events.length, 1, "listener removed");
});

Deno.test("malformed promotions are counted and dropped; a cleared retained one is not", () => {
  const { client, agent, lines } = setup();
  const events: PromotionEvent[] = [];
  agent.onPromotion((e) => events.push(e));
  agent.start();
  client.connect();
  const topic = "sdv/workload/perception/promotion";
  client.deliver(topic, "{not json");
  client.deliver(topic, promotion({ epoch: 0 }));
  client.deliver(topic, JSON.stringify({ v: 2, workload: "perception", epoch: 5 }));
  client.deliver(topic, promotion({ workload: "someone-else", epoch: 5 })); // topic mismatch
  client.deliver(topic, "");
  assert.equal(agent.stats.malformed, 4);
  assert.equal(events.length, 0);
  assert.equal(agent.stats.fenced, 0);
  assert.equal(lines.filter((l) => l.event === "malformed-promotion").length, 4);
  // A throwing listener does not break the agent.
  agent.onPromotion(() => {
    throw new Error("boom");
  });
  client.deliver(topic, promotion({ epoch: 7 }));
  assert.equal(events.length, 1);
  assert.ok(lines.some((l) => l.event === "promotion-listener-failed"));
});

Deno.test("stop: retained offline, then a graceful end; idempotent; no beats afterwards", async () => {
  const { clock, client, agent } = setup("worker-node3");
  agent.start();
  client.connect();
  clock.advance(66);
  const p1 = agent.stop();
  const p2 = agent.stop({ timeoutMs: 5 });
  assert.equal(p1, p2);
  await p1;
  const last = client.published[client.published.length - 1];
  assert.deepEqual(last, {
    topic: "sdv/node/worker-node3/status",
    payload: "offline",
    options: { qos: 1, retain: true },
  });
  assert.deepEqual(client.endCalls, [false]);
  const count = client.published.length;
  client.connected = true;
  clock.advance(330);
  assert.equal(client.published.length, count);
  assert.throws(() => agent.start(), /was stopped/);
});

Deno.test("stop is bounded: a broker that never acknowledges leads to a forced close", async () => {
  const { clock, client, agent, lines } = setup("worker-node3");
  agent.start();
  client.connect();
  client.holdAcks = true; // the broker never sends PUBACK
  const stopped = agent.stop({ timeoutMs: 200 });
  clock.advance(199);
  let done = false;
  stopped.then(() => done = true);
  await Promise.resolve();
  assert.equal(done, false);
  clock.advance(1);
  // Let the race settle, then fire the zero-delay fallback timer.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  clock.advance(0);
  await stopped;
  assert.deepEqual(client.endCalls, [true]);
  assert.equal(client.on_topic("sdv/node/worker-node3/status").at(-1)?.payload, "offline");
  assert.ok(
    lines.some((l) => l.event === "stop-timeout-forced-close"),
  );
});
