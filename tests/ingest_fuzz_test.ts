/**
 * Fuzz of the supervisor's ingest: ≥ 100,000 hostile payloads on every topic kind it reads (node
 * heartbeat, sensor tick, app heartbeat, node status, promotion, barrier) plus unknown topics
 * (mutations of known ones, and the supervisor's own status topic, which it does not read), through
 * the real supervisor (`Supervisor` → `Ingest` → `Watchdog` → `FailoverPolicy` → coordinator) on
 * the fake MQTT client and the fake clock. Every message must be accepted (and valid per the
 * reference oracle of `tests/fuzz/payloads.ts`) or counted by exactly one counter, and a message
 * that is not accepted must change nothing. Meanwhile time passes and targets fall silent and come
 * back, so expiries, barriers, failovers and adoptions happen between the hostile messages.
 *
 * Reproduce a failure with the printed seed: `FUZZ_SEED=<seed> deno test -A tests/ingest_fuzz_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseConfig } from "../lib/config/load.ts";
import { buildTopology, type Target, type Workload } from "../lib/topology/topology.ts";
import { Supervisor } from "../lib/runtime/supervisor.ts";
import { FakeClock } from "./fakes/fake_clock.ts";
import { FakeMqttClient } from "./fakes/fake_mqtt.ts";
import { FakeReconciler } from "./fakes/fake_reconciler.ts";
import { fuzzSeed, hexdump, Rand, utf8 } from "./fuzz/random.ts";
import {
  barrierPayload,
  beatPayload,
  type Kind,
  type ObeyScope,
  promotionPayload,
  refPromotion,
  refStatus,
  statusPayload,
  type Verdict,
  verdict,
} from "./fuzz/payloads.ts";

/** Messages per topic kind. */
const PER_KIND = 100_000;
/** Messages per incident (silence for the first third), ≈ 1.7 s of fake time. */
const PHASE = 9_000;
const KINDS: readonly Kind[] = [
  "nodeHeartbeat",
  "sensorTick",
  "appHeartbeat",
  "nodeStatus",
  "promotion",
  "barrier",
];

interface Route {
  kind: Kind;
  topic: string;
  target?: Target;
  workload?: Workload;
}

/** The topic kind of a supervised target's heartbeat topic. */
function beatKind(t: Target): Kind {
  return t.kind === "node" ? "nodeHeartbeat" : t.kind === "sensor" ? "sensorTick" : "appHeartbeat";
}

