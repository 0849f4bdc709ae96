/**
 * The failover policy: from a confirmed expiry, which workloads lose their active instance, is
 * the other instance trustworthy, and what the cluster should look like afterwards. Pure logic,
 * no I/O: it returns the desired state (see `desired.ts`); the supervisor publishes the promotion
 * and hands the desired state to the reconciler.
 *
 * Rules:
 * - A node expiry affects every workload whose ACTIVE instance runs on that node; a sensor expiry
 *   only the workloads whose active instance needs that sensor; an app expiry only that instance.
 * - The other instance is promoted only if every target of its placement (node, sensors, app
 *   heartbeat) is OK (never promote a standby that is itself expired, recovering, or never seen).
 * - Each promotion takes the next epoch (the fencing token); epochs only grow. The state the
 *   policy starts from is adopted from the cluster (Deployment annotations) and from retained
 *   promotions, so a restart or a repeated expiry never repeats a failover.
 * - A node failure makes the node desired-fenced (cordon and/or taint, as the workloads placed on
 *   it allow) — also when its workloads already moved for an earlier sensor or app expiry. Fence
 *   decisions come first in the returned list: pods of a failed node go only once it is fenced.
 *
 * @module
 */
import type { NodeDesired, NodeFenceReason, Trigger, WorkloadDesired } from "./desired.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import {
  type NodeTarget,
  otherSide,
  type Side,
  type Target,
  type Topology,
  type Workload,
} from "../topology/topology.ts";

/** The outcome for one affected workload, or the fencing of a failed node. */
export type Decision =
  | {
    kind: "failover";
    /** The new desired state: `active` flipped, `epoch` + 1. */
    desired: WorkloadDesired;
  }
  | { kind: "fence"; desired: NodeDesired }
  | {
    kind: "blocked";
    workload: Workload;
    /** The failover reason that could not be acted on. */
    reason: string;
    /** Why the other side is not trusted. */
    why: string;
    /** The targets of the other side that are not OK. */
    unhealthy: Target[];
  };

/** Options of {@linkcode FailoverPolicy}. */
export interface PolicyOptions {
  topology: Topology;
  /** True when the target is OK right now (the watchdog's view). */
  isHealthy: (target: Target) => boolean;
  /** Wall time for `failedAt` (ISO 8601); default `new Date().toISOString()`. */
  wallTime?: () => string;
}

/** Decides failovers and holds the desired state. See the module doc for the rules. */
export class FailoverPolicy {
  readonly #topology: Topology;
  readonly #isHealthy: (target: Target) => boolean;
  readonly #wallTime: () => string;
  readonly #workloads = new Map<Workload, WorkloadDesired>();
  readonly #nodes = new Map<NodeTarget, NodeDesired>();

