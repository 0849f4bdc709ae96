/**
 * The node agent: the node-side role that runs on every Jetson.
 *
 * It publishes the node heartbeat (`{p}/node/{node}/hb`, QoS 0, `{"seq":n}`) on a drift-free
 * monotonic schedule, but only while every sensor in the node's `requiredSensors` ticked within
 * that sensor's `timeoutMs` (the origin project gates on camera frames seen within 150 ms), so a
 * node whose cameras went dark stops looking alive. It announces itself with a retained QoS 1
 * `online` on every (re)connect (the retained `offline` Last Will is set by the caller in the
 * connect options, see {@linkcode agentWill}) and a retained `offline` on an orderly stop. It
 * watches the retained promotions of the workloads placed on its node and logs `fenced` when a
 * newer epoch names another node as active (the old primary stands down).
 *
 * The agent never loads the Kubernetes client and never reads wall-clock time for timing.
 *
 * @module
 */
import type { Config, NodeConfig, SensorConfig, WorkloadConfig } from "../config/schema.ts";
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { IncomingPacket, MqttClientLike } from "../ingest/mqtt_client.ts";
import type { WillOptions } from "../ingest/mqtt_options.ts";
import {
  decodeBeat,
  decodePromotion,
  encodeBeat,
  nodeHeartbeatTopic,
  nodeStatusTopic,
  type Promotion,
  promotionTopic,
  sensorTickTopic,
} from "../ingest/wire.ts";

/** Default bound of {@linkcode NodeAgent.stop}, in ms. */
export const DEFAULT_AGENT_STOP_TIMEOUT_MS = 2000;

/**
 * The Last Will a node agent's connection must carry: retained QoS 1 `offline` on the node's status
 * topic, published by the broker when the connection drops without DISCONNECT.
 *
 * @param config validated configuration.
 * @param nodeName a node named in `config.nodes`.
 * @throws Error when `nodeName` is not a configured node.
 */
export function agentWill(config: Config, nodeName: string): WillOptions {
  const node = findNode(config, nodeName);
  return {
    topic: nodeStatusTopic(config.mqtt.topicPrefix, node),
    payload: "offline",
    qos: 1,
    retain: true,
  };
}

/**
 * A drift-free periodic schedule on a monotonic {@linkcode Clock}: slot `k` is due at
 * `startMs + k·periodMs` (k = 1, 2, …), computed from the start, never from the previous firing,
 * so lateness does not accumulate. When the event loop stalled past one or more slots, the missed
 * slots are skipped (counted in {@linkcode PeriodicSchedule.missedSlots}) rather than fired in a
 * burst. A timer that fires slightly early (the system clock's timers truncate fractional delays:
 * seen up to ≈ 0.6 ms) counts as the slot it was armed for; it is not fired twice.
 */
export class PeriodicSchedule {
  readonly #clock: Clock;
  readonly #periodMs: number;
  readonly #onSlot: (slot: number, nowMs: number) => void;
  #startMs = 0;
  #slot = 0;
  #timer: TimerHandle | undefined;
  #running = false;
  #missed = 0;

  /**
   * Creates a stopped schedule.
   * @param clock monotonic clock.
   * @param periodMs period in ms (> 0).
   * @param onSlot called once per slot with the slot number and the clock reading; exceptions
   *   propagate to the timer source after the next slot has been scheduled.
   * @throws RangeError when `periodMs` is not a positive finite number.
   */
  constructor(clock: Clock, periodMs: number, onSlot: (slot: number, nowMs: number) => void) {
    if (!(periodMs > 0) || !Number.isFinite(periodMs)) {
      throw new RangeError(`periodMs must be a positive number, got ${periodMs}`);
    }
    this.#clock = clock;
    this.#periodMs = periodMs;
    this.#onSlot = onSlot;
  }

  /**
   * Starts the schedule; the first slot is due at `startMs + periodMs`.
   * @param startMs the schedule's origin on the clock (default: now). Calling start twice is a
   *   no-op while running.
   */
  start(startMs: number = this.#clock.nowMs()): void {
    if (this.#running) return;
    this.#running = true;
    this.#startMs = startMs;
    this.#slot = 0;
    this.#arm(1);
  }

  /** Stops the schedule; pending slots are cancelled. Idempotent. */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  /** Slots skipped because the timer fired more than one period late. */
  get missedSlots(): number {
    return this.#missed;
  }

  #arm(slot: number): void {
    this.#slot = slot;
    const dueMs = this.#startMs + slot * this.#periodMs;
    this.#timer = this.#clock.setTimer(() => this.#fire(), dueMs - this.#clock.nowMs());
  }