Deno.test(`fuzz: supervisor ingest, ${PER_KIND} hostile payloads per topic kind`, async () => {
  const seed = fuzzSeed("ingest fuzz");
  const r = new Rand(seed);
  const config = parseConfig(
    Deno.readTextFileSync(new URL("../config/fast.yaml", import.meta.url)),
    "fast.yaml",
  );
  const topology = buildTopology(config);
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true; // the barrier comes back at once, as on a quiet broker
  let blocked = 0;
  const sup = new Supervisor({
    config,
    topology,
    client,
    onEvent: (e) => {
      if (e.type === "blocked") blocked++;
    },
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock,
  });
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;

  const routes = new Map<Kind, Route[]>(KINDS.map((k) => [k, []]));
  for (const t of topology.targets) {
    routes.get(beatKind(t))!.push({ kind: beatKind(t), topic: t.topic, target: t });
  }
  for (const n of topology.nodes) {
    routes.get("nodeStatus")!.push({ kind: "nodeStatus", topic: n.statusTopic });
  }
  for (const w of topology.workloads) {
    routes.get("promotion")!.push({ kind: "promotion", topic: w.promotionTopic, workload: w });
  }
  const ownTopics = topology.supervisorTopics(config.supervisor.id);
  routes.get("barrier")!.push({ kind: "barrier", topic: ownTopics.barrier });
  for (const [kind, list] of routes) assert.ok(list.length > 0, `a topic of kind ${kind}`);
  const known = new Set([...routes.values()].flat().map((x) => x.topic));
  assert.ok(!known.has(ownTopics.status), "the supervisor does not read its own status");
  const sensors = topology.sensors.map((s) => s.name);
  const nodes = topology.nodes.map((n) => n.name);
  const workloads = topology.workloads.map((w) => w.name);

  const expected: Record<Verdict, number> = {
    accepted: 0,
    unknownTopic: 0,
    oversized: 0,
    retainedBeats: 0,
    malformed: 0,
    forgedBarriers: 0,
    staleBarriers: 0,
    refusedPromotions: 0,
  };
  const perKind = new Map<Kind | "unknown", number>();
  const stats = sup.ingest;
  const counters = () => [
    stats.malformed,
    stats.oversized,
    stats.unknownTopic,
    stats.retainedBeats,
    stats.forgedBarriers,
    stats.staleBarriers,
    stats.refusedPromotions,
  ];
  const want: Record<Verdict, number[]> = {
    accepted: [0, 0, 0, 0, 0, 0, 0],
    oversized: [1, 1, 0, 0, 0, 0, 0], // an oversized payload also counts as malformed
    malformed: [1, 0, 0, 0, 0, 0, 0],
    unknownTopic: [0, 0, 1, 0, 0, 0, 0],
    retainedBeats: [0, 0, 0, 1, 0, 0, 0],
    forgedBarriers: [0, 0, 0, 0, 1, 0, 0],
    staleBarriers: [0, 0, 0, 0, 0, 1, 0],
    refusedPromotions: [0, 0, 0, 0, 0, 0, 1],
  };
  /** The supervisor's barrier nonce, read from its own barriers (a sentinel before the first). */
  const nonce = () => {
    const last = client.on_topic(ownTopics.barrier).at(-1);
    return last ? JSON.parse(last.payload).nonce as string : "\u0000not yet known";
  };
  /** What the supervisor may obey for `w`, and what it holds (its highest epoch). */
  const scopeOf = (w: Workload): ObeyScope => {
    const d = sup.policy.workload(w);
    return {
      issuers: [config.supervisor.id],
      nodes: [w.primary.node.name, w.standby.node.name],
      held: { epoch: d.epoch, activeNode: w[d.active].node.name },
    };
  };
  let sent = 0;

  const deliver = (
    kind: Kind | "unknown",
    route: Route | undefined,
    topic: string,
    bytes: Uint8Array,
    retain: boolean,
  ) => {
    const v: Verdict = route
      ? verdict(route.kind, bytes, retain, {
        workload: route.workload?.name,
        scope: route.workload ? scopeOf(route.workload) : undefined,
        nonce: nonce(),
        inFlight: (seq) => sup.watchdog.isBarrierInFlight(seq),
      })
      : "unknownTopic";
    const where = () =>
      `seed ${seed}, message ${sent}, kind ${kind}, topic ${topic}, retain ${retain}, payload ${
        hexdump(bytes)
      }`;
    const before = counters();
    const heartbeats = sup.watchdog.stats.heartbeats;
    const desired = topology.workloads.map((w) => sup.policy.workload(w));
    const target = route?.target ? sup.watchdog.describe(route.target.index)! : undefined;
    try {
      client.emit("message", topic, bytes, { retain });
    } catch (error) {
      assert.fail(`exception escaped: ${error} (${where()})`);
    }
    sent++;
    expected[v]++;
    perKind.set(kind, (perKind.get(kind) ?? 0) + 1);
    const delta = counters().map((x, i) => x - before[i]);
    assert.deepEqual(
      delta,
      want[v],
      `counters [malformed, oversized, unknownTopic, retainedBeats, forgedBarriers, ` +
        `staleBarriers, refusedPromotions] for a ${v} message (${where()})`,
    );
    topology.workloads.forEach((w, i) => {
      const now = sup.policy.workload(w);
      assert.ok(now.epoch >= desired[i].epoch, `epoch of ${w.name} went down (${where()})`);
      if (v !== "accepted") {
        assert.ok(
          now === desired[i],
          `a rejected message changed ${w.name}'s desired state (${where()})`,
        );
      }
    });
    if (v !== "accepted") {
      assert.equal(
        sup.watchdog.stats.heartbeats,
        heartbeats,
        `a rejected message was a heartbeat (${where()})`,
      );
      if (target) {
        const now = sup.watchdog.describe(route!.target!.index)!;
        assert.equal(
          now.deadlineMs,
          target.deadlineMs,
          `a rejected message moved a deadline (${where()})`,
        );
        assert.equal(now.lastHeartbeatAtMs, target.lastHeartbeatAtMs, where());
      }
    } else if (target) {
      const now = sup.watchdog.describe(route!.target!.index)!;
      assert.equal(
        now.lastHeartbeatAtMs,
        clock.nowMs(),
        `an accepted heartbeat was not recorded (${where()})`,
      );
    } else if (kind === "promotion") {
      const p = refPromotion(bytes, route!.workload!.name)!;
      const i = topology.workloads.indexOf(route!.workload!);
      assert.equal(
        sup.policy.workload(route!.workload!).epoch,
        Math.max(desired[i].epoch, p.epoch),
        `an accepted promotion's epoch was not adopted (${where()})`,
      );
    }
  };

  // Targets that heartbeat with valid payloads between the hostile ones; the others are silent
  // (hostile payloads go to living targets only, or a valid one would revive a silent target).
  const living = new Set(topology.targets);
  const beatLiving = () => {
    for (const t of living) {
      const route = { kind: beatKind(t), topic: t.topic, target: t };
      deliver(route.kind, route, t.topic, utf8(`{"seq":${sent}}`), false);
    }
  };
  const routeOf = (kind: Kind, alive: boolean): Route => {
    const all = routes.get(kind)!;
    const some = all.filter((x) => !x.target || living.has(x.target) === alive);
    return r.pick(some.length > 0 ? some : all);
  };
  const silentNodes = () => topology.nodes.filter((n) => !living.has(n));

  const total = PER_KIND * KINDS.length;
  for (let i = 0; i < total; i++) {
    if (i % PHASE === 0) {
      // a new incident: one to three (rarely no) targets fall silent…
      for (let k = r.int(3) + (r.chance(0.9) ? 1 : 0); k > 0; k--) {
        living.delete(r.pick(topology.targets));
      }
    } else if (i % PHASE === PHASE / 3) {
      // …and come back, with time to recover before the next one
      for (const t of topology.targets) living.add(t);
    }
    const kind = KINDS[i % KINDS.length];
    let route = routeOf(kind, true);
    let bytes: Uint8Array;
    switch (kind) {
      case "nodeStatus": {
        bytes = statusPayload(r, sensors);
        // A valid `draining` or `offline` ends a node's supervision or expires it at once: only a
        // silent node says that (else no node would stay OK long enough to be failed over).
        const state = refStatus(bytes);
        if (state === "draining" || state === "offline") {
          if (silentNodes().length > 0) route = routeOf(kind, false);
          else bytes = utf8("online");
        }
        break;
      }
      case "promotion": {
        const w = route.workload!;
        // mostly stale epochs (accepted, nothing to adopt); rarely a newer one, which is adopted
        // (a restarted or other supervisor): too many would leave no failover to the watchdog
        const current = sup.policy.workload(w).epoch;
        const epoch = current < 2 || r.chance(0.003)
          ? current + 1 + r.int(2)
          : 1 + r.int(current - 1);
        // MAX_EPOCH only at the end: once adopted, that workload never fails over again
        const others = workloads.filter((x) => x !== w.name);
        const own = [w.primary.node.name, w.standby.node.name];
        const vehicle = [...own, ...nodes.filter((n) => !own.includes(n))];
        bytes = promotionPayload(
          r,
          w.name,
          others,
          vehicle,
          epoch,
          i > total * 0.95,
          config.supervisor.id,
        );
        break;
      }
      case "barrier": {
        const latest = sup.watchdog.stats.barriers;
        const seq = r.chance(0.5) ? Math.max(0, latest - 1 + r.int(3)) : r.int(1e6);
        const ours = nonce();
        bytes = barrierPayload(r, seq, ours.length === 32 ? ours : "f".repeat(32));
        break;
      }
      default:
        bytes = beatPayload(r);
    }
    deliver(kind, route, route.topic, bytes, r.chance(0.1));
    if (i % 7 === 0) {
      // an unknown topic: a mutation of a known one, or the supervisor's own status topic
      let topic = r.chance(0.1)
        ? ownTopics.status
        : new TextDecoder().decode(r.mutate(utf8(route.topic)));
      if (known.has(topic)) topic += "/x";
      deliver("unknown", undefined, topic, beatPayload(r), r.chance(0.1));
    }
    if (i % 50 === 0) {
      // time passes: the silent targets expire, the others heartbeat
      beatLiving();
      clock.advance(r.int(20));
    }
    if (i % 2000 === 0) { for (let k = 0; k < 10; k++) await Promise.resolve(); }
  }

  // Every message is accepted or counted, exactly.
  assert.equal(
    stats.unknownTopic + stats.retainedBeats + stats.malformed + stats.forgedBarriers +
      stats.staleBarriers + stats.refusedPromotions,
    sent - expected.accepted,
  );
  assert.equal(stats.forgedBarriers, expected.forgedBarriers);
  assert.equal(stats.staleBarriers, expected.staleBarriers);
  assert.equal(stats.refusedPromotions, expected.refusedPromotions);
  assert.equal(stats.oversized, expected.oversized);
  assert.equal(stats.malformed, expected.malformed + expected.oversized);
  assert.equal(stats.unknownTopic, expected.unknownTopic);
  assert.equal(stats.retainedBeats, expected.retainedBeats);
  for (const kind of KINDS) assert.ok(perKind.get(kind)! >= PER_KIND, kind);

  // What the supervisor published itself is well-formed: per workload, epochs strictly grow.
  let failovers = 0;
  for (const w of topology.workloads) {
    const published = client.on_topic(w.promotionTopic).map((p) => p.payload);
    let last = 0;
    for (const payload of published) {
      const p = refPromotion(utf8(payload), w.name);
      assert.ok(p, `seed ${seed}: the supervisor published a malformed promotion: ${payload}`);
      assert.ok(p.epoch > last, `seed ${seed}: epoch ${p.epoch} after ${last}`);
      last = p.epoch;
      failovers++;
    }
  }
  // The run is not degenerate: the hostile messages met expiries and failovers.
  const expiries = sup.watchdog.stats.expiries;
  assert.ok(
    expiries >= 10 && failovers >= 10,
    `seed ${seed}: ${expiries} expiries, ${failovers} failovers`,
  );
  console.log(
    `ingest fuzz: ${sent} messages (${[...perKind].map(([k, n]) => `${k} ${n}`).join(", ")}); ` +
      `accepted ${expected.accepted}, malformed ${expected.malformed}, oversized ${expected.oversized}, ` +
      `retained beats ${expected.retainedBeats}, unknown topic ${expected.unknownTopic}, ` +
      `forged barriers ${expected.forgedBarriers}, stale barriers ${expected.staleBarriers}, ` +
      `refused promotions ${expected.refusedPromotions}; ` +
      `expiries ${expiries}, failovers ${failovers}, blocked ${blocked}, epochs ${
        topology.workloads.map((w) => sup.policy.workload(w).epoch).join("/")
      }`,
  );
  await sup.stop();
});
