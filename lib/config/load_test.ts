import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ConfigError, type ConfigIssue, formatIssue, loadConfig, parseConfig } from "./load.ts";

const here = (relative: string) => fileURLToPath(new URL(relative, import.meta.url));
const EXAMPLE = here("../../config/example.yaml");
const FAST = here("../../config/fast.yaml");
const BROKEN = here("../../tests/fixtures/broken.yaml");

/** The issues `fn` throws as a ConfigError (fails when it does not throw one). */
async function issuesOf(fn: () => unknown): Promise<ConfigError> {
  try {
    await fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new assert.AssertionError({ message: "expected a ConfigError" });
}

const where = (i: ConfigIssue) => `${i.line}:${i.column} ${i.path}`;

const MINIMAL = `nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
`;

Deno.test("example.yaml loads with the origin's values and the schema's defaults", async () => {
  const config = await loadConfig(EXAMPLE);
  assert.deepEqual(config.nodes.map((n) => [n.name, n.heartbeatPeriodMs, n.heartbeatTimeoutMs]), [
    ["worker-node1", 33, 300],
    ["worker-node2", 33, 300],
    ["worker-node3", 33, 300],
  ]);
  assert.deepEqual(config.nodes.map((n) => n.requiredSensors), [
    ["camera-node1"],
    ["camera-node2"],
    ["camera-node3"],
  ]);
  assert.deepEqual(config.sensors.map((s) => `${s.name}@${s.node} ${s.periodMs}/${s.timeoutMs}`), [
    "camera-node1@worker-node1 33/150",
    "camera-node2@worker-node2 33/150",
    "camera-node3@worker-node3 33/150",
    "lidar-node2@worker-node2 100/300",
    "lidar-node3@worker-node3 100/300",
  ]);
  const [lane, pose] = config.workloads;
  assert.equal(lane.asil, "B");
  assert.equal(lane.fttiMs, 500);
  assert.deepEqual(lane.primary, {
    deployment: "lane-detection-original",
    node: "worker-node2",
    sensors: ["camera-node2"],
  });
  assert.deepEqual(lane.standby.sensors, ["camera-node3"]);
  assert.deepEqual(lane.appHeartbeat, { periodMs: 33, timeoutMs: 300 });
  assert.equal(pose.asil, "QM");
  assert.equal(pose.namespace, "default"); // default
  assert.deepEqual(pose.standby.sensors, ["camera-node3", "lidar-node3"]);
  assert.equal(pose.appHeartbeat, undefined);
  assert.equal(config.supervisor.bootWindowMs, 120_000);
  assert.equal(config.supervisor.barrierTimeoutMs, 200); // default
  assert.equal(config.mqtt.url, "mqtt://127.0.0.1:1883");
  // The supervisor's own identity through systemd's LoadCredential=, never the admin's.
  assert.equal(config.cluster.kubeconfig, "${CREDENTIALS_DIRECTORY}/kubeconfig");
});

Deno.test("fast.yaml loads: 100 Hz everywhere, lane-detection ASIL D / 100 ms", async () => {
  const config = await loadConfig(FAST);
  assert.ok(config.nodes.every((n) => n.heartbeatPeriodMs === 10 && n.heartbeatTimeoutMs === 30));
  assert.ok(config.sensors.every((s) => s.periodMs === 10 && s.timeoutMs === 30));
  assert.equal(config.sensors.length, 5);
  assert.deepEqual([config.workloads[0].asil, config.workloads[0].fttiMs], ["D", 100]);
  assert.deepEqual(config.workloads[0].appHeartbeat, { periodMs: 10, timeoutMs: 30 });
  assert.equal(config.supervisor.reactionBudgetMs, 25);
  assert.equal(config.supervisor.lagToleranceMs, 5);
});

Deno.test("broken.yaml: every problem, at its line:column, sorted by position", async () => {
  const error = await issuesOf(() => loadConfig(BROKEN));
  assert.equal(error.file, BROKEN);
  assert.deepEqual(error.issues.map(where), [
    "5:21 supervisor.recoveryWindowMs", // timing (semantic)
    "7:8 mqtt.url", // schema
    "11:25 nodes[0].heartbeatTimeoutMs", // timing
    "12:23 nodes[0].requiredSensors[0]", // reference
    "13:5 nodes[1].heartbeatTimeoutMs", // missing key: at the mapping that lacks it
    "15:5 nodes[1].heartbeatTimoutMs", // unknown key: at the key
    "19:11 nodes[3].name", // duplicate name
    "22:5 nodes[3].heartbeatPeriodMs", // duplicate YAML key: at its second occurrence
    "25:11 sensors[0].node", // reference
    "38:11 workloads[0].asil", // schema enum
    "39:13 workloads[0].fttiMs", // FTTI
    "51:19 workloads[1].primary.deployment", // Deployment shared by two workloads
    "53:17 workloads[1].primary.sensors[0]", // sensor on another node
    "56:13 workloads[1].standby.node", // same node as the primary
  ]);
  const message = (path: string) => error.issues.find((i) => i.path === path)?.message;
  assert.equal(
    message("nodes[1].heartbeatTimoutMs"),
    'unknown key "heartbeatTimoutMs"; did you mean "heartbeatTimeoutMs"?',
  );
  assert.equal(
    message("nodes[1].heartbeatTimeoutMs"),
    'missing required key "heartbeatTimeoutMs" (expected number)',
  );
  assert.match(
    message("nodes[3].heartbeatPeriodMs")!,
    /^duplicate key "heartbeatPeriodMs" \(first at line 20, column 5\)/,
  );
  assert.match(message("workloads[0].fttiMs")!, /= 330 ms > fttiMs 200/);
  assert.match(message("sensors[0].node")!, /^unknown node "worker-node7"/);
  assert.match(message("mqtt.url")!, /^must be an mqtt:\/\//);
});

Deno.test("ConfigError's message lists every issue as FILE:LINE:COL PATH: MESSAGE", async () => {
  const error = await issuesOf(() => loadConfig(BROKEN));
  const lines = error.message.split("\n");
  assert.equal(lines[0], `invalid configuration ${BROKEN} (14 problems):`);
  assert.equal(lines.length, 15);
  assert.equal(
    lines[6],
    `${BROKEN}:15:5 nodes[1].heartbeatTimoutMs: unknown key "heartbeatTimoutMs"; did you mean ` +
      `"heartbeatTimeoutMs"?`,
  );
  assert.equal(lines[6], formatIssue(BROKEN, error.issues[5]));
  assert.equal(error.name, "ConfigError");
});

Deno.test("a YAML syntax error is reported at its position, without follow-up errors", async () => {
  const text = `nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: [30
mqtt:
  url: mqtt://x
`;
  const error = await issuesOf(() => parseConfig(text, "syntax.yaml"));
  assert.equal(error.issues.length, 1);
  const [issue] = error.issues;
  assert.equal(`${issue.line}:${issue.column}`, "5:1");
  assert.equal(issue.path, "mqtt");
  assert.match(issue.message, /^YAML syntax error: Flow sequence .* end with a \]/);
  assert.match(error.message, /^syntax\.yaml:5:1 mqtt: YAML syntax error/m);
});

Deno.test("syntax errors after a recovered multi-line scalar keep their own line", async () => {
  // npm:yaml's LineCounter misses the line break inside the scalar "camera-node3\n    timeoutMs"
  // it recovers here, which put the last two issues at 2:35 and 2:37 (found by the config fuzz).
  const text = "    requiredSensors: [camera-node2]\n- name: camera-node3\n    timeoutMs: 30\n";
  const error = await issuesOf(() => parseConfig(text));
  const lines = text.split("\n");
  for (const issue of error.issues) {
    assert.ok(issue.column <= lines[issue.line - 1].length + 1, where(issue));
  }
  assert.deepEqual(error.issues.slice(-2).map((i) => `${i.line}:${i.column}`), ["3:14", "3:16"]);
});

Deno.test("a tab indentation error is a syntax error with a position", async () => {
  const error = await issuesOf(() => parseConfig("nodes:\n\t- name: n1\n"));
  assert.ok(error.issues.length >= 1);
  assert.deepEqual([error.issues[0].line, error.issues[0].column], [2, 1]);
  assert.match(error.issues[0].message, /^YAML syntax error: /);
});

Deno.test("an unknown key is reported at the key, with a suggestion when it is a typo", async () => {
  const text = MINIMAL + `supervisor:\n  bootWindow: 100\n  colour: red\n`;
  const error = await issuesOf(() => parseConfig(text));
  assert.deepEqual(error.issues.map(where), [
    "6:3 supervisor.bootWindow",
    "7:3 supervisor.colour",
  ]);
  assert.equal(
    error.issues[0].message,
    'unknown key "bootWindow"; did you mean "bootWindowMs"?',
  );
  assert.match(error.issues[1].message, /^unknown key "colour" \(allowed: id, bootWindowMs, /);
});

Deno.test("positions inside flow collections and wrong types at the value", async () => {
  const text = `nodes: [{name: n1, heartbeatPeriodMs: 10, heartbeatTimeoutMs: 15}]
sensors:
  - {name: s1, node: n1, periodMs: ten, timeoutMs: 30}
`;
  const error = await issuesOf(() => parseConfig(text));
  assert.deepEqual(error.issues.map(where), [
    "1:63 nodes[0].heartbeatTimeoutMs", // 15 < 2 × 10
    "3:36 sensors[0].periodMs",
  ]);
  assert.equal(error.issues[1].message, "Invalid input: expected number, received string");
});

Deno.test("an empty value and an empty document are explained", async () => {
  let error = await issuesOf(() => parseConfig(MINIMAL + "supervisor:\n"));
  assert.deepEqual(error.issues.map(where), ["5:1 supervisor"]);
  assert.match(error.issues[0].message, /remove the key to use the defaults\)$/);
  error = await issuesOf(() => parseConfig("# nothing here\n", "empty.yaml"));
  assert.deepEqual(error.issues.map(where), ["1:1 "]);
  assert.match(error.message, /^empty\.yaml:1:1 \(root\): the document is empty/m);
});

Deno.test("a missing top-level key is reported at the root mapping", async () => {
  const error = await issuesOf(() => parseConfig("\n\nmqtt:\n  url: mqtt://h\n"));
  assert.deepEqual(error.issues.map(where), ["3:1 nodes"]);
  assert.equal(error.issues[0].message, 'missing required key "nodes" (expected array)');
});

Deno.test("schema and semantic problems are reported in one run", async () => {
  const text = `nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
    heartbeatTimeoutMs: 15
  - name: n1
    heartbeatPeriodMs: -1
    heartbeatTimeoutMs: 30
sensors:
  - name: s1
    node: n2
    periodMs: 10
    timeoutMs: 30
`;
  const error = await issuesOf(() => parseConfig(text));
  assert.deepEqual(error.issues.map(where), [
    "5:5 nodes[0].heartbeatTimeoutMs", // duplicate key (YAML) ...
    "5:25 nodes[0].heartbeatTimeoutMs", // ... whose later value (15) is < 2 × 10
    "6:11 nodes[1].name", // duplicate name (semantic)
    "7:24 nodes[1].heartbeatPeriodMs", // not positive (schema)
    "11:11 sensors[0].node", // unknown node (semantic)
  ]);
  assert.match(error.issues[3].message, /Too small/);
});

Deno.test("aliases resolve; positions follow the alias to its anchor", async () => {
  const text = `nodes:
  - &n
    name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
  - *n
`;
  const error = await issuesOf(() => parseConfig(text));
  assert.deepEqual(error.issues.map(where), ["3:11 nodes[1].name"]);
});

Deno.test("parseConfig returns the config with defaults; the default file name is <config>", async () => {
  const config = parseConfig(MINIMAL);
  assert.equal(config.mqtt.topicPrefix, "sdv");
  assert.deepEqual(config.workloads, []);
  assert.equal(config.supervisor.recoveryWindowMs, 1000);
  const error = await issuesOf(() => parseConfig("nodes: []\n"));
  assert.equal(error.file, "<config>");
  assert.deepEqual(error.issues.map(where), ["1:8 nodes"]);
});

Deno.test("an unreadable file is a ConfigError too", async () => {
  const path = here("./does-not-exist.yaml");
  const error = await issuesOf(() => loadConfig(path));
  assert.equal(error.file, path);
  assert.equal(error.issues.length, 1);
  assert.deepEqual(error.issues.map(where), ["1:1 "]);
  assert.match(error.issues[0].message, /^cannot read the configuration file: /);
});

Deno.test("parsing needs env access to LOG_TOKENS and LOG_STREAM only (npm:yaml reads them)", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { loadConfig } from ${
        JSON.stringify(new URL("./load.ts", import.meta.url).href)
      };\n` +
        `const c = await loadConfig(${JSON.stringify(EXAMPLE)});\n` +
        `console.log(c.workloads.map((w) => w.name).join(","));\n`,
    );
    const run = async (...permissions: string[]) => {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--no-lock",
          "--config",
          here("../../deno.json"),
          ...permissions,
          script,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = (b: Uint8Array) => new TextDecoder().decode(b);
      return { code, stdout: text(stdout), stderr: text(stderr) };
    };
    const ok = await run("--allow-read", "--allow-env=LOG_TOKENS,LOG_STREAM");
    assert.equal(ok.stdout, "lane-detection,pose-estimation\n", ok.stderr);
    const denied = await run("--allow-read");
    assert.notEqual(denied.code, 0);
    assert.match(
      denied.stderr,
      /NotCapable: the YAML parser \(npm:yaml\) reads the environment variables LOG_TOKENS and LOG_STREAM; run with --allow-env=LOG_TOKENS,LOG_STREAM/,
    );
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("loadConfig reads only regular files: /dev/zero, a FIFO, a directory are errors", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/config.fifo`;
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.equal(mk.code, 0);
    for (const path of ["/dev/zero", fifo]) {
      const error = await issuesOf(() => loadConfig(path));
      assert.deepEqual(error.issues.map(where), ["1:1 "], path);
      assert.match(
        error.issues[0].message,
        /^cannot read the configuration file: not a regular file \(a device, FIFO or socket\)/,
      );
    }
    const error = await issuesOf(() => loadConfig(dir));
    assert.match(error.issues[0].message, /not a regular file \(a directory\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig caps the size (1 MiB) before reading, and wants UTF-8", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, MINIMAL + "#".repeat(1024 * 1024));
    let error = await issuesOf(() => loadConfig(path));
    assert.deepEqual(error.issues.map(where), ["1:1 "]);
    assert.match(error.issues[0].message, /larger than 1048576 bytes/);
    await Deno.writeTextFile(path, MINIMAL);
    assert.equal((await loadConfig(path)).nodes.length, 1);
    error = await issuesOf(() => loadConfig(path, { maxBytes: MINIMAL.length - 1 }));
    assert.match(error.issues[0].message, /larger than \d+ bytes/);
    await Deno.writeFile(path, new Uint8Array([...new TextEncoder().encode(MINIMAL), 0xff, 0x0a]));
    error = await issuesOf(() => loadConfig(path));
    assert.match(error.issues[0].message, /not valid UTF-8/);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("supervisor.pair: defaults, and timing problems at their line:column", async () => {
  assert.equal(parseConfig(MINIMAL).supervisor.pair, undefined, "off by default");
  const pair = parseConfig(`supervisor:\n  pair: { ids: [sup-a, sup-b] }\n${MINIMAL}`).supervisor
    .pair;
  assert.deepEqual(pair, {
    ids: ["sup-a", "sup-b"],
    leaseName: "sdv-failover",
    leaseNamespace: "kube-system",
    leaseDurationMs: 250,
    renewDeadlineMs: 150,
    retryPeriodMs: 30,
  });
  const text = `supervisor:
  pair:
    ids: [a, b]
    leaseDurationMs: 300
    renewDeadlineMs: 300
    retryPeriodMs: 0
${MINIMAL}`;
  const error = await issuesOf(() => parseConfig(text));
  assert.deepEqual(error.issues.map(where), [
    "5:22 supervisor.pair.renewDeadlineMs", // semantic: not < leaseDurationMs
    "6:20 supervisor.pair.retryPeriodMs", // schema: not ≥ 1
  ]);
  const missing = await issuesOf(() =>
    parseConfig(`supervisor:\n  pair:\n    ids: [a, b]\n    leaseDurationMs: 120\n${MINIMAL}`)
  );
  // the default renewDeadlineMs (150) is not < 120: reported at the pair mapping
  assert.deepEqual(missing.issues.map(where), ["3:5 supervisor.pair.renewDeadlineMs"]);
});

Deno.test("supervisor.pair.ids: both instance ids required, two, distinct, at their line:column", async () => {
  const none = await issuesOf(() => parseConfig(`supervisor:\n  pair: {}\n${MINIMAL}`));
  assert.deepEqual(none.issues.map(where), ["2:9 supervisor.pair.ids"]);
  const one = await issuesOf(() => parseConfig(`supervisor:\n  pair:\n    ids: [a]\n${MINIMAL}`));
  assert.deepEqual(one.issues.map(where), ["3:10 supervisor.pair.ids"]);
  assert.match(one.issues[0].message, /exactly two instance ids/);
  const same = await issuesOf(() =>
    parseConfig(`supervisor:\n  pair:\n    ids: [a, a]\n${MINIMAL}`)
  );
  assert.match(same.issues[0].message, /must differ/);
});
