import assert from "node:assert/strict";
import { ConfigSchema } from "../config/schema.ts";
import { buildTopology } from "../topology/topology.ts";
import { parseDurationMs, parseFault, validateFaults } from "./faults.ts";

Deno.test("parseDurationMs: ms, ms suffix and seconds", () => {
  assert.equal(parseDurationMs("1500"), 1500);
  assert.equal(parseDurationMs("1500ms"), 1500);
  assert.equal(parseDurationMs("1.5s"), 1500);
  assert.equal(parseDurationMs("0"), 0);
  assert.equal(parseDurationMs("2s"), 2000);
  assert.equal(parseDurationMs("0.5ms"), 0.5);
  for (const bad of ["", "-1", "1.5m", "ms", "1e3", "1,5s", "abc", "1 s"]) {
    assert.throws(() => parseDurationMs(bad), /invalid time/, bad);
  }
});

Deno.test("parseFault: every kind", () => {
  assert.deepEqual(parseFault("node-crash:worker-node2@500ms"), {
    kind: "node-crash",
    node: "worker-node2",
    atMs: 500,
    spec: "node-crash:worker-node2@500ms",
  });
  assert.deepEqual(parseFault("node-hang:worker-node3@1.5s"), {
    kind: "node-hang",
    node: "worker-node3",
    atMs: 1500,
    spec: "node-hang:worker-node3@1.5s",
  });
  assert.deepEqual(parseFault("sensor-loss:cam-front@1500"), {
    kind: "sensor-loss",
    sensor: "cam-front",
    atMs: 1500,
    spec: "sensor-loss:cam-front@1500",
  });
  assert.deepEqual(parseFault("app-hang:perception@2s"), {
    kind: "app-hang",
    workload: "perception",
    atMs: 2000,
    spec: "app-hang:perception@2s",
  });
  assert.deepEqual(parseFault("jitter:worker-node2:20"), {
    kind: "jitter",
    node: "worker-node2",
    maxDelayMs: 20,
    spec: "jitter:worker-node2:20",
  });
  assert.deepEqual(parseFault("jitter:worker-node2:15ms").kind, "jitter");
  assert.deepEqual(parseFault("partition:worker-node2@1s+500ms"), {
    kind: "partition",
    node: "worker-node2",
    atMs: 1000,
    durationMs: 500,
    spec: "partition:worker-node2@1s+500ms",
  });
  assert.deepEqual(parseFault("planned-stop:worker-node2@2s"), {
    kind: "planned-stop",
    node: "worker-node2",
    atMs: 2000,
    spec: "planned-stop:worker-node2@2s",
  });
  assert.equal(parseFault("  node-crash:n1@0  ").spec, "node-crash:n1@0", "trimmed");
});

Deno.test("parseFault: clear errors on bad syntax", () => {
  const cases: [string, RegExp][] = [
    ["", /missing ':'/],
    ["node-crash", /missing ':'/],
    ["explode:worker-node2@1s", /unknown fault kind "explode"/],
    ["node-crash:worker-node2", /missing '@T' after the node/],
    ["node-crash:worker-node2@", /T: invalid time ""/],
    ["node-crash:worker-node2@soon", /T: invalid time "soon"/],
    ["node-crash:Worker_Node@1s", /node "Worker_Node" is not a valid name/],
    ["node-crash:@1s", /node "" is not a valid name/],
    ["sensor-loss:cam-front", /missing '@T' after the sensor/],
    ["app-hang:perception@-5", /invalid time "-5"/],
    ["jitter:worker-node2", /missing ':MS'/],
    ["jitter:worker-node2:0", /MS must be above 0/],
    ["jitter:worker-node2:fast", /MS: invalid time "fast"/],
    ["partition:worker-node2@1s", /missing '\+DUR'/],
    ["partition:worker-node2@1s+0", /DUR must be above 0/],
    ["partition:worker-node2@1s+x", /DUR: invalid time "x"/],
    ["planned-stop:worker-node2", /missing '@T' after the node/],
    ["planned-stop:worker-node2@later", /T: invalid time "later"/],
    ["explode:x@1s", /planned-stop:NODE@T\)$/],
  ];
  for (const [spec, pattern] of cases) {
    assert.throws(() => parseFault(spec), pattern, spec);
    assert.throws(() => parseFault(spec), /expected one of node-crash:NODE@T/, spec);
    assert.throws(
      () => parseFault(spec),
      (e: Error) => e.message.startsWith(`invalid fault ${JSON.stringify(spec)}: `),
      spec,
    );
  }
});

Deno.test("validateFaults lists unknown names and inapplicable app-hangs", () => {
  const topology = buildTopology(ConfigSchema.parse({
    nodes: [
      { name: "worker-node2", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 100 },
      { name: "worker-node3", heartbeatPeriodMs: 33, heartbeatTimeoutMs: 100 },
    ],
    sensors: [{ name: "cam-front", node: "worker-node2", periodMs: 33, timeoutMs: 150 }],
    workloads: [
      {
        name: "perception",
        asil: "B",
        fttiMs: 500,
        primary: { deployment: "p-a", node: "worker-node2" },
        standby: { deployment: "p-b", node: "worker-node3" },
        appHeartbeat: { periodMs: 20, timeoutMs: 60 },
      },
      {
        name: "logger",
        asil: "QM",
        fttiMs: 5000,
        primary: { deployment: "l-a", node: "worker-node2" },
        standby: { deployment: "l-b", node: "worker-node3" },
      },
    ],
  }));
  const ok = [
    "node-crash:worker-node2@1s",
    "node-hang:worker-node3@1s",
    "sensor-loss:cam-front@1s",
    "app-hang:perception@1s",
    "jitter:worker-node3:10",
    "partition:worker-node2@1s+1s",
    "planned-stop:worker-node3@1s",
  ].map(parseFault);
  assert.deepEqual(validateFaults(ok, topology), []);
  const problems = validateFaults(
    [
      "node-crash:worker-node9@1s",
      "jitter:worker-node8:5",
      "partition:nowhere@1s+1s",
      "sensor-loss:cam-rear@1s",
      "app-hang:planner@1s",
      "app-hang:logger@1s",
      "planned-stop:worker-node7@1s",
    ].map(parseFault),
    topology,
  );
  assert.equal(problems.length, 7);
  assert.match(problems[0], /node-crash:worker-node9@1s: unknown node worker-node9/);
  assert.match(problems[0], /configured: worker-node2, worker-node3/);
  assert.match(problems[1], /unknown node worker-node8/);
  assert.match(problems[2], /unknown node nowhere/);
  assert.match(problems[3], /unknown sensor cam-rear \(configured: cam-front\)/);
  assert.match(problems[4], /unknown workload planner \(configured: perception, logger\)/);
  assert.match(problems[5], /workload logger has no appHeartbeat configured/);
  assert.match(problems[6], /planned-stop:worker-node7@1s: unknown node worker-node7/);
});
