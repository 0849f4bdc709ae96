import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { ConfigSchema } from "../config/schema.ts";
import { decodePromotion, MAX_EPOCH } from "../wire/wire.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { FakeReconciler } from "../../tests/fakes/fake_reconciler.ts";
import { createLogger } from "../log/log.ts";
import { buildTopology } from "../topology/topology.ts";
import {
  type Leadership,
  type LeadershipFactory,
  Supervisor,
  type SupervisorEvent,
} from "./supervisor.ts";
import { DuplicateIdentityError } from "../leader/lease_elector.ts";
import { BrokerPair } from "../mqtt/broker_pair.ts";

const config = ConfigSchema.parse({
  supervisor: { id: "sup", bootWindowMs: 100 },
  nodes: ["worker-node2", "worker-node3"].map((name) => ({
    name,
    heartbeatPeriodMs: 10,
    heartbeatTimeoutMs: 30,
  })),
  sensors: [
    { name: "cam2", node: "worker-node2", periodMs: 10, timeoutMs: 30 },
    { name: "cam3", node: "worker-node3", periodMs: 10, timeoutMs: 30 },
  ],
  workloads: [{
    name: "lane",
    asil: "D",
    fttiMs: 100,
    primary: { deployment: "lane-original", node: "worker-node2", sensors: ["cam2"] },
    standby: { deployment: "lane-standby", node: "worker-node3", sensors: ["cam3"] },
  }],
});
const topology = buildTopology(config);
const lane = topology.workload("lane")!;
const node2 = topology.node("worker-node2")!;

const ticks = async (n = 10) => {
  for (let i = 0; i < n; i++) await Promise.resolve();
};

async function setup(reconciler = new FakeReconciler()) {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const events: SupervisorEvent[] = [];
  const sup = new Supervisor({
    config,
    topology,
    client,
    reconciler: () => Promise.resolve(reconciler),
    clock,
    onEvent: (e) => events.push(e),
  });
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  const beat = (nodes = ["worker-node2", "worker-node3"], sensors = ["cam2", "cam3"]) => {
    for (const n of nodes) client.deliver(`sdv/node/${n}/hb`, '{"seq":1}');
    for (const s of sensors) client.deliver(`sdv/sensor/${s}/tick`, '{"seq":1}');
  };
  return { clock, client, events, sup, beat, reconciler };
}

const promotions = (c: FakeMqttClient) => c.on_topic("sdv/workload/lane/promotion");

Deno.test("supervisor: node silence → barrier-confirmed expiry → retained QoS 1 promotion → desired state", async () => {
  const { clock, client, events, sup, beat, reconciler } = await setup();
  assert.equal(sup.state, "running");
  assert.ok(
    client.on_topic("sdv/supervisor/sup/status").some((p) =>
      p.payload === "online" && p.options.retain
    ),
  );
  for (let i = 0; i < 20; i++) {
    beat();
    clock.advance(10);
  }
  assert.equal(promotions(client).length, 0, "no failover while healthy");
  for (let i = 0; i < 5; i++) {
    beat(["worker-node3"], ["cam2", "cam3"]); // worker-node2 silent
    clock.advance(10);
  }
  const [p] = promotions(client);
  assert.ok(p, "promotion published");
  assert.deepEqual(p.options, { qos: 1, retain: true });
  const promotion = decodePromotion(p.payload)!;
  assert.equal(promotion.epoch, 1);
  assert.equal(promotion.activeNode, "worker-node3");
  assert.equal(promotion.failedNode, "worker-node2");
  assert.equal(promotion.reason, "node-expired");
  assert.equal(promotion.issuer, "sup");
  assert.ok(
    client.on_topic("sdv/supervisor/sup/barrier").length >= 1,
    "expiry confirmed by barrier",
  );
  await ticks(); // PUBACK → reconciler
  assert.equal(reconciler.nodes.length, 1);
  assert.equal(reconciler.nodes[0].node, node2);
  assert.equal(reconciler.workloads.length, 1);
  assert.equal(reconciler.workloads[0].epoch, 1);
  assert.equal(reconciler.workloads[0].active, "standby");
  assert.ok(events.some((e) => e.type === "promotion-sent"));
  assert.equal(sup.policy.workload(lane).active, "standby");
});

Deno.test("supervisor: malformed payloads are counted and dropped, never fatal", async () => {
  const { client, sup } = await setup();
  client.deliver("sdv/node/worker-node2/hb", "garbage{");
  client.deliver("sdv/node/worker-node2/hb", '{"seq":-1}');
  client.deliver("sdv/node/worker-node2/status", "maybe");
  client.deliver("sdv/workload/lane/promotion", '{"v":2}');
  client.deliver("sdv/unknown", "{}");
  assert.equal(sup.ingest.malformed, 4);
  assert.equal(sup.ingest.unknownTopic, 1);
  assert.equal(sup.watchdog.stateAt(node2.index), "INIT");
});

