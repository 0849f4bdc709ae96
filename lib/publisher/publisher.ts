/**
 * The test publisher: simulates the whole vehicle on an MQTT broker and injects faults.
 *
 * One MQTT connection per node (client id `sdv-sim-<node>`, carrying that node's Last Will), on
 * which it runs
 * - a {@linkcode NodeAgent} for the node — the node heartbeat is gated on the required sensors'
 *   ticks exactly as on a real Jetson, because it is the real agent;
 * - the ticks of every sensor attached to the node, at the sensor's `periodMs`;
 * - the app heartbeats of every workload instance (primary and standby) placed on the node, at the
 *   workload's `appHeartbeat.periodMs` (workloads without `appHeartbeat` have none).
 *
 * Faults (see `faults.ts`) are applied at their offsets from the publisher's start on the monotonic
 * clock; each application is logged and reported with its monotonic and wall-clock time and the
 * last node heartbeat sent before it, so that detection delays can be measured across processes.
 *
 * @module
 */
import type { IClientOptions } from "mqtt";
import type { Config, NodeConfig, SensorConfig, WorkloadConfig } from "../config/schema.ts";
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { MqttClientLike, PublishOptions } from "../ingest/mqtt_client.ts";
import { buildMqttOptions, connectNoDelay } from "../ingest/mqtt_options.ts";
import {
  appHeartbeatTopic,
  encodeBeat,
  nodeHeartbeatTopic,
  sensorTickTopic,
} from "../ingest/wire.ts";
import { agentWill, NodeAgent, PeriodicSchedule } from "../agent/agent.ts";
import { type Fault, validateFaults } from "./faults.ts";

/** What a simulated node is doing. */
export type SimNodeState = "running" | "hung" | "crashed" | "partitioned";

/** Per-node results of a publisher run. */
export interface PublisherNodeReport {
  /** Node heartbeats that reached the node's MQTT connection (after hang and jitter). */
  heartbeatsSent: number;
  /** Clock time (ms, monotonic) of the last of them; `undefined` when none was sent. */
  lastHeartbeatAtMs: number | undefined;
  /** Heartbeat slots the agent withheld because a required sensor was stale. */
  gatedPeriods: number;
  /** Sensor ticks sent on this node's connection. */
  ticksSent: number;
  /** App heartbeats sent on this node's connection. */
  appHeartbeatsSent: number;
  /** The node's state at the end of the run. */
  state: SimNodeState;
}

/** A fault as it was applied. */
export interface AppliedFault {
  /** The parsed fault. */
  fault: Fault;
  /** Its specification text. */
  spec: string;
  /** The node it acted on (for sensor-loss the sensor's node, for app-hang the primary's node). */
  node: string;
  /** Clock time (ms, monotonic) at which it was applied. */
  appliedAtMs: number;
  /** `appliedAtMs` minus the publisher's start, ms. */
  offsetMs: number;
  /** `performance.timeOrigin + appliedAtMs`: wall-clock ms for cross-process comparisons. */
  wallTimeMs: number;
  /** Clock time of the last node heartbeat of `node` sent before the fault; `undefined` if none. */
  lastHeartbeatAtMs: number | undefined;
  /** For a partition: clock time at which the node was connected again. */
  healedAtMs?: number;
}

/** The result of {@linkcode runPublisher}. */
export interface PublisherReport {
  /** Clock time (ms, monotonic) when every node was connected and publishing started. */
  startedAtMs: number;
  /** `performance.timeOrigin + startedAtMs`. */
  startedWallTimeMs: number;
  /** Clock time when the ordered shutdown began (after `durationMs` or on abort). */
  shutdownAtMs: number;
  /** Clock time when every client had ended. */
  endedAtMs: number;
  /** True when the run was cut short by the abort signal. */
  aborted: boolean;
  /** Per node, by name. */
  nodes: Record<string, PublisherNodeReport>;
  /** The faults applied, in order of application. */
  faults: AppliedFault[];
  /** Faults whose time did not come before the end of the run. */
  notApplied: Fault[];
}

