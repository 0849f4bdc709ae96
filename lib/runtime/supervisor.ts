/**
 * The supervisor (`run`): the composition root of the data path
 * MQTT ingest → watchdog → failover coordinator (policy → promotion → reconciler).
 *
 * Parts, each in its own module: {@linkcode Ingest} (routing, decoding, ingest faults),
 * the {@linkcode Watchdog} (deadlines, barrier confirmation), the {@linkcode FailoverCoordinator}
 * (policy, promotions, desired state to the reconciler), the `ClusterReconciler` (observe →
 * compare → converge against the Kubernetes API or, in a dry run, a model), and
 * {@linkcode Telemetry} (the `stats` line). The lifecycle is one explicit state:
 *
 * ```
 * created ──start()──▶ starting ──armed and cluster state adopted──▶ running
 *    │                    │                                             │
 *    └──────stop()────────┴──────────────── stop() ─────────────────────┴──▶ stopping ──▶ stopped
 * ```
 *
 * Start-up order: ingest connects, subscribes and arms the watchdog at once; meanwhile the
 * reconciler loads (client-node, ≈ 0.4 s), syncs its watch-backed cache and the persisted failover
 * state is adopted. A failure confirmed before that waits for it (a decision needs the epoch).
 *
 * Supervisor pair (`leadership` given): the election runs from the start; ingest and the watchdog
 * run warm on both instances, but only the leader decides (the coordinator checks `isLeader()` at
 * every entry). On becoming leader, every target then EXPIRED is decided as one batch. On stop the
 * Lease is released first, so the other instance takes over at once.
 *
 * Status: {@linkcode Supervisor.statusSnapshot} (`status.ts`) is what `sdv-failover status` shows;
 * the {@linkcode StatePublisher} publishes it retained on `{p}/supervisor/{id}/state` every
 * `stateIntervalMs` and, coalesced, after every timeline event.
 *
 * @module
 */
import { type Clock, systemClock } from "../clock/clock.ts";
import type { Config } from "../config/schema.ts";
import { Ingest, type IngestStats } from "../ingest/ingest.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import { BrokerPair } from "../mqtt/broker_pair.ts";
import { RepeatedLog } from "../log/repeated_log.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import type { WillOptions } from "../mqtt/options.ts";
import { FailoverPolicy } from "../policy/policy.ts";
import type { ClusterReconciler, ReconcileReport } from "../reconcile/reconciler.ts";
import { supervisorStatusTopic } from "../topology/topics.ts";
import {
  buildTopology,
  type NodeTarget,
  type Target,
  type Topology,
} from "../topology/topology.ts";
import { type Transition, Watchdog } from "../watchdog/watchdog.ts";
import { encodeBarrier, newBarrierNonce } from "../wire/wire.ts";
import { type CoordinatorEvent, FailoverCoordinator, round } from "./coordinator.ts";
import { StatePublisher } from "./state_publisher.ts";
import { buildStatusSnapshot, type StatusSnapshot } from "./status.ts";
import { Telemetry } from "./telemetry.ts";

/** A timeline entry, for logs, the demo and measurements. Times are monotonic ms. */
export type SupervisorEvent =
  | { type: "armed"; atMs: number; targets: number }
  | { type: "transition"; transition: Transition<Target> }
  | CoordinatorEvent
  | { type: "ingest-fault"; atMs: number; why: string }
  | { type: "ingest-restored"; atMs: number };

/**
 * Most targets whose state the supervisor publishes on the bus (`{p}/supervisor/{id}/state`): a
 * snapshot of more would exceed the broker's payload limit and cost ≈ 1 ms per 1,000 targets at
 * each publish; `/status` over HTTP serves any size.
 */
export const MAX_BUS_STATE_TARGETS = 256;

/** The supervisor's lifecycle. */
export type SupervisorState = "created" | "starting" | "running" | "stopping" | "stopped";

