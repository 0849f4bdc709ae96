/**
 * Fault specifications for the test publisher (`publish --fault SPEC`).
 *
 * | spec                      | effect (T and DUR relative to the publisher's start)               |
 * |---------------------------|--------------------------------------------------------------------|
 * | `node-crash:NODE@T`       | abrupt TCP close at T; the broker publishes the Last Will          |
 * | `node-hang:NODE@T`        | connection and keepalive pings go on, every publish of NODE stops  |
 * | `sensor-loss:SENSOR@T`    | that sensor's ticks stop; if the sensor is required by its node,   |
 * |                           | the agent reports the node `degraded:SENSOR` once the last tick is |
 * |                           | older than the sensor's `timeoutMs` (its heartbeat goes on)        |
 * | `app-hang:WORKLOAD@T`     | the app heartbeats of the workload's PRIMARY instance stop         |
 * | `jitter:NODE:MS`          | each node heartbeat of NODE delayed by uniform random 0..MS ms     |
 * | `partition:NODE@T+DUR`    | abrupt TCP close at T (Last Will), reconnect DUR later             |
 * | `planned-stop:NODE@T`     | the agent's planned stop (SIGTERM/SIGHUP, an OTA) at T: retained   |
 * |                           | `draining`, heartbeats go on until promotions moved every workload |
 * |                           | active on NODE (bounded), then retained `offline` and DISCONNECT;  |
 * |                           | the report gives the switchover time                               |
 *
 * Times: `1500`, `1500ms` and `1.5s` all mean 1500 ms.
 *
 * @module
 */
import type { Topology } from "../topology/topology.ts";

