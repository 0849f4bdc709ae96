import assert from "node:assert/strict";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { buildTopology } from "../topology/topology.ts";
import { MAX_EPOCH } from "../wire/wire.ts";
import { demoConfig } from "./demo_config.ts";
import { watchPromotions } from "./promotion_watcher.ts";

const config = demoConfig("mqtt://127.0.0.1:1883");
const topology = buildTopology(config);
const TOPIC = "sdv/workload/lane-detection/promotion";

/** A promotion of lane-detection as the demo supervisor issues it, with `overrides`. */
function promotion(overrides: Record<string, unknown>): string {
  return JSON.stringify({
    v: 1,
    workload: "lane-detection",
    namespace: "default",
    activeNode: "worker-node3",
    activeDeployment: "lane-detection-standby",
    failedNode: "worker-node2",
    epoch: 1,
    reason: "node-expired",
    issuer: "supervisor",
    issuedAt: "2026-12-02T00:00:00.000Z",
    ...overrides,
  });
}

async function watcher() {
  const client = new FakeMqttClient();
  client.connected = true;
  const w = await watchPromotions({
    config,
    topology,
    clock: new FakeClock(0),
    openClient: () => client,
  });
  return { client, w };
}

Deno.test("the app side obeys no promotion from an issuer that is no supervisor of the config (`mallory`)", async () => {
  const { client, w } = await watcher();
  assert.ok(client.subscribed.has(TOPIC));
  client.deliver(TOPIC, promotion({ epoch: 99, issuer: "mallory" }), { retain: true });
  assert.equal(w.received.length, 0);
  assert.deepEqual(w.dropped, { malformed: 0, refused: 1 });
  client.deliver(TOPIC, promotion({ epoch: 1 }));
  assert.deepEqual(w.received.map((r) => r.promotion.epoch), [1], "the real one is obeyed");
  await w.close();
});

Deno.test("the app side refuses `nowhere`, an epoch above MAX_EPOCH and a reused epoch", async () => {
  const { client, w } = await watcher();
  client.deliver(TOPIC, promotion({ epoch: 5, activeNode: "nowhere" }));
  client.deliver(TOPIC, promotion({ epoch: MAX_EPOCH + 1 }));
  client.deliver(TOPIC, promotion({ epoch: 2 }));
  client.deliver(TOPIC, promotion({ epoch: 2, activeNode: "worker-node2" }));
  client.deliver(TOPIC, promotion({ epoch: 2 })); // the same again: stale, not refused
  client.deliver(TOPIC, "");
  assert.deepEqual(w.received.map((r) => [r.promotion.epoch, r.promotion.activeNode]), [
    [2, "worker-node3"],
  ]);
  assert.deepEqual(w.dropped, { malformed: 1, refused: 2 });
  await w.close();
});
