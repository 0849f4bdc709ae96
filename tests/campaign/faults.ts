/**
 * The fault campaign's fault kinds and their seeded distribution (anchor: Pacemaker's CTS, a
 * randomized series of faults checked by an oracle after each one).
 *
 * Every kind says what the truth is — whether the supervisor must fail over (`mustAct`) — so the
 * oracle can tell a false failover from a missed one. See docs/campaign.md for the table.
 *
 * @module
 */
import { seededRandom } from "../../bench/stats.ts";

/** Every fault kind of the campaign. */
export const FAULT_KINDS = [
  "node-crash",
  "node-hang",
  "partition",
  "sensor-loss",
  "app-hang",
  "agent-stop-short",
  "agent-stop-long",
  "jitter",
  "planned-stop",
  "boot",
  "broker-stall",
  "broker-restart",
  "api-stop",
  "api-stop-crash",
  "supervisor-restart",
  // pair mode only (two brokers, two supervisors): weight 0 in DEFAULT_WEIGHTS
  "broker-kill",
  "broker-kill-crash",
  "supervisor-kill",
  "supervisor-kill-crash",
  "supervisor-partition",
  "supervisor-partition-crash",
] as const;

/** One fault kind. */
export type FaultKind = typeof FAULT_KINDS[number];

/** The kinds that need the pair world (two brokers, two supervisors). */
export const PAIR_ONLY_KINDS: readonly FaultKind[] = [
  "broker-kill",
  "broker-kill-crash",
  "supervisor-kill",
  "supervisor-kill-crash",
  "supervisor-partition",
  "supervisor-partition-crash",
];

/**
 * Which path a supervisor-partition cuts: the leader's path to both brokers, the standby's, or
 * the two sides from each other (sup-a keeps broker A only, sup-b broker B only: both still hear
 * every node, through their own broker).
 */
export type PartitionScope = "leader-bus" | "standby-bus" | "sides";

/**
 * What each kind does to the vehicle, and whether it must make the supervisor move workloads
 * (true) or must not (false).
 */
export const FAULT_TRUTH: Readonly<Record<FaultKind, { mustAct: boolean; what: string }>> = {
  "node-crash": {
    mustAct: true,
    what: "SIGKILL of the node's process and of its kwok (power lost); recovery: both restart",
  },
  "node-hang": {
    mustAct: true,
    what: "the node stops publishing, its connection and keepalive go on; recovery: it resumes",
  },
  "partition": {
    mustAct: true,
    what: "nftables drops every packet between the node's namespace and the host; recovery: heal",
  },
  "sensor-loss": {
    mustAct: true,
    what: "one sensor's ticks stop (workloads whose active side needs it move, no fence)",
  },
  "app-hang": {
    mustAct: true,
    what: "the active instance's app heartbeat stops (that workload moves, no fence)",
  },
  "agent-stop-short": {
    mustAct: false,
    what:
      "SIGSTOP of the node's process shorter than the timeout minus three periods, then SIGCONT",
  },
  "agent-stop-long": {
    mustAct: true,
    what: "SIGSTOP of the node's process for 2–8 timeouts, then SIGCONT",
  },
  "jitter": {
    mustAct: false,
    what: "latency ± jitter on the node's TCP path (toxiproxy), worst case below the timeout",
  },
  "planned-stop": {
    mustAct: true,
    what: "the agent's planned stop (drain): workloads move, no fence; recovery: the node boots",
  },
  "boot": {
    mustAct: false,
    what: "supervisor and every node restart; nodes come up in random order inside the boot window",
  },
  "broker-stall": {
    mustAct: false,
    what: "SIGSTOP of mosquitto, then SIGCONT (an ingest fault, never a failover)",
  },
  "broker-restart": {
    mustAct: false,
    what: "SIGKILL of mosquitto, restarted on the same port (an ingest fault, never a failover)",
  },
  "api-stop": {
    mustAct: false,
    what: "SIGSTOP of the kube-apiserver, then SIGCONT",
  },
  "api-stop-crash": {
    mustAct: true,
    what:
      "the kube-apiserver stopped, then a node crash: promotion over MQTT at once, the cluster " +
      "converges once the API is back",
  },
  "supervisor-restart": {
    mustAct: false,
    what:
      "SIGKILL of the supervisor (pair: of the standby), restarted: adopts the epochs, plans nothing",
  },
  "broker-kill": {
    mustAct: false,
    what: "pair: SIGKILL of one broker, restarted on its port after 0–3 s: no expiry, no ingest " +
      "fault, no failover, the leader stays",
  },
  "broker-kill-crash": {
    mustAct: true,
    what: "pair: SIGKILL of one broker, then a node crash: failed over through the other broker " +
      "within the FTTI; no other expiry",
  },
  "supervisor-kill": {
    mustAct: false,
    what: "pair: SIGKILL of the leading supervisor, restarted as the standby: the peer takes " +
      "over, nothing moves",
  },
  "supervisor-kill-crash": {
    mustAct: true,
    what:
      "pair: SIGKILL of the leader, then a node crash: the peer takes over and fails the node " +
      "over within FTTI + the takeover bound",
  },
  "supervisor-partition": {
    mustAct: false,
    what: "pair: nftables cuts the leader's or the standby's path to both brokers, or the two " +
      "sides from each other; both reach the API server: a cut leader hands over, nothing moves",
  },
  "supervisor-partition-crash": {
    mustAct: true,
    what:
      "pair: the leader's bus cut (or the sides), then a node crash: failed over exactly once " +
      "within FTTI + the takeover bound",
  },
};