  #fire(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const nowMs = this.#clock.nowMs();
    const slot = this.#slot;
    // The slot whose due time is the latest not after now (>= slot when on time or late).
    const current = Math.max(slot, Math.floor((nowMs - this.#startMs) / this.#periodMs));
    this.#missed += current - slot;
    this.#arm(current + 1);
    this.#onSlot(current, nowMs);
  }
}

/** Counters of a {@linkcode NodeAgent}; a snapshot, not live. */
export interface NodeAgentStats {
  /** Node heartbeats handed to the MQTT client. */
  readonly heartbeatsSent: number;
  /** Heartbeat slots withheld because a required sensor was stale (or never seen). */
  readonly gatedPeriods: number;
  /** Heartbeat slots skipped because the client was not connected (never queued for later). */
  readonly offlinePeriods: number;
  /** Heartbeat slots skipped because the timer fired more than a period late. */
  readonly missedSlots: number;
  /** Clock reading (ms, monotonic) of the last heartbeat sent; `undefined` before the first. */
  readonly lastHeartbeatAtMs: number | undefined;
  /** `seq` of the last heartbeat sent (0 before the first; the first heartbeat carries 1). */
  readonly seq: number;
  /** Malformed tick or promotion payloads dropped. */
  readonly malformed: number;
  /** Promotions that named another node active for a workload of this node (stand-downs). */
  readonly fenced: number;
}

/** What {@linkcode NodeAgent.onPromotion} listeners receive. */
export interface PromotionEvent {
  /** The decoded promotion (its epoch is above every earlier one this agent saw). */
  promotion: Promotion;
  /** True when another node is now active, i.e. this node's instance must stand down. */
  fenced: boolean;
  /** The role this node has in the workload's configuration. */
  role: "primary" | "standby";
}

/** Options of {@linkcode NodeAgent}. */
export interface NodeAgentOptions {
  /** Validated configuration. */
  config: Config;
  /** The node this agent speaks for; must be in `config.nodes`. */
  nodeName: string;
  /**
   * Connected or connecting client whose connect options carry {@linkcode agentWill}. It must
   * restore subscriptions after a reconnect (`npm:mqtt` does with its default `resubscribe: true`);
   * the agent owns it from {@linkcode NodeAgent.start} on and ends it in {@linkcode NodeAgent.stop}.
   */
  client: MqttClientLike;
  /** Monotonic clock (default {@linkcode systemClock}). */
  clock?: Clock;
  /** Logger (default silent). */
  log?: Logger;
}

/**
 * The node-side agent of one Jetson (see the module documentation for the protocol).
 *
 * Lifecycle: construct → {@linkcode NodeAgent.start} → {@linkcode NodeAgent.stop}. Not restartable.
 */
export class NodeAgent {
  readonly #node: NodeConfig;
  readonly #client: MqttClientLike;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #hbTopic: string;
  readonly #statusTopic: string;
  readonly #promotionFilter: string;
  /** tick topic → required sensor */
  readonly #ticks = new Map<string, SensorConfig>();
  readonly #lastTickAtMs = new Map<string, number>();
  /** promotion topic → workload of this node */
  readonly #workloads = new Map<string, WorkloadConfig>();
  readonly #lastEpoch = new Map<string, number>();
  readonly #listeners = new Set<(event: PromotionEvent) => void>();
  readonly #schedule: PeriodicSchedule;
  #started = false;
  #stopping: Promise<void> | undefined;
  #gated = false;
  #lastError: string | undefined;
  #heartbeatsSent = 0;
  #gatedPeriods = 0;
  #offlinePeriods = 0;
  #lastHeartbeatAtMs: number | undefined;
  #seq = 0;
  #malformed = 0;
  #fenced = 0;

  /**
   * Creates an agent; nothing is subscribed or published before {@linkcode NodeAgent.start}.
   * @throws Error when `nodeName` is not configured, or names a required sensor that is not in
   *   `config.sensors`.
   */
  constructor(options: NodeAgentOptions) {
    const { config, nodeName } = options;
    this.#node = findNode(config, nodeName);
    this.#client = options.client;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.log ?? silentLogger).child({ node: nodeName });
    const p = config.mqtt.topicPrefix;
    this.#hbTopic = nodeHeartbeatTopic(p, this.#node);
    this.#statusTopic = nodeStatusTopic(p, this.#node);
    this.#promotionFilter = promotionTopic(p, "+");
    for (const name of this.#node.requiredSensors) {
      const sensor = config.sensors.find((s) => s.name === name);
      if (!sensor) {
        throw new Error(`node ${nodeName}: required sensor ${name} is not configured`);
      }
      this.#ticks.set(sensorTickTopic(p, sensor), sensor);
    }
    for (const w of config.workloads) {
      if (w.primary.node === nodeName || w.standby.node === nodeName) {
        this.#workloads.set(promotionTopic(p, w.name), w);
      }
    }
    this.#schedule = new PeriodicSchedule(
      this.#clock,
      this.#node.heartbeatPeriodMs,
      (_slot, nowMs) => this.#onSlot(nowMs),
    );
  }

  /** The node this agent speaks for. */
  get nodeName(): string {
    return this.#node.name;
  }

  /** The topic the heartbeats go to. */
  get heartbeatTopic(): string {
    return this.#hbTopic;
  }

  /** A snapshot of the agent's counters. */
  get stats(): NodeAgentStats {
    return Object.freeze({
      heartbeatsSent: this.#heartbeatsSent,
      gatedPeriods: this.#gatedPeriods,
      offlinePeriods: this.#offlinePeriods,
      missedSlots: this.#schedule.missedSlots,
      lastHeartbeatAtMs: this.#lastHeartbeatAtMs,
      seq: this.#seq,
      malformed: this.#malformed,
      fenced: this.#fenced,
    });
  }

  /**
   * Subscribes to the required sensors' ticks and the promotions, announces `online` (now if the
   * client is already connected, and on every later connect), and starts the heartbeat schedule;
   * the first heartbeat slot is one period after this call. A second call is a no-op.
   * @throws Error when called after {@linkcode NodeAgent.stop}.
   */
  start(): void {
    if (this.#stopping) throw new Error(`agent ${this.#node.name} was stopped; create a new one`);
    if (this.#started) return;
    this.#started = true;
    const client = this.#client;
    client.on("connect", () => this.#onConnect());
    client.on("message", (topic, payload, packet) => this.#onMessage(topic, payload, packet));
    client.on("close", () => {
      if (!this.#stopping) this.#log.warn("connection-closed");
    });
    client.on("error", (error) => {
      // While the broker is unreachable the client reports the same error on every retry.
      const repeated = error.message === this.#lastError;
      this.#lastError = error.message;
      if (repeated) this.#log.debug("mqtt-error", { error: error.message });
      else this.#log.warn("mqtt-error", { error: error.message });
    });
    const topics = [...this.#ticks.keys(), this.#promotionFilter];
    client.subscribe(topics, { qos: 1 }, (error) => {
      if (error) this.#log.error("subscribe-failed", { error: error.message, topics });
    });
    if (client.connected) this.#onConnect();
    this.#schedule.start();
    this.#log.info("agent-started", {
      heartbeatTopic: this.#hbTopic,
      periodMs: this.#node.heartbeatPeriodMs,
      requiredSensors: this.#node.requiredSensors,
    });
  }

  /**
   * Registers a listener for promotions of this node's workloads whose epoch is above every earlier
   * one seen. Listener exceptions are logged and swallowed.
   * @returns a function that removes the listener.
   */
  onPromotion(listener: (event: PromotionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Orderly shutdown: stops the heartbeat, publishes retained QoS 1 `offline` (when connected; it
   * waits for the PUBACK), then ends the client gracefully (DISCONNECT, so no Last Will). When this
   * takes longer than `timeoutMs` (default {@linkcode DEFAULT_AGENT_STOP_TIMEOUT_MS}) the client is
   * force-closed instead. Idempotent: later calls return the first call's promise. Never rejects.
   */
  stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(opts.timeoutMs ?? DEFAULT_AGENT_STOP_TIMEOUT_MS);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    this.#schedule.stop();
    const client = this.#client;
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = this.#clock.setTimer(() => resolve("timeout"), timeoutMs);
    });
    const graceful = (async () => {
      if (client.connected) {
        await new Promise<void>((resolve) => {
          client.publish(this.#statusTopic, "offline", { qos: 1, retain: true }, (error) => {
            if (error) this.#log.warn("offline-publish-failed", { error: error.message });
            resolve();
          });
        });
      }
      await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
      return "done" as const;
    })();
    const outcome = await Promise.race([graceful, timedOut]);
    this.#clock.clearTimer(timer);
    if (outcome === "timeout") {
      this.#log.warn("stop-timeout-forced-close", { timeoutMs });
      await new Promise<void>((resolve) => {
        // A stuck end() may never call back; force-close without waiting for it.
        client.end(true, {}, () => resolve());
        this.#clock.setTimer(resolve, 0);
      });
    }
    this.#log.info("agent-stopped", { heartbeatsSent: this.#heartbeatsSent });
  }

  #onConnect(): void {
    if (this.#stopping) return;
    this.#lastError = undefined;
    this.#client.publish(this.#statusTopic, "online", { qos: 1, retain: true }, (error) => {
      if (error) this.#log.warn("online-publish-failed", { error: error.message });
    });
    this.#log.info("online", { statusTopic: this.#statusTopic });
  }

  #onSlot(nowMs: number): void {
    if (this.#stopping) return;
    if (!this.#client.connected) {
      // Never queue: a heartbeat delivered late is a stale one.
      this.#offlinePeriods++;
      return;
    }
    const stale = this.#staleSensors(nowMs);
    if (stale.length > 0) {
      this.#gatedPeriods++;
      if (!this.#gated) {
        this.#gated = true;
        this.#log.warn("heartbeat-gated", { staleSensors: stale });
      }
      return;
    }
    if (this.#gated) {
      this.#gated = false;
      this.#log.info("heartbeat-resumed", { gatedPeriods: this.#gatedPeriods });
    }
    this.#seq++;
    this.#client.publish(this.#hbTopic, encodeBeat(this.#seq), { qos: 0, retain: false });
    this.#heartbeatsSent++;
    this.#lastHeartbeatAtMs = nowMs;
  }

  #staleSensors(nowMs: number): string[] {
    const stale: string[] = [];
    for (const sensor of this.#ticks.values()) {
      const at = this.#lastTickAtMs.get(sensor.name);
      if (at === undefined || nowMs - at > sensor.timeoutMs) stale.push(sensor.name);
    }
    return stale;
  }

