/**
 * The supervisor pair's benchmark on real components: a real kube-apiserver (kine/SQLite,
 * controller-manager, scheduler, one kwok per node), a real mosquitto, one simulated Jetson process
 * per node and two `run --id` processes of one config (`tests/harness/pair_rig.ts`, the rig of
 * `tests/pair_test.ts`).
 *
 * Per Lease timing one series; each repetition: both supervisors up, the leader known from the
 * Lease, the standby warm and past its boot window; after a random wait (its phase in the renew
 * cycle) the leader is SIGKILLed. Takeover = SIGKILL → the survivor's `leader-elected` log line
 * (wall times: the bench's `performance.timeOrigin + now()` and the line's `wallMs`, built the same
 * way in the other process). In a fault repetition the node holding the active instances of
 * {@linkcode WORKLOADS} is crashed right after the kill (SIGKILL of its process and of its kwok):
 * fault → the last of their promotions received by an MQTT subscriber. Then the node is restarted
 * and redundancy restored, and the killed supervisor comes back as the new standby.
 *
 * Leadership gaps: every `leader-stepped-down` other than a release (reason `renew-deadline`: the
 * leader could not renew within the renew deadline) is counted per series, with the time until
 * some instance led again.
 *
 * @module
 */
import { PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { type ControlPlane, startControlPlane } from "../tests/harness/control_plane.ts";
import { type RunningMosquitto, startMosquitto } from "../tests/harness/mosquitto.ts";
import {
  type Admin,
  adminClients,
  IDS,
  type LeaseTiming,
  NODES,
  NS,
  pairConfig,
  PLACEMENTS,
  promotionWatcher,
  setupWorkloads,
  sleep,
  until,
  wallNow,
  wallOf,
  WORKLOADS,
} from "../tests/harness/pair_rig.ts";
import {
  type LogLine,
  startSupervisor,
  type SupervisorProcess,
} from "../tests/harness/supervisor_process.ts";
import { type NodeProc, startNodeProc } from "../tests/campaign/node_proc.ts";
import { seededRandom } from "./stats.ts";
import type { PairBenchOptions } from "./pair_options.ts";

/** The boot window of the bench's config, ms (every node publishes before a supervisor starts). */
export const BENCH_BOOT_WINDOW_MS = 2000;
/** Our taint on a fenced node (the schema's default `cluster.taintKey`). */
const TAINT_KEY = "sdv-failover.io/unreachable";
/** Bound on each wait of a repetition, ms (a repetition that exceeds it is recorded as failed). */
const STEP_TIMEOUT_MS = 30_000;
/** A fence still there this long after a repetition, with every target OK, is lifted, ms. */
const STALE_FENCE_MS = 8_000;

/** One repetition. Times in ms. */
export interface PairSample {
  /** `takeover`: the leader SIGKILLed; `fault`: and a node crashed right after it. */
  kind: "takeover" | "fault";
  /** 1-based within the series. */
  rep: number;
  /** The killed leader's and the survivor's ids. */
  killed: string;
  survivor: string;
  /** SIGKILL of the leader → the survivor's `leader-elected`. */
  takeoverMs?: number;
  /** Fault repetitions: the crashed node. */
  crashedNode?: string;
  /** The leader's SIGKILL → the node's crash (both sent by the bench, one after the other). */
  killToCrashMs?: number;
  /** Node crash → its expiry on the survivor's (warm) watchdog. */
  faultToExpiryMs?: number;
  /** Node crash → the last of the node's promotions sent (survivor's log). */
  faultToPromotionSentMs?: number;
  /** Node crash → the last of the node's promotions received by the MQTT subscriber. */
  faultToPromotionReceivedMs?: number;
  /** The survivor's `leader-elected` → its last promotion sent. */
  leaderToPromotionSentMs?: number;
  /** Issuers of the promotions (all should be the survivor). */
  issuers?: string[];
  /** What went wrong; the sample's values may be missing. */
  error?: string;
}

/** A leadership period ended by anything but a release. */
export interface StepDown {
  id: string;
  reason: string;
  /** Step-down → the next `leader-elected` of any instance (undefined: none in the series). */
  gapMs?: number;
}

/** One series: one Lease timing, with or without CPU stress. */
export interface PairSeries {
  timing: LeaseTiming;
  /** The `stress-ng` command run during the series, if any. */
  stress?: string;
  samples: PairSample[];
  stepDowns: StepDown[];
  /** Series start → end, s. */
  durationS: number;
  /** Why the series ended early (redundancy not restored after a repetition). */
  aborted?: string;
}

interface Supervisors {
  procs: Map<string, SupervisorProcess>;
  /** Every process of the series (killed ones included), for the step-down count. */
  all: { id: string; proc: SupervisorProcess }[];
}

/** Runs every series of `opts` on one rig; `log` receives progress lines. */
export async function runPairSeries(
  opts: PairBenchOptions,
  log: (line: string) => void,
): Promise<{ series: PairSeries[]; scratch: string }> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "sdv-pair-bench-" }));
  let cp: ControlPlane | undefined;
  let broker: RunningMosquitto | undefined;
  const nodes = new Map<string, NodeProc>();
  let watch: Awaited<ReturnType<typeof promotionWatcher>> | undefined;
  const series: PairSeries[] = [];
  const random = seededRandom(opts.seed);
  try {
    log(`starting the control plane and mosquitto (scratch ${dir})`);
    [cp, broker] = await Promise.all([
      startControlPlane({ nodes: NODES, log }),
      startMosquitto({ workDir: dir, tcpNoDelay: true }),
    ]);
    const admin = adminClients(cp.adminKubeconfigPath);
    await setupWorkloads(admin);
    const nodeCfg = `${dir}/nodes.yaml`;
    await Deno.writeTextFile(
      nodeCfg,
      stringify(pairConfig(broker.url, cp.runtimeKubeconfigPath)),
    );
    const startNode = async (node: string) => {
      nodes.set(
        node,
        await startNodeProc({ node, configPath: nodeCfg, url: broker!.url, execPrefix: [] }),
      );
    };
    await Promise.all(NODES.map(startNode));
    watch = await promotionWatcher(broker.url);
    const rig: Rig = { cp, admin, nodes, startNode, watch, dir, random, log };
    const runs: { timing: LeaseTiming; stress: boolean }[] = opts.timings.flatMap((timing) => [
      { timing, stress: false },
      ...(opts.stressReps > 0 ? [{ timing, stress: true }] : []),
    ]);
    for (const [i, run] of runs.entries()) {
      const cfg = `${dir}/pair-${i + 1}.yaml`;
      await Deno.writeTextFile(
        cfg,
        stringify(
          pairConfig(broker.url, cp.runtimeKubeconfigPath, {
            timing: run.timing,
            bootWindowMs: BENCH_BOOT_WINDOW_MS,
          }),
        ),
      );
      const reps = run.stress ? opts.stressReps : opts.reps;
      const faultReps = run.stress ? opts.stressReps : opts.faultReps;
      series.push(await runSeries(rig, cfg, run.timing, run.stress, reps, faultReps, i + 1));
      if (series.at(-1)!.aborted) break;
    }
    return { series, scratch: dir };
  } finally {
    await watch?.close().catch(() => {});
    for (const n of nodes.values()) {
      n.signal("SIGKILL");
      await n.exited;
    }
    await broker?.stop();
    await cp?.stop();
    if (!opts.keepScratch) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

interface Rig {
  cp: ControlPlane;
  admin: Admin;
  nodes: Map<string, NodeProc>;
  startNode(node: string): Promise<void>;
  watch: Awaited<ReturnType<typeof promotionWatcher>>;
  dir: string;
  random: () => number;
  log: (line: string) => void;
}

async function runSeries(
  rig: Rig,
  cfg: string,
  timing: LeaseTiming,
  stress: boolean,
  reps: number,
  faultReps: number,
  index: number,
): Promise<PairSeries> {
  const t0 = wallNow();
  const label = `${timing.leaseDurationMs}/${timing.renewDeadlineMs}/${timing.retryPeriodMs}` +
    (stress ? " under stress" : "");
  rig.log(`series ${index}: lease ${label}: ${reps} takeover + ${faultReps} fault repetitions`);
  const sups: Supervisors = { procs: new Map(), all: [] };
  const start = async (id: string) => {
    const proc = await startSupervisor(cfg, { id });
    sups.procs.set(id, proc);
    sups.all.push({ id, proc });
    await proc.waitFor((l) => l.event === "cluster-state-observed", STEP_TIMEOUT_MS, `${id} warm`);
    return proc;
  };
  let stressProc: Deno.ChildProcess | undefined;
  let stressCommand: string | undefined;
  const samples: PairSample[] = [];
  let aborted: string | undefined;
  try {
    const first = await start(IDS[0]);
    await first.waitFor((l) => l.event === "leader-elected", STEP_TIMEOUT_MS, `${IDS[0]} leads`);
    await start(IDS[1]);
    if (stress) {
      const cores = navigator.hardwareConcurrency;
      const args = ["--cpu", String(cores), "--timeout", "3600s", "--quiet"];
      stressCommand = `stress-ng ${args.join(" ")}`;
      stressProc = new Deno.Command("stress-ng", { args, stdout: "null", stderr: "null" }).spawn();
    }
    // takeover and fault repetitions interleaved: the same conditions for both
    const kinds: PairSample["kind"][] = [];
    for (let i = 0; i < Math.max(reps, faultReps); i++) {
      if (i < reps) kinds.push("takeover");
      if (i < faultReps) kinds.push("fault");
    }
    for (const [i, kind] of kinds.entries()) {
      let sample: PairSample;
      try {
        sample = await repetition(rig, sups, start, timing, kind, i + 1);
      } catch (error) {
        aborted = `repetition ${i + 1}: ${(error as Error).message.split("\n")[0]}`;
        rig.log(`  ${label}: series aborted: ${aborted}`);
        break;
      }
      samples.push(sample);
      rig.log(
        `  ${label} #${i + 1} ${kind}: ${sample.killed} killed, takeover ${
          sample.takeoverMs?.toFixed(1)
        } ms` +
          (kind === "fault"
            ? `, ${sample.crashedNode} crash → promotion received ${
              sample.faultToPromotionReceivedMs?.toFixed(1)
            } ms`
            : "") +
          (sample.error ? ` ERROR ${sample.error}` : ""),
      );
    }
  } finally {
    if (stressProc) {
      try {
        stressProc.kill("SIGTERM");
      } catch { /* gone */ }
      await stressProc.status;
    }
    for (const p of sups.procs.values()) await p.stop().catch(() => {});
    for (const [i, { id, proc }] of sups.all.entries()) {
      await Deno.writeTextFile(
        `${rig.dir}/series-${index}-${i + 1}-${id}.log`,
        [...proc.raw, ...proc.lines.map((l) => JSON.stringify(l))].join("\n") + "\n",
      ).catch(() => {});
    }
  }
  return {
    timing,
    stress: stressCommand,
    samples,
    stepDowns: stepDowns(sups.all),
    ...(aborted ? { aborted } : {}),
    durationS: Math.round((wallNow() - t0) / 100) / 10,
  };
}

/** Leadership periods ended other than by a release, with the gap until the next election. */
export function stepDowns(all: { id: string; proc: { lines: LogLine[] } }[]): StepDown[] {
  const elections = all.flatMap(({ proc }) =>
    proc.lines.filter((l) => l.event === "leader-elected").map((l) => l.wallMs)
  ).sort((a, b) => a - b);
  return all.flatMap(({ id, proc }) =>
    proc.lines.filter((l) => l.event === "leader-stepped-down" && l.reason !== "released").map(
      (l) => {
        const next = elections.find((w) => w >= l.wallMs);
        return {
          id,
          reason: String(l.reason),
          gapMs: next === undefined ? undefined : Math.round((next - l.wallMs) * 10) / 10,
        };
      },
    )
  );
}

/** The id whose instance holds the Lease (`<id>/<nonce>`), once it has logged its election. */
async function currentLeader(rig: Rig, sups: Supervisors, timing: LeaseTiming): Promise<string> {
  return await until("a leader among the running instances", STEP_TIMEOUT_MS, async () => {
    const lease = await rig.admin.coordination.readNamespacedLease({
      namespace: "kube-system",
      name: "sdv-failover",
    });
    const holder = String(lease.spec?.holderIdentity ?? "");
    const id = holder.split("/")[0];
    const proc = sups.procs.get(id);
    if (!proc) return undefined;
    const elected = proc.lines.findLast((l) => l.event === "leader-elected");
    const stepped = proc.lines.findLast((l) => l.event === "leader-stepped-down");
    if (elected?.identity !== holder || (stepped && stepped.wallMs > elected.wallMs)) {
      return undefined;
    }
    // not in the middle of a renew-deadline step-down: the last election is a while ago
    return wallNow() - elected.wallMs > timing.leaseDurationMs ? id : undefined;
  });
}

/** Where the active instances of {@linkcode WORKLOADS} run (the last promotion, or primary). */
function activeNode(rig: Rig): string {
  const last = rig.watch.received.findLast((r) => r.promotion.workload === WORKLOADS[0]);
  return last?.promotion.activeNode ?? "worker-node2";
}

async function repetition(
  rig: Rig,
  sups: Supervisors,
  start: (id: string) => Promise<SupervisorProcess>,
  timing: LeaseTiming,
  kind: PairSample["kind"],
  rep: number,
): Promise<PairSample> {
  const leaderId = await currentLeader(rig, sups, timing);
  const survivorId = IDS.find((id) => id !== leaderId)!;
  const leader = sups.procs.get(leaderId)!;
  const survivor = sups.procs.get(survivorId)!;
  const sample: PairSample = { kind, rep, killed: leaderId, survivor: survivorId };
  // the survivor past its boot window: a silent node is an expiry, not a node never seen
  const armed = survivor.lines.find((l) => l.event === "armed")!;
  await sleep(Math.max(0, armed.wallMs + BENCH_BOOT_WINDOW_MS + 100 - wallNow()));
  // a random phase in the renew cycle
  await sleep(rig.random() * timing.leaseDurationMs);
  const node = activeNode(rig);
  const received = rig.watch.received.length;
  const killedAt = wallNow();
  const killed = leader.kill();
  let crashedAt: number | undefined;
  if (kind === "fault") {
    crashedAt = wallNow();
    rig.nodes.get(node)!.signal("SIGKILL");
    sample.crashedNode = node;
    sample.killToCrashMs = round(crashedAt - killedAt);
  }
  try {
    await Promise.all([
      killed,
      kind === "fault" ? rig.nodes.get(node)!.exited : undefined,
      kind === "fault" ? rig.cp.killNode(node) : undefined,
    ]);
    sups.procs.delete(leaderId);
    const elected = await survivor.waitFor(
      (l) => l.event === "leader-elected" && l.wallMs > killedAt,
      STEP_TIMEOUT_MS,
      `${survivorId} elected`,
    );
    sample.takeoverMs = round(elected.wallMs - killedAt);
    if (crashedAt !== undefined) {
      const promos = await until(`promotions of ${node}'s workloads`, STEP_TIMEOUT_MS, () => {
        const got = rig.watch.received.slice(received).filter((r) =>
          !r.retained && r.promotion.failedNode === node
        );
        return Promise.resolve(got.length >= WORKLOADS.length ? got : undefined);
      });
      sample.faultToPromotionReceivedMs = round(
        Math.max(...promos.map((p) => p.wallMs)) - crashedAt,
      );
      sample.issuers = [...new Set(promos.map((p) => p.promotion.issuer))];
      const sent = survivor.lines.filter((l) =>
        l.event === "promotion-sent" && l.wallMs > crashedAt!
      );
      if (sent.length > 0) {
        const lastSent = Math.max(...sent.map((l) => l.wallMs));
        sample.faultToPromotionSentMs = round(lastSent - crashedAt);
        sample.leaderToPromotionSentMs = round(lastSent - elected.wallMs);
      }
      const expired = survivor.lines.find((l) =>
        l.event === "expired" && l.target === `node/${node}` && l.wallMs > crashedAt!
      );
      if (expired) {
        sample.faultToExpiryMs = round(wallOf(expired, Number(expired.expiredAtMs)) - crashedAt);
      }
    }
  } catch (error) {
    const blocked = survivor.lines.find((l) =>
      l.event === "failover-blocked" && l.wallMs > killedAt
    );
    sample.error = blocked
      ? `failover blocked on ${survivorId}: ${blocked.why}`
      : (error as Error).message.split("\n")[0];
  }
  await repair(rig, sups, start, survivor, sample.error !== undefined || kind === "fault");
  if (sample.error !== undefined) {
    // a failed repetition may leave a stale view in the standby: start it afresh
    const standbyId = IDS.find((id) => id !== survivorId)!;
    await sups.procs.get(standbyId)?.stop();
    sups.procs.delete(standbyId);
    await start(standbyId);
  }
  return sample;
}

/**
 * Back to two warm instances and full redundancy: restarts crashed nodes and missing supervisors,
 * then (after a fault) waits until no node is fenced or cordoned, every Deployment has a Ready pod
 * on its node and the leader sees every target OK.
 * @throws Error when redundancy is not back within the step timeout.
 */
async function repair(
  rig: Rig,
  sups: Supervisors,
  start: (id: string) => Promise<SupervisorProcess>,
  leader: SupervisorProcess,
  faulted: boolean,
): Promise<void> {
  const restarts: Promise<unknown>[] = [];
  for (const node of NODES) {
    if (!rig.nodes.get(node)?.running) {
      restarts.push(rig.cp.restartNode(node), rig.startNode(node));
    }
  }
  for (const id of IDS) if (!sups.procs.has(id)) restarts.push(start(id));
  await Promise.all(restarts);
  if (!faulted) return;
  const since = wallNow();
  const unfenceRequested = new Set<string>();
  await until("redundancy restored", STEP_TIMEOUT_MS, async () => {
    const state = new Map<string, string>();
    for (const l of leader.lines) {
      if (l.event === "expired") state.set(String(l.target), "EXPIRED");
      else if (l.event === "transition") state.set(String(l.target), String(l.to));
    }
    if ([...state.values()].some((s) => s !== "OK")) return undefined;
    const nodes = await rig.admin.core.listNode();
    const fenced = nodes.items.filter((n) =>
      n.spec?.unschedulable || (n.spec?.taints ?? []).some((t) => t.key === TAINT_KEY)
    );
    // every target OK but a fence still there after a while: a stale fence (a failed
    // repetition); lift it as an operator would (`sdv-failover unfence`)
    for (const n of fenced) {
      const name = n.metadata!.name!;
      if (wallNow() - since > STALE_FENCE_MS && !unfenceRequested.has(name)) {
        unfenceRequested.add(name);
        rig.log(`  ${name} still fenced with every target OK: unfence requested`);
        await rig.admin.core.patchNode({
          name,
          body: {
            metadata: {
              annotations: { "sdv-failover.io/unfence-requested": new Date().toISOString() },
            },
          },
        }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
      }
    }
    if (fenced.length > 0) return undefined;
    const pods = await rig.admin.core.listNamespacedPod({ namespace: NS });
    const ready = PLACEMENTS.every(([name, node]) =>
      pods.items.some((p) =>
        p.metadata?.labels?.app === name && p.spec?.nodeName === node &&
        !p.metadata?.deletionTimestamp && p.status?.phase === "Running" &&
        (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
      )
    );
    return ready ? true : undefined;
  });
}

const round = (ms: number) => Math.round(ms * 10) / 10;