  /** Starts with every workload active on its primary at epoch 0 and no node fenced. */
  constructor(options: PolicyOptions) {
    this.#topology = options.topology;
    this.#isHealthy = options.isHealthy;
    this.#wallTime = options.wallTime ?? (() => new Date().toISOString());
    for (const w of this.#topology.workloads) {
      this.#workloads.set(w, {
        workload: w,
        active: "primary",
        epoch: 0,
        reason: "initial",
        removeFailed: false,
        nodeFault: false,
        failedAt: undefined,
      });
    }
    for (const n of this.#topology.nodes) {
      this.#nodes.set(n, { node: n, fenced: false, cordon: false, taint: false });
    }
  }

  /** Desired state of a workload. */
  workload(workload: Workload): Readonly<WorkloadDesired> {
    return this.#workloads.get(workload)!;
  }

  /** Desired state of a node. */
  node(node: NodeTarget): Readonly<NodeDesired> {
    return this.#nodes.get(node)!;
  }

  /**
   * Adopts a failover state observed in the cluster or in a retained promotion when its epoch is
   * higher than the known one, or equal with a different active side (the cluster is the arbiter
   * at start-up). Returns the new desired state when it changed, else `undefined`.
   * @param observed.failedAt wall time of that failover if known (pods created later are kept).
   */
  adopt(
    workload: Workload,
    observed: { epoch: number; active: Side | undefined; reason?: string; failedAt?: string },
  ): WorkloadDesired | undefined {
    const current = this.#workloads.get(workload);
    if (!current || !Number.isSafeInteger(observed.epoch) || observed.epoch < current.epoch) {
      return undefined;
    }
    const active = observed.active ?? current.active;
    if (observed.epoch === current.epoch && active === current.active) return undefined;
    const failedPlacement = workload[otherSide(active)];
    const next: WorkloadDesired = {
      workload,
      active,
      epoch: observed.epoch,
      reason: observed.reason ?? "adopted",
      removeFailed: observed.epoch > 0 && workload.actions.has("deletePods"),
      nodeFault: isNodeReason(observed.reason),
      failedAt: observed.failedAt ?? current.failedAt,
    };
    if (next.nodeFault && !this.#nodes.get(failedPlacement.node)?.fenced) {
      // The node fence of that failover may not have been written before a restart.
      this.#fence(failedPlacement.node, observed.reason as NodeFenceReason, undefined);
    }
    this.#workloads.set(workload, next);
    return next;
  }

  /** Adopts a fence observed on a node (our taint or our cordon). Returns the new desired state. */
  adoptFence(
    node: NodeTarget,
    observed: { tainted: boolean; cordonedByUs: boolean },
  ): NodeDesired | undefined {
    const current = this.#nodes.get(node);
    if (!current || current.fenced) return undefined;
    const next: NodeDesired = {
      node,
      fenced: true,
      cordon: observed.cordonedByUs,
      taint: observed.tainted,
      reason: "adopted",
    };
    this.#nodes.set(node, next);
    return next;
  }

  /**
   * Decides what a confirmed failure means: fences first, then one decision per affected
   * workload. Records the new desired state (epoch + 1, active side flipped), so the same fault
   * never plans twice. Non-failure transitions return `[]`.
   */
  onFailure(t: Transition<Target>): Decision[] {
    if (!t.isFailure) return [];
    const target = t.target;
    const trigger: Trigger = {
      target,
      cause: t.cause ?? "deadline",
      expiredAtMs: t.atMs,
      lastHeartbeatAtMs: t.lastHeartbeatAtMs,
      deadlineMs: t.deadlineMs,
      latenessMs: t.latenessMs,
    };
    const nodeReason: NodeFenceReason = t.cause === "offline"
      ? "node-offline"
      : t.cause === "never-seen"
      ? "node-never-seen"
      : "node-expired";
    const decisions: Decision[] = [];
    if (target.kind === "node") {
      const fence = this.#fence(target, nodeReason, trigger);
      if (fence) decisions.push({ kind: "fence", desired: fence });
    }
    for (const w of this.#topology.workloads) {
      const current = this.#workloads.get(w)!;
      const activePlacement = w[current.active];
      let reason: string | undefined;
      if (target.kind === "node" && activePlacement.node === target) {
        reason = nodeReason;
      } else if (target.kind === "sensor" && activePlacement.sensors.includes(target)) {
        reason = `sensor-expired:${target.name}`;
      } else if (target.kind === "app" && activePlacement.app === target) {
        reason = "app-expired";
      }
      if (!reason) continue;
      const other = otherSide(current.active);
      const unhealthy = w[other].targets.filter((x) => !this.#isHealthy(x));
      if (unhealthy.length > 0) {
        decisions.push({
          kind: "blocked",
          workload: w,
          reason,
          why: `${other} not trustworthy: ${unhealthy.map((x) => x.label).join(", ")} not OK`,
          unhealthy,
        });
        continue;
      }
      const next: WorkloadDesired = {
        workload: w,
        active: other,
        epoch: current.epoch + 1,
        reason,
        removeFailed: w.actions.has("deletePods"),
        nodeFault: target.kind === "node",
        failedAt: this.#wallTime(),
        trigger,
      };
      this.#workloads.set(w, next);
      decisions.push({ kind: "failover", desired: next });
    }
    return decisions;
  }

  /** Makes `node` desired-fenced when a workload placed on it allows cordon or taint. */
  #fence(
    node: NodeTarget,
    reason: NodeFenceReason,
    trigger: Trigger | undefined,
  ): NodeDesired | undefined {
    const hosted = node.placements.map((p) => p.workload);
    const cordon = hosted.some((w) => w.actions.has("cordon"));
    const taint = hosted.some((w) => w.actions.has("taint"));
    if (!cordon && !taint) return undefined;
    const current = this.#nodes.get(node)!;
    if (current.fenced && current.cordon === cordon && current.taint === taint) {
      // Already fenced: hand the same desired state back so the reconciler re-checks it.
      return current;
    }
    const next: NodeDesired = { node, fenced: true, cordon, taint, reason, trigger };
    this.#nodes.set(node, next);
    return next;
  }
}

function isNodeReason(reason: string | undefined): boolean {
  return reason === "node-expired" || reason === "node-offline" || reason === "node-never-seen";
}
