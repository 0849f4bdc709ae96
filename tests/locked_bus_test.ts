/**
 * The locked bus on a real mosquitto: `main.ts broker-config --dev-pki` writes the broker's
 * configuration and a development PKI for `tests/fixtures/locked_vehicle.ts`, the harness starts
 * mosquitto from exactly that file, and clients of every identity try what they may and may not.
 *
 * "Not delivered" is proven without guessing a timeout: the forging client publishes the forgery
 * first and a message it may send last, on the same connection; mosquitto handles one
 * connection's packets in order and delivers to a subscriber in order, so once the subscriber has
 * the last message, a forgery that got through would already be there. For messages of two
 * clients, the forgery is acknowledged (PUBACK, after the broker handled it) before the
 * legitimate one is sent.
 *
 * Skipped when mosquitto or openssl is not installed (`scripts/setup_test_deps.sh` installs both).
 */
import assert from "node:assert/strict";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { stringify } from "yaml";
import { encodeBeat } from "../lib/wire/wire.ts";
import { decodeStateMessage, encodeStateMessage } from "../lib/wire/state_message.ts";
import type { StatusView } from "../lib/cli/status_table.ts";
import { identityFileStem } from "../lib/broker/identities.ts";
import { MOSQUITTO_BIN, type RunningMosquitto, startMosquitto } from "./harness/mosquitto.ts";
import {
  spawnMain,
  startSupervisor,
  type SupervisorProcess,
  watchMain,
} from "./harness/supervisor_process.ts";
import { VEHICLE_RAW } from "./fixtures/locked_vehicle.ts";

const installed = (check: () => boolean) => {
  try {
    return check();
  } catch {
    return false;
  }
};
const HAS_TOOLS = installed(() => Deno.statSync(MOSQUITTO_BIN).isFile) &&
  installed(() =>
    new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" }).outputSync()
      .success
  );

const P = VEHICLE_RAW.mqtt.topicPrefix;
const NODE2_HB = `${P}/node/worker-node2/hb`;
const NODE2_STATUS = `${P}/node/worker-node2/status`;
const NODE3_HB = `${P}/node/worker-node3/hb`;
const NODE3_STATUS = `${P}/node/worker-node3/status`;
const LANE_PROMOTION = `${P}/workload/lane-detection/promotion`;
const SUP_BARRIER = `${P}/supervisor/sup/barrier`;
const SUP_STATE = `${P}/supervisor/sup/state`;
/** Bound on every wait for a connection or a message that must come. */
const WAIT_MS = 5000;

/**
 * Runs `main.ts broker-config` as `deno task broker-config` does: it writes files and runs
 * openssl, which the runtime's own permissions (and the packaged launcher) never allow.
 */
function brokerConfig(configFile: string, outDir: string): Promise<Deno.CommandOutput> {
  const main = new URL("../main.ts", import.meta.url).pathname;
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run=openssl",
      main,
      "broker-config",
      "--config",
      configFile,
      "--out",
      outDir,
      "--dev-pki",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The broker and PKI of one test run. */
interface Bus {
  dir: string;
  port: number;
  broker: RunningMosquitto;
  pki: string;
  /** The bundle directory (`ca.crt`, `client.crt`, `client.key`) of an identity. */
  bundle(identity: string): string;
  configFile: string;
}

async function startBus(): Promise<Bus> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "sdv-locked-bus-" }));
  const port = freePort();
  const config = {
    ...VEHICLE_RAW,
    mqtt: {
      ...VEHICLE_RAW.mqtt,
      url: `mqtts://127.0.0.1:${port}`,
      reconnectPeriodMs: 200,
      tls: {
        caFile: "${CREDENTIALS_DIRECTORY}/ca.crt",
        certFile: "${CREDENTIALS_DIRECTORY}/client.crt",
        keyFile: "${CREDENTIALS_DIRECTORY}/client.key",
      },
    },
  };
  const configFile = `${dir}/vehicle.yaml`;
  await Deno.writeTextFile(configFile, stringify(config));
  const generated = await brokerConfig(configFile, `${dir}/broker`);
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(generated.code, 0, text(generated.stderr) + text(generated.stdout));
  const broker = await startMosquitto({
    confFile: `${dir}/broker/mosquitto.conf`,
    port,
    workDir: dir,
    tcpNoDelay: true,
  });
  assert.equal(broker.url, `mqtts://127.0.0.1:${port}`);
  const pki = `${dir}/broker/pki`;
  return {
    dir,
    port,
    broker,
    pki,
    bundle: (identity) => `${pki}/clients/${identityFileStem(identity)}`,
    configFile,
  };
}

