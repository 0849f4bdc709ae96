/**
 * An in-memory {@linkcode MqttClientLike} for unit tests: records publishes, lets the test deliver
 * messages and connection events, and optionally echoes messages on subscribed topics back (as a
 * broker would for the supervisor's own barrier).
 *
 * @module
 */
import type {
  IncomingPacket,
  MqttClientLike,
  PublishOptions,
} from "../../lib/ingest/mqtt_client.ts";

/** One recorded publish. */
export interface Published {
  topic: string;
  payload: string;
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
  ended = false;
  /** When true, publish callbacks (PUBACK) are held until {@linkcode FakeMqttClient.releaseAcks}. */
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
    this.published.push({ topic, payload, options });
    if (callback && this.holdAcks) this.#heldAcks.push(() => callback());
    else callback?.();
    if (this.echo && this.connected && this.subscribed.has(topic)) {
      const deliver = () => this.deliver(topic, payload);
      if (this.syncEcho) deliver();
      else queueMicrotask(deliver);
    }
    return this;
  }

  subscribe(
    topics: string | string[],
    _options: { qos: 0 | 1 | 2 },
    callback?: (error: Error | null) => void,
  ): this {
    for (const t of Array.isArray(topics) ? topics : [topics]) this.subscribed.add(t);
    callback?.(null);
    return this;
  }

  /** Delivers every held PUBACK. */
  releaseAcks(): void {
    for (const ack of this.#heldAcks.splice(0)) ack();
  }

  /** Delivers an incoming message to the client's `message` listeners. */
  deliver(topic: string, payload: string, packet: IncomingPacket = {}): void {
    this.emit("message", topic, new TextEncoder().encode(payload), packet);
  }

  end(_force?: boolean, _options?: object, callback?: () => void): this {
    this.ended = true;
    this.connected = false;
    callback?.();
    return this;
  }

  /** Publishes to `topic` recorded so far. */
  on_topic(topic: string): Published[] {
    return this.published.filter((p) => p.topic === topic);
  }
}
