/**
 * The demo's stand-in for the apps, and the example of an app's promotion contract: a subscriber
 * to every workload's retained promotion that obeys — and records when it arrived — only a
 * well-formed promotion (epoch at most `MAX_EPOCH`) of a higher epoch, issued by a supervisor of
 * the config and naming one of the workload's two nodes, never one that names another node at the
 * epoch it holds (`checkPromotion`). Everything else is counted and dropped.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { type Clock, systemClock } from "../clock/clock.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import { openSession } from "../mqtt/session.ts";
import type { Topology, Workload } from "../topology/topology.ts";
import { checkPromotion, type HeldEpoch } from "../wire/promotion_check.ts";
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
  openClient?: (options: Parameters<typeof openSession>[0]) => MqttClientLike;
}

/** A running promotion subscriber. */
export interface PromotionWatcher {
  /** Every promotion obeyed (well-formed, newer, not refused), in order of arrival. */
  readonly received: readonly ReceivedPromotion[];
  /** Counts of what was dropped: malformed payloads and refused promotions. */
  readonly dropped: { malformed: number; refused: number };
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
  const dropped = { malformed: 0, refused: 0 };
  const byTopic = new Map<string, Workload>(
    options.topology.workloads.map((w) => [w.promotionTopic, w]),
  );
  const held = new Map<Workload, HeldEpoch>();
  client.on("message", (topic, payload) => {
    const atMs = clock.nowMs();
    const workload = byTopic.get(topic);
    if (!workload || payload.length === 0) return; // not ours, or a cleared retained promotion
    const promotion = decodePromotion(payload);
    if (!promotion || promotion.workload !== workload.name) {
      dropped.malformed++;
      return;
    }
    const verdict = checkPromotion(workload, promotion, held.get(workload));
    if (verdict.kind === "refused") dropped.refused++;
    if (verdict.kind !== "obey") return;
    held.set(workload, { epoch: promotion.epoch, activeNode: promotion.activeNode });
    received.push({ promotion, atMs });
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
  return { received, dropped, close: () => client.endAsync() };
}