Deno.test("supervisor: live Last Will → immediate failover; retained offline is only history", async () => {
  const { clock, client, beat } = await setup();
  beat();
  clock.advance(5);
  client.deliver("sdv/node/worker-node2/status", "offline", { retain: true });
  assert.equal(promotions(client).length, 0);
  client.deliver("sdv/node/worker-node2/status", "offline", { retain: false });
  assert.equal(promotions(client).length, 1);
  assert.equal(decodePromotion(promotions(client)[0].payload)!.reason, "node-offline");
});

Deno.test("supervisor: a lost broker is an ingest fault, not every node failing", async () => {
  const { clock, client, events, beat } = await setup();
  beat();
  clock.advance(10);
  client.drop();
  clock.advance(5000);
  assert.equal(promotions(client).length, 0);
  assert.ok(events.some((e) => e.type === "ingest-fault"));
  client.connect(); // reconnect + resubscribe
  await ticks();
  assert.ok(events.some((e) => e.type === "ingest-restored"));
  beat();
  clock.advance(20);
  beat();
  clock.advance(20);
  assert.equal(promotions(client).length, 0);
});

Deno.test("supervisor: never promotes a standby whose sensor is expired", async () => {
  const { clock, client, events, beat } = await setup();
  for (let i = 0; i < 5; i++) {
    beat(["worker-node2", "worker-node3"], ["cam2"]); // cam3 silent
    clock.advance(10);
  }
  for (let i = 0; i < 5; i++) {
    beat(["worker-node3"], []);
    clock.advance(10);
  }
  assert.equal(promotions(client).length, 0);
  assert.ok(events.some((e) => e.type === "blocked"));
});

Deno.test("supervisor: restart adopts the persisted epoch, converges leftovers, repeats no failover", async () => {
  const reconciler = new FakeReconciler();
  reconciler.observedState = {
    workloads: new Map([[lane, { epoch: 3, active: "standby", reason: "node-expired" }]]),
    fencedNodes: new Map(),
    unfencedAt: new Map(),
  };
  const { clock, client, sup, beat } = await setup(reconciler);
  assert.equal(sup.policy.workload(lane).epoch, 3);
  assert.equal(sup.policy.workload(lane).active, "standby");
  // the adopted state goes back to the reconciler: the fence of the failed node and the workload
  assert.deepEqual(reconciler.nodes.map((n) => [n.node, n.fenced]), [[node2, true]]);
  assert.deepEqual(reconciler.workloads.map((w) => w.epoch), [3]);
  for (let i = 0; i < 20; i++) {
    beat(["worker-node3"], ["cam3"]); // worker-node2 (old primary) still dead
    clock.advance(10);
  }
  await ticks();
  assert.equal(promotions(client).length, 0, "no new promotion");
  assert.deepEqual(reconciler.workloads.map((w) => w.epoch), [3], "no new failover");
});

Deno.test("supervisor: restart does not fence again a node whose fence was lifted after that failover", async () => {
  // found by the fault campaign: a node fenced at epoch 3, OK again and unfenced, then the
  // supervisor restarts — fencing it again would evict the healthy standbys it runs now
  for (
    const [unfencedAt, fencedAgain] of [
      ["2026-12-02T07:00:05.000Z", false], // lifted after the failover: stays unfenced
      ["2026-12-02T06:59:55.000Z", true], // lifted before it (an older fence): this one is fenced
    ] as const
  ) {
    const reconciler = new FakeReconciler();
    reconciler.observedState = {
      workloads: new Map([[lane, {
        epoch: 3,
        active: "standby",
        reason: "node-expired",
        failedAt: "2026-12-02T07:00:00.000Z",
      }]]),
      fencedNodes: new Map(),
      unfencedAt: new Map([[node2, unfencedAt]]),
    };
    const { sup } = await setup(reconciler);
    assert.equal(sup.policy.workload(lane).epoch, 3);
    assert.equal(sup.policy.node(node2).fenced, fencedAgain, unfencedAt);
    assert.equal(reconciler.nodes.some((n) => n.node === node2 && n.fenced), fencedAgain);
    await sup.stop();
  }
});
Deno.test("supervisor: a retained promotion with a higher epoch is adopted", async () => {
  const { client, sup, reconciler } = await setup();
  client.deliver(
    "sdv/workload/lane/promotion",
    JSON.stringify({
      v: 1,
      workload: "lane",
      namespace: "default",
      activeNode: "worker-node3",
      activeDeployment: "lane-standby",
      failedNode: "worker-node2",
      epoch: 7,
      reason: "app-expired",
      issuer: "sup",
      issuedAt: "2026-12-01T00:00:00.000Z",
    }),
    { retain: true },
  );
  assert.equal(sup.policy.workload(lane).epoch, 7);
  assert.equal(reconciler.workloads.at(-1)?.failedAt, "2026-12-01T00:00:00.000Z");
  assert.equal(reconciler.nodes.length, 0, "app fault: no fence");
});

Deno.test("supervisor: ordered shutdown publishes retained offline and ends the client", async () => {
  const { client, sup, reconciler } = await setup();
  await sup.stop();
  const status = client.on_topic("sdv/supervisor/sup/status").at(-1)!;
  assert.equal(status.payload, "offline");
  assert.equal(status.options.retain, true);
  assert.ok(client.ended);
  assert.ok(reconciler.closed);
  assert.equal(sup.state, "stopped");
});

