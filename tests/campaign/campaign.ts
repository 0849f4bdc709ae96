/**
 * The randomized fault campaign: draws seeded faults, injects each into the running vehicle
 * ({@linkcode CampaignWorld}), watches its window, recovers, waits until redundancy is restored,
 * and has the {@linkcode Oracle} judge each fault. Anchor: Pacemaker's CTS.
 *
 * @module
 */
import { quantile, sortedFinite } from "../../bench/stats.ts";
import {
  DEFAULT_WEIGHTS,
  describeFault,
  type DrawnFault,
  FAULT_KINDS,
  FaultDraw,
  type FaultKind,
  PAIR_ONLY_KINDS,
  PAIR_WEIGHTS,
} from "./faults.ts";
import { type Expectation, Oracle, type Verdict } from "./oracle.ts";
import {
  type CampaignWorld,
  NODES,
  oracleWorkloads,
  PAIR_IDS,
  SENSORS,
  sleep,
  TAKEOVER_BOUND_MS,
  TIMING,
  wallNowMs,
  WORKLOADS,
} from "./world.ts";

/** One judged fault. */
export interface FaultRecord {
  /** The fault as drawn. */
  fault: DrawnFault;
  /** What the oracle called for. */
  expected: {
    promote: Record<string, string>;
    fenceRequired: string[];
    fenceAllowed: string[];
    promoteAllowed?: Record<string, string>;
  };
  /** Its judgement. */
  verdict: Verdict;
  /** Injection → restored, ms. */
  elapsedMs: number;
  /** Why the fault could not be applied as drawn (its promotions were then only allowed). */
  inconclusive?: string;
  /**
   * Stalls of simulated node processes (≥ the timeout minus three periods) from the fault's start
   * to its judgement: the node did not run, ms after the injection (the rig's share, for reading
   * a finding).
   */
  nodeStalls?: { node: string; endMs: number; gapMs: number }[];
}

/** Options of {@linkcode runCampaign}. */
export interface CampaignOptions {
  /** The running vehicle. */
  world: CampaignWorld;
  /** Seed of the draw. */
  seed: number;
  /** How many faults. */
  faults: number;
  /** Relative weight per kind (default: `DEFAULT_WEIGHTS`, in pair mode `PAIR_WEIGHTS`). */
  weights?: Partial<Record<FaultKind, number>>;
  /** Progress lines. */
  log: (line: string) => void;
  /** Aborting stops after the current fault. */
  signal?: AbortSignal;
}

/** Longest wait for redundancy after a recovery, ms. */
const RESTORE_TIMEOUT_MS = 45_000;
/** Longest wait for the cluster to carry the promotions, ms. */
const CONVERGE_TIMEOUT_MS = 15_000;

/** Runs the campaign; resolves with every judged fault. */
export async function runCampaign(opts: CampaignOptions): Promise<FaultRecord[]> {
  const { world, log } = opts;
  const oracle = newOracle();
  const draw = new FaultDraw(
    opts.seed,
    opts.weights ?? (world.pair ? PAIR_WEIGHTS : DEFAULT_WEIGHTS),
  );
  const records: FaultRecord[] = [];
  for (let i = 0; i < opts.faults && !opts.signal?.aborted; i++) {
    const fault = draw.next({
      ...(world.pair
        ? { pair: { leader: () => world.leaderId(), standby: () => world.standbyId() } }
        : {}),
      nodes: NODES,
      sensorsOf: (n) => SENSORS[n] ?? [],
      appWorkloads: WORKLOADS.filter((w) => w.app).map((w) => w.name),
      activeNodeOf: (w) => oracle.activeNode(w),
      periodMs: TIMING.periodMs,
      timeoutMs: TIMING.timeoutMs,
      bootWindowMs: TIMING.bootWindowMs,
    });
    records.push(await runOneFault(world, oracle, fault, log));
  }
  return records;
}

