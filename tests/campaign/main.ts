/**
 * `deno task campaign`: the randomized fault campaign (and the soak) on real components.
 *
 * ```
 * deno task campaign [--faults 500] [--seed N] [--out bench/results/campaign.json]
 * deno task campaign --pair [--faults 300] [--seed N] [--out bench/results/campaign_pair.json]
 * deno task campaign --soak 60m [--stress 2] [--out bench/results/soak.json]
 * ```
 *
 * The campaign writes its summary and every judged fault to `--out` (JSON) and a plot beside it
 * (`.svg`); the soak runs the vehicle with latency ± jitter below the timeout on every node's
 * path and `stress-ng --cpu N` on the machine, injects nothing, and counts every promotion, fence
 * and expiry (each one false by construction). `--pair`: the pair mode (two brokers, two
 * supervisors, and the pair's faults; see `world.ts` and docs/campaign.md). Needs root (network
 * namespaces, nftables).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parseDurationMs } from "../../lib/publisher/faults.ts";
import { renderSvg } from "../../bench/plots.ts";
import { gitCommit } from "../../bench/git_commit.ts";
import { runCampaign, summarize } from "./campaign.ts";
import { FAULT_TRUTH } from "./faults.ts";
import { netnsSupported } from "./netns.ts";
import {
  CampaignWorld,
  NODES,
  PAIR_IDS,
  PAIR_TIMING,
  sleep,
  TAKEOVER_BOUND_MS,
  TIMING,
  wallNowMs,
} from "./world.ts";
import { campaignPlotSpec } from "./plot.ts";

/** Runs the command; resolves with the process exit code. */
export async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      faults: { type: "string", default: "500" },
      seed: { type: "string" },
      out: { type: "string" },
      soak: { type: "string" },
      stress: { type: "string", default: "2" },
      "stress-load": { type: "string", default: "60" },
      pair: { type: "boolean", default: false },
    },
  });
  let soakMs: number | undefined;
  try {
    soakMs = values.soak === undefined ? undefined : parseLongDurationMs(values.soak);
  } catch (error) {
    console.error(`campaign: --soak: ${(error as Error).message}`);
    return 2;
  }
  if (!(await netnsSupported())) {
    console.error("campaign: needs root with `ip netns` and `nft` (scripts/setup_test_deps.sh)");
    return 2;
  }
  const log = (line: string) =>
    console.log(`[campaign ${new Date().toISOString().slice(11, 19)}] ${line}`);
  const dir = await Deno.makeTempDir({ prefix: "sdv-campaign-" });
  const runId = String(Deno.pid % 10000);
  const pair = values.pair === true;
  const world = await CampaignWorld.start({ runId, dir, log, pair });
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  try {
    if (soakMs !== undefined) {
      const out = values.out ?? "bench/results/soak.json";
      const result = await soak(world, {
        durationMs: soakMs,
        stressWorkers: Number(values.stress),
        stressLoadPercent: Number(values["stress-load"]),
        log,
        signal: abort.signal,
      });
      await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + "\n");
      log(`soak: ${JSON.stringify(result.counts)} → ${out}`);
      return result.counts.promotions + result.counts.fences + result.counts.expiries === 0 ? 0 : 1;
    }
    const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 2 ** 31;
    const faults = Number(values.faults);
    const out = values.out ??
      (pair ? "bench/results/campaign_pair.json" : "bench/results/campaign.json");
    log(`seed ${seed}, ${faults} faults${pair ? " (pair mode)" : ""}, work dir ${dir}`);
    const t0 = wallNowMs();
    const records = await runCampaign({ world, seed, faults, log, signal: abort.signal });
    const summary = summarize(records);
    const result = {
      kind: "fault-campaign",
      date: new Date().toISOString(),
      commit: await gitCommit(),
      seed,
      durationS: Math.round((wallNowMs() - t0) / 1000),
      machine: { cores: navigator.hardwareConcurrency, deno: Deno.version.deno },
      timing: TIMING,
      ...(pair
        ? { pair: { ids: PAIR_IDS, lease: PAIR_TIMING, takeoverBoundMs: TAKEOVER_BOUND_MS } }
        : {}),
      truth: FAULT_TRUTH,
      summary,
      records,
    };
    await Deno.writeTextFile(out, JSON.stringify(result, null, 2) + "\n");
    await Deno.writeTextFile(
      out.replace(/\.json$/, ".svg"),
      await renderSvg(campaignPlotSpec(records, pair ? TAKEOVER_BOUND_MS : undefined)),
    );
    log(
      `${summary.faults} faults: false ${summary.false}, missed ${summary.missed}, split brain ` +
        `${summary.splitBrain}, not converged ${summary.notConverged}, not restored ` +
        `${summary.notRestored}; reaction p50/p99 ${summary.reactionMs.p50}/${summary.reactionMs.p99} ms` +
        (summary.pair
          ? `; takeover p50/p99/max ${summary.pair.takeoverMs.p50}/${summary.pair.takeoverMs.p99}/${summary.pair.takeoverMs.max} ms`
          : "") +
        ` → ${out}`,
    );
    return summary.false + summary.missed + summary.splitBrain + summary.notConverged +
          summary.notRestored + summary.errors === 0
      ? 0
      : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    await world.stop();
    world.instances.forEach((instance, i) =>
      Deno.writeTextFileSync(
        pair ? `${dir}/${instance.label.replace("#", "-")}.log` : `${dir}/supervisor-${i + 1}.log`,
        instance.proc.lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
      )
    );
    log(`logs kept in ${dir}`);
  }
}