Deno.test("supervisor: the API work starts only after the broker acknowledged the promotions", async () => {
  const { clock, client, beat, reconciler } = await setup();
  client.holdAcks = true;
  beat();
  clock.advance(5);
  client.deliver("sdv/node/worker-node2/status", "offline"); // live Last Will
  assert.equal(promotions(client).length, 1, "promotion published at once");
  await ticks();
  assert.equal(reconciler.workloads.length, 0, "no API work before PUBACK");
  client.releaseAcks();
  await ticks();
  assert.equal(reconciler.workloads.length, 1);
  assert.equal(reconciler.nodes.length, 1);
});

Deno.test("supervisor: a missing PUBACK delays the API work by a bound only", async () => {
  const { clock, client, beat, reconciler } = await setup();
  client.holdAcks = true;
  beat();
  client.deliver("sdv/node/worker-node2/status", "offline");
  clock.advance(4);
  await ticks();
  assert.equal(reconciler.workloads.length, 0);
  clock.advance(2);
  await ticks();
  assert.equal(reconciler.workloads.length, 1, "started after the 5 ms bound");
});

Deno.test("supervisor: arms before the reconciler has synced; failures wait for the adoption", async () => {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const reconciler = new FakeReconciler({ hold: true });
  const events: SupervisorEvent[] = [];
  const sup = new Supervisor({
    config,
    client,
    reconciler: () => Promise.resolve(reconciler),
    clock,
    onEvent: (e) => events.push(e),
  });
  let started = false;
  const starting = sup.start().then(() => (started = true));
  client.connect();
  await ticks();
  assert.ok(events.some((e) => e.type === "armed"), "armed without the cluster state");
  assert.equal(started, false);
  assert.equal(sup.state, "starting");
  client.deliver("sdv/node/worker-node3/hb", '{"seq":1}');
  client.deliver("sdv/sensor/cam3/tick", '{"seq":1}');
  client.deliver("sdv/node/worker-node2/hb", '{"seq":1}');
  client.deliver("sdv/node/worker-node2/status", "offline");
  assert.equal(promotions(client).length, 0, "no decision before the persisted state is known");
  reconciler.release();
  await starting;
  assert.equal(promotions(client).length, 1, "the deferred failure is decided after adoption");
});

Deno.test("supervisor: right after a broker reconnect a Last Will waits for the deadline", async () => {
  const { clock, client, sup, beat } = await setup();
  beat();
  clock.advance(10);
  client.drop();
  clock.advance(1000);
  client.connect(); // broker back; node clients race their stale sessions
  await ticks();
  client.deliver("sdv/node/worker-node2/status", "offline"); // takeover will of a live node
  assert.equal(sup.ingest.lastWillsDeferred, 1);
  beat(); // the node is alive and heartbeats
  clock.advance(20);
  beat();
  clock.advance(20);
  assert.equal(promotions(client).length, 0, "no failover of a live node");
  // past the quiet window (a lost connection: the reconnect allowance, 2 × 500 + 1000 ms): a Last
  // Will is a fast path again
  for (let i = 0; i < 210; i++) {
    beat();
    clock.advance(10);
  }
  beat();
  client.deliver("sdv/node/worker-node2/status", "offline");
  assert.equal(promotions(client).length, 1);
});

Deno.test("supervisor: start twice is an error; stop before start is safe", async () => {
  const { sup } = await setup();
  await assert.rejects(() => sup.start(), /cannot start: running/);
  const idle = new Supervisor({
    config,
    client: new FakeMqttClient(),
    reconciler: () => Promise.resolve(new FakeReconciler()),
  });
  await idle.stop();
  assert.equal(idle.state, "stopped");
});

Deno.test("supervisor: a planned stop moves the workloads first and its silence fences nothing", async () => {
  const { clock, client, beat, reconciler, sup } = await setup();
  for (let i = 0; i < 5; i++) {
    beat();
    clock.advance(10);
  }
  client.deliver("sdv/node/worker-node2/status", "draining");
  const [p] = promotions(client);
  assert.ok(p, "promotion at once");
  assert.equal(decodePromotion(p.payload)!.reason, "planned-stop");
  await ticks();
  assert.deepEqual(reconciler.nodes, [], "no fence");
  assert.equal(reconciler.workloads[0].removeFailed, false);
  beat(); // still heartbeating while draining
  client.deliver("sdv/node/worker-node2/status", "offline"); // ordered stop after the drain
  assert.equal(sup.watchdog.stateAt(node2.index), "DEACTIVATED");
  for (let i = 0; i < 30; i++) {
    beat(["worker-node3"], ["cam3"]);
    clock.advance(10);
  }
  await ticks();
  assert.equal(promotions(client).length, 1, "no new failover");
  assert.deepEqual(reconciler.nodes, [], "still no fence");
  // back after the update: supervised again (after the 1 s recovery window)
  for (let i = 0; i < 120; i++) {
    beat();
    clock.advance(10);
  }
  assert.equal(sup.watchdog.stateAt(node2.index), "OK");
  assert.equal(sup.policy.isDraining(node2), false);
});

