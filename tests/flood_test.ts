/**
 * A flood never blinds the supervisor (real mosquitto, the supervisor as its own process with the
 * dry-run reconciler, the simulated nodes in this process, a flood generator as a third process):
 * while one node's heartbeat topic is flooded with valid frames at the generator's full rate and
 * another's with 1 MB payloads (the broker drops those for the supervisor: MQTT 5 Maximum Packet
 * Size), a real hang of a third node is still detected, and no healthy node is failed over. The detection time under the flood is printed and written to
 * `tests/.results/flood.json` (measured, not asserted beyond "detected within 10 s").
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify } from "yaml";
import { ConfigSchema } from "../lib/config/schema.ts";
import { parseFault } from "../lib/publisher/faults.ts";
import { runPublisher } from "../lib/publisher/publisher.ts";
import { startMosquitto } from "./harness/mosquitto.ts";
import { startSupervisor } from "./harness/supervisor_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FLOOD = fileURLToPath(new URL("./tools/flood.ts", import.meta.url));

Deno.test({
  name:
    "flood: valid-frame flood and 1 MB payloads; a real hang is still detected, no false failover",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-flood-" });
    const broker = await startMosquitto({ workDir: dir, tcpNoDelay: true });
    const timeoutMs = 150;
    const raw = {
      supervisor: { id: "flood", bootWindowMs: 1000, statsIntervalMs: 1000 },
      mqtt: { url: broker.url, topicPrefix: "flood", keepaliveS: 5 },
      nodes: ["worker-node1", "worker-node2", "worker-node3"].map((name) => ({
        name,
        heartbeatPeriodMs: 20,
        heartbeatTimeoutMs: timeoutMs,
      })),
      workloads: [{
        name: "lane-detection",
        asil: "B",
        fttiMs: 500,
        primary: { deployment: "lane-detection-original", node: "worker-node2" },
        standby: { deployment: "lane-detection-standby", node: "worker-node3" },
      }],
    };
    const cfg = `${dir}/flood.yaml`;
    Deno.writeTextFileSync(cfg, stringify(raw));
    const config = ConfigSchema.parse(parseYaml(Deno.readTextFileSync(cfg)));
    const sup = await startSupervisor(cfg, { dryRun: true });
    const publishing = runPublisher({
      config,
      faults: [parseFault("node-hang:worker-node2@4s")],
      durationMs: 7000,
    });
    let flood: Deno.ChildProcess | undefined;
    try {
      await sleep(1500);
      flood = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net",
          "--allow-env",
          "--allow-read",
          FLOOD,
          broker.url,
          "flood/node/worker-node1/hb",
          "flood/node/worker-node3/hb",
          String(1024 * 1024),
          "100",
        ],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const hung = await sup.waitFor(
        (l) => l.event === "expired" && l.target === "node/worker-node2",
        10_000,
        "the hung node's expiry under the flood",
      );
      const detectionMs = Number(hung.silenceMs);
      const stats = sup.lines.filter((l) => l.event === "stats").at(-1);
      console.log(
        `flood: hang detected ${detectionMs.toFixed(1)} ms after its last heartbeat ` +
          `(timeout ${timeoutMs} ms; +${(detectionMs - timeoutMs).toFixed(1)} ms); ` +
          `ingest ${stats?.messagesPerS ?? "?"} msg/s, oversized ${stats?.oversized ?? "?"}, ` +
          `ingest faults ${sup.lines.filter((l) => l.event === "ingest-fault").length}`,
      );
      try {
        Deno.mkdirSync("tests/.results", { recursive: true });
        Deno.writeTextFileSync(
          "tests/.results/flood.json",
          JSON.stringify({ timeoutMs, detectionMs, stats }, null, 2),
        );
      } catch { /* read-only checkout */ }
      await sleep(500);
      const others = sup.lines.filter((l) =>
        l.event === "expired" && l.target !== "node/worker-node2"
      );
      assert.deepEqual(others.map((l) => l.target), [], "no healthy node expired");
      const promoted = sup.lines.filter((l) => l.event === "promotion-sent");
      assert.deepEqual(promoted.map((l) => l.workload), ["lane-detection"]);
    } finally {
      try {
        flood?.kill("SIGKILL");
      } catch { /* gone */ }
      await flood?.output();
      const code = await sup.stop();
      await publishing;
      await broker.stop();
      assert.equal(code, 0);
    }
  },
});
