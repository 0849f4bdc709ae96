/**
 * The node agent: the node-side role that runs on every Jetson.
 *
 * It publishes the node heartbeat (the node target's topic, QoS 0, `{"seq":n}`) on a drift-free
 * monotonic schedule whenever it is connected: the heartbeat means "this node and its agent are
 * alive", nothing more. The node's retained QoS 1 status (a {@linkcode NodeStatus}) says the rest:
 * - `online` on every (re)connect while every sensor in the node's `requiredSensors` ticked within
 *   that sensor's `timeoutMs` (the origin project gates on camera frames seen within 150 ms);
 * - `degraded:<stale sensors, sorted>` when one of them is stale (published on change only; `online`
 *   again once all are fresh), so that only the workloads needing those sensors are failed over and
 *   no node is fenced for a camera glitch;
 * - `draining` during a planned stop ({@linkcode NodeAgent.drain}), then `offline` and DISCONNECT
 *   ({@linkcode NodeAgent.stop}); the retained `offline` Last Will is set by the caller in the connect
 *   options (see {@linkcode agentWill}).
 *
 * It watches the retained promotions of the workloads placed on its node, logs `fenced` when a newer
 * epoch names another node as active (the old primary stands down), and knows from them which
 * workloads are active here (the drain waits until none is). It obeys a promotion only from a
 * supervisor of the config, naming one of the workload's two nodes, and never one that names
 * another node at the epoch it already holds (`checkPromotion`); refusals are counted
 * (`refusedPromotions`) and logged once per workload and reason.
 *
 * Every topic, sensor and workload comes from the node's {@linkcode NodeTarget} in the topology
 * (`buildTopology`); the agent builds no topic and parses none.
 *
 * The agent never loads the Kubernetes client and never reads wall-clock time for timing.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import { RepeatedLog } from "../log/repeated_log.ts";
import type { IncomingPacket, MqttClientLike } from "../mqtt/client.ts";
import type { WillOptions } from "../mqtt/options.ts";
import type { NodeTarget, Placement, SensorTarget, Side } from "../topology/topology.ts";
import {
  decodeBeat,
  decodePromotion,
  encodeBeat,
  encodeNodeStatus,
  type NodeStatus,
  type Promotion,
} from "../wire/wire.ts";
import { checkPromotion, logRefusalOnce } from "../wire/promotion_check.ts";
import { PeriodicSchedule } from "./periodic_schedule.ts";

/** Default bound of {@linkcode NodeAgent.stop}, in ms. */
const DEFAULT_AGENT_STOP_TIMEOUT_MS = 2000;

/** Default bound of {@linkcode NodeAgent.drain}, in ms. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 3000;

/**
 * The Last Will a node agent's connection must carry: retained QoS 1 `offline` on the node's status
 * topic, published by the broker when the connection drops without DISCONNECT.
 *
 * @param node the node's target in the topology.
 */
export function agentWill(node: NodeTarget): WillOptions {
  return { topic: node.statusTopic, payload: "offline", qos: 1, retain: true };
}

/** Counters of a {@linkcode NodeAgent}; a snapshot, not live. */
export interface NodeAgentStats {
  /** Node heartbeats handed to the MQTT client. */
  readonly heartbeatsSent: number;
  /** Heartbeat slots at which the node was `degraded` (a required sensor stale or never seen). */
  readonly degradedPeriods: number;
  /**
   * Slots at which a newly stale sensor was not reported because the timer fired more than half a
   * period late (an event-loop stall: ticks received meanwhile may still be queued); the next
   * punctual slot decides.
   */
  readonly deferredSensorChecks: number;
  /** Heartbeat slots skipped because the client was not connected (never queued for later). */
  readonly offlinePeriods: number;
  /**
   * Heartbeat slots merged into a late one because the timer fired more than a period late (the
   * late slot is still sent, at once).
   */
  readonly missedSlots: number;
  /** Clock reading (ms, monotonic) of the last heartbeat sent; `undefined` before the first. */
  readonly lastHeartbeatAtMs: number | undefined;
  /** `seq` of the last heartbeat sent (0 before the first; the first heartbeat carries 1). */
  readonly seq: number;
  /** Malformed tick or promotion payloads dropped. */
  readonly malformed: number;
  /** Promotions that named another node active for a workload of this node (stand-downs). */
  readonly fenced: number;
  /**
   * Well-formed promotions not obeyed: unknown issuer, an active node that is not one of the
   * workload's placements, or an epoch already held with another active node.
   */
  readonly refusedPromotions: number;
  /** The node's current status (the last one published, or to be published on connect). */
  readonly status: NodeStatus;
}

