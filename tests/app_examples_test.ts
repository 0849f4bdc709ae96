/**
 * The application examples of docs/app_contract.md (`examples/python/app.py` on paho-mqtt,
 * `examples/c/app.c` on libmosquitto, compiled here into a temporary directory) run as the two
 * instances of a workload, against a real mosquitto, the real supervisor (`main.ts run --dry-run`)
 * and the real node agents (`main.ts agent`) of both nodes:
 *
 * 1. the supervisor sees both instances' app heartbeats: no app target expires after the boot
 *    window while they run;
 * 2. the primary instance hangs (SIGSTOP): the supervisor fails over (app-expired, epoch 1), the
 *    standby instance prints that it is active at epoch 1; the old primary resumes (SIGCONT), sees
 *    the higher epoch naming the other node and stands down;
 * 3. a promotion from a non-supervisor issuer (epoch 99) is ignored by both;
 * 4. the now active instance is killed (SIGKILL): the supervisor fails back over at epoch 2 and
 *    the first instance is active again; a restarted second instance reads the retained epoch 2
 *    and stays standby; a lower epoch and a reused epoch naming the other node are ignored by
 *    both;
 * 5. the broker is killed: the active instance stands by once the app timeout has passed (it can
 *    no longer know that it was not failed over), the standby stays standby; when the broker is
 *    back the active instance takes its held role again.
 *
 * Needs python3-paho-mqtt, gcc, pkg-config, libmosquitto-dev and libcjson-dev
 * (`scripts/setup_test_deps.sh`); `SDV_SKIP_APP_EXAMPLES=1` skips it.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import mqtt from "mqtt";
import { stringify } from "yaml";
import { startMosquitto } from "./harness/mosquitto.ts";
import {
  type LogLine,
  startSupervisor,
  type SupervisorProcess,
  watchMain,
} from "./harness/supervisor_process.ts";

const EXAMPLES = fileURLToPath(new URL("../examples/", import.meta.url));
const SKIP = Deno.env.get("SDV_SKIP_APP_EXAMPLES") === "1";
/** Upper bound of every wait for an event, ms (a bound on a hang, not a timing assertion). */
const WAIT_MS = 15_000;
const PREFIX = "apps";
const WORKLOAD = "lane-detection";
const PRIMARY = "worker-node2";
const STANDBY = "worker-node3";
const APP_PERIOD_MS = 50;
const APP_TIMEOUT_MS = 300;
const BOOT_WINDOW_MS = 1000;
const RECOVERY_WINDOW_MS = 300;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running example app: its stdout lines, a bounded wait for one, and signals. */
interface AppProcess {
  node: string;
  lines: string[];
  /** The first line matching `re` among the lines from index `from` on (default 0). */
  waitFor(re: RegExp, what: string, from?: number): Promise<string>;
  signal(sig: Deno.Signal): void;
  stop(): Promise<void>;
}

/** How to start one example: the command and its arguments. */
interface Example {
  name: string;
  command: string[];
}

/** Starts one instance of `example` on `node`, configured through the environment. */
function startApp(example: Example, node: string, brokerPort: number): AppProcess {
  const child = new Deno.Command(example.command[0], {
    args: example.command.slice(1),
    env: {
      SDV_BROKER_HOST: "127.0.0.1",
      SDV_BROKER_PORT: String(brokerPort),
      SDV_TOPIC_PREFIX: PREFIX,
      SDV_WORKLOAD: WORKLOAD,
      SDV_NODE: node,
      SDV_PRIMARY_NODE: PRIMARY,
      SDV_STANDBY_NODE: STANDBY,
      SDV_ISSUERS: "supervisor",
      SDV_HEARTBEAT_PERIOD_MS: String(APP_PERIOD_MS),
      SDV_APP_TIMEOUT_MS: String(APP_TIMEOUT_MS),
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, tag: string) => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = tag + buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        for (const w of [...waiters]) {
          if (w.re.test(line)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, ""), pump(child.stderr, "stderr: ")]);
  let exited = false;
  const status = child.status.then((s) => (exited = true, s));
  return {
    node,
    lines,
    waitFor(re, what, from = 0) {
      const seen = lines.slice(from).find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(entry), 1);
          reject(
            new Error(
              `${example.name} on ${node}: no ${what} within ${WAIT_MS} ms:\n` +
                lines.slice(-20).join("\n"),
            ),
          );
        }, WAIT_MS);
        const entry = {
          re,
          resolve: (line: string) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.push(entry);
      });
    },
    signal(sig) {
      if (!exited) child.kill(sig);
    },
    async stop() {
      if (!exited) {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      }
      await status;
      await pumps;
    },
  };
}

