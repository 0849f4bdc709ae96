/**
 * Our runtime: one repetition of one scenario with a shipped config (fast.yaml or example.yaml).
 *
 * Fresh namespace and topic prefix; the supervisor (`main.ts run`) as its own process under its
 * least-privilege identity; the simulated vehicle (the real node agents of lib/publisher) on a
 * worker thread; the fault at a random phase of the heartbeat period; for node faults the node's
 * kwok is SIGKILLed at the same moment (the node lost power, as the control plane sees it). The
 * repetition ends when every affected workload's promotion was received, the runtime reported its
 * API actions, and every replacement pod runs — or after a bound.
 *
 * @module
 */
import { type LogLine, startSupervisor } from "../../tests/harness/supervisor_process.ts";
import { type BenchContext, label, r3, sleep } from "../context.ts";
import { wallNow } from "../kube_api.ts";
import type { ModeName, Sample } from "../results.ts";
import type { Workload } from "../../lib/topology/topology.ts";
import { type ConfigName, runtimeConfig, runtimeTopology, writeConfig } from "../runtime_config.ts";
import { scenario, type ScenarioName } from "../scenarios.ts";
import {
  cleanupWorkloads,
  nodeHealthy,
  replacementPod,
  resetNode,
  setupWorkloads,
} from "../workloads.ts";

/** How long a repetition may take from the fault to its last expected outcome. */
const OUTCOME_BOUND_MS = 15_000;
/** The fault comes this long after the publisher started, plus a random phase of one period. */
const FAULT_BASE_MS = 700;

