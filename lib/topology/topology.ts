/**
 * The typed topology of a vehicle: every supervised target and every workload's two placements,
 * built once from a validated {@linkcode Config} and shared by ingest routing, the watchdog, the
 * policy, the reconciler, the agent, the publisher, the demo and the benchmark.
 *
 * Objects reference each other directly (a sensor knows its node, an app instance its workload and
 * placement), so no part of the program builds an id string and parses it back. `label` is for
 * humans (logs, reports) only: `node/worker-node2`, `sensor/camera-node2`,
 * `app/lane-detection/worker-node2`. Targets are numbered nodes first, then sensors, then app
 * instances; `index` is the target's position in {@linkcode Topology.targets} and the watchdog's
 * handle for it.
 *
 * The graph is cyclic (node ↔ sensor, workload ↔ placement): never `JSON.stringify` it; log labels
 * and names.
 *
 * @module
 */
import type { Asil, Config, FailoverAction } from "../config/schema.ts";
import {
  appHeartbeatTopic,
  barrierTopic,
  nodeHeartbeatTopic,
  nodeStatusTopic,
  promotionTopic,
  sensorTickTopic,
  supervisorStateTopic,
  supervisorStatusTopic,
} from "./topics.ts";

/** Which instance of a workload: the configured primary or the hot standby. */
export type Side = "primary" | "standby";

/** The other side of a workload. */
export function otherSide(side: Side): Side {
  return side === "primary" ? "standby" : "primary";
}

/** What a supervised target is. */
export type TargetKind = "node" | "sensor" | "app";

/** What every supervised target has. */
interface TargetBase {
  /** Position in {@linkcode Topology.targets}; the watchdog's handle. */
  readonly index: number;
  /** For humans only (`node/<name>`, `sensor/<name>`, `app/<workload>/<node>`); never parsed. */
  readonly label: string;
  /** Expected heartbeat/tick period, ms. */
  readonly periodMs: number;
  /** Silence longer than this expires the target, ms. */
  readonly timeoutMs: number;
  /** Topic of its heartbeats/ticks. */
  readonly topic: string;
}

/** A Jetson node supervised through its agent's heartbeat. */
export interface NodeTarget extends TargetBase {
  readonly kind: "node";
  /** Kubernetes node name. */
  readonly name: string;
  /** Retained `online`/`offline` status topic (the agent's Last Will). */
  readonly statusTopic: string;
  /** Sensors whose freshness gates this node's heartbeat. */
  readonly requiredSensors: readonly SensorTarget[];
  /** Every sensor attached to this node. */
  readonly sensors: readonly SensorTarget[];
  /** Every workload placement (either side) on this node. */
  readonly placements: readonly Placement[];
}

/** A sensor attached to one node, ticking once per frame. */
export interface SensorTarget extends TargetBase {
  readonly kind: "sensor";
  readonly name: string;
  readonly node: NodeTarget;
}

/** One app instance's heartbeat (a workload's instance on one side). */
export interface AppTarget extends TargetBase {
  readonly kind: "app";
  readonly workload: Workload;
  readonly side: Side;
  /** The node the instance runs on. */
  readonly node: NodeTarget;
}

/** Any supervised target. */
export type Target = NodeTarget | SensorTarget | AppTarget;

/** One side of a workload: a Deployment pinned to a node, depending on some of its sensors. */
export interface Placement {
  readonly workload: Workload;
  readonly side: Side;
  readonly deployment: string;
  readonly node: NodeTarget;
  readonly sensors: readonly SensorTarget[];
  /** The instance's app heartbeat target, when the workload has one. */
  readonly app: AppTarget | undefined;
  /** Every target that must be OK for this placement to be trusted: node, sensors, app. */
  readonly targets: readonly Target[];
}

/** A safety-relevant application with a hot standby. */
export interface Workload {
  /** Position in {@linkcode Topology.workloads}. */
  readonly index: number;
  readonly name: string;
  readonly namespace: string;
  readonly asil: Asil;
  /** Fault-tolerant time interval, ms (ISO 26262-1:2018, 3.61). */
  readonly fttiMs: number;
  readonly primary: Placement;
  readonly standby: Placement;
  /** Failover actions the workload allows (config `actions`). */
  readonly actions: ReadonlySet<FailoverAction>;
  /** Topic of its retained promotion. */
  readonly promotionTopic: string;
  /**
   * Supervisor ids whose promotions of this workload are obeyed (a promotion's `issuer`): the
   * config's `supervisor.id`, or both `supervisor.pair.ids` of a pair.
   */
  readonly issuers: ReadonlySet<string>;
}

