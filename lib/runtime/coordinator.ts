/**
 * The failover coordinator: turns confirmed expiries into action, fast path first.
 *
 * 1. The policy decides (pure) and records the new desired state.
 * 2. Every promotion of the expiry is published (retained, QoS 1): the data-plane switch and the
 *    fencing token, before any API work.
 * 3. Once the broker has them (PUBACK, at most {@linkcode PROMOTION_ACK_WAIT_MS} later: the
 *    Kubernetes client's synchronous request building would otherwise hold the promotion in the
 *    socket), the desired state goes to the reconciler, which starts its writes at once and keeps
 *    converging until the cluster matches.
 *
 * Until the persisted failover state has been adopted from the cluster (start-up), confirmed
 * failures wait: a decision needs the persisted epoch. Retained promotions are adopted whenever
 * they are seen (an epoch only grows).
 *
 * In a supervisor pair (`isLeader` given) the standby keeps its state warm (retained promotions
 * and the cluster's persisted state are adopted into the policy) but decides nothing, publishes no
 * promotion and hands nothing to the reconciler while `isLeader()` is false; every entry point
 * checks it at call time. On becoming leader, {@linkcode FailoverCoordinator.onStartedLeading}
 * converges the adopted state and decides the failures still standing as one batch.
 *
 * @module
 */
import type { Clock } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import { RepeatedLog } from "../log/repeated_log.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import type { Decision, FailoverPolicy } from "../policy/policy.ts";
import type {
  ClusterReconciler,
  ObservedFailoverState,
  ReconcileReport,
  StepResult,
} from "../reconcile/reconciler.ts";
import { type NodeTarget, otherSide, type Target, type Workload } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import { checkPromotion, logRefusalOnce, type PromotionRefusal } from "../wire/promotion_check.ts";
import type { Promotion } from "../wire/wire.ts";

/** Longest wait for the promotions' PUBACK before the API work starts anyway, ms. */
const PROMOTION_ACK_WAIT_MS = 5;

/** A timeline entry of the coordinator (monotonic ms). */
export type CoordinatorEvent =
  | { type: "blocked"; atMs: number; decision: Extract<Decision, { kind: "blocked" }> }
  | { type: "fence-pending"; atMs: number; decision: Extract<Decision, { kind: "fence-pending" }> }
  | { type: "unfence"; atMs: number; node: NodeTarget; why: string }
  | { type: "promotion-sent"; atMs: number; desired: WorkloadDesired; promotion: Promotion }
  | { type: "promotion-acked"; atMs: number; workload: Workload; epoch: number }
  | { type: "reconciled"; atMs: number; report: ReconcileReport };

/** Options of {@linkcode FailoverCoordinator}. */
export interface CoordinatorOptions {
  policy: FailoverPolicy;
  client: MqttClientLike;
  /** This supervisor instance (written into promotions as their `issuer`). */
  supervisorId: string;
  clock: Clock;
  log: Logger;
  onEvent: (event: CoordinatorEvent) => void;
  /** Supervisor pair: whether this instance may act now (default: always). */
  isLeader?: () => boolean;
  /**
   * The node and every sensor it requires are OK in this instance's own watchdog (default: never
   * known). A fence adopted from a promotion but absent from the cluster is dropped when the node
   * is alive (see {@linkcode FailoverCoordinator.onStartedLeading}).
   */
  isNodeAlive?: (node: NodeTarget) => boolean;
}

/** Decides on confirmed failures, publishes promotions, hands desired state to the reconciler. */
export class FailoverCoordinator {
  readonly #policy: FailoverPolicy;
  readonly #client: MqttClientLike;
  readonly #supervisorId: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** `failover-blocked` repeats (every later expiry of the same workload decides again). */
  readonly #repeats: RepeatedLog;
  readonly #onEvent: (event: CoordinatorEvent) => void;
  readonly #isLeader: () => boolean;
  readonly #isNodeAlive: (node: NodeTarget) => boolean;
  #reconciler: ClusterReconciler | undefined;
  /** Failures confirmed before the cluster state was adopted; decided once it is. */
  #deferred: Transition<Target>[] | undefined = [];
  /** Confirmation timers of pending fences. */
  readonly #confirmTimers = new Map<NodeTarget, unknown>();
  /** Epoch (workload) or fence trigger (node) whose first pass was already logged as done. */
  readonly #reported = new WeakMap<object, unknown>();
  /** `<workload>/<reason>` of every promotion refusal already logged (each is logged once). */
  readonly #refusalsLogged = new Set<string>();
  #closed = false;
  /** Workloads whose state was adopted while standby: converged when this instance leads. */
  readonly #adoptedAsStandby = new Set<Workload>();
  /**
   * The newest promotion per promotion topic, published or adopted (for
   * {@linkcode republishPromotions}).
   */
  readonly #lastPromotions = new Map<string, string>();

