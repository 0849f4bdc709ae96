/**
 * A broker pair seen as one MQTT client: every client (agent, app, supervisor) keeps one session
 * to each of two brokers and publishes everything to both ("dual publishing"); the first copy of
 * each message received wins, the other broker's copy is dropped as a duplicate.
 *
 * Why dual publishing and not client failover (mqtt.js `servers`, reconnect to the other broker):
 * with failover every client first has to notice that its broker is gone (at once for a closed
 * socket, a keepalive later for a dead host or a stalled broker) and then reconnect and resubscribe;
 * meanwhile the supervisor hears nothing, so it must suspend supervision (an ingest fault) and
 * every target then gets a resume grace. With both paths always live the loss of one broker changes
 * nothing the watchdog sees: heartbeats keep arriving through the other, and an ingest barrier
 * (published to both) is confirmed by the first broker that returns it. The cost is twice the
 * messages on the wire and a few comparisons per message for the duplicate check (measured in
 * docs/redundancy.md, "Broker pair").
 *
 * Event semantics towards the caller (the {@linkcode MqttClientLike} contract):
 * - `connect` on every session's (re)connection (a returning broker gets the caller's retained
 *   state again: the agent's status, the supervisor's status and promotions);
 * - `close` / `offline` only when no session is connected any more (an ingest fault for the
 *   supervisor), once per such transition; the loss of one broker is reported through
 *   {@linkcode BrokerPair.onBrokerChange} instead;
 * - `message` once per message (see {@linkcode BrokerPairOptions.duplicateWindowMs});
 * - `error` for either session, its message prefixed with the broker's label;
 * - `reconnect` only while no session is connected.
 *
 * @module
 */
import type { IncomingPacket, MqttClientLike, PublishOptions } from "./client.ts";

/** Options of {@linkcode BrokerPair}. */
export interface BrokerPairOptions {
  /** One connecting session per broker (each opened with the caller's Last Will). */
  sessions: readonly [MqttClientLike, MqttClientLike];
  /** Names of the two brokers for error messages and logs (default `broker-1`, `broker-2`). */
  labels?: readonly [string, string];
  /**
   * A message equal (topic and payload bytes) to one received from the other broker at most this
   * long ago is a duplicate and dropped, ms (default 2000). Heartbeats, ticks and barriers carry a
   * sequence number, so two different messages are never equal within it; a copy delayed longer
   * (a broker that stalled and resumed) is delivered: a late heartbeat is harmless (see
   * docs/design.md).
   */
  duplicateWindowMs?: number;
  /** Monotonic time, ms (default `performance.now`). */
  nowMs?: () => number;
  /**
   * Messages that need the agreement of both brokers: while both are connected such a message is
   * delivered only once the second broker has delivered an equal copy within the window (and
   * dropped if it never does: the deadline decides); with one broker connected one copy
   * suffices. The supervisor uses it for the nodes' Last Wills: one
   * broker publishing a node's will says only that the node's connection to *that* broker broke;
   * a node still heartbeating through the other one is alive (a partition between a node and one
   * broker must not fail it over). Default: none.
   */
  needsAgreement?: (topic: string, payload: Uint8Array, packet: IncomingPacket) => boolean;
}

/** Counters of a {@linkcode BrokerPair}. */
export interface BrokerPairStats {
  /** Messages delivered to the caller. */
  delivered: number;
  /** Copies dropped because the other broker delivered them first. */
  duplicates: number;
  /** Times a broker was lost while the other stayed connected. */
  brokerLosses: number;
  /** Messages needing agreement that only one broker delivered within the window: dropped. */
  unconfirmed: number;
}

/** Recent payloads per topic kept for the duplicate check. */
const RECENT_PER_TOPIC = 8;

interface Recent {
  payload: Uint8Array;
  session: number;
  atMs: number;
}

type Listener = (...args: never[]) => void;
type MessageListener = (topic: string, payload: Uint8Array, packet: IncomingPacket) => void;

/** Two broker sessions as one client: dual publishing, first copy wins. */
export class BrokerPair implements MqttClientLike {
  /** Counters; read-only for callers. */
  readonly stats: BrokerPairStats = {
    delivered: 0,
    duplicates: 0,
    brokerLosses: 0,
    unconfirmed: 0,
  };
  readonly #sessions: readonly [MqttClientLike, MqttClientLike];
  readonly #labels: readonly [string, string];
  readonly #windowMs: number;
  readonly #nowMs: () => number;
  readonly #listeners = new Map<string, Set<Listener>>();
  /** `message` listeners apart: the hot path calls them without spreading arguments. */
  readonly #messageListeners: MessageListener[] = [];
  readonly #brokerListeners = new Set<(label: string, up: boolean, connected: number) => void>();
  readonly #recent = new Map<string, Recent[]>();
  readonly #needsAgreement:
    | ((topic: string, payload: Uint8Array, packet: IncomingPacket) => boolean)
    | undefined;
  /** Copies waiting for the other broker's agreement. */
  readonly #awaiting: (Recent & { topic: string; packet: IncomingPacket })[] = [];
  readonly #up: [boolean, boolean];
  #anyUp: boolean;

