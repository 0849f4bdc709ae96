/**
 * The benchmark run: phases, in order,
 * 1. control plane with K3s's defaults (50 s grace, 40 s Leases renewed every 10 s, 300 s
 *    tolerations): our runtime with config/fast.yaml and config/example.yaml, the origin baseline,
 *    an API write-latency probe; K3s-default's own failover runs meanwhile in the background on a
 *    second set of nodes (≈ 6 min);
 * 2. control plane tuned as far as K3s's flags go: K3s-tuned repetitions;
 * 3. load (broker only): the headline run, a floor run, the search.
 * Then the JSON file, the Markdown report and the plots.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { type ControlPlane, startControlPlane } from "../tests/harness/control_plane.ts";
import { startMosquitto } from "../tests/harness/mosquitto.ts";
import { probeApiWrites } from "./api_probe.ts";
import { ClusterObserver, leaseIntervals } from "./cluster_observer.ts";
import type { BenchContext } from "./context.ts";
import { explainBounds } from "./bounds.ts";
import { KubeApi } from "./kube_api.ts";
import { runLoad, searchLoad } from "./load.ts";
import {
  cpuJiffies,
  findPids,
  loadAverage,
  machineInfo,
  rssMb,
  treeCpuSeconds,
} from "./machine.ts";
import { K3S_TUNED, k3sBlindSample, runK3sRep } from "./modes/k3s.ts";
import { runOriginRep } from "./modes/origin.ts";
import { runOursRep } from "./modes/ours.ts";
import { raiseV8PlatformThreads } from "./priority.ts";
import { type Stall, watchEventLoop } from "./stall_monitor.ts";
import { BENCH_PHASES, type BenchOptions, type BenchPhase } from "./options.ts";
import { renderPlots } from "./plots.ts";
import { Progress } from "./progress.ts";
import { renderReport } from "./report.ts";
import type { BenchResults, LeaseCadence, LoadResult, Sample } from "./results.ts";
import {
  JETSON_NODES,
  K3S_DEFAULT_NODES,
  type NodeSet,
  type ScenarioName,
  SCENARIOS,
} from "./scenarios.ts";
import { seededRandom, summarize } from "./stats.ts";
import { checkGoals, fmtMs } from "./summary.ts";
import { PromotionFeed, SimPublisher } from "./vehicle.ts";

/** Stop a phase after this many repetitions in a row that could not even be set up. */
const MAX_CONSECUTIVE_ERRORS = 5;

/** What {@linkcode runBench} produced. */
export interface BenchOutput {
  results: BenchResults;
  /** Paths written. */
  files: string[];
}

interface Cluster {
  cp: ControlPlane;
  api: KubeApi;
  observer: ClusterObserver;
  stop(): Promise<void>;
}

async function startCluster(
  nodes: string[],
  progress: Progress,
  stoppers: Set<() => Promise<void>>,
  settings: Parameters<typeof startControlPlane>[0] = { nodes },
): Promise<Cluster> {
  const t = performance.now();
  const cp = await startControlPlane({ ...settings, nodes });
  progress.line(
    `control plane up in ${((performance.now() - t) / 1000).toFixed(1)} s (${cp.server})`,
  );
  const api = new KubeApi(cp.adminKubeconfigPath);
  const observer = new ClusterObserver();
  await observer.start(api);
  stoppers.add(cp.stop);
  return {
    cp,
    api,
    observer,
    async stop() {
      stoppers.delete(cp.stop);
      observer.stop();
      api.close();
      await cp.stop();
    },
  };
}

function cadence(c: Cluster, nodes: string[]): LeaseCadence {
  const xs = Object.values(leaseIntervals(c.observer.leases, nodes)).flat();
  return { settings: c.cp.settings, intervals: summarize(xs), samples: xs.length };
}