Deno.test("supervisor: a degraded node keeps heartbeating: only the sensor's workloads move, no fence", async () => {
  const { clock, client, beat, reconciler } = await setup();
  for (let i = 0; i < 5; i++) {
    beat();
    clock.advance(10);
  }
  client.deliver("sdv/node/worker-node2/status", "degraded:cam2", { retain: false });
  for (let i = 0; i < 5; i++) {
    beat(["worker-node2", "worker-node3"], ["cam3"]); // cam2 silent, node2 alive
    clock.advance(10);
  }
  await ticks();
  const [p] = promotions(client);
  assert.equal(decodePromotion(p.payload)!.reason, "sensor-expired:cam2");
  assert.deepEqual(reconciler.nodes, [], "no fence: the node is alive");
});

Deno.test("supervisor: a fenced node OK for the recovery window is unfenced", async () => {
  const { clock, client, beat, reconciler } = await setup();
  beat();
  clock.advance(5);
  client.deliver("sdv/node/worker-node2/status", "offline"); // crash
  await ticks();
  assert.equal(reconciler.nodes.at(-1)?.fenced, true);
  for (let i = 0; i < 150; i++) { // 1.5 s of heartbeats (recovery window 1 s)
    beat();
    clock.advance(10);
  }
  await ticks();
  const last = reconciler.nodes.at(-1)!;
  assert.equal(last.node, node2);
  assert.equal(last.fenced, false, "unfenced after the recovery window");
});

Deno.test("supervisor: the expired line carries when the deadline was first noticed", async () => {
  const lines: Record<string, unknown>[] = [];
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const sup = new Supervisor({
    config,
    client,
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock,
    log: createLogger({ format: "json", write: (line) => lines.push(JSON.parse(line)) }),
  });
  const started = sup.start();
  client.connect();
  await started;
  client.deliver("sdv/node/worker-node2/hb", '{"seq":1}');
  clock.advance(200);
  await ticks();
  const expired = lines.find((l) => l.event === "expired" && l.target === "node/worker-node2");
  assert.ok(expired, JSON.stringify(lines));
  assert.equal(typeof expired.noticedAtMs, "number");
  assert.ok((expired.noticedAtMs as number) <= (expired.expiredAtMs as number));
});

Deno.test("supervisor: a blocked failover is logged once per workload and refusal, not once per expired target", async () => {
  const lines: Record<string, unknown>[] = [];
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const sup = new Supervisor({
    config,
    client,
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock,
    log: createLogger({
      format: "json",
      write: (line) => lines.push(JSON.parse(line)),
      nowMs: () => clock.nowMs(),
    }),
  });
  const started = sup.start();
  client.connect();
  await started;
  // cam3 never ticks: the standby is not trustworthy; then worker-node2 and cam2 fall silent in
  // the same batch, each deciding the workload again
  for (let i = 0; i < 5; i++) {
    client.deliver("sdv/node/worker-node2/hb", '{"seq":1}');
    client.deliver("sdv/node/worker-node3/hb", '{"seq":1}');
    client.deliver("sdv/sensor/cam2/tick", '{"seq":1}');
    clock.advance(10);
  }
  for (let i = 0; i < 10; i++) {
    client.deliver("sdv/node/worker-node3/hb", '{"seq":1}');
    clock.advance(10);
    await ticks();
  }
  const blocked = lines.filter((l) => l.msg === "failover-blocked");
  assert.equal(blocked.length, 1, JSON.stringify(blocked));
  assert.equal(blocked[0].workload, "lane");
  assert.deepEqual(String(blocked[0].reason).split(",").sort(), [
    "node-expired",
    "sensor-expired:cam2",
  ]);
  assert.match(String(blocked[0].why), /sensor\/cam3 not OK/);
  await sup.stop();
});

Deno.test("supervisor: oversized payloads are dropped before parsing and counted", async () => {
  const { client, sup } = await setup();
  client.deliver("sdv/node/worker-node2/hb", `{"seq":1,"pad":"${"x".repeat(300)}"}`);
  client.deliver("sdv/workload/lane/promotion", "{" + " ".repeat(5000) + "}");
  assert.equal(sup.ingest.oversized, 2);
  assert.equal(sup.ingest.malformed, 2);
  assert.equal(sup.watchdog.stateAt(node2.index), "INIT", "not a heartbeat");
});

Deno.test("supervisor: after a long broker outage, clients get time to reconnect", async () => {
  const { clock, client, beat, events } = await setup();
  beat();
  clock.advance(10);
  client.drop();
  clock.advance(5000); // a long stall / restart: the agents' keepalive ran out
  client.connect();
  await ticks();
  assert.ok(events.some((e) => e.type === "ingest-restored"));
  clock.advance(1500); // the agents are still reconnecting: 1.5 s of silence
  beat();
  clock.advance(20);
  beat();
  await ticks();
  assert.equal(promotions(client).length, 0, "no failover while clients reconnect");
  assert.ok(!events.some((e) => e.type === "transition" && e.transition.isFailure));
});

