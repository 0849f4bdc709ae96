/**
 * `sdv-failover status` on real components: a private mosquitto, the supervisor as its own process
 * (`main.ts run --dry-run`), one simulated Jetson process per node (`tests/campaign/node_process.ts`:
 * the real agent, sensor ticks, app heartbeats) and `main.ts status` as the operator runs it.
 *
 * Healthy: every node OK with a heartbeat age, the workload active on its primary at epoch 0.
 * worker-node2's process is SIGKILLed (the broker publishes its Last Will): a running
 * `status --watch` redraws with the workload on worker-node3 at a higher epoch, and `status` shows
 * worker-node2 EXPIRED and fenced. After the supervisor's ordered stop it is shown offline.
 */
import assert from "node:assert/strict";
import { startMosquitto } from "./harness/mosquitto.ts";
import { spawnMain, startSupervisor } from "./harness/supervisor_process.ts";
import { type NodeProc, startNodeProc, stopNodeProc } from "./campaign/node_proc.ts";
import type { StatusView } from "../lib/cli/status_table.ts";

const decoder = new TextDecoder();

function vehicle(url: string, prefix = "sdv") {
  return {
    supervisor: { id: "sup", bootWindowMs: 2000, stateIntervalMs: 1000 },
    mqtt: { url, topicPrefix: prefix, reconnectPeriodMs: 100 },
    nodes: ["worker-node2", "worker-node3"].map((name, i) => ({
      name,
      heartbeatPeriodMs: 20,
      heartbeatTimeoutMs: 100,
      requiredSensors: [`camera-node${i + 2}`],
    })),
    sensors: ["worker-node2", "worker-node3"].map((node, i) => ({
      name: `camera-node${i + 2}`,
      node,
      periodMs: 33,
      timeoutMs: 150,
    })),
    workloads: [{
      name: "lane-detection",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "lane-a", node: "worker-node2", sensors: ["camera-node2"] },
      standby: { deployment: "lane-b", node: "worker-node3", sensors: ["camera-node3"] },
      appHeartbeat: { periodMs: 33, timeoutMs: 150 },
    }],
  };
}