/** Relative weights of the default distribution (node-level and evidence faults dominate). */
export const DEFAULT_WEIGHTS: Readonly<Record<FaultKind, number>> = {
  "node-crash": 10,
  "node-hang": 10,
  "partition": 8,
  "sensor-loss": 10,
  "app-hang": 10,
  "agent-stop-short": 10,
  "agent-stop-long": 8,
  "jitter": 8,
  "planned-stop": 6,
  "boot": 2,
  "broker-stall": 6,
  "broker-restart": 3,
  "api-stop": 3,
  "api-stop-crash": 2,
  "supervisor-restart": 4,
  "broker-kill": 0,
  "broker-kill-crash": 0,
  "supervisor-kill": 0,
  "supervisor-kill-crash": 0,
  "supervisor-partition": 0,
  "supervisor-partition-crash": 0,
};

/**
 * Weights of the pair mode (`deno task campaign --pair`): about half the draws are faults of the
 * pair (a broker, a supervisor, their paths, and the combinations with a node crash), the rest the
 * single mode's faults. Off: `broker-restart` (one broker of the pair is `broker-kill`) and
 * `api-stop-crash` (with a pair nobody leads while the API server is unreachable, by design: the
 * crash is failed over when it is back, not within the FTTI; docs/redundancy.md).
 */
export const PAIR_WEIGHTS: Readonly<Record<FaultKind, number>> = {
  "node-crash": 8,
  "node-hang": 6,
  "partition": 5,
  "sensor-loss": 5,
  "app-hang": 5,
  "agent-stop-short": 5,
  "agent-stop-long": 5,
  "jitter": 5,
  "planned-stop": 3,
  "boot": 1,
  "broker-stall": 6,
  "broker-restart": 0,
  "api-stop": 2,
  "api-stop-crash": 0,
  "supervisor-restart": 2,
  "broker-kill": 8,
  "broker-kill-crash": 6,
  "supervisor-kill": 6,
  "supervisor-kill-crash": 6,
  "supervisor-partition": 8,
  "supervisor-partition-crash": 6,
};

/** One drawn fault: a kind, where it strikes and how long it lasts. */
export interface DrawnFault {
  /** 1-based position in the campaign. */
  seq: number;
  /** The kind. */
  kind: FaultKind;
  /** The node struck (node-level kinds; sensor-loss: the sensor's node; app-hang: the active's). */
  node?: string;
  /** The sensor (sensor-loss). */
  sensor?: string;
  /** The workload (app-hang). */
  workload?: string;
  /** How long the fault lasts before its recovery, ms (stops, stalls, jitter, API stops). */
  durationMs?: number;
  /** Latency added to the node's TCP path (jitter), ms. */
  latencyMs?: number;
  /** Jitter around it (each chunk delayed latency ± jitter), ms. */
  jitterMs?: number;
  /** Start delay of each node after a boot, ms, by node. */
  bootDelaysMs?: Record<string, number>;
  /** Pair: the broker struck, 0 (`mqtt.url`) or 1 (`mqtt.pairUrl`). */
  broker?: 0 | 1;
  /** Pair: the role of the supervisor struck when drawn. */
  role?: "leader" | "standby";
  /** Pair: the id of the supervisor struck (who held `role` when drawn). */
  supervisor?: string;
  /** Pair: what a supervisor-partition cuts. */
  scope?: PartitionScope;
  /** Combinations: the pair fault → the node crash, ms. */
  delayMs?: number;
}

