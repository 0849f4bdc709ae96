import assert from "node:assert/strict";
import { formatPath, parsePath, type SemanticIssue, semanticIssues } from "./validate.ts";

// deno-lint-ignore no-explicit-any
type Raw = any;

/** A valid raw config: w on n1 (camera c1) with standby on n2 (camera c2). */
function base(): Raw {
  return {
    nodes: [
      { name: "n1", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 300, requiredSensors: ["c1"] },
      { name: "n2", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 300, requiredSensors: ["c2"] },
    ],
    sensors: [
      { name: "c1", node: "n1", periodMs: 33, timeoutMs: 150 },
      { name: "c2", node: "n2", periodMs: 33, timeoutMs: 150 },
    ],
    workloads: [{
      name: "w",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "w-a", node: "n1", sensors: ["c1"] },
      standby: { deployment: "w-b", node: "n2", sensors: ["c2"] },
      appHeartbeat: { periodMs: 33, timeoutMs: 300 },
    }],
  };
}

function issuesOf(mutate: (raw: Raw) => void): SemanticIssue[] {
  const raw = base();
  mutate(raw);
  return semanticIssues(raw);
}

const paths = (issues: SemanticIssue[]) => issues.map((i) => i.path);

Deno.test("a valid config has no semantic issues", () => {
  assert.deepEqual(semanticIssues(base()), []);
});

Deno.test("garbage never throws and reports nothing the schema would not", () => {
  for (const raw of [null, undefined, 42, "x", [], { nodes: "x" }, { nodes: [null, 3] }]) {
    assert.deepEqual(semanticIssues(raw), [], JSON.stringify(raw));
  }
  // Half-broken entries: checks whose inputs are present still run.
  const issues = semanticIssues({
    nodes: [{ name: "n1", heartbeatPeriodMs: "fast", heartbeatTimeoutMs: 10 }],
    sensors: [{ name: "s", node: "zz", periodMs: 40, timeoutMs: 50 }],
    workloads: [{ name: 7, primary: 3 }],
  });
  assert.deepEqual(paths(issues), ["sensors[0].node", "sensors[0].timeoutMs"]);
});

Deno.test("duplicate names of nodes, sensors and workloads", () => {
  const issues = issuesOf((r) => {
    r.nodes.push({ ...r.nodes[1], requiredSensors: [] });
    r.sensors.push({ ...r.sensors[0], topic: "other/tick" });
    r.workloads.push({
      ...r.workloads[0],
      primary: { deployment: "x-a", node: "n1" },
      standby: { deployment: "x-b", node: "n2" },
    });
  });
  assert.deepEqual(paths(issues), ["nodes[2].name", "sensors[2].name", "workloads[1].name"]);
  assert.equal(
    issues[0].message,
    'duplicate node name "n2" (first defined at nodes[1]); node names must be unique',
  );
});

Deno.test("duplicate MQTT topics after defaults, reported at the configured one", () => {
  // n2's custom heartbeat topic is c1's default tick topic (prefix sdv).
  let issues = issuesOf((r) => (r.nodes[1].heartbeatTopic = "sdv/sensor/c1/tick"));
  assert.deepEqual(paths(issues), ["nodes[1].heartbeatTopic"]);
  assert.match(
    issues[0].message,
    /"sdv\/sensor\/c1\/tick" is also the tick topic of sensors\[0\] \("c1"\)/,
  );
  // With another prefix the default moves and the collision disappears...
  issues = issuesOf((r) => {
    r.nodes[1].heartbeatTopic = "sdv/sensor/c1/tick";
    r.mqtt = { topicPrefix: "car" };
  });
  assert.deepEqual(issues, []);
  // ...and comes back against the new default.
  issues = issuesOf((r) => {
    r.sensors[1].topic = "car/node/n1/status";
    r.mqtt = { topicPrefix: "car" };
  });
  assert.deepEqual(paths(issues), ["sensors[1].topic"]);
  assert.match(issues[0].message, /status topic of nodes\[0\]/);
  // Two custom topics, and a custom topic equal to a derived app heartbeat topic.
  issues = issuesOf((r) => {
    r.sensors[0].topic = "t/x";
    r.sensors[1].topic = "t/x";
    r.nodes[0].statusTopic = "sdv/app/w/n2/hb";
  });
  assert.deepEqual(paths(issues), ["sensors[1].topic", "nodes[0].statusTopic"]);
  assert.match(issues[1].message, /app heartbeat topic of workload "w" on "n2"/);
});

Deno.test("a sensor's node must exist", () => {
  const issues = issuesOf((r) => (r.sensors[1].node = "n9"));
  // Only the root cause: no "c2 is attached to n9, not n2" follow-ups.
  assert.deepEqual(paths(issues), ["sensors[1].node"]);
  assert.equal(issues[0].message, 'unknown node "n9" (nodes: n1, n2)');
});

