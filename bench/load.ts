/**
 * Load test: N supervised targets at 50 Hz through mosquitto into the runtime (`run --dry-run` on a
 * generated config: N/100 nodes and the rest sensors, every one with a 20 ms period and a 60 ms
 * timeout — three periods, as config/fast.yaml). Measures ingest rate, deadlines missed, detection
 * lateness (from deliberate pauses of random targets), CPU and RSS of the runtime, and spawn →
 * armed; then searches the largest N with no deadline missed (doubling, then bisection).
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { startSupervisor } from "../tests/harness/supervisor_process.ts";
import { spawnJson } from "./child.ts";
import { r3, sleep } from "./context.ts";
import { wallNow } from "./kube_api.ts";
import type { LoadPublisherConfig } from "./load_publisher.ts";
import { cpuSeconds, findPids, rssMb } from "./machine.ts";
import { VEHICLE_NICE } from "./priority.ts";
import type { LoadResult, LoadRun } from "./results.ts";
import { runtimeTopology, writeConfig } from "./runtime_config.ts";
import { summarize } from "./stats.ts";

const LOAD_PUBLISHER = fileURLToPath(new URL("./load_publisher.ts", import.meta.url));
export const LOAD_PERIOD_MS = 20;
export const LOAD_TIMEOUT_MS = 60;
/** A pause lasts well past the timeout and its confirmation. */
const PAUSE_MS = 150;
/** The config's recovery window (1000 ms) plus margin, before a target may be paused again. */
const PAUSE_GAP_MS = 1500;
/** The publisher keeps its schedule when its lag p99 stays below this (ms). */
const PUBLISHER_LAG_LIMIT_MS = (LOAD_TIMEOUT_MS - LOAD_PERIOD_MS) / 2;

/** Options of one load run. */
export interface LoadRunOptions {
  targets: number;
  durationS: number;
  brokerUrl: string;
  dir: string;
  seed: number;
  /** Called with a progress line now and then. */
  progress?: (line: string) => void;
}

/** The generated config: `targets` targets in total, ≈ 1 node per 100. */
export function loadConfig(targets: number, brokerUrl: string, prefix: string) {
  const nodeCount = Math.max(1, Math.floor(targets / 100));
  const sensorCount = Math.max(0, targets - nodeCount);
  const nodes = Array.from({ length: nodeCount }, (_, i) => ({
    name: `load-node-${i}`,
    heartbeatPeriodMs: LOAD_PERIOD_MS,
    heartbeatTimeoutMs: LOAD_TIMEOUT_MS,
  }));
  const sensors = Array.from({ length: sensorCount }, (_, i) => ({
    name: `load-s-${i}`,
    node: nodes[i % nodeCount].name,
    periodMs: LOAD_PERIOD_MS,
    timeoutMs: LOAD_TIMEOUT_MS,
  }));
  return {
    supervisor: {
      id: "load",
      bootWindowMs: 2000,
      recoveryWindowMs: 1000,
      statsIntervalMs: 1000,
    },
    mqtt: { url: brokerUrl, topicPrefix: prefix, clientId: `sdv-failover-${prefix}` },
    cluster: { kubeconfig: "/nonexistent (dry run)" },
    nodes,
    sensors,
  };
}

/** Every target of a generated config: its topic and its label (as the supervisor logs it). */
function topicsOf(raw: ReturnType<typeof loadConfig>): { topic: string; target: string }[] {
  return runtimeTopology(raw).targets.map((t) => ({ topic: t.topic, target: t.label }));
}