Deno.test("supervisor: a retained heartbeat is history, not liveness", async () => {
  const { client, sup } = await setup();
  client.deliver("sdv/node/worker-node2/hb", '{"seq":1}', { retain: true });
  assert.equal(sup.ingest.retainedBeats, 1);
  assert.equal(sup.watchdog.stateAt(node2.index), "INIT");
});

// Defence in depth on an open bus (issue 11 item 1): barriers and promotions from other clients.

/** A well-formed promotion of `lane` as this supervisor would issue it, with `overrides`. */
function lanePromotion(overrides: Record<string, unknown>): string {
  return JSON.stringify({
    v: 1,
    workload: "lane",
    namespace: "default",
    activeNode: "worker-node3",
    activeDeployment: "lane-standby",
    failedNode: "worker-node2",
    epoch: 1,
    reason: "app-expired",
    issuer: "sup",
    issuedAt: "2026-12-01T00:00:00.000Z",
    ...overrides,
  });
}

/** Beats every node and sensor for 200 ms, then silences node `silent` until a failover (≤ 100 ms). */
function hangAndFailOver(
  s: Awaited<ReturnType<typeof setup>>,
  silent: string,
): void {
  for (let i = 0; i < 20; i++) {
    s.beat();
    s.clock.advance(10);
  }
  const before = promotions(s.client).length;
  for (let i = 0; i < 10 && promotions(s.client).length === before; i++) {
    s.beat(["worker-node2", "worker-node3"].filter((n) => n !== silent), ["cam2", "cam3"]);
    s.clock.advance(10);
  }
}

Deno.test("supervisor: a forged barrier confirms nothing: the heartbeats queued behind a stall refute the expiry", async () => {
  const { clock, client, sup, beat } = await setup();
  for (let i = 0; i < 20; i++) {
    beat();
    clock.advance(10);
  }
  client.echo = false; // the broker holds our barrier behind the queued heartbeats
  clock.advance(30); // a supervisor stall: every deadline passes, one barrier goes out
  const barriers = client.on_topic("sdv/supervisor/sup/barrier");
  assert.equal(barriers.length, 1, "the stall made the targets pending");
  const ours = JSON.parse(barriers[0].payload) as { seq: number; nonce: string };
  assert.match(ours.nonce, /^[0-9a-f]{32}$/);
  // Another client floods the next seqs and answers first: without a nonce, or with another one.
  for (let seq = ours.seq; seq < ours.seq + 3; seq++) {
    client.deliver("sdv/supervisor/sup/barrier", `{"seq":${seq}}`);
    client.deliver("sdv/supervisor/sup/barrier", JSON.stringify({ seq, nonce: "0".repeat(32) }));
  }
  assert.equal(sup.watchdog.stats.expiries, 0, "no expiry confirmed by a forged barrier");
  assert.equal(promotions(client).length, 0);
  assert.equal(sup.ingest.forgedBarriers, 6);
  // The queued heartbeats, then our own barrier: the stall refuted, nothing expires.
  beat();
  client.deliver("sdv/supervisor/sup/barrier", barriers[0].payload);
  assert.equal(promotions(client).length, 0);
  assert.equal(sup.watchdog.stats.expiries, 0);
  assert.ok(sup.watchdog.stats.refuted > 0, "the heartbeats refuted the pending expiries");
  // Our barrier once more (late, repeated): stale, counted, confirms nothing.
  client.deliver("sdv/supervisor/sup/barrier", barriers[0].payload);
  assert.equal(sup.ingest.staleBarriers, 1);
  assert.equal(sup.ingest.malformed, 0);
});

Deno.test("supervisor: a promotion naming a node outside the workload (`nowhere`) is refused; a real hang still fails over", async () => {
  const s = await setup();
  const { client, sup, reconciler } = s;
  client.deliver(
    "sdv/workload/lane/promotion",
    lanePromotion({ epoch: 5, activeNode: "nowhere" }),
    {
      retain: true,
    },
  );
  assert.equal(sup.policy.workload(lane).epoch, 0, "not adopted");
  assert.equal(sup.policy.workload(lane).active, "primary");
  assert.equal(reconciler.workloads.length, 0);
  assert.equal(sup.ingest.refusedPromotions, 1);
  hangAndFailOver(s, "worker-node2");
  const p = decodePromotion(promotions(client).at(-1)!.payload)!;
  assert.deepEqual([p.epoch, p.activeNode], [1, "worker-node3"]);
});

Deno.test("supervisor: a promotion above MAX_EPOCH is malformed and never freezes the epoch", async () => {
  const s = await setup();
  const { client, sup } = s;
  client.deliver("sdv/workload/lane/promotion", lanePromotion({ epoch: 2 ** 53 - 1 }), {
    retain: true,
  });
  client.deliver("sdv/workload/lane/promotion", lanePromotion({ epoch: MAX_EPOCH + 1 }));
  assert.equal(sup.ingest.malformed, 2);
  assert.equal(sup.policy.workload(lane).epoch, 0);
  hangAndFailOver(s, "worker-node2");
  const p = decodePromotion(promotions(client).at(-1)!.payload)!;
  assert.deepEqual([p.epoch, p.activeNode], [1, "worker-node3"], "the next failover is issued");
});