/** How a connection attempt ended. */
type Attempt = { connected: true; client: MqttClient } | {
  connected: false;
  error: string;
};

/**
 * Connects (MQTT 3.1.1, no reconnect) and resolves once connected, or once the attempt failed
 * (error or close before CONNACK), or after {@linkcode WAIT_MS}.
 */
function attempt(url: string, options: IClientOptions): Promise<Attempt> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: WAIT_MS,
      clean: true,
      ...options,
    });
    let error = "closed before CONNACK";
    const timer = setTimeout(() => settle({ connected: false, error: "timed out" }), WAIT_MS);
    let settled = false;
    const settle = (a: Attempt) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!a.connected) client.end(true);
      resolve(a);
    };
    client.once("connect", () => settle({ connected: true, client }));
    client.on("error", (e) => (error = e.message));
    client.once("close", () => settle({ connected: false, error }));
  });
}

/** TLS options of an identity's dev-PKI bundle. */
function tlsOf(bus: Bus, identity: string): IClientOptions {
  const dir = bus.bundle(identity);
  return {
    ca: Deno.readTextFileSync(`${dir}/ca.crt`),
    cert: Deno.readTextFileSync(`${dir}/client.crt`),
    key: Deno.readTextFileSync(`${dir}/client.key`),
  };
}

/** Connects as `identity` or fails the test. */
async function connectAs(
  bus: Bus,
  identity: string,
  extra: IClientOptions = {},
): Promise<MqttClient> {
  const a = await attempt(bus.broker.url, { ...tlsOf(bus, identity), ...extra });
  if (!a.connected) assert.fail(`${identity} could not connect: ${a.error}`);
  return a.client;
}