/** The outcome of {@linkcode NodeAgent.drain}. */
export interface DrainResult {
  /**
   * `drained`: no workload is active on this node any more; `timed-out`: the bound passed first
   * (e.g. no healthy standby); `stopped`: {@linkcode NodeAgent.stop} was called first.
   */
  outcome: "drained" | "timed-out" | "stopped";
  /**
   * Switchover time, ms: from `draining` published to the promotion that moved the last workload
   * away (0 when none was active here); `undefined` unless `drained`.
   */
  switchoverMs: number | undefined;
  /** How long the drain took, ms. */
  elapsedMs: number;
  /** Workloads that a promotion moved away from this node during the drain. */
  moved: string[];
  /** Workloads still active on this node at the end (empty when `drained`). */
  pending: string[];
}

/** What {@linkcode NodeAgent.onPromotion} listeners receive. */
export interface PromotionEvent {
  /**
   * The decoded promotion: its epoch is above every earlier one this agent saw, its issuer a
   * supervisor of the config, its active node one of the workload's two nodes.
   */
  promotion: Promotion;
  /** True when another node is now active, i.e. this node's instance must stand down. */
  fenced: boolean;
  /** This node's placement of the workload (its `side` is the role configured here). */
  placement: Placement;
  /** The side this node has in the workload's configuration (`placement.side`). */
  role: Side;
}

/** Options of {@linkcode NodeAgent}. */
export interface NodeAgentOptions {
  /** The node this agent speaks for, from `buildTopology(config)`. */
  node: NodeTarget;
  /**
   * Connected or connecting client whose connect options carry {@linkcode agentWill}. It must
   * restore subscriptions after a reconnect (`npm:mqtt` does with its default `resubscribe: true`);
   * the agent owns it from {@linkcode NodeAgent.start} on and ends it in {@linkcode NodeAgent.stop}.
   */
  client: MqttClientLike;
  /** Monotonic clock (default {@linkcode systemClock}). */
  clock?: Clock;
  /** Logger (default silent). */
  log?: Logger;
  /**
   * Called at every heartbeat slot with the clock reading and whether a heartbeat was sent (false:
   * skipped while disconnected); evidence for the service manager's watchdog (`lib/systemd`).
   */
  onSlot?: (atMs: number, sent: boolean) => void;
}

/**
 * The node-side agent of one Jetson (see the module documentation for the protocol).
 *
 * Lifecycle: construct → {@linkcode NodeAgent.start} → ({@linkcode NodeAgent.drain} →)
 * {@linkcode NodeAgent.stop}. Not restartable.
 */
export class NodeAgent {
  readonly #node: NodeTarget;
  readonly #client: MqttClientLike;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onSlotHook: (atMs: number, sent: boolean) => void;
  /** tick topic → required sensor */
  readonly #ticks = new Map<string, SensorTarget>();
  readonly #lastTickAtMs = new Map<SensorTarget, number>();
  /** promotion topic → this node's placement of that workload */
  readonly #placements = new Map<string, Placement>();
  readonly #lastEpoch = new Map<Placement, number>();
  /** The active node named by the highest-epoch promotion seen, per placement. */
  readonly #activeNode = new Map<Placement, string>();
  readonly #listeners = new Set<(event: PromotionEvent) => void>();
  readonly #schedule: PeriodicSchedule;
  #started = false;
  /** Since when ticks can reach the agent: its last connect (the start while never connected). */
  #watchingSinceMs = 0;
  #stopping: Promise<void> | undefined;
  #draining: Promise<DrainResult> | undefined;
  #drain: Drain | undefined;
  #status: NodeStatus = { state: "online" };
  /** Repeated lines (mqtt-error at every reconnect attempt), summarised. */
  readonly #repeats: RepeatedLog;
  #heartbeatsSent = 0;
  #degradedPeriods = 0;
  #deferredSensorChecks = 0;
  #offlinePeriods = 0;
  #lastHeartbeatAtMs: number | undefined;
  #seq = 0;
  #malformed = 0;
  #fenced = 0;
  #refusedPromotions = 0;
  /** `<workload>/<reason>` of every promotion refusal already logged (each is logged once). */
  readonly #refusalsLogged = new Set<string>();