  /** Wraps two connecting sessions; listens to their events at once. */
  constructor(options: BrokerPairOptions) {
    this.#sessions = options.sessions;
    this.#labels = options.labels ?? ["broker-1", "broker-2"];
    this.#windowMs = options.duplicateWindowMs ?? 2000;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    this.#needsAgreement = options.needsAgreement;
    this.#up = [this.#sessions[0].connected, this.#sessions[1].connected];
    this.#anyUp = this.#up[0] || this.#up[1];
    this.#sessions.forEach((session, index) => this.#watch(session, index));
  }

  /** True while at least one broker is connected. */
  get connected(): boolean {
    return this.#sessions[0].connected || this.#sessions[1].connected;
  }

  /** Number of brokers connected now (0, 1 or 2). */
  get connectedCount(): number {
    return (this.#sessions[0].connected ? 1 : 0) + (this.#sessions[1].connected ? 1 : 0);
  }

  /** The brokers' labels and whether each is connected. */
  brokers(): { label: string; connected: boolean }[] {
    return this.#sessions.map((s, i) => ({ label: this.#labels[i], connected: s.connected }));
  }

  /**
   * Registers a listener for one broker's loss (`up` false, the other still connected or not) or
   * return (`up` true); `connected` is the number of brokers connected after the change.
   * @returns a function that removes the listener.
   */
  onBrokerChange(listener: (label: string, up: boolean, connected: number) => void): () => void {
    this.#brokerListeners.add(listener);
    return () => this.#brokerListeners.delete(listener);
  }

  /**
   * Publishes to both brokers. A session that is down queues or drops the message by its own
   * settings (QoS 1 is queued and sent on reconnect; the agents drop QoS 0). The callback runs
   * once: on the first success (QoS 1: PUBACK), or with the error when no connected broker took it.
   */
  publish(
    topic: string,
    message: string | Uint8Array,
    options?: PublishOptions,
    callback?: (error?: Error) => void,
  ): unknown {
    const targets = this.#sessions.filter((s) => s.connected);
    // Nobody connected: hand it to both (queued by QoS 1 sessions); the first that sends it wins.
    const waitFor = targets.length > 0 ? targets : [...this.#sessions];
    let pending = waitFor.length;
    let done = false;
    let lastError: Error | undefined;
    for (const session of this.#sessions) {
      const counted = waitFor.includes(session);
      session.publish(topic, message, options ?? {}, (error?: Error) => {
        if (!counted || done) return;
        if (!error) {
          done = true;
          callback?.();
          return;
        }
        lastError = error;
        if (--pending === 0) {
          done = true;
          callback?.(lastError);
        }
      });
    }
    return this;
  }

  /** Publishes to both; resolves on the first success. @throws the error when none took it. */
  publishAsync(topic: string, message: string, options?: PublishOptions): Promise<unknown> {
    return new Promise((resolve, reject) =>
      this.publish(topic, message, options, (error) => error ? reject(error) : resolve(undefined))
    );
  }

  /**
   * Subscribes on both sessions (a session that is down subscribes when it connects; each
   * resubscribes after a reconnect). Resolves on the first SUBACK.
   * @throws AggregateError when both refuse.
   */
  subscribeAsync(topics: string | string[], options: { qos: 0 | 1 | 2 }): Promise<unknown> {
    return Promise.any(this.#sessions.map((s) => s.subscribeAsync(topics, options)));
  }

  /** Registers an event listener (see the module doc for the pair's semantics). */
  on(event: "connect", listener: () => void): unknown;
  on(
    event: "message",
    listener: (topic: string, payload: Uint8Array, packet: IncomingPacket) => void,
  ): unknown;
  on(event: "close" | "offline" | "reconnect", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: string, listener: Listener): unknown {
    if (event === "message") {
      this.#messageListeners.push(listener as MessageListener);
      return this;
    }
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, set = new Set());
    set.add(listener);
    return this;
  }

  /** Disconnects both sessions (DISCONNECT: no Last Will). */
  async endAsync(force?: boolean): Promise<void> {
    await Promise.allSettled(this.#sessions.map((s) => s.endAsync(force)));
  }

  #emit(event: string, ...args: unknown[]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      (listener as (...a: unknown[]) => void)(...args);
    }
  }

  #watch(session: MqttClientLike, index: number): void {
    session.on("connect", () => {
      this.#setUp(index, true);
      this.#emit("connect");
    });
    const down = () => {
      this.#setUp(index, false);
      if (!this.connected && this.#anyUp) {
        this.#anyUp = false;
        this.#emit("close");
        this.#emit("offline");
      }
    };
    session.on("close", down);
    session.on("offline", down);
    session.on("reconnect", () => {
      if (!this.connected) this.#emit("reconnect");
    });
    session.on("error", (error) => {
      const wrapped = new Error(`${this.#labels[index]}: ${error.message}`, { cause: error });
      this.#emit("error", wrapped);
    });
    session.on("message", (topic, payload, packet) => {
      if (this.#needsAgreement?.(topic, payload, packet)) {
        if (this.#seenRecently(topic, payload)) {
          this.stats.duplicates++;
          return;
        }
        const verdict = this.#awaitAgreement(topic, payload, packet, index);
        if (verdict === "held") return;
        if (verdict === "agreed") {
          this.stats.delivered++;
          for (const listener of this.#messageListeners) listener(topic, payload, packet);
          return;
        }
      }
      if (this.#isDuplicate(topic, payload, index)) {
        this.stats.duplicates++;
        return;
      }
      this.stats.delivered++;
      for (const listener of this.#messageListeners) listener(topic, payload, packet);
    });
  }

  #setUp(index: number, up: boolean): void {
    if (up) this.#anyUp = true;
    if (this.#up[index] === up) return;
    this.#up[index] = up;
    // Copies waiting for the lost broker's agreement are not released: a copy may be a stale
    // will of an earlier session that a stalled broker delivered late (found by the pair
    // campaign: a broker killed while such a copy waited "expired" a live node); they expire
    // and the node's deadline decides — only the fast path is lost in that double fault.
    const connected = this.connectedCount;
    if (!up && connected > 0) this.stats.brokerLosses++;
    for (const listener of this.#brokerListeners) listener(this.#labels[index], up, connected);
  }

  /**
   * A message that needs agreement: `held` (waits for the other broker), `agreed` (this copy is
   * the other broker's agreement: deliver it once; both copies are remembered, so any later copy
   * is a duplicate) or `single` (one broker connected: it cannot wait; the duplicate check
   * decides).
   */
  #awaitAgreement(
    topic: string,
    payload: Uint8Array,
    packet: IncomingPacket,
    session: number,
  ): "held" | "agreed" | "single" {
    const nowMs = this.#nowMs();
    this.#expireAwaiting(nowMs);
    const i = this.#awaiting.findIndex((a) =>
      a.topic === topic && a.session !== session && equal(a.payload, payload)
    );
    if (i >= 0) {
      this.#awaiting.splice(i, 1);
      this.#remember(topic, payload, 0, nowMs);
      this.#remember(topic, payload, 1, nowMs);
      return "agreed";
    }
    if (this.connectedCount < 2) return "single";
    this.#awaiting.push({ topic, payload, packet, session, atMs: nowMs });
    return "held";
  }

  /** Drops the waiting copies older than the window (counted in `unconfirmed`). */
  #expireAwaiting(nowMs: number): void {
    for (let i = this.#awaiting.length - 1; i >= 0; i--) {
      if (nowMs - this.#awaiting[i].atMs > this.#windowMs) {
        this.#awaiting.splice(i, 1);
        this.stats.unconfirmed++;
      }
    }
  }

