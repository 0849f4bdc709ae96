import assert from "node:assert/strict";
import { type Config, ConfigSchema } from "../config/schema.ts";
import { createLogger } from "../log/log.ts";
import { buildTopology, type NodeTarget, type Topology } from "../topology/topology.ts";
import { decodeNodeStatus, MAX_EPOCH, type Promotion } from "../wire/wire.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { agentWill, type DrainResult, NodeAgent, type PromotionEvent } from "./agent.ts";

/** The `seq`s of the heartbeats `client` published for `node`, in order. */
function heartbeats(client: FakeMqttClient, node = "worker-node2"): number[] {
  return client.on_topic(`sdv/node/${node}/hb`).map((p) => JSON.parse(p.payload).seq);
}

/** The status payloads `client` published for `node`, in order (each retained QoS 1). */
function statuses(client: FakeMqttClient, node = "worker-node2"): string[] {
  const published = client.on_topic(`sdv/node/${node}/status`);
  for (const p of published) assert.deepEqual(p.options, { qos: 1, retain: true }, p.payload);
  return published.map((p) => p.payload);
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
    issuer: "supervisor",
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
  // Slots at +33..+231 all beat; the tick at +0 is fresh until +150, so +165 finds it stale.
  assert.equal(agent.stats.heartbeatsSent, 7);
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front"]);
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
  assert.equal(agent.stats.degradedPeriods, 0);
  assert.deepEqual(statuses(client), ["online"]);
});

Deno.test("a node without required sensors beats without any tick", () => {
  const { clock, client, agent } = setup("worker-node3");
  agent.start();
  client.connect();
  clock.advance(100);
  assert.deepEqual(heartbeats(client, "worker-node3"), [1, 2, 3]);
});

Deno.test("a stale sensor never stops the heartbeat: degraded (on change), online when fresh", () => {
  const { clock, client, agent, lines } = setup();
  agent.start();
  client.connect();
  // Never seen yet: the agent's start counts as the last tick, so no verdict before 150 ms.
  clock.advance(33 * 4);
  assert.deepEqual(heartbeats(client), [1, 2, 3, 4]);
  assert.deepEqual(statuses(client), ["online"]);
  clock.advance(33); // +165: no tick for more than 150 ms
  assert.deepEqual(heartbeats(client), [1, 2, 3, 4, 5], "the heartbeat is not gated");
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front"]);
  assert.deepEqual(agent.stats.status, { state: "degraded", stale: ["cam-front"] });
  assert.equal(agent.stats.degradedPeriods, 1);

  clock.advance(330); // ten more slots: beats go on, the status is not repeated
  assert.equal(heartbeats(client).length, 15);
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front"]);
  assert.equal(agent.stats.degradedPeriods, 11);
  assert.ok(lines.some((l) => l.event === "degraded"));

  const seq = { n: 0 };
  tickFor(clock, client, 33 * 4, 33, seq);
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front", "online"]);
  // The first slot of tickFor comes before its first tick: still degraded; then fresh.
  assert.equal(agent.stats.degradedPeriods, 12, "fresh again: not counted");
  assert.ok(lines.some((l) => l.event === "sensors-fresh"));
  const beats = heartbeats(client);
  assert.deepEqual(beats, beats.map((_s, i) => i + 1), "one beat per slot, seq without gaps");

  // Ticks stop: the last one is fresh for 150 ms, then degraded again.
  clock.advance(150);
  assert.equal(statuses(client).length, 3);
  clock.advance(33);
  assert.deepEqual(statuses(client).at(-1), "degraded:cam-front");
});

Deno.test("degraded names every stale required sensor, sorted, in the wire format", () => {
  const config = testConfig();
  config.nodes[0].requiredSensors = ["cam-rear", "cam-front"];
  config.sensors.push({ name: "cam-rear", node: "worker-node2", periodMs: 33, timeoutMs: 150 });
  const { clock, client, agent } = setup("worker-node2", config);
  agent.start();
  client.connect();
  clock.advance(165);
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front,cam-rear"]);
  assert.deepEqual(decodeNodeStatus(statuses(client)[1]), {
    state: "degraded",
    stale: ["cam-front", "cam-rear"],
  });
  client.deliver("sdv/sensor/cam-rear/tick", '{"seq":1}');
  clock.advance(33);
  assert.deepEqual(statuses(client).at(-1), "degraded:cam-front", "cam-rear is fresh again");
  assert.equal(agent.stats.heartbeatsSent, 6);
});

