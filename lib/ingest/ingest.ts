/**
 * The supervisor's ingest: routes every MQTT message by exact topic (one Map lookup, no string
 * parsing) to the watchdog, counts and drops malformed payloads, barriers without this process's
 * nonce (forged) and promotions the coordinator refuses, and owns the ingest-fault state (a lost or
 * stalled broker suspends supervision: silence proves nothing then).
 *
 * Messages are stamped with the monotonic clock on receipt. After each message the watchdog's
 * earliest deadline is checked (O(1)), so an expiry does not wait for a late timer.
 *
 * @module
 */
import type { Clock } from "../clock/clock.ts";
import type { IncomingPacket } from "../mqtt/client.ts";
import type { NodeTarget, Target, Topology, Workload } from "../topology/topology.ts";
import type { Watchdog } from "../watchdog/watchdog.ts";
import type { PromotionRefusal } from "../wire/promotion_check.ts";
import {
  decodeBarrier,
  decodeBeat,
  decodeNodeStatus,
  decodePromotion,
  MAX_BEAT_BYTES,
  MAX_NODE_STATUS_BYTES,
  MAX_PROMOTION_BYTES,
  type NodeStatus,
  type Promotion,
} from "../wire/wire.ts";

/** Ingest counters (exported as the `stats` log line and, later, metrics). */
export interface IngestStats {
  messages: number;
  malformed: number;
  unknownTopic: number;
  reconnects: number;
  /** Live Last Wills left to the deadline because they came right after a broker reconnect. */
  lastWillsDeferred: number;
  /** Payloads over their size bound, dropped unparsed (also counted in `malformed`). */
  oversized: number;
  /** Retained heartbeats, ticks or barriers: history, not liveness; ignored. */
  retainedBeats: number;
  /**
   * Well-formed barriers without this process's nonce: forged by another client (or left by an
   * earlier instance); dropped, they confirm nothing.
   */
  forgedBarriers: number;
  /** Barriers with this process's nonce whose `seq` is not in flight (late or repeated); dropped. */
  staleBarriers: number;
  /**
   * Well-formed promotions not obeyed: unknown issuer, an active node that is not one of the
   * workload's placements, or an epoch already used with another active node.
   */
  refusedPromotions: number;
}

type Route =
  | { kind: "beat"; target: Target }
  | { kind: "status"; node: NodeTarget }
  | { kind: "barrier" }
  | { kind: "promotion"; workload: Workload };

/** Options of {@linkcode Ingest}. */
export interface IngestOptions {
  topology: Topology;
  /** Barrier topic of this supervisor instance. */
  barrierTopic: string;
  /**
   * This supervisor process's barrier nonce (`newBarrierNonce`, drawn once at start): only a
   * barrier that carries it can confirm an expiry.
   */
  barrierNonce: string;
  watchdog: Watchdog<Target>;
  clock: Clock;
  /**
   * A well-formed promotion was received on a workload's promotion topic.
   * @returns why it was refused (counted in `refusedPromotions`), or `undefined` when it was
   *   adopted or stale.
   */
  onPromotion: (
    workload: Workload,
    promotion: Promotion,
    retained: boolean,
  ) => PromotionRefusal | undefined;
  /**
   * A node status other than a live `offline` (those are Last Wills or ordered stops and handled
   * here: see {@linkcode IngestOptions.isDraining}).
   */
  onNodeStatus: (node: NodeTarget, status: NodeStatus, retained: boolean) => void;
  /** True while the node announced a planned stop: its live `offline` then ends supervision. */
  isDraining: (node: NodeTarget) => boolean;
  /** A draining node went offline: switch its supervision off (no expiry, no fence). */
  onDrained: (node: NodeTarget) => void;
  /**
   * After an outage longer than 1 s, the time every target gets before it can expire, ms: clients
   * whose keepalive ran out during a long broker stall or restart are still reconnecting
   * (default 2000: twice mqtt.js's reconnect period here plus one second).
   */
  reconnectAllowanceMs?: number;
  /** Supervision was suspended (broker lost or stalled). */
  onFault: (why: string) => void;
  /**
   * Supervision resumed. `graceMs` is how long every target is given before it can expire (0
   * after a short outage): within it a fault is detected at the grace's end at the latest, not one
   * timeout after its last heartbeat — the detection bound of docs/design.md's failure model.
   * `lastWillQuietMs` is how long a live Last Will waits for the deadline instead.
   */
  onRestored: (why: string, lastWillQuietMs: number, graceMs: number) => void;
}

/** Routing, decoding and the ingest-fault state of the supervisor. */
export class Ingest {
  /** Counters; read-only for callers. */
  readonly stats: IngestStats = {
    messages: 0,
    malformed: 0,
    unknownTopic: 0,
    reconnects: 0,
    lastWillsDeferred: 0,
    oversized: 0,
    retainedBeats: 0,
    forgedBarriers: 0,
    staleBarriers: 0,
    refusedPromotions: 0,
  };
  /** Every topic to subscribe to (exact topics, no wildcards). */
  readonly subscriptions: readonly string[];
  readonly #routes = new Map<string, Route>();
  readonly #watchdog: Watchdog<Target>;
  readonly #clock: Clock;
  readonly #options: IngestOptions;
  readonly #longestNodeTimeoutMs: number;
  #fault = false;
  #faultSinceMs = 0;
  /** The current fault includes a closed connection (see {@linkcode Ingest.fault}). */
  #faultLostConnection = false;
  /** Until then (monotonic ms) a live Last Will does not expire a node at once. */
  #lastWillQuietUntilMs = -Infinity;

