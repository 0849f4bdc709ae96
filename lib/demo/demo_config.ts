/**
 * The demo's default vehicle: the origin project's setup (same values as `config/example.yaml`).
 *
 * @module
 */
import { type Config, ConfigSchema } from "../config/schema.ts";

/** The origin project's setup (same values as `config/example.yaml`), broker URL filled in later. */
export function demoConfig(url: string): Config {
  const nodes = ["worker-node1", "worker-node2", "worker-node3"];
  return ConfigSchema.parse({
    supervisor: { id: "demo", bootWindowMs: 1000 },
    mqtt: { url },
    nodes: nodes.map((name, i) => ({
      name,
      heartbeatPeriodMs: 33,
      heartbeatTimeoutMs: 300,
      requiredSensors: [`camera-node${i + 1}`],
    })),
    sensors: [
      ...nodes.map((node, i) => ({
        name: `camera-node${i + 1}`,
        node,
        periodMs: 33,
        timeoutMs: 150,
      })),
      { name: "lidar-node2", node: "worker-node2", periodMs: 100, timeoutMs: 300 },
      { name: "lidar-node3", node: "worker-node3", periodMs: 100, timeoutMs: 300 },
    ],
    workloads: [
      {
        name: "lane-detection",
        asil: "B",
        fttiMs: 500,
        primary: {
          deployment: "lane-detection-original",
          node: "worker-node2",
          sensors: ["camera-node2"],
        },
        standby: {
          deployment: "lane-detection-standby",
          node: "worker-node3",
          sensors: ["camera-node3"],
        },
        appHeartbeat: { periodMs: 33, timeoutMs: 300 },
      },
      {
        name: "pose-estimation",
        asil: "QM",
        fttiMs: 1000,
        primary: {
          deployment: "pose-estimation-original",
          node: "worker-node2",
          sensors: ["lidar-node2"],
        },
        standby: {
          deployment: "pose-estimation-standby",
          node: "worker-node3",
          sensors: ["lidar-node3"],
        },
      },
    ],
  });
}