/**
 * Builds the reconciler once the supervisor is armed; `onReport` receives every pass,
 * `onUnfenceRequest` every operator request to unfence a node (`sdv-failover unfence`).
 */
export type ReconcilerFactory = (hooks: {
  onReport: (report: ReconcileReport) => void;
  onUnfenceRequest: (node: NodeTarget, requestedAt: string) => void;
}) => Promise<ClusterReconciler>;

/** The election of a supervisor pair, as the supervisor uses it (see `lib/leader`). */
export interface Leadership {
  /** This instance may act now (checked at call time). */
  isLeader(): boolean;
  /** Campaigns until `signal` aborts, then releases; rejects on a fatal error (duplicate id, 403). */
  run(signal: AbortSignal): Promise<void>;
  /**
   * Whether this instance may lead: false while its ingest is faulted (it cannot hear the nodes),
   * so a leader hands over to a peer that can (see `LeaseElector.setEligible`).
   */
  setEligible?(eligible: boolean): void;
}

/** Builds the election with the supervisor's callbacks (may load the Kubernetes client). */
export type LeadershipFactory = (hooks: {
  onStartedLeading: (term: number) => void;
  onStoppedLeading: (reason: string) => void;
}) => Promise<Leadership>;

/** Options of {@linkcode Supervisor}. */
export interface SupervisorOptions {
  config: Config;
  /** Built from `config` when omitted. */
  topology?: Topology;
  /** A connecting (not yet connected) MQTT client, opened with {@linkcode supervisorWill}. */
  client: MqttClientLike;
  /**
   * Builds the reconciler: the Kubernetes one loads client-node (≈ 0.4 s, ≈ 65 MB), so the
   * supervisor arms ingest and the watchdog first and builds it meanwhile.
   */
  reconciler: ReconcilerFactory;
  clock?: Clock;
  log?: Logger;
  /** Receives the timeline. */
  onEvent?: (event: SupervisorEvent) => void;
  /** Confirm expiries with an ingest barrier (default true; see `watchdog.ts`). */
  useBarrier?: boolean;
  /** Supervisor pair: the election (absent: this instance always acts). */
  leadership?: LeadershipFactory;
  /** A fatal error after start (the election ended: duplicate id, 403); the caller stops. */
  onFatal?: (error: unknown) => void;
  /**
   * Receives the lateness of every watchdog deadline-timer firing, ms (see
   * `WatchdogOptions.onTimerLateness`; for the metrics histogram). Default: none.
   */
  onTimerLateness?: (latenessMs: number) => void;
}

/** The supervisor's Last Will: retained `offline` on its status topic. */
export function supervisorWill(config: Config): WillOptions {
  return {
    topic: supervisorStatusTopic(config.mqtt.topicPrefix, config.supervisor.id),
    payload: "offline",
    qos: 1,
    retain: true,
  };
}

/** The supervisor. Construct, `await start()`, later `await stop()`. */
export class Supervisor {
  readonly #config: Config;
  readonly #topology: Topology;
  readonly #client: MqttClientLike;
  readonly #reconcilerFactory: ReconcilerFactory;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Repeated lines (with the broker down mqtt.js reports one error at every reconnect attempt). */
  readonly #repeats: RepeatedLog;
  readonly #onEvent: (event: SupervisorEvent) => void;
  readonly #watchdog: Watchdog<Target>;
  readonly #policy: FailoverPolicy;
  readonly #ingest: Ingest;
  readonly #coordinator: FailoverCoordinator;
  readonly #telemetry: Telemetry;
  readonly #statePublisher: StatePublisher;
  readonly #topics: { status: string; barrier: string; state: string };
  readonly #abort = new AbortController();
  #reconciler: ClusterReconciler | undefined;
  readonly #leadershipFactory: LeadershipFactory | undefined;
  readonly #onFatal: (error: unknown) => void;
  #leadership: Leadership | undefined;
  /** The election's run (settles after the release on stop). */
  #election: Promise<void> | undefined;
  readonly #electionAbort = new AbortController();
  /** The failure transition of every target that failed and has not been OK since. */
  readonly #failed = new Map<Target, Transition<Target>>();
  #state: SupervisorState = "created";
  #armed = false;
  #connectedOnce = false;
  /** Monotonic ms of `start()`. */
  #startedAtMs: number | undefined;
  /** Supervisor pair: the term of the last leadership period. */
  #term: number | undefined;
  /** Failures of the watchdog batch being delivered (decided together at its end). */
  #batch: Transition<Target>[] = [];
  /** Last degraded status per node (logged on change). */
  readonly #degraded = new Map<NodeTarget, string>();

