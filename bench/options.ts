/**
 * Command-line options of `deno task bench` (node:util parseArgs: unknown flags are errors).
 *
 * @module
 */
import { parseArgs } from "node:util";

/** What a benchmark run does. */
export interface BenchOptions {
  /** Repetitions per scenario of each of our configs (≥ 50 for a full run). */
  reps: number;
  /** Repetitions per node-fault scenario of K3s tuned. */
  tunedReps: number;
  /** Repetitions per detectable scenario of the origin baseline. */
  originReps: number;
  skipK3sDefault: boolean;
  skipLoad: boolean;
  smoke: boolean;
  /** Targets of the headline load run. */
  loadTargets: number;
  /** Seconds of the headline load run and of each search step. */
  loadDurationS: number;
  loadSearchDurationS: number;
  /** Runs of the load search (0: no search). */
  loadSearchSteps: number;
  out: string;
  seed: number;
  /** Keep the scratch directory (configs, supervisor logs) instead of removing it. */
  keepScratch: boolean;
  /** The phases to run. */
  phases: BenchPhase[];
  /** A previous results file whose other phases are kept (to re-run one phase). */
  merge?: string;
}

/** The phases of a run: failover (ours, origin, K3s default), K3s tuned, load. */
export type BenchPhase = "failover" | "tuned" | "load";
export const BENCH_PHASES: readonly BenchPhase[] = ["failover", "tuned", "load"];

export const USAGE = `deno task bench [options]

  --reps N               repetitions per scenario of ours (fast.yaml and example.yaml) [50]
  --tuned-reps N         repetitions per node fault of K3s tuned [5]
  --origin-reps N        repetitions per detectable scenario of the origin baseline [30]
  --skip-k3s-default     skip K3s with default settings (≈ 6 min, runs in the background)
  --skip-load            skip the load test
  --smoke                3 repetitions (origin and K3s tuned: 1), no K3s default, 100 targets,
                         a 2-step load search (what deno task test runs; ≈ 2 min)
  --load-targets N       targets of the headline load run [1000]
  --load-duration S      seconds of the headline load run [20]
  --load-search-steps N  runs of the search for the largest target count without a miss [8]
  --out DIR              where latest.json, latest.md and the SVGs go [bench/results]
  --seed N               seed of the fault phases and pauses [1]
  --keep-scratch         keep the scratch directory (per-repetition configs and supervisor logs)
  --phases LIST          phases to run, of failover,tuned,load [all]
  --merge FILE           keep the phases not run from this earlier latest.json (re-run one phase,
                         e.g. after other work disturbed it; the report says which run each is from)
  --help`;

function int(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`);
  }
  return n;
}

function phases(v: string | undefined): BenchPhase[] {
  if (v === undefined) return [...BENCH_PHASES];
  const list = v.split(",").map((x) => x.trim()).filter(Boolean);
  for (const x of list) {
    if (!BENCH_PHASES.includes(x as BenchPhase)) {
      throw new Error(`--phases: unknown phase ${x} (have ${BENCH_PHASES.join(",")})`);
    }
  }
  if (list.length === 0) throw new Error("--phases must name at least one phase");
  return list as BenchPhase[];
}

/**
 * Parses the command line.
 * @returns the options, or `"help"`.
 * @throws Error on unknown flags or bad values.
 */
export function parseBenchArgs(args: string[]): BenchOptions | "help" {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      reps: { type: "string" },
      "tuned-reps": { type: "string" },
      "origin-reps": { type: "string" },
      "skip-k3s-default": { type: "boolean" },
      "skip-load": { type: "boolean" },
      smoke: { type: "boolean" },
      "load-targets": { type: "string" },
      "load-duration": { type: "string" },
      "load-search-steps": { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      "keep-scratch": { type: "boolean" },
      phases: { type: "string" },
      merge: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return "help";
  const smoke = values.smoke === true;
  return {
    reps: int("reps", values.reps, smoke ? 3 : 50, 1),
    tunedReps: int("tuned-reps", values["tuned-reps"], smoke ? 1 : 5),
    originReps: int("origin-reps", values["origin-reps"], smoke ? 1 : 30),
    skipK3sDefault: smoke || values["skip-k3s-default"] === true,
    skipLoad: values["skip-load"] === true,
    smoke,
    loadTargets: int("load-targets", values["load-targets"], smoke ? 100 : 1000, 1),
    loadDurationS: int("load-duration", values["load-duration"], smoke ? 4 : 20, 3),
    loadSearchDurationS: smoke ? 3 : 12,
    loadSearchSteps: int("load-search-steps", values["load-search-steps"], smoke ? 2 : 8),
    out: values.out ?? "bench/results",
    seed: int("seed", values.seed, 1),
    keepScratch: values["keep-scratch"] === true,
    phases: phases(values.phases),
    merge: values.merge,
  };
}