/** Options of {@linkcode runPublisher}. */
export interface PublisherOptions {
  /** Validated configuration: the nodes, sensors and workloads to simulate and the broker. */
  config: Config;
  /** Faults to inject (parsed with `parseFault`). */
  faults: Fault[];
  /** How long to publish, ms from the start (after every node connected). */
  durationMs: number;
  /**
   * Opens one connection (default `mqtt.connect(config.mqtt.url, options)`). The options carry
   * client id `sdv-sim-<node>`, the node's Last Will and `queueQoSZero: false`.
   */
  connect?: (options: IClientOptions) => MqttClientLike;
  /** Monotonic clock (default {@linkcode systemClock}). */
  clock?: Clock;
  /** Logger (default silent). */
  log?: Logger;
  /** Aborting ends the run early with the same ordered shutdown. */
  signal?: AbortSignal;
  /** Uniform random numbers in [0, 1) for jitter (default `Math.random`). */
  random?: () => number;
}

/** The fields of an `npm:mqtt` client used for abrupt closes; absent on fakes. */
interface AbruptClosable {
  options?: { reconnectPeriod?: number };
  stream?: { destroy(): void };
  reconnect?: () => unknown;
}

/**
 * The node's view of its connection: forwards to the real client, but drops every publish while the
 * node is silenced (hung, crashed, partitioned), delays node heartbeats under jitter (FIFO, as on
 * one TCP connection) and counts what went out.
 */
class SimNodeClient implements MqttClientLike {
  readonly real: MqttClientLike;
  readonly #clock: Clock;
  readonly #hbTopic: string;
  silencedBy: string | undefined;
  jitterMaxMs = 0;
  random: () => number = Math.random;
  heartbeatsSent = 0;
  lastHeartbeatAtMs: number | undefined;
  #lastJitterDueMs = -Infinity;
  readonly #jitterTimers = new Set<TimerHandle>();

  constructor(real: MqttClientLike, clock: Clock, hbTopic: string) {
    this.real = real;
    this.#clock = clock;
    this.#hbTopic = hbTopic;
  }

  get connected(): boolean {
    return this.real.connected;
  }

