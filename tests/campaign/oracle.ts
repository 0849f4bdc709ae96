/**
 * The campaign's oracle: knows the truth of each fault (which workloads must move where, which
 * node must be fenced) from a model of the vehicle, and judges what was observed on the bus and in
 * the cluster after the fault.
 *
 * Definitions (docs/campaign.md):
 * - **false failover**: a promotion (a new epoch) the fault did not call for, or one to another
 *   node than the truth, including during the recovery; **false fence**: our taint on a node that
 *   the fault did not allow to be fenced.
 * - **missed**: a promotion the fault called for that did not arrive within its budget (the
 *   workload's FTTI, counted from the moment the fault was injected; a planned stop's drain bound),
 *   or a node that had to be fenced and was not.
 * - **split brain**: two promotions of one workload with the same epoch and different active
 *   nodes, or a promotion whose epoch is not above every epoch seen before with another active node.
 *
 * Pair mode (two brokers, two supervisors; {@linkcode PairObservation}) adds, from both
 * processes' logs: **split brain** also when two processes' leadership periods overlap, two
 * periods have one term, or one epoch of a workload was decided twice (two processes, or two
 * nodes); **false** also for an expiry of a target the fault did not strike or an ingest fault of
 * a supervisor whose bus was not cut (a single broker loss must change nothing the watchdog sees);
 * **missed** also when a leader that was killed or lost its bus still leads after the fault. The
 * budget of a node crash during the loss of the leader is its FTTI plus the takeover bound.
 *
 * @module
 */
import type { DrawnFault } from "./faults.ts";
import type {
  LeadershipPeriod,
  LoggedExpiry,
  LoggedIngestFault,
  SentPromotion,
} from "./supervisor_log.ts";

/** One workload of the vehicle, as the oracle sees it. */
export interface OracleWorkload {
  /** Workload name. */
  name: string;
  /** Node of the primary side. */
  primaryNode: string;
  /** Node of the standby side. */
  standbyNode: string;
  /** Sensors each side depends on, by node. */
  sensorsByNode: Record<string, readonly string[]>;
  /** Fault-tolerant time interval, ms: the budget of a failure's promotion. */
  fttiMs: number;
}

/** A promotion seen on the bus (live, not a retained replay). */
export interface ObservedPromotion {
  /** Workload. */
  workload: string;
  /** Its epoch (fencing token). */
  epoch: number;
  /** Where the workload is active from now on. */
  activeNode: string;
  /** The promotion's reason text. */
  reason: string;
  /** When the observer received it, wall ms. */
  receivedAtWallMs: number;
}

/** What the oracle expects from one fault, given the vehicle's state when it was injected. */
export interface Expectation {
  /** Workloads that must move: workload → the node it must become active on. */
  promote: Map<string, string>;
  /** Budget of each required promotion, ms from the fault's injection. */
  budgetMs: Map<string, number>;
  /** Nodes that must carry our fence after the fault's window. */
  fenceRequired: Set<string>;
  /** Nodes that may carry it (a pending fence cancelled by a quick recovery is not a miss). */
  fenceAllowed: Set<string>;
  /**
   * Promotions that are neither required nor false: workload → node. Set only when the campaign
   * could not apply a fault as drawn (a "short" stop that lasted longer than its bound because the
   * campaign's own timer was late): the fault is then inconclusive, never counted either way.
   */
  promoteAllowed: Map<string, string>;
  /**
   * Pair: whether the lead must change hands (`move`: {@linkcode Expectation.deposedLeader} must
   * not lead after the fault), should not (`stay`: a change is reported, not judged: the Lease may
   * change hands when a renew is slow) or may (`any`). Undefined outside pair mode.
   */
  leadership?: "stay" | "move" | "any";
  /** Pair: the id whose leadership the fault ends (`leadership` `move`). */
  deposedLeader?: string;
  /** Pair: nodes whose targets may expire; any other expiry is false. Undefined: not checked. */
  expiryAllowedNodes?: Set<string>;
  /** Pair: supervisor ids that may log an ingest fault; another's is false. Undefined: not checked. */
  ingestFaultAllowed?: Set<string>;
}