Deno.test("unknown verdicts are skipped when a list has an entry without a valid name", () => {
  const issues = issuesOf((r) => {
    r.nodes[1].name = "Bad_Name";
    r.sensors[1].node = "n9";
  });
  // No "unknown node" for n9 or n2: the node list is incomplete (the schema reports Bad_Name).
  assert.deepEqual(paths(issues).filter((p) => p.endsWith(".node")), []);
});

Deno.test("required sensors must exist and be attached to the node", () => {
  const issues = issuesOf((r) => (r.nodes[0].requiredSensors = ["c9", "c2", "c1", "c1"]));
  assert.deepEqual(paths(issues), [
    "nodes[0].requiredSensors[0]",
    "nodes[0].requiredSensors[1]",
    "nodes[0].requiredSensors[3]",
  ]);
  assert.equal(issues[0].message, 'unknown sensor "c9" (sensors: c1, c2)');
  assert.match(
    issues[1].message,
    /^sensor "c2" is attached to node "n2" \(sensors\[1\]\.node\), not to "n1"/,
  );
  assert.equal(issues[2].message, 'sensor "c1" is listed twice');
});

Deno.test("placement nodes and sensors must exist, sensors on the placement's node", () => {
  const issues = issuesOf((r) => {
    r.workloads[0].primary.node = "n7";
    r.workloads[0].standby.sensors = ["c1", "zz"];
  });
  // c1 is on n1, but the primary's node n7 is unknown: no follow-up "attached elsewhere".
  assert.deepEqual(paths(issues), [
    "workloads[0].primary.node",
    "workloads[0].standby.sensors[0]",
    "workloads[0].standby.sensors[1]",
  ]);
  assert.match(issues[1].message, /attached to node "n1".*but the standby runs on "n2"/);
  assert.equal(issues[2].message, 'unknown sensor "zz" (sensors: c1, c2)');
});

Deno.test("primary and standby must differ in node and Deployment", () => {
  const issues = issuesOf((r) => {
    r.workloads[0].standby = { deployment: "w-a", node: "n1", sensors: ["c1"] };
  });
  assert.deepEqual(paths(issues), ["workloads[0].standby.node", "workloads[0].standby.deployment"]);
  assert.match(issues[0].message, /same node as the primary \("n1"\)/);
  assert.match(issues[1].message, /Deployment "w-a" in namespace "default"/);
});

Deno.test("two workloads may not share a Deployment in one namespace", () => {
  const second = {
    name: "v",
    asil: "QM",
    fttiMs: 1000,
    primary: { deployment: "v-a", node: "n1" },
    standby: { deployment: "w-b", node: "n2" },
  };
  let issues = issuesOf((r) => r.workloads.push(second));
  assert.deepEqual(paths(issues), ["workloads[1].standby.deployment"]);
  assert.equal(
    issues[0].message,
    'Deployment "default/w-b" is already used by workloads[0].standby; each Deployment belongs ' +
      "to one side of one workload",
  );
  issues = issuesOf((r) => r.workloads.push({ ...second, namespace: "other" }));
  assert.deepEqual(issues, []);
});

Deno.test("every timeout must be at least 2 × its period; exactly 2 × passes", () => {
  const issues = issuesOf((r) => {
    r.nodes[0].heartbeatTimeoutMs = 65; // 2 × 33 = 66
    r.nodes[1].heartbeatTimeoutMs = 66;
    r.sensors[0].timeoutMs = 40;
    r.workloads[0].appHeartbeat.timeoutMs = 33;
  });
  assert.deepEqual(paths(issues), [
    "nodes[0].heartbeatTimeoutMs",
    "sensors[0].timeoutMs",
    "workloads[0].appHeartbeat.timeoutMs",
  ]);
  assert.equal(
    issues[0].message,
    "heartbeatTimeoutMs 65 is less than 2 × heartbeatPeriodMs (2 × 33 = 66 ms): heartbeats are " +
      "QoS 0, so one lost message must not expire the node; use at least 66",
  );
  assert.match(issues[1].message, /^timeoutMs 40 is less than 2 × periodMs .*expire the sensor/);
  assert.match(issues[2].message, /expire the app/);
});

Deno.test("recoveryWindowMs must cover the largest period", () => {
  let issues = issuesOf((r) => {
    r.sensors[1].periodMs = 70;
    r.sensors[1].timeoutMs = 140;
    r.supervisor = { recoveryWindowMs: 69 };
  });
  assert.deepEqual(paths(issues), ["supervisor.recoveryWindowMs"]);
  assert.match(
    issues[0].message,
    /^recoveryWindowMs 69 is shorter than the largest period, 70 ms \(sensors\[1\]\.periodMs\)/,
  );
  issues = issuesOf((r) => (r.supervisor = { recoveryWindowMs: 33 }));
  assert.deepEqual(issues, []);
});

