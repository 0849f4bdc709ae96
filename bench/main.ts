/**
 * `deno task bench`: the failover benchmark on a simulated Jetson cluster, side by side with K3s's
 * own failover and the origin's algorithm, plus a load test. See bench/run.ts for the phases and
 * `--help` for the options; results go to bench/results/ (latest.json, latest.md, *.svg).
 *
 * @module
 */
import { parseBenchArgs, USAGE } from "./options.ts";
import { Progress } from "./progress.ts";
import { runBench } from "./run.ts";

if (import.meta.main) {
  let opts;
  try {
    opts = parseBenchArgs(Deno.args);
  } catch (error) {
    console.error(`bench: ${(error as Error).message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  if (opts === "help") {
    console.log(USAGE);
    Deno.exit(0);
  }
  const progress = new Progress();
  progress.line(`options ${JSON.stringify(opts)}`);
  try {
    const { results, files } = await runBench(opts, progress);
    progress.line(`done in ${(results.durationS / 60).toFixed(1)} min; wrote ${files.join(", ")}`);
    for (const g of results.goals) {
      progress.line(
        `goal ${g.goal}: ${g.measured} (${g.target}) ${
          g.met === undefined ? "not measured" : g.met ? "met" : "NOT met"
        }`,
      );
    }
    Deno.exit(0);
  } catch (error) {
    console.error(`bench failed: ${(error as Error).stack ?? error}`);
    Deno.exit(1);
  }
}