/** What was seen of a supervisor pair (pair mode), from both processes' logs. */
export interface PairObservation {
  /** Every leadership period of every supervisor process so far (open ones end now or at a kill). */
  leadership: readonly LeadershipPeriod[];
  /** The id leading when the fault was injected (undefined: nobody). */
  leaderBefore?: string;
  /** The id leading once the fault's window was over (undefined: nobody). */
  leaderAfter?: string;
  /** Expiries any process logged from the injection until restored. */
  expiries: readonly LoggedExpiry[];
  /** Ingest faults any process logged from the injection until restored. */
  ingestFaults: readonly LoggedIngestFault[];
  /** Every promotion any process decided so far (`promotion-sent`). */
  promotionsSent: readonly SentPromotion[];
  /** Fault → the survivor's `leader-elected` when the leader was lost, ms. */
  takeoverMs?: number;
  /**
   * When simulated nodes did not run (their own stall reports), wall ms: an expiry whose silence
   * a stall of its node covers is the rig's, not the fault's (see
   * {@linkcode OracleOptions.stallExplainsMs}).
   */
  nodeStalls?: readonly { node: string; fromWallMs: number; toWallMs: number }[];
}

/** What was observed for one fault. */
export interface Observation {
  /** When the fault was injected, wall ms. */
  injectedAtWallMs: number;
  /** Live promotions received from the injection until the vehicle was restored. */
  promotions: ObservedPromotion[];
  /** Nodes carrying our fence at the end of the fault's window (before recovery). */
  fencedNodes: ReadonlySet<string>;
  /** Problem when the cluster did not converge to the promotions (undefined: converged). */
  notConverged?: string;
  /** Problem when redundancy was not restored after the recovery (undefined: restored). */
  notRestored?: string;
  /** First expiry (or planned stop) the supervisor logged for the fault, wall ms. */
  detectedAtWallMs?: number;
  /** Pair mode: the supervisor pair's logs. */
  pair?: PairObservation;
}

/** The oracle's judgement of one fault. */
export interface Verdict {
  /** False failovers and false fences, one text each. */
  falseActions: string[];
  /** Missed or late promotions and missed fences, one text each. */
  missed: string[];
  /** Split-brain findings, one text each. */
  splitBrain: string[];
  /** Convergence problem, if any. */
  notConverged?: string;
  /** Restoration problem, if any. */
  notRestored?: string;
  /** Fault → promotion received, ms, per required promotion that arrived. */
  reactionMs: number[];
  /** Fault → first expiry logged, ms. */
  detectionMs?: number;
  /** Set when the campaign could not apply the fault (the fault is not judged). */
  error?: string;
  /** Pair: leadership changes the fault did not call for (reported, not judged). */
  handovers?: string[];
  /** Pair: fault → the survivor's `leader-elected`, ms (the leader was killed or lost its bus). */
  takeoverMs?: number;
  /**
   * Pair: expiries the fault did not call for whose silence a stall of the simulated node's own
   * process explains (the node really was silent: the rig starved it), one text each; reported,
   * not judged.
   */
  rigStalls?: string[];
}

/** Options of {@linkcode Oracle}. */
export interface OracleOptions {
  /** Budget of a planned stop's promotions (the drain bound), ms. */
  plannedStopBudgetMs: number;
  /**
   * Pair: the takeover bound, ms (the survivor leads at most this long after the leader's last
   * renew); added to the FTTI of a node crash during the loss of the leader. Default 0.
   */
  takeoverBoundMs?: number;
  /** The node a watchdog target (`node/X`, `sensor/S`, `app/W/X`) belongs to (pair checks). */
  nodeOfTarget?: (target: string) => string | undefined;
  /**
   * Pair: an expiry the fault did not call for is the rig's when stalls of its node's process
   * cover at least this much of the silence that expired it, ms (default: never). The campaign
   * uses the timeout minus three heartbeat periods: the rest of the silence is the heartbeat's
   * phase and its delivery.
   */
  stallExplainsMs?: number;
}

/** The vehicle's failover state the oracle tracks: active node and epoch per workload. */
export class Oracle {
  readonly #workloads: Map<string, OracleWorkload>;
  readonly #active = new Map<string, string>();
  readonly #epoch = new Map<string, number>();
  /** Every (workload, epoch) seen → its active node: the split-brain record. */
  readonly #epochs = new Map<string, Map<number, string>>();
  readonly #planBudgetMs: number;
  readonly #takeoverBoundMs: number;
  readonly #nodeOfTarget: (target: string) => string | undefined;
  readonly #stallExplainsMs: number;
  /** Pair findings already reported (each is reported by the first fault that sees it). */
  readonly #reported = new Set<string>();

