/**
 * The origin's algorithm as a baseline (see `origin_master.ts`): one repetition of one scenario,
 * with the same simulated vehicle on the origin's timing (config/example.yaml: 30 Hz heartbeats
 * gated on a camera frame within 150 ms) and the same fault, measured the same way as ours.
 *
 * The origin watches node heartbeats only: a lidar loss or an app hang is not detected (checked for
 * a bounded window, then reported as such). It neither cordons nor taints, so the replacement of a
 * deleted pod is scheduled back onto the failed node (it still looks Ready to Kubernetes for ≈ 50
 * s) and does not run there: reported as "stranded on the failed node".
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { spawnJson } from "../child.ts";
import { type BenchContext, label, r3, sleep } from "../context.ts";
import type { Sample } from "../results.ts";
import { runtimeConfig, runtimeTopology } from "../runtime_config.ts";
import { scenario, type ScenarioName } from "../scenarios.ts";
import {
  cleanupWorkloads,
  nodeHealthy,
  replacementPod,
  resetNode,
  setupWorkloads,
  strandedPod,
} from "../workloads.ts";

const MASTER = fileURLToPath(new URL("./origin_master.ts", import.meta.url));
/** After the origin's deletions: how long to wait for a replacement to run or be stranded. */
const REPLACEMENT_BOUND_MS = 5_000;
/** For faults the origin cannot see: how long to watch for a reaction. */
const UNSEEN_WINDOW_MS = 2_000;

/** Runs one repetition of the origin baseline; never throws for a failed measurement. */
export async function runOriginRep(
  ctx: BenchContext,
  scenarioName: ScenarioName,
  rep: number,
): Promise<Sample> {
  const victim = ctx.nodes.victim;
  const ns = label("og", scenarioName, rep);
  const raw = runtimeConfig("example", {
    brokerUrl: ctx.brokerUrl,
    topicPrefix: ns,
    kubeconfig: ctx.cp.runtimeKubeconfigPath,
    namespace: ns,
  });
  const topology = runtimeTopology(raw);
  const sc = scenario(scenarioName, topology);
  const sample: Sample = { mode: "origin", scenario: sc.name, rep, detected: false, notes: [] };
  await setupWorkloads(ctx.api, ctx.observer, ns, ctx.nodes, topology);
  const periodMs = topology.node(victim)!.periodMs;
  const master = spawnJson(Deno.execPath(), [
    "run",
    "--allow-all",
    MASTER,
    ctx.brokerUrl,
    ns,
    ctx.cp.runtimeKubeconfigPath,
    ns,
  ]);
  let killed: Promise<void> | undefined;
  let run: ReturnType<BenchContext["publisher"]["run"]> | undefined;
  try {
    const ready = await master.waitFor((l) => l.event === "ready", 30_000, "origin master ready");
    const graceLeftMs = Math.max(
      0,
      Number(ready.graceEndsWallMs) - performance.timeOrigin -
        performance.now(),
    );
    const offsetMs = graceLeftMs + 500 + ctx.random() * periodMs;
    run = ctx.publisher.run(raw, [`${sc.faultSpec}@${offsetMs.toFixed(3)}ms`], () => {
      if (sc.killsNode) killed = ctx.cp.killNode(victim);
    });
    const fault = await Promise.race([
      run.fault,
      sleep(offsetMs + 10_000).then(() => undefined),
    ]);
    if (!fault) {
      sample.notes.push("fault not applied");
      return sample;
    }
    const faultWall = fault.wallTimeMs;
    sample.faultWallMs = r3(faultWall);

    const expired = await master.waitFor((l) => l.event === "expired", UNSEEN_WINDOW_MS, "expiry")
      .catch(() => undefined);
    if (!expired) {
      sample.notes.push(
        `not detected: the origin supervises node heartbeats only (watched ${UNSEEN_WINDOW_MS} ms)`,
      );
      return sample;
    }
    if (expired.node !== victim) sample.notes.push(`expired ${expired.node}, not ${victim}`);
    sample.detected = true;
    sample.target = `node/${expired.node}`;
    sample.cause = "deadline";
    const expiryWall = Number(expired.wallMs);
    sample.silenceMs = r3(Number(expired.silenceMs));
    sample.latenessMs = r3(Number(expired.silenceMs) - 300);
    sample.faultToDetectionMs = r3(expiryWall - faultWall);
    const deleted = await master.waitFor((l) => l.event === "deleted", 15_000, "deletions")
      .catch(() => undefined);
    if (!deleted) {
      sample.notes.push("deletions not acknowledged within 15 s");
      return sample;
    }
    sample.expiryToActionsMs = r3(Number(deleted.wallMs) - expiryWall);
    sample.expiryToDoneMs = sample.expiryToActionsMs;
    sample.faultToActionsMs = r3(Number(deleted.wallMs) - faultWall);
    sample.notes.push("no promotion: the origin's standbys always run, nothing is switched");

    const settled = () =>
      sc.workloads.every((w) =>
        replacementPod(ctx.observer, ns, w, faultWall, victim) ||
        strandedPod(ctx.observer, ns, w, faultWall, victim)
      );
    await ctx.observer.until(settled, REPLACEMENT_BOUND_MS);
    const replacements = sc.workloads.map((w) =>
      replacementPod(ctx.observer, ns, w, faultWall, victim)
    );
    if (replacements.every((p) => p)) {
      sample.faultToReplacementRunningMs = r3(
        Math.max(...replacements.map((p) => p!.runningWallMs!)) - faultWall,
      );
      sample.replacementNodes = replacements.map((p) => p!.node!);
    } else if (sc.workloads.some((w) => strandedPod(ctx.observer, ns, w, faultWall, victim))) {
      sample.notes.push(
        `replacement stranded on ${victim}: not cordoned, it still looks Ready to Kubernetes`,
      );
    } else sample.notes.push(`no replacement Running within ${REPLACEMENT_BOUND_MS} ms`);
    return sample;
  } finally {
    await master.stop();
    if (run) await run.stop().catch((e) => sample.notes.push(String(e)));
    await killed;
    if (sc.killsNode) await ctx.cp.restartNode(victim);
    await cleanupWorkloads(ctx.api, ns);
    for (const node of ctx.nodes.all) {
      await resetNode(ctx.api, node);
      if (!(await nodeHealthy(ctx.observer, node, 60_000))) {
        sample.notes.push(`${node} not healthy 60 s after the repetition`);
      }
    }
  }
}
