/** The demo (README command 1) runs end to end and tells the truth about what happened. */
import assert from "node:assert/strict";
import { runDemo } from "../lib/demo/demo.ts";

Deno.test({
  name: "demo: node crash → expiry → promotion received → planned API actions, exit ok",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const result = await runDemo({ out: () => {} });
    assert.ok(result.ok, result.lines.join("\n"));
    const workloads = result.promotionsReceived.map((p) => p.promotion.workload).sort();
    assert.deepEqual(workloads, ["lane-detection", "pose-estimation"]);
    assert.ok(
      result.promotionsReceived.every((p) =>
        p.promotion.epoch === 1 && p.promotion.activeNode === "worker-node3"
      ),
    );
    const text = result.lines.join("\n");
    assert.match(text, /node\/worker-node2 EXPIRED/);
    assert.match(text, /reconciler {2}planned \(dry run\): .*worker-node2/);
    assert.match(text, /expiry → promotion received \(MQTT\)\s+\d+\.\d+ ms \(lane-detection\)/);
    assert.match(text, /expiry → promotion received \(MQTT\)\s+\d+\.\d+ ms \(pose-estimation\)/);
    // no healthy node was failed over
    assert.ok(
      !result.events.some((e) =>
        e.type === "transition" && e.transition.isFailure &&
        /worker-node[13]$/.test(e.transition.target.label)
      ),
    );
  },
});

Deno.test({
  name: "demo: a sensor loss fails over only the workload needing the sensor",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const result = await runDemo({ out: () => {}, fault: "sensor-loss:lidar-node2@1500ms" });
    assert.ok(result.ok, result.lines.join("\n"));
    assert.deepEqual(result.promotionsReceived.map((p) => p.promotion.workload), [
      "pose-estimation",
    ]);
  },
});
