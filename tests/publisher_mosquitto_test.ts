/**
 * The publisher against a real mosquitto: Last Will on node-crash, silence without Last Will on
 * node-hang, a retained `degraded:` status (heartbeats going on) on sensor-loss, Last Will and
 * recovery on partition, the drain handshake of a planned stop.
 */
import assert from "node:assert/strict";
import { type Config, ConfigSchema } from "../lib/config/schema.ts";
import { createLogger, type Logger, parseLogfmt, silentLogger } from "../lib/log/log.ts";
import { openSession } from "../lib/mqtt/session.ts";
import { parseFault } from "../lib/publisher/faults.ts";
import { type PublisherReport, runPublisher } from "../lib/publisher/publisher.ts";
import { startMosquitto } from "./harness/mosquitto.ts";
import { agentCommand } from "../lib/cli/agent_command.ts";
import { publishCommand } from "../lib/cli/publish_command.ts";

const HB_PERIOD_MS = 20;
const RUN_MS = 1500;
const FAULT_AT_MS = 500;
/**
 * Allowance for a message published just before a fault to reach the observer, which shares this
 * process's event loop (seen here: a loopback delivery p99 of 6–24 ms, max 29 ms, on a busy 2-core
 * machine).
 */
const IN_FLIGHT_MS = 50;

function testConfig(url: string): Config {
  return ConfigSchema.parse({
    mqtt: { url, keepaliveS: 5, connectTimeoutMs: 3000, reconnectPeriodMs: 100 },
    nodes: [
      {
        name: "worker-node2",
        heartbeatPeriodMs: HB_PERIOD_MS,
        heartbeatTimeoutMs: 100,
        requiredSensors: ["cam-front"],
      },
      {
        name: "worker-node3",
        heartbeatPeriodMs: HB_PERIOD_MS,
        heartbeatTimeoutMs: 100,
        requiredSensors: ["cam-rear"],
      },
    ],
    sensors: [
      { name: "cam-front", node: "worker-node2", periodMs: 20, timeoutMs: 150 },
      { name: "cam-rear", node: "worker-node3", periodMs: 20, timeoutMs: 150 },
    ],
    workloads: [{
      name: "perception",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "perception-a", node: "worker-node2" },
      standby: { deployment: "perception-b", node: "worker-node3" },
      appHeartbeat: { periodMs: 50, timeoutMs: 150 },
    }],
  });
}

/** A test client on `url` without reconnects, opened like every product client. */
function testSession(url: string, clientId: string) {
  return openSession({ config: testConfig(url).mqtt, clientId, reconnect: false });
}

const decoder = new TextDecoder();
const text = (payload: Uint8Array) => decoder.decode(payload);

interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
  atMs: number;
}

/** A subscriber to everything under `sdv/`, recording monotonic arrival times. */
async function observe(url: string): Promise<{ seen: Seen[]; stop(): Promise<void> }> {
  const client = testSession(url, "test-observer");
  const seen: Seen[] = [];
  client.on("message", (topic, payload, packet) => {
    seen.push({
      topic,
      payload: text(payload),
      retain: packet.retain === true,
      atMs: performance.now(),
    });
  });
  client.on("error", () => {});
  await withTimeout(
    new Promise((resolve) => client.on("connect", resolve)),
    3000,
    "observer connect",
  );
  await withTimeout(client.subscribeAsync("sdv/#", { qos: 1 }), 3000, "observer subscribe");
  return { seen, stop: () => client.endAsync() };
}

