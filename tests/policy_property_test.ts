/**
 * Properties of the failover policy (`lib/policy/policy.ts`, pure) on a four-node topology, over
 * arbitrary sequences of expiries (node, sensor and app; deadline, Last Will, never seen; batches),
 * health and readiness changes, recoveries, planned stops, adoptions (epochs up to 2^53 − 1, also
 * invalid ones and ones above `MAX_EPOCH`), fence adoptions, confirmations, unfences and time steps
 * (fast-check; a failure prints its seed and the shrunk sequence):
 * - epochs per workload only grow, and stay at most `MAX_EPOCH` (a promotion's bound);
 * - a failover takes exactly the next epoch and the other side, and never an epoch already named
 *   (decided or adopted): one epoch never names two active sides;
 * - a fenced node is never promoted to; a failover goes only to a side whose targets are OK and
 *   whose instance is ready;
 * - a blocked failover carries its failover reason and why, and is justified (the other side has
 *   a target not OK, its node is fenced, it is not ready, or the epoch cannot grow); it changes
 *   nothing;
 * - a node is fenced only on evidence: its own deadline or Last Will (not never-seen, not during
 *   a planned stop), a confirmation while it is still not OK, or an adoption from the cluster;
 * - nothing changes an epoch but a failover or an adoption; a non-failure transition decides
 *   nothing.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConfigSchema } from "../lib/config/schema.ts";
import { type Decision, FailoverPolicy } from "../lib/policy/policy.ts";
import { MAX_EPOCH } from "../lib/wire/wire.ts";
import type { NodeDesired, WorkloadDesired } from "../lib/policy/desired.ts";
import {
  buildTopology,
  type NodeTarget,
  otherSide,
  type Side,
  type Target,
} from "../lib/topology/topology.ts";
import type { ExpiryCause, Transition } from "../lib/watchdog/watchdog.ts";

const timing = { periodMs: 10, timeoutMs: 30 };
const topology = buildTopology(ConfigSchema.parse({
  nodes: ["n1", "n2", "n3", "n4"].map((name) => ({
    name,
    heartbeatPeriodMs: 10,
    heartbeatTimeoutMs: 30,
  })),
  sensors: ["n1", "n2", "n3", "n4"].map((node, i) => ({ name: `s${i + 1}`, node, ...timing })),
  workloads: [
    {
      name: "w1",
      asil: "D",
      fttiMs: 100,
      primary: { deployment: "w1-a", node: "n1", sensors: ["s1"] },
      standby: { deployment: "w1-b", node: "n2", sensors: ["s2"] },
      appHeartbeat: timing,
    },
    {
      name: "w2",
      asil: "B",
      fttiMs: 500,
      primary: { deployment: "w2-a", node: "n2", sensors: ["s2"] },
      standby: { deployment: "w2-b", node: "n3", sensors: ["s3"] },
      actions: ["promote", "deletePods"],
    },
    {
      name: "w3",
      asil: "QM",
      fttiMs: 1000,
      primary: { deployment: "w3-a", node: "n3" },
      standby: { deployment: "w3-b", node: "n1", sensors: ["s1"] },
      actions: ["promote"],
    },
    {
      name: "w4",
      asil: "A",
      fttiMs: 1000,
      primary: { deployment: "w4-a", node: "n4", sensors: ["s4"] },
      standby: { deployment: "w4-b", node: "n2" },
      appHeartbeat: timing,
      actions: ["promote", "taint"],
    },
  ],
}));
const T = topology.targets.length;
const N = topology.nodes.length;
const W = topology.workloads.length;

type Op =
  | { op: "fail"; batch: { target: number; cause: ExpiryCause }[]; isFailure: boolean }
  | { op: "health"; target: number; healthy: boolean }
  | { op: "ready"; workload: number; side: Side; ready: boolean }
  | { op: "recover"; node: number }
  | { op: "plannedStop"; node: number }
  | {
    op: "adopt";
    workload: number;
    epoch: number;
    active: Side | undefined;
    reason: string | undefined;
  }
  | { op: "adoptFence"; node: number; tainted: boolean; cordonedByUs: boolean }
  | { op: "confirm"; node: number }
  | { op: "unfence"; node: number }
  | { op: "advance"; ms: number };

const side = fc.constantFrom<Side>("primary", "standby");
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("fail" as const),
      batch: fc.array(
        fc.record({
          target: fc.nat(T - 1),
          cause: fc.constantFrom<ExpiryCause>("deadline", "deadline", "offline", "never-seen"),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      isFailure: fc.integer({ min: 0, max: 9 }).map((n) => n < 8),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      op: fc.constant("health" as const),
      target: fc.nat(T - 1),
      healthy: fc.integer({ min: 0, max: 9 }).map((n) => n < 7),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("ready" as const),
      workload: fc.nat(W - 1),
      side,
      ready: fc.boolean(),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("recover" as const), node: fc.nat(N - 1) }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant("plannedStop" as const), node: fc.nat(N - 1) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("adopt" as const),
      workload: fc.nat(W - 1),
      epoch: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 0, max: 20 }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            MAX_EPOCH,
            MAX_EPOCH - 1,
            MAX_EPOCH + 1,
            Number.MAX_SAFE_INTEGER,
            Number.MAX_SAFE_INTEGER - 1,
            2 ** 53,
            -1,
            1.5,
            NaN,
            Infinity,
          ),
        },
      ),
      active: fc.option(side, { nil: undefined }),
      reason: fc.option(
        fc.constantFrom("node-expired", "node-offline", "planned-stop", "node-never-seen", "x"),
        { nil: undefined },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("adoptFence" as const),
      node: fc.nat(N - 1),
      tainted: fc.boolean(),
      cordonedByUs: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("confirm" as const), node: fc.nat(N - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unfence" as const), node: fc.nat(N - 1) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("advance" as const),
      ms: fc.integer({ min: 0, max: 5000 }),
    }),
  },
);

/** What the runs exercised (asserted at the end: the properties must not hold vacuously). */
const seen = {
  runs: 0,
  ops: 0,
  failovers: 0,
  blocked: new Map<string, number>(),
  fences: 0,
  pendingFences: 0,
  adopted: 0,
};

