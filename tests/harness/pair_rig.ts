/**
 * The supervisor pair's rig on real components, shared by `tests/pair_test.ts` and the pair
 * benchmark (`bench/pair.ts`): the vehicle (three nodes, three workloads) with `supervisor.pair`,
 * its Deployments on the real control plane, an MQTT watcher of promotions, and readers of the
 * supervisors' JSON logs (leadership periods, event wall times).
 *
 * @module
 */
import { AppsV1Api, CoordinationV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import mqtt from "mqtt";
import { decodePromotion, type Promotion } from "../../lib/wire/wire.ts";
import type { LogLine } from "./supervisor_process.ts";
import { pinnedDeployment } from "./workloads.ts";
import { sleep, until } from "./until.ts";

/** The simulated Jetsons. */
export const NODES = ["worker-node1", "worker-node2", "worker-node3"];
/** The workloads of worker-node2 (primary) and worker-node3 (standby). */
export const WORKLOADS = ["lane-detection", "pose-estimation"] as const;
/** A workload of worker-node1 (primary) and worker-node3 (standby), for the partition step. */
export const PLANNER = "path-planning";
/** The pair's instance ids (`supervisor.pair.ids`). */
export const IDS = ["sup-a", "sup-b"] as const;
/** Namespace of the workloads' Deployments. */
export const NS = "pair";
/** `mqtt.topicPrefix` of the pair's config. */
export const PREFIX = "sdv-pair";
/** Heartbeat period of every node, sensor and app, ms. */
export const PERIOD_MS = 20;
/** As in the acceptance test: 7.5 periods, the 2-core machine also runs the control plane. */
export const TIMEOUT_MS = 150;

/** Resolves after `ms` milliseconds. */
export { sleep, until } from "./until.ts";

/** Wall-clock ms (time origin + monotonic): comparable with the logs' `wallMs`. */
export const wallNow = () => performance.timeOrigin + performance.now();

/** API clients of a kubeconfig (the harness' admin one: setup and assertions). */
export function adminClients(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return {
    apps: kc.makeApiClient(AppsV1Api),
    core: kc.makeApiClient(CoreV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}
/** What {@linkcode adminClients} returns. */
export type Admin = ReturnType<typeof adminClients>;

/** The Lease timing of `supervisor.pair`, ms. */
export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** Options of {@linkcode pairConfig}. */
export interface PairConfigOptions {
  /** The Lease timing; default: none given (the schema's defaults apply). */
  timing?: LeaseTiming;
  /** `supervisor.bootWindowMs`, default 3000. */
  bootWindowMs?: number;
}

/**
 * The pair's config (raw, before the schema's defaults): the acceptance test's vehicle with
 * `supervisor.pair` (ids {@linkcode IDS}), nodes, sensors and app heartbeats at
 * {@linkcode PERIOD_MS} / {@linkcode TIMEOUT_MS}, three workloads ({@linkcode WORKLOADS} on
 * worker-node2 → worker-node3, {@linkcode PLANNER} on worker-node1 → worker-node3).
 */
export function pairConfig(brokerUrl: string, kubeconfig: string, opts: PairConfigOptions = {}) {
  return {
    supervisor: {
      id: IDS[0],
      bootWindowMs: opts.bootWindowMs ?? 3000,
      recoveryWindowMs: 300,
      // without opts.timing the defaults of the Lease timing: what ships is what is measured
      pair: { ids: [...IDS], ...opts.timing },
    },
    mqtt: { url: brokerUrl, topicPrefix: PREFIX, keepaliveS: 5 },
    cluster: { kubeconfig, requestTimeoutMs: 2000, retries: 3 },
    nodes: NODES.map((name, i) => ({
      name,
      heartbeatPeriodMs: PERIOD_MS,
      heartbeatTimeoutMs: TIMEOUT_MS,
      requiredSensors: [`camera-node${i + 1}`],
    })),
    sensors: [
      ...NODES.map((node, i) => ({
        name: `camera-node${i + 1}`,
        node,
        periodMs: PERIOD_MS,
        timeoutMs: TIMEOUT_MS,
      })),
      { name: "lidar-node2", node: "worker-node2", periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
      { name: "lidar-node3", node: "worker-node3", periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
    ],
    workloads: [
      {
        name: "lane-detection",
        namespace: NS,
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
        appHeartbeat: { periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
      },
      {
        name: "pose-estimation",
        namespace: NS,
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
      {
        name: PLANNER,
        namespace: NS,
        asil: "B",
        fttiMs: 500,
        primary: {
          deployment: `${PLANNER}-original`,
          node: "worker-node1",
          sensors: ["camera-node1"],
        },
        standby: {
          deployment: `${PLANNER}-standby`,
          node: "worker-node3",
          sensors: ["camera-node3"],
        },
      },
    ],
  };
}

/** Deployment → node of every workload instance. */
export const PLACEMENTS: [string, string][] = [
  ...WORKLOADS.flatMap((w): [string, string][] => [
    [`${w}-original`, "worker-node2"],
    [`${w}-standby`, "worker-node3"],
  ]),
  [`${PLANNER}-original`, "worker-node1"],
  [`${PLANNER}-standby`, "worker-node3"],
];

/** Creates the namespace and the Deployments; waits until each has a Running pod on its node. */
export async function setupWorkloads(admin: Admin) {
  await admin.core.createNamespace({ body: { metadata: { name: NS } } });
  for (const [name, node] of PLACEMENTS) {
    await admin.apps.createNamespacedDeployment({
      namespace: NS,
      body: pinnedDeployment(name, node),
    });
  }
  await until(`pods Running in ${NS}`, 60_000, async () => {
    const pods = await admin.core.listNamespacedPod({ namespace: NS });
    const running = pods.items.filter((p) =>
      p.status?.phase === "Running" && !p.metadata?.deletionTimestamp
    );
    const placed = (app: string, node: string) =>
      running.some((p) => p.metadata?.labels?.app === app && p.spec?.nodeName === node);
    return PLACEMENTS.every(([name, node]) => placed(name, node)) ? true : undefined;
  });
}

/** A promotion the watcher received, with its receipt wall time. */
export type ReceivedPromotion = { promotion: Promotion; wallMs: number; retained: boolean };

/** Subscribes to every promotion of the prefix; records the receipt wall time. */
export async function promotionWatcher(url: string) {
  const received: ReceivedPromotion[] = [];
  const client = mqtt.connect(url, { clientId: "pair-watch", reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  client.on("message", (_t, payload, packet) => {
    const wallMs = wallNow();
    const promotion = decodePromotion(payload);
    if (promotion) received.push({ promotion, wallMs, retained: packet.retain });
  });
  await client.subscribeAsync(`${PREFIX}/workload/+/promotion`, { qos: 1 });
  return { received, close: () => client.endAsync() };
}

/** Wall time of a log line's event (the line is written after acting: `atMs` is monotonic). */
export const wallOf = (l: LogLine, atMs = l.tMs) => l.wallMs - (l.tMs - atMs);

/**
 * Leadership periods of one process from its log: `leader-elected` → `leader-stepped-down`, or
 * → `endWallMs` (the process was killed) when still open.
 */
export function leadershipPeriods(lines: LogLine[], endWallMs: number) {
  const periods: { from: number; to: number; term: number }[] = [];
  let open: { from: number; term: number } | undefined;
  for (const l of lines) {
    if (l.event === "leader-elected") open = { from: l.wallMs, term: Number(l.term) };
    if (l.event === "leader-stepped-down" && open) {
      periods.push({ ...open, to: l.wallMs });
      open = undefined;
    }
  }
  if (open) periods.push({ ...open, to: endWallMs });
  return periods;
}