  /**
   * @param workloads the vehicle's workloads (each starts active on its primary, epoch 0)
   * @param options see {@linkcode OracleOptions}
   */
  constructor(workloads: readonly OracleWorkload[], options: OracleOptions) {
    this.#workloads = new Map(workloads.map((w) => [w.name, w]));
    for (const w of workloads) {
      this.#active.set(w.name, w.primaryNode);
      this.#epoch.set(w.name, 0);
      this.#epochs.set(w.name, new Map());
    }
    this.#planBudgetMs = options.plannedStopBudgetMs;
    this.#takeoverBoundMs = options.takeoverBoundMs ?? 0;
    this.#nodeOfTarget = options.nodeOfTarget ?? ((t) => t.split("/").at(-1));
    this.#stallExplainsMs = options.stallExplainsMs ?? Number.POSITIVE_INFINITY;
  }

  /** The node `workload` is active on. */
  activeNode(workload: string): string {
    return this.#active.get(workload)!;
  }

  /** The highest epoch seen for `workload` (0 before any promotion). */
  epoch(workload: string): number {
    return this.#epoch.get(workload)!;
  }

  /** The side of `workload` that is not on `node`. */
  #other(w: OracleWorkload, node: string): string {
    return node === w.primaryNode ? w.standbyNode : w.primaryNode;
  }

  /**
   * Turns `expected` into an inconclusive expectation for a stop of `node` that lasted longer than
   * drawn: moving the workloads active there and fencing it become allowed, not required.
   */
  allowNodeFailure(expected: Expectation, node: string): void {
    for (const w of this.#workloads.values()) {
      if (this.#active.get(w.name) === node) {
        expected.promoteAllowed.set(w.name, this.#other(w, node));
      }
    }
    expected.fenceAllowed.add(node);
  }

  /** What `fault` calls for, given the current state. */
  expect(fault: DrawnFault): Expectation {
    const e: Expectation = {
      promote: new Map(),
      budgetMs: new Map(),
      fenceRequired: new Set(),
      fenceAllowed: new Set(),
      promoteAllowed: new Map(),
    };
    const moveFrom = (node: string, budget: (w: OracleWorkload) => number, needs?: string) => {
      for (const w of this.#workloads.values()) {
        if (this.#active.get(w.name) !== node) continue;
        if (needs !== undefined && !(w.sensorsByNode[node] ?? []).includes(needs)) continue;
        e.promote.set(w.name, this.#other(w, node));
        e.budgetMs.set(w.name, budget(w));
      }
    };
    const ftti = (w: OracleWorkload) => w.fttiMs;
    switch (fault.kind) {
      case "node-crash":
      case "node-hang":
      case "partition":
      case "api-stop-crash":
        moveFrom(fault.node!, ftti);
        e.fenceRequired.add(fault.node!);
        e.fenceAllowed.add(fault.node!);
        break;
      case "agent-stop-long":
        moveFrom(fault.node!, ftti);
        // a fence of a node whose expiry moved nothing waits for a confirmation window that a
        // short stop may not outlast: allowed, required only when workloads moved (fenced at once)
        e.fenceAllowed.add(fault.node!);
        if (e.promote.size > 0) e.fenceRequired.add(fault.node!);
        break;
      case "sensor-loss":
        moveFrom(fault.node!, ftti, fault.sensor);
        break;
      case "app-hang": {
        const w = this.#workloads.get(fault.workload!)!;
        const node = this.#active.get(w.name)!;
        e.promote.set(w.name, this.#other(w, node));
        e.budgetMs.set(w.name, w.fttiMs);
        break;
      }
      case "planned-stop":
        moveFrom(fault.node!, () => this.#planBudgetMs);
        break;
      case "broker-kill-crash":
      case "supervisor-kill-crash":
      case "supervisor-partition-crash": {
        // the leader lost (killed, or its bus cut): decided once the survivor leads
        const leaderLost = fault.kind === "supervisor-kill-crash" || fault.scope === "leader-bus";
        moveFrom(fault.node!, (w) => w.fttiMs + (leaderLost ? this.#takeoverBoundMs : 0));
        e.fenceRequired.add(fault.node!);
        e.fenceAllowed.add(fault.node!);
        break;
      }
      default:
        break; // the kinds that must not act
    }
    this.#expectPair(fault, e);
    return e;
  }

  /** The pair's part of the truth (pair-only kinds; a pair's broker-stall, supervisor-restart). */
  #expectPair(fault: DrawnFault, e: Expectation): void {
    switch (fault.kind) {
      case "broker-stall":
        if (fault.broker === undefined) return; // the single mode's: one broker, an ingest fault
        break;
      case "supervisor-restart":
        if (fault.role === undefined) return; // the single mode's
        break;
      case "broker-kill":
      case "broker-kill-crash":
      case "supervisor-kill":
      case "supervisor-kill-crash":
      case "supervisor-partition":
      case "supervisor-partition-crash":
        break;
      default:
        return;
    }
    e.expiryAllowedNodes = new Set(fault.kind.endsWith("-crash") ? [fault.node!] : []);
    e.ingestFaultAllowed = new Set(
      fault.kind.startsWith("supervisor-partition") && fault.scope !== "sides" &&
        fault.supervisor !== undefined
        ? [fault.supervisor]
        : [],
    );
    const leaderLost = fault.kind === "supervisor-kill" || fault.kind === "supervisor-kill-crash" ||
      (fault.kind.startsWith("supervisor-partition") && fault.scope === "leader-bus");
    e.leadership = leaderLost ? "move" : "stay";
    if (leaderLost) e.deposedLeader = fault.supervisor;
  }

  /** How much of the silence that expired `x` stalls of `node`'s process cover, ms. */
  #stalledMs(pair: PairObservation, node: string, x: LoggedExpiry): number {
    if (x.silenceMs === undefined) return 0;
    const from = x.wallMs - x.silenceMs;
    let covered = 0;
    for (const s of pair.nodeStalls ?? []) {
      if (s.node !== node) continue;
      covered += Math.max(0, Math.min(s.toWallMs, x.wallMs) - Math.max(s.fromWallMs, from));
    }
    return covered;
  }

  /** Judges the pair's logs (see the module doc); appends to `v`. */
  #judgePair(expected: Expectation, pair: PairObservation, v: Verdict): void {
    const once = (key: string) => !this.#reported.has(key) && !!this.#reported.add(key);
    // never two leaders: periods of different processes are disjoint, and each has its own term
    const periods = [...pair.leadership].sort((a, b) => a.fromWallMs - b.fromWallMs);
    for (let i = 0; i < periods.length; i++) {
      for (let j = i + 1; j < periods.length; j++) {
        const a = periods[i], b = periods[j];
        if (a.supervisor === b.supervisor) continue;
        const overlapMs = Math.min(a.toWallMs, b.toWallMs) - Math.max(a.fromWallMs, b.fromWallMs);
        if (
          overlapMs > 0 &&
          once(`overlap ${a.supervisor}@${a.fromWallMs} ${b.supervisor}@${b.fromWallMs}`)
        ) {
          v.splitBrain.push(
            `${a.supervisor} (term ${a.term}) and ${b.supervisor} (term ${b.term}) led at once ` +
              `for ${overlapMs.toFixed(1)} ms`,
          );
        }
        if (a.term === b.term && once(`term ${a.term}`)) {
          v.splitBrain.push(`term ${a.term} led by ${a.supervisor} and ${b.supervisor}`);
        }
      }
    }
    // no epoch decided twice
    const decided = new Map<string, SentPromotion>();
    for (const p of pair.promotionsSent) {
      const key = `${p.workload}@${p.epoch}`;
      const first = decided.get(key);
      if (!first) {
        decided.set(key, p);
        continue;
      }
      if (
        (first.supervisor !== p.supervisor || first.activeNode !== p.activeNode) &&
        once(`epoch ${key} ${p.supervisor} ${p.activeNode} ${p.wallMs}`)
      ) {
        v.splitBrain.push(
          `${p.workload} epoch ${p.epoch} decided by ${first.supervisor} (${first.activeNode}) ` +
            `and by ${p.supervisor} (${p.activeNode})`,
        );
      }
    }
    // a single broker loss, a supervisor loss: nothing the watchdog sees changes
    if (expected.expiryAllowedNodes) {
      for (const x of pair.expiries) {
        const node = this.#nodeOfTarget(x.target);
        if (node !== undefined && expected.expiryAllowedNodes.has(node)) continue;
        const stalledMs = node === undefined ? 0 : this.#stalledMs(pair, node, x);
        if (stalledMs >= this.#stallExplainsMs) {
          (v.rigStalls ??= []).push(
            `${x.target} expired on ${x.supervisor}: ${node} itself did not run for ` +
              `${stalledMs.toFixed(0)} of its ${x.silenceMs!.toFixed(0)} ms of silence`,
          );
          continue;
        }
        v.falseActions.push(`${x.target} expired on ${x.supervisor} uncalled for`);
      }
    }
    if (expected.ingestFaultAllowed) {
      for (const f of pair.ingestFaults) {
        const id = f.supervisor.split("#")[0];
        if (!expected.ingestFaultAllowed.has(id)) {
          v.falseActions.push(`ingest fault on ${f.supervisor} uncalled for (${f.why})`);
        }
      }
    }
    if (expected.leadership === "move" && pair.leaderAfter === expected.deposedLeader) {
      v.missed.push(
        `${expected.deposedLeader} still leads after the fault took it out (killed or its bus cut)`,
      );
    }
    if (
      expected.leadership === "stay" && pair.leaderBefore !== undefined &&
      pair.leaderAfter !== pair.leaderBefore
    ) {
      (v.handovers ??= []).push(`lead moved from ${pair.leaderBefore} to ${pair.leaderAfter}`);
    }
    if (pair.takeoverMs !== undefined) v.takeoverMs = pair.takeoverMs;
  }

  /**
   * Judges an observation against what its fault called for (`expected`) and then follows reality: the active
   * node and epoch of every workload become those of its last observed promotion.
   */
  judge(expected: Expectation, observed: Observation): Verdict {
    const v: Verdict = {
      falseActions: [],
      missed: [],
      splitBrain: [],
      reactionMs: [],
      notConverged: observed.notConverged,
      notRestored: observed.notRestored,
    };
    if (observed.detectedAtWallMs !== undefined) {
      v.detectionMs = observed.detectedAtWallMs - observed.injectedAtWallMs;
    }
    const seenRequired = new Set<string>();
    for (const p of observed.promotions) {
      const seen = this.#epochs.get(p.workload);
      if (!seen) {
        v.falseActions.push(`promotion of unknown workload ${p.workload}`);
        continue;
      }
      const sameEpoch = seen.get(p.epoch);
      if (sameEpoch !== undefined) {
        if (sameEpoch !== p.activeNode) {
          v.splitBrain.push(
            `${p.workload} epoch ${p.epoch}: active ${sameEpoch} and ${p.activeNode}`,
          );
        }
        continue; // a repeat of a known promotion (e.g. a re-publish) is no new failover
      }
      const highest = this.#epoch.get(p.workload)!;
      if (p.epoch <= highest) {
        v.splitBrain.push(
          `${p.workload} epoch ${p.epoch} (${p.activeNode}) not above epoch ${highest} seen before`,
        );
      }
      seen.set(p.epoch, p.activeNode);
      this.#epoch.set(p.workload, Math.max(highest, p.epoch));
      this.#active.set(p.workload, p.activeNode);
      const want = expected.promote.get(p.workload);
      if (want === undefined && expected.promoteAllowed.get(p.workload) === p.activeNode) continue;
      if (want === undefined || seenRequired.has(p.workload)) {
        v.falseActions.push(
          `${p.workload} promoted to ${p.activeNode} (epoch ${p.epoch}, ${p.reason}) uncalled for`,
        );
        continue;
      }
      if (want !== p.activeNode) {
        v.falseActions.push(
          `${p.workload} promoted to ${p.activeNode} instead of ${want} (epoch ${p.epoch})`,
        );
        continue;
      }
      seenRequired.add(p.workload);
      const reactionMs = p.receivedAtWallMs - observed.injectedAtWallMs;
      v.reactionMs.push(reactionMs);
      const budget = expected.budgetMs.get(p.workload)!;
      if (reactionMs > budget) {
        v.missed.push(
          `${p.workload} promoted ${reactionMs.toFixed(1)} ms after the fault: over its ` +
            `${budget} ms budget`,
        );
      }
    }
    for (const [w, node] of expected.promote) {
      if (!seenRequired.has(w)) v.missed.push(`${w} never promoted to ${node}`);
    }
    for (const node of observed.fencedNodes) {
      if (!expected.fenceAllowed.has(node)) v.falseActions.push(`${node} fenced uncalled for`);
    }
    for (const node of expected.fenceRequired) {
      if (!observed.fencedNodes.has(node)) v.missed.push(`${node} not fenced`);
    }
    if (observed.pair) this.#judgePair(expected, observed.pair, v);
    return v;
  }
}
