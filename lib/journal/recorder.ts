/**
 * Assembles failover incidents from the supervisor's timeline ({@linkcode SupervisorEvent}) for
 * the journal: from the last heartbeat of the failed target through the expiry (noticed, then
 * confirmed by the ingest barrier), the decisions (promotion published and acknowledged, blocked,
 * fence pending), every Kubernetes step of the reconcile passes, to convergence as the supervisor
 * observes it — or a `timeout` marker after `convergeTimeoutMs`, or `abandoned` at shutdown.
 *
 * Off the hot path: {@linkcode IncidentRecorder.onEvent} only queues the event; the queue is
 * worked on a 0 ms timer of the injected clock, i.e. after the failover's synchronous decision
 * and publish (the times recorded are the events' own, so the delay costs no accuracy). A batch
 * of decisions is complete when the queue is worked, as the coordinator emits a batch
 * synchronously.
 *
 * Relation rules: a promotion belongs to the incident of its desired state's trigger (the expiry
 * that caused it; target and confirmation time); a blocked failover to the latest failure of one
 * of the workload's placements (`failure_cause.ts`); a fence pending to the node's latest
 * failure; a reconcile pass of a workload to the open incident that published that workload's
 * epoch, of a node to the incident of its trigger. Failures that led to no decision (a sensor of
 * a node already failed over), planned stops and state adopted at start are not incidents.
 *
 * Converged: every failed-over workload's reconcile pass at its epoch converged, the failed
 * node's fence converged when the policy fences it for this trigger, and the new active instance
 * is observed Running and Ready (`placementReady`, re-checked every
 * {@linkcode READY_RECHECK_MS} until the bound).
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { Asil } from "../config/schema.ts";
import type { NodeDesired, Trigger, WorkloadDesired } from "../policy/desired.ts";
import type { PlacementReadiness, ReconcileReport } from "../reconcile/reconciler.ts";
import { placementFailure } from "../runtime/failure_cause.ts";
import type { SupervisorEvent } from "../runtime/supervisor.ts";
import type { NodeTarget, Placement, Target, Workload } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import {
  type IncidentOutcome,
  type IncidentRecord,
  type IncidentWorkload,
  JOURNAL_SCHEMA_VERSION,
  type Step,
} from "./record.ts";

/** Most steps kept per incident (a pass retried for a long API outage would add many), count. */
export const MAX_STEPS = 200;
/** Interval of the readiness re-check of the new active instance, ms. */
export const READY_RECHECK_MS = 50;
/** Failure transitions remembered to relate decisions to (blocked, fence pending), count. */
const RECENT_FAILURES = 64;

/** What the recorder may ask the supervisor (all optional; absent: not checked). */
export interface IncidentProbe {
  /** The policy's desired state of a node (does it fence the node for this trigger?). */
  nodeDesired?(node: NodeTarget): NodeDesired | undefined;
  /** Whether the cluster shows the placement Running and Ready (the reconciler's cache). */
  placementReady?(placement: Placement): PlacementReadiness;
}

/** Options of {@linkcode IncidentRecorder}. */
export interface IncidentRecorderOptions {
  /** `supervisor.id` of this instance. */
  supervisorId: string;
  /** `supervisor.lagToleranceMs` and `supervisor.reactionBudgetMs` (the FTTI budget), ms. */
  lagToleranceMs: number;
  reactionBudgetMs: number;
  /** Longest wait from the expiry to convergence before a `timeout` record, ms. */
  convergeTimeoutMs: number;
  clock: Clock;
  /** Wall time in ms since the epoch (default `Date.now`), for `startedAt` only. */
  wallNowMs?: () => number;
  probe?: IncidentProbe;
  /** Receives every finished incident (called from a timer, never from the failover path). */
  onIncident: (record: IncidentRecord) => void;
}

interface WorkloadState {
  entry: IncidentWorkload;
  desired?: WorkloadDesired;
  converged: boolean;
  ready: boolean;
}

interface Incident {
  key: string;
  t0Ms: number;
  heardFrom: boolean;
  startedAt: string;
  trigger: Trigger;
  node: NodeTarget;
  workloads: Map<Workload, WorkloadState>;
  steps: Step[];
  stepsDropped: number;
  nodeConverged: boolean;
  fencePending: boolean;
  timeout: TimerHandle;
  recheck: TimerHandle | undefined;
}

const ASIL_ORDER: readonly Asil[] = ["QM", "A", "B", "C", "D"];