/** The kind of reason a blocked decision gives, for the coverage count. */
function blockedKind(why: string): string {
  return why.includes("cannot grow")
    ? "epoch"
    : why.includes("is fenced")
    ? "fenced"
    : why.includes("not ready")
    ? "not-ready"
    : "not-ok";
}

Deno.test("property: failover policy epochs, one active side per epoch, fencing, blocked failovers", () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 80, size: "max" }), (ops) => {
      seen.runs++;
      const healthy = new Map<Target, boolean>(topology.targets.map((t) => [t, true]));
      const ready = new Map<string, boolean>();
      const isReady = (deployment: string) => ready.get(deployment) !== false;
      const policy = new FailoverPolicy({
        topology,
        isHealthy: (t) => healthy.get(t)!,
        isReady: (p) =>
          isReady(p.deployment) ? { ready: true } : { ready: false, why: "pod not Ready" },
        wallTime: () => "2026-12-02T00:00:00.000Z",
      });
      let nowMs = 1000;
      /** Per workload, every epoch named so far (decided or adopted) → its active side. */
      const named = topology.workloads.map(() => new Map<number, Side>([[0, "primary"]]));

      for (const op of ops) {
        seen.ops++;
        const before: WorkloadDesired[] = topology.workloads.map((w) => policy.workload(w));
        const nodesBefore: NodeDesired[] = topology.nodes.map((n) => policy.node(n));
        const drainingBefore = topology.nodes.map((n) => policy.isDraining(n));
        /** Nodes this op may fence, with the evidence for it. */
        const mayFence = new Set<NodeTarget>();
        let decisions: Decision[] = [];
        switch (op.op) {
          case "fail": {
            const batch: Transition<Target>[] = op.batch.map(({ target, cause }) => {
              const t = topology.targets[target];
              const c = t.kind === "node" ? cause : "deadline";
              healthy.set(t, false); // the watchdog applies the whole batch first
              if (t.kind === "node" && c !== "never-seen" && !drainingBefore[t.index]) {
                mayFence.add(t);
              }
              return {
                target: t,
                from: c === "never-seen" ? "INIT" : "OK",
                to: "EXPIRED",
                atMs: nowMs,
                lastHeartbeatAtMs: c === "never-seen" ? undefined : nowMs - 30,
                deadlineMs: nowMs,
                latenessMs: 0,
                cause: c,
                isFailure: op.isFailure,
              };
            });
            decisions = policy.onFailures(batch);
            if (!op.isFailure) {
              assert.equal(decisions.length, 0, "a non-failure transition decided something");
            }
            break;
          }
          case "health":
            healthy.set(topology.targets[op.target], op.healthy);
            break;
          case "ready":
            ready.set(topology.workloads[op.workload][op.side].deployment, op.ready);
            break;
          case "recover": {
            const node = topology.nodes[op.node];
            healthy.set(node, true);
            policy.onRecovered(node);
            assert.equal(policy.node(node).fenced, false, "a recovered node stays fenced");
            assert.equal(policy.isDraining(node), false, "a recovered node stays draining");
            break;
          }
          case "plannedStop":
            decisions = policy.onPlannedStop(topology.nodes[op.node]);
            break;
          case "adopt": {
            const w = topology.workloads[op.workload];
            const cur = before[op.workload];
            const next = policy.adopt(w, { epoch: op.epoch, active: op.active, reason: op.reason });
            const valid = Number.isInteger(op.epoch) && op.epoch <= MAX_EPOCH &&
              op.epoch >= cur.epoch &&
              (op.epoch > cur.epoch || (op.active ?? cur.active) !== cur.active);
            assert.equal(next !== undefined, valid, `adopt ${op.epoch} over ${cur.epoch}`);
            if (next) {
              // the cluster is the arbiter: what it names for this epoch is what holds
              named[op.workload].set(next.epoch, next.active);
              seen.adopted++;
              mayFence.add(w[otherSide(next.active)].node);
            }
            break;
          }
          case "adoptFence":
            mayFence.add(topology.nodes[op.node]);
            policy.adoptFence(topology.nodes[op.node], op);
            break;
          case "confirm": {
            const node = topology.nodes[op.node];
            if (!healthy.get(node)) mayFence.add(node);
            const r = policy.confirm(node);
            for (const d of r.workloads) {
              assert.equal(
                d.epoch,
                before[d.workload.index].epoch,
                "a confirmation changed an epoch",
              );
            }
            break;
          }
          case "unfence":
            policy.unfence(topology.nodes[op.node]);
            break;
          case "advance":
            nowMs += op.ms;
            break;
        }

        // Failovers: the next epoch, the other side, a trusted and unfenced side, never an epoch
        // named before. Blocked: a reason, a why, and a true one.
        const running = before.map((d) => ({ epoch: d.epoch, active: d.active }));
        const moved = new Set<number>();
        for (const d of decisions) {
          if (d.kind === "fence") seen.fences++;
          if (d.kind === "fence-pending") seen.pendingFences++;
          if (d.kind === "failover") {
            seen.failovers++;
            const w = d.desired.workload;
            const i = w.index;
            moved.add(i);
            assert.equal(d.desired.epoch, running[i].epoch + 1, "a failover skipped an epoch");
            assert.ok(d.desired.epoch <= MAX_EPOCH, `epoch ${d.desired.epoch} above MAX_EPOCH`);
            assert.equal(
              d.desired.active,
              otherSide(running[i].active),
              "a failover kept the side",
            );
            assert.ok(
              !named[i].has(d.desired.epoch),
              `${w.name}: epoch ${d.desired.epoch} named twice (${
                named[i].get(d.desired.epoch)
              }, now ${d.desired.active})`,
            );
            named[i].set(d.desired.epoch, d.desired.active);
            running[i] = { epoch: d.desired.epoch, active: d.desired.active };
            const placement = w[d.desired.active];
            const target = placement.node;
            assert.equal(policy.node(target).fenced, false, `promoted to fenced ${target.name}`);
            assert.equal(
              nodesBefore[target.index].fenced,
              false,
              `promoted to fenced ${target.name}`,
            );
            for (const t of placement.targets) {
              assert.ok(
                healthy.get(t),
                `promoted to ${w.name}'s ${d.desired.active}: ${t.label} not OK`,
              );
            }
            assert.ok(
              isReady(placement.deployment),
              `promoted to ${placement.deployment}, not ready`,
            );
          } else if (d.kind === "blocked") {
            const w = d.workload;
            const i = w.index;
            assert.ok(d.reason.length > 0 && d.why.length > 0, `${w.name}: blocked without reason`);
            seen.blocked.set(blockedKind(d.why), (seen.blocked.get(blockedKind(d.why)) ?? 0) + 1);
            const placement = w[otherSide(running[i].active)];
            const justified = running[i].epoch >= MAX_EPOCH ||
              placement.targets.some((t) => !healthy.get(t)) ||
              nodesBefore[placement.node.index].fenced || policy.node(placement.node).fenced ||
              !isReady(placement.deployment);
            assert.ok(justified, `${w.name}: blocked for nothing (${d.why})`);
            for (const t of d.unhealthy) assert.equal(healthy.get(t), false, `${t.label} is OK`);
            if (!moved.has(i)) {
              assert.equal(
                policy.workload(w),
                before[i],
                `${w.name}: a blocked failover changed it`,
              );
            }
          }
        }

        topology.workloads.forEach((w, i) => {
          const now = policy.workload(w);
          assert.ok(now.epoch >= before[i].epoch, `epoch of ${w.name} went down`);
          assert.ok(
            Number.isInteger(now.epoch) && now.epoch <= MAX_EPOCH,
            `epoch ${now.epoch} off bounds`,
          );
          if (op.op !== "adopt" && !moved.has(i)) {
            assert.equal(
              now.epoch,
              before[i].epoch,
              `${w.name}'s epoch changed without a failover`,
            );
            assert.equal(now.active, before[i].active, `${w.name} moved without a failover`);
          }
          if (moved.has(i)) assert.equal(now.epoch, running[i].epoch);
        });
        topology.nodes.forEach((n, i) => {
          if (policy.node(n).fenced && !nodesBefore[i].fenced) {
            assert.ok(mayFence.has(n), `${n.name} fenced without evidence (${op.op})`);
          }
        });
      }
    }),
    { numRuns: 500 },
  );
  // The properties were exercised, not satisfied vacuously.
  const blocked = Object.fromEntries(seen.blocked);
  console.log(
    `policy properties: ${seen.runs} runs, ${seen.ops} operations, ${seen.failovers} failovers, ` +
      `blocked ${JSON.stringify(blocked)}, ${seen.fences} fences, ${seen.pendingFences} pending ` +
      `fences, ${seen.adopted} adoptions`,
  );
  assert.ok(seen.failovers > 100 && seen.fences > 10 && seen.pendingFences > 0, "coverage");
  for (const kind of ["not-ok", "fenced", "not-ready", "epoch"]) {
    assert.ok((blocked[kind] ?? 0) > 0, `no failover was blocked as ${kind}`);
  }
});
