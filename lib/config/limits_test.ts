/**
 * The rules that make a config `run` cannot run a config error: name and topic limits, MQTT
 * topic characters, broker URLs, timer bounds, the boot window (each with its exact position).
 */
import assert from "node:assert/strict";
import { ConfigError, type ConfigIssue, parseConfig } from "./load.ts";

function issuesOf(text: string): ConfigIssue[] {
  try {
    parseConfig(text, "t.yaml");
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new assert.AssertionError({ message: "expected a ConfigError" });
}

const where = (i: ConfigIssue) => `${i.line}:${i.column} ${i.path}`;

/** One node (line 2–4), then `extra` from line 5. */
const withNode = (extra: string, name = "n1") =>
  `nodes:
  - name: ${name}
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
${extra}`;

Deno.test("names: node ≤ 253, sensor/workload/supervisor id ≤ 63, Deployment ≤ 242", () => {
  let issues = issuesOf(withNode("", "n".repeat(254)));
  assert.deepEqual(issues.map(where), ["2:11 nodes[0].name"]);
  assert.match(issues[0].message, /^must be at most 253 characters \(a Kubernetes node name/);
  parseConfig(withNode("", "n".repeat(253))); // the limit itself is fine

  issues = issuesOf(withNode(`supervisor:\n  id: ${"s".repeat(64)}\n`));
  assert.deepEqual(issues.map(where), ["6:7 supervisor.id"]);
  assert.match(issues[0].message, /^must be at most 63 characters/);

  issues = issuesOf(withNode(`sensors:
  - name: ${"c".repeat(64)}
    node: n1
    periodMs: 10
    timeoutMs: 30
`));
  assert.deepEqual(issues.map(where), ["6:11 sensors[0].name"]);
});

Deno.test("a very long name is one issue at the name, not a crash at run time", () => {
  // 70,000 characters: the derived topics would exceed MQTT's 65,535 bytes.
  const issues = issuesOf(withNode("", "a".repeat(70_000)));
  assert.deepEqual(issues.map(where), ["2:11 nodes[0].name"]);
});

Deno.test("workload names, namespaces (DNS labels) and Deployments are bounded", () => {
  const workload = (name: string, namespace: string, deployment: string) =>
    withNode(`  - name: n2
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
workloads:
  - name: ${name}
    namespace: ${namespace}
    asil: QM
    fttiMs: 1000
    primary: {deployment: ${deployment}, node: n1}
    standby: {deployment: w-b, node: n2}
`);
  parseConfig(workload("w", "ns", "d".repeat(242)));
  const issues = issuesOf(workload("w".repeat(64), "my.ns", "d".repeat(243)));
  assert.deepEqual(issues.map(where), [
    "9:11 workloads[0].name",
    "10:16 workloads[0].namespace",
    "13:27 workloads[0].primary.deployment",
  ]);
  assert.match(issues[1].message, /^must be a DNS-1123 label .*no '\.'/);
  assert.match(issues[2].message, /^must be at most 242 characters \(its ReplicaSets/);
});

Deno.test("a topic override over 65,535 UTF-8 bytes is an error (bytes, not characters)", () => {
  // 32,768 × "é" = 32,768 characters but 65,536 bytes.
  const issues = issuesOf(withNode(`    heartbeatTopic: ${"é".repeat(32_768)}\n`));
  assert.deepEqual(issues.map(where), ["5:21 nodes[0].heartbeatTopic"]);
  assert.match(issues[0].message, /^is 65536 bytes long in UTF-8; at most 65535 bytes/);
  parseConfig(withNode(`    heartbeatTopic: a${"é".repeat(32_767)}\n`)); // 65,535 bytes: fine
});

Deno.test("topicPrefix is at most 256 bytes", () => {
  const issues = issuesOf(withNode(`mqtt:\n  topicPrefix: ${"p".repeat(257)}\n`));
  assert.deepEqual(issues.map(where), ["6:16 mqtt.topicPrefix"]);
  assert.match(issues[0].message, /at most 256 bytes/);
});

Deno.test("topics: no NUL, U+FFFF, control characters, wildcards, '$' prefix or empty levels", () => {
  const text = withNode(`    heartbeatTopic: "a/\\0/hb"
    statusTopic: "a/\\uFFFF"
  - name: n2
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
    heartbeatTopic: $SYS/n2
    statusTopic: "a/\\x07"
  - name: n3
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
    heartbeatTopic: /n3/hb
    statusTopic: n3//status
  - name: n4
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
    heartbeatTopic: n4/hb/
    statusTopic: "n4/\\x85"
sensors:
  - name: c1
    node: n1
    periodMs: 10
    timeoutMs: 30
    topic: sdv/+/tick
mqtt:
  topicPrefix: $sdv
`);
  const issues = issuesOf(text);
  assert.deepEqual(issues.map(where), [
    "5:21 nodes[0].heartbeatTopic",
    "6:18 nodes[0].statusTopic",
    "10:21 nodes[1].heartbeatTopic",
    "11:18 nodes[1].statusTopic",
    "15:21 nodes[2].heartbeatTopic",
    "16:18 nodes[2].statusTopic",
    "20:21 nodes[3].heartbeatTopic",
    "21:18 nodes[3].statusTopic",
    "27:12 sensors[0].topic",
    "29:16 mqtt.topicPrefix",
  ]);
  const messages = issues.map((i) => i.message);
  assert.match(messages[0], /^contains U\+0000 \(the null character\) at character 3/);
  assert.match(messages[1], /^contains U\+FFFF \(a Unicode non-character\)/);
  assert.match(messages[2], /^starts with "\$": such topics are reserved for the broker/);
  assert.match(messages[3], /^contains U\+0007 \(a control character\)/);
  assert.match(messages[4], /^has an empty topic level/);
  assert.match(messages[5], /^has an empty topic level/);
  assert.match(messages[6], /^has an empty topic level/);
  assert.match(messages[7], /^contains U\+0085 \(a control character\)/);
  assert.match(messages[8], /^contains the wildcard "\+" at character 5/);
  assert.match(messages[9], /^starts with "\$"/);
});

Deno.test("broker URL: a host, a port in 1–65535, a known scheme, parseable", () => {
  const cases: [string, RegExp][] = [
    ["mqtt://", /^names no host/],
    ['"mqtt://exa mple"', /^is not a valid URL/],
    ["mqtt://broker:70000", /^the port 70000 is out of range \(1–65535\)/],
    ["mqtt://broker:0", /^the port 0 is out of range/],
    ["http://broker", /^must be an mqtt:\/\//],
    ["mqtt://exa%20mple", /is not a host name or IP address/],
  ];
  for (const [url, message] of cases) {
    const issues = issuesOf(withNode(`mqtt:\n  url: ${url}\n`));
    assert.deepEqual(issues.map(where), ["6:8 mqtt.url"], url);
    assert.match(issues[0].message, message, url);
  }
  for (const url of ["mqtt://broker", "mqtts://10.0.0.1:8883", "ws://[::1]:9001/mqtt", "tcp://h"]) {
    parseConfig(withNode(`mqtt:\n  url: ${url}\n`));
  }
});

Deno.test("credentials in the broker URL are an error that never repeats the password", () => {
  let error: ConfigError | undefined;
  try {
    parseConfig(withNode(`mqtt:\n  url: mqtt://alice:s3cr3t-pw@broker:1883\n`), "t.yaml");
  } catch (e) {
    error = e as ConfigError;
  }
  assert.ok(error instanceof ConfigError);
  assert.deepEqual(error.issues.map(where), ["6:8 mqtt.url"]);
  assert.match(error.issues[0].message, /^must not contain credentials .* mqtt\.passwordFile/);
  assert.doesNotMatch(error.message, /s3cr3t/);
  assert.doesNotMatch(error.message, /alice/);
});

Deno.test("every ...Ms key has an upper bound below setTimeout's 2^31 − 1 ms", () => {
  const issues = issuesOf(`nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 2147483648
supervisor:
  statsIntervalMs: 99999999999
  barrierTimeoutMs: 60001
mqtt:
  connectTimeoutMs: 300001
  reconnectPeriodMs: 2147483647
cluster:
  requestTimeoutMs: 1e12
`);
  assert.deepEqual(issues.map(where), [
    "4:25 nodes[0].heartbeatTimeoutMs",
    "6:20 supervisor.statsIntervalMs",
    "7:21 supervisor.barrierTimeoutMs",
    "9:21 mqtt.connectTimeoutMs",
    "10:22 mqtt.reconnectPeriodMs",
    "12:21 cluster.requestTimeoutMs",
  ]);
  assert.equal(
    issues[0].message,
    "must be at most 3600000 ms (1 h; longer would not supervise anything)",
  );
  assert.equal(issues[3].message, "must be at most 300000 ms (5 min)");
});

Deno.test("supervisor.bootWindowMs: default 120 s, 0 to 1 h, an integer", () => {
  assert.equal(parseConfig(withNode("")).supervisor.bootWindowMs, 120_000);
  for (const ok of [0, 3_600_000]) {
    assert.equal(
      parseConfig(withNode(`supervisor:\n  bootWindowMs: ${ok}\n`)).supervisor.bootWindowMs,
      ok,
    );
  }
  for (const bad of ["3600001", "-1", "1.5", "2147483648"]) {
    const issues = issuesOf(withNode(`supervisor:\n  bootWindowMs: ${bad}\n`));
    assert.deepEqual(issues.map(where), ["6:17 supervisor.bootWindowMs"], bad);
  }
  const issues = issuesOf(withNode(`supervisor:\n  startupGraceMs: 3000\n`));
  assert.deepEqual(issues.map(where), ["6:3 supervisor.startupGraceMs"]);
});

Deno.test("credential and TLS settings that cannot work together", () => {
  const issues = issuesOf(withNode(`mqtt:
  username: alice
  usernameEnv: MQTT_USER
  passwordEnv: MQTT_PASSWORD
  passwordFile: /etc/sdv-failover/mqtt-password
  tls:
    certFile: /etc/sdv-failover/client.crt
`));
  assert.deepEqual(issues.map(where), [
    "7:16 mqtt.usernameEnv",
    "9:17 mqtt.passwordFile",
    "11:5 mqtt.tls", // TLS files with mqtt:// (the default URL)
    "11:15 mqtt.tls.certFile", // no keyFile
  ]);
  const lone = issuesOf(withNode(`mqtt:\n  passwordEnv: P\n`));
  assert.deepEqual(lone.map(where), ["6:16 mqtt.passwordEnv"]);
  assert.match(lone[0].message, /MQTT 3\.1\.1 §3\.1\.2\.9/);
  const badEnv = issuesOf(withNode(`mqtt:\n  usernameEnv: 1-USER\n`));
  assert.deepEqual(badEnv.map(where), ["6:16 mqtt.usernameEnv"]);
});

Deno.test("taintKey and eventSource must be Kubernetes qualified names", () => {
  const issues = issuesOf(withNode(`cluster:
  taintKey: "sdv failover/unreachable"
  eventSource: ${"e".repeat(129)}
`));
  assert.deepEqual(issues.map(where), ["6:13 cluster.taintKey", "7:16 cluster.eventSource"]);
  parseConfig(withNode(`cluster:\n  taintKey: example.com/down\n  eventSource: sdv\n`));
});