function short(s: Sample): string {
  if (!s.detected) return s.notes[0] ?? "not detected";
  const parts = [
    s.faultToDetectionMs !== undefined && `detected ${fmtMs(s.faultToDetectionMs)}`,
    s.faultToPromotionReceivedMs !== undefined &&
    `promotion ${fmtMs(s.faultToPromotionReceivedMs)}`,
    s.expiryToActionsMs !== undefined && `API +${fmtMs(s.expiryToActionsMs)}`,
    s.faultToReplacementRunningMs !== undefined &&
    `Running ${fmtMs(s.faultToReplacementRunningMs)}`,
  ].filter(Boolean);
  return parts.join(", ") + (s.notes.length ? ` [${s.notes.join("; ")}]` : "");
}

/** Runs the benchmark and writes `latest.json`, `latest.md` and the SVGs to `opts.out`. */
export async function runBench(
  opts: BenchOptions,
  progress = new Progress(),
): Promise<BenchOutput> {
  const startedAt = new Date();
  const t0 = performance.now();
  const machine = machineInfo();
  const dir = await Deno.makeTempDir({ prefix: "sdv-bench-" });
  const random = seededRandom(opts.seed);
  const samples: Sample[] = [];
  const notes: string[] = [
    ...(opts.keepScratch ? [`Scratch files (configs, supervisor logs) kept in ${dir}.`] : []),
    "The simulated vehicle (node agents, sensors, apps, the promotion subscriber, the load " +
    "publisher) runs at nice −10: on a real cluster it runs on its own boards; here it shares 2 " +
    "cores with the control plane, the broker and the runtime, which keep the default priority.",
    "mosquitto runs with set_tcp_nodelay true (as in the acceptance tests).",
  ];
  const controlPlanes: Record<string, LeaseCadence> = {};
  const phases: BenchResults["phases"] = [];
  let load: LoadResult | undefined;
  let apiProbe: BenchResults["apiProbe"];
  const phase = async (name: string, fn: () => Promise<void>) => {
    const j0 = cpuJiffies();
    const own0 = treeCpuSeconds(Deno.pid);
    const p0 = performance.now();
    progress.line(`== ${name} (load average ${loadAverage().toFixed(2)})`);
    try {
      await fn();
    } finally {
      const j1 = cpuJiffies();
      const own = treeCpuSeconds(Deno.pid) - own0;
      const wallS = (performance.now() - p0) / 1000;
      const busyS = (j1.busy - j0.busy) / 100; // jiffies of all CPUs, USER_HZ per second
      const pct = (x: number) => Math.round((x / (wallS * machine.cpus)) * 1000) / 10;
      const entry = {
        name,
        durationS: Math.round(wallS * 10) / 10,
        cpuBusyPercent: pct(busyS),
        foreignCpuPercent: Math.max(0, pct(busyS - own)),
        loadAvg1m: loadAverage(),
      };
      phases.push(entry);
      progress.line(
        `== ${name} done: machine ${entry.cpuBusyPercent} % busy, of which other work ` +
          `${entry.foreignCpuPercent} %`,
      );
    }
  };
  /** Runs reps, recording a failed setup as a sample; gives up after repeated failures. */
  let consecutiveErrors = 0;
  const guarded = async (
    mode: Sample["mode"],
    scenario: ScenarioName,
    rep: number,
    fn: () => Promise<Sample>,
  ): Promise<Sample> => {
    if (interrupted) await new Promise(() => {}); // the signal handler exits the process
    try {
      const s = await fn();
      consecutiveErrors = 0;
      return s;
    } catch (error) {
      consecutiveErrors++;
      const msg = (error as Error).message;
      progress.line(`   error: ${msg}`);
      if (consecutiveErrors >= MAX_CONSECUTIVE_ERRORS) {
        throw new Error(`${MAX_CONSECUTIVE_ERRORS} repetitions in a row failed; last: ${msg}`);
      }
      return { mode, scenario, rep, detected: false, notes: [`repetition failed: ${msg}`] };
    }
  };

  // Ctrl-C / SIGTERM: stop the control planes and every process started from the scratch dir.
  const stoppers = new Set<() => Promise<void>>();
  let interrupted = false;
  const onSignal = async () => {
    interrupted = true;
    progress.line("interrupted: stopping the control plane, the broker and the runtime processes");
    for (const pid of findPids(dir)) {
      if (pid === Deno.pid) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await Promise.race([
      Promise.allSettled([...stoppers].map((stop) => stop())),
      new Promise((r) => setTimeout(r, 10_000)),
    ]);
    Deno.exit(130);
  };
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, onSignal);
  const v8Threads = await raiseV8PlatformThreads();
  notes.push(
    `V8's ${v8Threads} platform (GC helper) threads of the bench process run at nice −10 too: a ` +
      "vehicle thread's GC pause waits for them.",
  );
  const benchStalls: Stall[] = [];
  const stopStallWatch = watchEventLoop("bench", (x) => benchStalls.push(x));
  const broker = await startMosquitto({ workDir: dir, tcpNoDelay: true });
  const publisher = new SimPublisher();
  const promotions = await PromotionFeed.start(broker.url);
  const ctxOf = (c: Cluster, nodes: NodeSet): BenchContext => ({
    cp: c.cp,
    api: c.api,
    observer: c.observer,
    brokerUrl: broker.url,
    publisher,
    promotions,
    dir,
    random,
    progress,
    nodes,
    stalls: benchStalls,
  });
  try {
    // ---- phase 1: K3s defaults: ours, origin, K3s default in the background ----------------
    if (opts.phases.includes("failover")) {
      await phase("ours and origin on a control plane with K3s defaults", async () => {
        const withDefault = !opts.skipK3sDefault;
        const nodes = [...JETSON_NODES.all, ...(withDefault ? K3S_DEFAULT_NODES.all : [])];
        progress.line(`starting the control plane (K3s defaults; nodes ${nodes.join(", ")})`);
        const c = await startCluster(nodes, progress, stoppers);
        try {
          const ctx = ctxOf(c, JETSON_NODES);
          let k3sDefault: Promise<Sample> | undefined;
          if (withDefault) {
            progress.line("K3s default: node power loss started in the background (≈ 6 min)");
            k3sDefault = runK3sRep(
              ctxOf(c, K3S_DEFAULT_NODES),
              "k3s-default",
              "node-crash",
              1,
              c.cp.settings,
              (l) => progress.line(l),
            ).catch((e) => ({
              mode: "k3s-default" as const,
              scenario: "node-crash" as const,
              rep: 1,
              detected: false,
              notes: [`repetition failed: ${(e as Error).message}`],
            }));
          }
          for (const config of ["fast", "example"] as const) {
            for (let rep = 1; rep <= opts.reps; rep++) {
              for (const sc of SCENARIOS) {
                const what = `ours-${config} ${sc}`;
                const s = await guarded(
                  `ours-${config}`,
                  sc,
                  rep,
                  () => runOursRep(ctx, config, sc, rep),
                );
                samples.push(s);
                progress.rep(what, rep, opts.reps, `→ ${short(s)}`);
              }
            }
          }
          for (let rep = 1; rep <= opts.originReps; rep++) {
            for (const sc of SCENARIOS) {
              // The origin cannot see sensor or app faults: two repetitions show it.
              if (
                (sc === "sensor-loss" || sc === "app-hang") && rep > Math.min(2, opts.originReps)
              ) {
                continue;
              }
              const s = await guarded("origin", sc, rep, () => runOriginRep(ctx, sc, rep));
              samples.push(s);
              progress.rep(`origin ${sc}`, rep, opts.originReps, `→ ${short(s)}`);
            }
          }
          progress.line("probing the API server's write latency");
          apiProbe = await probeApiWrites(c.api, "bench-api-probe").catch((e) => {
            notes.push(`API probe failed: ${(e as Error).message}`);
            return undefined;
          });
          if (k3sDefault) {
            progress.line("waiting for K3s default to finish");
            const s = await k3sDefault;
            progress.rep("k3s-default node power loss", 1, 1, `→ ${short(s)}`);
            samples.push(s, {
              ...s,
              scenario: "node-hang",
              notes: [
                ...s.notes,
                "the node-crash measurement: to K3s a hung and a crashed node are the same fault " +
                "(the kubelet stops renewing the Lease)",
              ],
            });
            samples.push(
              k3sBlindSample("k3s-default", "sensor-loss"),
              k3sBlindSample("k3s-default", "app-hang"),
            );
          }
          controlPlanes.default = cadence(c, nodes);
        } finally {
          await c.stop();
        }
      });
    }

    // ---- phase 2: K3s tuned --------------------------------------------------------------------
    if (opts.tunedReps > 0 && opts.phases.includes("tuned")) {
      await phase("K3s tuned", async () => {
        progress.line(`starting the control plane (K3s tuned: ${JSON.stringify(K3S_TUNED)})`);
        const c = await startCluster(JETSON_NODES.all, progress, stoppers, {
          nodes: JETSON_NODES.all,
          ...K3S_TUNED,
        });
        try {
          const ctx = ctxOf(c, JETSON_NODES);
          const pacer = { lastTaintWallMs: 0 };
          for (let rep = 1; rep <= opts.tunedReps; rep++) {
            for (const sc of ["node-crash", "node-hang"] as const) {
              const s = await guarded(
                "k3s-tuned",
                sc,
                rep,
                () =>
                  runK3sRep(
                    ctx,
                    "k3s-tuned",
                    sc,
                    rep,
                    c.cp.settings,
                    (l) => progress.line(l),
                    pacer,
                  ),
              );
              samples.push(s);
              progress.rep(`k3s-tuned ${sc}`, rep, opts.tunedReps, `→ ${short(s)}`);
            }
          }
          samples.push(
            k3sBlindSample("k3s-tuned", "sensor-loss"),
            k3sBlindSample("k3s-tuned", "app-hang"),
          );
          controlPlanes.tuned = cadence(c, JETSON_NODES.all);
        } finally {
          await c.stop();
        }
      });
    }

    // ---- phase 3: load -------------------------------------------------------------------------
    // The promotion subscriber's broker probe would add its messages to the load.
    promotions.terminate();
    if (!opts.skipLoad && opts.phases.includes("load")) {
      await phase("load", async () => {
        const base = { brokerUrl: broker.url, dir, progress: (l: string) => progress.line(l) };
        progress.line(`load: ${opts.loadTargets} targets × 50 Hz for ${opts.loadDurationS} s`);
        const headline = await runLoad({
          ...base,
          targets: opts.loadTargets,
          durationS: opts.loadDurationS,
          seed: opts.seed,
        });
        progress.line(
          `load: ${headline.deadlinesMissed} missed, received ${
            Math.round(headline.ingestPerS)
          } /s, ` +
            `lateness p99 ${fmtMs(headline.lateness?.p99)}, RSS ${headline.rssMaxMb.toFixed(1)} MB`,
        );
        // The floor: a handful of targets, for the runtime's own RSS, start-up and idle lateness.
        const floor = await runLoad({
          ...base,
          targets: 20,
          durationS: opts.smoke ? 3 : 10,
          seed: opts.seed + 1000,
        });
        const denoStartupMs = await denoStartup();
        load = opts.loadSearchSteps > 0
          ? await searchLoad({
            ...base,
            start: Math.max(25, Math.floor(opts.loadTargets / 2)),
            max: 64_000,
            resolution: 0.1,
            maxSteps: opts.loadSearchSteps,
            durationS: opts.loadSearchDurationS,
            seed: opts.seed + 1,
          })
          : { search: [], searchNote: "No search (--load-search-steps 0)." };
        load.headline = headline;
        load.floor = floor;
        load.denoStartupMs = denoStartupMs;
        load.rssFloorMb = {
          deno: await idleRss("0"),
          denoWithMqtt: await idleRss('await import("mqtt")'),
        };
      });
    }
  } finally {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(sig, onSignal);
    stopStallWatch();
    publisher.terminate();
    promotions.terminate();
    await broker.stop();
    if (!opts.keepScratch) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }

  const finishedAt = new Date();
  const results: BenchResults = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationS: Math.round((performance.now() - t0) / 1000),
    options: { ...opts },
    machine,
    controlPlanes,
    samples,
    load,
    apiProbe,
    phases,
    goals: checkGoals(samples, load),
    notes,
  };
  if (opts.merge) mergePrevious(results, opts.phases, opts.merge);
  explainBounds(results);
  return { results, files: await writeResults(results, opts.out) };
}