Deno.test("supervisor: a same-epoch promotion naming another node is refused; a real hang of the active node is failed over", async () => {
  const s = await setup();
  const { client, sup } = s;
  // the state of an earlier failover (retained): worker-node3 active at epoch 3
  client.deliver("sdv/workload/lane/promotion", lanePromotion({ epoch: 3 }), { retain: true });
  assert.equal(sup.policy.workload(lane).active, "standby");
  // a forgery reuses epoch 3 for the other node
  const forged = lanePromotion({
    epoch: 3,
    activeNode: "worker-node2",
    activeDeployment: "lane-original",
    failedNode: "worker-node3",
  });
  client.deliver("sdv/workload/lane/promotion", forged);
  client.deliver("sdv/workload/lane/promotion", forged);
  assert.deepEqual(
    [sup.policy.workload(lane).epoch, sup.policy.workload(lane).active],
    [3, "standby"],
    "the node held for epoch 3 stays active",
  );
  assert.equal(sup.ingest.refusedPromotions, 2);
  // the active node (worker-node3) really hangs
  hangAndFailOver(s, "worker-node3");
  const p = decodePromotion(promotions(client).at(-1)!.payload)!;
  assert.deepEqual([p.epoch, p.activeNode, p.failedNode], [4, "worker-node2", "worker-node3"]);
});

Deno.test("supervisor: a promotion from an issuer that is no supervisor of the config (`mallory`) is refused and logged once", async () => {
  const lines: Record<string, unknown>[] = [];
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const reconciler = new FakeReconciler();
  const sup = new Supervisor({
    config,
    topology,
    client,
    reconciler: () => Promise.resolve(reconciler),
    clock,
    log: createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) }),
  });
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  const forged = lanePromotion({ epoch: 99, issuer: "mallory" });
  client.deliver("sdv/workload/lane/promotion", forged, { retain: true });
  client.deliver("sdv/workload/lane/promotion", forged);
  assert.equal(sup.policy.workload(lane).epoch, 0);
  assert.equal(reconciler.workloads.length, 0);
  assert.equal(sup.ingest.refusedPromotions, 2);
  const refused = lines.filter((l) => l.event === "promotion-refused");
  assert.equal(refused.length, 1, "logged once");
  assert.equal(refused[0].reason, "unknown-issuer");
  assert.equal(refused[0].issuer, "mallory");
  await sup.stop();
});

// ---------------------------------------------------------------------------------------------
// Supervisor pair: a standby decides nothing; on becoming leader it decides what stands.

/** A controllable election. */
class FakeLeadership implements Leadership {
  leader = false;
  released = false;
  hooks!: Parameters<LeadershipFactory>[0];
  #reject: ((error: unknown) => void) | undefined;
  isLeader(): boolean {
    return this.leader;
  }
  run(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#reject = reject;
      signal.addEventListener("abort", () => {
        this.leader = false;
        this.released = true;
        resolve();
      }, { once: true });
    });
  }
  promote(term = 1): void {
    this.leader = true;
    this.hooks.onStartedLeading(term);
  }
  demote(): void {
    this.leader = false;
    this.hooks.onStoppedLeading("renew-deadline");
  }
  readonly eligibility: boolean[] = [];
  setEligible(eligible: boolean): void {
    this.eligibility.push(eligible);
    if (!eligible) this.leader = false;
  }
  fail(error: unknown): void {
    this.#reject?.(error);
  }
}

async function setupPair(reconciler = new FakeReconciler()) {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const leadership = new FakeLeadership();
  const fatal: unknown[] = [];
  const sup = new Supervisor({
    config,
    topology,
    client,
    reconciler: () => Promise.resolve(reconciler),
    clock,
    leadership: (hooks) => {
      leadership.hooks = hooks;
      return Promise.resolve(leadership);
    },
    onFatal: (e) => fatal.push(e),
  });
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  const beat = (nodes = ["worker-node2", "worker-node3"], sensors = ["cam2", "cam3"]) => {
    for (const n of nodes) client.deliver(`sdv/node/${n}/hb`, '{"seq":1}');
    for (const s of sensors) client.deliver(`sdv/sensor/${s}/tick`, '{"seq":1}');
  };
  return { clock, client, sup, beat, reconciler, leadership, fatal };
}

