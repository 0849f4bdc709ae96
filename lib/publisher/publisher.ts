/**
 * The test publisher: simulates the whole vehicle on an MQTT broker and injects faults.
 *
 * One MQTT connection per node (client id `sdv-sim-<node>`, carrying that node's Last Will), on
 * which a {@linkcode SimulatedNode} runs
 * - the real `NodeAgent` for the node — the node heartbeat (not gated on sensors) and the node
 *   status (`online`, `degraded:SENSORS` when a required sensor's ticks stop, `draining` in a
 *   `planned-stop`) exactly as on a real Jetson;
 * - the ticks of every sensor attached to the node, at the sensor's `periodMs`;
 * - the app heartbeats of every workload instance (primary and standby) placed on the node, at the
 *   workload's `appHeartbeat.periodMs` (workloads without `appHeartbeat` have none).
 *
 * Faults (see `faults.ts`) are applied by a {@linkcode FaultScheduler} at their offsets from the
 * publisher's start on the monotonic clock; the run's {@linkcode PublisherReport} says what was
 * sent and when each fault was applied.
 *
 * Every node, sensor, app instance and topic comes from the topology (`buildTopology`), built once.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { brokerUrlForLog } from "../config/mqtt_rules.ts";
import { type Clock, systemClock } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import { RepeatedLog } from "../log/repeated_log.ts";
import type { SessionOptions } from "../mqtt/session.ts";
import { buildTopology, type NodeTarget, type Topology } from "../topology/topology.ts";
import { agentWill } from "../agent/agent.ts";
import { openAgentSession } from "../agent/agent_session.ts";
import { deadline } from "./deadline.ts";
import { FaultScheduler } from "./fault_scheduler.ts";
import { type Fault, validateFaults } from "./faults.ts";
import { buildReport, type PublisherReport, roundMs, wallTimeMs } from "./report.ts";
import type { SimConnection } from "./sim_client.ts";
import { SimulatedNode } from "./simulated_node.ts";

export type {
  AppliedFault,
  DrainReport,
  PublisherNodeReport,
  PublisherReport,
  SimNodeState,
} from "./report.ts";
export type { SimConnection } from "./sim_client.ts";

/** Options of {@linkcode runPublisher}. */
export interface PublisherOptions {
  /** Validated configuration: the nodes, sensors and workloads to simulate and the broker. */
  config: Config;
  /** Its topology, when the caller has built it already (default `buildTopology(config)`). */
  topology?: Topology;
  /** Faults to inject (parsed with `parseFault`). */
  faults: Fault[];
  /**
   * Names of the nodes to simulate (default: every node); the others stay silent. Faults must
   * name simulated nodes (or their sensors and app instances).
   */
  nodes?: readonly string[];
  /** How long to publish, ms from the start (after every node connected). */
  durationMs: number;
  /**
   * Opens one node's connection (default `openAgentSession`: `openSession` without QoS 0
   * queueing). The options carry client id `sdv-sim-<node>` and the node's Last Will.
   */
  openClient?: (options: SessionOptions) => SimConnection;
  /** Monotonic clock (default {@linkcode systemClock}). */
  clock?: Clock;
  /** Logger (default silent). */
  log?: Logger;
  /** Aborting ends the run early with the same ordered shutdown. */
  signal?: AbortSignal;
  /** Uniform random numbers in [0, 1) for jitter (default `Math.random`). */
  random?: () => number;
  /** Bound of a `planned-stop`'s drain, ms (default `DEFAULT_DRAIN_TIMEOUT_MS` of the agent). */
  drainTimeoutMs?: number;
}

/**
 * Runs the vehicle simulation for `durationMs` (or until `signal` aborts) and returns what it did.
 *
 * Start: one connection per node is opened and awaited (bounded by `config.mqtt.connectTimeoutMs`);
 * the run's time origin is the moment the last one connected. End: fault and generator timers are
 * cancelled, then every agent stops without a drain (retained `offline` where the node is still
 * connected and not hung, then a graceful DISCONNECT; crashed and partitioned connections are just
 * ended; a hung node publishes nothing, not even `offline`; a `planned-stop` still draining ends
 * its drain as `stopped`). Resolves when every client has ended.
 *
 * @throws Error when a fault names an unknown node, sensor or workload, when `durationMs` is not a
 *   non-negative number, when the MQTT options cannot be built (credentials), or when a node
 *   cannot connect within `connectTimeoutMs` (every connection opened so far is closed first).
 */
