/**
 * The supervisor (`run`): the composition of the data path
 * MQTT ingest → watchdog → failover policy → promotion (MQTT) + executor (Kubernetes API).
 *
 * Ingest stamps every message with the monotonic clock on receipt and routes it by exact topic
 * (one Map lookup, no string parsing); malformed payloads are counted and dropped. A lost broker
 * suspends the watchdog (silence proves nothing then) and is reported as an ingest fault; after
 * the reconnect every target gets one full timeout before it can expire.
 *
 * @module
 */
import type { Clock } from "../clock/clock.ts";
import { systemClock } from "../clock/clock.ts";
import type { Config } from "../config/schema.ts";
import type { ActionResult, FailoverExecutor } from "../executor/executor.ts";
import type { MqttClientLike } from "../ingest/mqtt_client.ts";
import type { WillOptions } from "../ingest/mqtt_options.ts";
import {
  appHeartbeatTopic,
  barrierTopic,
  decodeBeat,
  decodePromotion,
  decodeStatus,
  encodeBeat,
  nodeHeartbeatTopic,
  nodeStatusTopic,
  type Promotion,
  promotionTopic,
  sensorTickTopic,
  supervisorStatusTopic,
} from "../ingest/wire.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import {
  type Decision,
  type FailoverPlan,
  FailoverPolicy,
  type NodeFencePlan,
} from "../policy/policy.ts";
import { appTargetId, nodeTargetId, sensorTargetId, targetsOf } from "../policy/targets.ts";
import { type Transition, Watchdog } from "../watchdog/watchdog.ts";

/** A timeline entry, for logs, the demo and measurements. Times are monotonic ms. */
export type SupervisorEvent =
  | { type: "armed"; atMs: number; targets: number }
  | { type: "transition"; transition: Transition }
  | { type: "blocked"; atMs: number; decision: Extract<Decision, { kind: "blocked" }> }
  | { type: "promotion-sent"; atMs: number; plan: FailoverPlan; promotion: Promotion }
  | { type: "promotion-acked"; atMs: number; workload: string; epoch: number }
  | {
    type: "actions-done";
    atMs: number;
    plan: FailoverPlan;
    results: ActionResult[];
    /** From expiry to the last API acknowledgement, ms. */
    expiryToDoneMs: number;
  }
  | {
    type: "fence-done";
    atMs: number;
    plan: NodeFencePlan;
    results: ActionResult[];
    /** From expiry to the last API acknowledgement, ms. */
    expiryToDoneMs: number;
  }
  | { type: "ingest-fault"; atMs: number; why: string }
  | { type: "ingest-restored"; atMs: number };

/** Options of {@linkcode Supervisor}. */
export interface SupervisorOptions {
  config: Config;
  /** A connecting (not yet connected) MQTT client, created with {@linkcode supervisorWill}. */
  client: MqttClientLike;
  /**
   * The executor, or a factory for it: the Kubernetes executor loads client-node (≈ 0.4 s, ≈ 65 MB),
   * so the supervisor arms ingest and watchdog first and reconciles while it loads.
   */
  executor: FailoverExecutor | (() => Promise<FailoverExecutor>);
  clock?: Clock;
  log?: Logger;
  /** Receives the timeline. */
  onEvent?: (event: SupervisorEvent) => void;
  /** Confirm expiries with an ingest barrier (default true; see `watchdog.ts`). */
  useBarrier?: boolean;
}

/** Ingest counters. */
export interface IngestStats {
  messages: number;
  malformed: number;
  unknownTopic: number;
  reconnects: number;
  /** Live Last Wills left to the deadline because they came right after a broker reconnect. */
  lastWillsDeferred: number;
}

