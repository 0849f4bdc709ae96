/**
 * Fuzz of the node agent: ≥ 100,000 hostile sensor ticks and ≥ 100,000 hostile promotions (the
 * two topic kinds it reads), plus unknown topics, through the real `NodeAgent` on the fake MQTT
 * client and the fake clock. Every message is accepted (and valid per the reference oracle of
 * `tests/fuzz/payloads.ts`) or counted (`malformed`, `refusedPromotions`) or ignored on purpose
 * (retained ticks, empty payloads that clear a retained promotion, stale promotions, unknown
 * topics). A promotion that is not well-formed or is refused (unknown issuer, an active node that
 * is not one of the workload's, an epoch held with another node) never moves a workload, never
 * reaches a listener and never changes the epoch the agent acts on; a tick that is not accepted
 * never makes a stale sensor fresh again.
 *
 * Reproduce a failure with the printed seed: `FUZZ_SEED=<seed> deno test -A tests/agent_fuzz_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../lib/config/load.ts";
import { buildTopology } from "../lib/topology/topology.ts";
import { NodeAgent, type PromotionEvent } from "../lib/agent/agent.ts";
import { FakeClock } from "./fakes/fake_clock.ts";
import { FakeMqttClient } from "./fakes/fake_mqtt.ts";
import { fuzzSeed, hexdump, Rand, utf8 } from "./fuzz/random.ts";
import { beatPayload, promotionPayload, refBeat, refObey, refPromotion } from "./fuzz/payloads.ts";

/** Messages per topic kind. */
const PER_KIND = 100_000;
/** Ticks of the freshness phase (each one after the sensor went stale). */
const FRESHNESS_TICKS = 2_000;

