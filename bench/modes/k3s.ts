/**
 * K3s's own failover, measured on the same control plane parts K3s embeds: a node loses power
 * (its kwok is SIGKILLed, so its Lease stops) at a random phase of its Lease renewal cycle; the
 * node-lifecycle controller marks it Ready=Unknown after `node-monitor-grace-period` and taints it
 * `node.kubernetes.io/unreachable:NoExecute`; the taint-eviction controller evicts its pods after
 * their `tolerationSeconds` (300 s by default, added by the DefaultTolerationSeconds admission
 * plugin); the ReplicaSet replaces them and the scheduler places the replacements on a healthy node.
 *
 * Each transition is stamped with the bench's receipt time of the watch event. Sensor and app
 * faults exist only on MQTT: K3s has no signal of them (reported, not run).
 *
 * @module
 */
import type { ControlPlaneSettings } from "../../tests/harness/control_plane.ts";
import { type BenchContext, label, r3, sleep } from "../context.ts";
import { wallNow } from "../kube_api.ts";
import type { ModeName, Sample } from "../results.ts";
import { shippedTopology } from "../runtime_config.ts";
import { scenario, type ScenarioName } from "../scenarios.ts";
import {
  cleanupWorkloads,
  nodeHealthy,
  replacementPod,
  resetNode,
  setupWorkloads,
} from "../workloads.ts";

/**
 * K3s tuned as far as its own flags go. The kubelet (kwok) renews every lease/4; the grace period
 * must survive a late renewal or two on a loaded server, so it is 4 renewal intervals; the node
 * monitor looks every second; the DefaultTolerationSeconds plugin gives 0 s tolerations.
 */
export const K3S_TUNED = {
  nodeLeaseDurationS: 4,
  nodeMonitorPeriodS: 1,
  nodeMonitorGracePeriodS: 4,
  defaultNotReadyTolerationS: 0,
  defaultUnreachableTolerationS: 0,
} as const;

const UNREACHABLE_NOEXECUTE = "node.kubernetes.io/unreachable:NoExecute";

/**
 * The node-lifecycle controller taints unreachable nodes through a token bucket of
 * `--node-eviction-rate` (0.1 nodes/s, burst 1): a node failing within 10 s of the previous one
 * waits for a token. One failure after a quiet period is what is measured, so repetitions keep
 * this distance from the previous taint.
 */
const TAINT_TOKEN_GAP_MS = 11_000;

/** Shared across the repetitions on one control plane. */
export interface K3sPacer {
  lastTaintWallMs: number;
}

/** A K3s-mode sample for a fault K3s cannot see (not run). */
export function k3sBlindSample(mode: ModeName, scenarioName: ScenarioName): Sample {
  return {
    mode,
    scenario: scenarioName,
    rep: 1,
    detected: false,
    notes: [
      "not detected: the fault exists only on MQTT (sensor frames, app heartbeats); " +
      "K3s has no signal of it (not run)",
    ],
  };
}

/**
 * One node-power-loss repetition. `progress` is called about every 30 s while waiting (the default
 * settings take ≈ 6 min).
 */
