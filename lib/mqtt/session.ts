/**
 * Opens the MQTT session of any role (supervisor, agent, publisher, demo): options from the
 * validated config (TLS files, credentials from the environment or a file, never inline), the
 * role's Last Will, and TCP_NODELAY on every (re)connection.
 *
 * Why TCP_NODELAY: heartbeats, barriers and promotions are tiny writes that must leave at once;
 * Nagle's algorithm combined with the peer's delayed ACK held one back for ≈ 40 ms in our
 * measurements. mqtt.js does not set it itself.
 *
 * @module
 */
import mqtt, { type MqttClient } from "mqtt";
import type { MqttConfig } from "../config/schema.ts";
import { brokerUrlForLog } from "../config/mqtt_rules.ts";
import { BrokerPair, type BrokerPairOptions } from "./broker_pair.ts";
import type { MqttClientLike } from "./client.ts";
import { buildMqttOptions, type WillOptions } from "./options.ts";

/** Options of {@linkcode openSession}. */
export interface SessionOptions {
  /** The config's `mqtt` section. */
  config: MqttConfig;
  /** Client id (unique per broker: a second client with the same id takes the session over). */
  clientId: string;
  /** Last Will, published by the broker when the connection breaks without DISCONNECT. */
  will?: WillOptions;
  /** Reconnect automatically (default true). */
  reconnect?: boolean;
  /**
   * Largest packet this client accepts, bytes. When set, the session speaks MQTT 5 and sends it as
   * the CONNECT property Maximum Packet Size (MQTT 5.0 §3.1.2.11.4): the broker then drops any
   * larger message for this client instead of delivering it (verified with mosquitto 2.0), so a
   * flood of oversized payloads never reaches the client's parser. Default: unset (MQTT 3.1.1).
   */
  maxPacketBytes?: number;
  /** Reads a file (injected for tests); default `Deno.readTextFileSync`. */
  readFile?: (path: string) => string;
  /** Reads an environment variable (injected for tests); default `Deno.env.get`. */
  getEnv?: (name: string) => string | undefined;
}

/**
 * Starts connecting and returns the client at once (listen for `connect`).
 * @throws Error when a credential or TLS file cannot be read or a named variable is unset.
 */
export function openSession(options: SessionOptions): MqttClientLike & MqttClient {
  const clientOptions = buildMqttOptions(options.config, {
    clientId: options.clientId,
    will: options.will,
    reconnect: options.reconnect,
    readFile: options.readFile,
    getEnv: options.getEnv,
  });
  if (options.maxPacketBytes !== undefined) {
    clientOptions.protocolVersion = 5;
    clientOptions.properties = {
      ...clientOptions.properties,
      maximumPacketSize: options.maxPacketBytes,
    };
  }
  const client = mqtt.connect(options.config.url, clientOptions);
  const noDelay = () => {
    const stream =
      (client as unknown as { stream?: { setNoDelay?: (on: boolean) => void } }).stream;
    stream?.setNoDelay?.(true);
  };
  noDelay();
  client.on("connect", noDelay);
  return client as MqttClientLike & MqttClient;
}

/**
 * Opens the role's MQTT client: one session to `mqtt.url`, or, with `mqtt.pairUrl` set, a
 * {@linkcode BrokerPair} of one session to each broker (same client id, Last Will and options on
 * both; see `broker_pair.ts`). `adjust` runs on every session (e.g. the agents' QoS 0 queueing);
 * `pair` adds the pair's options (the supervisor: which messages need both brokers' agreement).
 * @throws Error when a credential or TLS file cannot be read or a named variable is unset.
 */
export function openClient(
  options: SessionOptions,
  adjust: (session: MqttClient) => void = () => {},
  pair: Pick<BrokerPairOptions, "needsAgreement"> = {},
): MqttClientLike {
  const first = openSession(options);
  adjust(first);
  const pairUrl = options.config.pairUrl;
  if (pairUrl === undefined) return first;
  const second = openSession({ ...options, config: { ...options.config, url: pairUrl } });
  adjust(second);
  return new BrokerPair({
    sessions: [first, second],
    labels: [brokerUrlForLog(options.config.url), brokerUrlForLog(pairUrl)],
    needsAgreement: pair.needsAgreement,
  });
}