  publish(
    topic: string,
    message: string | Uint8Array,
    options?: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown {
    if (this.silencedBy !== undefined) {
      callback?.(new Error(`publish suppressed by fault ${this.silencedBy}`));
      return undefined;
    }
    if (topic !== this.#hbTopic) return this.real.publish(topic, message, options, callback);
    if (this.jitterMaxMs <= 0) return this.#sendHeartbeat(message, options, callback);
    const now = this.#clock.nowMs();
    const dueMs = Math.max(this.#lastJitterDueMs, now + this.random() * this.jitterMaxMs);
    this.#lastJitterDueMs = dueMs;
    const timer = this.#clock.setTimer(() => {
      this.#jitterTimers.delete(timer);
      if (this.silencedBy !== undefined || !this.real.connected) {
        callback?.(new Error("heartbeat dropped: node silenced or disconnected"));
        return;
      }
      this.#sendHeartbeat(message, options, callback);
    }, dueMs - now);
    this.#jitterTimers.add(timer);
    return undefined;
  }

  #sendHeartbeat(
    message: string | Uint8Array,
    options?: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown {
    this.heartbeatsSent++;
    this.lastHeartbeatAtMs = this.#clock.nowMs();
    return this.real.publish(this.#hbTopic, message, options, callback);
  }

  /** Drops heartbeats still held back by jitter. */
  cancelJitter(): void {
    for (const t of this.#jitterTimers) this.#clock.clearTimer(t);
    this.#jitterTimers.clear();
  }

  subscribe(
    topics: string | string[],
    options: { qos: 0 | 1 | 2 },
    callback?: (error: Error | null) => void,
  ): unknown {
    return this.real.subscribe(topics, options, callback);
  }

  on(
    event: "connect" | "message" | "close" | "offline" | "reconnect" | "error",
    listener: (...args: never[]) => void,
  ): unknown {
    return (this.real.on as (e: string, l: (...args: never[]) => void) => unknown)(
      event,
      listener,
    );
  }

  end(force?: boolean, options?: object, callback?: () => void): unknown {
    return this.real.end(force, options, callback);
  }
}

interface SimSensor {
  config: SensorConfig;
  topic: string;
  schedule?: PeriodicSchedule;
  lost: boolean;
  seq: number;
  lastTickAtMs: number | undefined;
}

interface SimApp {
  workload: WorkloadConfig;
  role: "primary" | "standby";
  topic: string;
  schedule?: PeriodicSchedule;
  hung: boolean;
  seq: number;
  lastBeatAtMs: number | undefined;
}

interface SimNode {
  config: NodeConfig;
  client: SimNodeClient;
  agent: NodeAgent;
  log: Logger;
  state: SimNodeState;
  sensors: SimSensor[];
  apps: SimApp[];
  ticksSent: number;
  appHeartbeatsSent: number;
  healTimer?: Deadline;
  /** The node-hang fault that silenced the node, if any (a healed partition keeps it hung). */
  hungBy?: string;
}

/**
 * Runs the vehicle simulation for `durationMs` (or until `signal` aborts) and returns what it did.
 *
 * Start: one connection per node is opened and awaited (bounded by `config.mqtt.connectTimeoutMs`);
 * the run's time origin is the moment the last one connected. End: fault and generator timers are
 * cancelled, then every agent stops (retained `offline` where the node is still connected and not
 * hung, then a graceful DISCONNECT; crashed and partitioned connections are just ended; a hung
 * node publishes nothing, not even `offline`). Resolves when every client has ended.
 *
 * @throws Error when a fault names an unknown node, sensor or workload, when `durationMs` is not a
 *   non-negative number, when the MQTT options cannot be built (credentials), when a node names an
 *   unconfigured required sensor, or when a node cannot connect within `connectTimeoutMs` (every
 *   connection opened so far is closed first).
 */
export async function runPublisher(opts: PublisherOptions): Promise<PublisherReport> {
  const { config, faults, durationMs } = opts;
  const clock = opts.clock ?? systemClock;
  const log = opts.log ?? silentLogger;
  const random = opts.random ?? Math.random;
  const connect = opts.connect ??
    ((options: IClientOptions): MqttClientLike => connectNoDelay(config.mqtt.url, options));
  if (!(durationMs >= 0) || !Number.isFinite(durationMs)) {
    throw new Error(`durationMs must be a non-negative number, got ${durationMs}`);
  }
  const problems = validateFaults(faults, config);
  if (problems.length > 0) throw new Error(`inapplicable faults: ${problems.join("; ")}`);
  const p = config.mqtt.topicPrefix;
  const wall = (ms: number) => performance.timeOrigin + ms;

  // ---- connect, one client per node -------------------------------------------------------
  const nodes = new Map<string, SimNode>();
  const connected = new Set<string>();
  let onConnected = () => {};
  // Every option set first: a credential problem must not leave connections behind.
  const optionsByNode = config.nodes.map((nodeConfig) => {
    const options = buildMqttOptions(config.mqtt, {
      clientId: `sdv-sim-${nodeConfig.name}`,
      will: agentWill(config, nodeConfig.name),
    });
    options.queueQoSZero = false; // a heartbeat sent late is a stale one: never queue
    return [nodeConfig, options] as const;
  });
  const opened: MqttClientLike[] = [];
  try {
    for (const [nodeConfig, options] of optionsByNode) {
      const nodeLog = log.child({ node: nodeConfig.name });
      const real = connect(options);
      opened.push(real);
      real.on("error", (error) => nodeLog.debug("mqtt-error", { error: error.message }));
      real.on("connect", () => {
        connected.add(nodeConfig.name);
        onConnected();
      });
      const client = new SimNodeClient(real, clock, nodeHeartbeatTopic(p, nodeConfig));
      client.random = random;
      nodes.set(nodeConfig.name, {
        config: nodeConfig,
        client,
        agent: new NodeAgent({ config, nodeName: nodeConfig.name, client, clock, log }),
        log: nodeLog,
        state: "running",
        sensors: [],
        apps: [],
        ticksSent: 0,
        appHeartbeatsSent: 0,
      });
    }
  } catch (error) {
    for (const c of opened) c.end(true);
    throw error;
  }
  for (const s of config.sensors) {
    nodes.get(s.node)?.sensors.push({
      config: s,
      topic: sensorTickTopic(p, s),
      lost: false,
      seq: 0,
      lastTickAtMs: undefined,
    });
  }
  for (const w of config.workloads) {
    if (!w.appHeartbeat) continue;
    for (const role of ["primary", "standby"] as const) {
      const node = w[role].node;
      nodes.get(node)?.apps.push({
        workload: w,
        role,
        topic: appHeartbeatTopic(p, w.name, node),
        hung: false,
        seq: 0,
        lastBeatAtMs: undefined,
      });
    }
  }

  const endAll = async () => {
    await Promise.all([...nodes.values()].map((n) =>
      new Promise<void>((resolve) => {
        const timer = clock.setTimer(resolve, 1000); // bound: a client may never call back
        n.client.real.end(true, {}, () => {
          clock.clearTimer(timer);
          resolve();
        });
      })
    ));
  };

  const connectOutcome = await new Promise<"ok" | "timeout" | "aborted">((resolve) => {
    const timeoutMs = config.mqtt.connectTimeoutMs;
    const onAbort = () => done("aborted");
    const done = (outcome: "ok" | "timeout" | "aborted") => {
      clock.clearTimer(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      resolve(outcome);
    };
    const timer = clock.setTimer(() => done("timeout"), timeoutMs);
    onConnected = () => {
      if (connected.size === nodes.size) done("ok");
    };
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.signal?.aborted) done("aborted");
    onConnected();
  });
  onConnected = () => {};
  if (connectOutcome !== "ok") {
    await endAll();
    if (connectOutcome === "timeout") {
      const missing = [...nodes.keys()].filter((n) => !connected.has(n));
      throw new Error(
        `node(s) ${missing.join(", ")} did not connect to ${config.mqtt.url} within ` +
          `${config.mqtt.connectTimeoutMs} ms`,
      );
    }
    const now = clock.nowMs();
    return {
      startedAtMs: now,
      startedWallTimeMs: wall(now),
      shutdownAtMs: now,
      endedAtMs: clock.nowMs(),
      aborted: true,
      nodes: Object.fromEntries([...nodes].map(([name, n]) => [name, nodeReport(n)])),
      faults: [],
      notApplied: [...faults],
    };
  }

  // ---- run -----------------------------------------------------------------------------------
  const startedAtMs = clock.nowMs();
  log.info("publisher-started", {
    url: config.mqtt.url,
    nodes: [...nodes.keys()],
    durationMs,
    faults: faults.map((f) => f.spec),
    startedWallTimeMs: wall(startedAtMs),
  });
  const tick = (node: SimNode, s: SimSensor) => {
    if (s.lost || node.client.silencedBy !== undefined || !node.client.connected) return;
    node.client.publish(s.topic, encodeBeat(++s.seq), { qos: 0, retain: false });
    s.lastTickAtMs = clock.nowMs();
    node.ticksSent++;
  };
  const beat = (node: SimNode, a: SimApp) => {
    if (a.hung || node.client.silencedBy !== undefined || !node.client.connected) return;
    node.client.publish(a.topic, encodeBeat(++a.seq), { qos: 0, retain: false });
    a.lastBeatAtMs = clock.nowMs();
    node.appHeartbeatsSent++;
  };
  for (const node of nodes.values()) {
    for (const s of node.sensors) {
      s.schedule = new PeriodicSchedule(clock, s.config.periodMs, () => tick(node, s));
      tick(node, s); // slot 0: the first frame at the start
      s.schedule.start(startedAtMs);
    }
    for (const a of node.apps) {
      const periodMs = a.workload.appHeartbeat!.periodMs;
      a.schedule = new PeriodicSchedule(clock, periodMs, () => beat(node, a));
      beat(node, a);
      a.schedule.start(startedAtMs);
    }
    node.agent.start();
  }

  const applied: AppliedFault[] = [];
  const pending = new Set<Fault>(faults);
  const faultTimers: Deadline[] = [];
  let running = true;
  const record = (fault: Fault, node: SimNode, extra: Record<string, unknown> = {}) => {
    const appliedAtMs = clock.nowMs();
    const entry: AppliedFault = {
      fault,
      spec: fault.spec,
      node: node.config.name,
      appliedAtMs,
      offsetMs: appliedAtMs - startedAtMs,
      wallTimeMs: wall(appliedAtMs),
      lastHeartbeatAtMs: node.client.lastHeartbeatAtMs,
    };
    applied.push(entry);
    pending.delete(fault);
    node.log.warn("fault-applied", {
      fault: fault.spec,
      kind: fault.kind,
      atMs: appliedAtMs,
      offsetMs: round(entry.offsetMs),
      wallTimeMs: round(entry.wallTimeMs),
      lastHeartbeatAtMs: entry.lastHeartbeatAtMs === undefined
        ? null
        : round(entry.lastHeartbeatAtMs),
      sinceLastHeartbeatMs: entry.lastHeartbeatAtMs === undefined
        ? null
        : round(appliedAtMs - entry.lastHeartbeatAtMs),
      ...extra,
    });
    return entry;
  };
  const noEffect = (fault: Fault, node: SimNode) => {
    pending.delete(fault);
    node.log.warn("fault-no-effect", { fault: fault.spec, state: node.state });
  };

  const apply = (fault: Fault) => {
    if (!running) return;
    switch (fault.kind) {
      case "node-crash":
      case "partition": {
        const node = nodes.get(fault.node)!;
        if (node.state === "crashed" || node.state === "partitioned") return noEffect(fault, node);
        node.client.silencedBy = fault.spec;
        node.client.cancelJitter();
        const entry = record(fault, node);
        abruptClose(node.client.real, node.log);
        if (fault.kind === "node-crash") {
          node.state = "crashed";
          return;
        }
        node.state = "partitioned";
        node.healTimer = deadline(clock, clock.nowMs() + fault.durationMs, () => {
          node.healTimer = undefined;
          if (!running) return;
          heal(node, fault, entry);
        });
        return;
      }
      case "node-hang": {
        const node = nodes.get(fault.node)!;
        if (node.state !== "running") return noEffect(fault, node);
        node.state = "hung";
        node.hungBy = fault.spec;
        node.client.silencedBy = fault.spec;
        node.client.cancelJitter();
        record(fault, node);
        return;
      }
      case "sensor-loss": {
        const node = nodes.get(config.sensors.find((s) => s.name === fault.sensor)!.node)!;
        const sensor = node.sensors.find((s) => s.config.name === fault.sensor)!;
        sensor.lost = true;
        record(fault, node, {
          sensor: fault.sensor,
          lastTickAtMs: sensor.lastTickAtMs === undefined ? null : round(sensor.lastTickAtMs),
        });
        return;
      }
      case "app-hang": {
        const w = config.workloads.find((w) => w.name === fault.workload)!;
        const node = nodes.get(w.primary.node)!;
        const app = node.apps.find((a) => a.workload.name === w.name && a.role === "primary")!;
        app.hung = true;
        record(fault, node, {
          workload: w.name,
          lastAppHeartbeatAtMs: app.lastBeatAtMs === undefined ? null : round(app.lastBeatAtMs),
        });
        return;
      }
      case "jitter": {
        const node = nodes.get(fault.node)!;
        node.client.jitterMaxMs = fault.maxDelayMs;
        record(fault, node, { maxDelayMs: fault.maxDelayMs });
        return;
      }
    }
  };

  const heal = (node: SimNode, fault: Fault, entry: AppliedFault) => {
    const real = node.client.real as MqttClientLike & AbruptClosable;
    if (typeof real.reconnect !== "function") {
      node.log.warn("partition-cannot-heal", {
        fault: fault.spec,
        reason: "the client has no reconnect()",
      });
      return;
    }
    node.client.silencedBy = node.hungBy; // other publishes are dropped until connected anyway
    let healed = false;
    real.on("connect", () => {
      if (healed || !running) return;
      healed = true;
      node.state = node.hungBy === undefined ? "running" : "hung";
      entry.healedAtMs = clock.nowMs();
      node.log.warn("partition-healed", {
        fault: fault.spec,
        healedAtMs: round(entry.healedAtMs),
        partitionedForMs: round(entry.healedAtMs - entry.appliedAtMs),
      });
    });
    if (real.options) real.options.reconnectPeriod = config.mqtt.reconnectPeriodMs;
    node.log.info("partition-reconnecting", { fault: fault.spec });
    real.reconnect();
  };

  for (const fault of faults) {
    if (fault.kind === "jitter") {
      apply(fault);
      continue;
    }
    faultTimers.push(deadline(clock, startedAtMs + fault.atMs, () => apply(fault)));
  }

  const aborted = await new Promise<boolean>((resolve) => {
    const onAbort = () => done(true);
    const done = (wasAborted: boolean) => {
      timer.cancel();
      opts.signal?.removeEventListener("abort", onAbort);
      resolve(wasAborted);
    };
    const timer = deadline(clock, startedAtMs + durationMs, () => done(false));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    if (opts.signal?.aborted) done(true);
  });

  // ---- ordered shutdown -------------------------------------------------------------------
  running = false;
  const shutdownAtMs = clock.nowMs();
  log.info("publisher-stopping", { aborted, elapsedMs: round(shutdownAtMs - startedAtMs) });
  for (const t of faultTimers) t.cancel();
  for (const node of nodes.values()) {
    node.healTimer?.cancel();
    for (const s of node.sensors) s.schedule?.stop();
    for (const a of node.apps) a.schedule?.stop();
    node.client.cancelJitter();
  }
  await Promise.all(
    [...nodes.values()].map((n) =>
      n.agent.stop({ timeoutMs: config.supervisor.shutdownTimeoutMs })
    ),
  );
  const endedAtMs = clock.nowMs();
  const report: PublisherReport = {
    startedAtMs,
    startedWallTimeMs: wall(startedAtMs),
    shutdownAtMs,
    endedAtMs,
    aborted,
    nodes: Object.fromEntries([...nodes].map(([name, n]) => [name, nodeReport(n)])),
    faults: applied,
    notApplied: [...pending],
  };
  for (const f of report.notApplied) {
    log.warn("fault-not-applied", { fault: f.spec });
  }
  log.info("publisher-stopped", { shutdownMs: round(endedAtMs - shutdownAtMs) });
  return report;
}

function nodeReport(n: SimNode): PublisherNodeReport {
  return {
    heartbeatsSent: n.client.heartbeatsSent,
    lastHeartbeatAtMs: n.client.lastHeartbeatAtMs,
    gatedPeriods: n.agent.stats.gatedPeriods,
    ticksSent: n.ticksSent,
    appHeartbeatsSent: n.appHeartbeatsSent,
    state: n.state,
  };
}

/**
 * Closes the TCP connection without DISCONNECT so that the broker publishes the Last Will:
 * automatic reconnect is disabled first, then the socket is destroyed. Clients without a socket
 * (test fakes) are force-ended instead.
 */
function abruptClose(client: MqttClientLike, log: Logger): void {
  const real = client as MqttClientLike & AbruptClosable;
  if (real.options) real.options.reconnectPeriod = 0;
  if (real.stream && typeof real.stream.destroy === "function") {
    real.stream.destroy();
  } else {
    log.warn("no-socket-force-end", { reason: "no socket to destroy; Last Will not guaranteed" });
    client.end(true);
  }
}

/** A cancellable one-shot at an absolute clock time. */
interface Deadline {
  cancel(): void;
}

/**
 * Calls `callback` at `dueMs` on the clock, never before: the system clock's timers truncate
 * fractional delays and were seen to fire up to ≈ 0.6 ms early, so an early firing re-arms.
 */
function deadline(clock: Clock, dueMs: number, callback: () => void): Deadline {
  let handle: TimerHandle | undefined;
  const arm = () => {
    handle = clock.setTimer(() => {
      handle = undefined;
      if (clock.nowMs() < dueMs) arm();
      else callback();
    }, dueMs - clock.nowMs());
  };
  arm();
  return {
    cancel: () => {
      if (handle !== undefined) clock.clearTimer(handle);
      handle = undefined;
    },
  };
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