/** The oracle of a campaign on the campaign's vehicle (see `world.ts`). */
export function newOracle(): Oracle {
  return new Oracle(oracleWorkloads(), {
    plannedStopBudgetMs: TIMING.drainTimeoutMs,
    takeoverBoundMs: TAKEOVER_BOUND_MS,
    nodeOfTarget: nodeOfTarget,
    // the rest of a timeout's silence is the heartbeat's phase and its delivery
    stallExplainsMs: TIMING.timeoutMs - 3 * TIMING.periodMs,
  });
}

/** The node of a watchdog target: `node/X`, `app/W/X`, `sensor/S` (by {@linkcode SENSORS}). */
export function nodeOfTarget(target: string): string | undefined {
  const [kind, ...rest] = target.split("/");
  if (kind === "sensor") {
    return Object.entries(SENSORS).find(([, sensors]) => sensors.includes(rest[0]))?.[0];
  }
  return rest.at(-1);
}

/**
 * Injects one fault, observes, recovers, has the oracle judge it, and logs the verdict (a failure
 * of the instrument itself is logged, repaired and recorded as an error).
 */
export async function runOneFault(
  world: CampaignWorld,
  oracle: Oracle,
  fault: DrawnFault,
  log: (line: string) => void,
): Promise<FaultRecord> {
  {
    let record: FaultRecord;
    try {
      record = await runFault(world, oracle, fault, log);
    } catch (error) {
      // the instrument failed (not the supervisor): say so, repair, go on
      log(`${describeFault(fault)}: campaign error: ${(error as Error).stack}`);
      await repair(world);
      record = {
        fault,
        expected: { promote: {}, fenceRequired: [], fenceAllowed: [] },
        verdict: {
          falseActions: [],
          missed: [],
          splitBrain: [],
          reactionMs: [],
          error: String((error as Error).message),
        },
        elapsedMs: 0,
      };
    }
    const v = record.verdict;
    const bad = [...v.falseActions, ...v.missed, ...v.splitBrain];
    if (v.notConverged) bad.push(`not converged: ${v.notConverged}`);
    if (v.notRestored) bad.push(`not restored: ${v.notRestored}`);
    if (v.error) bad.push(`campaign error: ${v.error}`);
    log(
      `${describeFault(fault)}: ${bad.length ? "FAIL " + bad.join("; ") : "ok"}` +
        (v.reactionMs.length
          ? ` reaction ${v.reactionMs.map((x) => x.toFixed(0)).join("/")} ms`
          : "") +
        (v.takeoverMs !== undefined ? ` takeover ${v.takeoverMs.toFixed(0)} ms` : "") +
        (v.handovers?.length ? ` (noted: ${v.handovers.join("; ")})` : "") +
        (v.rigStalls?.length ? ` (rig: ${v.rigStalls.join("; ")})` : "") +
        ` (${(record.elapsedMs / 1000).toFixed(1)} s)`,
    );
    return record;
  }
}

