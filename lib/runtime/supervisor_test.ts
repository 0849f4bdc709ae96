import assert from "node:assert/strict";
import { FakeClock } from "../clock/fake_clock.ts";
import { ConfigSchema } from "../config/schema.ts";
import { DryRunExecutor } from "../executor/dry_run.ts";
import type { ActionResult, FailoverExecutor, ObservedWorkload } from "../executor/executor.ts";
import { decodePromotion } from "../ingest/wire.ts";
import type { FailoverPlan } from "../policy/policy.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { Supervisor, type SupervisorEvent } from "./supervisor.ts";

const config = ConfigSchema.parse({
  supervisor: { id: "sup", startupGraceMs: 100 },
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

async function setup(executor: FailoverExecutor = new DryRunExecutor()) {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const events: SupervisorEvent[] = [];
  const sup = new Supervisor({ config, client, executor, clock, onEvent: (e) => events.push(e) });
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  const beat = (nodes = ["worker-node2", "worker-node3"], sensors = ["cam2", "cam3"]) => {
    for (const n of nodes) client.deliver(`sdv/node/${n}/hb`, '{"seq":1}');
    for (const s of sensors) client.deliver(`sdv/sensor/${s}/tick`, '{"seq":1}');
  };
  return { clock, client, events, sup, beat };
}

const promotions = (c: FakeMqttClient) => c.on_topic("sdv/workload/lane/promotion");

Deno.test("supervisor: node silence → barrier-confirmed expiry → retained QoS 1 promotion → plan", async () => {
  const executor = new DryRunExecutor();
  const { clock, client, events, sup, beat } = await setup(executor);
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
  assert.ok(
    client.on_topic("sdv/supervisor/sup/barrier").length >= 1,
    "expiry confirmed by barrier",
  );
  for (let i = 0; i < 5; i++) await Promise.resolve(); // PUBACK → executor
  assert.equal(executor.plans.length, 1);
  assert.ok(events.some((e) => e.type === "actions-done"));
  assert.equal(sup.policy.state("lane")?.active, "standby");
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
  assert.equal(sup.watchdog.state("node/worker-node2"), "INIT");
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

Deno.test("supervisor: restart adopts persisted epoch, repeats nothing", async () => {
  class Observed implements FailoverExecutor {
    executed: FailoverPlan[] = [];
    observe() {
      return Promise.resolve(
        new Map<string, ObservedWorkload>([["lane", { epoch: 3, activeNode: "worker-node3" }]]),
      );
    }
    execute(plan: FailoverPlan): Promise<ActionResult[]> {
      this.executed.push(plan);
      return Promise.resolve([]);
    }
    fenceNode(): Promise<ActionResult[]> {
      return Promise.resolve([]);
    }
    close() {}
  }
  const executor = new Observed();
  const { clock, client, sup, beat } = await setup(executor);
  assert.deepEqual(sup.policy.state("lane"), { active: "standby", epoch: 3 });
  for (let i = 0; i < 10; i++) {
    beat(["worker-node3"], ["cam3"]); // worker-node2 (old primary) still dead
    clock.advance(10);
  }
  assert.equal(promotions(client).length, 0);
  assert.equal(executor.executed.length, 0);
});

Deno.test("supervisor: ordered shutdown publishes retained offline and ends the client", async () => {
  const { client, sup } = await setup();
  await sup.stop();
  const status = client.on_topic("sdv/supervisor/sup/status").at(-1)!;
  assert.equal(status.payload, "offline");
  assert.equal(status.options.retain, true);
  assert.ok(client.ended);
});

Deno.test("supervisor: the API work starts only after the broker acknowledged the promotions", async () => {
  const executor = new DryRunExecutor();
  const { clock, client, beat } = await setup(executor);
  client.holdAcks = true;
  beat();
  clock.advance(5);
  client.deliver("sdv/node/worker-node2/status", "offline"); // live Last Will
  assert.equal(promotions(client).length, 1, "promotion published at once");
  for (let i = 0; i < 5; i++) await Promise.resolve();
  assert.equal(executor.plans.length, 0, "no API work before PUBACK");
  client.releaseAcks();
  for (let i = 0; i < 5; i++) await Promise.resolve();
  assert.equal(executor.plans.length, 1);
  assert.equal(executor.fences.length, 1);
});

Deno.test("supervisor: a missing PUBACK delays the API work by a bound only", async () => {
  const executor = new DryRunExecutor();
  const { clock, client, beat } = await setup(executor);
  client.holdAcks = true;
  beat();
  client.deliver("sdv/node/worker-node2/status", "offline");
  clock.advance(4);
  for (let i = 0; i < 5; i++) await Promise.resolve();
  assert.equal(executor.plans.length, 0);
  clock.advance(2);
  for (let i = 0; i < 5; i++) await Promise.resolve();
  assert.equal(executor.plans.length, 1, "started after the 5 ms bound");
});

Deno.test("supervisor: arms before the executor is loaded; failures wait for the reconcile", async () => {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  const executor = new DryRunExecutor();
  let release!: () => void;
  const loaded = new Promise<void>((r) => (release = r));
  const events: SupervisorEvent[] = [];
  const sup = new Supervisor({
    config,
    client,
    executor: async () => {
      await loaded;
      return executor;
    },
    clock,
    onEvent: (e) => events.push(e),
  });
  let started = false;
  const starting = sup.start().then(() => (started = true));
  client.connect();
  await Promise.resolve();
  assert.ok(events.some((e) => e.type === "armed"), "armed without the executor");
  assert.equal(started, false);
  client.deliver("sdv/node/worker-node3/hb", '{"seq":1}');
  client.deliver("sdv/sensor/cam3/tick", '{"seq":1}');
  client.deliver("sdv/node/worker-node2/hb", '{"seq":1}');
  client.deliver("sdv/node/worker-node2/status", "offline");
  assert.equal(promotions(client).length, 0, "no decision before the persisted state is known");
  release();
  await starting;
  assert.equal(promotions(client).length, 1, "the deferred failure is decided after reconcile");
});

Deno.test("supervisor: right after a broker reconnect a Last Will waits for the deadline", async () => {
  const { clock, client, sup, beat } = await setup();
  beat();
  clock.advance(10);
  client.drop();
  clock.advance(1000);
  client.connect(); // broker back; node clients race their stale sessions
  client.deliver("sdv/node/worker-node2/status", "offline"); // takeover will of a live node
  assert.equal(sup.ingest.lastWillsDeferred, 1);
  beat(); // the node is alive and heartbeats
  clock.advance(20);
  beat();
  clock.advance(20);
  assert.equal(promotions(client).length, 0, "no failover of a live node");
  clock.advance(100); // past the quiet window: a Last Will is a fast path again
  beat();
  client.deliver("sdv/node/worker-node2/status", "offline");
  assert.equal(promotions(client).length, 1);
});
