/**
 * The broker pair on real components (issue 10, item 2): two real mosquitto brokers, the
 * supervisor as its own process (dry run), one simulated Jetson process per node (the agent's
 * session: `tests/campaign/node_process.ts`; SIGKILL is a crash), everyone with
 * `mqtt.url` and `mqtt.pairUrl`, so every client publishes to both brokers.
 *
 * 0. Cut one node's connection to broker A only (nftables): A publishes the node's Last Will when
 *    its keepalive runs out, but the node heartbeats through B — a will from one broker alone is
 *    not a crash (it needs both brokers' agreement): no expiry, no failover.
 * 1. SIGKILL broker A while the nodes are healthy: no ingest fault, no expiry, no failover.
 * 2. Crash a node while only B is up: detected and failed over (promotion through B).
 * 3. Bring A back (same port, empty: no persistence): redundancy restored — both connected, and the
 *    leader's current promotion is retained on A again.
 * 4. SIGKILL B: A alone carries supervision (no expiry of the healthy node).
 * 5. SIGKILL A too: an ingest fault, never a failover.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { stringify } from "yaml";
import { decodePromotion } from "../lib/wire/wire.ts";
import { type RunningMosquitto, startMosquitto } from "./harness/mosquitto.ts";
import { startSupervisor } from "./harness/supervisor_process.ts";
import { type NodeProc, startNodeProc, stopNodeProc } from "./campaign/node_proc.ts";
import { canCut, cutConnection, localPortOf } from "./harness/tcp_cut.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves true when a live (not retained) `offline` arrives on `topic`, false after `timeoutMs`. */
async function awaitLiveOffline(url: string, topic: string, timeoutMs: number): Promise<boolean> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  try {
    return await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      client.on("message", (t, payload, packet) => {
        if (t === topic && !packet.retain && new TextDecoder().decode(payload) === "offline") {
          clearTimeout(timer);
          resolve(true);
        }
      });
      client.subscribe(topic, { qos: 1 });
    });
  } finally {
    await client.endAsync(true);
  }
}

/** The retained promotion of `topic` on one broker, or undefined after `timeoutMs`. */
async function retainedOn(url: string, topic: string, timeoutMs = 2000) {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 });
  try {
    return await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      client.on("message", (t, payload, packet) => {
        if (t === topic && packet.retain) {
          clearTimeout(timer);
          resolve(new TextDecoder().decode(payload));
        }
      });
      client.subscribe(topic, { qos: 1 });
    });
  } finally {
    await client.endAsync(true);
  }
}