/** Runs one repetition; never throws for a failed measurement (the sample carries notes). */
export async function runOursRep(
  ctx: BenchContext,
  config: ConfigName,
  scenarioName: ScenarioName,
  rep: number,
): Promise<Sample> {
  const mode: ModeName = config === "fast" ? "ours-fast" : "ours-example";
  const victim = ctx.nodes.victim;
  const ns = label(config === "fast" ? "of" : "oe", scenarioName, rep);
  const raw = runtimeConfig(config, {
    brokerUrl: ctx.brokerUrl,
    topicPrefix: ns,
    kubeconfig: ctx.cp.runtimeKubeconfigPath,
    namespace: ns,
  });
  const topology = runtimeTopology(raw);
  const sc = scenario(scenarioName, topology);
  const sample: Sample = { mode, scenario: sc.name, rep, detected: false, notes: [] };

  await setupWorkloads(ctx.api, ctx.observer, ns, ctx.nodes, topology);
  const cfgPath = writeConfig(ctx.dir, `${ns}.yaml`, raw);
  const victimNode = topology.node(victim)!;
  const periodMs = victimNode.periodMs;

  const spawnedWall = wallNow();
  const sup = await startSupervisor(cfgPath);
  let killed: Promise<void> | undefined;
  let run: ReturnType<BenchContext["publisher"]["run"]> | undefined;
  try {
    const armed = sup.lines.find((l) => l.event === "armed")!;
    sample.spawnToArmedMs = r3(armed.wallMs - spawnedWall);
    sample.processArmedMs = r3(armed.tMs);
    // The executor (client-node) loads and the cluster state is read after arming; the fault
    // comes once the runtime is fully up.
    await sup.waitFor((l) => l.event === "running", 30_000, "running");

    const offsetMs = FAULT_BASE_MS + ctx.random() * periodMs;
    const windowStartWall = wallNow();
    run = ctx.publisher.run(raw, [`${sc.faultSpec}@${offsetMs.toFixed(3)}ms`], () => {
      if (sc.killsNode) killed = ctx.cp.killNode(victim);
    });
    const fault = await Promise.race([run.fault, sleep(10_000).then(() => undefined)]);
    if (!fault) {
      sample.notes.push("fault not applied within 10 s");
      return sample;
    }
    const faultWall = fault.wallTimeMs;
    sample.faultWallMs = r3(faultWall);

    // Targets the fault silences: the scenario's target; for a node fault everything on the node.
    // Log lines name a target by its label.
    const onVictim = new Set(
      [
        victimNode,
        ...victimNode.sensors,
        ...victimNode.placements.flatMap((p) => p.app ? [p.app] : []),
      ].map((t) => t.label),
    );
    const touched = (t: unknown) =>
      t === sc.target.label || (sc.killsNode && onVictim.has(String(t)));
    // The detection: the first expiry of a silenced target (with example.yaml a hung node's camera,
    // 150 ms, expires before the node itself, 300 ms, and triggers the failover).
    const detection = () =>
      sup.lines.find((l) => l.event === "expired" && l.wallMs >= faultWall && touched(l.target));
    const lineFor = (event: string, key: string, value: string) =>
      sup.lines.find((l) => l.event === event && l[key] === value && l.wallMs >= faultWall);
    const promotionOf = (w: Workload) =>
      ctx.promotions.of(ns).find((p) => p.promotion.workload === w.name && p.wallMs >= faultWall);
    const complete = () =>
      detection() !== undefined &&
      sc.workloads.every((w) =>
        promotionOf(w) && lineFor("failover-done", "workload", w.name) &&
        replacementPod(ctx.observer, ns, w, faultWall, sc.fencesNode ? victim : undefined)
      ) &&
      (!sc.fencesNode || lineFor("node-fence-done", "node", victim) !== undefined);
    const deadline = performance.now() + OUTCOME_BOUND_MS;
    while (!complete() && performance.now() < deadline) await sleep(20);
    if (!complete()) sample.notes.push(`not complete ${OUTCOME_BOUND_MS / 1000} s after the fault`);

    // ---- derive the sample ------------------------------------------------------------------
    const spurious = sup.lines.filter((l) =>
      l.event === "expired" && (l.wallMs < faultWall || !touched(l.target))
    );
    const stalls = [...ctx.publisher.stalls, ...ctx.promotions.stalls, ...ctx.stalls].filter((x) =>
      x.wallMs >= windowStartWall
    );
    if (stalls.length) {
      sample.stalls = stalls.map((x) => ({
        what: x.what,
        ms: r3(x.ms)!,
        atMs: r3(x.wallMs - faultWall)!,
      }));
    }
    if (spurious.length) {
      sample.spuriousExpiries = spurious.map((l) => String(l.target));
      // Was the silence the simulator's or the broker's? Stalls overlapping the silence.
      const first = spurious[0];
      const silentFrom = toWallOf(first, Number(first.lastHeartbeatAtMs));
      const silentTo = toWallOf(first, Number(first.expiredAtMs ?? first.tMs));
      const why = stalls.filter((x) => x.wallMs <= silentTo && x.wallMs + x.ms >= silentFrom)
        .map((x) => `${x.what} stalled ${x.ms.toFixed(0)} ms`);
      sample.notes.push(
        `expiry of a healthy target (${
          why.length ? why.join(", ") : "no simulator or broker stall seen"
        }): ` +
          sample.spuriousExpiries.join(", "),
      );
    }
    const e = detection();
    if (!e) {
      sample.notes.push(`no expiry of ${sc.target.label}`);
      return sample;
    }
    sample.detected = true;
    // Both clocks of the supervisor: tMs (monotonic) and wallMs = timeOrigin + tMs.
    const expiredAt = Number(e.expiredAtMs ?? e.tMs);
    const toWall = (tMs: number) => e.wallMs - e.tMs + tMs;
    const expiryWall = toWall(expiredAt);
    sample.target = String(e.target);
    sample.cause = String(e.cause);
    sample.silenceMs = num(e.silenceMs);
    sample.latenessMs = e.cause === "deadline" ? num(e.latenessMs) : undefined;
    sample.faultToDetectionMs = r3(expiryWall - faultWall);

    const promos = sc.workloads.map(promotionOf);
    const sent = sc.workloads.map((w) => lineFor("promotion-sent", "workload", w.name));
    if (promos.every((p) => p)) {
      const last = Math.max(...promos.map((p) => p!.wallMs));
      sample.expiryToPromotionReceivedMs = r3(last - expiryWall);
      sample.faultToPromotionReceivedMs = r3(last - faultWall);
      for (const p of promos) {
        if (p!.promotion.activeNode !== ctx.nodes.standby || p!.promotion.failedNode !== victim) {
          sample.notes.push(`unexpected promotion ${JSON.stringify(p!.promotion)}`);
        }
      }
    } else sample.notes.push("promotion not received for every affected workload");
    if (sent.every((l) => l)) {
      // promotion-sent is logged right after the publish; expiryToPromotionMs, when the line has
      // it, is from the line's own trigger; without it the line's own time is the bound.
      const sentAt = (l: LogLine) => {
        const fromTrigger = num(l.expiryToPromotionMs);
        const triggerAt = num(l.expiredAtMs);
        return fromTrigger !== undefined && triggerAt !== undefined
          ? triggerAt + fromTrigger
          : l.tMs;
      };
      sample.expiryToPromotionSentMs = r3(Math.max(...sent.map((l) => sentAt(l!))) - expiredAt);
    }
    const doneLines: (LogLine | undefined)[] = sc.workloads.map((w) =>
      lineFor("failover-done", "workload", w.name)
    );
    if (sc.fencesNode) doneLines.push(lineFor("node-fence-done", "node", victim));
    if (doneLines.every((l) => l)) {
      // Each line is written when its plan finished (tMs); its API actions proper finished
      // (expiryToDoneMs − expiryToActionsMs) earlier, before the Events that record them.
      const actionsAt = doneLines.map((l) => {
        const all = num(l!.expiryToDoneMs)!;
        return l!.tMs - (all - (num(l!.expiryToActionsMs) ?? all));
      });
      sample.expiryToActionsMs = r3(Math.max(...actionsAt) - expiredAt);
      sample.expiryToDoneMs = r3(Math.max(...doneLines.map((l) => l!.tMs)) - expiredAt);
      sample.faultToActionsMs = r3(toWall(Math.max(...actionsAt)) - faultWall);
      sample.actionMs = {};
      for (const l of doneLines) {
        if (l!.level === "error") sample.notes.push(`${l!.event}: ${JSON.stringify(l!.failures)}`);
        for (const [action, ms] of parseActions(l!.actions)) {
          if (action.startsWith("event:")) continue;
          sample.actionMs[action] = r3(Math.max(sample.actionMs[action] ?? 0, ms))!;
        }
      }
    } else sample.notes.push("API actions not all reported");
    const replacements = sc.workloads.map((w) =>
      replacementPod(ctx.observer, ns, w, faultWall, sc.fencesNode ? victim : undefined)
    );
    if (replacements.every((p) => p)) {
      sample.faultToReplacementRunningMs = r3(
        Math.max(...replacements.map((p) => p!.runningWallMs!)) - faultWall,
      );
      sample.replacementNodes = replacements.map((p) => p!.node!);
    } else sample.notes.push("replacement not Running for every affected workload");
    return sample;
  } finally {
    // Supervisor first: the simulated agents' ordered shutdown publishes `offline`.
    const code = await sup.stop();
    if (code !== 0) sample.notes.push(`supervisor exit code ${code}`);
    if (run) await run.stop().catch((e) => sample.notes.push(String(e)));
    Deno.writeTextFileSync(
      `${ctx.dir}/${ns}.supervisor.log`,
      [...sup.raw, ...sup.lines.map((l) => JSON.stringify(l))].join("\n") + "\n",
    );
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

/**
 * The `actions` field of a done line, `markActive:done@54.6,event:FailoverFenced:done@73.0,…`:
 * action → ms from the start of its plan.
 */
export function parseActions(field: unknown): [string, number][] {
  if (typeof field !== "string" || !field) return [];
  return field.split(",").flatMap((part) => {
    const at = part.lastIndexOf("@");
    const colon = part.lastIndexOf(":", at);
    if (at < 0 || colon < 0) return [];
    const ms = Number(part.slice(at + 1));
    return Number.isFinite(ms) ? [[part.slice(0, colon), ms] as [string, number]] : [];
  });
}

/** Wall-clock ms of a supervisor monotonic time, via a line's tMs/wallMs pair. */
function toWallOf(line: LogLine, tMs: number): number {
  return line.wallMs - line.tMs + tMs;
}

function num(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}
