import assert from "node:assert/strict";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { BrokerPair } from "./broker_pair.ts";

function setup() {
  const a = new FakeMqttClient();
  const b = new FakeMqttClient();
  a.echo = false;
  b.echo = false;
  let nowMs = 0;
  const pair = new BrokerPair({
    sessions: [a, b],
    labels: ["a", "b"],
    duplicateWindowMs: 1000,
    nowMs: () => nowMs,
  });
  const events: string[] = [];
  const messages: string[] = [];
  pair.on("connect", () => events.push("connect"));
  pair.on("close", () => events.push("close"));
  pair.on("offline", () => events.push("offline"));
  pair.on("reconnect", () => events.push("reconnect"));
  pair.on("error", (e) => events.push(`error:${e.message}`));
  pair.on(
    "message",
    (topic, payload) => messages.push(`${topic}=${new TextDecoder().decode(payload)}`),
  );
  const changes: string[] = [];
  pair.onBrokerChange((label, up, connected) => changes.push(`${label}:${up}:${connected}`));
  return { a, b, pair, events, messages, changes, advance: (ms: number) => nowMs += ms };
}

Deno.test("BrokerPair: the first copy of a message wins, the other broker's copy is dropped", () => {
  const { a, b, pair, messages } = setup();
  a.connect();
  b.connect();
  a.deliver("sdv/node/n1/hb", `{"seq":1}`);
  b.deliver("sdv/node/n1/hb", `{"seq":1}`);
  b.deliver("sdv/node/n1/hb", `{"seq":2}`); // b first this time
  a.deliver("sdv/node/n1/hb", `{"seq":2}`);
  a.deliver("sdv/node/n1/hb", `{"seq":3}`); // b lost this one
  assert.deepEqual(messages, [
    'sdv/node/n1/hb={"seq":1}',
    'sdv/node/n1/hb={"seq":2}',
    'sdv/node/n1/hb={"seq":3}',
  ]);
  assert.deepEqual(pair.stats, { delivered: 3, duplicates: 2, brokerLosses: 0, unconfirmed: 0 });
});

Deno.test("BrokerPair: a repeat from the same broker is delivered (only the other's copy is a duplicate)", () => {
  const { a, b, messages } = setup();
  a.connect();
  b.connect();
  a.deliver("sdv/wl/lane/promotion", "p1");
  a.deliver("sdv/wl/lane/promotion", "p1"); // e.g. resubscribed: the broker sent it again
  b.deliver("sdv/wl/lane/promotion", "p1"); // pairs with one of them
  assert.deepEqual(messages.length, 2);
});

Deno.test("BrokerPair: an equal message after the window is delivered again; other topics never collide", () => {
  const { a, b, messages, advance } = setup();
  a.connect();
  b.connect();
  a.deliver("t/x", "same");
  b.deliver("t/y", "same");
  advance(1001);
  b.deliver("t/x", "same"); // late copy (stalled broker): delivered
  assert.deepEqual(messages, ["t/x=same", "t/y=same", "t/x=same"]);
});

Deno.test("BrokerPair: the loss of one broker is not a close; the loss of both is, once", () => {
  const { a, b, pair, events, changes } = setup();
  a.connect();
  b.connect();
  assert.deepEqual(events, ["connect", "connect"]);
  a.drop();
  assert.ok(pair.connected);
  assert.deepEqual(events, ["connect", "connect"]);
  assert.deepEqual(changes, ["a:true:1", "b:true:2", "a:false:1"]);
  b.drop();
  b.drop(); // mqtt.js emits close on every failed reconnect
  assert.ok(!pair.connected);
  assert.deepEqual(events.filter((e) => e === "close").length, 1);
  assert.deepEqual(changes.slice(2), ["a:false:1", "b:false:0"]);
  b.emit("reconnect");
  assert.deepEqual(events.at(-1), "reconnect");
  a.connect();
  assert.deepEqual(events.at(-1), "connect");
  assert.deepEqual(changes.at(-1), "a:true:1");
  assert.deepEqual(pair.stats.brokerLosses, 1);
  // a reconnect attempt of the other broker while one is connected is not forwarded
  b.emit("reconnect");
  assert.deepEqual(events.at(-1), "connect");
});

Deno.test("BrokerPair: publishes to both; the callback runs once, on the first acknowledgement", async () => {
  const { a, b, pair } = setup();
  a.connect();
  b.connect();
  a.holdAcks = true;
  let acks = 0;
  pair.publish("t", "m", { qos: 1, retain: true }, (error) => {
    assert.deepEqual(error, undefined);
    acks++;
  });
  assert.deepEqual(a.published.length, 1);
  assert.deepEqual(b.published.length, 1);
  assert.deepEqual(b.published[0].options, { qos: 1, retain: true });
  assert.deepEqual(acks, 1); // b acked
  a.releaseAcks();
  assert.deepEqual(acks, 1);
  await pair.publishAsync("t2", "m2", { qos: 1 });
  assert.deepEqual(a.on_topic("t2").length + b.on_topic("t2").length, 2);
});

