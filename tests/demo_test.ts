/**
 * The demo (`deno task demo`, the README's first command) runs on `config/example.yaml` itself and
 * tells the truth about what happened, for every fault kind the publisher knows.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../lib/config/load.ts";
import { runDemo } from "../lib/demo/demo.ts";
import { demoConfig } from "../lib/demo/demo_config.ts";
import type { FaultKind } from "../lib/publisher/faults.ts";
import { spawnMain } from "./harness/supervisor_process.ts";

const EXAMPLE = fileURLToPath(new URL("../config/example.yaml", import.meta.url));

/** A demo run and the promotions it must produce (sorted workloads; the reason when fixed). */
interface Case {
  fault: string;
  workloads: string[];
  reason?: RegExp;
}

/**
 * One demo run per fault kind (a `Record` over the publisher's `FaultKind`: a new kind without a
 * case does not type-check) and what `config/example.yaml` makes of it: worker-node2 carries
 * the primaries of lane-detection (camera-node2, app heartbeat) and pose-estimation
 * (camera-node2 and lidar-node2); camera-node2 is also worker-node2's required sensor.
 */
const CASES_BY_KIND: Record<FaultKind, Case> = {
  "node-crash": {
    fault: "node-crash:worker-node2@1500ms",
    workloads: ["lane-detection", "pose-estimation"],
    reason: /^node-(offline|expired)$/,
  },
  // The hang silences the node's sensors too; camera-node2 (150 ms) expires before the node.
  "node-hang": {
    fault: "node-hang:worker-node2@1500ms",
    workloads: ["lane-detection", "pose-estimation"],
  },
  // camera-node2 (both workloads) is the CLI test below.
  "sensor-loss": {
    fault: "sensor-loss:lidar-node2@1500ms",
    workloads: ["pose-estimation"],
    reason: /^sensor-expired:lidar-node2$/,
  },
  "app-hang": {
    fault: "app-hang:lane-detection@1500ms",
    workloads: ["lane-detection"],
    reason: /^app-expired$/,
  },
  // Delays below the 300 ms timeout fail nothing over.
  jitter: { fault: "jitter:worker-node2:100", workloads: [] },
  partition: {
    fault: "partition:worker-node2@1500ms+1s",
    workloads: ["lane-detection", "pose-estimation"],
    reason: /^node-(offline|expired)$/,
  },
  "planned-stop": {
    fault: "planned-stop:worker-node2@1500ms",
    workloads: ["lane-detection", "pose-estimation"],
    reason: /^planned-stop$/,
  },
};

Deno.test("demo: its config is config/example.yaml as on disk (only the broker URL replaced)", async () => {
  const url = "mqtt://127.0.0.1:1";
  const onDisk = parseConfig(await Deno.readTextFile(EXAMPLE), EXAMPLE);
  assert.deepEqual(demoConfig(url), { ...onDisk, mqtt: { ...onDisk.mqtt, url } });
});

for (const [kind, c] of Object.entries(CASES_BY_KIND)) {
  Deno.test({
    name: `demo on config/example.yaml: ${c.fault} → ${c.workloads.join(", ") || "no failover"}`,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      assert.ok(c.fault.startsWith(`${kind}:`), `the case of ${kind} injects ${c.fault}`);
      const result = await runDemo({ out: () => {}, fault: c.fault });
      const text = result.lines.join("\n");
      assert.ok(result.ok, text);
      const got = result.promotionsReceived.map((p) => p.promotion.workload).sort();
      assert.deepEqual(got, c.workloads, text);
      for (const { promotion } of result.promotionsReceived) {
        assert.equal(promotion.epoch, 1, text);
        assert.equal(promotion.activeNode, "worker-node3", text);
        assert.equal(promotion.issuer, "supervisor", text); // example.yaml's supervisor.id
        if (c.reason) assert.match(promotion.reason, c.reason, text);
      }
      // no healthy node was failed over
      assert.ok(
        !result.events.some((e) =>
          e.type === "transition" && e.transition.isFailure &&
          /worker-node[13]$/.test(e.transition.target.label)
        ),
        text,
      );
    },
  });
}

Deno.test({
  name: "demo: the default run (node crash) prints expiry, promotion and planned API actions",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const result = await runDemo({ out: () => {} });
    const text = result.lines.join("\n");
    assert.ok(result.ok, text);
    assert.match(text, /config\/example\.yaml/);
    assert.match(text, /node\/worker-node2 EXPIRED/);
    assert.match(text, /reconciler {2}planned \(dry run\): .*worker-node2/);
    assert.match(text, /expiry → promotion received \(MQTT\)\s+\d+\.\d+ ms \(lane-detection\)/);
    assert.match(text, /expiry → promotion received \(MQTT\)\s+\d+\.\d+ ms \(pose-estimation\)/);
  },
});

Deno.test({
  name: "demo CLI: `demo --fault sensor-loss:camera-node2@2s` fails over both camera-node2 " +
    "workloads and exits 0",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const out = await spawnMain(["demo", "--fault", "sensor-loss:camera-node2@2s"]).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /promotion published: lane-detection → worker-node3 .*camera-node2/);
    assert.match(text, /promotion published: pose-estimation → worker-node3 .*camera-node2/);
    assert.match(text, /OK: 2 workload\(s\) failed over \(lane-detection, pose-estimation\)/);
  },
});