/** Runs `main.ts status <args>` to its end: exit code, stdout, stderr. */
async function status(args: string[]) {
  const out = await spawnMain(["status", ...args]).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** `status -o json` until `accept` holds for its only view (bounded: `tries` runs). */
async function statusUntil(
  configPath: string,
  accept: (v: StatusView) => boolean,
  tries = 20,
): Promise<StatusView> {
  let last = "";
  for (let i = 0; i < tries; i++) {
    const r = await status(["-o", "json", "--config", configPath]);
    last = `exit ${r.code}: ${r.stdout}${r.stderr}`;
    if (r.code === 0) {
      const views: StatusView[] = JSON.parse(r.stdout);
      assert.equal(views.length, 1);
      if (accept(views[0])) return views[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`status never showed the expected state; last: ${last}`);
}

/** The NDJSON draws of a running `status --watch -o json`, as they come. */
function watchStatus(configPath: string) {
  const child = spawnMain(["status", "--watch", "-o", "json", "--config", configPath]);
  const draws: StatusView[][] = [];
  const waiters: (() => void)[] = [];
  const pump = (async () => {
    let buffer = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        draws.push(JSON.parse(buffer.slice(0, nl)));
        buffer = buffer.slice(nl + 1);
        for (const w of waiters.splice(0)) w();
      }
    }
  })();
  const stderr = new Response(child.stderr).text();
  return {
    draws,
    /** Resolves with the first draw (seen or future) whose view satisfies `accept`. */
    async until(accept: (v: StatusView) => boolean, timeoutMs: number): Promise<StatusView> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = draws.map((d) => d[0]).find((v) => v && accept(v));
        if (hit) return hit;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no such redraw in ${timeoutMs} ms (${draws.length} draws)`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    async stop(): Promise<{ code: number; stderr: string }> {
      child.kill("SIGINT");
      const { code } = await child.status;
      await pump;
      return { code, stderr: await stderr };
    },
  };
}

Deno.test({
  name: "status on real mosquitto: healthy nodes, a node crash seen by --watch and status, offline",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const broker = await startMosquitto();
    const dir = await Deno.makeTempDir({ prefix: "sdv-status-" });
    const configPath = `${dir}/config.yaml`;
    await Deno.writeTextFile(configPath, JSON.stringify(vehicle(broker.url)));
    const nodes: NodeProc[] = [];
    let supervisor: Awaited<ReturnType<typeof startSupervisor>> | undefined;
    try {
      for (const node of ["worker-node2", "worker-node3"]) {
        nodes.push(await startNodeProc({ node, configPath, url: broker.url, execPrefix: [] }));
      }
      supervisor = await startSupervisor(configPath, { dryRun: true });

      // Healthy: every target OK, ages measured, the workload on its primary at epoch 0.
      const healthy = await statusUntil(
        configPath,
        (v) => v.snapshot?.nodes.every((n) => n.state === "OK") === true,
      );
      assert.equal(healthy.id, "sup");
      assert.equal(healthy.status, "online");
      const s = healthy.snapshot!;
      assert.equal(s.supervisor.role, "single");
      assert.equal(s.supervisor.armed, true);
      assert.ok(s.nodes.every((n) => n.heartbeatAgeMs !== null && n.fence === "none"));
      assert.ok(s.sensors.every((x) => x.state === "OK" && x.ageMs !== null));
      assert.deepEqual(s.apps.map((a) => [a.node, a.state]), [
        ["worker-node2", "OK"],
        ["worker-node3", "OK"],
      ]);
      assert.equal(s.workloads[0].activeNode, "worker-node2");
      assert.equal(s.workloads[0].epoch, 0);

      // The table, as an operator reads it.
      const table = await status(["--config", configPath]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^supervisor sup: single, running, armed, ingest ok/);
      assert.match(table.stdout, /^worker-node2 +OK +\d+ ms +-$/m);
      assert.match(
        table.stdout,
        /^lane-detection +B +500 ms +worker-node2 +worker-node3 +0 +initial$/m,
      );

      // A crash while --watch runs: it redraws with the failover.
      const watch = watchStatus(configPath);
      await watch.until((v) => v.snapshot !== null, 15_000);
      nodes[0].signal("SIGKILL");
      await nodes[0].exited;
      const moved = await watch.until(
        (v) => v.snapshot?.workloads[0].activeNode === "worker-node3",
        15_000,
      );
      assert.ok(moved.snapshot!.workloads[0].epoch > 0);
      const stopped = await watch.stop();
      assert.equal(stopped.code, 0, stopped.stderr);

      const crashed = await statusUntil(
        configPath,
        (v) => v.snapshot?.nodes[0].fence === "fenced",
      );
      const [node2, node3] = crashed.snapshot!.nodes;
      assert.equal(node2.state, "EXPIRED");
      assert.equal(node2.fenceReason, "node-offline");
      assert.equal(node3.state, "OK");
      assert.equal(node3.fence, "none");
      const lane = crashed.snapshot!.workloads[0];
      assert.deepEqual([lane.activeNode, lane.standbyNode, lane.reason], [
        "worker-node3",
        "worker-node2",
        "node-offline",
      ]);
      assert.ok(lane.epoch > healthy.snapshot!.workloads[0].epoch);

      const after = await status(["--config", configPath]);
      assert.equal(after.code, 0, after.stderr);
      assert.match(after.stdout, /^worker-node2 +EXPIRED +[\d.]+ m?s +fenced +node-offline$/m);
      console.log(after.stdout);

      // Ordered stop: the retained status says offline; the last state stays readable.
      assert.equal(await supervisor.stop(), 0);
      const offline = await status(["-o", "json", "--config", configPath]);
      assert.equal(offline.code, 0, offline.stderr);
      const [view]: StatusView[] = JSON.parse(offline.stdout);
      assert.equal(view.status, "offline");
      assert.equal(view.snapshot?.workloads[0].activeNode, "worker-node3");

      // Nothing published under another prefix: exit 1 with a clear message.
      const otherPath = `${dir}/other.yaml`;
      await Deno.writeTextFile(otherPath, JSON.stringify(vehicle(broker.url, "elsewhere")));
      const nothing = await status(["--config", otherPath, "--timeout", "500ms"]);
      assert.equal(nothing.code, 1);
      assert.equal(nothing.stdout, "");
      assert.match(nothing.stderr, /nothing received from .* on elsewhere\/supervisor\/sup\/state/);
    } finally {
      await supervisor?.stop().catch(() => {});
      for (const n of nodes) await stopNodeProc(n).catch(() => {});
      await broker.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