/** Abrupt TCP close of a node's connection at `atMs` (the broker publishes its Last Will). */
export interface NodeCrashFault {
  /** Discriminant. */
  kind: "node-crash";
  /** The node, as named in `config.nodes`. */
  node: string;
  /** Offset from the publisher's start, ms. */
  atMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/** A node that stops publishing at `atMs` while its connection (and keepalive) stays up. */
export interface NodeHangFault {
  /** Discriminant. */
  kind: "node-hang";
  /** The node, as named in `config.nodes`. */
  node: string;
  /** Offset from the publisher's start, ms. */
  atMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/** A sensor whose ticks stop at `atMs`. */
export interface SensorLossFault {
  /** Discriminant. */
  kind: "sensor-loss";
  /** The sensor, as named in `config.sensors`. */
  sensor: string;
  /** Offset from the publisher's start, ms. */
  atMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/** The app heartbeats of a workload's primary instance stop at `atMs`. */
export interface AppHangFault {
  /** Discriminant. */
  kind: "app-hang";
  /** The workload, as named in `config.workloads`. */
  workload: string;
  /** Offset from the publisher's start, ms. */
  atMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/** Every node heartbeat of `node` is delayed by a uniform random 0..`maxDelayMs`, from the start. */
export interface JitterFault {
  /** Discriminant. */
  kind: "jitter";
  /** The node, as named in `config.nodes`. */
  node: string;
  /** Upper bound of the added delay, ms (> 0). */
  maxDelayMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/** Abrupt TCP close at `atMs` (Last Will), reconnect `durationMs` later. */
export interface PartitionFault {
  /** Discriminant. */
  kind: "partition";
  /** The node, as named in `config.nodes`. */
  node: string;
  /** Offset from the publisher's start, ms. */
  atMs: number;
  /** How long the node stays cut off, ms (> 0). */
  durationMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/**
 * A planned stop of a node's agent at `atMs`: `draining`, wait (bounded) until promotions moved the
 * workloads active on the node, then `offline` and DISCONNECT (no Last Will).
 */
export interface PlannedStopFault {
  /** Discriminant. */
  kind: "planned-stop";
  /** The node, as named in `config.nodes`. */
  node: string;
  /** Offset from the publisher's start, ms. */
  atMs: number;
  /** The text it was parsed from. */
  spec: string;
}

/** One injected fault. */
export type Fault =
  | NodeCrashFault
  | NodeHangFault
  | SensorLossFault
  | AppHangFault
  | JitterFault
  | PartitionFault
  | PlannedStopFault;

/** The kinds of {@linkcode Fault}. */
export type FaultKind = Fault["kind"];

/** The accepted syntaxes, for help texts and error messages. */
const FAULT_SYNTAX: readonly string[] = [
  "node-crash:NODE@T",
  "node-hang:NODE@T",
  "sensor-loss:SENSOR@T",
  "app-hang:WORKLOAD@T",
  "jitter:NODE:MS",
  "partition:NODE@T+DUR",
  "planned-stop:NODE@T",
];

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/**
 * Parses a time: a non-negative number of milliseconds, optionally suffixed `ms`, or seconds with
 * the suffix `s` (`1500`, `1500ms`, `1.5s` are all 1500 ms).
 * @returns milliseconds (may be fractional, e.g. `0.5ms`).
 * @throws Error when the text is not such a time.
 */
export function parseDurationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?|\.\d+)(ms|s)?$/.exec(text.trim());
  if (!m) {
    throw new Error(
      `invalid time ${
        JSON.stringify(text)
      }: expected milliseconds or seconds, e.g. 1500, 1500ms, 1.5s`,
    );
  }
  const value = Number(m[1]) * (m[2] === "s" ? 1000 : 1);
  if (!Number.isFinite(value)) throw new Error(`invalid time ${JSON.stringify(text)}: too large`);
  return value;
}

/**
 * Parses one fault specification (see the module table).
 * @throws Error with a message naming the spec and the accepted syntaxes when it is malformed: an
 *   unknown kind, a name that is not a DNS-1123 name, a bad time, or a jitter/partition duration
 *   that is not above 0.
 */
export function parseFault(spec: string): Fault {
  const text = spec.trim();
  const fail = (why: string): never => {
    throw new Error(
      `invalid fault ${JSON.stringify(spec)}: ${why} (expected one of ${FAULT_SYNTAX.join(", ")})`,
    );
  };
  const colon = text.indexOf(":");
  if (colon < 0) fail("missing ':' after the fault kind");
  const kind = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  const name = (value: string, what: string): string => {
    if (!NAME.test(value)) fail(`${what} ${JSON.stringify(value)} is not a valid name`);
    return value;
  };
  const time = (value: string, what: string): number => {
    try {
      return parseDurationMs(value);
    } catch (error) {
      return fail(`${what}: ${(error as Error).message}`);
    }
  };
  const at = (what: string): [string, string] => {
    const i = rest.lastIndexOf("@");
    if (i < 0) fail(`missing '@T' after the ${what}`);
    return [rest.slice(0, i), rest.slice(i + 1)];
  };
  switch (kind) {
    case "node-crash":
    case "node-hang":
    case "planned-stop": {
      const [n, t] = at("node");
      return { kind, node: name(n, "node"), atMs: time(t, "T"), spec: text };
    }
    case "sensor-loss": {
      const [n, t] = at("sensor");
      return { kind, sensor: name(n, "sensor"), atMs: time(t, "T"), spec: text };
    }
    case "app-hang": {
      const [n, t] = at("workload");
      return { kind, workload: name(n, "workload"), atMs: time(t, "T"), spec: text };
    }
    case "jitter": {
      const i = rest.lastIndexOf(":");
      if (i < 0) fail("missing ':MS' after the node");
      const maxDelayMs = time(rest.slice(i + 1), "MS");
      if (!(maxDelayMs > 0)) fail("MS must be above 0");
      return { kind, node: name(rest.slice(0, i), "node"), maxDelayMs, spec: text };
    }
    case "partition": {
      const [n, window] = at("node");
      const plus = window.indexOf("+");
      if (plus < 0) fail("missing '+DUR' after T");
      const atMs = time(window.slice(0, plus), "T");
      const durationMs = time(window.slice(plus + 1), "DUR");
      if (!(durationMs > 0)) fail("DUR must be above 0");
      return { kind, node: name(n, "node"), atMs, durationMs, spec: text };
    }
    default:
      return fail(`unknown fault kind ${JSON.stringify(kind)}`);
  }
}

/**
 * Checks faults against the vehicle's topology.
 * @returns one human-readable problem per fault that names an unknown node, sensor or workload, or
 *   an `app-hang` of a workload without `appHeartbeat` (which would have no effect); empty when all
 *   are applicable.
 */
export function validateFaults(faults: readonly Fault[], topology: Topology): string[] {
  const problems: string[] = [];
  const list = (things: readonly { name: string }[]) =>
    things.map((t) => t.name).join(", ") || "none";
  for (const f of faults) {
    switch (f.kind) {
      case "node-crash":
      case "node-hang":
      case "jitter":
      case "partition":
      case "planned-stop":
        if (!topology.node(f.node)) {
          problems.push(`${f.spec}: unknown node ${f.node} (configured: ${list(topology.nodes)})`);
        }
        break;
      case "sensor-loss":
        if (!topology.sensor(f.sensor)) {
          problems.push(
            `${f.spec}: unknown sensor ${f.sensor} (configured: ${list(topology.sensors)})`,
          );
        }
        break;
      case "app-hang": {
        const w = topology.workload(f.workload);
        if (!w) {
          problems.push(
            `${f.spec}: unknown workload ${f.workload} (configured: ${list(topology.workloads)})`,
          );
        } else if (!w.primary.app) {
          problems.push(`${f.spec}: workload ${f.workload} has no appHeartbeat configured`);
        }
        break;
      }
    }
  }
  return problems;
}