  /** Builds the routing table from the topology. */
  constructor(options: IngestOptions) {
    this.#options = options;
    this.#watchdog = options.watchdog;
    this.#clock = options.clock;
    const { topology } = options;
    for (const target of topology.targets) this.#routes.set(target.topic, { kind: "beat", target });
    for (const node of topology.nodes) this.#routes.set(node.statusTopic, { kind: "status", node });
    for (const workload of topology.workloads) {
      this.#routes.set(workload.promotionTopic, { kind: "promotion", workload });
    }
    this.#routes.set(options.barrierTopic, { kind: "barrier" });
    this.subscriptions = [...this.#routes.keys()];
    this.#longestNodeTimeoutMs = Math.max(0, ...topology.nodes.map((n) => n.timeoutMs));
  }

  /** True while supervision is suspended because ingest cannot be trusted. */
  get faulted(): boolean {
    return this.#fault;
  }

  /** Handles one message (the MQTT client's `message` event). Never throws. */
  onMessage(topic: string, payload: Uint8Array, packet: IncomingPacket, connected: boolean): void {
    const nowMs = this.#clock.nowMs();
    this.stats.messages++;
    const route = this.#routes.get(topic);
    if (!route) {
      this.stats.unknownTopic++;
      return;
    }
    if (this.#fault && connected && route.kind !== "promotion") {
      this.restore("messages flowing again");
    }
    const bound = route.kind === "promotion"
      ? MAX_PROMOTION_BYTES
      : route.kind === "status"
      ? MAX_NODE_STATUS_BYTES
      : MAX_BEAT_BYTES;
    if (payload.length > bound) {
      this.stats.oversized++;
      this.stats.malformed++;
      return;
    }
    if (packet.retain && (route.kind === "beat" || route.kind === "barrier")) {
      // a retained heartbeat is a stale one by definition: it proves nothing about now
      this.stats.retainedBeats++;
      return;
    }
    switch (route.kind) {
      case "beat":
        if (decodeBeat(payload) === undefined) {
          this.stats.malformed++;
          return;
        }
        this.#watchdog.heartbeatAt(route.target.index, nowMs);
        break;
      case "status": {
        const status = decodeNodeStatus(payload);
        if (status === undefined) {
          this.stats.malformed++;
          return;
        }
        if (status.state !== "offline") {
          this.#options.onNodeStatus(route.node, status, packet.retain === true);
        } else if (!packet.retain) {
          // A retained `offline` is history from before we subscribed, not news: the deadline
          // decides. A live one is the broker telling us the node's connection broke — or the
          // end of an announced planned stop.
          if (this.#options.isDraining(route.node)) this.#options.onDrained(route.node);
          else if (nowMs < this.#lastWillQuietUntilMs) this.stats.lastWillsDeferred++;
          else this.#watchdog.offline(route.node.index, nowMs);
        }
        break;
      }
      case "barrier": {
        const barrier = decodeBarrier(payload);
        if (barrier === undefined) {
          this.stats.malformed++;
          return;
        }
        if (barrier.nonce !== this.#options.barrierNonce) {
          // not ours: a forged barrier would confirm an expiry a stall only seemed to show
          this.stats.forgedBarriers++;
          return;
        }
        if (!this.#watchdog.barrierPassed(barrier.seq)) {
          this.stats.staleBarriers++;
          return;
        }
        break;
      }
      case "promotion": {
        const p = decodePromotion(payload);
        if (p === undefined || p.workload !== route.workload.name) {
          this.stats.malformed++;
          return;
        }
        if (this.#options.onPromotion(route.workload, p, packet.retain === true) !== undefined) {
          this.stats.refusedPromotions++;
        }
        return;
      }
    }
    this.#watchdog.checkDue(nowMs);
  }

  /**
   * The broker connection broke or ingest stalled: suspend supervision (once). `connectionLost`:
   * the supervisor's own connection closed, so the broker went away (or restarted) and every
   * client must reconnect, however short the outage: the resume grace is then always the
   * reconnect allowance (a client with a reconnect period of 500 ms reconnects up to that long
   * after the supervisor did). A stall (connections kept) gets it only after more than 1 s.
   */
  fault(why: string, connectionLost = false): void {
    if (connectionLost) this.#faultLostConnection = true;
    if (this.#fault) return;
    this.#fault = true;
    this.#faultSinceMs = this.#clock.nowMs();
    this.#watchdog.suspend();
    this.#options.onFault(why);
  }

  /**
   * Ingest is trustworthy again: every target gets one full timeout from now (the outage is not
   * counted as silence) — after a lost connection or an outage longer than 1 s at least
   * `reconnectAllowanceMs` —, and
   * for as long a live Last Will waits for the deadline: clients reconnecting to a restarted
   * broker race their own stale sessions, and a session takeover publishes the old connection's
   * Last Will although the node is alive.
   */
  restore(why: string): void {
    if (!this.#fault) return;
    this.#fault = false;
    const nowMs = this.#clock.nowMs();
    const outageMs = nowMs - this.#faultSinceMs;
    const reconnecting = this.#faultLostConnection || outageMs > 1000;
    this.#faultLostConnection = false;
    const graceMs = reconnecting ? this.#options.reconnectAllowanceMs ?? 2000 : 0;
    this.#watchdog.resume(graceMs);
    const quietMs = Math.max(this.#longestNodeTimeoutMs, graceMs);
    this.#lastWillQuietUntilMs = nowMs + quietMs;
    this.#options.onRestored(why, quietMs, graceMs);
  }
}
