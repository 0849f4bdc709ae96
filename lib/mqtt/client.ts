/**
 * The subset of an `npm:mqtt` v5 `MqttClient` that this product uses, so that the supervisor, the
 * agent and the publisher can be driven by a fake in unit tests. A real `MqttClient` satisfies it.
 * Open one with {@linkcode openSession} (`session.ts`).
 *
 * @module
 */

/** Publish options used here. */
export interface PublishOptions {
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

/** The fields of an incoming PUBLISH packet that matter here. */
export interface IncomingPacket {
  retain?: boolean;
}

/** Minimal MQTT client surface (events: connect, message, close, offline, error, reconnect). */
export interface MqttClientLike {
  /** True while connected to the broker. */
  readonly connected: boolean;
  /**
   * Publishes without waiting (the hot path: heartbeats, barriers). The callback runs on PUBACK
   * for QoS 1, once written for QoS 0, or with the error.
   */
  publish(
    topic: string,
    message: string | Uint8Array,
    options?: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown;
  /** Publishes; resolves on PUBACK (QoS 1) or once written (QoS 0). @throws the publish error. */
  publishAsync(topic: string, message: string, options?: PublishOptions): Promise<unknown>;
  /** Subscribes; resolves on SUBACK. @throws the subscribe error. */
  subscribeAsync(topics: string | string[], options: { qos: 0 | 1 | 2 }): Promise<unknown>;
  on(event: "connect", listener: () => void): unknown;
  on(
    event: "message",
    listener: (topic: string, payload: Uint8Array, packet: IncomingPacket) => void,
  ): unknown;
  on(event: "close" | "offline" | "reconnect", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Disconnects (DISCONNECT: no Last Will); `force` skips waiting for in-flight messages. */
  endAsync(force?: boolean): Promise<void>;
}
