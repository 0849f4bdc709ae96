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
 * On a broker pair (`mqtt.pairUrl`, each instance connected to both brokers: `runPairScenario`)
 * the loss of one broker changes nothing, a hang is failed over through the other one, and the
 * returning broker carries the instances' heartbeats and promotions again.
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

/**
 * Starts one instance of `example` on `node`, configured through the environment, connected to
 * the broker on `brokerPort` and, when given, to the second broker of a pair on `broker2Port`.
 */
function startApp(
  example: Example,
  node: string,
  brokerPort: number,
  broker2Port?: number,
): AppProcess {
  const child = new Deno.Command(example.command[0], {
    args: example.command.slice(1),
    env: {
      SDV_BROKER_HOST: "127.0.0.1",
      SDV_BROKER_PORT: String(brokerPort),
      ...(broker2Port === undefined
        ? {}
        : { SDV_BROKER2_HOST: "127.0.0.1", SDV_BROKER2_PORT: String(broker2Port) }),
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

/** Writes the scenario's config (a broker pair when `pairUrl` is given) to `dir`; its path. */
async function writeConfig(dir: string, url: string, pairUrl?: string): Promise<string> {
  const raw = {
    supervisor: {
      id: "supervisor",
      bootWindowMs: BOOT_WINDOW_MS,
      recoveryWindowMs: RECOVERY_WINDOW_MS,
    },
    mqtt: { url, ...(pairUrl === undefined ? {} : { pairUrl }), topicPrefix: PREFIX },
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
  return cfg;
}

/** Starts the real node agents of both nodes from `cfg` (into `agents`); resolves once connected. */
async function startAgents(cfg: string, agents: SupervisorProcess[]): Promise<void> {
  await Promise.all([PRIMARY, STANDBY].map((node) => {
    const agent = watchMain(["agent", "--config", cfg, "--node", node, "--log-format", "json"]);
    agents.push(agent);
    return agent.waitFor((l) => l.event === "connected", WAIT_MS, `agent ${node} connected`);
  }));
}

/** Throws `error` with the supervisor's recent lines appended (its view belongs to every report). */
function withSupervisorView(error: unknown, sup: SupervisorProcess | undefined): Error {
  const tail = (sup?.lines ?? []).filter((l) => l.event !== "planned-action").slice(-25);
  return new Error(
    `${(error as Error).message}\nsupervisor:\n${tail.map((l) => JSON.stringify(l)).join("\n")}`,
  );
}

async function runScenario(example: Example, dir: string): Promise<void> {
  let broker = await startMosquitto({ workDir: dir });
  const cfg = await writeConfig(dir, broker.url);
  const agents: SupervisorProcess[] = [];
  const apps: AppProcess[] = [];
  let sup: SupervisorProcess | undefined;
  try {
    await startAgents(cfg, agents);
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
    await primary.waitFor(/^broker lost .* connected=0$/, "broker lost", marks[0]);
    await primary.waitFor(
      /^role=standby epoch=2 activeNode=worker-node2 why=broker-lost$/,
      "standing by without the broker",
      marks[0],
    );
    await broker.stop();
    broker = await startMosquitto({ workDir: dir, port: broker.port });
    await primary.waitFor(/^broker connected .* connected=1$/, "reconnected", marks[0]);
    await primary.waitFor(
      /^role=active epoch=2 activeNode=worker-node2 why=promotion$/,
      "active again after the reconnect",
      marks[0],
    );
    await standby.waitFor(/^broker connected .* connected=1$/, "reconnected", marks[1]);
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
    throw withSupervisorView(error, sup);
  } finally {
    await Promise.all(apps.map((a) => a.stop()));
    if (sup) await sup.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await broker.stop();
  }
}

/** Resolves once an app heartbeat of every node in `nodes` arrived on the broker at `url`. */
async function heartbeatsOn(url: string, nodes: string[]): Promise<void> {
  const client = await mqtt.connectAsync(url, { clientId: `observer-${crypto.randomUUID()}` });
  try {
    const seen = new Set<string>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no app heartbeat of ${nodes} on ${url} within ${WAIT_MS} ms`)),
        WAIT_MS,
      );
      client.on("message", (topic) => {
        seen.add(topic.split("/")[3]); // {p}/app/{w}/{node}/hb
        if (nodes.every((n) => seen.has(n))) {
          clearTimeout(timer);
          resolve();
        }
      });
      client.subscribe(`${PREFIX}/app/${WORKLOAD}/+/hb`, { qos: 0 });
    });
  } finally {
    await client.endAsync();
  }
}

/** How long the broker pair scenario watches after broker A is lost: 10 app timeouts, ms. */
const PAIR_QUIET_MS = 10 * APP_TIMEOUT_MS;

/**
 * The broker pair (`mqtt.pairUrl`, docs/app_contract.md "Broker pair"): two real mosquittos, the
 * agents and the supervisor paired from the config, both app instances connected to both brokers.
 *
 * 1. broker A is SIGKILLed while everything is healthy: for 10 app timeouts no target expires, no
 *    promotion is sent, no ingest fault, and neither instance changes its role;
 * 2. the primary instance hangs (SIGSTOP): failed over through broker B alone (epoch 1), the
 *    standby instance becomes active, the old primary stands down on SIGCONT;
 * 3. broker A comes back (same port, empty): both instances reconnect to it, their heartbeats
 *    reach it again, and the supervisor's republished promotion arriving through it is a
 *    `promotion repeated` (the epoch they hold), neither obeyed again nor `ignored`.
 */
async function runPairScenario(example: Example, dir: string): Promise<void> {
  let brokerA = await startMosquitto({ workDir: dir });
  await Deno.mkdir(`${dir}/b`);
  const brokerB = await startMosquitto({ workDir: `${dir}/b` });
  const cfg = await writeConfig(dir, brokerA.url, brokerB.url);
  const agents: SupervisorProcess[] = [];
  const apps: AppProcess[] = [];
  let sup: SupervisorProcess | undefined;
  try {
    await startAgents(cfg, agents);
    const primary = startApp(example, PRIMARY, brokerA.port, brokerB.port);
    const standby = startApp(example, STANDBY, brokerA.port, brokerB.port);
    apps.push(primary, standby);
    await Promise.all(apps.map((a) => a.waitFor(/^broker connected .* connected=2$/, "2 brokers")));
    await primary.waitFor(/^role=active epoch=0 activeNode=worker-node2 /, "active at start");
    await standby.waitFor(/^role=standby epoch=0 activeNode=worker-node2 /, "standby at start");
    sup = await startSupervisor(cfg, { dryRun: true });
    // Every target healthy: past the boot window, a never-seen one would have expired.
    await sleep(BOOT_WINDOW_MS + 2 * APP_TIMEOUT_MS);
    assert.deepEqual(events(sup, "expired"), [], "a target expired while every app ran");

    // 1. Broker A crashes: nothing changes (the heartbeats go on through B).
    const marks = apps.map((a) => a.lines.length);
    const supMark = sup.lines.length;
    await brokerA.kill();
    const lostA = new RegExp(`^broker lost 127\\.0\\.0\\.1:${brokerA.port} connected=1$`);
    await Promise.all(apps.map((a, i) => a.waitFor(lostA, "broker A lost", marks[i])));
    await sup.waitFor((l) => l.event === "broker-lost", WAIT_MS, "the supervisor's broker-lost");
    await sleep(PAIR_QUIET_MS);
    const since = sup.lines.slice(supMark);
    for (const event of ["expired", "promotion-sent", "ingest-fault"]) {
      assert.deepEqual(since.filter((l) => l.event === event), [], `${event} after losing A`);
    }
    apps.forEach((a, i) => {
      const changed = linesSince(a, marks[i]).filter((l) => l.startsWith("role="));
      assert.deepEqual(changed, [], `${a.node} changed its role when broker A was lost`);
    });

    // 2. The primary hangs: failed over through B.
    primary.signal("SIGSTOP");
    const sent1 = await sup.waitFor(
      (l) => l.event === "promotion-sent" && l.epoch === 1,
      WAIT_MS,
      "promotion at epoch 1",
    );
    assert.equal(sent1.activeNode, STANDBY);
    assert.equal(sent1.reason, "app-expired");
    assert.deepEqual(events(sup, "expired").map((l) => l.target), [`app/${WORKLOAD}/${PRIMARY}`]);
    await standby.waitFor(
      /^role=active epoch=1 activeNode=worker-node3 why=promotion$/,
      "active at epoch 1",
    );
    primary.signal("SIGCONT");
    await primary.waitFor(
      /^role=standby epoch=1 activeNode=worker-node3 why=promotion$/,
      "standing down at epoch 1",
    );

    // 3. Broker A is back: both sessions to it too, in both directions.
    const marksA = apps.map((a) => a.lines.length);
    brokerA = await startMosquitto({ workDir: dir, port: brokerA.port });
    const backA = new RegExp(`^broker connected 127\\.0\\.0\\.1:${brokerA.port} connected=2$`);
    await Promise.all(apps.map((a, i) => a.waitFor(backA, "broker A back", marksA[i])));
    await heartbeatsOn(brokerA.url, [PRIMARY, STANDBY]);
    // The leader republishes its promotion to the returning broker (retained): the copy
    // through A is a repeat of the epoch each instance holds.
    await Promise.all(
      apps.map((a, i) =>
        a.waitFor(
          /^promotion repeated epoch=1 activeNode=worker-node3$/,
          "the promotion republished through A",
          marksA[i],
        )
      ),
    );
    apps.forEach((a) => {
      assert.deepEqual(
        a.lines.filter((l) =>
          l.startsWith("promotion obeyed") || l.startsWith("promotion ignored")
        ),
        ["promotion obeyed epoch=1 activeNode=worker-node3 issuer=supervisor"],
        `${a.node}: a copy of the promotion was obeyed again or reported`,
      );
    });
    assert.deepEqual(events(sup, "promotion-sent").map((l) => l.epoch), [1]);
  } catch (error) {
    throw withSupervisorView(error, sup);
  } finally {
    await Promise.all(apps.map((a) => a.stop()));
    if (sup) await sup.stop();
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all([brokerA.stop(), brokerB.stop()]);
  }
}

const PYTHON: Example = {
  name: "python",
  command: ["/usr/bin/python3", "-u", `${EXAMPLES}python/app.py`],
};

/** Compiles examples/c/app.c as the test does (warnings are errors) into `dir`; its Example. */
async function compileC(dir: string): Promise<Example> {
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
  return { name: "c", command: [`${dir}/app`] };
}

/** Registers one scenario of one example, in a temporary directory of its own. */
function scenarioTest(
  name: string,
  prefix: string,
  example: (dir: string) => Example | Promise<Example>,
  scenario: (example: Example, dir: string) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: SKIP,
    sanitizeOps: false,
    sanitizeResources: false,
    async fn() {
      const dir = await Deno.makeTempDir({ prefix });
      try {
        await scenario(await example(dir), dir);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

scenarioTest(
  "app examples: Python (paho-mqtt) heartbeats, fails over on a hang, stands down, rides out broker loss, " +
    "ignores forged promotions",
  "sdv-app-py-",
  () => PYTHON,
  runScenario,
);

scenarioTest(
  "app examples: C (libmosquitto) heartbeats, fails over on a hang, stands down, rides out broker loss, " +
    "ignores forged promotions",
  "sdv-app-c-",
  compileC,
  runScenario,
);

scenarioTest(
  "app examples on a broker pair: Python rides out the loss of one broker, fails over through the other, " +
    "reconnects to the returning one",
  "sdv-app-py-pair-",
  () => PYTHON,
  runPairScenario,
);

scenarioTest(
  "app examples on a broker pair: C rides out the loss of one broker, fails over through the other, " +
    "reconnects to the returning one",
  "sdv-app-c-pair-",
  compileC,
  runPairScenario,
);