  /** Creates an agent; nothing is subscribed or published before {@linkcode NodeAgent.start}. */
  constructor(options: NodeAgentOptions) {
    const node = options.node;
    this.#node = node;
    this.#client = options.client;
    this.#clock = options.clock ?? systemClock;
    this.#log = (options.log ?? silentLogger).child({ node: node.name });
    this.#repeats = new RepeatedLog({ log: this.#log, clock: this.#clock });
    this.#onSlotHook = options.onSlot ?? (() => {});
    for (const sensor of node.requiredSensors) this.#ticks.set(sensor.topic, sensor);
    for (const placement of node.placements) {
      this.#placements.set(placement.workload.promotionTopic, placement);
    }
    this.#schedule = new PeriodicSchedule(
      this.#clock,
      node.periodMs,
      (_slot, nowMs, lateMs) => this.#onSlot(nowMs, lateMs),
    );
  }

  /** The node this agent speaks for. */
  get node(): NodeTarget {
    return this.#node;
  }

  /** A snapshot of the agent's counters. */
  get stats(): NodeAgentStats {
    return Object.freeze({
      heartbeatsSent: this.#heartbeatsSent,
      degradedPeriods: this.#degradedPeriods,
      deferredSensorChecks: this.#deferredSensorChecks,
      offlinePeriods: this.#offlinePeriods,
      missedSlots: this.#schedule.missedSlots,
      lastHeartbeatAtMs: this.#lastHeartbeatAtMs,
      seq: this.#seq,
      malformed: this.#malformed,
      fenced: this.#fenced,
      refusedPromotions: this.#refusedPromotions,
      status: this.#status,
    });
  }

  /**
   * Each required sensor's freshness as this agent knows it now: `fresh` (ticked within its
   * `timeoutMs`), `stale` (no tick for `timeoutMs` after a full `timeoutMs` of watching since the
   * last connect, or already reported stale) or `unknown` (disconnected: no evidence; or watched
   * for less than `timeoutMs` since connecting, without a tick). For `/readyz` and the metrics.
   */
  sensorStates(
    nowMs: number = this.#clock.nowMs(),
  ): { sensor: string; state: "fresh" | "stale" | "unknown" }[] {
    const reported = this.#status.state === "degraded" ? this.#status.stale : [];
    const stale = new Set(this.#staleSensors(nowMs, reported));
    return [...this.#ticks.values()].map((sensor) => {
      const at = this.#lastTickAtMs.get(sensor) ?? -Infinity;
      const state = !this.#client.connected
        ? "unknown"
        : nowMs - at <= sensor.timeoutMs
        ? "fresh"
        : stale.has(sensor.name)
        ? "stale"
        : "unknown";
      return { sensor: sensor.name, state };
    });
  }

  /** Draining (a planned stop) or stopping. */
  get stopping(): boolean {
    return this.#stopping !== undefined || this.#draining !== undefined;
  }

  /**
   * The workloads whose active instance is on this node: the highest-epoch promotion seen names
   * this node active, or none was seen and this node is the workload's configured primary.
   */
  get activeWorkloads(): string[] {
    const active: string[] = [];
    for (const placement of this.#placements.values()) {
      const workload = placement.workload;
      const activeNode = this.#activeNode.get(placement) ?? workload.primary.node.name;
      if (activeNode === this.#node.name) active.push(workload.name);
    }
    return active;
  }

  /**
   * Subscribes to the required sensors' ticks and to the promotions of the workloads placed on
   * this node, announces its status (now if the client is already connected, and on every later
   * connect), and starts the heartbeat schedule; the first heartbeat slot is one period after this
   * call. Ticks reach the agent through the broker, so a disconnected agent has no evidence about
   * its sensors: the status is not re-evaluated while disconnected, and after every (re)connect a
   * sensor not reported stale yet is reported only when it has not ticked for `timeoutMs` since the
   * connect (one already reported stays stale until it ticks). A second call is a no-op.
   * @throws Error when called after {@linkcode NodeAgent.stop}.
   */
  start(): void {
    if (this.#stopping) throw new Error(`agent ${this.#node.name} was stopped; create a new one`);
    if (this.#started) return;
    this.#started = true;
    this.#watchingSinceMs = this.#clock.nowMs();
    const client = this.#client;
    client.on("connect", () => this.#onConnect());
    client.on("message", (topic, payload, packet) => this.#onMessage(topic, payload, packet));
    client.on("close", () => {
      if (!this.#stopping) this.#log.warn("connection-closed");
    });
    // While the broker is unreachable the client reports the same error on every retry.
    client.on(
      "error",
      (error) => this.#repeats.warn("mqtt-error", { error: error.message }, ["error"]),
    );
    const topics = [...this.#ticks.keys(), ...this.#placements.keys()];
    if (topics.length > 0) {
      client.subscribeAsync(topics, { qos: 1 }).catch((error: Error) => {
        this.#log.error("subscribe-failed", { error: error.message, topics });
      });
    }
    if (client.connected) this.#onConnect();
    this.#schedule.start(this.#watchingSinceMs);
    this.#log.info("agent-started", {
      heartbeatTopic: this.#node.topic,
      periodMs: this.#node.periodMs,
      requiredSensors: this.#node.requiredSensors.map((s) => s.name),
    });
  }

  /**
   * Registers a listener for promotions of this node's workloads whose epoch is above every earlier
   * one seen. Listener exceptions are logged and swallowed.
   * @returns a function that removes the listener.
   */
  onPromotion(listener: (event: PromotionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The first half of a planned stop (SIGTERM, SIGHUP, an OTA update): publishes the retained QoS 1
   * status `draining` (now, or on the next connect), keeps heartbeating, and waits until no
   * workload is active on this node any more (see {@linkcode NodeAgent.activeWorkloads}: every one
   * has a promotion naming another node), at most `timeoutMs` (default
   * {@linkcode DEFAULT_DRAIN_TIMEOUT_MS}). Logs `drained` (at warn when it timed out, e.g. because
   * the supervisor had no healthy standby). Call {@linkcode NodeAgent.stop} afterwards, in any
   * case. Idempotent: later calls return the first call's promise. Never rejects.
   * @throws Error when called before {@linkcode NodeAgent.start}.
   */
  drain(opts: { timeoutMs?: number } = {}): Promise<DrainResult> {
    if (!this.#started) throw new Error(`agent ${this.#node.name} was not started`);
    this.#draining ??= this.#startDrain(opts.timeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    return this.#draining;
  }

  #startDrain(timeoutMs: number): Promise<DrainResult> {
    const startedAtMs = this.#clock.nowMs();
    if (this.#stopping) {
      return Promise.resolve({
        outcome: "stopped",
        switchoverMs: undefined,
        elapsedMs: 0,
        moved: [],
        pending: this.activeWorkloads,
      });
    }
    this.#setStatus({ state: "draining" });
    this.#log.info("draining", { timeoutMs, active: this.activeWorkloads });
    return new Promise((resolve) => {
      const drain: Drain = {
        startedAtMs,
        lastMovedAtMs: startedAtMs,
        moved: [],
        timer: undefined,
        finish: (outcome) => {
          if (this.#drain !== drain) return;
          this.#drain = undefined;
          this.#clock.clearTimer(drain.timer);
          const result: DrainResult = {
            outcome,
            switchoverMs: outcome === "drained" ? drain.lastMovedAtMs - startedAtMs : undefined,
            elapsedMs: this.#clock.nowMs() - startedAtMs,
            moved: drain.moved,
            pending: this.activeWorkloads,
          };
          const fields = {
            timedOut: outcome === "timed-out",
            outcome,
            switchoverMs: result.switchoverMs ?? null,
            elapsedMs: result.elapsedMs,
            moved: result.moved,
            pending: result.pending,
          };
          if (outcome === "drained") this.#log.info("drained", fields);
          else this.#log.warn("drained", { ...fields, timeoutMs });
          resolve(result);
        },
      };
      this.#drain = drain;
      drain.timer = this.#clock.setTimer(() => drain.finish("timed-out"), timeoutMs);
      this.#checkDrained();
    });
  }

  /**
   * Orderly shutdown: stops the heartbeat (and ends a pending {@linkcode NodeAgent.drain} as
   * `stopped`), publishes retained QoS 1 `offline` (when connected; it waits for the PUBACK), then
   * ends the client gracefully (DISCONNECT, so no Last Will). When this takes longer than
   * `timeoutMs` (default {@linkcode DEFAULT_AGENT_STOP_TIMEOUT_MS}) the client is force-closed
   * instead. Idempotent: later calls return the first call's promise. Never rejects.
   */
  stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(opts.timeoutMs ?? DEFAULT_AGENT_STOP_TIMEOUT_MS);
    return this.#stopping;
  }

  async #stop(timeoutMs: number): Promise<void> {
    this.#schedule.stop();
    this.#drain?.finish("stopped");
    this.#status = { state: "offline" };
    const client = this.#client;
    let timer: TimerHandle | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = this.#clock.setTimer(() => resolve("timeout"), timeoutMs);
    });
    const graceful = (async () => {
      if (client.connected) {
        try {
          await client.publishAsync(this.#node.statusTopic, encodeNodeStatus(this.#status), {
            qos: 1,
            retain: true,
          });
        } catch (error) {
          this.#log.warn("offline-publish-failed", { error: (error as Error).message });
        }
      }
      await client.endAsync(false);
      return "done" as const;
    })();
    const outcome = await Promise.race([graceful, timedOut]);
    this.#clock.clearTimer(timer);
    if (outcome === "timeout") {
      this.#log.warn("stop-timeout-forced-close", { timeoutMs });
      await new Promise<void>((resolve) => {
        // A stuck client may never settle; force-close without waiting for it.
        client.endAsync(true).then(resolve, resolve);
        this.#clock.setTimer(resolve, 0);
      });
    }
    this.#repeats.close();
    this.#log.info("agent-stopped", { heartbeatsSent: this.#heartbeatsSent });
  }

  #onConnect(): void {
    if (this.#stopping) return;
    this.#watchingSinceMs = this.#clock.nowMs();
    this.#publishStatus();
    this.#log.info("connected", {
      statusTopic: this.#node.statusTopic,
      status: encodeNodeStatus(this.#status),
    });
  }

  /** Records the status and publishes it now when connected (else {@linkcode #onConnect} does). */
  #setStatus(status: NodeStatus): void {
    this.#status = status;
    if (this.#client.connected) this.#publishStatus();
  }

  #publishStatus(): void {
    const payload = encodeNodeStatus(this.#status);
    this.#client.publishAsync(this.#node.statusTopic, payload, { qos: 1, retain: true })
      .catch((error: Error) =>
        this.#log.warn("status-publish-failed", { status: payload, error: error.message })
      );
  }

  #onSlot(nowMs: number, lateMs: number): void {
    if (this.#stopping) return;
    if (this.#client.connected) {
      this.#seq++;
      // The hot path: QoS 0, fire and forget. Not gated on the sensors: liveness only.
      this.#client.publish(this.#node.topic, encodeBeat(this.#seq), { qos: 0, retain: false });
      this.#heartbeatsSent++;
      this.#lastHeartbeatAtMs = nowMs;
      if (!this.#draining) this.#checkSensors(nowMs, lateMs);
      this.#onSlotHook(nowMs, true);
    } else {
      // Never queue: a heartbeat delivered late is a stale one. No ticks arrive either: no
      // evidence about the sensors, the status stays as it was.
      this.#offlinePeriods++;
      this.#onSlotHook(nowMs, false);
    }
  }

  /** Updates the `online` / `degraded:…` status from the required sensors' freshness. */
  #checkSensors(nowMs: number, lateMs: number): void {
    const current = this.#status.state === "degraded" ? this.#status.stale : [];
    const stale = this.#staleSensors(nowMs, current);
    const worse = stale.some((name) => !current.includes(name));
    if (worse && lateMs > this.#node.periodMs / 2) {
      // An event-loop stall: ticks that arrived during it may still be queued behind this timer.
      // That is no evidence of a stale sensor; the next (punctual) slot decides.
      this.#deferredSensorChecks++;
      this.#log.debug("sensor-check-deferred", { lateMs, staleSensors: stale });
    } else if (stale.length !== current.length || worse) {
      if (stale.length > 0) {
        this.#setStatus({ state: "degraded", stale });
        this.#log.warn("degraded", { staleSensors: stale });
      } else {
        this.#setStatus({ state: "online" });
        this.#log.info("sensors-fresh", { degradedPeriods: this.#degradedPeriods });
      }
    }
    if (this.#status.state === "degraded") this.#degradedPeriods++;
  }

  /**
   * Names (sorted) of the required sensors without a tick within their `timeoutMs`. Ticks arrive
   * through the broker, so a sensor not yet reported stale (`reported`) gets a full `timeoutMs`
   * after the last connect before it is; one already reported stays stale until it ticks.
   */
  #staleSensors(nowMs: number, reported: readonly string[]): string[] {
    const stale: string[] = [];
    for (const sensor of this.#ticks.values()) {
      const at = this.#lastTickAtMs.get(sensor) ?? -Infinity;
      if (nowMs - at <= sensor.timeoutMs) continue;
      const watchedLongEnough = nowMs - this.#watchingSinceMs > sensor.timeoutMs;
      if (watchedLongEnough || reported.includes(sensor.name)) stale.push(sensor.name);
    }
    return stale.sort();
  }

  #onMessage(topic: string, payload: Uint8Array, packet: IncomingPacket): void {
    if (this.#stopping) return;
    const sensor = this.#ticks.get(topic);
    if (sensor) {
      if (packet?.retain) return; // a retained tick is old news, never freshness
      if (decodeBeat(payload) === undefined) {
        this.#malformed++;
        this.#log.warn("malformed-tick", { topic });
        return;
      }
      this.#lastTickAtMs.set(sensor, this.#clock.nowMs());
      return;
    }
    const placement = this.#placements.get(topic);
    if (placement) this.#onPromotionMessage(topic, placement, payload);
  }

  #onPromotionMessage(topic: string, placement: Placement, payload: Uint8Array): void {
    if (payload.length === 0) return; // a cleared retained promotion
    const workload = placement.workload;
    const promotion = decodePromotion(payload);
    if (!promotion || promotion.workload !== workload.name) {
      this.#malformed++;
      this.#log.warn("malformed-promotion", { topic });
      return;
    }
    const last = this.#lastEpoch.get(placement) ?? 0;
    const verdict = checkPromotion(workload, promotion, {
      epoch: last,
      activeNode: this.#activeNode.get(placement) ?? workload.primary.node.name,
    });
    if (verdict.kind === "refused") {
      this.#refusedPromotions++;
      logRefusalOnce(this.#log, this.#refusalsLogged, workload, promotion, verdict);
      return;
    }
    if (verdict.kind === "stale") {
      this.#log.debug("stale-promotion", {
        workload: workload.name,
        epoch: promotion.epoch,
        last,
      });
      return;
    }
    this.#lastEpoch.set(placement, promotion.epoch);
    const wasActiveHere = this.activeWorkloads.includes(workload.name);
    this.#activeNode.set(placement, promotion.activeNode);
    const fenced = promotion.activeNode !== this.#node.name;
    const role = placement.side;
    const fields = {
      workload: workload.name,
      epoch: promotion.epoch,
      activeNode: promotion.activeNode,
      failedNode: promotion.failedNode,
      reason: promotion.reason,
      role,
    };
    if (fenced) {
      this.#fenced++;
      // During a drain, handing the workload over is what was asked for.
      if (this.#drain) this.#log.info("fenced", { ...fields, draining: true });
      else this.#log.warn("fenced", fields);
    } else {
      this.#log.info("promoted", fields);
    }
    for (const listener of this.#listeners) {
      try {
        listener({ promotion, fenced, placement, role });
      } catch (error) {
        this.#log.error("promotion-listener-failed", { error: String(error) });
      }
    }
    const drain = this.#drain;
    if (drain && wasActiveHere && fenced) {
      drain.moved.push(workload.name);
      drain.lastMovedAtMs = this.#clock.nowMs();
    }
    this.#checkDrained();
  }

  /** Ends a pending drain once no workload is active on this node. */
  #checkDrained(): void {
    if (this.#drain && this.activeWorkloads.length === 0) this.#drain.finish("drained");
  }
}

/** A drain in progress. */
interface Drain {
  readonly startedAtMs: number;
  /** Clock reading when the last workload was moved away (the start while none was). */
  lastMovedAtMs: number;
  readonly moved: string[];
  timer: TimerHandle | undefined;
  /** Ends the drain (only the first call counts), logs `drained`, resolves the promise. */
  finish(outcome: DrainResult["outcome"]): void;
}
