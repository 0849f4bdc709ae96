/**
 * The node agent: the node-side role that runs on every Jetson.
 *
 * It publishes the node heartbeat (the node target's topic, QoS 0, `{"seq":n}`) on a drift-free
 * monotonic schedule, but only while every sensor in the node's `requiredSensors` ticked within
 * that sensor's `timeoutMs` (the origin project gates on camera frames seen within 150 ms), so a
 * node whose cameras went dark stops looking alive. It announces itself with a retained QoS 1
 * `online` on every (re)connect (the retained `offline` Last Will is set by the caller in the
 * connect options, see {@linkcode agentWill}) and a retained `offline` on an orderly stop. It
 * watches the retained promotions of the workloads placed on its node and logs `fenced` when a
 * newer epoch names another node as active (the old primary stands down).
 *
 * Every topic, sensor and workload comes from the node's {@linkcode NodeTarget} in the topology
 * (`buildTopology`); the agent builds no topic and parses none.
 *
 * The agent never loads the Kubernetes client and never reads wall-clock time for timing.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { IncomingPacket, MqttClientLike } from "../mqtt/client.ts";
import type { WillOptions } from "../mqtt/options.ts";
import type { NodeTarget, Placement, SensorTarget, Side } from "../topology/topology.ts";
import { decodeBeat, decodePromotion, encodeBeat, type Promotion } from "../wire/wire.ts";
import { PeriodicSchedule } from "./periodic_schedule.ts";

/** Default bound of {@linkcode NodeAgent.stop}, in ms. */
const DEFAULT_AGENT_STOP_TIMEOUT_MS = 2000;

/**
 * The Last Will a node agent's connection must carry: retained QoS 1 `offline` on the node's status
 * topic, published by the broker when the connection drops without DISCONNECT.
 *
 * @param node the node's target in the topology.
 */
export function agentWill(node: NodeTarget): WillOptions {
  return { topic: node.statusTopic, payload: "offline", qos: 1, retain: true };
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
  /** This node's placement of the workload (its `side` is the role configured here). */
  placement: Placement;
  /** The side this node has in the workload's configuration (`placement.side`). */
  role: Side;
}

/** Options of {@linkcode NodeAgent}. */
export interface NodeAgentOptions {
  /** The node this agent speaks for, from `buildTopology(config)`. */
  node: NodeTarget;
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
  readonly #node: NodeTarget;
  readonly #client: MqttClientLike;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** tick topic → required sensor */
  readonly #ticks = new Map<string, SensorTarget>();
  readonly #lastTickAtMs = new Map<SensorTarget, number>();
  /** promotion topic → this node's placement of that workload */
  readonly #placements = new Map<string, Placement>();
  readonly #lastEpoch = new Map<Placement, number>();
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

  /** Creates an agent; nothing is subscribed or published before {@linkcode NodeAgent.start}. */
  constructor(options: NodeAgentOptions) {
    const node = options.node;
    this.#node = node;
    this.#client = options.client;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.log ?? silentLogger).child({ node: node.name });
    for (const sensor of node.requiredSensors) this.#ticks.set(sensor.topic, sensor);
    for (const placement of node.placements) {
      this.#placements.set(placement.workload.promotionTopic, placement);
    }
    this.#schedule = new PeriodicSchedule(
      this.#clock,
      node.periodMs,
      (_slot, nowMs) => this.#onSlot(nowMs),
    );
  }

  /** The node this agent speaks for. */
  get node(): NodeTarget {
    return this.#node;
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
   * Subscribes to the required sensors' ticks and to the promotions of the workloads placed on
   * this node, announces `online` (now if the
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
    const topics = [...this.#ticks.keys(), ...this.#placements.keys()];
    if (topics.length > 0) {
      client.subscribeAsync(topics, { qos: 1 }).catch((error: Error) => {
        this.#log.error("subscribe-failed", { error: error.message, topics });
      });
    }
    if (client.connected) this.#onConnect();
    this.#schedule.start();
    this.#log.info("agent-started", {
      heartbeatTopic: this.#node.topic,
      periodMs: this.#node.periodMs,
      requiredSensors: this.#node.requiredSensors.map((s) => s.name),
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
        try {
          await client.publishAsync(this.#node.statusTopic, "offline", { qos: 1, retain: true });
        } catch (error) {
          this.#log.warn("offline-publish-failed", { error: (error as Error).message });
        }
      }
      await client.endAsync(false);
      return "done" as const;
    })();
    const outcome = await Promise.race([graceful, timedOut]);
    this.#clock.clearTimer(timer);
    if (outcome === "timeout") {
      this.#log.warn("stop-timeout-forced-close", { timeoutMs });
      await new Promise<void>((resolve) => {
        // A stuck client may never settle; force-close without waiting for it.
        client.endAsync(true).then(resolve, resolve);
        this.#clock.setTimer(resolve, 0);
      });
    }
    this.#log.info("agent-stopped", { heartbeatsSent: this.#heartbeatsSent });
  }

  #onConnect(): void {
    if (this.#stopping) return;
    this.#lastError = undefined;
    this.#client.publishAsync(this.#node.statusTopic, "online", { qos: 1, retain: true })
      .catch((error: Error) => this.#log.warn("online-publish-failed", { error: error.message }));
    this.#log.info("online", { statusTopic: this.#node.statusTopic });
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
    // The hot path: QoS 0, fire and forget.
    this.#client.publish(this.#node.topic, encodeBeat(this.#seq), { qos: 0, retain: false });
    this.#heartbeatsSent++;
    this.#lastHeartbeatAtMs = nowMs;
  }

  #staleSensors(nowMs: number): string[] {
    const stale: string[] = [];
    for (const sensor of this.#ticks.values()) {
      const at = this.#lastTickAtMs.get(sensor);
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
      this.#lastTickAtMs.set(sensor, this.#clock.nowMs());
      return;
    }
    const placement = this.#placements.get(topic);
    if (placement) this.#onPromotionMessage(topic, placement, payload);
  }

  #onPromotionMessage(topic: string, placement: Placement, payload: Uint8Array): void {
    if (payload.length === 0) return; // a cleared retained promotion
    const workload = placement.workload;
    const promotion = decodePromotion(payload);
    if (!promotion || promotion.workload !== workload.name) {
      this.#malformed++;
      this.#log.warn("malformed-promotion", { topic });
      return;
    }
    const last = this.#lastEpoch.get(placement) ?? 0;
    if (promotion.epoch <= last) {
      this.#log.debug("stale-promotion", {
        workload: workload.name,
        epoch: promotion.epoch,
        last,
      });
      return;
    }
    this.#lastEpoch.set(placement, promotion.epoch);
    const fenced = promotion.activeNode !== this.#node.name;
    const role = placement.side;
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
        listener({ promotion, fenced, placement, role });
      } catch (error) {
        this.#log.error("promotion-listener-failed", { error: String(error) });
      }
    }
  }
}
