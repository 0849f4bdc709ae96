/**
 * The node agent's Prometheus metrics (`sdv_failover_agent_*`), all read from the agent's
 * counters at scrape time, so its heartbeat schedule is not touched:
 *
 * | family                                         | type    | labels        |
 * | ---------------------------------------------- | ------- | ------------- |
 * | `sdv_failover_agent_heartbeats_sent_total`     | counter |               |
 * | `sdv_failover_agent_degraded_periods_total`    | counter |               |
 * | `sdv_failover_agent_offline_periods_total`     | counter |               |
 * | `sdv_failover_agent_missed_slots_total`        | counter |               |
 * | `sdv_failover_agent_malformed_total`           | counter |               |
 * | `sdv_failover_agent_stand_downs_total`         | counter |               |
 * | `sdv_failover_agent_refused_promotions_total`  | counter |               |
 * | `sdv_failover_agent_sensor_state`              | gauge   | sensor, state |
 * | `sdv_failover_agent_status`                    | gauge   | status        |
 * | `sdv_failover_agent_broker_connected`          | gauge   |               |
 * | `sdv_failover_agent_ready`                     | gauge   |               |
 *
 * The heartbeat is liveness only and never suppressed for a stale sensor (docs/design.md): the
 * "gated" heartbeats of the origin are here the slots sent while `degraded`
 * (`degraded_periods_total`); slots skipped while disconnected are `offline_periods_total`.
 * `sensor_state` and `status` are one-hot (1 for the current value).
 *
 * @module
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { NodeAgentStats } from "../agent/agent.ts";
import { agentReadiness, type AgentSensorState, type Readiness } from "../http/readiness.ts";
import { registerProcessMetrics } from "./process_metrics.ts";

const SENSOR_STATES: readonly AgentSensorState[] = ["fresh", "stale", "unknown"];
const STATUSES = ["online", "degraded", "draining", "offline"] as const;

/** What the metrics read from the agent ({@linkcode NodeAgent} plus its client). */
export interface AgentMetricsSource {
  readonly stats: NodeAgentStats;
  sensorStates(): { sensor: string; state: AgentSensorState }[];
  readonly stopping: boolean;
  /** The MQTT client is connected. */
  connected(): boolean;
}

/** The agent's metrics registry. */
export class AgentMetrics {
  /** The registry to serve (`/metrics`). */
  readonly registry: Registry = new Registry();

  /** Content type of the exposition. */
  get contentType(): string {
    return this.registry.contentType;
  }
  /** Give the event-loop monitor this as `onLag` (ms). */
  readonly observeEventLoopLagMs: (lagMs: number) => void;
  readonly #source: AgentMetricsSource;

  /** Registers every family; nothing is read until a scrape. */
  constructor(source: AgentMetricsSource) {
    this.#source = source;
    const registers = [this.registry];
    this.observeEventLoopLagMs = registerProcessMetrics(this.registry).observeLagMs;
    const counters: [string, string, keyof NodeAgentStats][] = [
      ["heartbeats_sent", "Node heartbeats handed to the MQTT client.", "heartbeatsSent"],
      [
        "degraded_periods",
        "Heartbeat slots at which the node was degraded (a required sensor stale).",
        "degradedPeriods",
      ],
      [
        "offline_periods",
        "Heartbeat slots skipped while disconnected (never queued).",
        "offlinePeriods",
      ],
      [
        "missed_slots",
        "Heartbeat slots merged into a late one (timer more than a period late).",
        "missedSlots",
      ],
      ["malformed", "Malformed tick or promotion payloads dropped.", "malformed"],
      ["stand_downs", "Promotions that named another node active (stand-downs).", "fenced"],
      ["refused_promotions", "Well-formed promotions not obeyed.", "refusedPromotions"],
    ];
    for (const [name, help, key] of counters) {
      let last = 0;
      new Counter({
        name: `sdv_failover_agent_${name}_total`,
        help,
        registers,
        collect() {
          const value = source.stats[key] as number;
          if (value > last) this.inc(value - last);
          last = Math.max(last, value);
        },
      });
    }
    new Gauge({
      name: "sdv_failover_agent_sensor_state",
      help: "Each required sensor's freshness as the agent knows it, one-hot.",
      labelNames: ["sensor", "state"] as const,
      registers,
      collect() {
        for (const { sensor, state } of source.sensorStates()) {
          for (const s of SENSOR_STATES) this.set({ sensor, state: s }, s === state ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: "sdv_failover_agent_status",
      help: "The node status the agent publishes (online, degraded, draining, offline), one-hot.",
      labelNames: ["status"] as const,
      registers,
      collect() {
        const current = source.stats.status.state;
        for (const status of STATUSES) this.set({ status }, status === current ? 1 : 0);
      },
    });
    new Gauge({
      name: "sdv_failover_agent_broker_connected",
      help: "1 while the agent is connected to the broker.",
      registers,
      collect() {
        this.set(source.connected() ? 1 : 0);
      },
    });
    const ready = () => this.readiness().ready;
    new Gauge({
      name: "sdv_failover_agent_ready",
      help: "1 while /readyz answers 200 (connected, every required sensor's state known).",
      registers,
      collect() {
        this.set(ready() ? 1 : 0);
      },
    });
  }

  /** The `/readyz` verdict now (see `agentReadiness`). */
  readiness(): Readiness {
    return agentReadiness({
      connected: this.#source.connected(),
      sensors: this.#source.sensorStates(),
      stopping: this.#source.stopping,
    });
  }

  /** The exposition text (what `/metrics` serves). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}