Deno.test("pair: the standby supervises warm but decides nothing; as leader it decides every EXPIRED target as one batch", async () => {
  const { clock, client, sup, beat, reconciler, leadership } = await setupPair();
  assert.equal(sup.state, "running", "a standby runs");
  for (let i = 0; i < 20; i++) {
    beat();
    clock.advance(10);
  }
  for (let i = 0; i < 10; i++) {
    beat(["worker-node3"], ["cam3"]); // worker-node2 and its camera fall silent
    clock.advance(10);
  }
  await ticks();
  assert.equal(sup.watchdog.stateAt(node2.index), "EXPIRED", "detected while standby");
  assert.equal(promotions(client).length, 0, "the standby publishes no promotion");
  assert.equal(reconciler.workloads.length + reconciler.nodes.length, 0, "and writes nothing");
  assert.equal(sup.policy.workload(lane).epoch, 0, "and decides nothing");

  assert.equal(sup.statsSnapshot().leader, 0);
  leadership.promote();
  assert.equal(sup.statsSnapshot().leader, 1);
  const [p] = promotions(client);
  assert.ok(p, "the new leader fails over what stands");
  assert.equal(promotions(client).length, 1, "one decision for the whole batch");
  const promotion = decodePromotion(p.payload)!;
  assert.equal(promotion.activeNode, "worker-node3");
  assert.equal(promotion.epoch, 1);
  await ticks();
  assert.deepEqual(reconciler.workloads.map((w) => [w.epoch, w.active]), [[1, "standby"]]);
  assert.deepEqual(reconciler.nodes.map((n) => [n.node, n.fenced]), [[node2, true]]);
});

Deno.test("pair: a standby adopts the leader's retained promotion warm and converges it when it leads", async () => {
  const { clock, client, sup, beat, reconciler, leadership } = await setupPair();
  beat();
  clock.advance(10);
  client.deliver(
    "sdv/workload/lane/promotion",
    JSON.stringify({
      v: 1,
      workload: "lane",
      namespace: "default",
      activeNode: "worker-node3",
      activeDeployment: "lane-standby",
      failedNode: "worker-node2",
      epoch: 4,
      reason: "node-expired",
      issuer: "sup",
      issuedAt: "2026-12-02T07:00:00.000Z",
    }),
    { retain: true },
  );
  assert.equal(sup.policy.workload(lane).epoch, 4, "adopted while standby");
  assert.equal(reconciler.workloads.length, 0, "nothing handed to the reconciler");
  leadership.promote(5);
  assert.deepEqual(reconciler.workloads.map((w) => w.epoch), [4], "converged as leader");
  assert.equal(promotions(client).filter((p) => p.options.retain).length, 0, "no new promotion");
});

Deno.test("pair: a leader that stepped down decides nothing more", async () => {
  const { clock, client, beat, leadership } = await setupPair();
  leadership.promote();
  for (let i = 0; i < 20; i++) {
    beat();
    clock.advance(10);
  }
  leadership.demote();
  for (let i = 0; i < 10; i++) {
    beat(["worker-node3"], ["cam3"]);
    clock.advance(10);
  }
  await ticks();
  assert.equal(promotions(client).length, 0);
});

Deno.test("pair: a fatal election error (same id) reaches onFatal; stop releases the Lease first", async () => {
  const { sup, leadership, fatal } = await setupPair();
  const duplicate = new DuplicateIdentityError("sup", "sup/other");
  leadership.fail(duplicate);
  await ticks();
  assert.deepEqual(fatal, [duplicate]);

  const second = await setupPair();
  second.leadership.promote();
  await second.sup.stop();
  assert.ok(second.leadership.released, "the election was stopped (Lease released)");
  assert.equal(second.sup.state, "stopped");
  await sup.stop();
});

/** A supervisor on a broker pair of two fake sessions (`pairClient`), optionally in a pair. */
async function setupBrokerPair(withLeadership = false) {
  const clock = new FakeClock(0);
  const a = new FakeMqttClient();
  const b = new FakeMqttClient();
  a.syncEcho = b.syncEcho = true;
  const client = new BrokerPair({
    sessions: [a, b],
    labels: ["a", "b"],
    nowMs: () => clock.nowMs(),
  });
  const leadership = new FakeLeadership();
  const reconciler = new FakeReconciler();
  const sup = new Supervisor({
    config,
    topology,
    client,
    reconciler: () => Promise.resolve(reconciler),
    clock,
    leadership: withLeadership
      ? (hooks) => {
        leadership.hooks = hooks;
        return Promise.resolve(leadership);
      }
      : undefined,
  });
  const started = sup.start();
  await Promise.resolve();
  a.connect();
  b.connect();
  await started;
  let seq = 0;
  /** Each heartbeat and tick through every listed session (a dual-publishing client). */
  const beat = (via: FakeMqttClient[], nodes = ["worker-node2", "worker-node3"]) => {
    seq++;
    for (const session of via) {
      for (const n of nodes) session.deliver(`sdv/node/${n}/hb`, `{"seq":${seq}}`);
      for (const s of ["cam2", "cam3"]) session.deliver(`sdv/sensor/${s}/tick`, `{"seq":${seq}}`);
    }
  };
  return { clock, a, b, client, sup, beat, leadership, reconciler };
}