Deno.test({
  name:
    "broker pair: losing one broker changes nothing; a crash is still failed over; redundancy is restored; losing both is an ingest fault",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-broker-pair-" });
    let brokerA: RunningMosquitto = await startMosquitto({ workDir: `${dir}`, tcpNoDelay: true });
    Deno.mkdirSync(`${dir}/b`);
    const brokerB = await startMosquitto({ workDir: `${dir}/b`, tcpNoDelay: true });
    const config = {
      supervisor: { id: "bpair", bootWindowMs: 500, barrierTimeoutMs: 100 },
      mqtt: {
        url: brokerA.url,
        pairUrl: brokerB.url,
        topicPrefix: "bpair",
        reconnectPeriodMs: 200,
        // short: broker A publishes a cut-off node's will after 1.5 × 1 s
        keepaliveS: 1,
      },
      nodes: ["worker-node2", "worker-node3"].map((name) => ({
        name,
        heartbeatPeriodMs: 20,
        heartbeatTimeoutMs: 250, // generous: this test is about which events count, not speed
      })),
      workloads: [{
        name: "lane-detection",
        asil: "B",
        fttiMs: 500,
        primary: { deployment: "lane-detection-original", node: "worker-node2" },
        standby: { deployment: "lane-detection-standby", node: "worker-node3" },
      }],
    };
    const cfg = `${dir}/pair.yaml`;
    Deno.writeTextFileSync(cfg, stringify(config));
    const promotionTopic = "bpair/workload/lane-detection/promotion";
    const nodes: NodeProc[] = [];
    for (const node of ["worker-node2", "worker-node3"]) {
      nodes.push(await startNodeProc({ node, configPath: cfg, url: brokerA.url, execPrefix: [] }));
    }
    const sup = await startSupervisor(cfg, { dryRun: true });
    const events = (name: string) => sup.lines.filter((l) => l.event === name);
    try {
      await sleep(1000); // past the boot window: both nodes OK through both brokers
      assert.deepEqual(events("expired"), []);

      // 0. worker-node3 loses broker A only: A's will alone is not a crash
      if (canCut()) {
        const willOnA = awaitLiveOffline(brokerA.url, "bpair/node/worker-node3/status", 10_000);
        await sleep(200); // the watcher subscribed
        const cut = await cutConnection(await localPortOf(nodes[1].pid, brokerA.port));
        try {
          assert.ok(await willOnA, "broker A published worker-node3's Last Will");
          await sleep(800); // more than three node timeouts after the will
        } finally {
          await cut.heal();
        }
        assert.deepEqual(events("expired"), [], "one broker's will is not a crash");
        assert.deepEqual(events("promotion-sent"), []);
        await sleep(1500); // the node reconnects to A
      }

      // 1. broker A dies under everyone
      await brokerA.kill();
      await sup.waitFor((l) => l.event === "broker-lost", 5000, "broker-lost");
      await sleep(1000); // four node timeouts
      assert.deepEqual(events("ingest-fault"), [], "losing one broker is no ingest fault");
      assert.deepEqual(events("expired"), [], "and expires nothing");
      assert.deepEqual(events("promotion-sent"), [], "and fails nothing over");

      // 2. worker-node2 crashes while only B carries the bus
      nodes[0].signal("SIGKILL");
      const promoted = await sup.waitFor((l) => l.event === "promotion-sent", 5000, "promotion");
      assert.equal(promoted.activeNode, "worker-node3");
      assert.equal(promoted.epoch, 1);
      const expired = events("expired").map((l) => l.target);
      assert.ok(expired.includes("node/worker-node2"), `expired: ${expired}`);
      assert.ok(!expired.includes("node/worker-node3"), "the healthy node did not expire");
      assert.equal(decodePromotion((await retainedOn(brokerB.url, promotionTopic))!)?.epoch, 1);

      // 3. A comes back (same port, empty): redundancy restored, the promotion retained on A again
      const linesBefore = sup.lines.length;
      brokerA = await startMosquitto({ workDir: dir, tcpNoDelay: true, port: brokerA.port });
      const up = await sup.waitFor(
        (l) => l.event === "broker-up" && l.connected === 2 && sup.lines.indexOf(l) >= linesBefore,
        10_000,
        "broker-up with both connected",
      );
      assert.ok(Number(up.republished) >= 1, "the current promotion is published again");
      const onA = await retainedOn(brokerA.url, promotionTopic);
      assert.ok(onA !== undefined, "the returning broker holds the promotion");
      assert.equal(decodePromotion(onA)?.epoch, 1, "with the same epoch");

      // 4. B dies: A alone carries supervision of the healthy node
      await sleep(500); // the nodes' sessions to A are back (reconnect period 200 ms)
      const lostBefore = events("broker-lost").length;
      await brokerB.kill();
      await sup.waitFor(
        (l) => l.event === "broker-lost" && events("broker-lost").length > lostBefore,
        5000,
        "second broker-lost",
      );
      await sleep(1000);
      assert.deepEqual(events("ingest-fault"), []);
      assert.ok(!events("expired").some((l) => l.target === "node/worker-node3"));
      assert.equal(events("promotion-sent").length, 1, "no further failover");

      // 5. both lost: an ingest fault, never a failover
      await brokerA.kill();
      await sup.waitFor((l) => l.event === "ingest-fault", 5000, "ingest-fault");
      await sleep(1000);
      assert.equal(events("promotion-sent").length, 1, "no failover without a bus");
      assert.ok(!events("expired").some((l) => l.target === "node/worker-node3"));
    } finally {
      const code = await sup.stop();
      for (const node of nodes) await stopNodeProc(node);
      await brokerA.stop();
      await brokerB.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      assert.equal(code, 0);
    }
  },
});