/** Injects one fault, observes, recovers and judges it. */
async function runFault(
  world: CampaignWorld,
  oracle: Oracle,
  fault: DrawnFault,
  log: (line: string) => void,
): Promise<FaultRecord> {
  const expected = oracle.expect(fault);
  const node = fault.node!;
  const leaderBefore = world.pair ? world.lastElectedId() : undefined;
  const startedAtWallMs = wallNowMs();
  let injectedAtWallMs = startedAtWallMs;
  /** Pair: when the leader was killed or its bus cut (the takeover is measured from it). */
  let leaderLostAtWallMs: number | undefined;
  let fenced = new Set<string>();
  let inconclusive: string | undefined;
  const ns = node ? world.namespaces.get(node) : undefined;
  const proc = node ? world.nodes.get(node) : undefined;

  const afterWindow = async () => {
    await awaitWindow(world, expected, injectedAtWallMs);
    fenced = world.fencedSince(injectedAtWallMs);
  };

  switch (fault.kind) {
    case "node-crash": {
      injectedAtWallMs = wallNowMs();
      proc!.signal("SIGKILL");
      await Promise.all([proc!.exited, world.cp.killNode(node)]);
      await afterWindow();
      await Promise.all([world.cp.restartNode(node), world.startNode(node)]);
      break;
    }
    case "node-hang":
      injectedAtWallMs = wallNowMs();
      await proc!.command("hang");
      await afterWindow();
      await proc!.command("unhang");
      break;
    case "partition":
      injectedAtWallMs = wallNowMs();
      await ns!.partition();
      await afterWindow();
      await ns!.heal();
      break;
    case "sensor-loss":
      injectedAtWallMs = wallNowMs();
      await proc!.command(`sensor-stop ${fault.sensor}`);
      await afterWindow();
      await proc!.command(`sensor-start ${fault.sensor}`);
      break;
    case "app-hang":
      injectedAtWallMs = wallNowMs();
      await proc!.command(`app-stop ${fault.workload}`);
      await afterWindow();
      await proc!.command(`app-start ${fault.workload}`);
      break;
    case "agent-stop-short":
    case "agent-stop-long": {
      injectedAtWallMs = wallNowMs();
      proc!.signal("SIGSTOP");
      await sleep(fault.durationMs!);
      proc!.signal("SIGCONT");
      const stoppedMs = wallNowMs() - injectedAtWallMs;
      if (
        fault.kind === "agent-stop-short" &&
        stoppedMs > TIMING.timeoutMs - 2 * TIMING.periodMs
      ) {
        // our own timer was late: the stop was not short; judge nothing about this node
        inconclusive = `stopped ${stoppedMs.toFixed(1)} ms instead of ${fault.durationMs} ms`;
        oracle.allowNodeFailure(expected, node);
      }
      await afterWindow();
      break;
    }
    case "jitter":
      injectedAtWallMs = wallNowMs();
      await world.setNodeLatency(node, fault.latencyMs!, fault.jitterMs!);
      await sleep(fault.durationMs!);
      await world.clearNodeToxics(node);
      await afterWindow();
      break;
    case "planned-stop":
      injectedAtWallMs = wallNowMs();
      await proc!.command("planned-stop", 10_000);
      await proc!.exited;
      await afterWindow();
      await world.startNode(node);
      break;
    case "boot": {
      // power-on of the whole vehicle: every process gone, then the supervisor and the nodes
      // come up in a random order inside the boot window
      if (world.pair) {
        for (const i of world.liveInstances) await world.killSupervisor(i.id);
      } else {
        await world.supervisor.kill();
      }
      await Promise.all(NODES.map((n) => world.killNode(n)));
      injectedAtWallMs = wallNowMs();
      const supervisors = world.pair
        ? Promise.all(PAIR_IDS.map((id) => world.startSupervisor(id)))
        : world.startSupervisor();
      await Promise.all([
        supervisors,
        ...NODES.map((n) => sleep(fault.bootDelaysMs![n]).then(() => world.startNode(n))),
      ]);
      await afterWindow();
      break;
    }
    case "broker-stall": {
      const broker = world.brokers[fault.broker ?? 0];
      injectedAtWallMs = wallNowMs();
      broker.pause();
      await sleep(fault.durationMs!);
      broker.resume();
      await afterWindow();
      break;
    }
    case "broker-restart":
      injectedAtWallMs = wallNowMs();
      await world.restartBroker(fault.durationMs!);
      await afterWindow();
      break;
    case "api-stop":
      injectedAtWallMs = wallNowMs();
      world.cp.pauseApiServer();
      await sleep(fault.durationMs!);
      world.cp.resumeApiServer();
      await afterWindow();
      break;
    case "api-stop-crash": {
      world.cp.pauseApiServer();
      await sleep(300);
      injectedAtWallMs = wallNowMs();
      proc!.signal("SIGKILL");
      await Promise.all([proc!.exited, world.cp.killNode(node).catch(() => {})]);
      // the promotion travels over MQTT while the API is stopped
      await awaitPromotions(world, expected, injectedAtWallMs);
      await sleep(1000);
      world.cp.resumeApiServer();
      await afterWindow();
      await Promise.all([world.cp.restartNode(node), world.startNode(node)]);
      break;
    }
    case "supervisor-restart":
      injectedAtWallMs = wallNowMs();
      if (world.pair) {
        // the standby (a leader's kill is supervisor-kill)
        await world.killSupervisor(struck(fault));
        await sleep(fault.durationMs!);
        await world.startSupervisor(struck(fault));
      } else {
        await world.supervisor.kill();
        await sleep(fault.durationMs!);
        await world.startSupervisor();
      }
      await afterWindow();
      break;
    case "broker-kill":
      injectedAtWallMs = wallNowMs();
      await world.killBroker(fault.broker!);
      await sleep(fault.durationMs!);
      await world.startBroker(fault.broker!);
      await afterWindow();
      break;
    case "broker-kill-crash":
      await world.killBroker(fault.broker!);
      await sleep(fault.delayMs!);
      injectedAtWallMs = wallNowMs();
      await crash(world, node);
      await afterWindow();
      await world.startBroker(fault.broker!);
      await Promise.all([world.cp.restartNode(node), world.startNode(node)]);
      break;
    case "supervisor-kill":
      injectedAtWallMs = leaderLostAtWallMs = wallNowMs();
      await world.killSupervisor(struck(fault));
      await sleep(fault.durationMs!);
      await world.startSupervisor(struck(fault)); // as the standby: the peer leads by now
      await afterWindow();
      break;
    case "supervisor-kill-crash":
      leaderLostAtWallMs = wallNowMs();
      await world.killSupervisor(struck(fault));
      await sleep(fault.delayMs!);
      injectedAtWallMs = wallNowMs();
      await crash(world, node);
      await afterWindow();
      await Promise.all([
        world.cp.restartNode(node),
        world.startNode(node),
        world.startSupervisor(struck(fault)),
      ]);
      break;
    case "supervisor-partition":
      injectedAtWallMs = wallNowMs();
      if (fault.scope === "leader-bus") leaderLostAtWallMs = injectedAtWallMs;
      await cutPair(world, fault);
      await sleep(fault.durationMs!);
      await world.healSupervisorPaths();
      await afterWindow();
      break;
    case "supervisor-partition-crash":
      leaderLostAtWallMs = fault.scope === "leader-bus" ? wallNowMs() : undefined;
      await cutPair(world, fault);
      await sleep(fault.delayMs!);
      injectedAtWallMs = wallNowMs();
      await crash(world, node);
      await afterWindow(); // the cut lasts the crash's whole window
      await world.healSupervisorPaths();
      await Promise.all([world.cp.restartNode(node), world.startNode(node)]);
      break;
  }

  // who leads once the fault's window is over (before any repair restarts the supervisors)
  const leaderAfter = world.pair ? world.lastElectedId() : undefined;
  let restoredProblem: string | undefined;
  if (world.pair) {
    // a fence no fault allowed is a finding already, and it stays (the takeover's re-fence, see
    // docs/campaign.md): after 15 s it is not waited for any longer, it is repaired
    restoredProblem = await world.restored(15_000);
    const stuck = restoredProblem?.match(/^(\S+) (fenced|cordoned)$/)?.[1];
    if (restoredProblem && !(stuck && !expected.fenceAllowed.has(stuck))) {
      restoredProblem = await world.restored(RESTORE_TIMEOUT_MS - 15_000);
    }
  } else {
    restoredProblem = await world.restored(RESTORE_TIMEOUT_MS);
  }
  if (restoredProblem) {
    log(`#${fault.seq}: not restored (${restoredProblem}); repairing`);
    await repair(world);
    const again = await world.restored(RESTORE_TIMEOUT_MS);
    if (again) log(`#${fault.seq}: still not restored after repair: ${again}`);
  }
  const verdict = oracle.judge(expected, {
    injectedAtWallMs,
    promotions: world.promotionsSince(startedAtWallMs),
    fencedNodes: fenced,
    notRestored: restoredProblem,
    detectedAtWallMs: detection(world, fault, injectedAtWallMs),
    ...(world.pair
      ? {
        pair: {
          ...world.pairObservation(startedAtWallMs, leaderBefore, leaderAfter),
          takeoverMs: takeover(world, fault, leaderLostAtWallMs),
        },
      }
      : {}),
  });
  verdict.notConverged = await world.converged(
    (w) => oracle.epoch(w),
    (w) => oracle.activeNode(w),
    CONVERGE_TIMEOUT_MS,
  );
  return {
    fault,
    expected: {
      promote: Object.fromEntries(expected.promote),
      fenceRequired: [...expected.fenceRequired],
      fenceAllowed: [...expected.fenceAllowed],
      ...(expected.promoteAllowed.size
        ? { promoteAllowed: Object.fromEntries(expected.promoteAllowed) }
        : {}),
    },
    verdict,
    elapsedMs: wallNowMs() - startedAtWallMs,
    ...(inconclusive ? { inconclusive } : {}),
    ...stallsOf(world, startedAtWallMs, injectedAtWallMs),
  };
}