  /** Creates the coordinator; failures wait until {@linkcode FailoverCoordinator.adopt}. */
  constructor(options: CoordinatorOptions) {
    this.#policy = options.policy;
    this.#client = options.client;
    this.#supervisorId = options.supervisorId;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#repeats = new RepeatedLog({ log: options.log, clock: options.clock });
    this.#onEvent = options.onEvent;
    this.#isLeader = options.isLeader ?? (() => true);
    this.#isNodeAlive = options.isNodeAlive ?? (() => false);
  }

  /** Not closed and, in a pair, the leader (checked at call time). */
  #mayAct(): boolean {
    return !this.#closed && this.#isLeader();
  }

  /** Failures waiting for the cluster state. */
  get deferredCount(): number {
    return this.#deferred?.length ?? 0;
  }

  /**
   * Adopts the persisted failover state observed by the (started) reconciler, hands every
   * adopted desired state back to it so work a previous run left unfinished converges, then
   * decides the failures that waited.
   */
  adopt(reconciler: ClusterReconciler, observed: ObservedFailoverState): void {
    this.#reconciler = reconciler;
    for (const [node, o] of observed.fencedNodes) {
      const desired = this.#policy.adoptFence(node, o);
      if (desired) this.#log.info("fence-adopted", { node: node.name, reason: o.reason });
    }
    for (const [workload, o] of observed.workloads) {
      const desired = this.#policy.adopt(workload, o);
      if (desired) {
        this.#log.info("reconciled", {
          workload: workload.name,
          epoch: desired.epoch,
          activeNode: workload[desired.active].node.name,
        });
      }
    }
    this.#dropLiftedFences(observed);
    if (this.#mayAct()) {
      const adopted = new Set([...observed.workloads.keys(), ...this.#adoptedAsStandby]);
      this.#adoptedAsStandby.clear();
      this.#convergeAdopted(reconciler, adopted);
    } else for (const w of observed.workloads.keys()) this.#adoptedAsStandby.add(w);
    const deferred = this.#deferred ?? [];
    this.#deferred = undefined;
    this.#log.info("cluster-state-observed", {
      states: Object.fromEntries([...observed.workloads.keys()].map((w) => {
        const d = this.#policy.workload(w);
        return [w.name, `${w[d.active].node.name}@${d.epoch}`];
      })),
      deferredFailures: deferred.length,
      ...(this.#isLeader() ? {} : { standby: "no decision until leader" }),
    });
    if (deferred.length) this.onFailures(deferred);
  }

  /**
   * This instance became the leader of its pair: converge the adopted state (a failover the
   * previous leader left unfinished) and decide `expired` — every target still EXPIRED, with the
   * transition that expired it — as one batch. Before the cluster state is adopted they wait.
   */
  onStartedLeading(expired: readonly Transition<Target>[]): void {
    if (!this.#mayAct()) return;
    if (this.#deferred) {
      this.#deferred.push(...expired);
      return;
    }
    const reconciler = this.#reconciler!;
    const adopted = new Set([...reconciler.observed().workloads.keys(), ...this.#adoptedAsStandby]);
    this.#adoptedAsStandby.clear();
    this.#convergeAdopted(reconciler, adopted);
    this.#log.info("leader-decides", { expired: expired.map((t) => t.target.label) });
    if (expired.length) this.#act(this.#policy.onFailures(expired));
  }

  /**
   * Hands the reconciler whatever the adopted state implies (also state adopted from retained
   * promotions before the cluster was observed).
   */
  #convergeAdopted(reconciler: ClusterReconciler, workloads: Iterable<Workload>): void {
    const observed = reconciler.observed();
    for (const node of new Set(observed.fencedNodes.keys())) {
      reconciler.setNode(this.#policy.node(node));
    }
    this.#dropFencesOfLiveNodes(observed, workloads);
    for (const workload of workloads) {
      const desired = this.#policy.workload(workload);
      if (desired.epoch > 0) {
        const failedNode = workload[otherSide(desired.active)].node;
        const nodeDesired = this.#policy.node(failedNode);
        if (nodeDesired.fenced) reconciler.setNode(nodeDesired);
        reconciler.setWorkload(desired);
      }
    }
  }

  /**
   * A fence this instance adopted from a promotion (no trigger of its own) that the cluster does
   * not show, of a node that is alive in this instance's watchdog right now, is not written: the
   * node was fenced and lifted — or never fenced, its fence pending when it came back — while
   * this instance was not leading (a standby does not follow the leader's unfences; a restarted
   * one sees only the retained promotion). Writing it would evict the healthy standbys the node
   * runs and block every failover back to it (found by the pair benchmark: a new leader refused
   * to fail over to a healthy node "fenced" in its memory only). A node not (yet) seen alive keeps
   * the fence: the safe side.
   */
  #dropFencesOfLiveNodes(observed: ObservedFailoverState, workloads: Iterable<Workload>): void {
    for (const workload of workloads) {
      const desired = this.#policy.workload(workload);
      if (desired.epoch <= 0) continue;
      const node = workload[otherSide(desired.active)].node;
      const fence = this.#policy.node(node);
      if (!fence.fenced || fence.trigger !== undefined || observed.fencedNodes.has(node)) continue;
      if (!this.#isNodeAlive(node)) continue;
      if (this.#policy.unfence(node)) {
        this.#log.info("fence-not-adopted", {
          node: node.name,
          workload: workload.name,
          epoch: desired.epoch,
          why: "not fenced in the cluster and alive in this supervisor's watchdog",
        });
      }
    }
  }

  /**
   * A node-fault failover adopted from the cluster or a retained promotion fences its failed node
   * (its fence may not have been written before a restart) — unless the cluster shows that we
   * lifted that node's fence after the failover was decided (`unfenced-at` ≥ `failed-at`): the
   * node was fenced and came back OK, and fencing it again would evict the healthy standbys it
   * now runs (found by the fault campaign: a supervisor restart re-fenced a recovered node).
   * When either time is unknown, the fence stays (the safe side); a node that is really down is
   * detected again by this supervisor's own watchdog.
   */
  #dropLiftedFences(observed: ObservedFailoverState): void {
    for (const workload of observed.workloads.keys()) {
      const desired = this.#policy.workload(workload);
      if (desired.epoch <= 0 || !desired.nodeFault) continue;
      const node = workload[otherSide(desired.active)].node;
      if (observed.fencedNodes.has(node)) continue;
      const lifted = Date.parse(observed.unfencedAt.get(node) ?? "");
      const decided = Date.parse(desired.failedAt ?? "");
      if (Number.isNaN(lifted) || Number.isNaN(decided) || lifted < decided) continue;
      if (this.#policy.unfence(node)) {
        this.#log.info("fence-not-adopted", {
          node: node.name,
          workload: workload.name,
          epoch: desired.epoch,
          why: "fence lifted after that failover (unfenced-at ≥ failed-at)",
        });
      }
    }
  }

  /**
   * A retained or live promotion was seen on the bus: adopt a higher epoch — only from a
   * supervisor of the config, naming one of the workload's two nodes, and never an epoch already
   * held with another active node (`checkPromotion`; the policy's desired state is the highest
   * epoch seen or issued and its active side). A refusal is logged once per workload and reason
   * and counted by ingest.
   * @returns why the promotion was refused, or `undefined` when it was adopted or stale.
   */
  onPromotion(workload: Workload, p: Promotion): PromotionRefusal | undefined {
    const current = this.#policy.workload(workload);
    const verdict = checkPromotion(workload, p, {
      epoch: current.epoch,
      activeNode: workload[current.active].node.name,
    });
    if (verdict.kind === "refused") {
      logRefusalOnce(this.#log, this.#refusalsLogged, workload, p, verdict);
      return verdict.reason;
    }
    if (verdict.kind === "stale") return undefined;
    const active = p.activeNode === workload.standby.node.name ? "standby" : "primary";
    const desired = this.#policy.adopt(workload, {
      epoch: p.epoch,
      active,
      reason: p.reason,
      // the decision time only when it is one (it selects which pods are the failed instance)
      failedAt: typeof p.issuedAt === "string" && !Number.isNaN(Date.parse(p.issuedAt))
        ? p.issuedAt
        : undefined,
    });
    if (!desired) return undefined;
    // the peer's promotion (a pair): this instance republishes it as it is if it leads later
    this.#lastPromotions.set(workload.promotionTopic, JSON.stringify(p));
    this.#log.info("promotion-observed", {
      workload: workload.name,
      epoch: p.epoch,
      activeNode: p.activeNode,
      issuer: p.issuer,
    });
    // a standby remembers it: converged when it leads
    if (!this.#isLeader()) this.#adoptedAsStandby.add(workload);
    else if (this.#reconciler) {
      if (desired.nodeFault) {
        this.#reconciler.setNode(this.#policy.node(workload[otherSide(desired.active)].node));
      }
      this.#reconciler.setWorkload(desired);
    }
    return undefined;
  }

  /** A confirmed failure (OK/INIT → EXPIRED); see {@linkcode FailoverCoordinator.onFailures}. */
  onFailure(t: Transition<Target>): void {
    this.onFailures([t]);
  }

  /**
   * A batch of failures confirmed together: decide on the state after the whole batch and act,
   * or wait for the cluster state.
   */
  onFailures(batch: readonly Transition<Target>[]): void {
    if (this.#closed) return;
    if (!this.#isLeader()) {
      // standby: the leader decides; these are decided when this instance leads and they stand
      this.#log.debug("standby-no-decision", { expired: batch.map((t) => t.target.label) });
      return;
    }
    if (this.#deferred) {
      this.#deferred.push(...batch);
      return;
    }
    this.#act(this.#policy.onFailures(batch));
  }

  /** A node announced a planned stop: move its active workloads now, fence nothing. */
  onPlannedStop(node: NodeTarget): void {
    if (!this.#mayAct()) return;
    this.#log.info("planned-stop", { node: node.name });
    if (this.#deferred) {
      // before the cluster state is known no epoch can be issued; the node's silence is no fault
      this.#policy.onPlannedStop(node);
      return;
    }
    this.#act(this.#policy.onPlannedStop(node));
  }

  /**
   * A node is OK again (and its required sensors): cancel a pending fence, unfence what we
   * fenced (its instances become the standbys of the workloads that left it).
   */
  onRecovered(node: NodeTarget): void {
    if (!this.#mayAct()) return;
    this.#cancelConfirm(node);
    const desired = this.#policy.onRecovered(node);
    if (desired) this.#unfence(desired, "node OK again for the recovery window");
  }

  /** An operator asked to unfence a node (`sdv-failover unfence`). */
  onUnfenceRequest(node: NodeTarget, requestedAt: string): void {
    if (!this.#mayAct()) return;
    this.#cancelConfirm(node);
    const desired = this.#policy.unfence(node);
    if (desired) this.#unfence(desired, `operator request at ${requestedAt}`);
    else this.#log.info("unfence-ignored", { node: node.name, why: "not fenced by us" });
  }

  #unfence(desired: NodeDesired, why: string): void {
    this.#log.info("unfence", { node: desired.node.name, why });
    this.#onEvent({ type: "unfence", atMs: this.#clock.nowMs(), node: desired.node, why });
    this.#reconciler?.setNode(desired);
  }

  #cancelConfirm(node: NodeTarget): void {
    const timer = this.#confirmTimers.get(node);
    if (timer !== undefined) this.#clock.clearTimer(timer);
    this.#confirmTimers.delete(node);
  }

  /** Schedules the confirmation of a pending fence. */
  #scheduleConfirm(d: Extract<Decision, { kind: "fence-pending" }>): void {
    this.#cancelConfirm(d.node);
    this.#confirmTimers.set(
      d.node,
      this.#clock.setTimer(() => {
        this.#confirmTimers.delete(d.node);
        if (!this.#mayAct()) return;
        const confirmed = this.#policy.confirm(d.node);
        if (!confirmed.node && confirmed.workloads.length === 0) {
          this.#log.info("fence-cancelled", {
            node: d.node.name,
            why: "node back within the window",
          });
          return;
        }
        this.#log.warn("fence-confirmed", {
          node: d.node.name,
          silentForMs: d.confirmAfterMs,
          why: d.why,
        });
        if (confirmed.node) this.#reconciler?.setNode(confirmed.node);
        for (const w of confirmed.workloads) this.#reconciler?.setWorkload(w);
      }, d.confirmAfterMs),
    );
  }

  #act(decisions: Decision[]): void {
    const promoted: Promise<unknown>[] = [];
    for (const d of decisions) if (d.kind === "failover") promoted.push(this.#promote(d.desired));
    const reconciler = this.#reconciler!;
    const converge = () => {
      if (!this.#mayAct()) return;
      for (const d of decisions) {
        if (d.kind === "fence") reconciler.setNode(d.desired);
        else if (d.kind === "failover") reconciler.setWorkload(d.desired);
      }
    };
    if (promoted.length) this.#firstOf(Promise.all(promoted), PROMOTION_ACK_WAIT_MS).then(converge);
    else converge();
    for (const d of decisions) {
      if (d.kind === "fence-pending") {
        this.#scheduleConfirm(d);
        this.#onEvent({ type: "fence-pending", atMs: this.#clock.nowMs(), decision: d });
        queueMicrotask(() =>
          this.#log.warn("fence-pending", {
            node: d.node.name,
            reason: d.reason,
            why: d.why,
            confirmAfterMs: d.confirmAfterMs,
            ...(d.why === "mass-expiry" ? { suspected: "infrastructure fault" } : {}),
          })
        );
      } else if (d.kind === "never-seen") {
        queueMicrotask(() =>
          this.#log.warn("node-never-seen", {
            node: d.node.name,
            action: "no fence: it may still be booting",
          })
        );
      } else if (d.kind === "blocked") {
        this.#onEvent({ type: "blocked", atMs: this.#clock.nowMs(), decision: d });
      }
    }
    this.#logBlocked(decisions);
  }

  /**
   * One `failover-blocked` line per workload and reason of refusal (`why`): a node fault expires
   * the node, its sensors and the app in one batch, and each decides the workload again (the
   * reasons are listed together); later batches with the same refusal are summarised
   * ({@linkcode RepeatedLog}).
   */
  #logBlocked(decisions: Decision[]): void {
    const blocked = new Map<string, { workload: string; why: string; reasons: string[] }>();
    for (const d of decisions) {
      if (d.kind !== "blocked") continue;
      const key = JSON.stringify([d.workload.name, d.why]);
      const entry = blocked.get(key) ?? { workload: d.workload.name, why: d.why, reasons: [] };
      if (!entry.reasons.includes(d.reason)) entry.reasons.push(d.reason);
      blocked.set(key, entry);
    }
    if (blocked.size === 0) return;
    queueMicrotask(() => {
      for (const b of blocked.values()) {
        this.#repeats.error("failover-blocked", {
          workload: b.workload,
          reason: b.reasons.join(","),
          why: b.why,
        }, ["workload", "why"]);
      }
    });
  }

  /** Logs and forwards a reconcile pass (the reconciler's `onReport`). */
  onReport(report: ReconcileReport): void {
    const atMs = this.#clock.nowMs();
    this.#onEvent({ type: "reconciled", atMs, report });
    const failed = report.results.filter((r) => r.outcome === "failed");
    const trigger = report.desired.trigger;
    const key = report.key.kind === "workload" ? report.key.workload : report.key.node;
    const mark = report.key.kind === "workload"
      ? (report.desired as WorkloadDesired).epoch
      : report.desired.trigger;
    const first = this.#reported.get(key) !== mark;
    if (first) this.#reported.set(key, mark);
    const actions = report.results.map((r) => `${r.action}:${r.outcome}@${r.doneAtMs.toFixed(1)}`)
      .join(",");
    const failures = failed.length
      ? { failures: failed.map((r) => `${r.object}: ${r.detail}`) }
      : {};
    if (first && trigger) {
      const expiryToDoneMs = report.finishedAtMs - trigger.expiredAtMs;
      const fields = {
        trigger: trigger.target.label,
        expiredAtMs: round(trigger.expiredAtMs),
        expiryToDoneMs: round(expiryToDoneMs),
        actions,
        // API actions proper (without the Events that record them), from expiry
        expiryToActionsMs: round(actionsDoneMs(trigger.expiredAtMs, report)),
        converged: report.converged,
        attempt: report.attempt,
        ...failures,
      };
      const log = failed.length ? this.#log.error : this.#log.info;
      if (report.key.kind === "workload") {
        log("failover-done", {
          workload: report.key.workload.name,
          epoch: (report.desired as WorkloadDesired).epoch,
          ...fields,
        });
      } else {
        log("node-fence-done", {
          node: report.key.node.name,
          reason: (report.desired as NodeDesired).reason,
          ...fields,
        });
      }
      return;
    }
    if (!report.converged) {
      this.#log.warn("reconcile-retry", {
        key: keyLabel(report),
        attempt: report.attempt,
        requeueAfterMs: report.requeueAfterMs,
        actions,
        ...failures,
      });
    } else if (report.results.some((r) => r.outcome === "done")) {
      this.#log.info("converged", { key: keyLabel(report), attempt: report.attempt, actions });
    }
  }

  /** Stops deciding (shutdown). */
  close(): void {
    this.#closed = true;
    for (const node of [...this.#confirmTimers.keys()]) this.#cancelConfirm(node);
    this.#repeats.close();
  }

  /**
   * Publishes again the newest promotion of every workload (retained, QoS 1; its own or the one
   * it adopted), e.g. to a broker of the pair that came back without its retained messages. Only
   * while this
   * instance may act; the epochs are unchanged, so receivers that hold them ignore the copies.
   * @returns the number of promotions published.
   */
  republishPromotions(): number {
    if (!this.#mayAct()) return 0;
    for (const [topic, payload] of this.#lastPromotions) {
      this.#client.publish(topic, payload, { qos: 1, retain: true });
    }
    return this.#lastPromotions.size;
  }

  /** Publishes the retained QoS 1 promotion; resolves on PUBACK (or error). */
  #promote(desired: WorkloadDesired): Promise<void> {
    const w = desired.workload;
    if (!w.actions.has("promote")) return Promise.resolve();
    const failed = w[otherSide(desired.active)];
    const promotion: Promotion = {
      v: 1,
      workload: w.name,
      namespace: w.namespace,
      activeNode: w[desired.active].node.name,
      activeDeployment: w[desired.active].deployment,
      failedNode: failed.node.name,
      epoch: desired.epoch,
      reason: desired.reason,
      issuer: this.#supervisorId,
      issuedAt: desired.failedAt ?? new Date().toISOString(),
    };
    const payload = JSON.stringify(promotion);
    this.#lastPromotions.set(w.promotionTopic, payload);
    const acked = new Promise<void>((resolve) => {
      this.#client.publish(w.promotionTopic, payload, { qos: 1, retain: true }, (
        error,
      ) => {
        resolve();
        if (error) {
          this.#log.error("promotion-failed", { workload: w.name, error: error.message });
          return;
        }
        this.#onEvent({
          type: "promotion-acked",
          atMs: this.#clock.nowMs(),
          workload: w,
          epoch: desired.epoch,
        });
      });
    });
    const sentAtMs = this.#clock.nowMs();
    this.#onEvent({ type: "promotion-sent", atMs: sentAtMs, desired, promotion });
    // logged after the current task: act first, log after
    queueMicrotask(() =>
      this.#log.info("promotion-sent", {
        workload: w.name,
        epoch: desired.epoch,
        activeNode: promotion.activeNode,
        reason: desired.reason,
        trigger: desired.trigger?.target.label,
        expiredAtMs: round(desired.trigger?.expiredAtMs),
        expiryToPromotionMs: round(
          desired.trigger ? sentAtMs - desired.trigger.expiredAtMs : undefined,
        ),
      })
    );
    return acked;
  }

  /** Resolves when `promise` settles or after `boundMs` on the injected clock, whichever is first. */
  #firstOf(promise: Promise<unknown>, boundMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.#clock.setTimer(resolve, boundMs);
      promise.finally(() => {
        this.#clock.clearTimer(timer);
        resolve();
      });
    });
  }
}

function keyLabel(report: ReconcileReport): string {
  return report.key.kind === "workload"
    ? `workload/${report.key.workload.name}`
    : `node/${report.key.node.name}`;
}

/** Expiry → the last non-Event action acknowledged, ms. */
function actionsDoneMs(expiredAtMs: number, report: ReconcileReport): number {
  const actions = report.results.filter((r: StepResult) => !r.action.startsWith("event:"));
  const lastMs = actions.length ? Math.max(...actions.map((r) => r.doneAtMs)) : 0;
  return report.startedAtMs + lastMs - expiredAtMs;
}

/** Rounds to µs for logs. */
export function round(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.round(v * 1000) / 1000;
}
