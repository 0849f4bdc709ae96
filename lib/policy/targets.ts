/**
 * Names of the watchdog targets derived from the config: one per node heartbeat, per sensor and
 * per app instance (primary and standby of each workload that has an app heartbeat).
 *
 * @module
 */
import type { Config, WorkloadConfig } from "../config/schema.ts";
import type { TargetSpec } from "../watchdog/watchdog.ts";

/** Target id of a node heartbeat. */
export const nodeTargetId = (node: string): string => `node/${node}`;
/** Target id of a sensor. */
export const sensorTargetId = (sensor: string): string => `sensor/${sensor}`;
/** Target id of one app instance (the workload's instance on `node`). */
export const appTargetId = (workload: string, node: string): string => `app/${workload}/${node}`;

/** Every target of a config, nodes first, then sensors, then app instances. */
export function targetsOf(config: Config): TargetSpec[] {
  const specs: TargetSpec[] = [];
  for (const n of config.nodes) {
    specs.push({
      id: nodeTargetId(n.name),
      kind: "node",
      periodMs: n.heartbeatPeriodMs,
      timeoutMs: n.heartbeatTimeoutMs,
    });
  }
  for (const s of config.sensors) {
    specs.push({
      id: sensorTargetId(s.name),
      kind: "sensor",
      periodMs: s.periodMs,
      timeoutMs: s.timeoutMs,
    });
  }
  for (const w of config.workloads) {
    if (!w.appHeartbeat) continue;
    for (const side of [w.primary, w.standby]) {
      specs.push({
        id: appTargetId(w.name, side.node),
        kind: "app",
        periodMs: w.appHeartbeat.periodMs,
        timeoutMs: w.appHeartbeat.timeoutMs,
      });
    }
  }
  return specs;
}

/** Target ids that must all be OK for a placement of `workload` on `side` to be trusted. */
export function placementTargets(workload: WorkloadConfig, side: "primary" | "standby"): string[] {
  const p = workload[side];
  const ids = [nodeTargetId(p.node), ...p.sensors.map(sensorTargetId)];
  if (workload.appHeartbeat) ids.push(appTargetId(workload.name, p.node));
  return ids;
}
