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
 * - Each promotion takes the next epoch (the fencing token, at most `MAX_EPOCH`: beyond it the
 *   failover is blocked and says why); epochs only grow. The state the policy starts from is
 *   adopted from the cluster (Deployment annotations) and from retained promotions, so a restart
 *   or a repeated expiry never repeats a failover.
 * - The other instance must also be ready in the cluster (`isReady`: its pod Running and Ready on a
 *   node that is not fenced), or the failover is blocked and says why.
 * - Evidence for fencing (a node is fenced only when it is down or unreachable):
 *   - a node expiry (deadline or Last Will) fences it (cordon and/or taint, as the workloads placed
 *     on it allow) — also when its workloads already moved for an earlier sensor or app expiry;
 *   - a node never seen in the boot window is reported, never fenced (it may still be booting);
 *     its workloads move to a healthy standby;
 *   - a planned stop (`draining`) moves the node's workloads first and fences nothing;
 *   - when more than `massExpiryShare` of the nodes expire within one node timeout (suspected
 *     infrastructure fault), or when a node's expiry moved no workload, the fence and the removal
 *     of failed pods wait until the node stayed silent for `fenceConfirmationMs` (the coordinator
 *     asks {@linkcode FailoverPolicy.confirm}).
 *   Fence decisions come first in the returned list: pods of a failed node go only once it is
 *   fenced.
 * - Undo: a fenced node that is OK again (after the watchdog's recovery window) is unfenced — only
 *   what we added — and its instances are the standbys of the workloads that left it (roles swap,
 *   no failback).
 *
 * @module
 */
import type { NodeDesired, NodeFenceReason, Trigger, WorkloadDesired } from "./desired.ts";
import type { Placement } from "../topology/topology.ts";
import { MAX_EPOCH } from "../wire/wire.ts";
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
    /** A fence (and the removal of failed pods) that waits for the node to stay silent. */
    kind: "fence-pending";
    node: NodeTarget;
    reason: NodeFenceReason;
    /** Ask {@linkcode FailoverPolicy.confirm} after this long, ms. */
    confirmAfterMs: number;
    /** Why it waits: `mass-expiry` (suspected infrastructure fault) or `no-workload-moved`. */
    why: "mass-expiry" | "no-workload-moved";
  }
  | {
    /** A node never seen in the boot window: reported, never fenced. */
    kind: "never-seen";
    node: NodeTarget;
  }
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

/** Whether a placement's instance is ready in the cluster (see `ClusterReconciler`). */
export type Readiness = { ready: true } | { ready: false; why: string };

/** Options of {@linkcode FailoverPolicy}. */
export interface PolicyOptions {
  topology: Topology;
  /** True when the target is OK right now (the watchdog's view). */
  isHealthy: (target: Target) => boolean;
  /**
   * Whether the instance of a placement is Running and Ready on a node that is not fenced (the
   * reconciler's cache); default: always ready.
   */
  isReady?: (placement: Placement) => Readiness;
  /** Wall time for `failedAt` (ISO 8601); default `new Date().toISOString()`. */
  wallTime?: () => string;
  /** See `supervisor.massExpiryShare` (default 0.5). */
  massExpiryShare?: number;
  /** See `supervisor.fenceConfirmationMs` (default 2000). */
  fenceConfirmationMs?: number;
}

interface PendingFence {
  reason: NodeFenceReason;
  trigger: Trigger;
  /** Workloads failed over from the node whose failed pods wait for the confirmation. */
  workloads: Set<Workload>;
}

/** Decides failovers and holds the desired state. See the module doc for the rules. */
export class FailoverPolicy {
  readonly #topology: Topology;
  readonly #isHealthy: (target: Target) => boolean;
  readonly #isReady: (placement: Placement) => Readiness;
  readonly #wallTime: () => string;
  readonly #massExpiryShare: number;
  readonly #fenceConfirmationMs: number;
  readonly #workloads = new Map<Workload, WorkloadDesired>();
  readonly #nodes = new Map<NodeTarget, NodeDesired>();
  /** Node expiries (monotonic ms), for the mass-expiry rule. */
  readonly #nodeExpiredAtMs = new Map<NodeTarget, number>();
  readonly #pending = new Map<NodeTarget, PendingFence>();
  readonly #draining = new Set<NodeTarget>();
  /** When a workload last failed over away from a node (monotonic ms of its expiry). */
  readonly #leftAtMs = new Map<NodeTarget, number>();
  readonly #longestNodeTimeoutMs: number;

