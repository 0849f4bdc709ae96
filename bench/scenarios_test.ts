import assert from "node:assert/strict";
import { scenario, SCENARIOS } from "./scenarios.ts";
import { runtimeConfig, runtimeTopology, shippedTopology } from "./runtime_config.ts";

Deno.test("scenarios resolve their target and workloads in the shipped topology", () => {
  const labels = Object.fromEntries(SCENARIOS.map((name) => {
    const sc = scenario(name);
    return [name, [sc.target.label, ...sc.workloads.map((w) => w.name)]];
  }));
  assert.deepEqual(labels, {
    "node-crash": ["node/worker-node2", "lane-detection", "pose-estimation"],
    "node-hang": ["node/worker-node2", "lane-detection", "pose-estimation"],
    "sensor-loss": ["sensor/lidar-node2", "pose-estimation"],
    "app-hang": ["app/lane-detection/worker-node2", "lane-detection"],
  });
});

Deno.test("a repetition's topology: fresh prefix in every topic, same targets and Deployments", () => {
  const raw = runtimeConfig("example", {
    brokerUrl: "mqtt://127.0.0.1:1999",
    topicPrefix: "oe-node-crash-2",
    kubeconfig: "/tmp/runtime.kubeconfig",
    namespace: "oe-node-crash-2",
  });
  const rep = runtimeTopology(raw);
  const shipped = shippedTopology("example");
  assert.deepEqual(rep.targets.map((t) => t.label), shipped.targets.map((t) => t.label));
  assert.ok(rep.targets.every((t) => t.topic.startsWith("oe-node-crash-2/")));
  assert.deepEqual(
    rep.workloads.map((w) => [w.primary.deployment, w.standby.deployment]),
    [
      ["lane-detection-original", "lane-detection-standby"],
      ["pose-estimation-original", "pose-estimation-standby"],
    ],
  );
  const sc = scenario("app-hang", rep);
  assert.equal(sc.target.topic, "oe-node-crash-2/app/lane-detection/worker-node2/hb");
});