/** A subscriber that records every message. */
async function recorder(client: MqttClient, topics: string[]) {
  const got: { topic: string; payload: string; retain: boolean }[] = [];
  const waiters: (() => void)[] = [];
  client.on("message", (topic, payload, packet) => {
    got.push({ topic, payload: new TextDecoder().decode(payload), retain: packet.retain });
    for (const w of waiters.splice(0)) w();
  });
  await client.subscribeAsync(topics, { qos: 1 });
  return {
    got,
    /** Waits (bounded) until a message matches. */
    async until(what: string, match: (m: (typeof got)[number]) => boolean) {
      const deadline = performance.now() + WAIT_MS;
      while (!got.some(match)) {
        const left = deadline - performance.now();
        if (left <= 0) assert.fail(`timed out waiting for ${what}; got ${JSON.stringify(got)}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(left)]);
      }
    },
  };
}

/** Quantile (nearest rank) of `xs`, for the TLS cost line. */
function quantile(xs: number[], q: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** Publish → receive latency of `n` QoS 0 messages from `pub` to `sub` on `topic`, ms each. */
async function roundTrips(pub: MqttClient, sub: MqttClient, topic: string, n: number) {
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((r) => (done = r));
  sub.on("message", (t, payload) => {
    if (t !== topic) return;
    const seq = JSON.parse(new TextDecoder().decode(payload)).seq as number;
    const at = sentAt.get(seq);
    if (at === undefined) return;
    latencies.push(performance.now() - at);
    if (latencies.length === n) done();
  });
  await sub.subscribeAsync(topic, { qos: 0 });
  for (let seq = 0; seq < n; seq++) {
    sentAt.set(seq, performance.now());
    pub.publish(topic, encodeBeat(seq), { qos: 0 });
    await sleep(2);
  }
  await Promise.race([all, sleep(WAIT_MS)]);
  return latencies;
}

const promotion = (epoch: number, activeNode: string) =>
  JSON.stringify({
    v: 1,
    workload: "lane-detection",
    namespace: "default",
    activeNode,
    activeDeployment: "lane-b",
    failedNode: "worker-node2",
    epoch,
    reason: "test",
    issuer: "sup",
    issuedAt: new Date().toISOString(),
  });

Deno.test({
  name: "locked bus: broker-config --dev-pki on a real mosquitto",
  ignore: !HAS_TOOLS,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const bus = await startBus();
    const open: MqttClient[] = [];
    const track = (c: MqttClient) => (open.push(c), c);
    try {
      await t.step("an anonymous client (plain MQTT, no TLS) is refused", async () => {
        const a = await attempt(`mqtt://127.0.0.1:${bus.port}`, { clientId: "anon" });
        assert.equal(a.connected, false);
      });

      await t.step(
        "a TLS client without a certificate is refused, whatever user name it claims",
        async () => {
          const ca = Deno.readTextFileSync(`${bus.pki}/ca.crt`);
          const anonymous = await attempt(bus.broker.url, { ca });
          assert.equal(anonymous.connected, false, "no certificate, no user name");
          const claiming = await attempt(bus.broker.url, {
            ca,
            username: "supervisor:sup",
            password: "anything",
            clientId: "supervisor:sup",
          });
          assert.equal(claiming.connected, false, "no certificate, a supervisor's user name");
        },
      );

      await t.step("a certificate of another CA is refused", async () => {
        const other = `${bus.dir}/other`;
        const made = await brokerConfig(bus.configFile, other);
        assert.equal(made.code, 0);
        const dir = `${other}/pki/clients/supervisor_sup`;
        const a = await attempt(bus.broker.url, {
          ca: Deno.readTextFileSync(`${bus.pki}/ca.crt`),
          cert: Deno.readTextFileSync(`${dir}/client.crt`),
          key: Deno.readTextFileSync(`${dir}/client.key`),
        });
        assert.equal(a.connected, false);
      });

      await t.step("node A cannot publish node B's offline status or heartbeat", async () => {
        const sup = track(await connectAs(bus, "supervisor:sup"));
        const watch = await recorder(sup, [NODE2_HB, NODE3_HB, NODE3_STATUS]);
        const nodeA = track(await connectAs(bus, "node:worker-node2"));
        await nodeA.publishAsync(NODE3_STATUS, "offline", { qos: 1, retain: true });
        await nodeA.publishAsync(NODE3_STATUS, "offline", { qos: 1, retain: false });
        await nodeA.publishAsync(NODE3_HB, encodeBeat(1), { qos: 0 });
        await nodeA.publishAsync(NODE2_HB, encodeBeat(7), { qos: 0 }); // its own: allowed
        await watch.until("node A's own heartbeat", (m) => m.topic === NODE2_HB);
        assert.deepEqual(watch.got, [{ topic: NODE2_HB, payload: '{"seq":7}', retain: false }]);
        // The forged retained offline was not stored either: a fresh subscription gets nothing.
        await sup.unsubscribeAsync(NODE3_STATUS);
        await sup.subscribeAsync(NODE3_STATUS, { qos: 1 });
        await nodeA.publishAsync(NODE2_HB, encodeBeat(8), { qos: 0 });
        await watch.until("node A's second heartbeat", (m) => m.payload === '{"seq":8}');
        assert.equal(watch.got.filter((m) => m.topic !== NODE2_HB).length, 0);
        await Promise.all([sup.endAsync(), nodeA.endAsync()]);
      });

      await t.step("only the supervisor identity can publish a promotion", async () => {
        const app3 = track(await connectAs(bus, "app:lane-detection:worker-node3"));
        const watch = await recorder(app3, [LANE_PROMOTION]);
        const nodeA = track(await connectAs(bus, "node:worker-node2"));
        const app2 = track(await connectAs(bus, "app:lane-detection:worker-node2"));
        await nodeA.publishAsync(LANE_PROMOTION, promotion(99, "nowhere"), {
          qos: 1,
          retain: true,
        });
        await app2.publishAsync(LANE_PROMOTION, promotion(98, "worker-node2"), {
          qos: 1,
          retain: true,
        });
        const sup = track(await connectAs(bus, "supervisor:sup"));
        await sup.publishAsync(LANE_PROMOTION, promotion(1, "worker-node3"), {
          qos: 1,
          retain: true,
        });
        await watch.until("the supervisor's promotion", () => true);
        await sleep(100);
        assert.deepEqual(watch.got.map((m) => JSON.parse(m.payload).epoch), [1]);
        // The retained promotion a (re)connecting instance learns is the supervisor's.
        const late = await recorder(app2, [LANE_PROMOTION]);
        await late.until("the retained promotion", (m) => m.retain);
        assert.deepEqual(late.got.map((m) => JSON.parse(m.payload).epoch), [1]);
        await sup.publishAsync(LANE_PROMOTION, "", { qos: 1, retain: true }); // clear it again
        await Promise.all([sup, app3, app2, nodeA].map((c) => c.endAsync()));
      });

      // The forged messages found on the open bus, one step each: on the locked bus the broker
      // delivers none of them (the runtime's own refusals are unit-tested in lib/).
      const forgedPromotions: [string, string, string][] = [
        [
          "a promotion at epoch 99 from a client that is no supervisor",
          "app:lane-detection:worker-node2",
          promotion(99, "worker-node2"),
        ],
        [
          "a promotion naming no placement (activeNode nowhere)",
          "node:worker-node3",
          promotion(5, "nowhere"),
        ],
        [
          "a promotion at epoch 2^53 (freezing the epoch)",
          "node:worker-node2",
          promotion(2 ** 53, "worker-node3"),
        ],
        [
          "a same-epoch promotion naming the other node",
          "node:worker-node2",
          promotion(1, "worker-node2"),
        ],
      ];
      for (const [what, identity, payload] of forgedPromotions) {
        await t.step(`forged: ${what} is not delivered`, async () => {
          const app3 = track(await connectAs(bus, "app:lane-detection:worker-node3"));
          const watch = await recorder(app3, [LANE_PROMOTION]);
          const forger = track(await connectAs(bus, identity));
          await forger.publishAsync(LANE_PROMOTION, payload, { qos: 1, retain: true });
          await forger.publishAsync(LANE_PROMOTION, payload, { qos: 1, retain: false });
          const sup = track(await connectAs(bus, "supervisor:sup"));
          const control = promotion(1, "worker-node3");
          await sup.publishAsync(LANE_PROMOTION, control, { qos: 1 });
          await watch.until("the supervisor's promotion (the control)", () => true);
          await sleep(100);
          assert.deepEqual(watch.got.map((m) => m.payload), [control]);
          await Promise.all([app3, forger, sup].map((c) => c.endAsync()));
        });
      }

      await t.step(
        "forged: replayed heartbeats of a hung node from another identity are not delivered",
        async () => {
          const sup = track(await connectAs(bus, "supervisor:sup"));
          const watch = await recorder(sup, [NODE3_HB, NODE2_HB]);
          const replayer = track(await connectAs(bus, "node:worker-node2"));
          for (let i = 0; i < 10; i++) {
            await replayer.publishAsync(NODE3_HB, '{"seq":1}', { qos: 1 });
          }
          await replayer.publishAsync(NODE2_HB, encodeBeat(3), { qos: 1 }); // its own: the control
          await watch.until("the replayer's own heartbeat", (m) => m.topic === NODE2_HB);
          assert.equal(watch.got.filter((m) => m.topic === NODE3_HB).length, 0);
          await Promise.all([sup.endAsync(), replayer.endAsync()]);
        },
      );

      await t.step(
        "forged: a barrier from any identity but the supervisor is not delivered",
        async () => {
          const sup = track(await connectAs(bus, "supervisor:sup"));
          const watch = await recorder(sup, [SUP_BARRIER]);
          for (const identity of ["node:worker-node2", "app:lane-detection:worker-node3"]) {
            const forger = track(await connectAs(bus, identity));
            for (let seq = 0; seq < 5; seq++) {
              await forger.publishAsync(SUP_BARRIER, encodeBeat(seq), { qos: 1 });
            }
            await forger.endAsync();
          }
          await sup.publishAsync(SUP_BARRIER, encodeBeat(42), { qos: 1 }); // its own: the control
          await watch.until("the supervisor's own barrier", () => true);
          await sleep(100);
          assert.deepEqual(watch.got.map((m) => m.payload), ['{"seq":42}']);
          await sup.endAsync();
        },
      );

      await t.step("the cost of TLS: publish → receive on this broker vs a plain one", async () => {
        const n = 400;
        const tlsPub = track(await connectAs(bus, "node:worker-node2"));
        const tlsSub = track(await connectAs(bus, "supervisor:sup"));
        const tls = await roundTrips(tlsPub, tlsSub, NODE2_HB, n);
        const plain = await startMosquitto();
        try {
          const plainPub = track(await mqtt.connectAsync(plain.url, { clientId: "plain-pub" }));
          const plainSub = track(await mqtt.connectAsync(plain.url, { clientId: "plain-sub" }));
          const tcp = await roundTrips(plainPub, plainSub, NODE2_HB, n);
          assert.equal(tls.length, n, "every TLS message arrived");
          assert.equal(tcp.length, n, "every TCP message arrived");
          const line = (xs: number[]) =>
            `p50 ${quantile(xs, 0.5).toFixed(3)} ms, p99 ${quantile(xs, 0.99).toFixed(3)} ms`;
          console.log(`publish → receive over TLS: ${line(tls)}; over TCP: ${line(tcp)} (n=${n})`);
          await Promise.all([plainPub.endAsync(), plainSub.endAsync()]);
        } finally {
          await plain.stop();
        }
        await Promise.all([tlsPub.endAsync(), tlsSub.endAsync()]);
      });

      await t.step(
        "another identity cannot take over node A's session (client id bound to identity)",
        async () => {
          const sup = track(await connectAs(bus, "supervisor:sup"));
          const watch = await recorder(sup, [NODE2_STATUS]);
          let closed = 0;
          const nodeA = track(
            await connectAs(bus, "node:worker-node2", {
              clientId: "sdv-agent-worker-node2",
              will: { topic: NODE2_STATUS, payload: "offline", qos: 1, retain: true },
            }),
          );
          nodeA.on("close", () => closed++);
          await nodeA.publishAsync(NODE2_STATUS, "online", { qos: 1, retain: true });
          await watch.until("node A online", (m) => m.payload === "online");
          for (const clientId of ["sdv-agent-worker-node2", "node:worker-node2"]) {
            const intruder = track(await connectAs(bus, "node:worker-node3", { clientId }));
            await intruder.publishAsync(NODE3_HB, encodeBeat(1), { qos: 1 });
            await intruder.endAsync();
          }
          await sleep(300);
          assert.equal(closed, 0, "node A's connection was not taken over");
          assert.ok(nodeA.connected);
          assert.deepEqual(watch.got.map((m) => m.payload), ["online"], "no Last Will fired");
          // Control: node A's own identity does take the session over (a restart), and the broker
          // then publishes the old session's Last Will, so the check above can fail.
          const restarted = track(await connectAs(bus, "node:worker-node2", { clientId: "x" }));
          await watch.until("the old session's Last Will", (m) => m.payload === "offline");
          assert.ok(closed >= 1);
          nodeA.end(true);
          await restarted.publishAsync(NODE2_STATUS, "", { qos: 1, retain: true });
          await Promise.all([restarted.endAsync(), sup.endAsync()]);
        },
      );

      await t.step(
        "the real supervisor and agents work over TLS; a node crash fails over",
        async () => {
          const env = (identity: string) => ({ CREDENTIALS_DIRECTORY: bus.bundle(identity) });
          let sup: SupervisorProcess | undefined;
          const agents: SupervisorProcess[] = [];
          let appBeat: ReturnType<typeof setInterval> | undefined;
          try {
            sup = await startSupervisor(bus.configFile, {
              dryRun: true,
              env: env("supervisor:sup"),
            });
            for (const node of ["worker-node2", "worker-node3"]) {
              const agent = watchMain(
                ["agent", "--config", bus.configFile, "--node", node, "--log-format", "json"],
                env(`node:${node}`),
              );
              agents.push(agent);
              await agent.waitFor((l) => l.event === "connected", WAIT_MS * 2, `${node} connected`);
            }
            // The standby instance of lane-detection heartbeats under its own identity, so the
            // standby is trusted; its promotion is awaited under the same identity.
            const app3 = track(await connectAs(bus, "app:lane-detection:worker-node3"));
            const promotions = await recorder(app3, [LANE_PROMOTION]);
            let seq = 0;
            appBeat = setInterval(
              () => app3.publish(`${P}/app/lane-detection/worker-node3/hb`, encodeBeat(seq++)),
              20,
            );
            await sleep(500); // several heartbeat periods: every side OK
            const killedAtMs = performance.timeOrigin + performance.now();
            await agents[0].kill();
            const expired = await sup.waitFor(
              (l) => l.event === "expired" && l.target === "node/worker-node2",
              WAIT_MS,
              "node/worker-node2 expired",
            );
            assert.equal(expired.from, "OK", "the supervisor had received node A's heartbeats");
            await promotions.until("the promotion of lane-detection", (m) => m.payload !== "");
            const p = JSON.parse(promotions.got.find((m) => m.payload !== "")!.payload);
            assert.equal(p.activeNode, "worker-node3");
            assert.equal(p.failedNode, "worker-node2");
            const sent = await sup.waitFor((l) => l.event === "promotion-sent", WAIT_MS);
            // The operator's identity reads the supervisor's retained state (sdv-failover status).
            let shown: StatusView | undefined;
            for (
              let i = 0;
              i < 20 && shown?.snapshot?.workloads[0].activeNode !== "worker-node3";
              i++
            ) {
              const status = await spawnMain(
                ["status", "-o", "json", "--config", bus.configFile],
                env("operator"),
              ).output();
              const text = (b: Uint8Array) => new TextDecoder().decode(b);
              assert.equal(status.code, 0, text(status.stderr));
              [shown] = JSON.parse(text(status.stdout));
            }
            assert.equal(shown?.status, "online");
            assert.equal(shown?.snapshot?.workloads[0].activeNode, "worker-node3");
            console.log(
              `over TLS: kill → expired ${(expired.wallMs - killedAtMs).toFixed(1)} ms ` +
                `(cause ${expired.cause}), → promotion sent ${
                  (Number(sent.wallMs) - killedAtMs).toFixed(1)
                } ms`,
            );
          } finally {
            if (appBeat !== undefined) clearInterval(appBeat);
            for (const agent of agents) await agent.stop();
            if (sup) assert.equal(await sup.stop(), 0);
          }
        },
      );
      await t.step(
        "only the operator reads a supervisor's state; only that supervisor writes it",
        async () => {
          // The state left retained by the supervisor of the step before, read as raw bytes.
          const operator = track(await connectAs(bus, "operator"));
          const states: { bytes: Uint8Array; retain: boolean }[] = [];
          let arrived: () => void = () => {};
          operator.on("message", (topic, payload, packet) => {
            if (topic !== SUP_STATE) return;
            states.push({ bytes: new Uint8Array(payload), retain: packet.retain });
            arrived();
          });
          const next = (n: number) =>
            states.length >= n ? Promise.resolve() : Promise.race([
              new Promise<void>((r) => (arrived = () => states.length >= n && r())),
              sleep(WAIT_MS).then(() => assert.fail(`timed out waiting for state ${n}`)),
            ]);
          await operator.subscribeAsync(SUP_STATE, { qos: 1 });
          await next(1);
          assert.ok(states[0].retain);
          const retained = decodeStateMessage(states[0].bytes);
          assert.equal(retained?.supervisor.id, "sup");
          // A node may not read it: subscribed before a topic it may read (a retained promotion),
          // a state it were allowed would arrive first.
          const nodeA = track(await connectAs(bus, "node:worker-node2"));
          const nodeWatch = await recorder(nodeA, [SUP_STATE, LANE_PROMOTION]);
          await nodeWatch.until("the retained promotion", (m) => m.topic === LANE_PROMOTION);
          assert.deepEqual(nodeWatch.got.map((m) => m.topic), [LANE_PROMOTION]);
          // A node may not write it: its forgery is acknowledged before the supervisor's state.
          const as = (generatedAt: string) => encodeStateMessage({ ...retained!, generatedAt });
          await nodeA.publishAsync(SUP_STATE, as("forged") as Buffer, { qos: 1, retain: true });
          const sup = track(await connectAs(bus, "supervisor:sup"));
          await sup.publishAsync(SUP_STATE, as("legitimate") as Buffer, { qos: 1, retain: true });
          await next(2);
          assert.deepEqual(
            states.map((m) => decodeStateMessage(m.bytes)?.generatedAt),
            [retained!.generatedAt, "legitimate"],
            "the forgery was not delivered",
          );
          await Promise.all([operator.endAsync(), nodeA.endAsync(), sup.endAsync()]);
        },
      );
    } finally {
      for (const c of open) c.end(true);
      await bus.broker.stop();
      await Deno.remove(bus.dir, { recursive: true }).catch(() => {});
    }
  },
});
