/**
 * An in-memory {@linkcode MqttClientLike} for unit tests: records publishes, lets the test deliver
 * messages and connection events, and optionally echoes messages on subscribed topics back (as a
 * broker would for the supervisor's own barrier).
 *
 * @module
 */
import type { IncomingPacket, MqttClientLike, PublishOptions } from "../../lib/mqtt/client.ts";

/** One recorded publish. */
export interface Published {
  topic: string;
  payload: string;
  /** The payload's bytes when it was published as bytes (e.g. a gzip state message). */
  bytes?: Uint8Array;
  options: PublishOptions;
}

// deno-lint-ignore no-explicit-any
type Listener = (...args: any[]) => void;

/** A fake MQTT client. */
export class FakeMqttClient implements MqttClientLike {
  connected = false;
  readonly published: Published[] = [];
  readonly subscribed = new Set<string>();
  /** When true, publishes to subscribed topics are delivered back (deferred unless `sync`). */
  echo = true;
  /** Deliver echoes synchronously instead of on a microtask. */
  syncEcho = false;
  /** True once {@linkcode FakeMqttClient.endAsync} was called. */
  ended = false;
  /** The `force` argument of every {@linkcode FakeMqttClient.endAsync} call, in order. */
  readonly endCalls: boolean[] = [];
  /**
   * When true, publish acknowledgements (the callback, or the promise of
   * {@linkcode FakeMqttClient.publishAsync}) are held until {@linkcode FakeMqttClient.releaseAcks}.
   */
  holdAcks = false;
  readonly #heldAcks: (() => void)[] = [];
  readonly #listeners = new Map<string, Listener[]>();

  on(event: string, listener: Listener): this {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener);
    this.#listeners.set(event, list);
    return this;
  }

  emit(event: string, ...args: unknown[]): void {
    for (const l of this.#listeners.get(event) ?? []) l(...args);
  }

  /** Simulates CONNACK. */
  connect(): void {
    this.connected = true;
    this.emit("connect");
  }

  /** Simulates a dropped connection. */
  drop(): void {
    this.connected = false;
    this.emit("close");
  }

  publish(
    topic: string,
    message: string | Uint8Array,
    options: PublishOptions = {},
    callback?: (error?: Error) => void,
  ): this {
    const payload = typeof message === "string" ? message : new TextDecoder().decode(message);
    this.published.push({
      topic,
      payload,
      ...(typeof message === "string" ? {} : { bytes: message }),
      options,
    });
    if (callback && this.holdAcks) this.#heldAcks.push(() => callback());
    else callback?.();
    if (this.echo && this.connected && this.subscribed.has(topic)) {
      const deliver = () => this.deliver(topic, payload);
      if (this.syncEcho) deliver();
      else queueMicrotask(deliver);
    }
    return this;
  }

  publishAsync(topic: string, message: string, options: PublishOptions = {}): Promise<unknown> {
    return new Promise((resolve) =>
      this.publish(topic, message, options, () => resolve(undefined))
    );
  }

  subscribeAsync(topics: string | string[], _options: { qos: 0 | 1 | 2 }): Promise<unknown> {
    for (const t of Array.isArray(topics) ? topics : [topics]) this.subscribed.add(t);
    return Promise.resolve([]);
  }

  /** Delivers every held acknowledgement. */
  releaseAcks(): void {
    for (const ack of this.#heldAcks.splice(0)) ack();
  }

  /** Delivers an incoming message to the client's `message` listeners. */
  deliver(topic: string, payload: string, packet: IncomingPacket = {}): void {
    this.emit("message", topic, new TextEncoder().encode(payload), packet);
  }

  endAsync(force = false): Promise<void> {
    this.ended = true;
    this.endCalls.push(force);
    this.connected = false;
    return Promise.resolve();
  }

  /** Publishes to `topic` recorded so far. */
  on_topic(topic: string): Published[] {
    return this.published.filter((p) => p.topic === topic);
  }
}
