import assert from "node:assert/strict";
import { parse } from "yaml";
import { parseRuntimeConfig, runtimeConfig, shippedConfigPath } from "./runtime_config.ts";

const placement = {
  brokerUrl: "mqtt://127.0.0.1:1999",
  topicPrefix: "of-node-crash-3",
  kubeconfig: "/tmp/runtime.kubeconfig",
  namespace: "of-node-crash-3",
};

for (const name of ["fast", "example"] as const) {
  Deno.test(`runtime config ${name}: only broker, prefix, kubeconfig and namespace change`, () => {
    const shipped = parseRuntimeConfig(parse(Deno.readTextFileSync(shippedConfigPath(name))));
    const copy = parseRuntimeConfig(runtimeConfig(name, placement));
    assert.equal(copy.mqtt.url, placement.brokerUrl);
    assert.equal(copy.mqtt.topicPrefix, placement.topicPrefix);
    assert.equal(copy.cluster.kubeconfig, placement.kubeconfig);
    assert.ok(copy.workloads.every((w) => w.namespace === placement.namespace));
    assert.deepEqual(copy.nodes, shipped.nodes);
    assert.deepEqual(copy.sensors, shipped.sensors);
    assert.deepEqual(copy.supervisor, shipped.supervisor);
    assert.deepEqual(
      copy.workloads.map(({ namespace: _, ...w }) => w),
      shipped.workloads.map(({ namespace: _, ...w }) => w),
    );
  });
}
