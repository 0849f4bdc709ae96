/**
 * The `check` command: validates a configuration file and shows each workload's FTTI budget.
 *
 * @module
 */
import {
  ConfigError,
  type ConfigNeeds,
  type EnvironmentAccess,
  formatIssue,
  loadConfig,
} from "../config/load.ts";
import {
  computeBudgets,
  computeTakeoverBudgets,
  formatBudgetTable,
  formatTakeoverBudgets,
  takeoverBoundMs,
} from "../config/budget.ts";

/** Options of {@linkcode checkCommand}. */
export interface CheckCommandOptions {
  /** Configuration file to check (YAML). */
  configPath: string;
  /**
   * What to check beyond what every command needs (the MQTT files and variables):
   * `{ kubeconfig: true }` for `run` without `--dry-run` (`check --supervisor`). Default none.
   */
  needs?: ConfigNeeds;
  /** How the named files and variables are checked (default: the real ones); for tests. */
  environment?: EnvironmentAccess;
  /** Receives the report of a valid file, line by line (default `console.log`). */
  out?: (line: string) => void;
  /** Receives the problems of an invalid file, line by line (default `console.error`). */
  err?: (line: string) => void;
}

/** Exit status of {@linkcode checkCommand} for a valid file. */
export const CHECK_OK = 0;
/** Exit status of {@linkcode checkCommand} for an invalid or unreadable file. */
export const CHECK_INVALID = 2;

/**
 * Loads and validates `configPath` (YAML, schema, references, timing, FTTI budgets) and checks
 * the files and environment variables it names (`opts.needs` adds the kubeconfig), exactly as
 * the other commands load it, so a file `check` accepts is one they can start with.
 *
 * Valid: writes `FILE: OK (N nodes, N sensors, N workloads)`, then the FTTI budget table of
 * `budget.ts` (one line per workload, times in ms) and a line on the boot window to `out`, and
 * returns 0.
 * Invalid or unreadable: writes every problem as `FILE:LINE:COL PATH: MESSAGE`, sorted by
 * position, then `FILE: N problem(s)` to `err`, and returns 2.
 *
 * Never calls `Deno.exit`; the caller turns the result into the exit status. Needs read
 * permission for `configPath` and the files it names, and env access to the variables it names
 * and to `LOG_TOKENS`, `LOG_STREAM` (read by npm `yaml`, see `YAML_ENV_VARS` in `load.ts`).
 * @throws anything but a {@linkcode ConfigError}: `Deno.errors.NotCapable` without that env
 *   access, or an unexpected internal error.
 */
export async function checkCommand(opts: CheckCommandOptions): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  const err = opts.err ?? ((line: string) => console.error(line));
  try {
    const config = await loadConfig(opts.configPath, {
      needs: opts.needs,
      environment: opts.environment,
    });
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
    out(
      `${opts.configPath}: OK (${count(config.nodes.length, "node")}, ` +
        `${count(config.sensors.length, "sensor")}, ${count(config.workloads.length, "workload")})`,
    );
    out("");
    out(
      `FTTI budgets (ISO 26262-1:2018: FDTI + FRTI ≤ FTTI; detection = slowest timeout of the ` +
        `limiting side, lateness = supervisor.lagToleranceMs, reaction = ` +
        `supervisor.reactionBudgetMs):`,
    );
    for (const line of formatBudgetTable(computeBudgets(config)).split("\n")) out(line);
    const takeover = computeTakeoverBudgets(config);
    if (takeover !== undefined) {
      const pair = config.supervisor.pair!;
      const short = takeover.filter((b) => b.marginMs < 0);
      out("");
      out(
        `Supervisor pair: a takeover takes at most leaseDurationMs + retryPeriodMs + ` +
          `renewDeadlineMs = ${pair.leaseDurationMs} + ${pair.retryPeriodMs} + ` +
          `${pair.renewDeadlineMs} = ${takeoverBoundMs(pair)} ms; a fault during a takeover is ` +
          `decided when the standby leads (budget + takeover):`,
      );
      for (const line of formatTakeoverBudgets(takeover)) out(`  ${line}`);
      if (short.length > 0) {
        out(
          `warning: a fault during a takeover may exceed the FTTI of ${
            short.map((b) => b.workload).join(", ")
          }: shorten the Lease timing (supervisor.pair) or accept it as a double fault ` +
            `(the supervisor's loss and a node fault at once)`,
        );
      }
    }
    out(
      `The budgets hold once a target has been heard from: one never heard from since the start ` +
        `is judged at the end of the boot window, ${config.supervisor.bootWindowMs} ms ` +
        `(supervisor.bootWindowMs).`,
    );
    return CHECK_OK;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const issue of error.issues) err(formatIssue(error.file, issue));
    const n = error.issues.length;
    err(`${error.file}: ${n} problem${n === 1 ? "" : "s"}`);
    return CHECK_INVALID;
  }
}
