/**
 * `deno task bench:pair`: the supervisor pair's takeover and fault → promotion during a takeover,
 * per Lease timing, on real components (see bench/pair_run.ts). Writes bench/results/pair.json
 * (every sample, per-series p50/p99/max, the machine, the commit) and pair.md beside it.
 *
 * @module
 */
import { ConfigSchema } from "../lib/config/schema.ts";
import { pairConfig, PERIOD_MS, TIMEOUT_MS, WORKLOADS } from "../tests/harness/pair_rig.ts";
import { gitCommit } from "./git_commit.ts";
import { machineInfo } from "./machine.ts";
import { PAIR_USAGE, parsePairBenchArgs } from "./pair_options.ts";
import { type PairBenchResults, pairMarkdown, summarizeSeries } from "./pair_report.ts";
import { BENCH_BOOT_WINDOW_MS, runPairSeries } from "./pair_run.ts";

if (import.meta.main) {
  let opts;
  try {
    opts = parsePairBenchArgs(Deno.args);
  } catch (error) {
    console.error(`bench:pair: ${(error as Error).message}\n\n${PAIR_USAGE}`);
    Deno.exit(2);
  }
  if (opts === "help") {
    console.log(PAIR_USAGE);
    Deno.exit(0);
  }
  const t0 = performance.now();
  const log = (line: string) =>
    console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(7)} s] ${line}`);
  log(`options ${JSON.stringify(opts)}`);
  try {
    const date = new Date().toISOString();
    const machine = machineInfo();
    const commit = await gitCommit();
    // the smallest FTTI of the workloads a fault repetition moves
    const config = ConfigSchema.parse(pairConfig("mqtt://127.0.0.1:1", "kubeconfig"));
    const fttiMs = Math.min(
      ...config.workloads.filter((w) => (WORKLOADS as readonly string[]).includes(w.name)).map((
        w,
      ) => w.fttiMs),
    );
    const { series, scratch } = await runPairSeries(opts, log);
    const results: PairBenchResults = {
      kind: "supervisor-pair",
      date,
      commit,
      durationS: Math.round((performance.now() - t0) / 1000),
      machine,
      options: { ...opts },
      rig: {
        nodeTimeoutMs: TIMEOUT_MS,
        periodMs: PERIOD_MS,
        fttiMs,
        bootWindowMs: BENCH_BOOT_WINDOW_MS,
      },
      summaries: series.map((s) => summarizeSeries(s, fttiMs)),
      series,
    };
    await Deno.mkdir(opts.out.replace(/\/[^/]*$/, ""), { recursive: true }).catch(() => {});
    await Deno.writeTextFile(opts.out, JSON.stringify(results, null, 2) + "\n");
    const md = opts.out.replace(/\.json$/, "") + ".md";
    await Deno.writeTextFile(md, pairMarkdown(results));
    console.log(pairMarkdown(results));
    log(`wrote ${opts.out}, ${md}${opts.keepScratch ? `; scratch kept in ${scratch}` : ""}`);
    Deno.exit(0);
  } catch (error) {
    console.error(`bench:pair failed: ${(error as Error).stack ?? error}`);
    Deno.exit(1);
  }
}
