import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { createLogger, silentLogger } from "../log/log.ts";
import type { SessionOptions } from "../mqtt/session.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { agentCommand } from "./agent_command.ts";

const config = ConfigSchema.parse({
  nodes: [
    { name: "worker-node2", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 100 },
    { name: "worker-node3", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 100 },
  ],
  workloads: [{
    name: "perception",
    asil: "B",
    fttiMs: 500,
    primary: { deployment: "perception-a", node: "worker-node2" },
    standby: { deployment: "perception-b", node: "worker-node3" },
  }],
});

function run(nodeName: string, client = new FakeMqttClient(), drainTimeoutMs?: number) {
  const sessions: SessionOptions[] = [];
  const controller = new AbortController();
  const lines: Record<string, unknown>[] = [];
  const exit = agentCommand({
    config,
    nodeName,
    signal: controller.signal,
    drainTimeoutMs,
    httpListen: "", // the endpoint has its own tests
    log: drainTimeoutMs === undefined
      ? silentLogger
      : createLogger({ format: "json", level: "debug", write: (l) => lines.push(JSON.parse(l)) }),
    openClient: (options) => {
      sessions.push(options);
      return client;
    },
  });
  return { client, sessions, controller, exit, lines };
}

const PROMOTION = JSON.stringify({
  v: 1,
  workload: "perception",
  namespace: "default",
  activeNode: "worker-node3",
  activeDeployment: "perception-b",
  failedNode: "worker-node2",
  epoch: 1,
  reason: "node-draining",
  issuer: "supervisor",
  issuedAt: "2026-01-01T00:00:00Z",
});

/** Waits (real time, a few ms at most) until `client` published `payload` on the status topic. */
async function statusPublished(client: FakeMqttClient, payload: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (client.on_topic("sdv/node/worker-node2/status").some((p) => p.payload === payload)) return;
    await new Promise((r) => setTimeout(r, 1));
  }
  assert.fail(`status ${payload} never published`);
}

Deno.test("agentCommand opens one session with the node's Last Will, runs, stops in order", async () => {
  const { client, sessions, controller, exit } = run("worker-node3");
  assert.equal(sessions.length, 1);
  assert.equal(sessions[0].clientId, "sdv-agent-worker-node3");
  assert.deepEqual(sessions[0].will, {
    topic: "sdv/node/worker-node3/status",
    payload: "offline",
    qos: 1,
    retain: true,
  });
  assert.deepEqual([...client.subscribed], ["sdv/workload/perception/promotion"]);
  client.connect();
  controller.abort("test");
  assert.equal(await exit, 0);
  assert.deepEqual(
    client.on_topic("sdv/node/worker-node3/status").map((p) => p.payload),
    ["online", "offline"],
  );
  assert.deepEqual(client.endCalls, [false]);
});

Deno.test("agentCommand: a broker refusing the connection is fatal → 1; unknown node → 2", async () => {
  const { client, exit } = run("worker-node2");
  client.emit("error", new Error("Connection refused: Not authorized"));
  assert.equal(await exit, 1);
  assert.ok(client.ended);
  const unknown = run("worker-node9");
  assert.equal(await unknown.exit, 2);
  assert.equal(unknown.sessions.length, 0, "no connection for an unknown node");
});

Deno.test("agentCommand: SIGHUP is a planned stop: draining, the promotion, offline → 0", async () => {
  const { client, controller, exit, lines } = run("worker-node2", undefined, 10_000);
  client.connect();
  controller.abort("SIGHUP");
  await statusPublished(client, "draining");
  assert.equal(client.ended, false, "waits for the promotion");
  client.deliver("sdv/workload/perception/promotion", PROMOTION, { retain: true });
  assert.equal(await exit, 0, "no 129: SIGHUP stops in order");
  assert.deepEqual(
    client.on_topic("sdv/node/worker-node2/status").map((p) => p.payload),
    ["online", "draining", "offline"],
  );
  assert.deepEqual(client.endCalls, [false]);
  const drained = lines.find((l) => l.event === "drained");
  assert.equal(drained?.timedOut, false);
  assert.equal(typeof drained?.switchoverMs, "number");
  assert.equal(lines.find((l) => l.event === "shutdown")?.planned, true);
});