type Route =
  | { kind: "beat"; index: number }
  | { kind: "status"; index: number }
  | { kind: "barrier" }
  | { kind: "promotion"; workload: string };

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
  readonly #client: MqttClientLike;
  readonly #executorSource: FailoverExecutor | (() => Promise<FailoverExecutor>);
  #executor: FailoverExecutor | undefined;
  /** Failures seen before the cluster state was reconciled; replayed once it is. */
  #deferred: Transition[] | undefined = [];
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #onEvent: (event: SupervisorEvent) => void;
  readonly #watchdog: Watchdog;
  readonly #policy: FailoverPolicy;
  readonly #routes = new Map<string, Route>();
  readonly #subscriptions: string[] = [];
  readonly #inflight = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #started = false;
  #stopping = false;
  #armed = false;
  #connectedOnce = false;
  #ingestFault = false;
  /** Until then (monotonic ms) a live Last Will does not expire a node at once. */
  #lastWillQuietUntilMs = -Infinity;
  #statsTimer: unknown;
  #statsLast = { atMs: 0, messages: 0 };

  /** Ingest counters. */
  readonly ingest: IngestStats = {
    messages: 0,
    malformed: 0,
    unknownTopic: 0,
    reconnects: 0,
    lastWillsDeferred: 0,
  };

  /** Builds routes and watchdog targets from the config. Nothing runs until `start()`. */
  constructor(options: SupervisorOptions) {
    this.#config = options.config;
    this.#client = options.client;
    this.#executorSource = options.executor;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
    this.#onEvent = options.onEvent ?? (() => {});
    const sup = this.#config.supervisor;
    const prefix = this.#config.mqtt.topicPrefix;
    this.#watchdog = new Watchdog({
      clock: this.#clock,
      onTransition: (t) => this.#onTransition(t),
      onIngestStall: (sinceMs) => this.#onIngestStall(sinceMs),
      barrier: options.useBarrier === false ? undefined : {
        request: (seq) =>
          this.#client.publish(barrierTopic(prefix, sup.id), encodeBeat(seq), { qos: 0 }),
      },
      barrierTimeoutMs: sup.barrierTimeoutMs,
      recoveryWindowMs: sup.recoveryWindowMs,
      lagToleranceMs: sup.lagToleranceMs,
    });
    for (const spec of targetsOf(this.#config)) this.#watchdog.add(spec);
    this.#policy = new FailoverPolicy({
      config: this.#config,
      isHealthy: (id) => this.#watchdog.state(id) === "OK",
    });
    const route = (topic: string, r: Route) => {
      this.#routes.set(topic, r);
      this.#subscriptions.push(topic);
    };
    for (const n of this.#config.nodes) {
      route(nodeHeartbeatTopic(prefix, n), {
        kind: "beat",
        index: this.#idx(nodeTargetId(n.name)),
      });
      route(nodeStatusTopic(prefix, n), { kind: "status", index: this.#idx(nodeTargetId(n.name)) });
    }
    for (const s of this.#config.sensors) {
      route(sensorTickTopic(prefix, s), { kind: "beat", index: this.#idx(sensorTargetId(s.name)) });
    }
    for (const w of this.#config.workloads) {
      route(promotionTopic(prefix, w.name), { kind: "promotion", workload: w.name });
      if (!w.appHeartbeat) continue;
      for (const side of [w.primary, w.standby]) {
        route(appHeartbeatTopic(prefix, w.name, side.node), {
          kind: "beat",
          index: this.#idx(appTargetId(w.name, side.node)),
        });
      }
    }
    route(barrierTopic(prefix, sup.id), { kind: "barrier" });
  }

  /** The watchdog (read-only use: states and stats). */
  get watchdog(): Watchdog {
    return this.#watchdog;
  }

  /** The policy (read-only use: workload states). */
  get policy(): FailoverPolicy {
    return this.#policy;
  }

  /**
   * Reconciles persisted failover state from the cluster, then subscribes and arms the watchdog
   * on the first broker connection (resolves when armed).
   * @throws Error when the cluster state cannot be observed (starting blind could repeat a
   *   destructive action), or when the signal aborts first.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.#started) throw new Error("supervisor already started");
    this.#started = true;
    // Reconcile (load the executor, read persisted epochs) while ingest connects and arms.
    // Failures confirmed before it completes wait for it: a decision needs the persisted epoch.
    const reconciled = this.#reconcile(signal);
    reconciled.catch(() => {}); // surfaced below
    this.#client.on("message", (topic, payload, packet) => this.#onMessage(topic, payload, packet));
    this.#client.on("close", () => this.#onDisconnect("broker connection closed"));
    this.#client.on("error", (e) => this.#log.warn("mqtt-error", { error: e.message }));
    const armed = new Promise<void>((resolve, reject) => {
      const onConnect = () => this.#onConnect(resolve);
      this.#client.on("connect", onConnect);
      if (this.#client.connected) onConnect();
      signal?.addEventListener("abort", () => reject(new Error("aborted before armed")), {
        once: true,
      });
    });
    await Promise.all([armed, reconciled]);
  }

  async #reconcile(signal?: AbortSignal): Promise<void> {
    const source = this.#executorSource;
    const executor = typeof source === "function" ? await source() : source;
    this.#executor = executor;
    if (this.#stopping) return;
    const observed = await executor.observe(this.#config, signal);
    for (const [workload, o] of observed) {
      if (this.#policy.observe(workload, o.epoch, o.activeNode)) {
        this.#log.info("reconciled", { workload, epoch: o.epoch, activeNode: o.activeNode });
      }
    }
    const deferred = this.#deferred ?? [];
    this.#deferred = undefined;
    const states = Object.fromEntries(this.#config.workloads.map((w) => {
      const st = this.#policy.state(w.name)!;
      return [w.name, `${w[st.active].node}@${st.epoch}`];
    }));
    this.#log.info("cluster-state-observed", { states, deferredFailures: deferred.length });
    for (const t of deferred) this.#decide(t);
  }

  /**
   * Ordered shutdown: stop ingest and the watchdog, let in-flight failovers finish within
   * `shutdownTimeoutMs` (then abort them), publish retained `offline`, disconnect.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#watchdog.stop();
    if (this.#statsTimer !== undefined) this.#clock.clearTimer(this.#statsTimer);
    const boundMs = this.#config.supervisor.shutdownTimeoutMs;
    if (this.#inflight.size > 0) {
      this.#log.info("shutdown-waiting", { inflight: this.#inflight.size, boundMs });
      const settled = await withTimeout(Promise.allSettled([...this.#inflight]), boundMs);
      if (!settled) {
        this.#abort.abort(new Error("shutdown"));
        this.#log.warn("shutdown-abandoned", { inflight: this.#inflight.size });
      }
    }
    if (this.#client.connected) {
      const will = supervisorWill(this.#config);
      await withTimeout(
        new Promise<void>((resolve) =>
          this.#client.publish(will.topic, "offline", { qos: 1, retain: true }, () => resolve())
        ),
        Math.min(boundMs, 1000),
      );
    }
    await withTimeout(
      new Promise<void>((resolve) => this.#client.end(false, {}, () => resolve())),
      Math.min(boundMs, 1000),
    );
    this.#executor?.close();
  }

  /** Ingest and watchdog counters plus resident memory, as one structured object. */
  statsSnapshot(): Record<string, number> {
    const nowMs = this.#clock.nowMs();
    const intervalMs = nowMs - this.#statsLast.atMs;
    const rate = intervalMs > 0
      ? ((this.ingest.messages - this.#statsLast.messages) * 1000) / intervalMs
      : 0;
    this.#statsLast = { atMs: nowMs, messages: this.ingest.messages };
    return {
      ...this.ingest,
      messagesPerS: Math.round(rate),
      armed: this.#watchdog.armedCount,
      ...this.#watchdog.stats,
      maxTimerLatenessMs: round(this.#watchdog.stats.maxTimerLatenessMs) ?? 0,
      rssBytes: Deno.memoryUsage().rss,
    };
  }

  #scheduleStats(): void {
    const everyMs = this.#config.supervisor.statsIntervalMs;
    if (everyMs <= 0 || this.#stopping) return;
    this.#statsLast = { atMs: this.#clock.nowMs(), messages: this.ingest.messages };
    const tick = () => {
      if (this.#stopping) return;
      this.#log.info("stats", this.statsSnapshot());
      this.#statsTimer = this.#clock.setTimer(tick, everyMs);
    };
    this.#statsTimer = this.#clock.setTimer(tick, everyMs);
  }

  #idx(id: string): number {
    const i = this.#watchdog.indexOf(id);
    if (i < 0) throw new Error(`internal: no watchdog target ${id}`);
    return i;
  }

  #onConnect(armed: () => void): void {
    if (this.#stopping) return;
    const reconnect = this.#connectedOnce;
    this.#connectedOnce = true;
    if (reconnect) this.ingest.reconnects++;
    this.#client.subscribe(this.#subscriptions, { qos: 1 }, (error) => {
      if (error) {
        this.#log.error("subscribe-failed", { error: error.message });
        return;
      }
      const sup = this.#config.supervisor;
      this.#client.publish(
        supervisorStatusTopic(this.#config.mqtt.topicPrefix, sup.id),
        "online",
        { qos: 1, retain: true },
      );
      const atMs = this.#clock.nowMs();
      if (!this.#armed) {
        this.#armed = true;
        this.#watchdog.start(sup.startupGraceMs);
        this.#log.info("armed", { targets: this.#watchdog.size, graceMs: sup.startupGraceMs });
        this.#onEvent({ type: "armed", atMs, targets: this.#watchdog.size });
        this.#scheduleStats();
        armed();
      } else {
        this.#restoreIngest("resubscribed after reconnect");
      }
    });
  }

  #onDisconnect(why: string): void {
    if (this.#stopping || !this.#armed) return;
    if (!this.#watchdog.suspended) {
      this.#watchdog.suspend();
      this.#ingestFault = true;
      const atMs = this.#clock.nowMs();
      this.#log.error("ingest-fault", { why, action: "supervision suspended, no failover" });
      this.#onEvent({ type: "ingest-fault", atMs, why });
    }
  }

  #onIngestStall(sinceMs: number): void {
    const waitedMs = this.#clock.nowMs() - sinceMs;
    this.#onDisconnect(`ingest barrier not back after ${waitedMs.toFixed(1)} ms (broker stalled?)`);
  }

  #restoreIngest(why: string): void {
    if (!this.#ingestFault) return;
    this.#ingestFault = false;
    // Every target gets one full timeout from now: the outage is not counted as silence.
    this.#watchdog.resume(0);
    // Clients reconnecting to a restarted broker race their own stale sessions: a session
    // takeover publishes the old connection's Last Will although the node is alive (seen in CI).
    // For one node timeout the deadline alone decides; the Last Will fast path resumes after.
    const longestMs = Math.max(...this.#config.nodes.map((n) => n.heartbeatTimeoutMs));
    this.#lastWillQuietUntilMs = this.#clock.nowMs() + longestMs;
    this.#log.info("ingest-restored", { why, lastWillQuietMs: longestMs });
    this.#onEvent({ type: "ingest-restored", atMs: this.#clock.nowMs() });
  }

  #onMessage(topic: string, payload: Uint8Array, packet: { retain?: boolean }): void {
    const nowMs = this.#clock.nowMs();
    if (this.#stopping) return;
    this.ingest.messages++;
    const route = this.#routes.get(topic);
    if (!route) {
      this.ingest.unknownTopic++;
      return;
    }
    if (this.#ingestFault && this.#client.connected && route.kind !== "promotion") {
      this.#restoreIngest("messages flowing again");
    }
    switch (route.kind) {
      case "beat":
        if (decodeBeat(payload) === undefined) {
          this.ingest.malformed++;
          return;
        }
        this.#watchdog.heartbeatAt(route.index, nowMs);
        break;
      case "status": {
        const status = decodeStatus(payload);
        if (status === undefined) {
          this.ingest.malformed++;
          return;
        }
        // A retained `offline` is history from before we subscribed, not news: the deadline
        // decides. A live one is the broker telling us the node's connection broke.
        if (status === "offline" && !packet.retain) {
          if (nowMs < this.#lastWillQuietUntilMs) this.ingest.lastWillsDeferred++;
          else this.#watchdog.offline(route.index, nowMs);
        }
        break;
      }
      case "barrier": {
        const seq = decodeBeat(payload);
        if (seq === undefined) {
          this.ingest.malformed++;
          return;
        }
        this.#watchdog.barrierPassed(seq);
        break;
      }
      case "promotion": {
        const p = decodePromotion(payload);
        if (p === undefined || p.workload !== route.workload) {
          this.ingest.malformed++;
          return;
        }
        if (this.#policy.observe(p.workload, p.epoch, p.activeNode)) {
          this.#log.info("promotion-observed", {
            workload: p.workload,
            epoch: p.epoch,
            activeNode: p.activeNode,
            supervisor: p.supervisor,
          });
        }
        return;
      }
    }
    this.#watchdog.checkDue(nowMs);
  }

  #onTransition(t: Transition): void {
    this.#onEvent({ type: "transition", transition: t });
    // Act first, log after: the promotion and the API requests leave before any log line is
    // formatted and written (a synchronous stderr write costs tenths of a millisecond).
    if (t.isFailure && !this.#stopping) {
      if (this.#deferred) this.#deferred.push(t);
      else this.#decide(t);
    }
    const fields = {
      target: t.target.id,
      from: t.from,
      to: t.to,
      lastHeartbeatAtMs: round(t.lastHeartbeatAtMs),
      ...(t.to === "EXPIRED"
        ? {
          cause: t.cause,
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

  /** Runs the policy on a confirmed failure and starts what it decides. */
  #decide(t: Transition): void {
    if (this.#stopping) return;
    const decisions = this.#policy.onFailure(t);
    // (a) every promotion of this expiry goes out first, (b) the API work starts once the broker
    // has them (PUBACK, bounded): the executor's synchronous request building would otherwise
    // keep the event loop from writing the promotion to the socket (measured: + 2 × its CPU time).
    const promoted: Promise<unknown>[] = [];
    for (const d of decisions) if (d.kind === "failover") promoted.push(this.#promote(d.plan));
    const ready = promoted.length
      ? this.#firstOf(Promise.all(promoted), PROMOTION_ACK_WAIT_MS)
      : Promise.resolve();
    for (const decision of decisions) {
      if (decision.kind === "blocked") {
        queueMicrotask(() =>
          this.#log.error("failover-blocked", { workload: decision.workload, why: decision.why })
        );
        this.#onEvent({ type: "blocked", atMs: this.#clock.nowMs(), decision });
        continue;
      }
      const job: Promise<void> = ready.then(() =>
        decision.kind === "fence" ? this.#fence(decision.plan) : this.#failover(decision.plan)
      ).finally(() => this.#inflight.delete(job));
      this.#inflight.add(job);
    }
  }

  async #fence(plan: NodeFencePlan): Promise<void> {
    const startedAtMs = this.#clock.nowMs();
    const results = await this.#executor!.fenceNode(plan, this.#abort.signal);
    const atMs = this.#clock.nowMs();
    const expiryToDoneMs = atMs - plan.trigger.expiredAtMs;
    const failed = results.filter((r) => r.outcome === "failed");
    (failed.length ? this.#log.error : this.#log.info)("node-fence-done", {
      node: plan.node,
      reason: plan.reason,
      expiryToDoneMs: round(expiryToDoneMs),
      actions: results.map((r) => `${r.action}:${r.outcome}@${r.doneAtMs.toFixed(1)}`).join(","),
      // API actions proper (without the Events that record them), from expiry
      expiryToActionsMs: round(actionsDoneMs(plan.trigger.expiredAtMs, startedAtMs, results)),
      ...(failed.length ? { failures: failed.map((r) => `${r.object}: ${r.detail}`) } : {}),
    });
    this.#onEvent({ type: "fence-done", atMs, plan, results, expiryToDoneMs });
  }

  /** Resolves when `promise` settles or after `boundMs` on the injected clock, whichever is first. */
  #firstOf(promise: Promise<unknown>, boundMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.#clock.setTimer(resolve, boundMs);
      promise.finally(() => {
        this.#clock.clearTimer(timer);
        resolve();
      });
    });
  }

  /** Publishes the retained QoS 1 promotion; resolves on PUBACK (or error). */
  #promote(plan: FailoverPlan): Promise<void> {
    if (!plan.actions.includes("promote")) return Promise.resolve();
    const promotion: Promotion = {
      v: 1,
      workload: plan.workload,
      namespace: plan.namespace,
      activeNode: plan.active.node,
      activeDeployment: plan.active.deployment,
      failedNode: plan.failed.node,
      epoch: plan.epoch,
      reason: plan.reason,
      supervisor: this.#config.supervisor.id,
      issuedAt: new Date().toISOString(),
    };
    const acked = new Promise<void>((resolve) => {
      this.#client.publish(
        promotionTopic(this.#config.mqtt.topicPrefix, plan.workload),
        JSON.stringify(promotion),
        { qos: 1, retain: true },
        (error) => {
          resolve();
          if (error) {
            this.#log.error("promotion-failed", { workload: plan.workload, error: error.message });
            return;
          }
          const atMs = this.#clock.nowMs();
          this.#onEvent({
            type: "promotion-acked",
            atMs,
            workload: plan.workload,
            epoch: plan.epoch,
          });
        },
      );
    });
    const sentAtMs = this.#clock.nowMs();
    this.#onEvent({ type: "promotion-sent", atMs: sentAtMs, plan, promotion });
    // logged after the current task (see #onTransition: act first, log after)
    queueMicrotask(() =>
      this.#log.info("promotion-sent", {
        workload: plan.workload,
        epoch: plan.epoch,
        activeNode: plan.active.node,
        reason: plan.reason,
        trigger: plan.trigger.targetId,
        expiredAtMs: round(plan.trigger.expiredAtMs),
        expiryToPromotionMs: round(sentAtMs - plan.trigger.expiredAtMs),
      })
    );
    return acked;
  }

  async #failover(plan: FailoverPlan): Promise<void> {
    const startedAtMs = this.#clock.nowMs();
    const execution = this.#executor!.execute(plan, this.#abort.signal);
    const results = await execution;
    const atMs = this.#clock.nowMs();
    const expiryToDoneMs = atMs - plan.trigger.expiredAtMs;
    const failed = results.filter((r) => r.outcome === "failed");
    (failed.length ? this.#log.error : this.#log.info)("failover-done", {
      workload: plan.workload,
      trigger: plan.trigger.targetId,
      expiredAtMs: round(plan.trigger.expiredAtMs),
      epoch: plan.epoch,
      expiryToDoneMs: round(expiryToDoneMs),
      actions: results.map((r) => `${r.action}:${r.outcome}@${r.doneAtMs.toFixed(1)}`).join(","),
      // API actions proper (without the Events that record them), from expiry
      expiryToActionsMs: round(actionsDoneMs(plan.trigger.expiredAtMs, startedAtMs, results)),
      ...(failed.length ? { failures: failed.map((r) => `${r.object}: ${r.detail}`) } : {}),
    });
    this.#onEvent({ type: "actions-done", atMs, plan, results, expiryToDoneMs });
  }
}

/** Expiry → the last non-Event action acknowledged, ms (results carry times from `startedAtMs`). */
function actionsDoneMs(expiredAtMs: number, startedAtMs: number, results: ActionResult[]): number {
  const actions = results.filter((r) => !r.action.startsWith("event:"));
  const lastMs = actions.length ? Math.max(...actions.map((r) => r.doneAtMs)) : 0;
  return startedAtMs + lastMs - expiredAtMs;
}

function round(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.round(v * 1000) / 1000;
}

/** Longest wait for the promotions' PUBACK before the API work starts anyway, ms. */
const PROMOTION_ACK_WAIT_MS = 5;

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