Deno.test("a reconnect announces the current status, degraded included, without flapping", () => {
  const { clock, client, agent } = setup();
  agent.start();
  client.connect();
  clock.advance(165);
  client.drop();
  clock.advance(33);
  client.connect();
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front", "degraded:cam-front"]);
  assert.equal(agent.stats.offlinePeriods, 1);
  clock.advance(33 * 3);
  assert.equal(statuses(client).length, 3, "still stale: no online in between");
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":1}');
  clock.advance(33);
  assert.deepEqual(statuses(client).at(-1), "online");
});

Deno.test("disconnected, ticks cannot arrive: no evidence, no degraded after the reconnect", () => {
  const { clock, client, agent } = setup();
  agent.start();
  client.connect();
  tickFor(clock, client, 33 * 3); // fresh; the last tick at +99
  client.drop(); // e.g. a partition: neither ticks nor heartbeats pass
  clock.advance(500);
  assert.equal(agent.stats.offlinePeriods, 15);
  client.connect();
  assert.deepEqual(statuses(client), ["online", "online"]);
  clock.advance(132); // within 150 ms of the connect: no verdict yet, though no tick came
  assert.deepEqual(statuses(client), ["online", "online"]);
  assert.equal(agent.stats.heartbeatsSent, 3 + 4);
  clock.advance(33); // 165 ms connected without a tick: now that is evidence
  assert.deepEqual(statuses(client), ["online", "online", "degraded:cam-front"]);
});

Deno.test("freshness boundary: a tick exactly timeoutMs old still counts, older does not", () => {
  const { clock, client, agent } = setup();
  agent.start();
  client.connect();
  // Tick at t0+48; heartbeat slots at t0+33k: slot 6 (t0+198) is exactly 150 ms after the tick.
  clock.advance(48);
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":1}');
  clock.advance(198 - 48);
  assert.deepEqual(statuses(client), ["online"]);
  clock.advance(33);
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front"], "slot 7: 183 ms old");
  assert.equal(agent.stats.heartbeatsSent, 7, "every slot beats");
});

Deno.test("a stall delays the heartbeat, never drops it: 3 periods late → one beat at once", () => {
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
  const seq = { n: 0 };
  tickFor(clock, client, 33 * 3, 33, seq); // beats at 33, 66, 99; the last tick at 99
  clock.jump(33 + 99); // the timer of slot 4 (due at 132) fires 3 periods late, at 231
  clock.advance(0);
  client.deliver("sdv/sensor/cam-front/tick", `{"seq":${++seq.n}}`); // queued during the stall
  assert.deepEqual(times, [33, 66, 99, 231], "one heartbeat at once, no catch-up burst");
  assert.equal(agent.stats.missedSlots, 3);
  tickFor(clock, client, 33 * 3, 33, seq);
  assert.deepEqual(times, [33, 66, 99, 231, 264, 297, 330], "then on the start + k·33 grid");
  assert.deepEqual(statuses(client), ["online"], "the sensor was fresh all along");
  assert.deepEqual(heartbeats(client), [1, 2, 3, 4, 5, 6, 7]);
});

