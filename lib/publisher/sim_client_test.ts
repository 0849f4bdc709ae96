import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { SimNodeClient } from "./sim_client.ts";

const HB = "sdv/node/n/hb";

function setup(draws: number[]) {
  const clock = new FakeClock(0);
  const connection = new FakeMqttClient();
  connection.connect();
  let i = 0;
  const client = new SimNodeClient({
    connection,
    clock,
    heartbeatTopic: HB,
    random: () => draws[i++ % draws.length],
  });
  return { clock, connection, client };
}

Deno.test("SimNodeClient: jitter delays heartbeats in order (FIFO), other topics go at once", () => {
  const { clock, connection, client } = setup([0.9, 0.1]);
  client.jitterMaxMs = 10;
  client.publish(HB, "1", { qos: 0 }); // due at 9
  clock.advance(2);
  client.publish(HB, "2", { qos: 0 }); // drawn 3, but not before the first: due at 9
  client.publish("sdv/sensor/s/tick", "t", { qos: 0 });
  assert.deepEqual(connection.published.map((p) => p.payload), ["t"]);
  clock.advance(7);
  assert.deepEqual(connection.on_topic(HB).map((p) => p.payload), ["1", "2"]);
  assert.equal(client.heartbeatsSent, 2);
  assert.equal(client.lastHeartbeatAtMs, 9);
});

Deno.test("SimNodeClient: silenced, nothing goes out and publishAsync rejects", async () => {
  const { clock, connection, client } = setup([0.5]);
  client.jitterMaxMs = 10;
  client.publish(HB, "held", { qos: 0 });
  client.silencedBy = "node-hang:n@1s";
  clock.advance(10);
  const errors: (Error | undefined)[] = [];
  client.publish("sdv/app/w/n/hb", "x", { qos: 0 }, (e) => errors.push(e));
  await assert.rejects(client.publishAsync("sdv/node/n/status", "offline"), /node-hang:n@1s/);
  assert.deepEqual(connection.published, [], "the held heartbeat was dropped too");
  assert.match(String(errors[0]), /suppressed by fault node-hang/);
  assert.equal(client.heartbeatsSent, 0);
});
