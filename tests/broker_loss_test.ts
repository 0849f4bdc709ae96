/**
 * A lost broker is an ingest fault, never every node failing at once: real mosquitto is killed
 * under a running supervisor (as its own process) and the simulated nodes, then restarted on the
 * same port. Nothing may fail over; the supervisor reports the fault and resumes supervision.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { startMosquitto } from "./harness/mosquitto.ts";
import { spawnMain, startSupervisor } from "./harness/supervisor_process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "broker loss: ingest fault, supervision suspended, no failover; resumes after restart",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-broker-loss-" });
    let broker = await startMosquitto({ workDir: dir, tcpNoDelay: true });
    const port = broker.port;
    const config = {
      supervisor: { id: "loss", bootWindowMs: 500, barrierTimeoutMs: 100 },
      mqtt: { url: broker.url, topicPrefix: "loss", reconnectPeriodMs: 200, keepaliveS: 5 },
      nodes: ["worker-node2", "worker-node3"].map((name) => ({
        name,
        heartbeatPeriodMs: 20,
        heartbeatTimeoutMs: 100,
      })),
      workloads: [{
        name: "lane-detection",
        asil: "B",
        fttiMs: 500,
        primary: { deployment: "lane-detection-original", node: "worker-node2" },
        standby: { deployment: "lane-detection-standby", node: "worker-node3" },
      }],
    };
    const cfg = `${dir}/loss.yaml`;
    Deno.writeTextFileSync(cfg, stringify(config));
    const sup = await startSupervisor(cfg, { dryRun: true });
    const publisher = spawnMain(["publish", "--config", cfg, "--duration", "60s"]);
    try {
      await sleep(1500); // past the grace, nodes OK
      assert.deepEqual(sup.lines.filter((l) => l.event === "expired"), []);
      await broker.stop(); // the broker dies under everyone
      await sup.waitFor((l) => l.event === "ingest-fault", 5000, "ingest-fault");
      await sleep(2000); // far longer than every heartbeat timeout
      broker = await startMosquitto({ workDir: dir, tcpNoDelay: true, port });
      await sup.waitFor((l) => l.event === "ingest-restored", 10_000, "ingest-restored");
      await sleep(1500); // nodes reconnect and heartbeat again
      const expired = sup.lines.filter((l) => l.event === "expired");
      assert.deepEqual(expired, [], "no node expired because of the broker");
      assert.equal(sup.lines.filter((l) => l.event === "planned-action").length, 0, "no failover");
    } finally {
      const code = await sup.stop();
      try {
        publisher.kill("SIGTERM");
      } catch { /* gone */ }
      await publisher.output();
      await broker.stop();
      assert.equal(code, 0);
    }
  },
});