/** One load run of `targets` targets. */
export async function runLoad(opts: LoadRunOptions): Promise<LoadRun> {
  const prefix = `load-${opts.targets}-${opts.seed}`;
  const raw = loadConfig(opts.targets, opts.brokerUrl, prefix);
  const cfgPath = writeConfig(opts.dir, `${prefix}.yaml`, raw);
  const topics = topicsOf(raw);
  const targetOfTopic = new Map(topics.map((t) => [t.topic, t.target]));
  const url = new URL(opts.brokerUrl);
  const durationMs = opts.durationS * 1000;
  const pubCfg: LoadPublisherConfig = {
    host: url.hostname,
    port: Number(url.port),
    topics: topics.map((t) => t.topic),
    periodMs: LOAD_PERIOD_MS,
    slots: 10,
    connections: Math.min(8, Math.max(2, Math.ceil(opts.targets / 500))),
    durationMs: durationMs + 60_000, // ended by SIGTERM after the supervisor
    pauseStartMs: Math.min(3000, durationMs * 0.3),
    pauseEndMs: durationMs - Math.min(1000, durationMs * 0.15),
    // ≤ 50 pauses/s, and few enough that a target is not needed again within its gap
    pauseEveryMs: Math.max(20, Math.ceil((PAUSE_MS + PAUSE_GAP_MS) * 4 / opts.targets)),
    pauseMs: PAUSE_MS,
    pauseGapMs: PAUSE_GAP_MS,
    seed: opts.seed,
  };
  const pubCfgPath = `${opts.dir}/${prefix}.publisher.json`;
  Deno.writeTextFileSync(pubCfgPath, JSON.stringify(pubCfg));

  const spawnedWall = wallNow();
  const sup = await startSupervisor(cfgPath, { dryRun: true });
  const armed = sup.lines.find((l) => l.event === "armed")!;
  const supPid = findPids(cfgPath).find((pid) => cpuSeconds(pid) !== undefined);
  const brokerPid = findPids(`mosquitto-${url.port}.conf`)[0];
  const pub = spawnJson("nice", [
    "-n",
    String(VEHICLE_NICE),
    Deno.execPath(),
    "run",
    "--allow-all",
    LOAD_PUBLISHER,
    pubCfgPath,
  ]);
  try {
    const ready = await pub.waitFor((l) => l.event === "ready", 30_000, "load publisher ready");
    // `nice` execs deno: the child is the publisher itself.
    const pubPid = pub.pid;
    const startWall = Number(ready.wallMs);
    // ---- steady window: from 2 s after the start to the end --------------------------------
    const rss: number[] = [];
    const warmupMs = Math.min(2000, durationMs / 4);
    await sleep(warmupMs);
    const pids = [supPid, brokerPid, pubPid].filter((p): p is number => p !== undefined);
    const cpu0 = new Map(pids.map((pid) => [pid, cpuSeconds(pid)]));
    const w0 = performance.now();
    let lastReportS = -1;
    while (performance.now() - w0 < durationMs - warmupMs) {
      await sleep(500);
      const r = supPid ? rssMb(supPid) : undefined;
      if (r !== undefined) rss.push(r);
      const elapsedS = Math.floor((performance.now() - w0 + warmupMs) / 1000);
      if (elapsedS % 5 === 0 && elapsedS !== lastReportS) {
        lastReportS = elapsedS;
        opts.progress?.(`load ${opts.targets} targets: ${elapsedS}/${opts.durationS} s`);
      }
    }
    const windowS = (performance.now() - w0) / 1000;
    const pct = (pid: number | undefined) => {
      const before = pid === undefined ? undefined : cpu0.get(pid);
      const after = pid === undefined ? undefined : cpuSeconds(pid);
      return before === undefined || after === undefined
        ? undefined
        : ((after - before) / windowS) * 100;
    };
    const cpu = { sup: pct(supPid), broker: pct(brokerPid), pub: pct(pubPid) };
    const endWall = wallNow();
    // Supervisor first: a publisher that stops first makes every target expire.
    await sup.stop();
    await pub.stop();

    // ---- analysis ---------------------------------------------------------------------------
    const pauses = pub.lines.filter((l) => l.event === "pause").map((l) => ({
      target: targetOfTopic.get(String(l.target))!,
      start: Number(l.startWallMs),
      resume: Number(l.resumeWallMs),
      expiry: undefined as number | undefined,
    }));
    const expiries = sup.lines.filter((l) =>
      l.event === "expired" || (l.event === "transition" && l.to === "EXPIRED")
    );
    const lateness: number[] = [];
    const silence: number[] = [];
    const missed: string[] = [];
    for (const e of expiries) {
      const at = e.wallMs - e.tMs + Number(e.expiredAtMs ?? e.tMs);
      const pause = pauses.find((p) =>
        p.target === e.target && p.expiry === undefined && at >= p.start &&
        at <= p.resume + LOAD_TIMEOUT_MS + 500
      );
      if (pause && e.event === "expired") {
        pause.expiry = at;
        lateness.push(Number(e.latenessMs));
        silence.push(Number(e.silenceMs));
      } else missed.push(`${e.target}@${((at - startWall) / 1000).toFixed(2)}s`);
    }
    const stats = sup.lines.filter((l) =>
      l.event === "stats" && l.wallMs > startWall + warmupMs && l.wallMs <= endWall
    );
    const ingestSeries = stats.map((l) => Number(l.messagesPerS));
    const pubStats = pub.lines.filter((l) =>
      l.event === "stats" && Number(l.wallMs) > startWall + warmupMs && Number(l.wallMs) <= endWall
    );
    const sentSeries = pubStats.map((l) => Number(l.sentPerS));
    const med = (xs: number[]) => summarize(xs)?.p50 ?? 0;
    const stopped = sup.lines.find((l) => l.event === "stopped");
    const lagP99 = Math.max(0, ...pubStats.map((l) => Number(l.lagP99Ms)));
    const lagMax = Math.max(0, ...pubStats.map((l) => Number(l.lagMaxMs)));
    const run: LoadRun = {
      targets: opts.targets,
      durationS: opts.durationS,
      sentPerS: med(sentSeries),
      ingestPerS: med(ingestSeries),
      ingestSeries,
      deadlinesMissed: missed.length,
      missedTargets: missed.slice(0, 20),
      pauses: pauses.length,
      pausesDetected: pauses.filter((p) => p.expiry !== undefined).length,
      lateness: summarize(lateness),
      latenessSamples: lateness.map((x) => r3(x)!),
      silence: summarize(silence),
      cpuPercent: r3(cpu.sup ?? NaN) ?? NaN,
      brokerCpuPercent: r3(cpu.broker),
      publisherCpuPercent: r3(cpu.pub),
      rssMaxMb: r3(Math.max(...rss)) ?? NaN,
      rssEndMb: r3(rss.at(-1)) ?? NaN,
      publisherLagP99Ms: r3(lagP99),
      publisherLagMaxMs: r3(lagMax),
      spawnToArmedMs: r3(armed.wallMs - spawnedWall)!,
      processArmedMs: r3(armed.tMs)!,
      maxTimerLatenessMs: stopped ? r3(Number(stopped.maxTimerLatenessMs)) : undefined,
      lagEvents: stopped ? Number(stopped.lagEvents) : undefined,
      publisherBound: lagP99 > PUBLISHER_LAG_LIMIT_MS,
    };
    Deno.writeTextFileSync(
      `${opts.dir}/${prefix}.supervisor.log`,
      [...sup.raw, ...sup.lines.map((l) => JSON.stringify(l))].join("\n") + "\n",
    );
    return run;
  } finally {
    await sup.stop();
    await pub.stop();
  }
}