export async function runK3sRep(
  ctx: BenchContext,
  mode: "k3s-tuned" | "k3s-default",
  scenarioName: ScenarioName,
  rep: number,
  settings: ControlPlaneSettings,
  progress: (what: string) => void = () => {},
  pacer: K3sPacer = { lastTaintWallMs: 0 },
): Promise<Sample> {
  const topology = shippedTopology();
  const sc = scenario(scenarioName, topology);
  if (!sc.killsNode) return k3sBlindSample(mode, scenarioName);
  const victim = ctx.nodes.victim;
  const ns = label(mode === "k3s-tuned" ? "kt" : "kd", sc.name, rep);
  const sample: Sample = { mode, scenario: sc.name, rep, detected: false, notes: [] };
  await setupWorkloads(ctx.api, ctx.observer, ns, ctx.nodes, topology);
  const primaries = new Set(topology.workloads.map((w) => w.primary.deployment));
  const originals = ctx.observer.podsOf(ns).filter((p) =>
    primaries.has(p.app) && p.node === victim && p.deletionWallMs === undefined
  );
  const renewMs = settings.leaseRenewIntervalS * 1000;
  let killed: Promise<void> | undefined;
  try {
    const gapMs = pacer.lastTaintWallMs + TAINT_TOKEN_GAP_MS - wallNow();
    if (gapMs > 0) await sleep(gapMs);
    // A random phase of the renewal cycle: wait for a renewal, then a uniform fraction of one.
    const since = wallNow();
    const renewed = await ctx.observer.until(
      () => (ctx.observer.leases.get(victim)?.at(-1)?.wallMs ?? 0) > since,
      renewMs * 2 + 5_000,
    );
    if (!renewed) sample.notes.push(`no Lease renewal of ${victim} seen before the fault`);
    await sleep(ctx.random() * renewMs);
    const faultWall = wallNow();
    killed = ctx.cp.killNode(victim);
    sample.faultWallMs = r3(faultWall);
    const last = ctx.observer.lastRenewalBefore(victim, faultWall);
    if (last) sample.leasePhaseS = r3((faultWall - last.renewMs) / 1000);

    const notReady = () =>
      ctx.observer.firstNodeSample(victim, faultWall, (s) => s.ready === "Unknown");
    const taint = () =>
      ctx.observer.firstNodeSample(
        victim,
        faultWall,
        (s) => s.taints.includes(UNREACHABLE_NOEXECUTE),
      );
    const evicted = () => originals.every((p) => p.deletionWallMs !== undefined);
    const replaced = () =>
      sc.workloads.map((w) => replacementPod(ctx.observer, ns, w, faultWall, victim));
    const done = () => !!notReady() && !!taint() && evicted() && replaced().every((p) => p);
    const boundMs = (settings.nodeMonitorGracePeriodS + settings.defaultUnreachableTolerationS +
      90) * 1000;
    const t0 = performance.now();
    while (!done() && performance.now() - t0 < boundMs) {
      await ctx.observer.until(done, 30_000);
      if (!done()) {
        const stage = !notReady()
          ? "NotReady"
          : !taint()
          ? "taint"
          : !evicted()
          ? "eviction"
          : "replacement";
        progress(
          `${mode} ${sc.name}: t+${
            ((wallNow() - faultWall) / 1000).toFixed(0)
          } s, waiting for ${stage}`,
        );
      }
    }
    const nr = notReady();
    if (nr) {
      sample.detected = true;
      sample.faultToNotReadyMs = r3(nr.wallMs - faultWall);
      sample.faultToDetectionMs = sample.faultToNotReadyMs;
    } else sample.notes.push("never NotReady");
    const tt = taint();
    if (tt) {
      sample.faultToTaintMs = r3(tt.wallMs - faultWall);
      pacer.lastTaintWallMs = tt.wallMs;
    }
    if (evicted() && originals.length) {
      sample.faultToEvictionMs = r3(
        Math.max(...originals.map((p) => p.deletionWallMs!)) - faultWall,
      );
    } else sample.notes.push("pods not evicted within the bound");
    const reps = replaced();
    if (reps.every((p) => p)) {
      sample.faultToReplacementRunningMs = r3(
        Math.max(...reps.map((p) => p!.runningWallMs!)) - faultWall,
      );
      sample.replacementNodes = reps.map((p) => p!.node!);
    } else sample.notes.push("replacement not Running within the bound");
    // Other nodes must have stayed Ready (a flapping grace period would show here).
    for (const node of ctx.nodes.all.filter((n) => n !== victim)) {
      if (ctx.observer.firstNodeSample(node, faultWall, (s) => s.ready !== "True")) {
        sample.notes.push(`healthy node ${node} went NotReady during the repetition`);
      }
    }
    return sample;
  } finally {
    await killed;
    await ctx.cp.restartNode(victim);
    await cleanupWorkloads(ctx.api, ns);
    for (const node of ctx.nodes.all) {
      await resetNode(ctx.api, node);
      if (!(await nodeHealthy(ctx.observer, node, 120_000))) {
        sample.notes.push(`${node} not healthy 120 s after the repetition`);
      }
    }
  }
}