export async function runPublisher(opts: PublisherOptions): Promise<PublisherReport> {
  const { config, faults, durationMs } = opts;
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger;
  if (!(durationMs >= 0) || !Number.isFinite(durationMs)) {
    throw new Error(`durationMs must be a non-negative number, got ${durationMs}`);
  }
  const topology = opts.topology ?? buildTopology(config);
  const problems = validateFaults(faults, topology);
  const simulated = simulatedNodes(topology, opts.nodes);
  problems.push(...unsimulatedFaults(faults, topology, simulated));
  if (problems.length > 0) throw new Error(`inapplicable faults: ${problems.join("; ")}`);

  // One summary for every connection: with the broker down they all report the same error.
  const repeats = new RepeatedLog({ log, clock });
  try {
    return await publish(opts, { topology, simulated, clock, log, repeats });
  } finally {
    repeats.close();
  }
}

async function publish(
  opts: PublisherOptions,
  ctx: {
    topology: Topology;
    simulated: NodeTarget[];
    clock: Clock;
    log: Logger;
    repeats: RepeatedLog;
  },
): Promise<PublisherReport> {
  const { config, faults, durationMs } = opts;
  const { topology, simulated, clock, log } = ctx;
  const nodes = openNodes({
    simulated,
    config,
    clock,
    log,
    repeats: ctx.repeats,
    random: opts.random ?? Math.random,
    openClient: opts.openClient ?? openAgentSession,
  });
  const connected = await awaitConnections(nodes, {
    clock,
    timeoutMs: config.mqtt.connectTimeoutMs,
    signal: opts.signal,
  });
  if (connected !== "ok") {
    const missing = [...nodes.values()].filter((n) => !n.connection.connected).map((n) => n.name);
    await endConnections(nodes.values(), clock);
    if (connected === "aborted") return abortedBeforeStart(nodes.values(), faults, clock);
    throw new Error(
      `node(s) ${missing.join(", ")} did not connect to ${
        brokerUrlForLog(config.mqtt.url)
      } within ` +
        `${config.mqtt.connectTimeoutMs} ms`,
    );
  }

  const startedAtMs = clock.nowMs();
  log.info("publisher-started", {
    url: brokerUrlForLog(config.mqtt.url),
    nodes: topology.nodes.map((n) => n.name),
    durationMs,
    faults: faults.map((f) => f.spec),
    startedWallTimeMs: wallTimeMs(startedAtMs),
  });
  for (const node of nodes.values()) node.start(startedAtMs);
  const scheduler = new FaultScheduler({
    topology,
    nodes,
    clock,
    reconnectPeriodMs: config.mqtt.reconnectPeriodMs,
    drainTimeoutMs: opts.drainTimeoutMs,
    stopTimeoutMs: config.supervisor.shutdownTimeoutMs,
  });
  scheduler.start(faults, startedAtMs);

  const aborted = await runFor(clock, startedAtMs + durationMs, opts.signal);

  const shutdownAtMs = clock.nowMs();
  log.info("publisher-stopping", { aborted, elapsedMs: roundMs(shutdownAtMs - startedAtMs) });
  scheduler.stop();
  for (const node of nodes.values()) node.stopGenerators();
  await Promise.all(
    [...nodes.values()].map((n) => n.stop(config.supervisor.shutdownTimeoutMs)),
  );
  await scheduler.settled(); // a planned stop cut by the end: its drain result is recorded
  const endedAtMs = clock.nowMs();
  const report = buildReport({
    startedAtMs,
    shutdownAtMs,
    endedAtMs,
    aborted,
    nodes: nodes.values(),
    faults: scheduler.applied,
    notApplied: scheduler.notApplied,
  });
  for (const f of report.notApplied) log.warn("fault-not-applied", { fault: f.spec });
  log.info("publisher-stopped", { shutdownMs: roundMs(endedAtMs - shutdownAtMs) });
  return report;
}

/** What {@linkcode openNodes} needs. */
interface OpenNodesOptions {
  /** The nodes to open a connection for. */
  simulated: readonly NodeTarget[];
  config: Config;
  clock: Clock;
  log: Logger;
  /** Where connection errors go (summarised: repeated at every reconnect attempt). */
  repeats: RepeatedLog;
  random: () => number;
  openClient: (options: SessionOptions) => SimConnection;
}