/** Turns the supervisor's events into incident records. */
export class IncidentRecorder {
  readonly #opts: IncidentRecorderOptions;
  readonly #clock: Clock;
  readonly #wallNowMs: () => number;
  readonly #queue: SupervisorEvent[] = [];
  #scheduled: TimerHandle | undefined;
  readonly #recent: Transition<Target>[] = [];
  readonly #open = new Map<string, Incident>();
  #term: number | null = null;
  #closed = false;

  /** Creates the recorder; it records nothing until events arrive. */
  constructor(options: IncidentRecorderOptions) {
    this.#opts = options;
    this.#clock = options.clock;
    this.#wallNowMs = options.wallNowMs ?? Date.now;
  }

  /** The leader term of this instance in a supervisor pair (written into later incidents). */
  set term(term: number | null) {
    this.#term = term;
  }

  /** Incidents not finished yet. */
  get openCount(): number {
    return this.#open.size;
  }

  /** Queues one event of the supervisor's timeline (cheap: the hot path calls it). */
  onEvent(event: SupervisorEvent): void {
    if (this.#closed) return;
    if (event.type === "armed" || event.type === "ingest-restored") return;
    if (event.type === "transition" && !event.transition.isFailure) return;
    this.#queue.push(event);
    this.#scheduled ??= this.#clock.setTimer(() => this.#work(), 0);
  }

  /**
   * Works the queue, then finishes every open incident as `abandoned` (supervisor stopping);
   * no event is recorded afterwards.
   */
  close(): void {
    if (this.#closed) return;
    if (this.#scheduled !== undefined) this.#clock.clearTimer(this.#scheduled);
    this.#work();
    this.#closed = true;
    for (const incident of [...this.#open.values()]) {
      this.#finish(incident, "abandoned", "abandoned: supervisor stopped before convergence");
    }
  }

  #work(): void {
    this.#scheduled = undefined;
    const touched = new Set<Incident>();
    for (const event of this.#queue.splice(0)) {
      const incident = this.#apply(event);
      if (incident) touched.add(incident);
    }
    for (const incident of touched) this.#evaluate(incident);
  }

  #apply(e: SupervisorEvent): Incident | undefined {
    switch (e.type) {
      case "transition":
        this.#recent.push(e.transition);
        if (this.#recent.length > RECENT_FAILURES) this.#recent.shift();
        return undefined;
      case "promotion-sent": {
        const trigger = e.desired.trigger;
        if (!trigger) return undefined; // planned stop, adopted: not an incident
        const incident = this.#incident(trigger);
        const w = e.desired.workload;
        const tMs = e.atMs - incident.t0Ms;
        const fromMs = trigger.expiredAtMs - incident.t0Ms;
        incident.workloads.set(w, {
          desired: e.desired,
          converged: false,
          ready: false,
          entry: {
            name: w.name,
            namespace: w.namespace,
            asil: w.asil,
            fttiMs: w.fttiMs,
            outcome: "failover",
            reason: e.promotion.reason,
            epoch: e.promotion.epoch,
            activeNode: e.promotion.activeNode,
            failedNode: e.promotion.failedNode,
            issuer: e.promotion.issuer,
            promotionMs: round(tMs),
            fttiMet: tMs <= w.fttiMs,
          },
        });
        this.#step(incident, {
          step: `promotion published: ${w.name} epoch ${e.promotion.epoch} → ` +
            e.promotion.activeNode,
          kind: "mqtt",
          tMs,
          fromMs,
          workload: w.name,
        });
        return incident;
      }
      case "promotion-acked": {
        const incident = this.#byEpoch(e.workload, e.epoch);
        if (!incident) return undefined;
        this.#step(incident, {
          step: `promotion acknowledged by the broker: ${e.workload.name}`,
          kind: "mqtt",
          tMs: e.atMs - incident.t0Ms,
          workload: e.workload.name,
        });
        return incident;
      }
      case "blocked": {
        const w = e.decision.workload;
        const t = [w.primary, w.standby]
          .map((p) => placementFailure(p, this.#recent, e.atMs, "latest"))
          .filter((x) => x !== undefined)
          .sort((a, b) => b.atMs - a.atMs)[0];
        if (!t) return undefined;
        const incident = this.#incident(triggerOf(t));
        incident.workloads.set(w, {
          converged: true,
          ready: true,
          entry: {
            name: w.name,
            namespace: w.namespace,
            asil: w.asil,
            fttiMs: w.fttiMs,
            outcome: "blocked",
            reason: e.decision.reason,
            fttiMet: false,
            why: e.decision.why,
          },
        });
        this.#step(incident, {
          step: `failover blocked: ${w.name}`,
          kind: "decide",
          tMs: e.atMs - incident.t0Ms,
          workload: w.name,
          detail: e.decision.why,
        });
        return incident;
      }
      case "fence-pending": {
        const node = e.decision.node;
        const t = this.#recent.findLast((x) => x.target === node && x.atMs <= e.atMs);
        if (!t) return undefined;
        const incident = this.#incident(triggerOf(t));
        incident.fencePending = true;
        this.#step(incident, {
          step: `fence pending: ${node.name}`,
          kind: "decide",
          tMs: e.atMs - incident.t0Ms,
          detail: `${e.decision.why}; confirmed after ${e.decision.confirmAfterMs} ms of silence`,
        });
        return incident;
      }
      case "reconciled":
        return this.#reconciled(e.report);
      default:
        return undefined;
    }
  }

  #reconciled(report: ReconcileReport): Incident | undefined {
    let incident: Incident | undefined;
    let workload: Workload | undefined;
    if (report.key.kind === "workload") {
      workload = report.key.workload;
      incident = this.#byEpoch(workload, (report.desired as WorkloadDesired).epoch);
    } else {
      const trigger = report.desired.trigger;
      incident = trigger ? this.#open.get(keyOf(trigger.target, trigger.expiredAtMs)) : undefined;
    }
    if (!incident) return undefined;
    const fromMs = report.startedAtMs - incident.t0Ms;
    for (const r of report.results) {
      this.#step(incident, {
        step: `${r.action} ${r.object}`,
        kind: r.action.startsWith("event:") ? "event" : "kube",
        tMs: fromMs + r.doneAtMs,
        fromMs,
        ...(workload ? { workload: workload.name } : {}),
        detail: r.outcome === "failed" ? `failed: ${r.detail ?? ""}` : r.outcome,
      });
    }
    if (report.converged) {
      if (workload) {
        const state = incident.workloads.get(workload);
        if (state) state.converged = true;
      } else if ((report.desired as NodeDesired).fenced) {
        incident.nodeConverged = true;
      }
    }
    return incident;
  }

  /** The open incident of a trigger, created at its first decision. */
  #incident(trigger: Trigger): Incident {
    const key = keyOf(trigger.target, trigger.expiredAtMs);
    const existing = this.#open.get(key);
    if (existing) return existing;
    const heardFrom = trigger.lastHeartbeatAtMs !== undefined;
    const t0Ms = trigger.lastHeartbeatAtMs ?? trigger.noticedAtMs ?? trigger.expiredAtMs;
    const startedAt = new Date(this.#wallNowMs() - (this.#clock.nowMs() - t0Ms)).toISOString();
    const target = trigger.target;
    const incident: Incident = {
      key,
      t0Ms,
      heardFrom,
      startedAt,
      trigger,
      node: target.kind === "node" ? target : target.node,
      workloads: new Map(),
      steps: [],
      stepsDropped: 0,
      nodeConverged: false,
      fencePending: false,
      recheck: undefined,
      timeout: this.#clock.setTimer(() => {
        const open = this.#open.get(key);
        if (open) {
          this.#finish(
            open,
            "timeout",
            `timeout: not converged ${this.#opts.convergeTimeoutMs} ms after the expiry`,
          );
        }
      }, Math.max(0, trigger.expiredAtMs + this.#opts.convergeTimeoutMs - this.#clock.nowMs())),
    };
    const cause = trigger.cause === "offline"
      ? "Last Will (offline)"
      : trigger.cause === "never-seen"
      ? "never seen in the boot window"
      : "deadline passed";
    if (heardFrom) {
      incident.steps.push({ step: `last heartbeat: ${target.label}`, kind: "detect", tMs: 0 });
    }
    const noticedMs = (trigger.noticedAtMs ?? trigger.expiredAtMs) - t0Ms;
    incident.steps.push({
      step: `expiry detected: ${cause}`,
      kind: "detect",
      tMs: noticedMs,
      fromMs: 0,
    });
    incident.steps.push({
      step: "expiry confirmed (ingest barrier)",
      kind: "detect",
      tMs: trigger.expiredAtMs - t0Ms,
      fromMs: noticedMs,
    });
    this.#open.set(key, incident);
    return incident;
  }

  /** The open incident that published `workload`'s `epoch`. */
  #byEpoch(workload: Workload, epoch: number): Incident | undefined {
    for (const incident of this.#open.values()) {
      if (incident.workloads.get(workload)?.entry.epoch === epoch) return incident;
    }
    return undefined;
  }

  #step(incident: Incident, step: Step): void {
    if (incident.steps.length >= MAX_STEPS) {
      incident.stepsDropped++;
      return;
    }
    incident.steps.push({ ...step, tMs: round(step.tMs) });
    if (step.fromMs !== undefined) incident.steps.at(-1)!.fromMs = round(step.fromMs);
  }

  /** Finishes the incident when everything it expects has converged. */
  #evaluate(incident: Incident): void {
    if (!this.#open.has(incident.key)) return;
    const failovers = [...incident.workloads.values()].filter((s) => s.desired);
    if (failovers.length === 0 && !incident.fencePending) {
      this.#finish(incident, "blocked", undefined);
      return;
    }
    if (failovers.some((s) => !s.converged)) return;
    if (!incident.nodeConverged && this.#fencesNode(incident)) return;
    if (failovers.length === 0 && !incident.nodeConverged) return; // a pending fence
    const nowMs = this.#clock.nowMs();
    for (const s of failovers) {
      if (s.ready) continue;
      const placement = s.desired!.workload[s.desired!.active];
      const readiness = this.#opts.probe?.placementReady?.(placement) ?? { ready: true };
      if (!readiness.ready) {
        incident.recheck ??= this.#clock.setTimer(() => {
          incident.recheck = undefined;
          this.#evaluate(incident);
        }, READY_RECHECK_MS);
        return;
      }
      s.ready = true;
      if (this.#opts.probe?.placementReady) {
        this.#step(incident, {
          step: `active instance Running and Ready: ${s.entry.name} on ${placement.node.name}`,
          kind: "end",
          tMs: nowMs - incident.t0Ms,
          workload: s.entry.name,
        });
      }
    }
    this.#finish(incident, "converged", "converged");
  }

  /** Whether the policy fences the incident's node for this very trigger. */
  #fencesNode(incident: Incident): boolean {
    if (incident.fencePending) return true; // its confirmation may still come
    const desired = this.#opts.probe?.nodeDesired?.(incident.node);
    return desired !== undefined && desired.fenced && desired.trigger !== undefined &&
      keyOf(desired.trigger.target, desired.trigger.expiredAtMs) === incident.key;
  }

  #finish(incident: Incident, outcome: IncidentOutcome, endStep: string | undefined): void {
    this.#open.delete(incident.key);
    this.#clock.clearTimer(incident.timeout);
    if (incident.recheck !== undefined) this.#clock.clearTimer(incident.recheck);
    if (endStep) {
      // the end marker is always kept, even past MAX_STEPS, and is the last step
      const tMs = Math.max(
        this.#clock.nowMs() - incident.t0Ms,
        ...incident.steps.map((s) => s.tMs),
      );
      incident.steps.push({ step: endStep, kind: "end", tMs: round(tMs) });
    }
    const steps = incident.steps.map((s, i) => ({ s, i }))
      .sort((a, b) => a.s.tMs - b.s.tMs || a.i - b.i).map(({ s }) => s);
    const workloads = [...incident.workloads.values()].map((s) => s.entry);
    const asil = workloads.length
      ? workloads.map((w) => w.asil).reduce((a, b) =>
        ASIL_ORDER.indexOf(b) > ASIL_ORDER.indexOf(a) ? b : a
      )
      : null;
    const trigger = incident.trigger;
    const target = trigger.target;
    const record: IncidentRecord = {
      v: JOURNAL_SCHEMA_VERSION,
      id: `${incident.startedAt.replace(/[-:]/g, "")}-${
        target.label.replace(/[^A-Za-z0-9.]+/g, "-")
      }`,
      startedAt: incident.startedAt,
      supervisor: { id: this.#opts.supervisorId, term: this.#term },
      trigger: {
        target: target.label,
        kind: target.kind,
        cause: trigger.cause,
        timeoutMs: target.timeoutMs,
        heardFrom: incident.heardFrom,
      },
      node: incident.node.name,
      workloads,
      asil,
      fttiMs: workloads.length ? Math.min(...workloads.map((w) => w.fttiMs)) : null,
      fttiMet: workloads.length ? workloads.every((w) => w.fttiMet) : null,
      budget: {
        detectionMs: target.timeoutMs + this.#opts.lagToleranceMs,
        reactionMs: this.#opts.reactionBudgetMs,
      },
      outcome,
      steps,
      stepsDropped: incident.stepsDropped,
      endToEndMs: steps.length ? Math.max(...steps.map((s) => s.tMs)) : 0,
    };
    this.#opts.onIncident(record);
  }
}

function keyOf(target: Target, expiredAtMs: number): string {
  return `${target.label}@${expiredAtMs}`;
}

function triggerOf(t: Transition<Target>): Trigger {
  return {
    target: t.target,
    cause: t.cause ?? "deadline",
    expiredAtMs: t.atMs,
    noticedAtMs: t.noticedAtMs,
    lastHeartbeatAtMs: t.lastHeartbeatAtMs,
    deadlineMs: t.deadlineMs,
    latenessMs: t.latenessMs,
  };
}

/** Rounds to µs. */
function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