/** Options of the search. */
export interface LoadSearchOptions extends Omit<LoadRunOptions, "targets"> {
  start: number;
  max: number;
  /** Stop bisecting when the bracket is this narrow, relative to its lower end. */
  resolution: number;
  /** Upper bound on the number of runs. */
  maxSteps: number;
}

/**
 * Finds the largest target count at which no deadline is missed: doubling from `start` until a run
 * misses a deadline (or `max`), then bisection until the bracket is within `resolution`. A run in
 * which the publisher could not keep its schedule counts as a miss, and the note says so.
 */
export async function searchLoad(opts: LoadSearchOptions): Promise<LoadResult> {
  const runs: LoadRun[] = [];
  const step = async (targets: number) => {
    const r = await runLoad({ ...opts, targets, seed: opts.seed + runs.length });
    runs.push(r);
    opts.progress?.(
      `load search: ${targets} targets → ${r.deadlinesMissed} missed, ` +
        `${Math.round(r.ingestPerS)} /s, lateness p99 ${r.lateness?.p99?.toFixed(2) ?? "—"} ms` +
        (r.publisherBound ? " (publisher could not keep up)" : ""),
    );
    return r.deadlinesMissed === 0 && !r.publisherBound;
  };
  let lo: number | undefined;
  let hi: number | undefined;
  for (let n = opts.start; n <= opts.max && runs.length < opts.maxSteps; n *= 2) {
    if (await step(n)) lo = n;
    else {
      hi = n;
      break;
    }
  }
  if (lo === undefined && hi !== undefined) {
    // Even the start missed: go down.
    for (
      let n = Math.floor(hi / 2);
      n >= 25 && runs.length < opts.maxSteps;
      n = Math.floor(n / 2)
    ) {
      if (await step(n)) {
        lo = n;
        break;
      }
      hi = n;
    }
  }
  while (
    lo !== undefined && hi !== undefined && hi - lo > Math.max(10, lo * opts.resolution) &&
    runs.length < opts.maxSteps
  ) {
    const mid = Math.round((lo + hi) / 2);
    if (await step(mid)) lo = mid;
    else hi = mid;
  }
  const publisherBound = runs.some((r) => r.targets === hi && r.publisherBound);
  const note = hi === undefined
    ? `No deadline missed up to ${lo} targets (the search's upper limit).`
    : lo === undefined
    ? `Deadlines missed even at ${hi} targets.`
    : `Largest count with no deadline missed: ${lo}; ${hi} missed` +
      (publisherBound ? " (there the publisher itself could not keep its schedule)." : ".") +
      ` ${runs.length} runs of ${opts.durationS} s; one run per count, so the bracket is a ` +
      `measurement, not a guarantee.`;
  return { search: runs, maxTargetsNoMiss: lo, minTargetsWithMiss: hi, searchNote: note };
}