/** {@linkcode FaultRecord.nodeStalls} (omitted when none). */
function stallsOf(
  world: CampaignWorld,
  fromWallMs: number,
  injectedAtWallMs: number,
): Pick<FaultRecord, "nodeStalls"> {
  const stalls = world.nodeStallsSince(fromWallMs, TIMING.timeoutMs - 3 * TIMING.periodMs);
  if (stalls.length === 0) return {};
  return {
    nodeStalls: stalls.map((s) => ({
      node: s.node,
      endMs: Math.round(s.endWallMs - injectedAtWallMs),
      gapMs: s.gapMs,
    })),
  };
}

/** The id of the supervisor a pair fault strikes (drawn while it held its role). */
function struck(fault: DrawnFault): string {
  if (fault.supervisor === undefined) {
    throw new Error(`${describeFault(fault)}: no ${fault.role} supervisor when drawn`);
  }
  return fault.supervisor;
}

/** A node crash: SIGKILL of the node's process and of its kwok (power lost). */
async function crash(world: CampaignWorld, node: string): Promise<void> {
  const proc = world.nodes.get(node)!;
  proc.signal("SIGKILL");
  await Promise.all([proc.exited, world.cp.killNode(node)]);
}

/** Cuts what a supervisor-partition fault cuts (its scope). */
function cutPair(world: CampaignWorld, fault: DrawnFault): Promise<void> {
  return fault.scope === "sides" ? world.cutSides() : world.cutSupervisorBus(struck(fault));
}