/** The whole supervised system. */
export interface Topology {
  /** MQTT topic prefix. */
  readonly prefix: string;
  /** Every target, nodes first, then sensors, then app instances; `targets[i].index === i`. */
  readonly targets: readonly Target[];
  readonly nodes: readonly NodeTarget[];
  readonly sensors: readonly SensorTarget[];
  readonly apps: readonly AppTarget[];
  readonly workloads: readonly Workload[];
  /** A node by Kubernetes name. */
  node(name: string): NodeTarget | undefined;
  /** A sensor by name. */
  sensor(name: string): SensorTarget | undefined;
  /** A workload by name. */
  workload(name: string): Workload | undefined;
  /** The placement of `workload` on `node`, if it has one there. */
  placementOn(workload: Workload, node: NodeTarget): Placement | undefined;
  /** Topics of a supervisor instance (`state`: its retained status snapshot). */
  supervisorTopics(id: string): { status: string; barrier: string; state: string };
  /** The supervisor instances: `supervisor.id`, or both `supervisor.pair.ids` of a pair. */
  readonly supervisorIds: readonly string[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Builds the topology of a validated config (run `loadConfig`/`parseConfig` first).
 * @throws Error when a reference does not resolve (only for configs that bypassed validation).
 */
export function buildTopology(config: Config): Topology {
  const prefix = config.mqtt.topicPrefix;
  const targets: Target[] = [];
  const nodes: NodeTarget[] = [];
  const sensors: SensorTarget[] = [];
  const apps: AppTarget[] = [];
  const workloads: Workload[] = [];
  const nodeByName = new Map<string, Mutable<NodeTarget>>();
  const sensorByName = new Map<string, SensorTarget>();
  const workloadByName = new Map<string, Workload>();

  for (const n of config.nodes) {
    const node: Mutable<NodeTarget> = {
      kind: "node",
      index: targets.length,
      label: `node/${n.name}`,
      name: n.name,
      periodMs: n.heartbeatPeriodMs,
      timeoutMs: n.heartbeatTimeoutMs,
      topic: n.heartbeatTopic ?? nodeHeartbeatTopic(prefix, n.name),
      statusTopic: n.statusTopic ?? nodeStatusTopic(prefix, n.name),
      requiredSensors: [],
      sensors: [],
      placements: [],
    };
    targets.push(node);
    nodes.push(node);
    nodeByName.set(n.name, node);
  }
  const nodeNamed = (name: string, where: string): Mutable<NodeTarget> => {
    const node = nodeByName.get(name);
    if (!node) throw new Error(`${where}: unknown node ${name}`);
    return node;
  };
  for (const s of config.sensors) {
    const node = nodeNamed(s.node, `sensor ${s.name}`);
    const sensor: SensorTarget = {
      kind: "sensor",
      index: targets.length,
      label: `sensor/${s.name}`,
      name: s.name,
      node,
      periodMs: s.periodMs,
      timeoutMs: s.timeoutMs,
      topic: s.topic ?? sensorTickTopic(prefix, s.name),
    };
    targets.push(sensor);
    sensors.push(sensor);
    sensorByName.set(s.name, sensor);
    (node.sensors as SensorTarget[]).push(sensor);
  }
  const sensorNamed = (name: string, where: string): SensorTarget => {
    const sensor = sensorByName.get(name);
    if (!sensor) throw new Error(`${where}: unknown sensor ${name}`);
    return sensor;
  };
  for (const n of config.nodes) {
    nodeByName.get(n.name)!.requiredSensors = n.requiredSensors.map((s) =>
      sensorNamed(s, `node ${n.name}`)
    );
  }
  const issuers: ReadonlySet<string> = new Set(
    config.supervisor.pair ? config.supervisor.pair.ids : [config.supervisor.id],
  );
  for (const w of config.workloads) {
    const workload = {
      index: workloads.length,
      name: w.name,
      namespace: w.namespace,
      asil: w.asil,
      fttiMs: w.fttiMs,
      actions: new Set(w.actions),
      promotionTopic: promotionTopic(prefix, w.name),
      issuers,
    } as unknown as Mutable<Workload>; // placements are attached below
    for (const side of ["primary", "standby"] as const) {
      const p = w[side];
      const node = nodeNamed(p.node, `workload ${w.name} ${side}`);
      const placementSensors = p.sensors.map((s) => sensorNamed(s, `workload ${w.name} ${side}`));
      const placement: Mutable<Placement> = {
        workload,
        side,
        deployment: p.deployment,
        node,
        sensors: placementSensors,
        app: undefined,
        targets: [node, ...placementSensors],
      };
      workload[side] = placement;
      (node.placements as Placement[]).push(placement);
    }
    workloads.push(workload);
    workloadByName.set(w.name, workload);
  }
  // App instances after every node and sensor, so targets stay grouped by kind.
  for (const [i, w] of config.workloads.entries()) {
    if (!w.appHeartbeat) continue;
    const workload = workloads[i] as Mutable<Workload>;
    for (const side of ["primary", "standby"] as const) {
      const placement = workload[side] as Mutable<Placement>;
      const app: AppTarget = {
        kind: "app",
        index: targets.length,
        label: `app/${w.name}/${placement.node.name}`,
        workload,
        side,
        node: placement.node,
        periodMs: w.appHeartbeat.periodMs,
        timeoutMs: w.appHeartbeat.timeoutMs,
        topic: appHeartbeatTopic(prefix, w.name, placement.node.name),
      };
      targets.push(app);
      apps.push(app);
      placement.app = app;
      placement.targets = [...placement.targets, app];
    }
  }

  return {
    prefix,
    targets,
    nodes,
    sensors,
    apps,
    workloads,
    node: (name) => nodeByName.get(name),
    sensor: (name) => sensorByName.get(name),
    workload: (name) => workloadByName.get(name),
    placementOn: (workload, node) =>
      workload.primary.node === node
        ? workload.primary
        : workload.standby.node === node
        ? workload.standby
        : undefined,
    supervisorTopics: (id) => ({
      status: supervisorStatusTopic(prefix, id),
      barrier: barrierTopic(prefix, id),
      state: supervisorStateTopic(prefix, id),
    }),
    supervisorIds: [...issuers],
  };
}
