/**
 * Command-line options of `deno task bench:pair`, the supervisor pair's benchmark (node:util
 * parseArgs: unknown flags are errors).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { LeaseTiming } from "../tests/harness/pair_rig.ts";

/** What a pair benchmark run does. */
export interface PairBenchOptions {
  /** Per Lease timing: repetitions in which only the leader is SIGKILLed. */
  reps: number;
  /** Per Lease timing: repetitions in which a node crashes right after the leader's SIGKILL. */
  faultReps: number;
  /** The Lease timings measured, one series each (in order). */
  timings: LeaseTiming[];
  /** Per Lease timing: repetitions of each kind under `stress-ng --cpu <cores>` (0: none). */
  stressReps: number;
  /** The results file (JSON); the summary goes beside it with `.md`. */
  out: string;
  /** Seed of the random wait before each kill (its phase in the renew cycle). */
  seed: number;
  /** Keep the scratch directory (configs, supervisor logs) instead of removing it. */
  keepScratch: boolean;
}

/** The Lease timing of the schema's defaults (`PairSchema`), then two shorter ones. */
export const DEFAULT_TIMINGS = "400/250/50,250/150/30,200/120/25";

export const PAIR_USAGE = `deno task bench:pair [options]

  --reps N          per Lease timing: repetitions that SIGKILL the leader [30]
  --fault-reps N    per Lease timing: repetitions that SIGKILL the leader and crash the node
                    of the active instances right after it [30]
  --timings LIST    Lease timings, leaseDurationMs/renewDeadlineMs/retryPeriodMs, comma-separated
                    [${DEFAULT_TIMINGS}]
  --stress-reps N   per Lease timing: repetitions of each kind under stress-ng on every core [0]
  --out FILE        results file; the summary goes to the same path with .md
                    [bench/results/pair.json]
  --seed N          seed of the random wait before each kill [1]
  --keep-scratch    keep the scratch directory (configs and supervisor logs)
  --help`;

function int(name: string, v: string | undefined, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`);
  }
  return n;
}

/**
 * Parses `400/250/50,250/150/30` into Lease timings.
 * @throws Error for a malformed entry, or one that breaks `retryPeriodMs < renewDeadlineMs <
 *   leaseDurationMs` (client-go's rule, which `lib/leader/lease_elector.ts` follows).
 */
export function parseTimings(text: string): LeaseTiming[] {
  const list = text.split(",").map((x) => x.trim()).filter(Boolean);
  if (list.length === 0) throw new Error("--timings must name at least one timing");
  return list.map((entry) => {
    const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(entry);
    if (!m) throw new Error(`--timings: ${entry} is not leaseMs/renewDeadlineMs/retryMs`);
    const [leaseDurationMs, renewDeadlineMs, retryPeriodMs] = m.slice(1).map(Number);
    if (
      !(retryPeriodMs > 0 && retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)
    ) {
      throw new Error(`--timings: ${entry} needs 0 < retry < renew deadline < lease duration`);
    }
    return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
  });
}

/**
 * Parses the command line.
 * @returns the options, or `"help"`.
 * @throws Error on unknown flags or bad values.
 */
export function parsePairBenchArgs(args: string[]): PairBenchOptions | "help" {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      reps: { type: "string" },
      "fault-reps": { type: "string" },
      timings: { type: "string" },
      "stress-reps": { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      "keep-scratch": { type: "boolean" },
      help: { type: "boolean" },
    },
  });
  if (values.help) return "help";
  return {
    reps: int("reps", values.reps, 30),
    faultReps: int("fault-reps", values["fault-reps"], 30),
    timings: parseTimings(values.timings ?? DEFAULT_TIMINGS),
    stressReps: int("stress-reps", values["stress-reps"], 0),
    out: values.out ?? "bench/results/pair.json",
    seed: int("seed", values.seed, 1),
    keepScratch: values["keep-scratch"] === true,
  };
}
