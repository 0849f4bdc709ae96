/**
 * The subset of an `npm:mqtt` `MqttClient` that this product uses, so that the supervisor, the
 * agent and the publisher can be driven by a fake in unit tests. A real `MqttClient` satisfies it.
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
  publish(
    topic: string,
    message: string | Uint8Array,
    options?: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown;
  subscribe(
    topics: string | string[],
    options: { qos: 0 | 1 | 2 },
    callback?: (error: Error | null) => void,
  ): unknown;
  on(event: "connect", listener: () => void): unknown;
  on(
    event: "message",
    listener: (topic: string, payload: Uint8Array, packet: IncomingPacket) => void,
  ): unknown;
  on(event: "close" | "offline" | "reconnect", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Disconnects; `force` skips waiting for in-flight messages. */
  end(force?: boolean, options?: object, callback?: () => void): unknown;
}