Deno.test("broker pair: losing one broker changes nothing (no ingest fault, no expiry); a node crash is still detected through the other", async () => {
  const { clock, a, b, client, sup, beat } = await setupBrokerPair();
  for (let i = 0; i < 20; i++) {
    beat([a, b]);
    clock.advance(10);
  }
  assert.ok(client.stats.duplicates > 0, "copies from the second broker are dropped");
  const messagesBefore = sup.ingest.messages;
  beat([a, b]);
  assert.equal(sup.ingest.messages - messagesBefore, 4, "ingest sees each message once");
  a.drop(); // broker a killed
  for (let i = 0; i < 30; i++) {
    beat([b]);
    clock.advance(10);
  }
  await ticks();
  assert.equal(sup.watchdog.stateAt(node2.index), "OK");
  assert.equal(promotions(a).length + promotions(b).length, 0, "no false failover");
  assert.ok(!sup.watchdog.suspended, "supervision never suspended");
  // worker-node2 crashes while only broker b is up: detected (barrier through b) and failed over
  for (let i = 0; i < 6; i++) {
    beat([b], ["worker-node3"]);
    clock.advance(10);
  }
  await ticks();
  assert.equal(sup.watchdog.stateAt(node2.index), "EXPIRED");
  assert.equal(sup.policy.workload(lane).epoch, 1);
  assert.ok(promotions(b).length >= 1, "promotion published on the live broker");
  assert.ok(promotions(a).length >= 1, "and handed to the lost one's session (queued at QoS 1)");
});

Deno.test("broker pair: losing both brokers is an ingest fault (never a failover); the pair returning restores supervision", async () => {
  const { clock, a, b, sup, beat } = await setupBrokerPair();
  for (let i = 0; i < 20; i++) {
    beat([a, b]);
    clock.advance(10);
  }
  a.drop();
  b.drop();
  assert.ok(sup.watchdog.suspended, "supervision suspended");
  clock.advance(500);
  await ticks();
  assert.equal(sup.policy.workload(lane).epoch, 0, "no mass failover");
  b.connect();
  await ticks();
  assert.ok(!sup.watchdog.suspended, "resumed with one broker back");
});

Deno.test("broker pair: a returning broker gets the leader's current promotions again; an ingest fault makes the leader ineligible", async () => {
  const { clock, a, b, sup, beat, leadership } = await setupBrokerPair(true);
  leadership.promote(1);
  for (let i = 0; i < 20; i++) {
    beat([a, b]);
    clock.advance(10);
  }
  for (let i = 0; i < 6; i++) {
    beat([a, b], ["worker-node3"]);
    clock.advance(10);
  }
  await ticks();
  assert.equal(sup.policy.workload(lane).epoch, 1);
  const before = promotions(a).length;
  a.drop(); // broker a restarts without persistence
  a.connect();
  await ticks();
  const again = promotions(a).slice(before);
  assert.equal(again.length, 1, "the promotion is published again");
  assert.equal(decodePromotion(again[0].payload)?.epoch, 1, "with the same epoch");
  assert.deepEqual(again[0].options, { qos: 1, retain: true });
  // both brokers lost: the leader hands over
  a.drop();
  b.drop();
  assert.deepEqual(leadership.eligibility, [false]);
  assert.ok(!leadership.isLeader());
  a.connect();
  await ticks();
  assert.deepEqual(leadership.eligibility, [false, true]);
});

Deno.test("pair: a fence held only in the standby's memory (adopted from a retained promotion) of a node alive in its watchdog is dropped when it leads; the failover back to that node is not blocked", async () => {
  const { clock, client, sup, beat, reconciler, leadership } = await setupPair();
  // the previous leader failed lane over to worker-node3 (a node fault of worker-node2) …
  client.deliver(
    "sdv/workload/lane/promotion",
    JSON.stringify({
      v: 1,
      workload: "lane",
      namespace: "default",
      activeNode: "worker-node3",
      activeDeployment: "lane-standby",
      failedNode: "worker-node2",
      epoch: 1,
      reason: "node-expired",
      issuer: "sup",
      issuedAt: new Date(Date.now() - 60_000).toISOString(),
    }),
    { retain: true },
  );
  assert.equal(sup.policy.workload(lane).epoch, 1);
  assert.ok(sup.policy.node(node2).fenced, "the standby fences worker-node2 in its memory");
  // … worker-node2 came back and the cluster shows no fence of it (lifted, or never written)
  for (let i = 0; i < 20; i++) {
    beat();
    clock.advance(10);
  }
  // this instance leads, then worker-node3 crashes: lane goes back to worker-node2
  leadership.promote(2);
  await ticks();
  assert.ok(!sup.policy.node(node2).fenced, "the memory-only fence of a live node is dropped");
  assert.ok(
    !reconciler.nodes.some((n) => n.node === node2 && n.fenced),
    "and never written to the cluster",
  );
  for (let i = 0; i < 10; i++) {
    beat(["worker-node2"], ["cam2"]);
    clock.advance(10);
  }
  await ticks();
  const back = promotions(client).map((p) => decodePromotion(p.payload)!).find((p) =>
    p.epoch === 2
  );
  assert.ok(back, "failed over, not blocked");
  assert.equal(back.activeNode, "worker-node2");
});
