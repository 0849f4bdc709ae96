/**
 * Builds a supervisor's status snapshot ({@linkcode StatusSnapshot}, `lib/wire/state_message.ts`):
 * a pure function of the supervisor's parts read at one instant, so it is unit-tested on a fake
 * clock. The supervisor publishes it retained on `{p}/supervisor/{id}/state` and the HTTP
 * `/status` route serves it; `sdv-failover status` renders it.
 *
 * Ages are differences on the supervisor's monotonic clock (`nowMs` minus the receipt time of the
 * last heartbeat), rounded to whole ms; the only wall time is `generatedAt`.
 *
 * @module
 */
import type { IngestStats } from "../ingest/ingest.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import { type NodeTarget, otherSide, type Topology, type Workload } from "../topology/topology.ts";
import type { TargetState, WatchdogStats } from "../watchdog/watchdog.ts";
import { STATUS_SNAPSHOT_VERSION, type StatusSnapshot } from "../wire/state_message.ts";

export type { StatusSnapshot } from "../wire/state_message.ts";

/**
 * What the snapshot reads of a supervisor; `Supervisor` satisfies it (tests may pass a fake).
 */
export interface StatusSource {
  /** `supervisor.id` of this instance. */
  readonly id: string;
  /** Lifecycle state. */
  readonly state: "created" | "starting" | "running" | "stopping" | "stopped";
  readonly topology: Topology;
  readonly watchdog: {
    describe(index: number): { state: TargetState; lastHeartbeatAtMs?: number } | undefined;
    readonly stats: Pick<WatchdogStats, "expiries">;
  };
  readonly policy: {
    workload(workload: Workload): Readonly<WorkloadDesired>;
    node(node: NodeTarget): Readonly<NodeDesired>;
    isFencePending(node: NodeTarget): boolean;
    isDraining(node: NodeTarget): boolean;
  };
  readonly ingest: Pick<IngestStats, "messages" | "malformed" | "refusedPromotions">;
  readonly ingestFaulted: boolean;
  readonly armed: boolean;
  /** Monotonic ms of `start()`, or undefined before it. */
  readonly startedAtMs: number | undefined;
  /** Pair only: whether this instance leads now and its last term; undefined without a pair. */
  readonly leadership: { leader: boolean; term: number | undefined } | undefined;
  readonly reconciler: { readonly queueDepth: number } | undefined;
}

/** Options of {@linkcode buildStatusSnapshot}. */
export interface StatusSnapshotOptions {
  /** Now on the supervisor's monotonic clock, ms (the base of every age). */
  nowMs: number;
  /** Wall time for `generatedAt` (default `new Date()`). */
  wallNow?: Date;
}

/**
 * The snapshot of `source` at `nowMs`. Rows follow the config's order (nodes, sensors, app
 * instances — primary before standby — and workloads). Pure: reads, never changes anything.
 */
export function buildStatusSnapshot(
  source: StatusSource,
  options: StatusSnapshotOptions,
): StatusSnapshot {
  const { nowMs } = options;
  const { topology, watchdog, policy } = source;
  const ageOf = (index: number): number | null => {
    const last = watchdog.describe(index)?.lastHeartbeatAtMs;
    return last === undefined ? null : Math.max(0, Math.round(nowMs - last));
  };
  const stateOf = (index: number): TargetState => watchdog.describe(index)?.state ?? "INIT";
  const leadership = source.leadership;
  return {
    v: STATUS_SNAPSHOT_VERSION,
    generatedAt: (options.wallNow ?? new Date()).toISOString(),
    supervisor: {
      id: source.id,
      lifecycle: source.state,
      role: leadership === undefined ? "single" : leadership.leader ? "leader" : "standby",
      term: leadership?.term ?? null,
      armed: source.armed,
      ingestFaulted: source.ingestFaulted,
      upMs: source.startedAtMs === undefined
        ? null
        : Math.max(0, Math.round(nowMs - source.startedAtMs)),
      reconcileQueue: source.reconciler?.queueDepth ?? 0,
      counters: {
        messages: source.ingest.messages,
        malformed: source.ingest.malformed,
        refusedPromotions: source.ingest.refusedPromotions,
        expiries: watchdog.stats.expiries,
      },
    },
    nodes: topology.nodes.map((node) => {
      const desired = policy.node(node);
      return {
        name: node.name,
        state: stateOf(node.index),
        heartbeatAgeMs: ageOf(node.index),
        fence: desired.fenced ? "fenced" : policy.isFencePending(node) ? "pending" : "none",
        fenceReason: desired.fenced ? desired.reason ?? null : null,
        draining: policy.isDraining(node),
      };
    }),
    sensors: topology.sensors.map((sensor) => ({
      name: sensor.name,
      node: sensor.node.name,
      state: stateOf(sensor.index),
      ageMs: ageOf(sensor.index),
    })),
    apps: topology.apps.map((app) => ({
      workload: app.workload.name,
      node: app.node.name,
      side: app.side,
      state: stateOf(app.index),
      ageMs: ageOf(app.index),
    })),
    workloads: topology.workloads.map((workload) => {
      const desired = policy.workload(workload);
      return {
        name: workload.name,
        namespace: workload.namespace,
        asil: workload.asil,
        fttiMs: workload.fttiMs,
        activeSide: desired.active,
        activeNode: workload[desired.active].node.name,
        standbyNode: workload[otherSide(desired.active)].node.name,
        epoch: desired.epoch,
        reason: desired.reason,
        failedAt: desired.failedAt ?? null,
      };
    }),
  };
}
