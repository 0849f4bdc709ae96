/**
 * A flood generator for tests (its own process, so it does not share the test's event loop):
 * publishes as fast as it can to one topic, and oversized payloads to another, until killed.
 *
 * Usage: deno run --allow-net --allow-env flood.ts URL FLOOD_TOPIC BIG_TOPIC BIG_BYTES BIG_EVERY_MS
 *
 * @module
 */
import mqtt from "mqtt";

const [url, floodTopic, bigTopic, bigBytes, bigEveryMs] = Deno.args;
const client = await mqtt.connectAsync(url, {
  clientId: `flood-${crypto.randomUUID().slice(0, 6)}`,
});
const big = new Uint8Array(Number(bigBytes)).fill(0x20);
setInterval(
  () => client.publish(bigTopic, big as unknown as Buffer, { qos: 0 }),
  Number(bigEveryMs),
);
let seq = 0;
const burst = () => {
  // bounded batches, yielding between them, so the client's socket writes keep up
  for (let i = 0; i < 500; i++) client.publish(floodTopic, `{"seq":${++seq}}`, { qos: 0 });
  setTimeout(burst, 1);
};
burst();