/**
 * Opens one connection per node (client id `sdv-sim-<node>`, the node's Last Will) and sets up its
 * {@linkcode SimulatedNode}. When one cannot be opened, those opened so far are force-ended.
 */
function openNodes(options: OpenNodesOptions): Map<NodeTarget, SimulatedNode> {
  const { simulated, config, clock, log } = options;
  const nodes = new Map<NodeTarget, SimulatedNode>();
  try {
    for (const node of simulated) {
      const connection = options.openClient({
        config: config.mqtt,
        clientId: `sdv-sim-${node.name}`,
        will: agentWill(node),
      });
      const sim = new SimulatedNode({ node, connection, clock, log, random: options.random });
      connection.on(
        "error",
        (error) =>
          options.repeats.warn("mqtt-error", { node: node.name, error: error.message }, ["error"]),
      );
      nodes.set(node, sim);
    }
  } catch (error) {
    for (const n of nodes.values()) n.connection.endAsync(true).catch(() => {});
    throw error;
  }
  return nodes;
}

/**
 * The nodes to simulate: those named (in topology order), or every node.
 * @throws Error naming an unknown node.
 */
function simulatedNodes(topology: Topology, names: readonly string[] | undefined): NodeTarget[] {
  if (!names) return [...topology.nodes];
  const unknown = names.filter((n) => !topology.node(n));
  if (unknown.length) throw new Error(`unknown node(s) to simulate: ${unknown.join(", ")}`);
  return topology.nodes.filter((n) => names.includes(n.name));
}

/** Problems of faults whose node is not simulated. */
function unsimulatedFaults(
  faults: readonly Fault[],
  topology: Topology,
  simulated: readonly NodeTarget[],
): string[] {
  const problems: string[] = [];
  for (const f of faults) {
    const node = "node" in f
      ? topology.node(f.node)
      : f.kind === "sensor-loss"
      ? topology.sensor(f.sensor)?.node
      : topology.workload(f.workload)?.primary.node;
    if (node && !simulated.includes(node)) {
      problems.push(`${f.spec}: node ${node.name} is not simulated`);
    }
  }
  return problems;
}

/**
 * Waits until every node's connection is up, at most `timeoutMs`.
 * @returns `ok`, `timeout`, or `aborted` when `signal` aborted first.
 */
function awaitConnections(
  nodes: ReadonlyMap<NodeTarget, SimulatedNode>,
  options: { clock: Clock; timeoutMs: number; signal?: AbortSignal },
): Promise<"ok" | "timeout" | "aborted"> {
  const { clock, signal } = options;
  return new Promise((resolve) => {
    const pending = new Set([...nodes.values()].filter((n) => !n.connection.connected));
    let settled = false;
    const done = (outcome: "ok" | "timeout" | "aborted") => {
      if (settled) return;
      settled = true;
      clock.clearTimer(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(outcome);
    };
    const onAbort = () => done("aborted");
    const timer = clock.setTimer(() => done("timeout"), options.timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) return done("aborted");
    for (const node of pending) {
      node.connection.on("connect", () => {
        pending.delete(node);
        if (pending.size === 0) done("ok");
      });
    }
    if (pending.size === 0) done("ok");
  });
}

/** Force-ends every connection, each bounded by 1 s (a client may never settle). */
async function endConnections(nodes: Iterable<SimulatedNode>, clock: Clock): Promise<void> {
  await Promise.all([...nodes].map((n) =>
    new Promise<void>((resolve) => {
      const timer = clock.setTimer(resolve, 1000);
      n.connection.endAsync(true).catch(() => {}).finally(() => {
        clock.clearTimer(timer);
        resolve();
      });
    })
  ));
}

/** The report of a run aborted while connecting: nothing was published, no fault applied. */
function abortedBeforeStart(
  nodes: Iterable<SimulatedNode>,
  faults: Fault[],
  clock: Clock,
): PublisherReport {
  const now = clock.nowMs();
  return buildReport({
    startedAtMs: now,
    shutdownAtMs: now,
    endedAtMs: now,
    aborted: true,
    nodes,
    faults: [],
    notApplied: [...faults],
  });
}

/**
 * Waits until `endMs` on the clock or until `signal` aborts.
 * @returns true when aborted.
 */
function runFor(clock: Clock, endMs: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (aborted: boolean) => {
      timer.cancel();
      signal?.removeEventListener("abort", onAbort);
      resolve(aborted);
    };
    const onAbort = () => done(true);
    const timer = deadline(clock, endMs, () => done(false));
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) done(true);
  });
}
