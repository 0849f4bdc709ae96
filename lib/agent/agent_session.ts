/**
 * The MQTT session of a node's connection (the agent's, or a simulated node's in the publisher).
 *
 * @module
 */
import type { MqttClientLike } from "../mqtt/client.ts";
import { openClient, type SessionOptions } from "../mqtt/session.ts";

/**
 * Opens a node's MQTT client with {@linkcode openClient} (pass the node's `agentWill` as `will`;
 * with `mqtt.pairUrl` one session per broker of the pair), with QoS 0 queueing turned off: a
 * heartbeat sent late is a stale one, so nothing is queued while disconnected.
 * @throws Error when a credential or TLS file cannot be read or a named variable is unset.
 */
export function openAgentSession(options: SessionOptions): MqttClientLike {
  return openClient(options, (session) => session.queueQoSZero = false);
}