/**
 * Pair: the leader lost at `lostAtWallMs` → the first `leader-elected` of another id after it,
 * ms (undefined when the fault did not take the leader out, or nobody took over).
 */
function takeover(
  world: CampaignWorld,
  fault: DrawnFault,
  lostAtWallMs: number | undefined,
): number | undefined {
  if (lostAtWallMs === undefined) return undefined;
  const elected = world.instances.filter((i) => i.id !== fault.supervisor).flatMap((i) =>
    i.proc.lines.filter((l) => l.event === "leader-elected" && l.wallMs >= lostAtWallMs)
  ).map((l) => l.wallMs);
  return elected.length ? Math.min(...elected) - lostAtWallMs : undefined;
}

/**
 * The fault's window: until every required promotion arrived (at most its budget), then long
 * enough for a fence that waits for confirmation, then a quiet second in which nothing else may
 * happen.
 */
async function awaitWindow(
  world: CampaignWorld,
  expected: Expectation,
  injectedAtWallMs: number,
): Promise<void> {
  await awaitPromotions(world, expected, injectedAtWallMs);
  const nodeLevel = expected.fenceAllowed.size > 0;
  const untilWallMs = injectedAtWallMs +
    (nodeLevel ? TIMING.fenceConfirmationMs + 1200 : TIMING.timeoutMs + 300);
  const rest = untilWallMs - wallNowMs();
  if (rest > 0) await sleep(rest);
  await sleep(1000); // quiet period: anything the fault did not call for shows up here
}