  /** Starts with every workload active on its primary at epoch 0 and no node fenced. */
  constructor(options: PolicyOptions) {
    this.#topology = options.topology;
    this.#isHealthy = options.isHealthy;
    this.#isReady = options.isReady ?? (() => ({ ready: true }));
    this.#wallTime = options.wallTime ?? (() => new Date().toISOString());
    this.#massExpiryShare = options.massExpiryShare ?? 0.5;
    this.#fenceConfirmationMs = options.fenceConfirmationMs ?? 2000;
    this.#longestNodeTimeoutMs = Math.max(0, ...this.#topology.nodes.map((n) => n.timeoutMs));
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

  /** True while the node announced a planned stop (and has not come back). */
  isDraining(node: NodeTarget): boolean {
    return this.#draining.has(node);
  }

  /** True while a fence of the node waits for its confirmation. */
  isFencePending(node: NodeTarget): boolean {
    return this.#pending.has(node);
  }

  /**
   * Adopts a failover state observed in the cluster or in a retained promotion when its epoch is
   * higher than the known one, or equal with a different active side (the cluster is the arbiter
   * at start-up; a promotion from the bus never gets here with a reused epoch: the coordinator
   * refuses it first). An epoch above `MAX_EPOCH` is never adopted. Returns the new desired state
   * when it changed, else `undefined`.
   * @param observed.failedAt wall time of that failover if known (pods created later are kept).
   */
  adopt(
    workload: Workload,
    observed: { epoch: number; active: Side | undefined; reason?: string; failedAt?: string },
  ): WorkloadDesired | undefined {
    const current = this.#workloads.get(workload);
    if (
      !current || !Number.isInteger(observed.epoch) || observed.epoch > MAX_EPOCH ||
      observed.epoch < current.epoch
    ) {
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
      removeFailed: observed.epoch > 0 && workload.actions.has("deletePods") &&
        observed.reason !== "planned-stop" && observed.reason !== "node-never-seen",
      nodeFault: isFencingReason(observed.reason),
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

  /** Decides one confirmed failure; see {@linkcode FailoverPolicy.onFailures}. */
  onFailure(t: Transition<Target>): Decision[] {
    return this.onFailures([t]);
  }

  /**
   * Decides a batch of failures confirmed together (the watchdog has applied all of them, so a
   * standby that expired in the same batch is not trusted): fences first, then one decision per
   * affected workload. Records the new desired state (epoch + 1, active side flipped), so the
   * same fault never plans twice. Non-failure transitions are ignored.
   */
  onFailures(batch: readonly Transition<Target>[]): Decision[] {
    const failures = batch.filter((t) => t.isFailure);
    for (const t of failures) {
      if (t.target.kind === "node" && t.cause !== "never-seen") {
        this.#nodeExpiredAtMs.set(t.target, t.atMs);
      }
    }
    const decisions: Decision[] = [];
    for (const t of failures) decisions.push(...this.#onFailure(t));
    // fences first: pods of a failed node go only once it is fenced
    return [
      ...decisions.filter((d) => d.kind === "fence"),
      ...decisions.filter((d) => d.kind !== "fence"),
    ];
  }

  /**
   * A node announced a planned stop (`draining`): its active workloads move to healthy, ready
   * standbys now (reason `planned-stop`, no pod removal), and its coming silence fences nothing.
   */
  onPlannedStop(node: NodeTarget): Decision[] {
    this.#draining.add(node);
    const decisions: Decision[] = [];
    for (const w of this.#topology.workloads) {
      const current = this.#workloads.get(w)!;
      if (w[current.active].node !== node) continue;
      const d = this.#failover(w, "planned-stop", undefined, false);
      decisions.push(d);
    }
    return decisions;
  }

  /**
   * A node is OK again (heartbeats for the recovery window): a planned stop is over; a pending
   * fence is cancelled; a node we fenced is unfenced (returned), and its instances are the
   * standbys of the workloads that left it.
   */
  onRecovered(node: NodeTarget): NodeDesired | undefined {
    this.#draining.delete(node);
    this.#nodeExpiredAtMs.delete(node);
    this.#pending.delete(node);
    return this.unfence(node);
  }

  /** Unfences a node (recovered, or by an operator's request). Returns the new desired state. */
  unfence(node: NodeTarget): NodeDesired | undefined {
    const current = this.#nodes.get(node);
    if (!current || !current.fenced) return undefined;
    this.#pending.delete(node);
    const next: NodeDesired = { node, fenced: false, cordon: false, taint: false };
    this.#nodes.set(node, next);
    return next;
  }

  /**
   * The confirmation window of a pending fence passed: when the node is still not OK, it is
   * fenced and the failed pods of the workloads that left it are removed; when it came back, the
   * fence is dropped. Returns the changed desired states.
   */
  confirm(node: NodeTarget): { node?: NodeDesired; workloads: WorkloadDesired[] } {
    const pending = this.#pending.get(node);
    this.#pending.delete(node);
    if (!pending || this.#isHealthy(node)) return { workloads: [] };
    const fence = this.#fence(node, pending.reason, pending.trigger);
    const workloads: WorkloadDesired[] = [];
    for (const w of pending.workloads) {
      const current = this.#workloads.get(w)!;
      if (w[otherSide(current.active)].node !== node || !w.actions.has("deletePods")) continue;
      const next = { ...current, removeFailed: true };
      this.#workloads.set(w, next);
      workloads.push(next);
    }
    return { node: fence, workloads };
  }

  #onFailure(t: Transition<Target>): Decision[] {
    const target = t.target;
    const trigger: Trigger = {
      target,
      cause: t.cause ?? "deadline",
      expiredAtMs: t.atMs,
      noticedAtMs: t.noticedAtMs,
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
    // Evidence: does this node failure justify fencing, now or after a confirmation?
    const isNode = target.kind === "node";
    const neverSeen = isNode && t.cause === "never-seen";
    const draining = isNode && this.#draining.has(target);
    const suspect = isNode && !neverSeen && !draining && this.#massExpiry(t.atMs);
    let moved = 0;
    for (const w of this.#topology.workloads) {
      const current = this.#workloads.get(w)!;
      const activePlacement = w[current.active];
      let reason: string | undefined;
      if (isNode && activePlacement.node === target) {
        reason = nodeReason;
      } else if (target.kind === "sensor" && activePlacement.sensors.includes(target)) {
        reason = `sensor-expired:${target.name}`;
      } else if (target.kind === "app" && activePlacement.app === target) {
        reason = "app-expired";
      }
      if (!reason) continue;
      const fencing = isNode && !neverSeen && !draining;
      const d = this.#failover(w, reason, trigger, fencing && !suspect);
      if (d.kind === "failover") moved++;
      decisions.push(d);
    }
    // Workloads that left this node within its timeout (its sensors or apps expired first, in the
    // same incident: a hung node's sensors stop with it) count as moved by this expiry.
    const leftAtMs = isNode ? this.#leftAtMs.get(target) : undefined;
    if (leftAtMs !== undefined && t.atMs - leftAtMs <= target.timeoutMs) moved++;
    if (neverSeen) {
      decisions.unshift({ kind: "never-seen", node: target });
    } else if (isNode && !draining) {
      if (suspect || moved === 0) {
        const pending: PendingFence = this.#pending.get(target) ??
          { reason: nodeReason, trigger, workloads: new Set() };
        for (const d of decisions) {
          if (d.kind === "failover") pending.workloads.add(d.desired.workload);
        }
        const allowed = this.#fenceActions(target);
        if (!this.#nodes.get(target)!.fenced && (allowed.cordon || allowed.taint)) {
          this.#pending.set(target, pending);
          decisions.unshift({
            kind: "fence-pending",
            node: target,
            reason: nodeReason,
            confirmAfterMs: this.#fenceConfirmationMs,
            why: suspect ? "mass-expiry" : "no-workload-moved",
          });
        }
      } else {
        const fence = this.#fence(target, nodeReason, trigger);
        if (fence) decisions.unshift({ kind: "fence", desired: fence });
      }
    }
    return decisions;
  }

  /** Fails `w` over to its other side when that side is healthy and ready, else blocks. */
  #failover(
    w: Workload,
    reason: string,
    trigger: Trigger | undefined,
    nodeFault: boolean,
  ): Decision {
    const current = this.#workloads.get(w)!;
    const other = otherSide(current.active);
    const placement = w[other];
    if (current.epoch >= MAX_EPOCH) {
      // An adopted epoch of MAX_EPOCH: the next one would be a promotion every consumer rejects.
      return {
        kind: "blocked",
        workload: w,
        reason,
        why: `epoch ${current.epoch} cannot grow (a promotion's epoch is at most ${MAX_EPOCH})`,
        unhealthy: [],
      };
    }
    const unhealthy = placement.targets.filter((x) => !this.#isHealthy(x));
    if (unhealthy.length > 0) {
      return {
        kind: "blocked",
        workload: w,
        reason,
        why: `${other} not trustworthy: ${unhealthy.map((x) => x.label).join(", ")} not OK`,
        unhealthy,
      };
    }
    if (this.#nodes.get(placement.node)?.fenced) {
      return {
        kind: "blocked",
        workload: w,
        reason,
        why: `${other} not trustworthy: node ${placement.node.name} is fenced`,
        unhealthy: [],
      };
    }
    const readiness = this.#isReady(placement);
    if (!readiness.ready) {
      return {
        kind: "blocked",
        workload: w,
        reason,
        why: `${other} not ready in the cluster: ${readiness.why}`,
        unhealthy: [],
      };
    }
    const next: WorkloadDesired = {
      workload: w,
      active: other,
      epoch: current.epoch + 1,
      reason,
      // a planned stop takes the instance down with its node anyway; a suspect node's pods wait
      removeFailed: w.actions.has("deletePods") && reason !== "planned-stop" &&
        (nodeFault || trigger?.target.kind !== "node"),
      nodeFault,
      failedAt: this.#wallTime(),
      trigger,
    };
    this.#workloads.set(w, next);
    if (trigger) {
      this.#leftAtMs.set(w[current.active].node, trigger.expiredAtMs);
    }
    return { kind: "failover", desired: next };
  }

  /** True when more than the configured share of nodes expired within one node timeout. */
  #massExpiry(nowMs: number): boolean {
    const total = this.#topology.nodes.length;
    let recent = 0;
    for (const [node, atMs] of this.#nodeExpiredAtMs) {
      if (nowMs - atMs <= this.#longestNodeTimeoutMs && !this.#isHealthy(node)) recent++;
    }
    return total > 1 && recent / total > this.#massExpiryShare;
  }

  /** Which fencing the workloads placed on the node allow (any of them allowing it suffices). */
  #fenceActions(node: NodeTarget): { cordon: boolean; taint: boolean } {
    const hosted = node.placements.map((p) => p.workload);
    return {
      cordon: hosted.some((w) => w.actions.has("cordon")),
      taint: hosted.some((w) => w.actions.has("taint")),
    };
  }

  /** Makes `node` desired-fenced when a workload placed on it allows cordon or taint. */
  #fence(
    node: NodeTarget,
    reason: NodeFenceReason,
    trigger: Trigger | undefined,
  ): NodeDesired | undefined {
    const { cordon, taint } = this.#fenceActions(node);
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

function isFencingReason(reason: string | undefined): boolean {
  return reason === "node-expired" || reason === "node-offline";
}
