/**
 * One simulated vehicle node: its real MQTT connection, the real {@linkcode NodeAgent} on it (so the
 * node heartbeat, the `online` / `degraded:…` / `draining` / `offline` status and the drain follow
 * exactly the agent's rules), the ticks of every sensor attached to it and the app heartbeats of
 * every workload instance placed on it, plus the operations that faults perform on it.
 *
 * @module
 */
import type { Clock } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { AppTarget, NodeTarget, SensorTarget } from "../topology/topology.ts";
import { encodeBeat } from "../wire/wire.ts";
import { type DrainResult, NodeAgent } from "../agent/agent.ts";
import { PeriodicSchedule } from "../agent/periodic_schedule.ts";
import type { PublisherNodeReport, SimNodeState } from "./report.ts";
import { type SimConnection, SimNodeClient } from "./sim_client.ts";

/**
 * A periodic `{"seq":n}` QoS 0 publisher on one topic (a sensor's ticks or an app instance's
 * heartbeats) that a fault can stop for good.
 */
export class BeatSource {
  /** The topic it publishes to. */
  readonly topic: string;
  /** Set by a fault: it publishes nothing more. */
  stopped = false;
  /** Messages sent. */
  sent = 0;
  /** Clock time (ms) of the last message sent; `undefined` before the first. */
  lastSentAtMs: number | undefined;
  readonly #client: SimNodeClient;
  readonly #clock: Clock;
  readonly #schedule: PeriodicSchedule;
  #seq = 0;

  /** A stopped source of one message every `periodMs` on `topic`, through `client`. */
  constructor(client: SimNodeClient, clock: Clock, topic: string, periodMs: number) {
    this.topic = topic;
    this.#client = client;
    this.#clock = clock;
    this.#schedule = new PeriodicSchedule(clock, periodMs, () => this.#beat());
  }

  /** Sends the first message now, then one per period on the `startedAtMs + k·period` grid. */
  start(startedAtMs: number): void {
    this.#beat();
    this.#schedule.start(startedAtMs);
  }

  /** Cancels the schedule. */
  cancel(): void {
    this.#schedule.stop();
  }

  #beat(): void {
    const client = this.#client;
    if (this.stopped || client.silencedBy !== undefined || !client.connected) return;
    client.publish(this.topic, encodeBeat(++this.#seq), { qos: 0, retain: false });
    this.lastSentAtMs = this.#clock.nowMs();
    this.sent++;
  }
}

/** Options of {@linkcode SimulatedNode}. */
export interface SimulatedNodeOptions {
  /** The node, from the topology. */
  node: NodeTarget;
  /** Its connection, opened with the node's Last Will (`agentWill`). */
  connection: SimConnection;
  /** Monotonic clock. */
  clock: Clock;
  /** Logger (the node's name is added). */
  log: Logger;
  /** Uniform random numbers in [0, 1) for jitter. */
  random: () => number;
}

/** One simulated node. Lifecycle: construct → {@linkcode SimulatedNode.start} → stop. */
export class SimulatedNode {
  /** The node, from the topology. */
  readonly node: NodeTarget;
  /** What the agent and the generators publish through (silencing, jitter, counting). */
  readonly client: SimNodeClient;
  /** The real node agent. */
  readonly agent: NodeAgent;
  /** The node's logger. */
  readonly log: Logger;
  /** What the node is doing. */
  state: SimNodeState = "running";
  /** The node-hang fault that silenced the node, if any (a healed partition keeps it hung). */
  hungBy: string | undefined;
  readonly #sensors = new Map<SensorTarget, BeatSource>();
  readonly #apps = new Map<AppTarget, BeatSource>();

  /** Sets the node up; nothing is published before {@linkcode SimulatedNode.start}. */
  constructor(options: SimulatedNodeOptions) {
    const { node, clock } = options;
    this.node = node;
    this.log = options.log.child({ node: node.name });
    this.client = new SimNodeClient({
      connection: options.connection,
      clock,
      heartbeatTopic: node.topic,
      random: options.random,
    });
    this.agent = new NodeAgent({ node, client: this.client, clock, log: options.log });
    for (const sensor of node.sensors) {
      this.#sensors.set(sensor, new BeatSource(this.client, clock, sensor.topic, sensor.periodMs));
    }
    for (const placement of node.placements) {
      const app = placement.app;
      if (app) this.#apps.set(app, new BeatSource(this.client, clock, app.topic, app.periodMs));
    }
  }