/** Lines of `app` printed after its first `from` lines (to check what a step changed). */
function linesSince(app: AppProcess, from: number): string[] {
  return app.lines.slice(from);
}

/** The supervisor's lines of one event. */
function events(sup: SupervisorProcess, event: string): LogLine[] {
  return sup.lines.filter((l) => l.event === event);
}

/** Publishes a (forged) promotion of the workload, QoS 1, not retained, from a test client. */
async function forge(url: string, fields: Record<string, unknown>): Promise<void> {
  const client = await mqtt.connectAsync(url, { clientId: `forger-${crypto.randomUUID()}` });
  try {
    await client.publishAsync(
      `${PREFIX}/workload/${WORKLOAD}/promotion`,
      JSON.stringify({
        v: 1,
        workload: WORKLOAD,
        namespace: "default",
        activeDeployment: `${WORKLOAD}-original`,
        failedNode: STANDBY,
        reason: "app-expired",
        issuedAt: new Date().toISOString(),
        ...fields,
      }),
      { qos: 1, retain: false },
    );
  } finally {
    await client.endAsync();
  }
}

/** Waits until both apps printed that they ignored `epoch` for `reason`; their roles unchanged. */
async function assertIgnoredByBoth(
  apps: AppProcess[],
  reason: string,
  epoch: number,
): Promise<void> {
  const marks = apps.map((a) => a.lines.length);
  await Promise.all(
    apps.map((a) =>
      a.waitFor(
        new RegExp(`^promotion ignored reason=${reason} epoch=${epoch} `),
        `${reason} refusal of epoch ${epoch}`,
      )
    ),
  );
  await sleep(4 * APP_PERIOD_MS); // the work loop prints a role change within one period
  apps.forEach((a, i) => {
    const changed = linesSince(a, marks[i]).filter((l) => l.startsWith("role="));
    assert.deepEqual(changed, [], `${a.node} changed its role on a forged promotion`);
  });
}