  /** Builds every part from the config. Nothing runs until `start()`. */
  constructor(options: SupervisorOptions) {
    this.#config = options.config;
    this.#topology = options.topology ?? buildTopology(options.config);
    this.#client = options.client;
    this.#reconcilerFactory = options.reconciler;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
    this.#repeats = new RepeatedLog({ log: this.#log, clock: this.#clock });
    const onEvent = options.onEvent ?? (() => {});
    this.#onEvent = (event) => {
      onEvent(event);
      this.#statePublisher.changed(); // every timeline event changes the status
    };
    this.#leadershipFactory = options.leadership;
    this.#onFatal = options.onFatal ?? (() => {});
    const sup = this.#config.supervisor;
    this.#topics = this.#topology.supervisorTopics(sup.id);
    // One random nonce per process: only barriers carrying it confirm an expiry.
    const barrierNonce = newBarrierNonce();
    this.#watchdog = new Watchdog<Target>({
      clock: this.#clock,
      onTransition: (t) => this.#onTransition(t),
      onBatchEnd: () => {
        const batch = this.#batch;
        this.#batch = [];
        if (batch.length && this.#isLive()) this.#coordinator.onFailures(batch);
        for (const t of batch) this.#logTransition(t); // logged after acting
      },
      onIngestStall: (sinceMs) =>
        this.#ingest.fault(
          `ingest barrier not back after ${
            (this.#clock.nowMs() - sinceMs).toFixed(1)
          } ms (broker stalled?)`,
        ),
      barrier: options.useBarrier === false ? undefined : {
        request: (seq) =>
          this.#client.publish(this.#topics.barrier, encodeBarrier(seq, barrierNonce), { qos: 0 }),
      },
      barrierTimeoutMs: sup.barrierTimeoutMs,
      recoveryWindowMs: sup.recoveryWindowMs,
      lagToleranceMs: sup.lagToleranceMs,
      slowBarrierMs: sup.lagToleranceMs,
      onTimerLateness: options.onTimerLateness,
    });
    for (const target of this.#topology.targets) this.#watchdog.add(target);
    this.#policy = new FailoverPolicy({
      topology: this.#topology,
      isHealthy: (target) => this.#watchdog.stateAt(target.index) === "OK",
      isReady: (placement) =>
        this.#reconciler?.placementReady(placement) ??
          { ready: false, why: "cluster state not observed yet" },
      massExpiryShare: sup.massExpiryShare,
      fenceConfirmationMs: sup.fenceConfirmationMs,
    });
    this.#coordinator = new FailoverCoordinator({
      policy: this.#policy,
      client: this.#client,
      supervisorId: sup.id,
      clock: this.#clock,
      log: this.#log,
      onEvent: (e) => this.#onEvent(e),
      // in a pair nothing is decided until the election has made this instance the leader
      isLeader: this.#leadershipFactory ? () => this.#leadership?.isLeader() === true : undefined,
      isNodeAlive: (node) =>
        this.#watchdog.stateAt(node.index) === "OK" &&
        node.requiredSensors.every((s) => this.#watchdog.stateAt(s.index) === "OK"),
    });
    this.#ingest = new Ingest({
      topology: this.#topology,
      barrierTopic: this.#topics.barrier,
      barrierNonce,
      watchdog: this.#watchdog,
      clock: this.#clock,
      reconnectAllowanceMs: 2 * this.#config.mqtt.reconnectPeriodMs + 1000,
      onPromotion: (workload, p) => this.#coordinator.onPromotion(workload, p),
      onNodeStatus: (node, status) => {
        if (status.state === "draining") {
          if (!this.#policy.isDraining(node)) this.#coordinator.onPlannedStop(node);
          this.#statePublisher.changed();
        } else if (status.state === "degraded") {
          const stale = status.stale.join(",");
          if (this.#degraded.get(node) !== stale) {
            this.#degraded.set(node, stale);
            this.#log.warn("node-degraded", {
              node: node.name,
              stale,
              action: "only the workloads needing these sensors move (their own deadlines)",
            });
          }
        } else if (this.#degraded.delete(node)) {
          this.#log.info("node-sensors-fresh", { node: node.name });
        }
      },
      isDraining: (node) => this.#policy.isDraining(node),
      onDrained: (node) => this.#deactivate(node),
      onFault: (why) => {
        // a leader that cannot hear the nodes hands the Lease to a peer that can
        this.#leadership?.setEligible?.(false);
        this.#log.error("ingest-fault", { why, action: "supervision suspended, no failover" });
        this.#onEvent({ type: "ingest-fault", atMs: this.#clock.nowMs(), why });
      },
      onRestored: (why, lastWillQuietMs, graceMs) => {
        this.#leadership?.setEligible?.(true);
        this.#log.info("ingest-restored", { why, graceMs, lastWillQuietMs });
        this.#onEvent({ type: "ingest-restored", atMs: this.#clock.nowMs() });
      },
    });
    this.#telemetry = new Telemetry({
      clock: this.#clock,
      log: this.#log,
      intervalMs: sup.statsIntervalMs,
      sample: () => ({
        ...this.#ingest.stats,
        armed: this.#watchdog.armedCount,
        ...this.#watchdog.stats,
        maxTimerLatenessMs: round(this.#watchdog.stats.maxTimerLatenessMs) ?? 0,
        reconcileQueue: this.#reconciler?.queueDepth ?? 0,
        // supervisor pair: 1 while this instance leads
        ...(this.#leadershipFactory ? { leader: this.#leadership?.isLeader() ? 1 : 0 } : {}),
      }),
      messages: () => this.#ingest.stats.messages,
    });
    // A vehicle has tens of targets; a test rig of thousands would pay the snapshot (≈ 1 ms at
    // 1,000 targets) on the event loop for a payload the broker would refuse anyway.
    const busState = this.#topology.targets.length <= MAX_BUS_STATE_TARGETS;
    if (!busState && sup.stateIntervalMs > 0) {
      this.#log.info("state-not-published", {
        targets: this.#topology.targets.length,
        limit: MAX_BUS_STATE_TARGETS,
        why: "too many targets for one retained state message; GET /status serves it",
      });
    }
    this.#statePublisher = new StatePublisher({
      clock: this.#clock,
      client: this.#client,
      topic: this.#topics.state,
      intervalMs: busState ? sup.stateIntervalMs : 0,
      snapshot: () => this.statusSnapshot(),
      log: this.#log,
    });
  }

  /** This instance's `supervisor.id`. */
  get id(): string {
    return this.#config.supervisor.id;
  }

  /** True once the watchdog is armed (first broker connection, subscriptions acknowledged). */
  get armed(): boolean {
    return this.#armed;
  }

  /** True while supervision is suspended because ingest cannot be trusted (broker lost/stalled). */
  get ingestFaulted(): boolean {
    return this.#ingest.faulted;
  }

  /** Monotonic ms of `start()`, or undefined before it. */
  get startedAtMs(): number | undefined {
    return this.#startedAtMs;
  }

  /**
   * Supervisor pair: whether this instance leads now (checked at call time) and the term of its
   * last leadership period (undefined before it first led); undefined without a pair.
   */
  get leadership(): { leader: boolean; term: number | undefined } | undefined {
    if (!this.#leadershipFactory) return undefined;
    return { leader: this.#leadership?.isLeader() === true, term: this.#term };
  }

  /** The status snapshot now (`status.ts`): what `sdv-failover status` and `/status` show. */
  statusSnapshot(): StatusSnapshot {
    return buildStatusSnapshot(this, { nowMs: this.#clock.nowMs() });
  }

  /** The lifecycle state. */
  get state(): SupervisorState {
    return this.#state;
  }

  /** The topology it supervises. */
  get topology(): Topology {
    return this.#topology;
  }

  /** The watchdog (read-only use: states and stats). */
  get watchdog(): Watchdog<Target> {
    return this.#watchdog;
  }

  /** The policy (read-only use: desired state). */
  get policy(): FailoverPolicy {
    return this.#policy;
  }

  /** Ingest counters. */
  get ingest(): IngestStats {
    return this.#ingest.stats;
  }

  /** The reconciler, once built. */
  get reconciler(): ClusterReconciler | undefined {
    return this.#reconciler;
  }

  /**
   * Subscribes and arms the watchdog on the first broker connection, builds the reconciler,
   * syncs its cache and adopts the persisted failover state; resolves when both are done.
   * @throws Error when already started, when the reconciler cannot be built or synced, or when
   *   the signal aborts first (starting blind could repeat a destructive action).
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#state !== "created") throw new Error(`supervisor cannot start: ${this.#state}`);
    this.#state = "starting";
    this.#startedAtMs = this.#clock.nowMs();
    const abortStart = signal ? AbortSignal.any([signal, this.#abort.signal]) : this.#abort.signal;
    this.#client.on("message", (topic, payload, packet) => {
      if (this.#state === "starting" || this.#state === "running") {
        this.#ingest.onMessage(topic, payload, packet, this.#client.connected);
      }
    });
    this.#client.on("close", () => {
      if (this.#armed && this.#isLive()) this.#ingest.fault("broker connection closed", true);
    });
    this.#client.on(
      "error",
      (e) => this.#repeats.warn("mqtt-error", { error: e.message }, ["error"]),
    );
    if (this.#client instanceof BrokerPair) {
      this.#client.onBrokerChange((broker, up, connected) =>
        this.#onBrokerChange(broker, up, connected)
      );
    }
    const armed = new Promise<void>((resolve, reject) => {
      const onConnect = () => this.#onConnect(resolve);
      this.#client.on("connect", onConnect);
      if (this.#client.connected) onConnect();
      abortStart.addEventListener("abort", () => reject(new Error("aborted before armed")), {
        once: true,
      });
    });
    const adopted = this.#startReconciler(abortStart);
    adopted.catch(() => {}); // surfaced below
    const elected = this.#startElection();
    elected.catch(() => {}); // surfaced below
    await Promise.all([armed, adopted, elected]);
    if (this.#state === "starting") this.#state = "running";
  }

  /**
   * Ordered shutdown: stop the watchdog and decisions, let the reconciler finish in-flight work
   * within `shutdownTimeoutMs`, publish retained `offline`, disconnect.
   */
  async stop(): Promise<void> {
    if (this.#state === "stopping" || this.#state === "stopped") return;
    this.#state = "stopping";
    this.#watchdog.stop();
    this.#telemetry.stop();
    this.#statePublisher.stop();
    this.#coordinator.close();
    const boundMs = this.#config.supervisor.shutdownTimeoutMs;
    // Release the Lease first: the other instance takes over at once (this one stops acting now).
    this.#electionAbort.abort(new Error("shutdown"));
    if (this.#election) await withTimeout(this.#election.catch(() => undefined), boundMs);
    const reconciler = this.#reconciler;
    if (reconciler && reconciler.queueDepth > 0) {
      this.#log.info("shutdown-waiting", { queued: reconciler.queueDepth, boundMs });
      const idle = await withTimeout(reconciler.whenIdle().then(() => true), boundMs);
      if (!idle) this.#log.warn("shutdown-abandoned", { queued: reconciler.queueDepth });
    }
    this.#abort.abort(new Error("shutdown"));
    await reconciler?.close();
    if (this.#client.connected) {
      await withTimeout(
        this.#client.publishAsync(this.#topics.status, "offline", { qos: 1, retain: true })
          .catch(() => undefined),
        Math.min(boundMs, 1000),
      );
    }
    await withTimeout(this.#client.endAsync(false).catch(() => undefined), Math.min(boundMs, 1000));
    this.#repeats.close();
    this.#state = "stopped";
  }

  /** Ingest and watchdog counters plus resident memory, as one structured object. */
  statsSnapshot(): Record<string, number> {
    return this.#telemetry.snapshot();
  }

  #isLive(): boolean {
    return this.#state === "starting" || this.#state === "running";
  }

  /** Builds the election and runs it in the background (a pair only). */
  async #startElection(): Promise<void> {
    if (!this.#leadershipFactory) return;
    const leadership = await this.#leadershipFactory({
      onStartedLeading: (term) => this.#onStartedLeading(term),
      onStoppedLeading: (reason) => {
        (reason === "released" ? this.#log.info : this.#log.warn)("standby", {
          why: `stopped leading: ${reason}`,
          action: "no decisions",
        });
        this.#statePublisher.changed();
      },
    });
    this.#leadership = leadership;
    if (!this.#isLive()) return;
    this.#election = leadership.run(this.#electionAbort.signal);
    this.#election.catch((error) => {
      if (!this.#isLive()) return;
      this.#log.error("election-failed", { error: (error as Error).message ?? String(error) });
      this.#onFatal(error);
    });
  }

  /** Became the leader: decide every target still EXPIRED, as one batch. */
  #onStartedLeading(term: number): void {
    if (!this.#isLive()) return;
    this.#term = term;
    this.#statePublisher.changed();
    const expired = [...this.#failed.values()].filter((t) =>
      this.#watchdog.stateAt(t.target.index) === "EXPIRED"
    );
    this.#log.info("leader", { term, expired: expired.length });
    this.#coordinator.onStartedLeading(expired);
  }

  async #startReconciler(signal: AbortSignal): Promise<void> {
    const reconciler = await this.#reconcilerFactory({
      onReport: (r) => this.#coordinator.onReport(r),
      onUnfenceRequest: (node, requestedAt) =>
        this.#coordinator.onUnfenceRequest(node, requestedAt),
    });
    this.#reconciler = reconciler;
    if (!this.#isLive()) return;
    await reconciler.start(signal);
    if (!this.#isLive()) return;
    this.#coordinator.adopt(reconciler, reconciler.observed());
  }

  #onConnect(armed: () => void): void {
    if (!this.#isLive()) return;
    const reconnect = this.#connectedOnce;
    this.#connectedOnce = true;
    if (reconnect) this.#ingest.stats.reconnects++;
    this.#client.subscribeAsync([...this.#ingest.subscriptions], { qos: 1 }).then(() => {
      if (!this.#isLive()) return;
      this.#client.publish(this.#topics.status, "online", { qos: 1, retain: true });
      if (this.#armed) {
        this.#ingest.restore("resubscribed after reconnect");
        this.#statePublisher.changed();
        return;
      }
      this.#armed = true;
      const graceMs = this.#config.supervisor.bootWindowMs;
      this.#watchdog.start(graceMs);
      this.#log.info("armed", { targets: this.#watchdog.size, graceMs });
      this.#onEvent({ type: "armed", atMs: this.#clock.nowMs(), targets: this.#watchdog.size });
      this.#telemetry.start();
      this.#statePublisher.start();
      armed();
    }, (error: Error) => this.#log.error("subscribe-failed", { error: error.message }));
  }

  /**
   * One broker of a broker pair was lost or came back. A loss while the other is connected
   * changes nothing the watchdog sees (every client publishes to both); a returning broker may
   * have lost its retained messages (a restart without persistence), so the leader publishes the
   * current promotions again (the same epochs: every receiver ignores an epoch it already holds).
   */
  #onBrokerChange(broker: string, up: boolean, connected: number): void {
    if (!this.#isLive()) return;
    if (!up) {
      if (connected > 0) {
        this.#log.warn("broker-lost", {
          broker,
          connected,
          action: "supervision continues through the other broker",
        });
      }
      return;
    }
    const republished = this.#armed ? this.#coordinator.republishPromotions() : 0;
    this.#log.info("broker-up", { broker, connected, republished });
  }

  /** A drained node went offline: its node, sensors and app instances are no longer supervised. */
  #deactivate(node: NodeTarget): void {
    const atMs = this.#clock.nowMs();
    this.#watchdog.deactivate(node.index, atMs);
    for (const s of node.sensors) this.#watchdog.deactivate(s.index, atMs);
    for (const p of node.placements) if (p.app) this.#watchdog.deactivate(p.app.index, atMs);
    this.#log.info("node-deactivated", { node: node.name, why: "planned stop" });
  }

  /**
   * A node (or one of its required sensors) became OK: when the node and every required sensor
   * are OK after a recovery, it is recovered (unfence, roles swapped). A node first seen (INIT →
   * OK) must stay OK for the recovery window too before it counts (a fence adopted at start-up).
   */
  #onOk(t: Transition<Target>): void {
    const node = t.target.kind === "node"
      ? t.target
      : t.target.kind === "sensor" && t.target.node.requiredSensors.includes(t.target)
      ? t.target.node
      : undefined;
    if (!node) return;
    const check = () => {
      if (!this.#isLive() || this.#watchdog.stateAt(node.index) !== "OK") return;
      if (node.requiredSensors.some((s) => this.#watchdog.stateAt(s.index) !== "OK")) return;
      this.#coordinator.onRecovered(node);
    };
    const fencedOrPending = this.#policy.node(node).fenced || this.#policy.isFencePending(node) ||
      this.#policy.isDraining(node);
    if (!fencedOrPending) return;
    if (t.from === "INIT") {
      this.#clock.setTimer(check, this.#config.supervisor.recoveryWindowMs);
    } else check();
  }

  #onTransition(t: Transition<Target>): void {
    this.#onEvent({ type: "transition", transition: t });
    // Act first, log after: the promotion and the API requests leave before any log line is
    // formatted and written (a synchronous stderr write costs tenths of a millisecond). Failures
    // are decided together at the end of their watchdog batch.
    if (t.isFailure) {
      this.#failed.set(t.target, t);
      if (this.#isLive()) this.#batch.push(t);
      return;
    }
    if (t.to === "OK" || t.to === "DEACTIVATED") this.#failed.delete(t.target);
    if (t.to === "OK" && this.#isLive()) this.#onOk(t);
    this.#logTransition(t);
  }

  #logTransition(t: Transition<Target>): void {
    const fields = {
      target: t.target.label,
      from: t.from,
      to: t.to,
      lastHeartbeatAtMs: round(t.lastHeartbeatAtMs),
      ...(t.to === "EXPIRED"
        ? {
          cause: t.cause,
          noticedAtMs: round(t.noticedAtMs),
          expiredAtMs: round(t.atMs),
          deadlineMs: round(t.deadlineMs),
          latenessMs: round(t.latenessMs),
          silenceMs: round(
            t.lastHeartbeatAtMs === undefined ? undefined : t.atMs - t.lastHeartbeatAtMs,
          ),
        }
        : {}),
    };
    if (t.isFailure) this.#log.warn("expired", fields);
    else if (t.from !== "INIT") this.#log.info("transition", fields);
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