/**
 * A soak's length: `60m`, `1h`, `90min`, or what {@linkcode parseDurationMs} takes (`1500ms`,
 * `90s`).
 * @throws Error for anything else.
 */
export function parseLongDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|min|h)$/.exec(text.trim());
  if (!m) return parseDurationMs(text);
  return Number(m[1]) * (m[2] === "h" ? 3_600_000 : 60_000);
}

/** What the soak measured. */
export interface SoakResult {
  kind: "soak";
  date: string;
  /** The commit under test. */
  commit: string;
  durationMs: number;
  stress: { workers: number; loadPercent: number; command: string };
  jitter: { latencyMs: number; jitterMs: number };
  /** Who ran at which niceness. */
  priorities: { nice: number; what: string };
  timing: typeof TIMING;
  counts: { promotions: number; fences: number; expiries: number; ingestFaults: number };
  /** The supervisor's last `stats` line: how hard the load pressed on it. */
  supervisorStats: unknown;
  /** The machine's load average at the end (1, 5, 15 min). */
  loadAverage: number[];
  expiries: unknown[];
}

/** Niceness of the simulated nodes and the fault proxy during the soak (see {@linkcode soak}). */
const VEHICLE_NICE = -10;

/** Runs the soak: jitter on every node's path, CPU stress, no fault; counts false actions. */
async function soak(
  world: CampaignWorld,
  opts: {
    durationMs: number;
    stressWorkers: number;
    stressLoadPercent: number;
    log: (line: string) => void;
    signal: AbortSignal;
  },
): Promise<SoakResult> {
  // the campaign's largest jitter draw: worst gap = period + latency + 2 × jitter < timeout
  const latencyMs = Math.floor((TIMING.timeoutMs - 2 * TIMING.periodMs) / 3);
  const jitter = { latencyMs, jitterMs: latencyMs };
  for (const n of NODES) await world.toxiproxy.setLatency(n, jitter.latencyMs, jitter.jitterMs);
  // The simulated Jetsons and the network between them (the fault proxy) are other machines in a
  // vehicle: they get CPU before the stress, which is on the server node with the supervisor and
  // the broker (both at normal priority). Without this, a stress burst starves the simulated nodes
  // themselves and their heartbeats are really late (a first run: two nodes silent 154 ms at once,
  // confirmed by the barrier) — a fault of the test rig, not a false failover.
  const vehicle = [...NODES.map((n) => world.nodes.get(n)!.pid), world.toxiproxy.pid];
  const renice = await new Deno.Command("renice", {
    args: ["-n", String(VEHICLE_NICE), "-p", ...vehicle.map(String)],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!renice.success) throw new Error(`renice: ${new TextDecoder().decode(renice.stderr)}`);
  opts.log(`soak: simulated nodes and fault proxy at nice ${VEHICLE_NICE} (pids ${vehicle})`);
  const stressArgs = [
    "--cpu",
    String(opts.stressWorkers),
    "--cpu-load",
    String(opts.stressLoadPercent),
    "--timeout",
    `${Math.ceil(opts.durationMs / 1000) + 5}s`,
  ];
  const stress = opts.stressWorkers > 0
    ? new Deno.Command("stress-ng", { args: stressArgs, stdout: "null", stderr: "null" }).spawn()
    : undefined;
  if (stress) opts.log(`soak: stress-ng ${stressArgs.join(" ")} (pid ${stress.pid})`);
  const startedAtWallMs = wallNowMs();
  const linesBefore = world.lines.length;
  try {
    while (wallNowMs() - startedAtWallMs < opts.durationMs && !opts.signal.aborted) {
      await sleep(Math.min(60_000, opts.durationMs - (wallNowMs() - startedAtWallMs)));
      const fenced = await world.fencedNodes().catch(() => new Set<string>());
      opts.log(
        `soak ${((wallNowMs() - startedAtWallMs) / 60_000).toFixed(1)} min: promotions ` +
          `${world.promotionsSince(startedAtWallMs).length}, fenced ${
            [...fenced].join(",") || "none"
          }, ` +
          `expiries ${
            world.lines.slice(linesBefore).filter((l) => l.event === "expired").length
          }, ` +
          `load ${Deno.loadavg().map((x) => x.toFixed(2)).join(" ")}`,
      );
    }
  } finally {
    try {
      stress?.kill("SIGKILL");
    } catch { /* ended */ }
    await stress?.status;
  }
  const lines = world.lines.slice(linesBefore);
  const expiries = lines.filter((l) => l.event === "expired");
  const fenced = await world.fencedNodes().catch(() => new Set<string>());
  return {
    kind: "soak",
    date: new Date().toISOString(),
    commit: await gitCommit(),
    durationMs: Math.round(wallNowMs() - startedAtWallMs),
    stress: {
      workers: opts.stressWorkers,
      loadPercent: opts.stressLoadPercent,
      command: `stress-ng ${stressArgs.join(" ")}`,
    },
    jitter,
    priorities: {
      nice: VEHICLE_NICE,
      what: "simulated nodes and fault proxy (other machines in a vehicle); supervisor, broker, " +
        "control plane and stress at 0",
    },
    timing: TIMING,
    counts: {
      promotions: world.promotionsSince(startedAtWallMs).length,
      fences: fenced.size,
      expiries: expiries.length,
      ingestFaults: lines.filter((l) => l.event === "ingest-fault").length,
    },
    supervisorStats: lines.findLast((l) => l.event === "stats"),
    loadAverage: Deno.loadavg(),
    expiries,
  };
}

if (import.meta.main) Deno.exitCode = await main(Deno.args);