/** Which modes each phase measures. */
const PHASE_MODES: Record<BenchPhase, Sample["mode"][]> = {
  failover: ["ours-fast", "ours-example", "origin", "k3s-default"],
  tuned: ["k3s-tuned"],
  load: [],
};
const PHASE_NAMES: Record<BenchPhase, string> = {
  failover: "ours and origin on a control plane with K3s defaults",
  tuned: "K3s tuned",
  load: "load",
};

/** Takes the phases not run now from an earlier results file (samples, cadence, probe, load). */
export function mergePrevious(results: BenchResults, ran: BenchPhase[], path: string): void {
  const prev = JSON.parse(Deno.readTextFileSync(path)) as BenchResults;
  for (const p of BENCH_PHASES) {
    if (ran.includes(p)) continue;
    results.samples.push(...prev.samples.filter((s) => PHASE_MODES[p].includes(s.mode)));
    results.phases.push(...prev.phases.filter((x) => x.name === PHASE_NAMES[p]));
    if (p === "failover") {
      if (prev.controlPlanes.default) results.controlPlanes.default = prev.controlPlanes.default;
      results.apiProbe = prev.apiProbe;
    }
    if (p === "tuned" && prev.controlPlanes.tuned) {
      results.controlPlanes.tuned = prev.controlPlanes.tuned;
    }
    if (p === "load") results.load = prev.load;
    results.notes.push(
      `Phase "${PHASE_NAMES[p]}" is from the run of ${prev.startedAt} (merged; this run ` +
        `re-ran ${ran.join(", ")}).`,
    );
  }
  const order = (m: Sample["mode"]) =>
    ["ours-fast", "ours-example", "origin", "k3s-tuned", "k3s-default"].indexOf(m);
  results.samples.sort((a, b) => order(a.mode) - order(b.mode));
  results.goals = checkGoals(results.samples, results.load);
  results.options = { ...results.options, mergedFrom: prev.startedAt };
}