  /** An equal message on `topic` was delivered within the window (from either broker). */
  #seenRecently(topic: string, payload: Uint8Array): boolean {
    const nowMs = this.#nowMs();
    return this.#recent.get(topic)?.some((r) =>
      nowMs - r.atMs <= this.#windowMs && equal(r.payload, payload)
    ) ?? false;
  }

  #remember(topic: string, payload: Uint8Array, session: number, atMs: number): void {
    let recent = this.#recent.get(topic);
    if (!recent) this.#recent.set(topic, recent = []);
    recent.push({ payload, session, atMs });
    if (recent.length > RECENT_PER_TOPIC) recent.shift();
  }

  /**
   * True when the other session delivered an equal message within the window; else remembers this
   * one. O(RECENT_PER_TOPIC) comparisons of payloads of a few dozen bytes.
   */
  #isDuplicate(topic: string, payload: Uint8Array, session: number): boolean {
    const nowMs = this.#nowMs();
    let recent = this.#recent.get(topic);
    if (!recent) this.#recent.set(topic, recent = []);
    for (let i = 0; i < recent.length; i++) {
      const r = recent[i];
      if (r.session !== session && nowMs - r.atMs <= this.#windowMs && equal(r.payload, payload)) {
        recent.splice(i, 1); // each copy pairs with one other copy
        return true;
      }
    }
    // kept by reference: mqtt.js hands every message its own buffer and never reuses it
    recent.push({ payload, session, atMs: nowMs });
    if (recent.length > RECENT_PER_TOPIC) recent.shift();
    return false;
  }
}

/** Byte equality, compared from the end: consecutive heartbeats differ in their last digits. */
function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}