  #onMessage(topic: string, payload: Uint8Array, packet: IncomingPacket): void {
    if (this.#stopping) return;
    const sensor = this.#ticks.get(topic);
    if (sensor) {
      if (packet?.retain) return; // a retained tick is old news, never freshness
      if (decodeBeat(payload) === undefined) {
        this.#malformed++;
        this.#log.warn("malformed-tick", { topic });
        return;
      }
      this.#lastTickAtMs.set(sensor.name, this.#clock.nowMs());
      return;
    }
    const workloadName = this.#promotionWorkload(topic);
    if (workloadName !== undefined) this.#onPromotionMessage(topic, workloadName, payload);
  }

  /** The workload segment of a promotion topic, `undefined` for any other topic. */
  #promotionWorkload(topic: string): string | undefined {
    const [head, tail] = this.#promotionFilter.split("+");
    if (!topic.startsWith(head) || !topic.endsWith(tail)) return undefined;
    const name = topic.slice(head.length, topic.length - tail.length);
    return name.length > 0 && !name.includes("/") ? name : undefined;
  }

  #onPromotionMessage(topic: string, workloadName: string, payload: Uint8Array): void {
    if (payload.length === 0) return; // a cleared retained promotion
    const promotion = decodePromotion(payload);
    if (!promotion || promotion.workload !== workloadName) {
      this.#malformed++;
      this.#log.warn("malformed-promotion", { topic });
      return;
    }
    const workload = this.#workloads.get(topic);
    if (!workload) return; // not a workload of this node
    const last = this.#lastEpoch.get(workload.name) ?? 0;
    if (promotion.epoch <= last) {
      this.#log.debug("stale-promotion", {
        workload: workload.name,
        epoch: promotion.epoch,
        last,
      });
      return;
    }
    this.#lastEpoch.set(workload.name, promotion.epoch);
    const fenced = promotion.activeNode !== this.#node.name;
    const role = workload.primary.node === this.#node.name ? "primary" : "standby";
    const fields = {
      workload: workload.name,
      epoch: promotion.epoch,
      activeNode: promotion.activeNode,
      failedNode: promotion.failedNode,
      reason: promotion.reason,
      role,
    };
    if (fenced) {
      this.#fenced++;
      this.#log.warn("fenced", fields);
    } else {
      this.#log.info("promoted", fields);
    }
    for (const listener of this.#listeners) {
      try {
        listener({ promotion, fenced, role });
      } catch (error) {
        this.#log.error("promotion-listener-failed", { error: String(error) });
      }
    }
  }
}

function findNode(config: Config, nodeName: string): NodeConfig {
  const node = config.nodes.find((n) => n.name === nodeName);
  if (!node) {
    const known = config.nodes.map((n) => n.name).join(", ");
    throw new Error(`unknown node ${JSON.stringify(nodeName)} (configured: ${known})`);
  }
  return node;
}