/** Waits until every promotion `expected` calls for has arrived, at most the largest budget. */
async function awaitPromotions(
  world: CampaignWorld,
  expected: Expectation,
  injectedAtWallMs: number,
): Promise<void> {
  if (expected.promote.size === 0) return;
  const budget = Math.max(...expected.budgetMs.values());
  const endWallMs = injectedAtWallMs + budget + 500;
  while (wallNowMs() < endWallMs) {
    const seen = new Set(world.promotionsSince(injectedAtWallMs).map((p) => p.workload));
    if ([...expected.promote.keys()].every((w) => seen.has(w))) return;
    await sleep(10);
  }
}

/** The first expiry (or planned stop) the supervisor logged for the fault's target, wall ms. */
function detection(
  world: CampaignWorld,
  fault: DrawnFault,
  sinceWallMs: number,
): number | undefined {
  const node = fault.node;
  const matches = (target: string): boolean => {
    switch (fault.kind) {
      case "sensor-loss":
        return target === `sensor/${fault.sensor}`;
      case "app-hang":
        return target === `app/${fault.workload}/${node}`;
      default:
        return node !== undefined &&
          (target === `node/${node}` || target.endsWith(`/${node}`) ||
            (SENSORS[node] ?? []).some((s) => target === `sensor/${s}`));
    }
  };
  // the first of every supervisor process (a pair: both watch; a restart: a new process)
  const found = world.allLines().map(({ lines }) =>
    lines.find((l) =>
      l.wallMs >= sinceWallMs &&
      ((l.event === "expired" && matches(String(l.target))) ||
        (fault.kind === "planned-stop" && l.event === "planned-stop" && l.node === node))
    )?.wallMs
  ).filter((x): x is number => x !== undefined);
  return found.length ? Math.min(...found) : undefined;
}

/** Undoes whatever a failed recovery may have left: every process, partition and toxic. */
async function repair(world: CampaignWorld): Promise<void> {
  world.cp.resumeApiServer();
  for (const [b, broker] of world.brokers.entries()) {
    if (world.brokersDown.has(b)) {
      await world.startBroker(b).catch(() => {});
      continue;
    }
    try {
      broker.resume();
    } catch { /* gone */ }
  }
  if (world.pair) {
    await world.healSupervisorPaths().catch(() => {});
    const fenced = await world.fencedOrCordonedNodes().catch(() => new Set<string>());
    if (fenced.size) {
      // lifted as an operator would, with both supervisors restarted so that neither applies
      // it again from memory (they adopt the lifted fence from the cluster: `unfenced-at`)
      for (const i of world.liveInstances) await world.killSupervisor(i.id);
      await world.operatorUnfence(fenced).catch(() => {});
    }
    for (const id of PAIR_IDS) {
      if (!world.instance(id)) await world.startSupervisor(id).catch(() => {});
    }
  }
  for (const n of NODES) {
    await world.namespaces.get(n)!.heal().catch(() => {});
    await world.clearNodeToxics(n).catch(() => {});
    const proc = world.nodes.get(n);
    if (proc?.running) {
      proc.signal("SIGCONT");
      await proc.command("unhang").catch(() => {});
      for (const s of SENSORS[n] ?? []) await proc.command(`sensor-start ${s}`).catch(() => {});
      for (const w of WORKLOADS) await proc.command(`app-start ${w.name}`).catch(() => {});
    } else {
      await world.startNode(n).catch(() => {});
    }
  }
}

/** Counts and percentiles of a campaign. */
export interface CampaignSummary {
  faults: number;
  byKind: Record<string, number>;
  false: number;
  missed: number;
  splitBrain: number;
  notConverged: number;
  notRestored: number;
  /** Faults the instrument itself failed to apply (not judged). */
  errors: number;
  /** Faults applied differently from their draw (see {@linkcode FaultRecord.inconclusive}). */
  inconclusive: number;
  detectionMs: { p50: number | null; p99: number | null; n: number };
  reactionMs: { p50: number | null; p99: number | null; n: number };
  reactionByKind: Record<string, { p50: number | null; p99: number | null; n: number }>;
  findings: { seq: number; kind: string; problems: string[] }[];
  /**
   * Pair mode: leader killed or its bus cut → the survivor's `leader-elected`, ms (with the
   * largest), and the leadership changes no fault called for (noted, not judged).
   */
  pair?: {
    takeoverMs: { p50: number | null; p99: number | null; max: number | null; n: number };
    handovers: { seq: number; kind: string; what: string[] }[];
    /** Expiries explained by a stall of the simulated node's own process (reported, not judged). */
    rigStalls: { seq: number; kind: string; what: string[] }[];
  };
}