Deno.test("BrokerPair: a broker that is down still gets the message (its session queues QoS 1)", () => {
  const { a, b, pair } = setup();
  a.connect();
  pair.publish("t", "m", { qos: 1 });
  assert.deepEqual(b.published.map((p) => p.topic), ["t"]);
});

Deno.test("BrokerPair: the callback reports the error when no connected broker took the message", () => {
  const a = new FakeMqttClient();
  const b = new FakeMqttClient();
  const failing = (client: FakeMqttClient) => {
    client.publish = (_t, _m, _o, cb) => {
      cb?.(new Error("refused"));
      return client;
    };
  };
  failing(a);
  failing(b);
  a.connect();
  b.connect();
  const pair = new BrokerPair({ sessions: [a, b] });
  const errors: (Error | undefined)[] = [];
  pair.publish("t", "m", { qos: 1 }, (e) => errors.push(e));
  assert.deepEqual(errors.length, 1);
  assert.deepEqual(errors[0]?.message, "refused");
});

Deno.test("BrokerPair: subscribes on both and resolves on the first; errors carry the broker", async () => {
  const { a, b, pair, events } = setup();
  b.subscribeAsync = () => Promise.reject(new Error("not authorized"));
  await pair.subscribeAsync(["x", "y"], { qos: 1 });
  assert.ok(a.subscribed.has("x") && a.subscribed.has("y"));
  a.subscribeAsync = () => Promise.reject(new Error("not authorized"));
  await assert.rejects(() => pair.subscribeAsync("z", { qos: 1 }));
  a.emit("error", new Error("ECONNREFUSED"));
  assert.deepEqual(events.at(-1), "error:a: ECONNREFUSED");
});

Deno.test("BrokerPair: endAsync ends both sessions", async () => {
  const { a, b, pair } = setup();
  a.connect();
  b.connect();
  await pair.endAsync(true);
  assert.deepEqual([a.endCalls, b.endCalls], [[true], [true]]);
  assert.ok(!pair.connected);
});

Deno.test("BrokerPair: a message that needs agreement is delivered once both brokers delivered it; one broker's copy alone is dropped after the window", () => {
  const a = new FakeMqttClient();
  const b = new FakeMqttClient();
  let nowMs = 0;
  const pair = new BrokerPair({
    sessions: [a, b],
    duplicateWindowMs: 1000,
    nowMs: () => nowMs,
    needsAgreement: (topic, payload) =>
      topic.endsWith("/status") && new TextDecoder().decode(payload) === "offline",
  });
  const got: string[] = [];
  pair.on("message", (topic, payload) => got.push(`${topic}=${new TextDecoder().decode(payload)}`));
  a.connect();
  b.connect();
  // a node crashed: both brokers publish its will, 3 ms apart → one delivery, at the second copy
  a.deliver("sdv/node/n1/status", "offline");
  assert.deepEqual(got, [], "held for the other broker");
  nowMs += 3;
  b.deliver("sdv/node/n1/status", "offline");
  assert.deepEqual(got, ["sdv/node/n1/status=offline"]);
  b.deliver("sdv/node/n1/status", "offline"); // a repeat: duplicate
  a.deliver("sdv/node/n1/status", "offline");
  assert.equal(got.length, 1);
  // n2 lost only its connection to broker a: a's will alone never counts
  nowMs += 5000;
  a.deliver("sdv/node/n2/status", "offline");
  nowMs += 1001;
  b.deliver("sdv/node/n2/hb", '{"seq":7}'); // alive through b
  a.deliver("sdv/node/n3/status", "online"); // no agreement needed: delivered at once
  assert.deepEqual(got.slice(1), ['sdv/node/n2/hb={"seq":7}', "sdv/node/n3/status=online"]);
  b.deliver("sdv/node/n9/status", "offline"); // triggers the expiry of stale waiting copies
  assert.equal(pair.stats.unconfirmed, 1);
});

Deno.test("BrokerPair: with one broker connected one copy suffices; a copy waiting when the other broker is lost is not released (it may be stale)", () => {
  const a = new FakeMqttClient();
  const b = new FakeMqttClient();
  const pair = new BrokerPair({
    sessions: [a, b],
    needsAgreement: (topic) => topic.endsWith("/status"),
  });
  const got: string[] = [];
  pair.on("message", (topic) => got.push(topic));
  a.connect();
  a.deliver("n1/status", "offline"); // b never connected
  assert.deepEqual(got, ["n1/status"]);
  b.connect();
  a.deliver("n2/status", "offline");
  assert.deepEqual(got, ["n1/status"], "held");
  b.drop(); // b lost: the waiting copy is not released (the node's deadline decides)
  assert.deepEqual(got, ["n1/status"]);
});
