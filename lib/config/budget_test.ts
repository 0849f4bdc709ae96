import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  computeBudgets,
  computeTakeoverBudgets,
  formatBudgetTable,
  formatTakeoverBudgets,
  takeoverBoundMs,
  type WorkloadBudget,
  workloadBudget,
} from "./budget.ts";
import { loadConfig } from "./load.ts";
import { type Config, ConfigSchema, PairSchema } from "./schema.ts";

const example = () =>
  loadConfig(fileURLToPath(new URL("../../config/example.yaml", import.meta.url)));
const fast = () => loadConfig(fileURLToPath(new URL("../../config/fast.yaml", import.meta.url)));

/** A small valid config: w runs on a (sensor ca) with standby on b (sensor cb). */
function config(overrides: {
  supervisor?: Record<string, number>;
  nodeTimeouts?: [number, number];
  sensorTimeouts?: [number, number];
  app?: { periodMs: number; timeoutMs: number };
  fttiMs?: number;
} = {}): Config {
  const [na, nb] = overrides.nodeTimeouts ?? [300, 300];
  const [sa, sb] = overrides.sensorTimeouts ?? [150, 150];
  return ConfigSchema.parse({
    supervisor: overrides.supervisor ?? {},
    nodes: [
      { name: "a", heartbeatPeriodMs: 10, heartbeatTimeoutMs: na },
      { name: "b", heartbeatPeriodMs: 10, heartbeatTimeoutMs: nb },
    ],
    sensors: [
      { name: "ca", node: "a", periodMs: 10, timeoutMs: sa },
      { name: "cb", node: "b", periodMs: 10, timeoutMs: sb },
    ],
    workloads: [{
      name: "w",
      asil: "B",
      fttiMs: overrides.fttiMs ?? 500,
      primary: { deployment: "w-1", node: "a", sensors: ["ca"] },
      standby: { deployment: "w-2", node: "b", sensors: ["cb"] },
      appHeartbeat: overrides.app,
    }],
  });
}

Deno.test("example.yaml: lane-detection 300 + 5 + 25 = 330 ≤ 500, margin 170", async () => {
  const [lane, pose] = computeBudgets(await example());
  assert.equal(lane.workload, "lane-detection");
  assert.equal(lane.asil, "B");
  assert.equal(lane.fttiMs, 500);
  assert.equal(lane.detectionMs, 300);
  assert.equal(lane.latenessAllowanceMs, 5);
  assert.equal(lane.reactionBudgetMs, 25);
  assert.equal(lane.totalMs, 330);
  assert.equal(lane.marginMs, 170);
  assert.equal(lane.limitedBy, "primary node worker-node2 = standby node worker-node3");
  assert.equal(lane.primary.limit.kind, "node"); // node 300 ties app 300: node comes first
  assert.equal(lane.standby.node, "worker-node3");
  assert.equal(pose.workload, "pose-estimation");
  assert.equal(pose.asil, "QM");
  assert.equal(pose.totalMs, 330);
  assert.equal(pose.marginMs, 670);
});

Deno.test("fast.yaml: lane-detection ASIL D 30 + 5 + 25 = 60 ≤ 100, margin 40", async () => {
  const [lane, pose] = computeBudgets(await fast());
  assert.deepEqual(
    [lane.asil, lane.fttiMs, lane.detectionMs, lane.totalMs, lane.marginMs],
    ["D", 100, 30, 60, 40],
  );
  assert.equal(pose.marginMs, 940);
});

Deno.test("the standby side limits when its targets are slower, and says so", () => {
  const [b] = computeBudgets(config({ sensorTimeouts: [150, 400] }));
  assert.equal(b.primary.detectionMs, 300);
  assert.equal(b.standby.detectionMs, 400);
  assert.equal(b.detectionMs, 400);
  assert.equal(b.totalMs, 430);
  assert.equal(b.marginMs, 70);
  assert.equal(b.limitedBy, "standby sensor cb");
  assert.deepEqual(b.standby.limit, { kind: "sensor", name: "cb", timeoutMs: 400 });
});

Deno.test("the primary side limits, by its node", () => {
  const [b] = computeBudgets(config({ nodeTimeouts: [450, 300] }));
  assert.equal(b.limitedBy, "primary node a");
  assert.equal(b.totalMs, 450 + 5 + 25);
  assert.equal(b.marginMs, 500 - 480);
});

Deno.test("an app heartbeat slower than node and sensors limits both sides", () => {
  const [b] = computeBudgets(config({ app: { periodMs: 50, timeoutMs: 350 } }));
  assert.equal(b.detectionMs, 350);
  assert.equal(b.limitedBy, "primary app heartbeat on a = standby app heartbeat on b");
  assert.equal(b.primary.limit.kind, "app");
});

