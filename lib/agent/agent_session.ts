/**
 * The MQTT session of a node's connection (the agent's, or a simulated node's in the publisher).
 *
 * @module
 */
import type { MqttClient } from "mqtt";
import type { MqttClientLike } from "../mqtt/client.ts";
import { openSession, type SessionOptions } from "../mqtt/session.ts";

/**
 * Opens a node's MQTT session with {@linkcode openSession} (pass the node's `agentWill` as `will`),
 * with QoS 0 queueing turned off: a heartbeat sent late is a stale one, so nothing is queued while
 * disconnected.
 * @throws Error when a credential or TLS file cannot be read or a named variable is unset.
 */
export function openAgentSession(options: SessionOptions): MqttClientLike & MqttClient {
  const client = openSession(options);
  client.queueQoSZero = false;
  return client;
}
