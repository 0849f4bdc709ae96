/**
 * Worker side of the promotion subscriber: one MQTT connection, subscribed to every promotion of
 * every topic prefix (`+/workload/+/promotion`, prefixes are one level), stamping each live
 * (non-retained) promotion with its wall-clock receipt time on this thread's own event loop.
 *
 * It also probes the broker: a QoS 0 message to itself every 5 ms; a round trip above 10 ms is
 * reported as a broker stall (and a stall of this thread as a subscriber stall).
 *
 * Messages in: `{type:"start", url}`. Out: `{type:"ready"}`, `{type:"promotion", topic, promotion,
 * wallMs}`, `{type:"stall", stall}`, `{type:"error", message}`.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { raiseThreadPriority } from "./priority.ts";
import { watchEventLoop } from "./stall_monitor.ts";
import mqtt from "mqtt";
import { promotionTopic } from "../lib/topology/topics.ts";
import { decodePromotion } from "../lib/wire/wire.ts";

/** Every workload's promotion under every (one-level) topic prefix. */
const PROMOTIONS = promotionTopic("+", "+");

const PROBE_TOPIC = "bench-probe/rtt";

self.onmessage = async (e: MessageEvent) => {
  const msg = e.data as { type: string; url?: string };
  if (msg.type !== "start" || !msg.url) return;
  await raiseThreadPriority();
  try {
    const client = mqtt.connect(msg.url, {
      clientId: `sdv-bench-promotions-${crypto.randomUUID().slice(0, 8)}`,
      reconnectPeriod: 500,
    });
    client.on("message", (topic, payload, packet) => {
      const wallMs = performance.timeOrigin + performance.now();
      if (topic === PROBE_TOPIC) {
        const rtt = performance.now() - Number(new TextDecoder().decode(payload));
        if (rtt > 10) {
          self.postMessage({
            type: "stall",
            stall: { what: "broker", wallMs: wallMs - rtt, ms: rtt },
          });
        }
        return;
      }
      if (packet.retain) return;
      const promotion = decodePromotion(payload);
      if (promotion) self.postMessage({ type: "promotion", topic, promotion, wallMs });
    });
    // mqtt.js leaves Nagle on: a PUBACK would hold back the next probe for the peer's
    // delayed-ACK timer (≈ 40 ms) and look like a broker stall.
    client.on(
      "connect",
      () => (client.stream as { setNoDelay?: (on: boolean) => void })?.setNoDelay?.(true),
    );
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    });
    await client.subscribeAsync(PROMOTIONS, { qos: 1 });
    await client.subscribeAsync(PROBE_TOPIC, { qos: 0 });
    setInterval(() => client.publish(PROBE_TOPIC, String(performance.now()), { qos: 0 }), 5);
    watchEventLoop("subscriber", (stall) => self.postMessage({ type: "stall", stall }));
    self.postMessage({ type: "ready" });
  } catch (error) {
    self.postMessage({ type: "error", message: (error as Error).message });
  }
};
