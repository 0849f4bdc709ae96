/**
 * The Markdown report (`bench/results/latest.md`): goals, expiry → all API actions beside the
 * datastore write latency of the same run, per-scenario tables (p50/p95/p99/max per
 * metric and mode), the ratios K3s default ÷ ours and origin ÷ ours, K3s's Lease cadence beside its
 * detection time, the load test, and the notes.
 *
 * @module
 */
import {
  type BenchResults,
  METRICS,
  MODE_LABELS,
  type ModeName,
  MODES,
  type Sample,
} from "./results.ts";
import type { ScenarioName } from "./scenarios.ts";
import { ratio } from "./stats.ts";
import {
  apiWriteComparison,
  disturbed,
  fmtMs,
  fmtRatio,
  metricSummary,
  scenariosOf,
  select,
} from "./summary.ts";

const SCENARIO_LABELS: Record<ScenarioName, string> = {
  "node-crash": "Node crash (power loss: MQTT connection drops, kwok killed)",
  "node-hang": "Node hang (MQTT silent, connection kept; kwok killed)",
  "sensor-loss": "Sensor loss (lidar-node2 stops; pose-estimation fails over)",
  "app-hang": "App hang (lane-detection's primary stops its heartbeat)",
};

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** The per-scenario table: one row per metric and mode with data. */
export function scenarioTable(samples: readonly Sample[], scenario: ScenarioName): string {
  const rows: string[][] = [];
  for (const m of METRICS) {
    for (const mode of MODES) {
      const s = metricSummary(samples, mode, m.key, scenario);
      if (!s) continue;
      rows.push([
        m.label,
        mode,
        String(s.n),
        fmtMs(s.p50),
        fmtMs(s.p95),
        fmtMs(s.p99),
        fmtMs(s.max),
      ]);
    }
  }
  const blind = MODES.filter((mode) => {
    const xs = select(samples, mode, scenario);
    return xs.length > 0 && xs.every((x) => !x.detected);
  });
  const out = [table(["metric", "mode", "n", "p50", "p95", "p99", "max"], rows)];
  if (blind.length) {
    out.push(`\nNot detected at all: ${blind.map((m) => `**${m}**`).join(", ")}.`);
  }
  return out.join("\n");
}

/** Ratios of the p50 and p99 of key metrics: K3s default ÷ ours, origin ÷ ours. */
export function ratioTable(samples: readonly Sample[], scenarios: ScenarioName[]): string {
  const keys: (keyof Sample)[] = ["faultToDetectionMs", "faultToReplacementRunningMs"];
  const rows: string[][] = [];
  for (const sc of scenarios) {
    for (const key of keys) {
      const label = METRICS.find((m) => m.key === key)!.label;
      const get = (mode: ModeName) => metricSummary(samples, mode, key, sc);
      const [fast, example, origin, tuned, dflt] = (
        ["ours-fast", "ours-example", "origin", "k3s-tuned", "k3s-default"] as ModeName[]
      ).map(get);
      if (!fast && !example) continue;
      /** The p50, or why there is none: not run, not detected, not reached. */
      const cell = (mode: ModeName, s: typeof fast) => {
        if (s) return fmtMs(s.p50);
        const xs = select(samples, mode, sc);
        if (xs.length === 0) return "not run";
        return xs.some((x) => x.detected) ? "never" : "not detected";
      };
      rows.push([
        sc,
        label,
        cell("ours-fast", fast),
        cell("ours-example", example),
        cell("origin", origin),
        cell("k3s-tuned", tuned),
        cell("k3s-default", dflt),
        fmtRatio(ratio(dflt?.p50, fast?.p50)),
        fmtRatio(ratio(tuned?.p50, fast?.p50)),
        fmtRatio(ratio(origin?.p50, example?.p50)),
        fmtRatio(ratio(origin?.p50, fast?.p50)),
      ]);
    }
  }
  return table(
    [
      "scenario",
      "metric (p50)",
      "ours fast",
      "ours example",
      "origin",
      "K3s tuned",
      "K3s default",
      "K3s default ÷ ours fast",
      "K3s tuned ÷ ours fast",
      "origin ÷ ours example",
      "origin ÷ ours fast",
    ],
    rows,
  );
}