Deno.test(`fuzz: node agent, ${PER_KIND} hostile ticks and ${PER_KIND} hostile promotions`, async () => {
  const seed = fuzzSeed("agent fuzz");
  const r = new Rand(seed);
  const config = parseConfig(
    Deno.readTextFileSync(new URL("../config/fast.yaml", import.meta.url)),
    "fast.yaml",
  );
  const topology = buildTopology(config);
  const node = topology.node("worker-node2")!;
  assert.ok(node.requiredSensors.length > 0 && node.placements.length > 0);
  const clock = new FakeClock(1000);
  const client = new FakeMqttClient();
  client.echo = false;
  client.connected = true;
  const agent = new NodeAgent({ node, client, clock });
  const events: PromotionEvent[] = [];
  agent.onPromotion((e) => events.push(e));
  agent.start();

  const nodes = topology.nodes.map((n) => n.name);
  const names = topology.workloads.map((w) => w.name);
  const known = new Set([
    ...node.requiredSensors.map((s) => s.topic),
    ...node.placements.map((p) => p.workload.promotionTopic),
  ]);
  const lastEpoch = new Map<string, number>();
  const active = new Map<string, string>(); // workload → active node per the highest epoch seen
  const counts = { ticks: 0, promotions: 0, unknown: 0 };
  let malformed = 0;
  let refused = 0;
  let ignored = 0;
  let accepted = 0;
  let sent = 0;

  const deliver = (topic: string, bytes: Uint8Array, retain: boolean, check: () => void) => {
    try {
      client.emit("message", topic, bytes, { retain });
    } catch (error) {
      assert.fail(`exception escaped: ${error} (seed ${seed}, message ${sent}, ${topic})`);
    }
    sent++;
    check();
  };

  for (let i = 0; i < 2 * PER_KIND; i++) {
    const retain = r.chance(0.1);
    let topic: string;
    let bytes: Uint8Array;
    let check: () => void;
    const where = () =>
      `seed ${seed}, message ${sent}, topic ${topic}, retain ${retain}, payload ${hexdump(bytes)}`;
    const before = agent.stats.malformed;
    const refusedBefore = agent.stats.refusedPromotions;
    const eventsBefore = events.length;
    const activeBefore = agent.activeWorkloads.join(",");
    if (i % 2 === 0) {
      const sensor = r.pick(node.requiredSensors);
      topic = sensor.topic;
      bytes = beatPayload(r);
      const bad = !retain && refBeat(bytes) === undefined;
      counts.ticks++;
      check = () => {
        assert.equal(agent.stats.malformed - before, bad ? 1 : 0, `tick counted (${where()})`);
        if (retain) ignored++;
        else if (bad) malformed++;
        else accepted++;
      };
    } else {
      const placement = r.pick(node.placements);
      const w = placement.workload.name;
      topic = placement.workload.promotionTopic;
      const epoch = Math.max(1, (lastEpoch.get(w) ?? 0) + r.int(4) - 1);
      // MAX_EPOCH only at the end: once seen, every later promotion of that workload is stale
      const others = names.filter((x) => x !== w);
      const own = [placement.workload.primary.node.name, placement.workload.standby.node.name];
      const vehicle = [...own, ...nodes.filter((n) => !own.includes(n))];
      bytes = promotionPayload(
        r,
        w,
        others,
        vehicle,
        epoch,
        i > 2 * PER_KIND * 0.95,
        config.supervisor.id,
      );
      const p = refPromotion(bytes, w);
      const empty = bytes.length === 0;
      counts.promotions++;
      check = () => {
        assert.equal(
          agent.stats.malformed - before,
          !p && !empty ? 1 : 0,
          `promotion counted (${where()})`,
        );
        if (!p) {
          if (empty) ignored++;
          else malformed++;
          assert.equal(
            events.length,
            eventsBefore,
            `a malformed promotion reached a listener (${where()})`,
          );
          assert.equal(
            agent.activeWorkloads.join(","),
            activeBefore,
            `a malformed promotion moved a workload (${where()})`,
          );
          return;
        }
        const last = lastEpoch.get(w) ?? 0;
        const obey = refObey(p, {
          issuers: [config.supervisor.id],
          nodes: own,
          held: { epoch: last, activeNode: active.get(w) ?? own[0] },
        });
        assert.equal(
          agent.stats.refusedPromotions - refusedBefore,
          obey === "refused" ? 1 : 0,
          `refusal counted (${where()})`,
        );
        if (obey === "refused") {
          refused++;
          assert.equal(
            events.length,
            eventsBefore,
            `a refused promotion reached a listener (${where()})`,
          );
          assert.equal(
            agent.activeWorkloads.join(","),
            activeBefore,
            `a refused promotion moved a workload (${where()})`,
          );
          return;
        }
        if (obey === "stale") {
          ignored++;
          assert.equal(
            events.length,
            eventsBefore,
            `a stale promotion reached a listener (${where()})`,
          );
          assert.equal(
            agent.activeWorkloads.join(","),
            activeBefore,
            `a stale promotion moved a workload (${where()})`,
          );
          return;
        }
        accepted++;
        lastEpoch.set(w, p.epoch);
        active.set(w, p.activeNode);
        assert.equal(
          events.length,
          eventsBefore + 1,
          `a newer promotion was not delivered (${where()})`,
        );
        const e = events.at(-1)!;
        assert.equal(e.promotion.epoch, p.epoch, where());
        assert.equal(e.fenced, p.activeNode !== node.name, where());
      };
    }
    deliver(topic, bytes, retain, check);
    // The agent's view of which workloads are active here follows the highest epochs only.
    const expectedActive = node.placements
      .map((p) => p.workload)
      .filter((w) => (active.get(w.name) ?? w.primary.node.name) === node.name)
      .map((w) => w.name);
    assert.deepEqual(agent.activeWorkloads, expectedActive, where());

    if (r.chance(0.02)) {
      // an unknown topic (a mutation of a known one): ignored, not counted, no effect
      let unknown = new TextDecoder().decode(r.mutate(utf8(topic)));
      if (known.has(unknown)) unknown += "/x";
      const payload = r.chance(0.5) ? beatPayload(r) : bytes;
      const malformedBefore = agent.stats.malformed;
      const eventsBefore = events.length;
      counts.unknown++;
      deliver(unknown, payload, r.chance(0.1), () => {
        const at = `seed ${seed}, message ${sent}, unknown topic ${unknown}`;
        assert.equal(agent.stats.malformed, malformedBefore, at);
        assert.equal(events.length, eventsBefore, at);
        ignored++;
      });
    }
    if (i % 500 === 0) clock.advance(r.int(40)); // heartbeat slots run, the status is re-evaluated
  }

  // Freshness: with the sensor stale, only an accepted tick (valid, not retained) makes the node
  // `online` again at the next heartbeat slot.
  const sensor = node.requiredSensors[0];
  const period = node.periodMs;
  let revived = 0;
  for (let k = 0; k < FRESHNESS_TICKS; k++) {
    clock.advance(sensor.timeoutMs + period + 1);
    assert.equal(agent.stats.status.state, "degraded", `seed ${seed}: ${sensor.name} not stale`);
    const retain = r.chance(0.1);
    const bytes = beatPayload(r);
    const valid = !retain && refBeat(bytes) !== undefined;
    const before = agent.stats.malformed;
    counts.ticks++;
    deliver(sensor.topic, bytes, retain, () => {
      if (valid) accepted++;
      else if (retain) ignored++;
      else malformed++;
      assert.equal(agent.stats.malformed - before, !retain && !valid ? 1 : 0);
    });
    clock.advance(period);
    assert.equal(
      agent.stats.status.state,
      valid ? "online" : "degraded",
      `seed ${seed}, freshness tick ${k}, retain ${retain}, payload ${hexdump(bytes)}`,
    );
    if (valid) revived++;
  }
  assert.ok(revived > 0 && revived < FRESHNESS_TICKS, `${revived} ticks revived the sensor`);

  assert.equal(malformed + refused + ignored + accepted, sent);
  assert.equal(agent.stats.malformed, malformed, "malformed ticks and promotions, exactly");
  assert.equal(agent.stats.refusedPromotions, refused, "refused promotions, exactly");
  assert.ok(counts.ticks >= PER_KIND && counts.promotions >= PER_KIND, JSON.stringify(counts));
  console.log(
    `agent fuzz: ${sent} messages (ticks ${counts.ticks}, promotions ${counts.promotions}, ` +
      `unknown topics ${counts.unknown}); accepted ${accepted}, malformed ${malformed}, ` +
      `refused ${refused}, ` +
      `ignored ${ignored}; heartbeats ${agent.stats.heartbeatsSent}, stand-downs ${agent.stats.fenced}`,
  );
  await agent.stop();
});
