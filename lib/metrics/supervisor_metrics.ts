/**
 * The supervisor's Prometheus metrics (`sdv_failover_*`, base units seconds and bytes, counters
 * ending in `_total`). Gauges and the counters the runtime already keeps (ingest, watchdog) are
 * read at scrape time (`collect()`), so the heartbeat hot path is not touched; events that carry
 * labels (expiries, promotions, fences) are counted from the supervisor's event stream, which fires
 * on transitions only, never per heartbeat.
 *
 * | family                                              | type      | labels                  |
 * | --------------------------------------------------- | --------- | ----------------------- |
 * | `sdv_failover_target_state`                         | gauge     | target, kind, state     |
 * | `sdv_failover_heartbeat_age_seconds`                | gauge     | target, kind            |
 * | `sdv_failover_expiries_total`                       | counter   | kind, cause             |
 * | `sdv_failover_expiry_lateness_seconds`              | histogram | kind                    |
 * | `sdv_failover_watchdog_timer_lateness_seconds`      | histogram |                         |
 * | `sdv_failover_watchdog_lag_events_total`, `…`       | counter   |                         |
 * | `sdv_failover_promotions_total`                     | counter   | workload, reason        |
 * | `sdv_failover_failovers_blocked_total`              | counter   | workload                |
 * | `sdv_failover_fences_total`                         | counter   | reason                  |
 * | `sdv_failover_unfences_total`                       | counter   |                         |
 * | `sdv_failover_ingest_<counter>_total`               | counter   |                         |
 * | `sdv_failover_ingest_faulted`                       | gauge     |                         |
 * | `sdv_failover_kube_api_request_duration_seconds`    | histogram | verb, resource          |
 * | `sdv_failover_kube_api_errors_total`                | counter   | verb, resource          |
 * | `sdv_failover_reconcile_queue_depth`                | gauge     |                         |
 * | `sdv_failover_ready`                                | gauge     |                         |
 * | `sdv_failover_leader`, `sdv_failover_leader_term`   | gauge     | (pair only)             |
 *
 * `sdv_failover_target_state` is one-hot (kube-state-metrics style): one series per target and
 * state, 1 for the current state, 0 for the others; `sum by (state) (…)` counts targets per state.
 * The two per-target families are written by `target_exposition.ts`, not prom-client (scrape cost).
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Clock } from "../clock/clock.ts";
import type { IngestStats } from "../ingest/ingest.ts";
import type { KubeCall, KubeCallObserver } from "../kube/timed_api.ts";
import type { NodeDesired } from "../policy/desired.ts";
import type { SupervisorEvent, SupervisorState } from "../runtime/supervisor.ts";
import type { Topology } from "../topology/topology.ts";
import type { ExpiryCause, TargetKind, TargetState, WatchdogStats } from "../watchdog/watchdog.ts";
import { type Readiness, supervisorReadiness } from "../http/readiness.ts";
import { LATENESS_BUCKETS_S, registerProcessMetrics } from "./process_metrics.ts";
import { TargetExposition, type TargetReading } from "./target_exposition.ts";

/** Every watchdog state (the one-hot gauge's `state` values). */
export const TARGET_STATES: readonly TargetState[] = [
  "INIT",
  "OK",
  "EXPIRED",
  "RECOVERING",
  "DEACTIVATED",
];
const KINDS: readonly TargetKind[] = ["node", "sensor", "app"];
const CAUSES: readonly ExpiryCause[] = ["deadline", "offline", "never-seen"];
const FENCE_REASONS: readonly string[] = ["node-expired", "node-offline", "node-never-seen"];
/** The reconciler's calls (`timedKubeApi`) and the election's (`timedLeaseApi`). */
const KUBE_CALLS: readonly [verb: string, resource: string][] = [
  ["get", "deployments"],
  ["patch", "deployments"],
  ["list", "pods"],
  ["delete", "pods"],
  ["get", "nodes"],
  ["patch", "nodes"],
  ["create", "events"],
];
const LEASE_CALLS: readonly [verb: string, resource: string][] = [
  ["get", "leases"],
  ["create", "leases"],
  ["update", "leases"],
];
/** API latency buckets, seconds: 1 ms to 5 s (a request timeout is 2 s by default). */
const API_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** What the metrics read from the supervisor at scrape time ({@linkcode Supervisor} fits). */
export interface SupervisorMetricsSource {
  readonly topology: Topology;
  readonly state: SupervisorState;
  readonly watchdog: {
    describe(index: number): { state: TargetState; lastHeartbeatAtMs?: number } | undefined;
    readonly stats: WatchdogStats;
  };
  readonly ingest: IngestStats;
  readonly reconciler: { readonly queueDepth: number } | undefined;
  /**
   * Armed and ingest-faulted as the supervisor knows them (authoritative when given: the metrics
   * may be created after the `armed` event; `run` loads them only once armed).
   */
  readonly armed?: boolean;
  readonly ingestFaulted?: boolean;
}