Deno.test("supervisor budgets come from the config; a violation has a negative margin", () => {
  const [b] = computeBudgets(config({
    supervisor: { reactionBudgetMs: 60, lagToleranceMs: 20 },
    fttiMs: 350,
  }));
  assert.equal(b.latenessAllowanceMs, 20);
  assert.equal(b.reactionBudgetMs, 60);
  assert.equal(b.totalMs, 300 + 20 + 60);
  assert.equal(b.marginMs, 350 - 380);
});

Deno.test("workloadBudget is undefined when a referenced target has no known timeout", () => {
  const w = config().workloads[0];
  const sup = { reactionBudgetMs: 25, lagToleranceMs: 5 };
  const nodes = new Map([["a", 300], ["b", 300]]);
  const known = {
    node: (n: string) => nodes.get(n),
    sensor: (s: string) => (s === "ca" ? 150 : undefined),
  };
  assert.equal(workloadBudget(w, known, sup), undefined);
  const all = { ...known, sensor: () => 100 };
  assert.equal(workloadBudget(w, all, sup)?.totalMs, 330);
});

Deno.test("computeBudgets throws a RangeError for an undefined reference", () => {
  const c = config();
  c.workloads[0].standby.sensors = ["nope"];
  assert.throws(() => computeBudgets(c), RangeError);
});

Deno.test("formatBudgetTable aligns columns and right-aligns numbers", async () => {
  const table = formatBudgetTable(computeBudgets(await example()));
  const lines = table.split("\n");
  assert.equal(lines.length, 3);
  assert.match(
    lines[0],
    /^workload +asil +ftti ms +detect ms +lateness ms +reaction ms +total ms +margin ms +limited by$/,
  );
  assert.match(
    lines[1],
    /^lane-detection +B +500 +300 +5 +25 +330 +\+170 +primary node worker-node2/,
  );
  assert.match(lines[2], /^pose-estimation +QM +1000 +300 +5 +25 +330 +\+670 +primary node/);
  // Every column starts at the same offset on every line: the "limited by" column too.
  const start = lines[0].indexOf("limited by");
  assert.equal(lines[1].indexOf("primary"), start);
  assert.equal(lines[2].indexOf("primary"), start);
  // Numbers end where their header ends.
  const end = lines[0].indexOf("ftti ms") + "ftti ms".length;
  assert.equal(lines[1].indexOf("500") + 3, end);
  assert.equal(lines[2].indexOf("1000") + 4, end);
});

Deno.test("formatBudgetTable shows a violation's margin with its sign, and an empty list", () => {
  const b: WorkloadBudget = computeBudgets(config({ fttiMs: 300 }))[0];
  assert.equal(b.marginMs, -30);
  assert.match(formatBudgetTable([b]).split("\n")[1], / -30 /);
  assert.equal(formatBudgetTable([]), "(no workloads)");
});

Deno.test("takeoverBoundMs: lease + retry + renew deadline (defaults 250 + 30 + 150 = 430)", () => {
  const pair = PairSchema.parse({ ids: ["a", "b"] });
  assert.equal(takeoverBoundMs(pair), 430);
  assert.equal(
    takeoverBoundMs({ leaseDurationMs: 200, renewDeadlineMs: 120, retryPeriodMs: 25 }),
    345,
  );
});

Deno.test("computeTakeoverBudgets: none without a pair; budget + takeover against the FTTI", () => {
  assert.equal(computeTakeoverBudgets(config()), undefined);
  const c = config();
  const withPair = ConfigSchema.parse({
    ...c,
    supervisor: {
      pair: { ids: ["a", "b"], leaseDurationMs: 100, renewDeadlineMs: 40, retryPeriodMs: 10 },
    },
  });
  const [b] = computeTakeoverBudgets(withPair)!;
  // 300 + 5 + 25 = 330; + (100 + 10 + 40) = 480 ≤ 500
  assert.deepEqual(b, {
    workload: "w",
    fttiMs: 500,
    totalMs: 330,
    takeoverMs: 150,
    withTakeoverMs: 480,
    marginMs: 20,
  });
  assert.deepEqual(formatTakeoverBudgets([b]), [
    "w: 330 + takeover 150 = 480 ms ≤ FTTI 500 ms (margin 20 ms)",
  ]);
  const defaults = ConfigSchema.parse({ ...c, supervisor: { pair: { ids: ["a", "b"] } } });
  const [d] = computeTakeoverBudgets(defaults)!;
  assert.equal(d.marginMs, 500 - 330 - 430);
  assert.deepEqual(formatTakeoverBudgets([d]), [
    "w: 330 + takeover 430 = 760 ms > FTTI 500 ms (short by 260 ms)",
  ]);
});