/** RSS (MB) of an idle `deno eval` that imported `imports` (settled for 1.5 s). */
async function idleRss(code: string): Promise<number | undefined> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `${code}; console.log("ready"); await new Promise((r) => setTimeout(r, 4000));`],
    cwd: fileURLToPath(new URL("..", import.meta.url)), // deno.json's import map
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read();
  await new Promise((r) => setTimeout(r, 1500));
  const mb = rssMb(child.pid);
  try {
    child.kill("SIGKILL");
  } catch { /* gone */ }
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  await child.status;
  return mb === undefined ? undefined : Math.round(mb * 10) / 10;
}

/** Spawn → first output line of `deno eval`, ms: the runtime's start-up floor. */
async function denoStartup(): Promise<number> {
  const t = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "console.log(1)"],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read();
  const ms = performance.now() - t;
  reader.releaseLock();
  await child.stdout.cancel();
  await child.status;
  return Math.round(ms * 10) / 10;
}

/** Writes `latest.json`, `latest.md` and the SVG plots; returns their paths. */
export async function writeResults(results: BenchResults, out: string): Promise<string[]> {
  await Deno.mkdir(out, { recursive: true });
  const plots = await renderPlots(results);
  const files: string[] = [];
  for (const [name, svg] of Object.entries(plots)) {
    await Deno.writeTextFile(`${out}/${name}`, svg);
    files.push(`${out}/${name}`);
  }
  await Deno.writeTextFile(`${out}/latest.json`, JSON.stringify(results, null, 1) + "\n");
  await Deno.writeTextFile(`${out}/latest.md`, renderReport(results, Object.keys(plots)));
  files.push(`${out}/latest.json`, `${out}/latest.md`);
  return files;
}
