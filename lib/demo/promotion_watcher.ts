/**
 * The demo's stand-in for the apps: a subscriber to every workload's retained promotion that
 * records when each one arrived.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Clock, systemClock } from "../clock/clock.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import { openSession } from "../mqtt/session.ts";
import type { Topology } from "../topology/topology.ts";
import { decodePromotion, type Promotion } from "../wire/wire.ts";

/** A promotion as an app received it. */
export interface ReceivedPromotion {
  promotion: Promotion;
  /** Clock time (ms, monotonic) of its arrival. */
  atMs: number;
}

/** Options of {@linkcode watchPromotions}. */
export interface PromotionWatcherOptions {
  /** Validated configuration (its `mqtt` section is used). */
  config: Config;
  /** Its topology: the promotion topics. */
  topology: Topology;
  /** Monotonic clock (default {@linkcode systemClock}). */
  clock?: Clock;
  /** Opens the session (default `openSession`); for tests. */
  openClient?: typeof openSession;
}

/** A running promotion subscriber. */
export interface PromotionWatcher {
  /** Every well-formed promotion received, in order of arrival. */
  readonly received: readonly ReceivedPromotion[];
  /** Disconnects. */
  close(): Promise<void>;
}

/**
 * Connects (client id `demo-app-subscriber`, no reconnect) and subscribes to the promotion topic of
 * every workload; resolves once subscribed.
 * @throws Error when the connection fails.
 */
export async function watchPromotions(options: PromotionWatcherOptions): Promise<PromotionWatcher> {
  const clock = options.clock ?? systemClock;
  const client: MqttClientLike = (options.openClient ?? openSession)({
    config: options.config.mqtt,
    clientId: "demo-app-subscriber",
    reconnect: false,
  });
  const received: ReceivedPromotion[] = [];
  client.on("message", (_topic, payload) => {
    const atMs = clock.nowMs();
    const promotion = decodePromotion(payload);
    if (promotion) received.push({ promotion, atMs });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      if (client.connected) return resolve();
      client.on("connect", resolve);
      client.on("error", reject);
    });
    const topics = options.topology.workloads.map((w) => w.promotionTopic);
    if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
  } catch (error) {
    await client.endAsync(true);
    throw error;
  }
  return { received, close: () => client.endAsync() };
}
