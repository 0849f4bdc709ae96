/**
 * Applies the publisher's faults to the simulated nodes at their times (offsets from the start on
 * the monotonic clock), and records each application with its monotonic and wall-clock time and
 * the last node heartbeat sent before it, so that detection delays can be measured across
 * processes.
 *
 * @module
 */
import type { Clock } from "../clock/clock.ts";
import { DEFAULT_DRAIN_TIMEOUT_MS } from "../agent/agent.ts";
import type { NodeTarget, Topology } from "../topology/topology.ts";
import { type Deadline, deadline } from "./deadline.ts";
import type { Fault, PartitionFault } from "./faults.ts";
import { type AppliedFault, roundMs, wallTimeMs } from "./report.ts";
import type { SimulatedNode } from "./simulated_node.ts";

/** Options of {@linkcode FaultScheduler}. */
export interface FaultSchedulerOptions {
  /** The topology the faults' names are resolved in. */
  topology: Topology;
  /** Every simulated node, by its topology node. */
  nodes: ReadonlyMap<NodeTarget, SimulatedNode>;
  /** Monotonic clock. */
  clock: Clock;
  /** Reconnect period after a partition heals, ms (`config.mqtt.reconnectPeriodMs`). */
  reconnectPeriodMs: number;
  /** Bound of a `planned-stop`'s drain, ms (default {@linkcode DEFAULT_DRAIN_TIMEOUT_MS}). */
  drainTimeoutMs?: number;
  /** Bound of the agent's stop after a `planned-stop`'s drain, ms (default 2000). */
  stopTimeoutMs?: number;
}

/**
 * Schedules faults, applies them, and keeps the record. Faults must have been checked with
 * `validateFaults` against the same topology.
 *
 * Lifecycle: construct → {@linkcode FaultScheduler.start} → {@linkcode FaultScheduler.stop}.
 */
export class FaultScheduler {
  readonly #topology: Topology;
  readonly #nodes: ReadonlyMap<NodeTarget, SimulatedNode>;
  readonly #clock: Clock;
  readonly #reconnectPeriodMs: number;
  readonly #drainTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  readonly #plannedStops: Promise<void>[] = [];
  readonly #applied: AppliedFault[] = [];
  readonly #pending = new Set<Fault>();
  readonly #timers: Deadline[] = [];
  #startedAtMs = 0;
  #running = false;

  /** Creates a scheduler with nothing scheduled. */
  constructor(options: FaultSchedulerOptions) {
    this.#topology = options.topology;
    this.#nodes = options.nodes;
    this.#clock = options.clock;
    this.#reconnectPeriodMs = options.reconnectPeriodMs;
    this.#drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 2000;
  }