Deno.test("FTTI: detection + lateness + reaction must fit, boundary included", () => {
  // 300 + 5 + 25 = 330: fttiMs 330 fits with margin 0, 329 does not.
  assert.deepEqual(issuesOf((r) => (r.workloads[0].fttiMs = 330)), []);
  const issues = issuesOf((r) => (r.workloads[0].fttiMs = 329));
  assert.deepEqual(paths(issues), ["workloads[0].fttiMs"]);
  assert.equal(
    issues[0].message,
    "FTTI budget exceeded by 1 ms: detection 300 ms (primary node n1 = standby node n2) + " +
      "lateness allowance 5 ms (supervisor.lagToleranceMs) + reaction budget 25 ms " +
      "(supervisor.reactionBudgetMs) = 330 ms > fttiMs 329 (ISO 26262-1: FDTI + FRTI ≤ FTTI); " +
      "shorten the limiting timeout or the supervisor's budgets, or revisit the FTTI",
  );
});

Deno.test("FTTI: the standby side counts, and supervisor settings are used", () => {
  let issues = issuesOf((r) => {
    r.sensors[1].timeoutMs = 400; // standby camera: 400 + 5 + 25 = 430 > 420
    r.workloads[0].fttiMs = 420;
  });
  assert.deepEqual(paths(issues), ["workloads[0].fttiMs"]);
  assert.match(issues[0].message, /by 10 ms: detection 400 ms \(standby sensor c2\)/);
  issues = issuesOf((r) => (r.supervisor = { reactionBudgetMs: 200, lagToleranceMs: 1 }));
  assert.match(
    issues[0].message,
    /300 ms .* \+ lateness allowance 1 ms .* reaction budget 200 ms .* = 501 ms > fttiMs 500/,
  );
});

Deno.test("FTTI is not judged from an invalid input", () => {
  const issues = issuesOf((r) => {
    r.workloads[0].fttiMs = 100;
    r.workloads[0].appHeartbeat.timeoutMs = "soon"; // the schema reports it
  });
  assert.deepEqual(issues, []);
});

Deno.test("formatPath and parsePath round-trip", () => {
  const segments = ["workloads", 0, "primary", "sensors", 12];
  assert.equal(formatPath(segments), "workloads[0].primary.sensors[12]");
  assert.deepEqual(parsePath("workloads[0].primary.sensors[12]"), segments);
  assert.equal(formatPath([]), "");
  assert.deepEqual(parsePath(""), []);
});

Deno.test("supervisor pair: retryPeriodMs < renewDeadlineMs < leaseDurationMs", () => {
  assert.deepEqual(issuesOf((r) => (r.supervisor = { pair: {} })), [], "defaults are valid");
  let issues = issuesOf((r) => (r.supervisor = { pair: { renewDeadlineMs: 250 } }));
  assert.deepEqual(paths(issues), ["supervisor.pair.renewDeadlineMs"]);
  assert.match(issues[0].message, /renewDeadlineMs 250 must be less than leaseDurationMs 250/);
  issues = issuesOf((r) => (r.supervisor = { pair: { retryPeriodMs: 300, leaseDurationMs: 120 } }));
  assert.deepEqual(paths(issues), [
    "supervisor.pair.renewDeadlineMs", // default 150 ≥ 120
    "supervisor.pair.retryPeriodMs",
  ]);
  // an invalid value is the schema's to report, not a follow-up here
  assert.deepEqual(issuesOf((r) => (r.supervisor = { pair: { renewDeadlineMs: -5 } })), []);
});

Deno.test("mqtt.pairUrl: a second broker, not the same one, TLS exactly when mqtt.url uses it", () => {
  const pairIssues = (url: string, pairUrl: string) =>
    issuesOf((raw) => raw.mqtt = { url, pairUrl }).filter((i) => i.path === "mqtt.pairUrl");
  assert.deepEqual(pairIssues("mqtt://10.0.0.1:1883", "mqtt://10.0.0.2:1883"), []);
  assert.deepEqual(pairIssues("mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:1884"), []);
  assert.match(pairIssues("mqtt://Broker-A", "mqtt://broker-a:1883")[0].message, /same broker/);
  assert.match(pairIssues("mqtts://a:8883", "ssl://a")[0].message, /same broker/);
  assert.match(pairIssues("mqtts://a:8883", "mqtt://b:1883")[0].message, /TLS exactly when/);
  assert.deepEqual(pairIssues("mqtts://a:8883", "wss://b:443"), []);
});
