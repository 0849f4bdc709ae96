/**
 * The four fault scenarios, on the topology of config/fast.yaml and config/example.yaml: three
 * Jetson nodes; lane-detection and pose-estimation on worker-node2 with hot standbys on
 * worker-node3.
 *
 * | scenario    | MQTT fault (publisher)            | power/kubelet (kwok)      | fails over                  |
 * |-------------|-----------------------------------|---------------------------|-----------------------------|
 * | node-crash  | abrupt close of node2's connection | SIGKILL kwok of node2     | both workloads, node fenced |
 * | node-hang   | node2 silent, connection kept      | SIGKILL kwok of node2     | both workloads, node fenced |
 * | sensor-loss | lidar-node2 stops ticking          | —                         | pose-estimation only        |
 * | app-hang    | lane-detection's primary stops     | —                         | lane-detection only         |
 *
 * For K3s a node crash and a node hang are the same fault (its kubelet stops renewing the Lease);
 * sensor and app faults exist only on MQTT, so K3s cannot see them.
 *
 * Targets and workloads are the topology's objects (see `lib/topology/topology.ts`); the
 * supervisor's log lines name them by `label` (targets) and `name` (workloads).
 *
 * @module
 */
import type { Target, Topology, Workload } from "../lib/topology/topology.ts";
import { shippedTopology } from "./runtime_config.ts";

/** Scenario names. */
export type ScenarioName = "node-crash" | "node-hang" | "sensor-loss" | "app-hang";

/** All scenarios, in run order. */
export const SCENARIOS: readonly ScenarioName[] = [
  "node-crash",
  "node-hang",
  "sensor-loss",
  "app-hang",
];

/** Node roles: the victim runs the primaries, the standby node the hot standbys. */
export interface NodeSet {
  all: string[];
  victim: string;
  standby: string;
}

/** The Jetson nodes of the shipped configs. */
export const JETSON_NODES: NodeSet = {
  all: ["worker-node1", "worker-node2", "worker-node3"],
  victim: "worker-node2",
  standby: "worker-node3",
};

/** What one scenario does and what it must cause. */
export interface Scenario {
  name: ScenarioName;
  /** The publisher's fault (without `@T`). */
  faultSpec: string;
  /** Whether the node loses power as well (its kwok is SIGKILLed at the fault). */
  killsNode: boolean;
  /** The watchdog target whose expiry is the detection. */
  target: Target;
  /** Workloads that must fail over. */
  workloads: Workload[];
  /** Whether the runtime must fence (cordon + taint) the node. */
  fencesNode: boolean;
}

/**
 * The scenario `name` on `topology` (by default the shipped configs' topology).
 * @throws Error when the topology lacks a node, sensor, workload or app heartbeat it needs.
 */
export function scenario(name: ScenarioName, topology: Topology = shippedTopology()): Scenario {
  const victim = JETSON_NODES.victim;
  const node = topology.node(victim) ?? missing(`node ${victim}`);
  const workload = (w: string) => topology.workload(w) ?? missing(`workload ${w}`);
  const onVictim = node.placements.map((p) => p.workload);
  switch (name) {
    case "node-crash":
      return {
        name,
        faultSpec: `node-crash:${victim}`,
        killsNode: true,
        target: node,
        workloads: onVictim,
        fencesNode: true,
      };
    case "node-hang":
      return {
        name,
        faultSpec: `node-hang:${victim}`,
        killsNode: true,
        target: node,
        workloads: onVictim,
        fencesNode: true,
      };
    case "sensor-loss":
      return {
        name,
        faultSpec: "sensor-loss:lidar-node2",
        killsNode: false,
        target: topology.sensor("lidar-node2") ?? missing("sensor lidar-node2"),
        workloads: [workload("pose-estimation")],
        fencesNode: false,
      };
    case "app-hang":
      return {
        name,
        faultSpec: "app-hang:lane-detection",
        killsNode: false,
        target: topology.placementOn(workload("lane-detection"), node)?.app ??
          missing(`app heartbeat of lane-detection on ${victim}`),
        workloads: [workload("lane-detection")],
        fencesNode: false,
      };
  }
}

function missing(what: string): never {
  throw new Error(`bench scenario: the topology has no ${what}`);
}

/**
 * A second set of simulated Jetson nodes for the K3s-default run, which takes ≈ 6 min and runs in
 * the background of the other modes on the same control plane (its Deployments are confined to
 * these nodes, ours to the Jetson nodes above).
 */
export const K3S_DEFAULT_NODES: NodeSet = {
  all: ["kd-worker-node1", "kd-worker-node2", "kd-worker-node3"],
  victim: "kd-worker-node2",
  standby: "kd-worker-node3",
};