function loadSection(results: BenchResults): string {
  const load = results.load;
  if (!load) return "Not run.";
  const row = (r: NonNullable<typeof load.headline>) => [
    String(r.targets),
    Math.round(r.sentPerS).toLocaleString("en-US"),
    Math.round(r.ingestPerS).toLocaleString("en-US"),
    String(r.deadlinesMissed),
    r.lateness
      ? `${fmtMs(r.lateness.p50)} / ${fmtMs(r.lateness.p99)} / ${fmtMs(r.lateness.max)}`
      : "—",
    `${r.pausesDetected}/${r.pauses}`,
    `${r.cpuPercent.toFixed(0)} %`,
    r.brokerCpuPercent === undefined ? "—" : `${r.brokerCpuPercent.toFixed(0)} %`,
    r.publisherCpuPercent === undefined ? "—" : `${r.publisherCpuPercent.toFixed(0)} %`,
    `${r.rssMaxMb.toFixed(1)} MB`,
    fmtMs(r.spawnToArmedMs),
    fmtMs(r.processArmedMs),
    r.publisherLagP99Ms === undefined ? "—" : fmtMs(r.publisherLagP99Ms),
  ];
  const header = [
    "targets",
    "sent /s",
    "received /s",
    "missed",
    "lateness p50 / p99 / max",
    "pauses detected",
    "runtime CPU",
    "broker CPU",
    "publisher CPU",
    "runtime RSS max",
    "spawn → armed",
    "armed (process clock)",
    "publisher lag p99",
  ];
  const out: string[] = [];
  if (load.headline) {
    out.push(`Headline run (${load.headline.durationS} s):\n`);
    out.push(table(header, [row(load.headline)]));
  }
  if (load.search.length) {
    out.push(`\nSearch for the largest target count with no deadline missed:\n`);
    out.push(table(header, [...load.search].sort((a, b) => a.targets - b.targets).map(row)));
    out.push(`\n${load.searchNote}`);
  }
  return out.join("\n");
}

function leaseSection(results: BenchResults): string {
  const rows = Object.entries(results.controlPlanes).map(([name, c]) => {
    const mode: ModeName = name === "tuned" ? "k3s-tuned" : "k3s-default";
    const det = metricSummary(results.samples, mode, "faultToNotReadyMs");
    const phase = metricSummary(results.samples, mode, "leasePhaseS");
    return [
      name,
      `${c.settings.nodeLeaseDurationS} s`,
      `${c.settings.leaseRenewIntervalS} s ± 4 %`,
      c.intervals
        ? `${c.intervals.p50.toFixed(2)} s (min ${c.intervals.min.toFixed(2)}, max ${
          c.intervals.max.toFixed(2)
        }, n=${c.intervals.n})`
        : "—",
      `${c.settings.nodeMonitorPeriodS} s`,
      `${c.settings.nodeMonitorGracePeriodS} s`,
      `${c.settings.defaultUnreachableTolerationS} s`,
      phase ? `${phase.min.toFixed(1)}–${phase.max.toFixed(1)} s` : "—",
      det ? `${fmtMs(det.p50)} (max ${fmtMs(det.max)})` : "—",
    ];
  });
  return table(
    [
      "control plane",
      "Lease duration",
      "renewal (configured)",
      "renewal (measured p50)",
      "node-monitor-period",
      "grace period",
      "unreachable toleration",
      "fault phase after renewal",
      "fault → NotReady",
    ],
    rows,
  );
}