/** What the draw needs to know of the vehicle. */
export interface DrawContext {
  /** Node names. */
  nodes: readonly string[];
  /** Sensors by node. */
  sensorsOf: (node: string) => readonly string[];
  /** Workloads that have an app heartbeat. */
  appWorkloads: readonly string[];
  /** The node a workload is active on now. */
  activeNodeOf: (workload: string) => string;
  /** The heartbeat period of every target (the campaign uses one value), ms. */
  periodMs: number;
  /** The timeout of every target, ms. */
  timeoutMs: number;
  /** The supervisor's boot window, ms. */
  bootWindowMs: number;
  /** Pair mode: the ids of the leading and the standby supervisor now. */
  pair?: { leader: () => string | undefined; standby: () => string | undefined };
}

/** Draws faults from a weighted distribution with a seeded PRNG. */
export class FaultDraw {
  readonly #random: () => number;
  readonly #weights: [FaultKind, number][];
  readonly #total: number;
  #seq = 0;

  /**
   * @param seed the campaign's seed
   * @param weights relative weight per kind (default {@linkcode DEFAULT_WEIGHTS}); 0 or absent
   *   disables a kind
   * @throws Error when every weight is 0
   */
  constructor(seed: number, weights: Partial<Record<FaultKind, number>> = DEFAULT_WEIGHTS) {
    this.#random = seededRandom(seed);
    this.#weights = FAULT_KINDS.map((k) => [k, weights[k] ?? 0] as [FaultKind, number])
      .filter(([, w]) => w > 0);
    this.#total = this.#weights.reduce((s, [, w]) => s + w, 0);
    if (this.#total <= 0) throw new Error("every fault weight is 0");
  }

  /** Uniform in [0, 1). */
  random(): number {
    return this.#random();
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#random() * (hi - lo + 1));
  }

  /** One of `items` (non-empty). */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#random() * items.length)];
  }

  /** The next fault. */
  next(ctx: DrawContext): DrawnFault {
    let r = this.#random() * this.#total;
    let kind = this.#weights[this.#weights.length - 1][0];
    for (const [k, w] of this.#weights) {
      if (r < w) {
        kind = k;
        break;
      }
      r -= w;
    }
    return this.#shape(++this.#seq, kind, ctx);
  }