  /**
   * Resolves when every planned stop applied so far has ended (its drain result recorded in its
   * {@linkcode AppliedFault.drain}). Never rejects.
   */
  async settled(): Promise<void> {
    await Promise.all(this.#plannedStops);
  }

  /** The faults applied so far, in order of application. */
  get applied(): AppliedFault[] {
    return [...this.#applied];
  }

  /** The faults neither applied nor found without effect. */
  get notApplied(): Fault[] {
    return [...this.#pending];
  }

  /**
   * Applies jitter faults now and schedules every other fault at `startedAtMs + atMs`.
   * @param startedAtMs the run's time origin on the clock.
   */
  start(faults: readonly Fault[], startedAtMs: number): void {
    this.#startedAtMs = startedAtMs;
    this.#running = true;
    for (const fault of faults) this.#pending.add(fault);
    for (const fault of faults) {
      if (fault.kind === "jitter") this.apply(fault);
      else {this.#timers.push(deadline(this.#clock, startedAtMs + fault.atMs, () =>
          this.apply(fault)));}
    }
  }

  /** Cancels every pending fault and partition heal; later applications do nothing. */
  stop(): void {
    this.#running = false;
    for (const t of this.#timers) t.cancel();
    this.#timers.length = 0;
  }

  /** Applies one fault now (the scheduled timers call this). No-op once stopped. */
  apply(fault: Fault): void {
    if (!this.#running) return;
    switch (fault.kind) {
      case "node-crash":
      case "partition": {
        const node = this.#nodeNamed(fault.node);
        if (node.state === "crashed" || node.state === "partitioned" || node.state === "stopped") {
          return this.#noEffect(fault, node);
        }
        node.silence(fault.spec);
        const entry = this.#record(fault, node);
        node.cutConnection();
        if (fault.kind === "node-crash") {
          node.state = "crashed";
          return;
        }
        node.state = "partitioned";
        this.#timers.push(
          deadline(this.#clock, this.#clock.nowMs() + fault.durationMs, () => {
            if (this.#running) this.#heal(node, fault, entry);
          }),
        );
        return;
      }
      case "node-hang": {
        const node = this.#nodeNamed(fault.node);
        if (node.state !== "running") return this.#noEffect(fault, node);
        node.state = "hung";
        node.hungBy = fault.spec;
        node.silence(fault.spec);
        this.#record(fault, node);
        return;
      }
      case "sensor-loss": {
        const sensor = this.#topology.sensor(fault.sensor)!;
        const node = this.#nodes.get(sensor.node)!;
        const source = node.sensor(sensor)!;
        source.stopped = true;
        this.#record(fault, node, {
          sensor: sensor.name,
          lastTickAtMs: source.lastSentAtMs === undefined ? null : roundMs(source.lastSentAtMs),
        });
        return;
      }
      case "app-hang": {
        const app = this.#topology.workload(fault.workload)!.primary.app!;
        const node = this.#nodes.get(app.node)!;
        const source = node.app(app)!;
        source.stopped = true;
        this.#record(fault, node, {
          workload: app.workload.name,
          lastAppHeartbeatAtMs: source.lastSentAtMs === undefined
            ? null
            : roundMs(source.lastSentAtMs),
        });
        return;
      }
      case "jitter": {
        const node = this.#nodeNamed(fault.node);
        node.client.jitterMaxMs = fault.maxDelayMs;
        this.#record(fault, node, { maxDelayMs: fault.maxDelayMs });
        return;
      }
      case "planned-stop": {
        const node = this.#nodeNamed(fault.node);
        if (node.state !== "running") return this.#noEffect(fault, node);
        const entry = this.#record(fault, node, {
          active: node.agent.activeWorkloads,
          drainTimeoutMs: this.#drainTimeoutMs,
        });
        const done = node.plannedStop(this.#drainTimeoutMs, this.#stopTimeoutMs).then((r) => {
          const stoppedAtMs = this.#clock.nowMs();
          entry.drain = {
            outcome: r.outcome,
            switchoverMs: r.switchoverMs,
            moved: r.moved,
            pending: r.pending,
            stoppedAtMs,
          };
          const fields = {
            fault: fault.spec,
            outcome: r.outcome,
            switchoverMs: r.switchoverMs === undefined ? null : roundMs(r.switchoverMs),
            moved: r.moved,
            pending: r.pending,
            stoppedAtMs: roundMs(stoppedAtMs),
          };
          if (r.outcome === "drained") node.log.info("planned-stop-done", fields);
          else node.log.warn("planned-stop-done", fields);
        });
        this.#plannedStops.push(done);
        return;
      }
    }
  }

  #nodeNamed(name: string): SimulatedNode {
    return this.#nodes.get(this.#topology.node(name)!)!;
  }

  #heal(node: SimulatedNode, fault: PartitionFault, entry: AppliedFault): void {
    node.silence(node.hungBy); // other publishes are dropped until connected anyway
    const started = node.reconnect(this.#reconnectPeriodMs, () => {
      if (!this.#running) return;
      node.state = node.hungBy === undefined ? "running" : "hung";
      entry.healedAtMs = this.#clock.nowMs();
      node.log.warn("partition-healed", {
        fault: fault.spec,
        healedAtMs: roundMs(entry.healedAtMs),
        partitionedForMs: roundMs(entry.healedAtMs - entry.appliedAtMs),
      });
    });
    if (started) {
      node.log.info("partition-reconnecting", { fault: fault.spec });
    } else {
      node.log.warn("partition-cannot-heal", {
        fault: fault.spec,
        reason: "the client has no reconnect()",
      });
    }
  }

  #record(fault: Fault, node: SimulatedNode, extra: Record<string, unknown> = {}): AppliedFault {
    const appliedAtMs = this.#clock.nowMs();
    const entry: AppliedFault = {
      fault,
      spec: fault.spec,
      node: node.name,
      appliedAtMs,
      offsetMs: appliedAtMs - this.#startedAtMs,
      wallTimeMs: wallTimeMs(appliedAtMs),
      lastHeartbeatAtMs: node.client.lastHeartbeatAtMs,
    };
    this.#applied.push(entry);
    this.#pending.delete(fault);
    const last = entry.lastHeartbeatAtMs;
    node.log.warn("fault-applied", {
      fault: fault.spec,
      kind: fault.kind,
      atMs: appliedAtMs,
      offsetMs: roundMs(entry.offsetMs),
      wallTimeMs: roundMs(entry.wallTimeMs),
      lastHeartbeatAtMs: last === undefined ? null : roundMs(last),
      sinceLastHeartbeatMs: last === undefined ? null : roundMs(appliedAtMs - last),
      ...extra,
    });
    return entry;
  }

  #noEffect(fault: Fault, node: SimulatedNode): void {
    this.#pending.delete(fault);
    node.log.warn("fault-no-effect", { fault: fault.spec, state: node.state });
  }
}
