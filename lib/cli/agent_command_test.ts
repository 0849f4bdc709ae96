import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { silentLogger } from "../log/log.ts";
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

function run(nodeName: string, client = new FakeMqttClient()) {
  const sessions: SessionOptions[] = [];
  const controller = new AbortController();
  const exit = agentCommand({
    config,
    nodeName,
    signal: controller.signal,
    log: silentLogger,
    openClient: (options) => {
      sessions.push(options);
      return client;
    },
  });
  return { client, sessions, controller, exit };
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
