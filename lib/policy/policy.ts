/**
 * The failover policy: given a confirmed expiry, which workloads lose their active instance, is
 * the other instance trustworthy, and what exactly must be done. Pure logic, no I/O: the
 * supervisor executes the returned plans.
 *
 * Rules:
 * - A node expiry affects every workload whose ACTIVE instance runs on that node; a sensor expiry
 *   only the workloads whose active instance needs that sensor; an app expiry only that instance.
 * - The other instance is promoted only if its node, its sensors and its app heartbeat are all OK
 *   (never promote a standby that is itself expired, recovering, or never seen).
 * - Each promotion takes the next epoch (the fencing token); epochs only grow, and the state the
 *   policy starts from is observed from the cluster and from retained promotions, so a restart
 *   or a repeated expiry never repeats a failover.
 * - Cordon and taint are node actions, planned on every node failure (a separate
 *   {@linkcode NodeFencePlan}) when a workload with an instance on that node allows them — also
 *   when its workloads already moved for an earlier sensor or app expiry.
 *
 * @module
 */
import type { Asil, Config, FailoverAction, WorkloadConfig } from "../config/schema.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import { placementTargets } from "./targets.ts";

/** Which instance of a workload holds the active role. */
export type Side = "primary" | "standby";

/** The policy's view of one workload. */
export interface WorkloadState {
  active: Side;
  /** Highest epoch issued or observed (0 = never failed over). */
  epoch: number;
}

/** One instance of a workload. */
export interface PlacementRef {
  deployment: string;
  node: string;
}

/** What happened, as input to a plan. */
export interface PlanTrigger {
  targetId: string;
  /** Monotonic expiry time, ms. */
  expiredAtMs: number;
  lastHeartbeatAtMs: number | undefined;
  deadlineMs: number | undefined;
  latenessMs: number | undefined;
}

/** Everything needed to fail one workload over, decided before any I/O. */
export interface FailoverPlan {
  workload: string;
  namespace: string;
  asil: Asil;
  fttiMs: number;
  /** The new epoch (fencing token) of the promotion. */
  epoch: number;
  /** `node-expired`, `node-offline`, `node-never-seen`, `sensor-expired:<name>`, `app-expired`. */
  reason: string;
  /** True when the failed node itself is the fault. */
  nodeFault: boolean;
  failed: PlacementRef;
  active: PlacementRef;
  /** Actions to run, in order of the design (promote first). */
  actions: FailoverAction[];
  trigger: PlanTrigger;
}

/** Fencing of a failed node through the API: cordon and/or a NoExecute taint of our own key. */
export interface NodeFencePlan {
  node: string;
  /** `node-expired`, `node-offline`, `node-never-seen`. */
  reason: string;
  cordon: boolean;
  taint: boolean;
  /** Record an Event when something changed. */
  events: boolean;
  trigger: PlanTrigger;
}

/** The outcome for one affected workload, or the fencing of a failed node. */
export type Decision =
  | { kind: "failover"; workload: string; plan: FailoverPlan }
  | { kind: "fence"; workload?: undefined; plan: NodeFencePlan }
  | { kind: "blocked"; workload: string; namespace: string; reason: string; why: string };

/** Options of {@linkcode FailoverPolicy}. */
export interface PolicyOptions {
  config: Config;
  /** True when the target is OK right now (the watchdog's view). */
  isHealthy: (targetId: string) => boolean;
}

/** Decides failovers. See the module doc for the rules. */
export class FailoverPolicy {
  readonly #workloads: WorkloadConfig[];
  readonly #isHealthy: (targetId: string) => boolean;
  readonly #state = new Map<string, WorkloadState>();