/** Nearest-rank percentile of `values` (bench/stats.ts `quantile`), 0.1 ms; null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  const q = quantile(sortedFinite(values), p / 100);
  return q === undefined ? null : Math.round(q * 10) / 10;
}

const stats = (xs: number[]) => ({
  p50: percentile(xs, 50),
  p99: percentile(xs, 99),
  n: xs.length,
});

/** Summarises judged faults. */
export function summarize(records: readonly FaultRecord[]): CampaignSummary {
  const byKind: Record<string, number> = {};
  const pairMode = records.some((r) => r.fault.role !== undefined || r.fault.broker !== undefined);
  for (const k of FAULT_KINDS) if (pairMode || !PAIR_ONLY_KINDS.includes(k)) byKind[k] = 0;
  const takeovers: number[] = [];
  const handovers: NonNullable<CampaignSummary["pair"]>["handovers"] = [];
  const rigStalls: NonNullable<CampaignSummary["pair"]>["rigStalls"] = [];
  const reactionByKindRaw: Record<string, number[]> = {};
  const detection: number[] = [];
  const reaction: number[] = [];
  const findings: CampaignSummary["findings"] = [];
  let falseN = 0, missed = 0, split = 0, notConverged = 0, notRestored = 0, errors = 0;
  let inconclusive = 0;
  for (const r of records) {
    const v = r.verdict;
    byKind[r.fault.kind] = (byKind[r.fault.kind] ?? 0) + 1;
    falseN += v.falseActions.length;
    missed += v.missed.length;
    split += v.splitBrain.length;
    if (v.notConverged) notConverged++;
    if (v.notRestored) notRestored++;
    if (v.error) errors++;
    if (r.inconclusive) inconclusive++;
    if (v.detectionMs !== undefined && r.expected && Object.keys(r.expected.promote).length) {
      detection.push(v.detectionMs);
    }
    reaction.push(...v.reactionMs);
    (reactionByKindRaw[r.fault.kind] ??= []).push(...v.reactionMs);
    if (v.takeoverMs !== undefined) takeovers.push(v.takeoverMs);
    if (v.handovers?.length) {
      handovers.push({ seq: r.fault.seq, kind: r.fault.kind, what: v.handovers });
    }
    if (v.rigStalls?.length) {
      rigStalls.push({ seq: r.fault.seq, kind: r.fault.kind, what: v.rigStalls });
    }
    const problems = [
      ...v.falseActions.map((x) => `false: ${x}`),
      ...v.missed.map((x) => `missed: ${x}`),
      ...v.splitBrain.map((x) => `split brain: ${x}`),
      ...(v.notConverged ? [`not converged: ${v.notConverged}`] : []),
      ...(v.notRestored ? [`not restored: ${v.notRestored}`] : []),
      ...(v.error ? [`campaign error: ${v.error}`] : []),
    ];
    if (problems.length) findings.push({ seq: r.fault.seq, kind: r.fault.kind, problems });
  }
  const reactionByKind: CampaignSummary["reactionByKind"] = {};
  for (const [k, xs] of Object.entries(reactionByKindRaw)) {
    if (xs.length) reactionByKind[k] = stats(xs);
  }
  return {
    faults: records.length,
    byKind,
    false: falseN,
    missed,
    splitBrain: split,
    notConverged,
    notRestored,
    errors,
    inconclusive,
    detectionMs: stats(detection),
    reactionMs: stats(reaction),
    reactionByKind,
    findings,
    ...(pairMode
      ? {
        pair: {
          takeoverMs: {
            ...stats(takeovers),
            max: takeovers.length ? Math.round(Math.max(...takeovers) * 10) / 10 : null,
          },
          handovers,
          rigStalls,
        },
      }
      : {}),
  };
}