  #shape(seq: number, kind: FaultKind, ctx: DrawContext): DrawnFault {
    const { periodMs, timeoutMs } = ctx;
    switch (kind) {
      case "node-crash":
      case "node-hang":
      case "partition":
      case "planned-stop":
      case "api-stop-crash":
        return { seq, kind, node: this.pick(ctx.nodes) };
      case "sensor-loss": {
        const node = this.pick(ctx.nodes.filter((n) => ctx.sensorsOf(n).length > 0));
        return { seq, kind, node, sensor: this.pick(ctx.sensorsOf(node)) };
      }
      case "app-hang": {
        const workload = this.pick(ctx.appWorkloads);
        return { seq, kind, workload, node: ctx.activeNodeOf(workload) };
      }
      case "agent-stop-short":
        // the silence seen is the stop plus up to one period plus delivery: keep margin
        return {
          seq,
          kind,
          node: this.pick(ctx.nodes),
          durationMs: this.int(periodMs, Math.max(periodMs, timeoutMs - 3 * periodMs)),
        };
      case "agent-stop-long":
        return {
          seq,
          kind,
          node: this.pick(ctx.nodes),
          durationMs: this.int(timeoutMs * 2, timeoutMs * 8),
        };
      case "jitter": {
        // worst gap between two heartbeats seen = period + latency + 2 × jitter
        // (toxiproxy's jitter may not exceed its latency)
        const latencyMs = this.int(0, Math.floor((timeoutMs - 2 * periodMs) / 3));
        return {
          seq,
          kind,
          node: this.pick(ctx.nodes),
          latencyMs,
          jitterMs: this.int(0, latencyMs),
          durationMs: this.int(1000, 3000),
        };
      }
      case "boot": {
        const bootDelaysMs: Record<string, number> = {};
        for (const n of ctx.nodes) bootDelaysMs[n] = this.int(0, Math.floor(ctx.bootWindowMs / 2));
        return { seq, kind, bootDelaysMs };
      }
      case "broker-stall":
        if (ctx.pair) {
          // one broker of the pair; longer than the single mode's, up to past the keepalive
          // (5 s × 1.5): the clients then close their session to it and reconnect
          return { seq, kind, broker: this.pick([0, 1] as const), durationMs: this.int(50, 8000) };
        }
        return { seq, kind, durationMs: this.int(50, 3000) };
      case "broker-restart":
        return { seq, kind, durationMs: this.int(0, 1500) };
      case "api-stop":
        return { seq, kind, durationMs: this.int(500, 6000) };
      case "supervisor-restart":
        if (ctx.pair) {
          return {
            seq,
            kind,
            role: "standby",
            supervisor: ctx.pair.standby(),
            durationMs: this.int(0, 1000),
          };
        }
        return { seq, kind, durationMs: this.int(0, 1000) };
      case "broker-kill":
        return { seq, kind, broker: this.pick([0, 1] as const), durationMs: this.int(0, 3000) };
      case "broker-kill-crash":
        return {
          seq,
          kind,
          broker: this.pick([0, 1] as const),
          node: this.pick(ctx.nodes),
          delayMs: this.int(0, 1000),
        };
      case "supervisor-kill":
        return {
          seq,
          kind,
          role: "leader",
          supervisor: ctx.pair?.leader(),
          durationMs: this.int(0, 1000),
        };
      case "supervisor-kill-crash":
        return {
          seq,
          kind,
          role: "leader",
          supervisor: ctx.pair?.leader(),
          node: this.pick(ctx.nodes),
          delayMs: this.int(0, 300),
        };
      case "supervisor-partition": {
        const scope = this.pick(
          ["leader-bus", "leader-bus", "standby-bus", "sides", "sides"] as const,
        );
        return {
          seq,
          kind,
          scope,
          ...(scope === "sides"
            ? {}
            : this.#struck(ctx, scope === "leader-bus" ? "leader" : "standby")),
          durationMs: this.int(500, 4000),
        };
      }
      case "supervisor-partition-crash": {
        const scope = this.pick(["leader-bus", "sides"] as const);
        return {
          seq,
          kind,
          scope,
          ...(scope === "sides" ? {} : this.#struck(ctx, "leader")),
          node: this.pick(ctx.nodes),
          delayMs: this.int(0, 300),
        };
      }
    }
  }

  #struck(ctx: DrawContext, role: "leader" | "standby"): Pick<DrawnFault, "role" | "supervisor"> {
    return { role, supervisor: role === "leader" ? ctx.pair?.leader() : ctx.pair?.standby() };
  }
}

/** A one-line description of a fault, for logs. */
export function describeFault(f: DrawnFault): string {
  const parts: string[] = [`#${f.seq} ${f.kind}`];
  if (f.node) parts.push(`node=${f.node}`);
  if (f.sensor) parts.push(`sensor=${f.sensor}`);
  if (f.workload) parts.push(`workload=${f.workload}`);
  if (f.durationMs !== undefined) parts.push(`durationMs=${f.durationMs}`);
  if (f.latencyMs !== undefined) parts.push(`latency=${f.latencyMs}±${f.jitterMs}ms`);
  if (f.broker !== undefined) parts.push(`broker=${"AB"[f.broker]}`);
  if (f.scope) parts.push(`scope=${f.scope}`);
  if (f.role) parts.push(`${f.role}=${f.supervisor}`);
  if (f.delayMs !== undefined) parts.push(`delayMs=${f.delayMs}`);
  return parts.join(" ");
}