/** The whole Markdown report. `plots` are SVG file names next to it. */
export function renderReport(results: BenchResults, plots: string[] = []): string {
  const m = results.machine;
  const scenarios = scenariosOf(results);
  const out: string[] = [];
  out.push(`# Failover benchmark\n`);
  out.push(
    `Run ${results.startedAt} – ${results.finishedAt} (${
      (results.durationS / 60).toFixed(1)
    } min) ` +
      `on ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}, Deno ${m.deno}. ` +
      `Options: \`${JSON.stringify(results.options)}\`. Every sample is in \`latest.json\`.\n`,
  );
  out.push(`Modes: ${MODES.map((x) => `**${x}** = ${MODE_LABELS[x]}`).join("; ")}.\n`);
  for (const p of plots) out.push(`![${p}](${p})\n`);
  out.push(`## Goals (config/fast.yaml)\n`);
  out.push(
    table(
      ["goal", "target", "measured", "met"],
      results.goals.map((g) => [
        g.goal,
        g.target,
        g.measured,
        g.met === undefined ? "not measured" : g.met ? "yes" : "**no**",
      ]),
    ),
  );
  const bounds = results.goals.filter((g) => g.bound);
  if (bounds.length) {
    out.push("\nWhat bounds the unmet goals:\n");
    for (const g of bounds) out.push(`- **${g.goal}**: ${g.bound}`);
  }
  const apiWrites = apiWriteComparison(results);
  if (apiWrites.length) {
    out.push("\nAPI actions beside the datastore write latency measured in the same run:\n");
    for (const line of apiWrites) out.push(`- ${line}`);
  }
  out.push(`\n## Ratios\n`);
  out.push(ratioTable(results.samples, scenarios));
  out.push(
    "\n*never*: detected, but the milestone was not reached within the bound (the origin does not " +
      "cordon, so the scheduler puts the replacement back onto the dead node, which still looks " +
      "Ready to Kubernetes). *not detected*: the mode has no signal of that fault.",
  );
  for (const sc of scenarios) {
    out.push(`\n## ${SCENARIO_LABELS[sc]}\n`);
    out.push(scenarioTable(results.samples, sc));
  }
  out.push(`\n## K3s: Lease cadence and detection\n`);
  out.push(leaseSection(results));
  out.push(`\n## Load: targets at 50 Hz through mosquitto\n`);
  out.push(loadSection(results));
  if (results.phases.length) {
    out.push(`\n## Machine load per phase\n`);
    out.push(
      table(
        [
          "phase",
          "duration",
          "CPU busy (all cores)",
          "… of it other work on the machine",
          "load avg",
        ],
        results.phases.map((p) => [
          p.name,
          `${(p.durationS / 60).toFixed(1)} min`,
          `${p.cpuBusyPercent} %`,
          `${p.foreignCpuPercent ?? "—"} %`,
          String(p.loadAvg1m),
        ]),
      ),
    );
  }
  const anomalies = results.samples.filter((s) => s.notes.length > 0);
  out.push(`\n## Notes\n`);
  for (const mode of ["ours-fast", "ours-example"] as const) {
    const xs = select(results.samples, mode);
    const d = xs.filter(disturbed);
    if (xs.length) {
      out.push(
        `- ${mode}: ${d.length} of ${xs.length} repetitions were disturbed by the test bench ` +
          `(a healthy target expired, or a simulator thread stalled ≥ 20 ms around the fault); ` +
          `they are included in every statistic.`,
      );
    }
  }
  for (const n of results.notes) out.push(`- ${n}`);
  const grouped = new Map<string, number>();
  for (const s of anomalies) {
    for (const n of s.notes) {
      // Spurious expiries differ in their details (in latest.json); count them by kind here.
      const short = n.startsWith("expiry of a healthy target")
        ? "expiry of a healthy target (details per sample in latest.json)"
        : n;
      const key = `${s.mode} ${s.scenario}: ${short}`;
      grouped.set(key, (grouped.get(key) ?? 0) + 1);
    }
  }
  for (const [k, n] of [...grouped].sort()) out.push(`- ${k}${n > 1 ? ` (${n}×)` : ""}`);
  return out.join("\n") + "\n";
}