/** Options of {@linkcode SupervisorMetrics}. */
export interface SupervisorMetricsOptions {
  /** The supervisor (or a fake); read at scrape time only. */
  source: SupervisorMetricsSource;
  /** The supervisor's clock (heartbeat ages are measured on it). */
  clock: Clock;
  /** Supervisor pair: whether this instance leads and its term (-1 before the first). */
  leadership?: () => { leader: boolean; term: number };
  /** The reconciler calls a real API server (not a dry run): its verbs get series from the start. */
  kubeApi?: boolean;
}

/** The supervisor's metrics registry, fed by its events and read from it at scrape time. */
export class SupervisorMetrics {
  /** The registry to serve (`/metrics`). */
  readonly registry: Registry = new Registry();

  /** Content type of the exposition. */
  get contentType(): string {
    return this.registry.contentType;
  }
  /** Give the event-loop monitor this as `onLag` (ms). */
  readonly observeEventLoopLagMs: (lagMs: number) => void;
  readonly #source: SupervisorMetricsSource;
  readonly #targets: TargetExposition;
  readonly #readTarget: (index: number) => TargetReading;
  readonly #clock: Clock;
  #armed = false;
  #ingestFaulted = false;
  readonly #expiries: Counter<"kind" | "cause">;
  readonly #expiryLateness: Histogram<"kind">;
  readonly #timerLateness: Histogram;
  readonly #promotions: Counter<"workload" | "reason">;
  readonly #blocked: Counter<"workload">;
  readonly #fences: Counter<"reason">;
  readonly #unfences: Counter;
  readonly #apiDuration: Histogram<"verb" | "resource">;
  readonly #apiErrors: Counter<"verb" | "resource">;

