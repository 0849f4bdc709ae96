import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { createLogger } from "../log/log.ts";
import type { StatusSnapshot } from "../wire/state_message.ts";
import { StatePublisher } from "./state_publisher.ts";

const snapshot = (id: string) => ({ v: 1, supervisor: { id } }) as unknown as StatusSnapshot;

function setup(opts: { maxBytes?: number; connected?: boolean } = {}) {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  if (opts.connected !== false) client.connect();
  const lines: string[] = [];
  const log = createLogger({ format: "json", level: "debug", write: (l) => lines.push(l) }, {});
  let builds = 0;
  const publisher = new StatePublisher({
    clock,
    client,
    topic: "sdv/supervisor/s/state",
    intervalMs: 1000,
    snapshot: () => (builds++, snapshot("s".repeat(200))),
    log,
    coalesceMs: 20,
    maxBytes: opts.maxBytes,
  });
  return { clock, client, publisher, lines, builds: () => builds };
}

Deno.test("state publisher: many changes give one publish, within the coalescing window but not sooner than the least gap; period resumes after it", () => {
  const { clock, client, publisher, builds } = setup();
  publisher.start();
  clock.advance(0);
  assert.equal(client.published.length, 1);
  for (let i = 0; i < 50; i++) publisher.changed(); // e.g. 50 transitions of one failover
  assert.equal(builds(), 1, "changed() builds nothing itself");
  clock.advance(249);
  assert.equal(client.published.length, 1, "not sooner than 250 ms after the last publish");
  clock.advance(1);
  assert.equal(client.published.length, 2);
  clock.advance(500); // long after the last publish: a change goes out within the window
  publisher.changed();
  clock.advance(20);
  assert.equal(client.published.length, 3);
  clock.advance(999);
  assert.equal(client.published.length, 3);
  clock.advance(1);
  assert.equal(client.published.length, 4, "the period counts from the last publish");
  publisher.stop();
  publisher.changed();
  clock.advance(5000);
  assert.equal(client.published.length, 4);
});

Deno.test("state publisher: a payload over the limit is not published, logged once, and no longer built", () => {
  const { clock, client, publisher, lines, builds } = setup({ maxBytes: 10 });
  publisher.start();
  clock.advance(3000);
  publisher.changed();
  clock.advance(3000);
  assert.equal(client.published.length, 0);
  assert.equal(lines.filter((l) => l.includes("state-too-large")).length, 1);
  assert.ok(publisher.lastBytes > 10);
  assert.equal(builds(), 1, "built once: the topology does not shrink");
});

Deno.test("state publisher: nothing is queued while disconnected", () => {
  const { clock, client, publisher } = setup({ connected: false });
  publisher.start();
  clock.advance(3000);
  assert.equal(client.published.length, 0);
  client.connect();
  clock.advance(1000);
  assert.equal(client.published.length, 1);
});