  /** Creates the policy with every workload active on its primary at epoch 0. */
  constructor(options: PolicyOptions) {
    this.#workloads = options.config.workloads;
    this.#isHealthy = options.isHealthy;
    for (const w of this.#workloads) this.#state.set(w.name, { active: "primary", epoch: 0 });
  }

  /** Current state of a workload (a copy), or `undefined` if unknown. */
  state(workload: string): WorkloadState | undefined {
    const s = this.#state.get(workload);
    return s && { ...s };
  }

  /**
   * Adopts observed state (from Deployment annotations or a retained promotion) when its epoch is
   * at least the known one. Returns true when the state changed.
   * @param activeNode the node named active by the observation; ignored if it is neither side's.
   */
  observe(workload: string, epoch: number, activeNode: string | undefined): boolean {
    const w = this.#workloads.find((x) => x.name === workload);
    const s = this.#state.get(workload);
    if (!w || !s || epoch < s.epoch) return false;
    const active: Side | undefined = activeNode === w.standby.node
      ? "standby"
      : activeNode === w.primary.node
      ? "primary"
      : undefined;
    if (epoch === s.epoch && (active === undefined || active === s.active)) return false;
    s.epoch = epoch;
    if (active) s.active = active;
    return true;
  }

  /**
   * Decides what a confirmed failure means. Returns one decision per affected workload and
   * records every planned failover (epoch + 1, active side flipped) so the same fault never
   * plans twice. Non-failure transitions return `[]`.
   */
  onFailure(t: Transition): Decision[] {
    if (!t.isFailure) return [];
    const [kind, name, instanceNode] = t.target.id.split("/");
    const decisions: Decision[] = [];
    const trigger: PlanTrigger = {
      targetId: t.target.id,
      expiredAtMs: t.atMs,
      lastHeartbeatAtMs: t.lastHeartbeatAtMs,
      deadlineMs: t.deadlineMs,
      latenessMs: t.latenessMs,
    };
    const nodeReason = t.cause === "offline"
      ? "node-offline"
      : t.cause === "never-seen"
      ? "node-never-seen"
      : "node-expired";
    for (const w of this.#workloads) {
      const s = this.#state.get(w.name)!;
      const activePlacement = w[s.active];
      let reason: string | undefined;
      if (kind === "node" && activePlacement.node === name) {
        reason = nodeReason;
      } else if (kind === "sensor" && activePlacement.sensors.includes(name)) {
        reason = `sensor-expired:${name}`;
      } else if (kind === "app" && name === w.name && instanceNode === activePlacement.node) {
        reason = "app-expired";
      }
      if (!reason) continue;
      const other: Side = s.active === "primary" ? "standby" : "primary";
      const unhealthy = placementTargets(w, other).filter((id) => !this.#isHealthy(id));
      if (unhealthy.length > 0) {
        decisions.push({
          kind: "blocked",
          workload: w.name,
          namespace: w.namespace,
          reason,
          why: `${other} not trustworthy: ${unhealthy.join(", ")} not OK`,
        });
        continue;
      }
      const nodeFault = kind === "node";
      s.epoch += 1;
      s.active = other;
      decisions.push({
        kind: "failover",
        workload: w.name,
        plan: {
          workload: w.name,
          namespace: w.namespace,
          asil: w.asil,
          fttiMs: w.fttiMs,
          epoch: s.epoch,
          reason,
          nodeFault,
          failed: { deployment: activePlacement.deployment, node: activePlacement.node },
          active: { deployment: w[other].deployment, node: w[other].node },
          actions: w.actions.filter((a) => a !== "cordon" && a !== "taint"),
          trigger,
        },
      });
    }
    if (kind === "node") {
      const hosted = this.#workloads.filter((w) =>
        w.primary.node === name || w.standby.node === name
      );
      const cordon = hosted.some((w) => w.actions.includes("cordon"));
      const taint = hosted.some((w) => w.actions.includes("taint"));
      if (cordon || taint) {
        // first: the executor deletes the failed pods only once the node is cordoned, or the
        // ReplicaSet's replacement could be scheduled straight back onto the failed node
        decisions.unshift({
          kind: "fence",
          plan: {
            node: name,
            reason: nodeReason,
            cordon,
            taint,
            events: hosted.some((w) => w.actions.includes("events")),
            trigger,
          },
        });
      }
    }
    return decisions;
  }
}