Deno.test("a stall longer than the sensor timeout is no evidence: the next punctual slot decides", () => {
  for (const ticksQueued of [true, false]) {
    const { clock, client, agent } = setup();
    agent.start();
    client.connect();
    tickFor(clock, client, 33 * 3); // the last tick at +99
    clock.jump(33 + 165); // slot 4 (due +132) fires at +297: the tick looks 198 ms old
    clock.advance(0);
    assert.equal(agent.stats.heartbeatsSent, 4);
    assert.deepEqual(statuses(client), ["online"], "no verdict on a stalled slot");
    assert.equal(agent.stats.deferredSensorChecks, 1);
    // The ticks queued during the stall are read now (or there were none).
    if (ticksQueued) client.deliver("sdv/sensor/cam-front/tick", '{"seq":99}');
    clock.advance(33); // slot 10 at +330, on time
    assert.deepEqual(
      statuses(client),
      ticksQueued ? ["online"] : ["online", "degraded:cam-front"],
      `ticks queued: ${ticksQueued}`,
    );
    assert.equal(agent.stats.heartbeatsSent, 5);
  }
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
  clock.advance(132);
  client.deliver("sdv/sensor/cam-front/tick", '{"seq":1}', { retain: true });
  client.deliver("sdv/sensor/cam-front/tick", "garbage");
  clock.advance(33);
  assert.deepEqual(statuses(client), ["online", "degraded:cam-front"]);
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

const PROMOTION_TOPIC = "sdv/workload/perception/promotion";

/** Lets pending promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

Deno.test("drain: draining, heartbeats go on, done when a promotion moves the workload away", async () => {
  const { clock, client, agent, lines } = setup("worker-node2");
  agent.start();
  client.connect();
  clock.advance(66);
  assert.deepEqual(agent.activeWorkloads, ["perception"], "primary, no promotion seen: active");
  let result: DrainResult | undefined;
  const draining = agent.drain({ timeoutMs: 3000 });
  assert.equal(agent.drain(), draining, "idempotent");
  draining.then((r) => result = r);
  assert.deepEqual(statuses(client), ["online", "draining"]);
  clock.advance(200); // no tick at all: the status stays draining, beats go on
  await flush();
  assert.equal(result, undefined);
  assert.equal(heartbeats(client).length, 2 + 6);
  assert.deepEqual(statuses(client), ["online", "draining"]);
  // A stale promotion (lower than one seen) does not count; the newer one does.
  client.deliver(PROMOTION_TOPIC, promotion({ epoch: 2, activeNode: "worker-node2" }));
  client.deliver(PROMOTION_TOPIC, promotion({ epoch: 1 }));
  await flush();
  assert.equal(result, undefined);
  clock.advance(14);
  client.deliver(PROMOTION_TOPIC, promotion({ epoch: 3, reason: "node-draining" }));
  await flush();
  assert.deepEqual(result, {
    outcome: "drained",
    switchoverMs: 214,
    elapsedMs: 214,
    moved: ["perception"],
    pending: [],
  });
  const drained = lines.find((l) => l.event === "drained");
  assert.equal(drained?.level, "info");
  assert.equal(drained?.switchoverMs, 214);
  assert.equal(drained?.timedOut, false);
  assert.equal(lines.find((l) => l.event === "fenced")?.level, "info", "expected while draining");
  await agent.stop();
  assert.deepEqual(statuses(client), ["online", "draining", "offline"]);
  assert.deepEqual(client.endCalls, [false], "DISCONNECT: no Last Will");
});

Deno.test("drain times out without promotions (no standby), then the agent still stops", async () => {
  const { clock, client, agent, lines } = setup("worker-node2");
  agent.start();
  client.connect();
  let result: DrainResult | undefined;
  agent.drain({ timeoutMs: 500 }).then((r) => result = r);
  clock.advance(499);
  await flush();
  assert.equal(result, undefined);
  clock.advance(1);
  await flush();
  assert.deepEqual(result, {
    outcome: "timed-out",
    switchoverMs: undefined,
    elapsedMs: 500,
    moved: [],
    pending: ["perception"],
  });
  const drained = lines.find((l) => l.event === "drained");
  assert.equal(drained?.level, "warn");
  assert.equal(drained?.timedOut, true);
  assert.deepEqual(drained?.pending, ["perception"]);
  assert.equal(heartbeats(client).length, 15, "beats until the end of the drain");
  await agent.stop();
  assert.deepEqual(statuses(client), ["online", "draining", "offline"]);
});

Deno.test("drain: nothing active here → done at once; a workload promoted here must move again", async () => {
  const { client, agent } = setup("worker-node3"); // the standby
  agent.start();
  client.connect();
  assert.deepEqual(agent.activeWorkloads, []);
  const first = await agent.drain();
  assert.deepEqual([first.outcome, first.switchoverMs, first.moved], ["drained", 0, []]);
  await agent.stop();

  const again = setup("worker-node3");
  again.agent.start();
  again.client.connect();
  again.client.deliver(PROMOTION_TOPIC, promotion({ epoch: 1 }), { retain: true });
  assert.deepEqual(again.agent.activeWorkloads, ["perception"], "promoted here");
  let result: DrainResult | undefined;
  again.agent.drain().then((r) => result = r);
  again.clock.advance(40);
  again.client.deliver(
    PROMOTION_TOPIC,
    promotion({ epoch: 2, activeNode: "worker-node2", failedNode: "worker-node3" }),
  );
  await flush();
  assert.deepEqual([result?.outcome, result?.switchoverMs], ["drained", 40]);
});

Deno.test("drain: a retained promotion seen before counts; reconnect republishes draining", async () => {
  const { clock, client, agent } = setup("worker-node2");
  agent.start();
  client.connect();
  let result: DrainResult | undefined;
  agent.drain().then((r) => result = r);
  client.drop();
  clock.advance(50);
  client.connect();
  assert.deepEqual(statuses(client), ["online", "draining", "draining"]);
  client.deliver(PROMOTION_TOPIC, promotion({ epoch: 1 }), { retain: true });
  await flush();
  assert.equal(result?.outcome, "drained");

  const early = setup("worker-node2");
  early.agent.start();
  early.client.connect();
  early.client.deliver(PROMOTION_TOPIC, promotion({ epoch: 1 }), { retain: true });
  assert.deepEqual((await early.agent.drain()).switchoverMs, 0, "moved before the drain");
});

Deno.test("stop during a drain ends it as stopped; drain after stop is stopped at once", async () => {
  const { client, agent } = setup("worker-node2");
  assert.throws(() => agent.drain(), /not started/);
  agent.start();
  client.connect();
  const draining = agent.drain();
  await agent.stop();
  assert.equal((await draining).outcome, "stopped");
  assert.deepEqual((await draining).pending, ["perception"]);
  assert.deepEqual(statuses(client), ["online", "draining", "offline"]);

  const other = setup("worker-node2");
  other.agent.start();
  await other.agent.stop();
  assert.equal((await other.agent.drain()).outcome, "stopped");
});

// Defence in depth on an open bus (issue 11 item 1): promotions the agent must not obey.

Deno.test("a promotion whose activeNode is no placement of the workload (`nowhere`) fences neither instance", () => {
  for (const nodeName of ["worker-node2", "worker-node3"]) {
    const { client, agent, lines } = setup(nodeName);
    const events: PromotionEvent[] = [];
    agent.onPromotion((e) => events.push(e));
    agent.start();
    client.connect();
    client.deliver(
      "sdv/workload/perception/promotion",
      promotion({ epoch: 5, activeNode: "nowhere" }),
      { retain: true },
    );
    assert.equal(events.length, 0, `${nodeName}: no listener told to stand down`);
    assert.equal(agent.stats.fenced, 0, nodeName);
    assert.equal(agent.stats.refusedPromotions, 1, nodeName);
    const refused = lines.filter((l) => l.event === "promotion-refused");
    assert.equal(refused.length, 1, nodeName);
    assert.equal(refused[0].reason, "foreign-active-node");
    // the real promotion at a lower epoch than the forged one is still obeyed
    client.deliver("sdv/workload/perception/promotion", promotion({ epoch: 1 }));
    assert.deepEqual(events.map((e) => e.promotion.epoch), [1], nodeName);
  }
});

Deno.test("a promotion above MAX_EPOCH is malformed and never freezes the epoch", () => {
  const { client, agent } = setup("worker-node3");
  const events: PromotionEvent[] = [];
  agent.onPromotion((e) => events.push(e));
  agent.start();
  client.connect();
  const topic = "sdv/workload/perception/promotion";
  client.deliver(topic, promotion({ epoch: 2 ** 53 - 1 }), { retain: true });
  client.deliver(topic, promotion({ epoch: MAX_EPOCH + 1 }));
  assert.equal(agent.stats.malformed, 2);
  assert.equal(events.length, 0);
  // the supervisor's next real promotion is obeyed
  client.deliver(topic, promotion({ epoch: 1 }));
  assert.deepEqual(events.map((e) => [e.promotion.epoch, e.fenced]), [[1, false]]);
  client.deliver(topic, promotion({ epoch: MAX_EPOCH, activeNode: "worker-node2" }));
  assert.deepEqual(events.map((e) => e.promotion.epoch), [1, MAX_EPOCH], "the bound is inclusive");
});

Deno.test("a same-epoch promotion naming another node is refused: the node held for that epoch stays active", () => {
  const { client, agent, lines } = setup("worker-node3");
  const events: PromotionEvent[] = [];
  agent.onPromotion((e) => events.push(e));
  agent.start();
  client.connect();
  const topic = "sdv/workload/perception/promotion";
  client.deliver(topic, promotion({ epoch: 3 }));
  assert.deepEqual(agent.activeWorkloads, ["perception"]);
  client.deliver(topic, promotion({ epoch: 3 }), { retain: true }); // the same again: stale
  assert.equal(agent.stats.refusedPromotions, 0);
  client.deliver(topic, promotion({ epoch: 3, activeNode: "worker-node2" }));
  client.deliver(topic, promotion({ epoch: 3, activeNode: "worker-node2" }));
  assert.equal(events.length, 1);
  assert.deepEqual(agent.activeWorkloads, ["perception"], "still active here");
  assert.equal(agent.stats.refusedPromotions, 2, "every refusal counted");
  const refused = lines.filter((l) => l.event === "promotion-refused");
  assert.equal(refused.length, 1, "logged once");
  assert.equal(refused[0].reason, "epoch-reused");
  // the next real failover moves it
  client.deliver(topic, promotion({ epoch: 4, activeNode: "worker-node2" }));
  assert.deepEqual(agent.activeWorkloads, []);
});

Deno.test("a promotion from an issuer that is no supervisor of the config (`mallory`) is not obeyed", () => {
  const { client, agent, lines } = setup("worker-node2");
  const events: PromotionEvent[] = [];
  agent.onPromotion((e) => events.push(e));
  agent.start();
  client.connect();
  const topic = "sdv/workload/perception/promotion";
  client.deliver(topic, promotion({ epoch: 99, issuer: "mallory" }), { retain: true });
  assert.equal(events.length, 0);
  assert.equal(agent.stats.fenced, 0);
  assert.deepEqual(agent.activeWorkloads, ["perception"]);
  assert.equal(agent.stats.refusedPromotions, 1);
  assert.equal(lines.find((l) => l.event === "promotion-refused")?.reason, "unknown-issuer");
  // the configured supervisor's promotion at a lower epoch is still obeyed
  client.deliver(topic, promotion({ epoch: 1 }));
  assert.deepEqual(events.map((e) => [e.promotion.epoch, e.fenced]), [[1, true]]);
});

Deno.test("sensorStates: unknown until watched a full timeout or ticked, then fresh / stale; unknown while disconnected", async () => {
  const { clock, client, agent } = setup();
  const state = () => agent.sensorStates().map((s) => `${s.sensor}:${s.state}`);
  agent.start();
  assert.deepEqual(state(), ["cam-front:unknown"], "not connected: no evidence");
  client.connect();
  assert.deepEqual(state(), ["cam-front:unknown"], "connected, not watched 150 ms yet");
  tickFor(clock, client, 100);
  assert.deepEqual(state(), ["cam-front:fresh"]);
  clock.advance(151); // no tick for more than its 150 ms timeout
  assert.deepEqual(state(), ["cam-front:stale"]);
  assert.equal(agent.stopping, false);
  client.drop();
  assert.deepEqual(state(), ["cam-front:unknown"], "disconnected again");
  await agent.stop({ timeoutMs: 100 });
  assert.equal(agent.stopping, true);
});