async function runScenario(example: Example, dir: string): Promise<void> {
  let broker = await startMosquitto({ workDir: dir });
  const raw = {
    supervisor: {
      id: "supervisor",
      bootWindowMs: BOOT_WINDOW_MS,
      recoveryWindowMs: RECOVERY_WINDOW_MS,
    },
    mqtt: { url: broker.url, topicPrefix: PREFIX },
    cluster: { kubeconfig: "unused-in-a-dry-run" },
    nodes: [PRIMARY, STANDBY].map((name) => ({
      name,
      heartbeatPeriodMs: 50,
      heartbeatTimeoutMs: 300,
    })),
    workloads: [{
      name: WORKLOAD,
      asil: "B",
      fttiMs: 500,
      primary: { deployment: `${WORKLOAD}-original`, node: PRIMARY },
      standby: { deployment: `${WORKLOAD}-standby`, node: STANDBY },
      appHeartbeat: { periodMs: APP_PERIOD_MS, timeoutMs: APP_TIMEOUT_MS },
      // No deletePods: in a dry run no ReplicaSet replaces a deleted pod, so the instance that
      // failed first would never be a trusted standby for the failover back (step 4).
      actions: ["promote", "markDeployments", "events"],
    }],
  };
  const cfg = `${dir}/apps.yaml`;
  await Deno.writeTextFile(cfg, stringify(raw));
  const agents: SupervisorProcess[] = [];
  const apps: AppProcess[] = [];
  let sup: SupervisorProcess | undefined;
  try {
    for (const node of [PRIMARY, STANDBY]) {
      const agent = watchMain(["agent", "--config", cfg, "--node", node, "--log-format", "json"]);
      agents.push(agent);
      await agent.waitFor((l) => l.event === "connected", WAIT_MS, `agent ${node} connected`);
    }
    const primary = startApp(example, PRIMARY, broker.port);
    let standby = startApp(example, STANDBY, broker.port);
    apps.push(primary, standby);
    await primary.waitFor(/^role=active epoch=0 activeNode=worker-node2 /, "active at start");
    // not active before it knows the promotion state (no promotion yet: SUBACK + settle time)
    assert.match(
      primary.lines.find((l) => l.startsWith("role=")) ?? "",
      /^role=standby epoch=0 .*why=(connecting|promotion-unknown)$/,
    );
    await standby.waitFor(/^role=standby epoch=0 activeNode=worker-node2 /, "standby at start");

    // 1. Heartbeats seen: past the boot window, a never-seen app would have expired.
    sup = await startSupervisor(cfg, { dryRun: true });
    await sleep(BOOT_WINDOW_MS + 2 * APP_TIMEOUT_MS);
    assert.deepEqual(events(sup, "expired"), [], "a target expired while every app ran");
    assert.deepEqual(events(sup, "promotion-sent"), []);

    // 2. Primary hangs → failover at epoch 1; the old primary stands down on SIGCONT.
    primary.signal("SIGSTOP");
    const sent1 = await sup.waitFor(
      (l) => l.event === "promotion-sent" && l.epoch === 1,
      WAIT_MS,
      "promotion at epoch 1",
    );
    assert.equal(sent1.activeNode, STANDBY);
    assert.equal(sent1.reason, "app-expired");
    const expired = events(sup, "expired");
    assert.deepEqual(expired.map((l) => [l.target, l.from]), [
      [`app/${WORKLOAD}/${PRIMARY}`, "OK"], // OK: its heartbeats had been seen
    ]);
    await standby.waitFor(
      /^role=active epoch=1 activeNode=worker-node3 why=promotion$/,
      "active at epoch 1",
    );
    primary.signal("SIGCONT");
    await primary.waitFor(
      /^promotion obeyed epoch=1 activeNode=worker-node3 issuer=supervisor$/,
      "the epoch 1 promotion",
    );
    await primary.waitFor(
      /^role=standby epoch=1 activeNode=worker-node3 why=promotion$/,
      "standing down at epoch 1",
    );

    // 3. A non-supervisor issuer is ignored by both (and by the supervisor).
    await forge(broker.url, { issuer: "mallory", epoch: 99, activeNode: PRIMARY });
    await assertIgnoredByBoth([primary, standby], "unknown-issuer", 99);

    // 4. The active instance dies → back to the first at epoch 2 (once its heartbeats recovered).
    await sup.waitFor(
      (l) => l.event === "transition" && l.target === `app/${WORKLOAD}/${PRIMARY}` && l.to === "OK",
      WAIT_MS,
      "the first instance's app target OK again",
    );
    standby.signal("SIGKILL");
    const sent2 = await sup.waitFor(
      (l) => l.event === "promotion-sent" && l.epoch === 2,
      WAIT_MS,
      "promotion at epoch 2",
    );
    assert.equal(sent2.activeNode, PRIMARY);
    await primary.waitFor(
      /^role=active epoch=2 activeNode=worker-node2 why=promotion$/,
      "active at epoch 2",
    );
    await standby.stop();
    standby = startApp(example, STANDBY, broker.port);
    apps.push(standby);
    await standby.waitFor(/^promotion obeyed epoch=2 activeNode=worker-node2 /, "retained epoch 2");
    await standby.waitFor(/^role=standby epoch=2 activeNode=worker-node2 /, "standby at epoch 2");
    assert.ok(
      !standby.lines.some((l) => l.startsWith("role=active")),
      `the restarted instance was active before it read the retained promotion:\n${
        standby.lines.join("\n")
      }`,
    );
    await forge(broker.url, { issuer: "supervisor", epoch: 1, activeNode: STANDBY });
    await assertIgnoredByBoth([primary, standby], "stale", 1);
    await forge(broker.url, { issuer: "supervisor", epoch: 2, activeNode: STANDBY });
    await assertIgnoredByBoth([primary, standby], "epoch-reused", 2);
    assert.deepEqual(events(sup, "promotion-sent").map((l) => l.epoch), [1, 2]);

    // 5. Broker loss: the active instance stands by once the app timeout has passed, and takes
    // its held role again when it is back and has re-read the promotions (none: not persisted).
    const marks = [primary.lines.length, standby.lines.length];
    await broker.kill();
    await primary.waitFor(/^broker lost$/, "broker lost", marks[0]);
    await primary.waitFor(
      /^role=standby epoch=2 activeNode=worker-node2 why=broker-lost$/,
      "standing by without the broker",
      marks[0],
    );
    await broker.stop();
    broker = await startMosquitto({ workDir: dir, port: broker.port });
    await primary.waitFor(/^broker connected$/, "reconnected", marks[0]);
    await primary.waitFor(
      /^role=active epoch=2 activeNode=worker-node2 why=promotion$/,
      "active again after the reconnect",
      marks[0],
    );
    await standby.waitFor(/^broker connected$/, "reconnected", marks[1]);
    await sleep(2 * APP_TIMEOUT_MS); // a late app heartbeat would expire within one timeout
    assert.deepEqual(
      events(sup, "promotion-sent").map((l) => l.epoch),
      [1, 2],
      "the broker outage failed an app over",
    );
    assert.ok(
      !linesSince(standby, marks[1]).some((l) => l.startsWith("role=active")),
      "a standby made itself active on broker loss",
    );
  } catch (error) {
    // The supervisor's view belongs to every failure report.
    const tail = (sup?.lines ?? []).filter((l) => l.event !== "planned-action").slice(-25);
    throw new Error(
      `${(error as Error).message}\nsupervisor:\n${tail.map((l) => JSON.stringify(l)).join("\n")}`,
    );
  } finally {
    await Promise.all(apps.map((a) => a.stop()));
    if (sup) await sup.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await broker.stop();
  }
}

Deno.test({
  name:
    "app examples: Python (paho-mqtt) heartbeats, fails over on a hang, stands down, rides out broker loss, " +
    "ignores forged promotions",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sdv-app-py-" });
    try {
      await runScenario(
        { name: "python", command: ["/usr/bin/python3", "-u", `${EXAMPLES}python/app.py`] },
        dir,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "app examples: C (libmosquitto) heartbeats, fails over on a hang, stands down, rides out broker loss, " +
    "ignores forged promotions",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sdv-app-c-" });
    try {
      const flags = new TextDecoder().decode(
        (await new Deno.Command("pkg-config", {
          args: ["--cflags", "--libs", "libmosquitto", "libcjson"],
          stdout: "piped",
        }).output()).stdout,
      ).trim().split(/\s+/);
      const cc = await new Deno.Command("gcc", {
        args: [
          "-O2",
          "-Wall",
          "-Wextra",
          "-Werror",
          "-o",
          `${dir}/app`,
          `${EXAMPLES}c/app.c`,
          ...flags,
          "-lpthread",
          "-lm",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
      await runScenario({ name: "c", command: [`${dir}/app`] }, dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
