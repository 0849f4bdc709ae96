/**
 * A simulated node's view of its MQTT connection: what the node's agent and generators publish
 * through, so that faults can silence or delay them without touching the agent.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { MqttClientLike, PublishOptions } from "../mqtt/client.ts";

/**
 * A node's real connection: an MQTT client plus, on a real `npm:mqtt` client, what an abrupt close
 * and a later reconnect need (absent on test fakes).
 */
export interface SimConnection extends MqttClientLike {
  /** The client's options; `reconnectPeriod` is changed to stop and restart reconnecting. */
  options?: { reconnectPeriod?: number };
  /** The socket; destroyed for a close without DISCONNECT (the broker publishes the Last Will). */
  stream?: { destroy(): void };
  /** Reconnects after a close. */
  reconnect?(): unknown;
}

/** Options of {@linkcode SimNodeClient}. */
export interface SimNodeClientOptions {
  /** The node's real connection. */
  connection: SimConnection;
  /** Monotonic clock (jitter timers, heartbeat times). */
  clock: Clock;
  /** The node's heartbeat topic (the only topic that jitter delays and that is counted). */
  heartbeatTopic: string;
  /** Uniform random numbers in [0, 1) for jitter. */
  random: () => number;
}

/**
 * Forwards to the real connection, but drops every publish while the node is silenced (hung,
 * crashed, partitioned), delays node heartbeats under jitter (FIFO, as on one TCP connection) and
 * counts the heartbeats that went out.
 *
 * Heartbeats are expected through the synchronous {@linkcode SimNodeClient.publish} (the agent's
 * hot path); {@linkcode SimNodeClient.publishAsync} is for the retained status messages and is
 * neither delayed nor counted.
 */
export class SimNodeClient implements MqttClientLike {
  /** The real connection. */
  readonly connection: SimConnection;
  /** The spec of the fault that silences the node; `undefined` while it publishes. */
  silencedBy: string | undefined;
  /** Upper bound of the random delay added to each heartbeat, ms (0: none). */
  jitterMaxMs = 0;
  /** Heartbeats handed to the real connection. */
  heartbeatsSent = 0;
  /** Clock time (ms) of the last of them. */
  lastHeartbeatAtMs: number | undefined;
  readonly #clock: Clock;
  readonly #hbTopic: string;
  readonly #random: () => number;
  #lastJitterDueMs = -Infinity;
  readonly #jitterTimers = new Set<TimerHandle>();

  /** Wraps `options.connection`. */
  constructor(options: SimNodeClientOptions) {
    this.connection = options.connection;
    this.#clock = options.clock;
    this.#hbTopic = options.heartbeatTopic;
    this.#random = options.random;
  }

  /** True while the real connection is up. */
  get connected(): boolean {
    return this.connection.connected;
  }

  /** Publishes unless silenced; heartbeats are counted and, under jitter, delayed. */
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
    if (topic !== this.#hbTopic) return this.connection.publish(topic, message, options, callback);
    if (this.jitterMaxMs <= 0) return this.#sendHeartbeat(message, options, callback);
    const now = this.#clock.nowMs();
    const dueMs = Math.max(this.#lastJitterDueMs, now + this.#random() * this.jitterMaxMs);
    this.#lastJitterDueMs = dueMs;
    const timer = this.#clock.setTimer(() => {
      this.#jitterTimers.delete(timer);
      if (this.silencedBy !== undefined || !this.connection.connected) {
        callback?.(new Error("heartbeat dropped: node silenced or disconnected"));
        return;
      }
      this.#sendHeartbeat(message, options, callback);
    }, dueMs - now);
    this.#jitterTimers.add(timer);
    return undefined;
  }

  /** Publishes unless silenced (then it rejects); not delayed, not counted. */
  publishAsync(topic: string, message: string, options?: PublishOptions): Promise<unknown> {
    if (this.silencedBy !== undefined) {
      return Promise.reject(new Error(`publish suppressed by fault ${this.silencedBy}`));
    }
    return this.connection.publishAsync(topic, message, options);
  }

  #sendHeartbeat(
    message: string | Uint8Array,
    options?: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown {
    this.heartbeatsSent++;
    this.lastHeartbeatAtMs = this.#clock.nowMs();
    return this.connection.publish(this.#hbTopic, message, options, callback);
  }

  /** Drops heartbeats still held back by jitter. */
  cancelJitter(): void {
    for (const t of this.#jitterTimers) this.#clock.clearTimer(t);
    this.#jitterTimers.clear();
  }

  /** Forwards to the real connection. */
  subscribeAsync(topics: string | string[], options: { qos: 0 | 1 | 2 }): Promise<unknown> {
    return this.connection.subscribeAsync(topics, options);
  }

  /** Forwards to the real connection. */
  on(
    event: "connect" | "message" | "close" | "offline" | "reconnect" | "error",
    listener: (...args: never[]) => void,
  ): unknown {
    return (this.connection.on as (e: string, l: (...args: never[]) => void) => unknown)(
      event,
      listener,
    );
  }

  /** Forwards to the real connection. */
  endAsync(force?: boolean): Promise<void> {
    return this.connection.endAsync(force);
  }
}