Deno.test("agentCommand: SIGTERM drain bounded by drainTimeoutMs (no standby) → warn, stop, 0", async () => {
  const { client, controller, exit, lines } = run("worker-node2", undefined, 30);
  client.connect();
  const t0 = performance.now();
  controller.abort("SIGTERM");
  assert.equal(await exit, 0);
  assert.ok(performance.now() - t0 >= 29, "waited for the drain bound");
  assert.deepEqual(
    client.on_topic("sdv/node/worker-node2/status").map((p) => p.payload),
    ["online", "draining", "offline"],
  );
  const drained = lines.find((l) => l.event === "drained");
  assert.equal(drained?.level, "warn");
  assert.equal(drained?.timedOut, true);
  assert.deepEqual(drained?.pending, ["perception"]);
});

Deno.test("agentCommand: SIGINT (or any other reason) stops at once, without draining", async () => {
  const { client, controller, exit } = run("worker-node2", undefined, 10_000);
  client.connect();
  controller.abort("SIGINT");
  assert.equal(await exit, 0);
  assert.deepEqual(
    client.on_topic("sdv/node/worker-node2/status").map((p) => p.payload),
    ["online", "offline"],
  );
});

Deno.test("agentCommand logs no secret, even from a broker URL with credentials that bypassed validation", async () => {
  const secret = "s3cret-Pa55word";
  const leaky = {
    ...config,
    mqtt: { ...config.mqtt, url: `mqtt://agent:${secret}@broker:1883/x?token=${secret}` },
  };
  for (const format of ["json", "text"] as const) {
    const lines: string[] = [];
    const client = new FakeMqttClient();
    const controller = new AbortController();
    const exit = agentCommand({
      config: leaky,
      nodeName: "worker-node2",
      signal: controller.signal,
      httpListen: "",
      log: createLogger({ format, level: "debug", write: (l) => lines.push(l) }),
      openClient: () => client,
    });
    client.connect();
    controller.abort("test");
    assert.equal(await exit, 0);
    const running = lines.find((l) => l.includes("agent-running"));
    assert.ok(running, `agent-running logged (${format})`);
    assert.match(running, /mqtt:\/\/broker:1883\/x/);
    for (const line of lines) {
      assert.ok(!line.includes(secret), `a ${format} log line holds the secret: ${line}`);
    }
  }
});

Deno.test("agentCommand serves /readyz and /metrics on --http-listen, closes it on stop; a taken port → 1", async () => {
  const lines: Record<string, unknown>[] = [];
  const client = new FakeMqttClient();
  const controller = new AbortController();
  const exit = agentCommand({
    config,
    nodeName: "worker-node3",
    signal: controller.signal,
    httpListen: "127.0.0.1:0",
    log: createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) }),
    openClient: () => client,
  });
  const listening = lines.find((l) => l.event === "http-listening");
  assert.ok(listening, "http-listening logged");
  const address = String(listening.address);
  assert.match(address, /^127\.0\.0\.1:\d+$/);
  const get = async (path: string) => {
    const r = await fetch(`http://${address}${path}`);
    return { status: r.status, body: await r.text() };
  };
  let r = await get("/readyz");
  assert.equal(r.status, 503);
  assert.deepEqual(JSON.parse(r.body).reasons, ["not connected to the broker"]);
  client.connect();
  r = await get("/readyz");
  assert.equal(r.status, 200, r.body);
  assert.equal((await get("/healthz")).status, 200);
  r = await get("/metrics");
  assert.match(r.body, /^sdv_failover_agent_broker_connected 1$/m);
  assert.match(r.body, /^# TYPE sdv_failover_agent_heartbeats_sent_total counter$/m);

  // A second agent on the same address cannot listen: exit 1, nothing left connected.
  const other = new FakeMqttClient();
  const second: Record<string, unknown>[] = [];
  assert.equal(
    await agentCommand({
      config,
      nodeName: "worker-node2",
      signal: new AbortController().signal,
      httpListen: address,
      log: createLogger({ format: "json", write: (l) => second.push(JSON.parse(l)) }),
      openClient: () => other,
    }),
    1,
  );
  const failed = second.find((l) => l.event === "http-listen-failed");
  assert.match(
    String(failed?.error),
    new RegExp(`cannot listen on ${address}: address already in use`),
  );
  assert.deepEqual(other.endCalls, [true]);

  controller.abort("test");
  assert.equal(await exit, 0);
  await assert.rejects(fetch(`http://${address}/healthz`), "closed after the shutdown");
});