/** The retained message on `topic`, as a client connecting now receives it. */
async function retainedOn(url: string, topic: string): Promise<Seen | undefined> {
  const client = testSession(url, "test-retained");
  client.on("error", () => {});
  try {
    await withTimeout(new Promise((r) => client.on("connect", r)), 3000, "retained connect");
    const first = new Promise<Seen>((resolve) =>
      client.on(
        "message",
        (t, payload, packet) =>
          resolve({
            topic: t,
            payload: text(payload),
            retain: packet.retain === true,
            atMs: 0,
          }),
      )
    );
    await client.subscribeAsync(topic, { qos: 1 });
    // The broker sends retained messages right after SUBACK; 500 ms is ample on loopback.
    return await Promise.race([first, sleep(500).then(() => undefined)]);
  } finally {
    await client.endAsync();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function logger(): Logger {
  return Deno.env.get("SDV_TEST_LOG") ? createLogger({ level: "debug" }) : silentLogger;
}

/**
 * Starts a broker and an observer, runs the publisher with `faults`, always cleans up. `during`
 * runs alongside the publisher (it must end before the run does).
 */
async function scenario(
  faults: string[],
  check: (r: { report: PublisherReport; seen: Seen[]; url: string }) => Promise<void> | void,
  random?: () => number,
  during?: (url: string) => Promise<void>,
): Promise<void> {
  const broker = await startMosquitto();
  try {
    const obs = await observe(broker.url);
    let report: PublisherReport;
    try {
      [report] = await withTimeout(
        Promise.all([
          runPublisher({
            config: testConfig(broker.url),
            faults: faults.map(parseFault),
            durationMs: RUN_MS,
            log: logger(),
            random,
          }),
          during?.(broker.url),
        ]),
        RUN_MS + 10_000,
        "publisher run",
      );
      await sleep(50); // let the last messages arrive
    } finally {
      await obs.stop();
    }
    await check({ report, seen: obs.seen, url: broker.url });
  } finally {
    await broker.stop();
  }
}

const hb = (node: string) => `sdv/node/${node}/hb`;
const status = (node: string) => `sdv/node/${node}/status`;
const between = (seen: Seen[], topic: string, fromMs: number, toMs: number) =>
  seen.filter((s) => s.topic === topic && s.atMs >= fromMs && s.atMs < toMs);

Deno.test("node-crash: the broker publishes the retained Last Will, heartbeats stop, others go on", async () => {
  await scenario(["node-crash:worker-node2@500ms"], async ({ report, seen, url }) => {
    assert.equal(report.faults.length, 1);
    const fault = report.faults[0];
    assert.equal(fault.spec, "node-crash:worker-node2@500ms");
    assert.ok(
      fault.offsetMs >= FAULT_AT_MS && fault.offsetMs < FAULT_AT_MS + 100,
      `${fault.offsetMs}`,
    );
    assert.ok(
      fault.lastHeartbeatAtMs !== undefined && fault.lastHeartbeatAtMs <= fault.appliedAtMs,
    );
    assert.ok(Math.abs(fault.wallTimeMs - (performance.timeOrigin + fault.appliedAtMs)) < 1e-6);
    assert.equal(report.nodes["worker-node2"].state, "crashed");

    const offline = seen.filter((s) =>
      s.topic === status("worker-node2") && s.payload === "offline"
    );
    assert.equal(offline.length, 1, "exactly one offline: the Last Will");
    assert.ok(offline[0].atMs >= fault.appliedAtMs && offline[0].atMs < report.shutdownAtMs);
    const lwtDelayMs = offline[0].atMs - fault.appliedAtMs;
    console.log(`Last Will received ${lwtDelayMs.toFixed(2)} ms after the socket was destroyed`);
    assert.ok(lwtDelayMs < 500, `LWT delay ${lwtDelayMs} ms`);

    // Heartbeats of worker-node2 before the crash, none after it (IN_FLIGHT_MS for one in flight).
    assert.ok(between(seen, hb("worker-node2"), 0, fault.appliedAtMs).length >= 10);
    assert.deepEqual(
      between(seen, hb("worker-node2"), fault.appliedAtMs + IN_FLIGHT_MS, Infinity),
      [],
    );
    assert.deepEqual(
      between(seen, "sdv/sensor/cam-front/tick", fault.appliedAtMs + IN_FLIGHT_MS, Infinity),
      [],
      "the crashed node's sensors go silent with it",
    );
    // worker-node3 keeps beating until the shutdown.
    const after = between(seen, hb("worker-node3"), fault.appliedAtMs, report.shutdownAtMs);
    const expected = (report.shutdownAtMs - fault.appliedAtMs) / HB_PERIOD_MS;
    assert.ok(after.length >= expected * 0.7, `worker-node3: ${after.length} of ~${expected}`);
    const seqs = after.map((s) => JSON.parse(s.payload).seq as number);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "seq increases");

    const retained = await retainedOn(url, status("worker-node2"));
    assert.deepEqual(retained && [retained.payload, retained.retain], ["offline", true]);
    assert.ok(
      report.nodes["worker-node3"].heartbeatsSent > report.nodes["worker-node2"].heartbeatsSent,
    );
  });
});

Deno.test("node-hang: heartbeats, ticks and app beats stop, and no offline is published", async () => {
  await scenario(["node-hang:worker-node2@500ms"], ({ report, seen }) => {
    const fault = report.faults[0];
    assert.equal(report.nodes["worker-node2"].state, "hung");
    assert.ok(between(seen, hb("worker-node2"), 0, fault.appliedAtMs).length >= 10);
    for (
      const topic of [
        hb("worker-node2"),
        "sdv/sensor/cam-front/tick",
        "sdv/app/perception/worker-node2/hb",
      ]
    ) {
      assert.deepEqual(between(seen, topic, fault.appliedAtMs + IN_FLIGHT_MS, Infinity), [], topic);
    }
    assert.deepEqual(
      seen.filter((s) => s.topic === status("worker-node2") && s.payload === "offline"),
      [],
      "a hung node's connection stays up: no Last Will, and it does not say offline itself",
    );
    const after = between(seen, hb("worker-node3"), fault.appliedAtMs, report.shutdownAtMs);
    assert.ok(after.length >= ((report.shutdownAtMs - fault.appliedAtMs) / HB_PERIOD_MS) * 0.7);
    assert.ok(
      between(seen, "sdv/app/perception/worker-node3/hb", fault.appliedAtMs, Infinity).length > 0,
    );
    // worker-node3 ends in order: retained offline at the shutdown.
    assert.ok(
      seen.some((s) =>
        s.topic === status("worker-node3") && s.payload === "offline" &&
        s.atMs >= report.shutdownAtMs
      ),
    );
  });
});

Deno.test("sensor-loss of a required sensor: heartbeats go on, retained degraded status", async () => {
  let retainedDuringRun: Seen | undefined;
  // At +1100 ms the sensor (lost at +500) has been stale for ≥ 450 ms; the run ends at +1500.
  const during = async (url: string) => {
    await sleep(1100);
    retainedDuringRun = await retainedOn(url, status("worker-node2"));
  };
  await scenario(
    ["sensor-loss:cam-front@500ms"],
    ({ report, seen }) => {
      const fault = report.faults[0];
      assert.equal(fault.node, "worker-node2");
      assert.deepEqual(
        between(seen, "sdv/sensor/cam-front/tick", fault.appliedAtMs + IN_FLIGHT_MS, Infinity),
        [],
      );
      // The node is alive: its heartbeat is not gated on the sensor and goes on to the end.
      const quietFrom = fault.appliedAtMs + 150 + HB_PERIOD_MS + IN_FLIGHT_MS;
      const after = between(seen, hb("worker-node2"), quietFrom, report.shutdownAtMs);
      assert.ok(
        after.length >= ((report.shutdownAtMs - quietFrom) / HB_PERIOD_MS) * 0.7,
        `worker-node2 heartbeats after the loss: ${after.length}`,
      );
      // Its status says which sensor is stale, once, not before the last tick is timeoutMs old.
      const statuses = between(seen, status("worker-node2"), 0, report.shutdownAtMs);
      assert.deepEqual(statuses.map((s) => s.payload), ["online", "degraded:cam-front"]);
      const delayMs = statuses[1].atMs - fault.appliedAtMs;
      console.log(`worker-node2 degraded ${delayMs.toFixed(1)} ms after the sensor loss`);
      assert.ok(delayMs > 100, `not immediate: the last tick is fresh for 150 ms (${delayMs})`);
      assert.ok(delayMs < 150 + HB_PERIOD_MS + IN_FLIGHT_MS, `${delayMs}`);
      assert.deepEqual(
        retainedDuringRun && [retainedDuringRun.payload, retainedDuringRun.retain],
        ["degraded:cam-front", true],
        "retained: a supervisor connecting now learns it at once",
      );
      assert.ok(
        report.nodes["worker-node2"].degradedPeriods >= 30,
        `${report.nodes["worker-node2"].degradedPeriods}`,
      );
      assert.equal(report.nodes["worker-node2"].state, "running");
      assert.ok(
        between(seen, "sdv/app/perception/worker-node2/hb", quietFrom, report.shutdownAtMs).length >
          0,
      );
      // worker-node3 is unaffected.
      assert.deepEqual(
        between(seen, status("worker-node3"), 0, report.shutdownAtMs).map((s) => s.payload),
        ["online"],
      );
    },
    undefined,
    during,
  );
});

Deno.test("planned-stop: draining, the promotion, then offline without Last Will; switchover reported", async () => {
  // Plays the supervisor: on `draining` it publishes the retained promotion to the standby.
  const during = async (url: string) => {
    const sup = testSession(url, "test-supervisor");
    sup.on("error", () => {});
    try {
      await withTimeout(new Promise((r) => sup.on("connect", r)), 3000, "supervisor connect");
      const draining = new Promise<void>((resolve) =>
        sup.on("message", (_t, payload) => {
          if (text(payload) === "draining") resolve();
        })
      );
      await sup.subscribeAsync(status("worker-node2"), { qos: 1 });
      await withTimeout(draining, 3000, "draining");
      await sleep(30); // the supervisor's reaction
      await sup.publishAsync(
        "sdv/workload/perception/promotion",
        JSON.stringify({
          v: 1,
          workload: "perception",
          namespace: "default",
          activeNode: "worker-node3",
          activeDeployment: "perception-b",
          failedNode: "worker-node2",
          epoch: 1,
          reason: "node-draining",
          issuer: "supervisor", // the config's supervisor id (default): agents obey no other
          issuedAt: new Date().toISOString(),
        }),
        { qos: 1, retain: true },
      );
    } finally {
      await sup.endAsync();
    }
  };
  await scenario(
    ["planned-stop:worker-node2@500ms"],
    async ({ report, seen, url }) => {
      const fault = report.faults[0];
      assert.equal(report.nodes["worker-node2"].state, "stopped");
      const drain = fault.drain!;
      assert.equal(drain.outcome, "drained");
      assert.deepEqual(drain.moved, ["perception"]);
      console.log(`planned stop: switchover ${drain.switchoverMs!.toFixed(1)} ms`);
      assert.ok(drain.switchoverMs! >= 30 && drain.switchoverMs! < 1000, `${drain.switchoverMs}`);
      const statuses = seen.filter((s) => s.topic === status("worker-node2"));
      assert.deepEqual(statuses.map((s) => s.payload), ["online", "draining", "offline"]);
      // Heartbeats go on while draining, stop after the offline.
      const [, drainingAt, offlineAt] = statuses.map((s) => s.atMs);
      assert.ok(between(seen, hb("worker-node2"), drainingAt, offlineAt).length >= 1);
      assert.deepEqual(between(seen, hb("worker-node2"), offlineAt + IN_FLIGHT_MS, Infinity), []);
      const retained = await retainedOn(url, status("worker-node2"));
      assert.deepEqual(retained && [retained.payload, retained.retain], ["offline", true]);
    },
    undefined,
    during,
  );
});

Deno.test("partition: Last Will at T, online again and heartbeats resume after DUR", async () => {
  await scenario(["partition:worker-node2@400ms+400ms"], ({ report, seen }) => {
    const fault = report.faults[0];
    assert.ok(fault.healedAtMs !== undefined, "healed");
    assert.ok(fault.healedAtMs! - fault.appliedAtMs >= 400);
    assert.equal(report.nodes["worker-node2"].state, "running");
    const statuses = seen.filter((s) =>
      s.topic === status("worker-node2") && s.atMs < report.shutdownAtMs
    )
      .map((s) => s.payload);
    assert.deepEqual(statuses, ["online", "offline", "online"]);
    assert.deepEqual(
      between(seen, hb("worker-node2"), fault.appliedAtMs + IN_FLIGHT_MS, fault.appliedAtMs + 400),
      [],
    );
    const resumed = between(seen, hb("worker-node2"), fault.healedAtMs!, report.shutdownAtMs);
    assert.ok(resumed.length >= 10, `resumed heartbeats: ${resumed.length}`);
    const seqs: number[] = seen.filter((s) => s.topic === hb("worker-node2"))
      .map((s) => JSON.parse(s.payload).seq);
    // The seq continues across the partition; one heartbeat in flight at the cut may be lost.
    for (let i = 1; i < seqs.length; i++) {
      assert.ok(
        seqs[i] > seqs[i - 1] && seqs[i] - seqs[i - 1] <= 2,
        `seq ${seqs[i - 1]} → ${seqs[i]}`,
      );
    }
    // Nothing was queued during the partition: no burst when the connection comes back.
    const burst = between(
      seen,
      hb("worker-node2"),
      fault.healedAtMs!,
      fault.healedAtMs! + HB_PERIOD_MS,
    );
    assert.ok(burst.length <= 2, `${burst.length} heartbeats within one period of the reconnect`);
  });
});

Deno.test("app-hang stops only the primary's app heartbeats; jitter delays a node's heartbeats", async () => {
  // Jitter draws alternate 0 and 0.9: worker-node3's beats go out 0 / 13.5 ms after their slots.
  let draw = 0;
  const random = () => (draw++ % 2 === 0 ? 0 : 0.9);
  await scenario(["app-hang:perception@500ms", "jitter:worker-node3:15"], ({ report, seen }) => {
    const [jitter, appHang] = report.faults;
    assert.equal(jitter.spec, "jitter:worker-node3:15");
    assert.ok(jitter.offsetMs < 5, "jitter applies from the start");
    assert.equal(appHang.node, "worker-node2");
    const primary = "sdv/app/perception/worker-node2/hb";
    const standby = "sdv/app/perception/worker-node3/hb";
    assert.ok(between(seen, primary, 0, appHang.appliedAtMs).length >= 5);
    assert.deepEqual(between(seen, primary, appHang.appliedAtMs + IN_FLIGHT_MS, Infinity), []);
    const end = report.shutdownAtMs;
    assert.ok(between(seen, standby, appHang.appliedAtMs + IN_FLIGHT_MS, end).length >= 10);
    assert.ok(
      between(seen, hb("worker-node2"), appHang.appliedAtMs + IN_FLIGHT_MS, end).length >= 10,
    );

    const gaps = (topic: string) => {
      const t = between(seen, topic, report.startedAtMs + 100, end).map((s) => s.atMs);
      return t.slice(1).map((x, i) => x - t[i]);
    };
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    // Alternating 0 / 13.5 ms delays give gaps of ≈ 33.5 and ≈ 6.5 ms around the 20 ms period.
    const g3 = gaps(hb("worker-node3"));
    const long = g3.filter((g) => g > 27).length;
    const short = g3.filter((g) => g < 13).length;
    console.log(
      `jitter: worker-node3 gaps median ${
        median(g3).toFixed(1)
      } ms, ${long} long / ${short} short ` +
        `of ${g3.length}; worker-node2 median ${median(gaps(hb("worker-node2"))).toFixed(1)} ms`,
    );
    assert.ok(long >= g3.length * 0.3 && short >= g3.length * 0.3, `${long}/${short}/${g3.length}`);
    const n3 = report.nodes["worker-node3"].heartbeatsSent;
    const n2 = report.nodes["worker-node2"].heartbeatsSent;
    assert.ok(Math.abs(n3 - n2) <= 3, `jitter delays, it does not drop: ${n3} vs ${n2}`);
  }, random);
});

Deno.test("agentCommand: unknown node → 2 with the configured names", async () => {
  const lines: string[] = [];
  const code = await agentCommand({
    config: testConfig("mqtt://127.0.0.1:1"),
    nodeName: "worker-node9",
    signal: new AbortController().signal,
    log: createLogger({ write: (l) => lines.push(l) }),
  });
  assert.equal(code, 2);
  assert.match(
    lines.map((l) => parseLogfmt(l).error).join("\n"),
    /node "worker-node9" is not in the config; configured nodes: worker-node2, worker-node3/,
  );
});

Deno.test("agentCommand against mosquitto: heartbeats regardless of sensors, degraded → online, SIGTERM drains → 0", async () => {
  const broker = await startMosquitto();
  try {
    const obs = await observe(broker.url);
    const ticker = testSession(broker.url, "test-ticker");
    ticker.on("error", () => {});
    try {
      await withTimeout(new Promise((r) => ticker.on("connect", r)), 3000, "ticker connect");
      const controller = new AbortController();
      const running = agentCommand({
        config: testConfig(broker.url),
        nodeName: "worker-node3",
        signal: controller.signal,
        drainTimeoutMs: 2000,
        httpListen: "127.0.0.1:0",
        log: logger(),
      });
      await sleep(300);
      assert.ok(
        between(obs.seen, hb("worker-node3"), 0, Infinity).length >= 5,
        "heartbeats without any cam-rear tick",
      );
      const statusesNow = () =>
        obs.seen.filter((s) => s.topic === status("worker-node3")).map((s) => s.payload);
      assert.deepEqual(statusesNow(), ["online", "degraded:cam-rear"], "never seen in 150 ms");
      let seq = 0;
      const timer = setInterval(
        () => ticker.publish("sdv/sensor/cam-rear/tick", `{"seq":${++seq}}`),
        20,
      );
      await sleep(300);
      clearInterval(timer);
      assert.deepEqual(statusesNow(), ["online", "degraded:cam-rear", "online"]);
      // SIGTERM: worker-node3 runs the standby only, nothing to move: drained at once.
      controller.abort("SIGTERM");
      assert.equal(await withTimeout(running, 5000, "agentCommand"), 0);
      await sleep(50);
      assert.deepEqual(statusesNow(), [
        "online",
        "degraded:cam-rear",
        "online",
        "draining",
        "offline",
      ]);
      const retained = await retainedOn(broker.url, status("worker-node3"));
      assert.deepEqual(retained && [retained.payload, retained.retain], ["offline", true]);
    } finally {
      await ticker.endAsync();
      await obs.stop();
    }
  } finally {
    await broker.stop();
  }
});

Deno.test("publishCommand: bad syntax and unknown names → 2; a run prints its summary → 0", async () => {
  const errors: string[] = [];
  const base = {
    config: testConfig("mqtt://127.0.0.1:1"),
    durationMs: 100,
    signal: new AbortController().signal,
    log: silentLogger,
    out: () => {},
    err: (l: string) => errors.push(l),
  };
  assert.equal(await publishCommand({ ...base, faults: ["node-crash:worker-node2"] }), 2);
  assert.match(errors.join("\n"), /invalid fault "node-crash:worker-node2": missing '@T'/);
  errors.length = 0;
  assert.equal(
    await publishCommand({
      ...base,
      faults: ["node-hang:worker-node9@1s", "sensor-loss:lidar@1s"],
    }),
    2,
  );
  assert.equal(errors.length, 2);
  assert.match(errors[0], /unknown node worker-node9/);
  assert.match(errors[1], /unknown sensor lidar/);

  const broker = await startMosquitto();
  try {
    const out: string[] = [];
    const code = await publishCommand({
      ...base,
      config: testConfig(broker.url),
      faults: [
        "node-hang:worker-node2@100ms",
        "app-hang:perception@5s",
        "planned-stop:worker-node3@150ms",
      ],
      durationMs: 300,
      out: (l) => out.push(l),
    });
    assert.equal(code, 0, errors.join("\n"));
    const text = out.join("\n");
    assert.match(text, /^publisher: ran 3\d\d ms/);
    assert.match(text, /node worker-node2: hung, \d+ heartbeats .*, \d+ degraded periods/);
    assert.match(text, /node worker-node3: stopped, \d+ heartbeats/);
    // worker-node3 runs only the standby: nothing to move.
    assert.match(
      text,
      /fault planned-stop:worker-node3@150ms: applied .*, drained, switchover 0\.0 ms, offline \d+\.\d ms after it/,
    );
    assert.match(text, /fault node-hang:worker-node2@100ms: applied \+10\d\.\d ms/);
    assert.match(text, /fault app-hang:perception@5s: not applied/);
  } finally {
    await broker.stop();
  }
});

Deno.test("publishCommand: an unreachable broker → 1 after connectTimeoutMs", async () => {
  const broker = await startMosquitto();
  const url = broker.url;
  await broker.stop(); // a port where nothing listens now
  const lines: string[] = [];
  const config = testConfig(url);
  config.mqtt.connectTimeoutMs = 300;
  const code = await publishCommand({
    config,
    faults: [],
    durationMs: 100,
    signal: new AbortController().signal,
    log: createLogger({ write: (l) => lines.push(l) }),
    out: () => {},
  });
  assert.equal(code, 1);
  assert.match(lines.join("\n"), /did not connect to mqtt:\/\/127\.0\.0\.1:\d+ within 300 ms/);
});
