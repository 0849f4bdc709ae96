/**
 * systemd's notification protocol against a real listener: a unix datagram socket in a temporary
 * directory plays systemd's `/run/systemd/notify`; the real `main.ts run --dry-run` (and `agent`)
 * run as processes with `NOTIFY_SOCKET` and `WATCHDOG_USEC` set and the shipped permission set
 * (the one writable path being the socket), beside a real mosquitto and the simulated nodes of
 * `main.ts publish`.
 *
 * Shown: READY=1 only after the broker connection and the armed watchdog; WATCHDOG=1 every half
 * timeout; a stopped process sends nothing; a killed broker is tolerated for the documented bound
 * (5 × WatchdogSec) and then the pings stop while the process stays up, with STATUS naming the
 * ingest fault; the broker back → pings resume; SIGTERM → STOPPING=1.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { startMosquitto } from "./harness/mosquitto.ts";
import { spawnMain, watchMain } from "./harness/supervisor_process.ts";
import { PERMISSIONS, UNSTABLE_FLAGS } from "../scripts/compile.ts";
import { connectionFaultBoundMs } from "../lib/systemd/liveness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WATCHDOG_MS = 400; // WATCHDOG_USEC=400000: pings every 200 ms
const RECONNECT_MS = 200;

interface Notification {
  atMs: number;
  fields: Record<string, string>;
}

/** A stand-in for systemd's notification socket: records every datagram with its arrival time. */
function notifyListener(path: string) {
  const conn = Deno.listenDatagram({ transport: "unixpacket", path });
  const received: Notification[] = [];
  const decoder = new TextDecoder();
  const loop = (async () => {
    try {
      for await (const [data] of conn) {
        const fields: Record<string, string> = {};
        for (const line of decoder.decode(data).split("\n")) {
          const eq = line.indexOf("=");
          fields[line.slice(0, eq)] = line.slice(eq + 1);
        }
        received.push({ atMs: performance.now(), fields });
      }
    } catch { /* closed */ }
  })();
  /** Polls (bounded) until a notification matching `pred` arrived after index `from`. */
  const waitFor = async (
    pred: (n: Notification) => boolean,
    timeoutMs: number,
    what: string,
    from = 0,
  ) => {
    const end = performance.now() + timeoutMs;
    while (performance.now() < end) {
      const found = received.slice(from).find(pred);
      if (found) return found;
      await sleep(20);
    }
    throw new Error(`no ${what} within ${timeoutMs} ms; got ${JSON.stringify(received.slice(-5))}`);
  };
  const pings = () => received.filter((n) => n.fields.WATCHDOG === "1");
  return {
    received,
    waitFor,
    pings,
    close: async () => {
      conn.close();
      await loop;
    },
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function writeConfig(dir: string, port: number): string {
  const config = {
    supervisor: { id: "sd", bootWindowMs: 500, barrierTimeoutMs: 100 },
    mqtt: {
      url: `mqtt://127.0.0.1:${port}`,
      topicPrefix: "sd",
      reconnectPeriodMs: RECONNECT_MS,
      keepaliveS: 5,
    },
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
  const path = `${dir}/sd.yaml`;
  Deno.writeTextFileSync(path, stringify(config));
  return path;
}

/** The shipped flags, with the writable notification socket moved to the test's socket. */
function flagsFor(socket: string): string[] {
  return [
    ...PERMISSIONS.map((p) => p.startsWith("--allow-write=") ? `--allow-write=${socket}` : p),
    ...UNSTABLE_FLAGS,
  ];
}

Deno.test({
  name:
    "systemd notify (run): READY after the broker and the armed watchdog, WATCHDOG only while ingest is alive",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-systemd-" });
    const socket = `${dir}/notify`;
    const sd = notifyListener(socket);
    const port = freePort();
    const cfg = writeConfig(dir, port);
    const env = { NOTIFY_SOCKET: socket, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) };
    const sup = watchMain(
      ["run", "--config", cfg, "--dry-run", "--log-format", "json"],
      env,
      { flags: flagsFor(socket) },
    );
    let broker: Awaited<ReturnType<typeof startMosquitto>> | undefined;
    let publisher: Deno.ChildProcess | undefined;
    try {
      // 1. no broker yet: the supervisor runs (and reports the refused connection) but is not ready
      await sup.waitFor((l) => l.event === "mqtt-error", 15_000, "mqtt-error");
      await sleep(1500);
      assert.deepEqual(sd.received, [], "nothing before the broker connection");
      const mqttErrors = sup.lines.filter((l) => l.event === "mqtt-error");
      broker = await startMosquitto({ workDir: dir, port, tcpNoDelay: true });
      const ready = await sd.waitFor((n) => n.fields.READY === "1", 15_000, "READY=1");
      const armed = sup.lines.find((l) => l.event === "armed");
      const readyLine = sup.lines.find((l) => l.event === "systemd-ready");
      assert.ok(armed && readyLine, "armed and systemd-ready logged");
      assert.ok(armed.tMs <= readyLine.tMs, "READY after armed, on the supervisor's own clock");
      assert.match(ready.fields.STATUS, /^running: \d+\/\d+ armed, 0 expired, ingest ok$/);
      publisher = spawnMain(["publish", "--config", cfg, "--duration", "120s"]);
      // 2. periodic pings
      const base = sd.pings().length;
      await sd.waitFor(() => sd.pings().length >= base + 5, 10_000, "5 pings");
      // 3. a stopped process sends nothing
      Deno.kill(sup.pid, "SIGSTOP");
      await sleep(300); // a datagram sent just before the stop may still be in flight
      const whileStopped = sd.received.length;
      await sleep(1000);
      assert.equal(sd.received.length, whileStopped, "no notification while stopped");
      Deno.kill(sup.pid, "SIGCONT");
      const afterCont = sd.pings().length;
      await sd.waitFor(() => sd.pings().length > afterCont + 2, 10_000, "pings after SIGCONT");
      // 4. the broker dies: tolerated for the bound, then no pings while the process stays up
      await sleep(1000);
      const boundMs = connectionFaultBoundMs(WATCHDOG_MS, RECONNECT_MS);
      await broker.kill();
      const killedAt = performance.now();
      const fault = await sd.waitFor(
        (n) => /ingest fault/.test(n.fields.STATUS ?? ""),
        10_000,
        "STATUS with the ingest fault",
      );
      assert.match(fault.fields.STATUS, /ingest fault \d+\.\d s: broker connection closed/);
      const quietFromIndex = sd.received.length;
      // wait (bounded) for a gap of five ping intervals without a ping
      const quietMs = 5 * WATCHDOG_MS / 2;
      let lastPingAt = sd.pings().at(-1)!.atMs;
      const end = performance.now() + boundMs + 10_000;
      while (performance.now() - lastPingAt < quietMs && performance.now() < end) {
        await sleep(50);
        lastPingAt = sd.pings().at(-1)!.atMs;
      }
      assert.ok(performance.now() - lastPingAt >= quietMs, "pings stopped");
      const pingsAfterKill = sd.pings().filter((n) => n.atMs > killedAt);
      assert.ok(pingsAfterKill.length > 0, "a fault within the bound is tolerated");
      const toleratedMs = lastPingAt - killedAt;
      console.log(
        `broker killed → last ping after ${toleratedMs.toFixed(0)} ms (bound ${boundMs} ms ` +
          `from the ingest fault), ${pingsAfterKill.length} pings during the fault`,
      );
      assert.ok(toleratedMs <= boundMs + 1000, `pinged ${toleratedMs} ms into the fault`);
      assert.ok(sup.lines.some((l) => l.event === "systemd-watchdog-withheld"));
      await sleep(1000);
      assert.equal(sd.pings().at(-1)!.atMs, lastPingAt, "still no ping");
      const exited = await Promise.race([sup.exited.then(() => true), sleep(10).then(() => false)]);
      assert.equal(exited, false, "the process stays up (systemd decides)");
      assert.ok(sd.received.length >= quietFromIndex);
      // 5. the broker is back: pings resume, STATUS says ingest ok
      broker = await startMosquitto({ workDir: dir, port, tcpNoDelay: true });
      const resumed = await sd.waitFor(
        (n) => n.fields.WATCHDOG === "1" && n.atMs > lastPingAt,
        15_000,
        "pings after the broker came back",
      );
      await sd.waitFor(
        (n) => /ingest ok$/.test(n.fields.STATUS ?? "") && n.atMs >= resumed.atMs,
        15_000,
        "STATUS ingest ok",
        0,
      );
      // the repeated connection errors were summarised, not logged every 200 ms
      const errors = sup.lines.filter((l) => l.event === "mqtt-error");
      assert.ok(mqttErrors.length <= 3, JSON.stringify(mqttErrors));
      console.log(
        `mqtt-error lines: ${errors.length} (${errors.filter((l) => l.repeated).length} summaries)`,
      );
      // 6. SIGTERM: STOPPING=1
      const code = await sup.stop();
      assert.equal(code, 0);
      await sd.waitFor((n) => n.fields.STOPPING === "1", 5000, "STOPPING=1");
    } finally {
      await sup.stop();
      if (publisher) {
        try {
          publisher.kill("SIGTERM");
        } catch { /* gone */ }
        await publisher.output();
      }
      await broker?.stop();
      await sd.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "systemd notify (agent): READY at the first heartbeat, WATCHDOG while heartbeating, STOPPING on SIGTERM",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-systemd-agent-" });
    const socket = `${dir}/notify`;
    const sd = notifyListener(socket);
    const broker = await startMosquitto({ workDir: dir, tcpNoDelay: true });
    const cfg = writeConfig(dir, broker.port);
    const agent = watchMain(
      ["agent", "--config", cfg, "--node", "worker-node2", "--log-format", "json"],
      { NOTIFY_SOCKET: socket, WATCHDOG_USEC: String(WATCHDOG_MS * 1000) },
      { flags: flagsFor(socket) },
    );
    try {
      const ready = await sd.waitFor((n) => n.fields.READY === "1", 15_000, "READY=1");
      assert.match(ready.fields.STATUS, /^heartbeating 50 Hz, online, broker connected$/);
      assert.ok(agent.lines.some((l) => l.event === "connected"), "connected before READY");
      const base = sd.pings().length;
      await sd.waitFor(() => sd.pings().length >= base + 5, 10_000, "5 pings");
      assert.equal(await agent.stop(), 0);
      const stopping = await sd.waitFor((n) => n.fields.STOPPING === "1", 5000, "STOPPING=1");
      assert.match(stopping.fields.STATUS, /planned stop \(SIGTERM\)/);
    } finally {
      await agent.stop();
      await broker.stop();
      await sd.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
