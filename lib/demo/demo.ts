/**
 * `demo`: the whole data path on one machine with nothing installed: an in-process MQTT broker,
 * the test publisher simulating every node agent, sensor and app, the supervisor with the dry-run
 * reconciler, and a subscriber standing in for the apps, all on `config/example.yaml` (or a given
 * config). It injects one fault (default a node crash) and prints a timeline with latencies.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { createLogger, type Logger, silentLogger } from "../log/log.ts";
import { openSession } from "../mqtt/session.ts";
import { type Fault, parseFault } from "../publisher/faults.ts";
import { runPublisher } from "../publisher/publisher.ts";
import type { PublisherReport } from "../publisher/report.ts";
import { DryRunReconciler } from "../reconcile/dry_run.ts";
import { Supervisor, type SupervisorEvent, supervisorWill } from "../runtime/supervisor.ts";
import { buildTopology, type Topology } from "../topology/topology.ts";
import { startEmbeddedBroker } from "./broker.ts";
import { DEMO_CONFIG_FILE, demoConfig } from "./demo_config.ts";
import { type ReceivedPromotion, watchPromotions } from "./promotion_watcher.ts";
import { formatRun } from "./timeline.ts";

export { DEMO_CONFIG_FILE, demoConfig } from "./demo_config.ts";

/** The fault injected when none is given. */
const DEFAULT_DEMO_FAULT = "node-crash:worker-node2@2s";

/** How long the publisher goes on after the fault, ms. */
const AFTER_FAULT_MS = 1500;
/**
 * When supervision stops, ms after the fault: before the simulated nodes shut down, since their
 * ordered shutdown publishes `offline`, which a running supervisor rightly treats as a node going
 * away.
 */
const SUPERVISE_AFTER_FAULT_MS = 1300;

/** Options of {@linkcode demoCommand}. */
export interface DemoOptions {
  /**
   * Config to simulate (its broker URL is replaced by the in-process broker's); default
   * `config/example.yaml` ({@linkcode demoConfig}).
   */
  config?: Config;
  /** Where `config` came from, for the printout (default {@linkcode DEMO_CONFIG_FILE}). */
  configFile?: string;
  /** Fault spec (default {@linkcode DEFAULT_DEMO_FAULT}). */
  fault?: string;
  /** Print the supervisor's log lines too. */
  verbose?: boolean;
  /** Aborting ends the run early. */
  signal?: AbortSignal;
  /** Output sink (default console.log). */
  out?: (line: string) => void;
}

/** Result of {@linkcode runDemo}, for tests. */
export interface DemoResult {
  /** Every supervisor event, in order. */
  events: SupervisorEvent[];
  /** The promotions the stand-in app received. */
  promotionsReceived: ReceivedPromotion[];
  /** Every printed line. */
  lines: string[];
  /** True when exactly the expected workloads failed over. */
  ok: boolean;
}

/** Runs the demo and prints the timeline; returns 0 when the failover happened as expected. */
export async function demoCommand(options: DemoOptions = {}): Promise<number> {
  const result = await runDemo(options);
  return result.ok ? 0 : 1;
}

/** Runs the demo (see module doc). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const out = options.out ?? ((line: string) => console.log(line));
  const fault = parseFault(options.fault ?? DEFAULT_DEMO_FAULT);
  const log: Logger = options.verbose
    ? createLogger({ level: "info" }, { role: "supervisor" })
    : silentLogger;
  const broker = await startEmbeddedBroker();
  let config: Config;
  let topology: Topology;
  let run: ScenarioResult;
  let received: ReceivedPromotion[];
  try {
    config = onBroker(options.config ?? demoConfig(broker.url), broker.url);
    topology = buildTopology(config);
    const watcher = await watchPromotions({ config, topology });
    try {
      run = await runScenario({ config, topology, fault, log, signal: options.signal });
    } finally {
      await watcher.close();
    }
    received = [...watcher.received];
  } finally {
    await broker.close();
  }

  const { ok, lines: body } = formatRun({
    topology,
    fault,
    report: run.report,
    events: run.events,
    received,
  });
  const lines = [
    `sdv-failover demo — ${
      options.config ? (options.configFile ?? "given config") : DEMO_CONFIG_FILE
    }, in-process broker ${broker.url}, dry-run reconciler, fault ${fault.spec}`,
    `nodes: ${
      topology.nodes.map((n) => `${n.name} (${n.periodMs} ms / timeout ${n.timeoutMs} ms)`)
        .join(", ")
    }`,
    "",
    ...body,
  ];
  for (const line of lines) out(line);
  return { events: run.events, promotionsReceived: received, lines, ok };
}

/** `config` with its broker URL replaced by `url`. */
function onBroker(config: Config, url: string): Config {
  return { ...config, mqtt: { ...config.mqtt, url } };
}

/** What {@linkcode runScenario} needs. */
interface ScenarioOptions {
  config: Config;
  topology: Topology;
  fault: Fault;
  log: Logger;
  signal?: AbortSignal;
}

/** What the supervisor and the publisher did. */
interface ScenarioResult {
  report: PublisherReport;
  events: SupervisorEvent[];
}

/**
 * Starts the supervisor (dry-run reconciler), runs the publisher with the fault, stops supervising
 * {@linkcode SUPERVISE_AFTER_FAULT_MS} after the fault and waits for the publisher's end.
 */
async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const { config, topology, fault, log, signal } = options;
  const events: SupervisorEvent[] = [];
  const supervisor = new Supervisor({
    config,
    topology,
    client: openSession({
      config: config.mqtt,
      clientId: "sdv-failover-demo",
      will: supervisorWill(config),
    }),
    reconciler: ({ onReport }) =>
      Promise.resolve(
        new DryRunReconciler({
          topology,
          log,
          onReport,
          taintKey: config.cluster.taintKey,
          supervisorId: config.supervisor.id,
        }),
      ),
    log,
    onEvent: (e) => events.push(e),
  });
  try {
    await supervisor.start(signal);
    const faultAtMs = "atMs" in fault ? fault.atMs : 0;
    const publishing = runPublisher({
      config,
      topology,
      faults: [fault],
      durationMs: faultAtMs + AFTER_FAULT_MS,
      signal,
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      publishing,
      new Promise((resolve) => timer = setTimeout(resolve, faultAtMs + SUPERVISE_AFTER_FAULT_MS)),
    ]);
    clearTimeout(timer);
    await supervisor.stop();
    return { report: await publishing, events };
  } finally {
    await supervisor.stop();
  }
}
