/**
 * The benchmark's smoke run (`--smoke`: 3 repetitions, no K3s-default mode, a small load test) on
 * the real control plane and mosquitto, so that the benchmark cannot rot. Asserts that every mode
 * and scenario produced samples and that the results, the report and the plots were written —
 * never how fast anything was (the numbers are the benchmark's job, not a test's).
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1.
 */
import assert from "node:assert/strict";
import { parseBenchArgs } from "./options.ts";
import { Progress } from "./progress.ts";
import type { BenchResults } from "./results.ts";
import { runBench } from "./run.ts";
import { SCENARIOS } from "./scenarios.ts";

Deno.test({
  name: "bench smoke: every mode and scenario runs; JSON, Markdown and SVG plots are written",
  ignore: Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "sdv-bench-smoke-" });
    try {
      const opts = parseBenchArgs(["--smoke", "--out", out]);
      assert.ok(opts !== "help");
      const { results, files } = await runBench(opts, new Progress((l) => console.log(l)));
      const saved = JSON.parse(await Deno.readTextFile(`${out}/latest.json`)) as BenchResults;
      assert.equal(saved.samples.length, results.samples.length);
      assert.ok(saved.machine.cpus >= 1 && saved.machine.deno.length > 0, "machine recorded");

      const of = (mode: string, scenario: string) =>
        results.samples.filter((s) => s.mode === mode && s.scenario === scenario);
      for (const mode of ["ours-fast", "ours-example"]) {
        for (const sc of SCENARIOS) {
          const xs = of(mode, sc);
          assert.equal(xs.length, 3, `${mode} ${sc}: 3 repetitions`);
          assert.ok(xs.some((s) => s.detected), `${mode} ${sc}: detected`);
          assert.ok(
            xs.some((s) => s.faultToPromotionReceivedMs !== undefined),
            `${mode} ${sc}: a promotion was received`,
          );
        }
      }
      assert.ok(of("origin", "node-crash").some((s) => s.detected), "origin detects a node crash");
      assert.ok(of("origin", "sensor-loss").every((s) => !s.detected), "origin misses lidar loss");
      assert.ok(of("k3s-tuned", "node-crash").some((s) => s.faultToNotReadyMs !== undefined));
      assert.ok(
        of("k3s-tuned", "app-hang").every((s) => !s.detected),
        "K3s cannot see an app hang",
      );
      assert.equal(of("k3s-default", "node-crash").length, 0, "--smoke skips K3s default");
      assert.ok(results.controlPlanes.default?.intervals, "Lease cadence measured");
      assert.ok(results.load?.headline && results.load.headline.ingestPerS > 0, "load ran");
      assert.equal(results.goals.length, 8);

      const md = await Deno.readTextFile(`${out}/latest.md`);
      assert.match(md, /## Goals/);
      assert.match(md, /\| metric \| mode \| n \| p50 \| p95 \| p99 \| max \|/);
      for (const svg of ["timeline.svg", "latency_cdf.svg", "load.svg"]) {
        assert.ok(files.includes(`${out}/${svg}`), `${svg} written`);
        assert.match(await Deno.readTextFile(`${out}/${svg}`), /^<svg /);
      }
    } finally {
      await Deno.remove(out, { recursive: true }).catch(() => {});
    }
  },
});