  /** Registers every family; nothing is read until a scrape. */
  constructor(options: SupervisorMetricsOptions) {
    const { source, clock } = options;
    this.#source = source;
    const registers = [this.registry];
    this.observeEventLoopLagMs = registerProcessMetrics(this.registry).observeLagMs;
    const targets = source.topology.targets;

    this.#targets = new TargetExposition(targets, TARGET_STATES);
    this.#readTarget = (index) => {
      const t = source.watchdog.describe(targets[index].index);
      return { state: t?.state, lastHeartbeatAtMs: t?.lastHeartbeatAtMs };
    };
    this.#clock = clock;
    this.#expiries = new Counter({
      name: "sdv_failover_expiries_total",
      help: "Confirmed target failures (OK or INIT to EXPIRED), by target kind and cause.",
      labelNames: ["kind", "cause"] as const,
      registers,
    });
    for (const kind of KINDS) for (const cause of CAUSES) this.#expiries.inc({ kind, cause }, 0);
    this.#expiryLateness = new Histogram({
      name: "sdv_failover_expiry_lateness_seconds",
      help: "Detection lateness of each confirmed failure: from the passed deadline to the " +
        "confirmed expiry (timer lateness plus the ingest barrier's round trip).",
      labelNames: ["kind"] as const,
      buckets: [...LATENESS_BUCKETS_S],
      registers,
    });
    for (const kind of KINDS) this.#expiryLateness.zero({ kind });
    this.#timerLateness = new Histogram({
      name: "sdv_failover_watchdog_timer_lateness_seconds",
      help: "Lateness of every watchdog deadline-timer firing (now minus due).",
      buckets: [...LATENESS_BUCKETS_S],
      registers,
    });
    const stats = () => source.watchdog.stats;
    statCounter(
      registers,
      "sdv_failover_watchdog_lag_events_total",
      "Watchdog timer firings later than supervisor.lagToleranceMs.",
      () => stats().lagEvents,
    );
    statCounter(
      registers,
      "sdv_failover_watchdog_refuted_expiries_total",
      "Passed deadlines refuted by a heartbeat read before the ingest barrier returned.",
      () => stats().refuted,
    );
    statCounter(
      registers,
      "sdv_failover_watchdog_barriers_total",
      "Ingest barriers sent to confirm passed deadlines.",
      () => stats().barriers,
    );
    statCounter(
      registers,
      "sdv_failover_watchdog_slow_barriers_total",
      "Ingest barriers slower than supervisor.lagToleranceMs (a stalled broker).",
      () => stats().slowBarriers,
    );
    this.#promotions = new Counter({
      name: "sdv_failover_promotions_total",
      help: "Failovers: promotions published (retained, with a new epoch), by workload and reason.",
      labelNames: ["workload", "reason"] as const,
      registers,
    });
    this.#blocked = new Counter({
      name: "sdv_failover_failovers_blocked_total",
      help: "Failovers refused because the standby was not trusted, by workload.",
      labelNames: ["workload"] as const,
      registers,
    });
    for (const w of source.topology.workloads) this.#blocked.inc({ workload: w.name }, 0);
    this.#fences = new Counter({
      name: "sdv_failover_fences_total",
      help: "Node fences (our cordon and NoExecute taint) written, or planned in a dry run, by " +
        "reason.",
      labelNames: ["reason"] as const,
      registers,
    });
    for (const reason of FENCE_REASONS) this.#fences.inc({ reason }, 0);
    this.#unfences = new Counter({
      name: "sdv_failover_unfences_total",
      help: "Fences lifted (node recovered or operator request).",
      registers,
    });
    const ingestKeys = Object.keys(source.ingest) as (keyof IngestStats)[];
    for (const key of ingestKeys) {
      statCounter(
        registers,
        `sdv_failover_ingest_${snakeCase(key)}_total`,
        `Ingest counter ${key} (lib/ingest/ingest.ts IngestStats).`,
        () => source.ingest[key],
      );
    }
    const ingestFaulted = () => this.ingestFaulted;
    const ready = () => this.readiness().ready;
    new Gauge({
      name: "sdv_failover_ingest_faulted",
      help: "1 while ingest is faulted (broker lost or stalled): supervision suspended.",
      registers,
      collect() {
        this.set(ingestFaulted() ? 1 : 0);
      },
    });
    this.#apiDuration = new Histogram({
      name: "sdv_failover_kube_api_request_duration_seconds",
      help: "Kubernetes API call latency (reconciler and Lease election), by verb and resource.",
      labelNames: ["verb", "resource"] as const,
      buckets: API_BUCKETS_S,
      registers,
    });
    this.#apiErrors = new Counter({
      name: "sdv_failover_kube_api_errors_total",
      help: "Kubernetes API calls that failed (HTTP error, timeout, abort, withheld write).",
      labelNames: ["verb", "resource"] as const,
      registers,
    });
    const calls = [
      ...(options.kubeApi ? KUBE_CALLS : []),
      ...(options.leadership ? LEASE_CALLS : []),
    ];
    for (const [verb, resource] of calls) {
      this.#apiDuration.zero({ verb, resource });
      this.#apiErrors.inc({ verb, resource }, 0);
    }
    new Gauge({
      name: "sdv_failover_reconcile_queue_depth",
      help: "Reconcile keys (workloads, nodes) waiting or in progress.",
      registers,
      collect() {
        this.set(source.reconciler?.queueDepth ?? 0);
      },
    });
    new Gauge({
      name: "sdv_failover_ready",
      help: "1 while /readyz answers 200 (running, armed, ingest not faulted, cluster synced).",
      registers,
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
    const leadership = options.leadership;
    if (leadership) {
      new Gauge({
        name: "sdv_failover_leader",
        help: "Supervisor pair: 1 while this instance leads (may act), else 0.",
        registers,
        collect() {
          this.set(leadership().leader ? 1 : 0);
        },
      });
      new Gauge({
        name: "sdv_failover_leader_term",
        help: "Supervisor pair: the term of this instance's current or last leadership period " +
          "(the Lease's leaseTransitions; -1 before the first).",
        registers,
        collect() {
          this.set(leadership().term);
        },
      });
    }
  }

  /** Feed the supervisor's events here (`SupervisorOptions.onEvent`). */
  readonly onEvent = (event: SupervisorEvent): void => {
    switch (event.type) {
      case "armed":
        this.#armed = true;
        return;
      case "ingest-fault":
        this.#ingestFaulted = true;
        return;
      case "ingest-restored":
        this.#ingestFaulted = false;
        return;
      case "transition": {
        const t = event.transition;
        if (!t.isFailure) return;
        this.#expiries.inc({ kind: t.target.kind, cause: t.cause ?? "deadline" });
        if (t.latenessMs !== undefined) {
          this.#expiryLateness.observe({ kind: t.target.kind }, Math.max(0, t.latenessMs) / 1000);
        }
        return;
      }
      case "promotion-sent":
        this.#promotions.inc({
          workload: event.desired.workload.name,
          reason: event.desired.reason,
        });
        return;
      case "blocked":
        this.#blocked.inc({ workload: event.decision.workload.name });
        return;
      case "unfence":
        this.#unfences.inc();
        return;
      case "reconciled": {
        const { report } = event;
        if (report.key.kind !== "node") return;
        const fenced = report.results.some((r) =>
          r.action === "fenceNode" && (r.outcome === "done" || r.outcome === "planned")
        );
        if (fenced) {
          this.#fences.inc({ reason: (report.desired as NodeDesired).reason ?? "unknown" });
        }
        return;
      }
    }
  };

  /** Feed the watchdog's timer lateness here (`SupervisorOptions.onTimerLateness`), ms. */
  readonly observeTimerLatenessMs = (latenessMs: number): void => {
    this.#timerLateness.observe(Math.max(0, latenessMs) / 1000);
  };

  /** Feed every Kubernetes API call here (`timedKubeApi`, `timedLeaseApi`). */
  readonly observeKubeCall: KubeCallObserver = (call: KubeCall): void => {
    const labels = { verb: call.verb, resource: call.resource };
    this.#apiDuration.observe(labels, call.durationMs / 1000);
    if (call.failed) this.#apiErrors.inc(labels);
  };

  /** The watchdog is armed (seen the `armed` event). */
  get armed(): boolean {
    return this.#source.armed ?? this.#armed;
  }

  /** Ingest is faulted (between `ingest-fault` and `ingest-restored`). */
  get ingestFaulted(): boolean {
    return this.#source.ingestFaulted ?? this.#ingestFaulted;
  }

  /** The `/readyz` verdict now (see `supervisorReadiness`). */
  readiness(): Readiness {
    const state = this.#source.state;
    return supervisorReadiness({
      state,
      armed: this.armed,
      ingestFaulted: this.ingestFaulted,
      // `running` is reached only once the reconciler started (cache synced) and the persisted
      // state is adopted (Supervisor.start); a dry run's model is synced once started.
      clusterSynced: state === "running",
    });
  }

  /**
   * The exposition text (what `/metrics` serves): the registry's families, then the per-target
   * ones (`target_exposition.ts`).
   */
  async metrics(): Promise<string> {
    const text = await this.registry.metrics();
    return `${text}\n${this.#targets.text(this.#readTarget, this.#clock.nowMs())}`;
  }
}

/** A counter mirroring a monotonic count the runtime keeps, read at scrape time. */
function statCounter(
  registers: Registry[],
  name: string,
  help: string,
  read: () => number,
): void {
  let last = 0;
  new Counter({
    name,
    help,
    registers,
    collect() {
      const value = read();
      if (value > last) this.inc(value - last);
      last = Math.max(last, value);
    },
  });
}

/** `lastWillsDeferred` → `last_wills_deferred`. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