  /** The node's name. */
  get name(): string {
    return this.node.name;
  }

  /** The real connection. */
  get connection(): SimConnection {
    return this.client.connection;
  }

  /** Starts the sensor ticks and app heartbeats (first ones now) and the agent. */
  start(startedAtMs: number): void {
    for (const source of this.#sensors.values()) source.start(startedAtMs);
    for (const source of this.#apps.values()) source.start(startedAtMs);
    this.agent.start();
  }

  /** The tick source of one of this node's sensors. */
  sensor(sensor: SensorTarget): BeatSource | undefined {
    return this.#sensors.get(sensor);
  }

  /** The heartbeat source of an app instance on this node. */
  app(app: AppTarget): BeatSource | undefined {
    return this.#apps.get(app);
  }

  /** Every publish of the node stops (`spec` names the fault); in-flight jitter is dropped. */
  silence(spec: string | undefined): void {
    this.client.silencedBy = spec;
    if (spec !== undefined) this.client.cancelJitter();
  }

  /**
   * Closes the TCP connection without DISCONNECT so that the broker publishes the Last Will:
   * automatic reconnect is disabled first, then the socket is destroyed. Connections without a
   * socket (test fakes) are force-ended instead.
   */
  cutConnection(): void {
    const connection = this.connection;
    if (connection.options) connection.options.reconnectPeriod = 0;
    if (connection.stream && typeof connection.stream.destroy === "function") {
      connection.stream.destroy();
    } else {
      this.log.warn("no-socket-force-end", {
        reason: "no socket to destroy; Last Will not guaranteed",
      });
      connection.endAsync(true).catch(() => {});
    }
  }

  /**
   * Reconnects after {@linkcode SimulatedNode.cutConnection}, re-enabling automatic reconnects
   * every `reconnectPeriodMs`; `onConnected` runs once, at the first connect.
   * @returns false when the connection cannot reconnect (a fake without `reconnect()`).
   */
  reconnect(reconnectPeriodMs: number, onConnected: () => void): boolean {
    const connection = this.connection;
    if (typeof connection.reconnect !== "function") return false;
    let connected = false;
    connection.on("connect", () => {
      if (connected) return;
      connected = true;
      onConnected();
    });
    if (connection.options) connection.options.reconnectPeriod = reconnectPeriodMs;
    connection.reconnect();
    return true;
  }

  /** Stops the sensor and app generators and drops heartbeats held back by jitter. */
  stopGenerators(): void {
    for (const source of this.#sensors.values()) source.cancel();
    for (const source of this.#apps.values()) source.cancel();
    this.client.cancelJitter();
  }

  /** Stops the agent (retained `offline` if it can still publish, then DISCONNECT). */
  stop(timeoutMs: number): Promise<void> {
    return this.agent.stop({ timeoutMs });
  }

  /**
   * A planned stop, as the agent command does on SIGTERM/SIGHUP: the agent drains (retained
   * `draining`, heartbeats, sensor ticks and app heartbeats go on until a promotion has moved every
   * workload active here, at most `drainTimeoutMs`), then the generators stop and the agent
   * publishes retained `offline` and DISCONNECTs. The state is `draining`, then `stopped`.
   * @returns the drain's result, once the node has stopped.
   */
  async plannedStop(drainTimeoutMs: number, stopTimeoutMs: number): Promise<DrainResult> {
    this.state = "draining";
    const result = await this.agent.drain({ timeoutMs: drainTimeoutMs });
    this.stopGenerators();
    await this.stop(stopTimeoutMs);
    if (this.state === "draining") this.state = "stopped"; // a crash meanwhile stays a crash
    return result;
  }

  /** The node's part of the run's report. */
  report(): PublisherNodeReport {
    let ticksSent = 0;
    for (const s of this.#sensors.values()) ticksSent += s.sent;
    let appHeartbeatsSent = 0;
    for (const a of this.#apps.values()) appHeartbeatsSent += a.sent;
    return {
      heartbeatsSent: this.client.heartbeatsSent,
      lastHeartbeatAtMs: this.client.lastHeartbeatAtMs,
      degradedPeriods: this.agent.stats.degradedPeriods,
      ticksSent,
      appHeartbeatsSent,
      state: this.state,
    };
  }
}
