/**
 * The campaign's vehicle on real components: mosquitto, the real control plane (kube-apiserver,
 * kine/SQLite, controller-manager, scheduler, one kwok per Jetson), the supervisor as its own
 * process under its least-privilege identity, and one simulated Jetson process per node inside its
 * own network namespace, reaching the broker through its own TCP fault proxy (toxiproxy).
 *
 * The world performs the faults' operations and observes: live promotions on the bus, the
 * supervisor's log, and the cluster (fences, epochs, pods).
 *
 * @module
 */
import { pinnedDeployment } from "../harness/workloads.ts";
import { AppsV1Api, CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import type { V1Node } from "@kubernetes/client-node";
import mqtt from "mqtt";
import { stringify } from "yaml";
import { decodePromotion } from "../../lib/wire/wire.ts";
import { ANNOTATIONS } from "../../lib/reconcile/annotations.ts";
import { type ControlPlane, startControlPlane } from "../harness/control_plane.ts";
import { type RunningMosquitto, startMosquitto } from "../harness/mosquitto.ts";
import {
  type LogLine,
  startSupervisor,
  type SupervisorProcess,
} from "../harness/supervisor_process.ts";
import {
  createNodeNamespace,
  type NodeNamespace,
  removeStaleNamespaces,
  runPrefix,
} from "./netns.ts";
import { startToxiproxy, type Toxiproxy } from "./toxiproxy.ts";
import { type NodeProc, startNodeProc, stopNodeProc } from "./node_proc.ts";
import type { ObservedPromotion, OracleWorkload } from "./oracle.ts";

/** Our fence's taint key (the config default). */
export const TAINT_KEY = "sdv-failover.io/unreachable";

/** The campaign vehicle's timing: one period and timeout for every heartbeat and tick. */
export const TIMING = {
  periodMs: 20,
  timeoutMs: 150,
  bootWindowMs: 4000,
  recoveryWindowMs: 300,
  fenceConfirmationMs: 2000,
  drainTimeoutMs: 3000,
} as const;

/** The three simulated Jetsons. */
export const NODES = ["worker-node1", "worker-node2", "worker-node3"] as const;

/** One workload of the campaign's vehicle. */
interface WorkloadSpec {
  name: string;
  asil: string;
  fttiMs: number;
  primary: { node: string; sensors: string[] };
  standby: { node: string; sensors: string[] };
  app: boolean;
}

/**
 * The campaign's workloads: two on worker-node2 with standbys on worker-node3 (as in
 * config/example.yaml), and an instrument cluster on worker-node1 with its standby on worker-node2,
 * so that every node carries an active or a standby and failovers chain across nodes.
 */
export const WORKLOADS: readonly WorkloadSpec[] = [
  {
    name: "lane-detection",
    asil: "B",
    fttiMs: 500,
    primary: { node: "worker-node2", sensors: ["camera-node2"] },
    standby: { node: "worker-node3", sensors: ["camera-node3"] },
    app: true,
  },
  {
    name: "pose-estimation",
    asil: "QM",
    fttiMs: 1000,
    primary: { node: "worker-node2", sensors: ["lidar-node2"] },
    standby: { node: "worker-node3", sensors: ["lidar-node3"] },
    app: false,
  },
  {
    name: "instrument-cluster",
    asil: "B",
    fttiMs: 500,
    primary: { node: "worker-node1", sensors: [] },
    standby: { node: "worker-node2", sensors: [] },
    app: true,
  },
];

/** Sensors per node (cameras are required by their node; lidars only by pose-estimation). */
export const SENSORS: Readonly<Record<string, readonly string[]>> = {
  "worker-node1": ["camera-node1"],
  "worker-node2": ["camera-node2", "lidar-node2"],
  "worker-node3": ["camera-node3", "lidar-node3"],
};

/** The oracle's view of the workloads. */
export function oracleWorkloads(): OracleWorkload[] {
  return WORKLOADS.map((w) => ({
    name: w.name,
    primaryNode: w.primary.node,
    standbyNode: w.standby.node,
    sensorsByNode: { [w.primary.node]: w.primary.sensors, [w.standby.node]: w.standby.sensors },
    fttiMs: w.fttiMs,
  }));
}

const deploymentName = (w: string, side: "primary" | "standby") =>
  `${w}-${side === "primary" ? "original" : "standby"}`;

/** Polls `probe` every 100 ms until it returns a value, at most `timeoutMs`; undefined on timeout. */
export async function poll<T>(
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T | undefined> {
  const end = performance.now() + timeoutMs;
  do {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch { /* retried */ }
    await sleep(100);
  } while (performance.now() < end);
  return undefined;
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wall time in ms with sub-ms resolution, comparable across processes on one host. */
export const wallNowMs = () => performance.timeOrigin + performance.now();

/** Options of {@linkcode CampaignWorld.start}. */
export interface WorldOptions {
  /** Short id of this run (namespaces, nft table). */
  runId: string;
  /** Work directory (config, logs). */
  dir: string;
  /** Progress lines. */
  log: (line: string) => void;
}

/** The running vehicle and its observers. */
export class CampaignWorld {
  readonly cp: ControlPlane;
  broker: RunningMosquitto;
  readonly toxiproxy: Toxiproxy;
  readonly namespaces: Map<string, NodeNamespace>;
  readonly nodes = new Map<string, NodeProc>();
  supervisor!: SupervisorProcess;
  /** Every supervisor's log lines, oldest instance first. */
  readonly supervisorLines: LogLine[][] = [];
  readonly configPath: string;
  readonly prefix = "sdvc";
  readonly namespace = "campaign";
  /** Live promotions seen by the observer, in arrival order. */
  readonly promotions: ObservedPromotion[] = [];
  readonly #admin: { apps: AppsV1Api; core: CoreV1Api };
  readonly #kc: KubeConfig;
  /** Fence history per node from a watch on Nodes: [wall ms, fenced] in order. */
  readonly #fenceHistory = new Map<string, [number, boolean][]>();
  #nodeWatch: AbortController | undefined;
  #stopped = false;
  readonly #proxyPort: number;
  readonly #opts: WorldOptions;
  #observer: mqtt.MqttClient | undefined;

  private constructor(
    opts: WorldOptions,
    parts: {
      cp: ControlPlane;
      broker: RunningMosquitto;
      toxiproxy: Toxiproxy;
      namespaces: Map<string, NodeNamespace>;
      configPath: string;
      proxyPort: number;
    },
  ) {
    this.#opts = opts;
    this.cp = parts.cp;
    this.broker = parts.broker;
    this.toxiproxy = parts.toxiproxy;
    this.namespaces = parts.namespaces;
    this.configPath = parts.configPath;
    this.#proxyPort = parts.proxyPort;
    const kc = new KubeConfig();
    kc.loadFromFile(this.cp.adminKubeconfigPath);
    this.#kc = kc;
    this.#admin = { apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
  }

  /**
   * Starts every component, creates the workloads, starts the nodes and the supervisor.
   * On failure everything started so far is stopped.
   */
  static async start(opts: WorldOptions): Promise<CampaignWorld> {
    const { log, dir, runId } = opts;
    const started: { stop(): Promise<void> }[] = [];
    try {
      await removeStaleNamespaces(runPrefix(runId));
      const [cp, broker, toxiproxy] = await Promise.all([
        startControlPlane({ nodes: [...NODES], log: (l) => log(`cp: ${l}`) }),
        startMosquitto({ workDir: dir, tcpNoDelay: true }),
        startToxiproxy({}),
      ]);
      started.push(cp, broker, toxiproxy);
      const namespaces = new Map<string, NodeNamespace>();
      for (const [i, node] of NODES.entries()) {
        const ns = await createNodeNamespace({ runId, index: i + 1 });
        namespaces.set(node, ns);
        started.push({ stop: () => ns.remove() });
      }
      const proxyPort = 18830;
      for (const [node, ns] of namespaces) {
        await toxiproxy.addProxy(
          node,
          `${ns.hostAddress}:${proxyPort}`,
          `127.0.0.1:${broker.port}`,
        );
      }
      const configPath = `${dir}/campaign.yaml`;
      Deno.writeTextFileSync(configPath, stringify(campaignConfig(broker.url, cp)));
      const world = new CampaignWorld(opts, {
        cp,
        broker,
        toxiproxy,
        namespaces,
        configPath,
        proxyPort,
      });
      await world.#createWorkloads();
      await world.#startObserver();
      await world.#watchNodes();
      await Promise.all(NODES.map((n) => world.startNode(n)));
      await world.startSupervisor();
      // the first fault must not strike before the supervisor heard every target once
      await sleep(1000);
      const notReady = await world.restored(30_000);
      if (notReady) throw new Error(`vehicle not ready: ${notReady}`);
      log(`world ready: broker ${broker.url}, api ${cp.server}`);
      return world;
    } catch (error) {
      for (const s of started.reverse()) await s.stop().catch(() => {});
      throw error;
    }
  }

  /** Starts (or restarts) a node's process and waits until it is connected. */
  async startNode(node: string): Promise<void> {
    const ns = this.namespaces.get(node)!;
    const proc = await startNodeProc({
      node,
      configPath: this.configPath,
      url: `mqtt://${ns.hostAddress}:${this.#proxyPort}`,
      execPrefix: ns.execPrefix(),
    });
    this.nodes.set(node, proc);
  }

  /** SIGKILL of a node's process (a crash: the broker publishes its Last Will). */
  async killNode(node: string): Promise<void> {
    const proc = this.nodes.get(node);
    if (!proc) return;
    proc.signal("SIGKILL");
    await proc.exited;
  }

  /** Starts the supervisor and waits until it is armed. */
  async startSupervisor(): Promise<void> {
    this.supervisor = await startSupervisor(this.configPath);
    this.supervisorLines.push(this.supervisor.lines);
  }

  /** Restarts the broker on the same port after SIGKILL (no persistence: retained state is lost). */
  async restartBroker(downMs: number): Promise<void> {
    await this.broker.kill();
    await sleep(downMs);
    this.broker = await startMosquitto({
      workDir: this.#opts.dir,
      tcpNoDelay: true,
      port: this.broker.port,
    });
  }

  /** Every log line of the current supervisor. */
  get lines(): LogLine[] {
    return this.supervisor.lines;
  }

  /** Live promotions received at or after `wallMs`. */
  promotionsSince(wallMs: number): ObservedPromotion[] {
    return this.promotions.filter((p) => p.receivedAtWallMs >= wallMs);
  }

  /**
   * Nodes that carried our fence taint at any moment from `fromWallMs` until now (from the watch
   * on Nodes: a fence lifted again by a quick recovery still counts).
   */
  fencedSince(fromWallMs: number): Set<string> {
    const out = new Set<string>();
    for (const [node, history] of this.#fenceHistory) {
      let before = false;
      for (const [atMs, fenced] of history) {
        if (atMs <= fromWallMs) before = fenced;
        else if (fenced) out.add(node);
      }
      if (before) out.add(node);
    }
    return out;
  }

  async #watchNodes(): Promise<void> {
    const watch = new Watch(this.#kc);
    const start = async (): Promise<void> => {
      if (this.#stopped) return;
      try {
        this.#nodeWatch = await watch.watch("/api/v1/nodes", {}, (_type, node: V1Node) => {
          const name = node.metadata?.name;
          if (!name) return;
          const fenced = (node.spec?.taints ?? []).some((t) => t.key === TAINT_KEY);
          const history = this.#fenceHistory.get(name) ?? [];
          if (history.at(-1)?.[1] !== fenced) history.push([wallNowMs(), fenced]);
          this.#fenceHistory.set(name, history);
        }, () => {
          if (!this.#stopped) setTimeout(start, 200);
        });
      } catch {
        if (!this.#stopped) setTimeout(start, 200);
      }
    };
    await start();
  }

  /** Nodes that carry our fence taint now. */
  async fencedNodes(): Promise<Set<string>> {
    const nodes = await this.#admin.core.listNode();
    return new Set(
      nodes.items.filter((n) => (n.spec?.taints ?? []).some((t) => t.key === TAINT_KEY))
        .map((n) => n.metadata!.name!),
    );
  }

  /**
   * Whether the cluster carries each workload's epoch and active node: undefined when it does
   * within `timeoutMs`, else the last difference found.
   */
  async converged(
    epochOf: (w: string) => number,
    activeOf: (w: string) => string,
    timeoutMs: number,
  ): Promise<string | undefined> {
    let problem = "not read";
    const ok = await poll(timeoutMs, async () => {
      for (const w of WORKLOADS) {
        const epoch = epochOf(w.name);
        if (epoch === 0) continue;
        for (const side of ["primary", "standby"] as const) {
          const d = await this.#admin.apps.readNamespacedDeployment({
            namespace: this.namespace,
            name: deploymentName(w.name, side),
          });
          const a = d.metadata?.annotations ?? {};
          if (a[ANNOTATIONS.epoch] !== String(epoch)) {
            problem = `${d.metadata?.name}: epoch ${a[ANNOTATIONS.epoch]} ≠ ${epoch}`;
            return undefined;
          }
          if (
            a[ANNOTATIONS.activeNode] !== undefined &&
            a[ANNOTATIONS.activeNode] !== activeOf(w.name)
          ) {
            problem = `${d.metadata?.name}: active-node ${a[ANNOTATIONS.activeNode]} ≠ ${
              activeOf(w.name)
            }`;
            return undefined;
          }
        }
      }
      return true;
    });
    return ok ? undefined : problem;
  }

  /**
   * Whether redundancy is back: every node process running and connected, no node fenced or
   * cordoned, a Running and Ready pod of every Deployment on its node, every target OK in the
   * supervisor's view. Undefined when so within `timeoutMs`, else what is still missing.
   */
  async restored(timeoutMs: number): Promise<string | undefined> {
    let problem = "not checked";
    const ok = await poll(timeoutMs, async () => {
      for (const n of NODES) {
        if (!this.nodes.get(n)?.running) return void (problem = `${n}: process not running`);
      }
      const bad = this.#targetsNotOk();
      if (bad.length) return void (problem = `supervisor: not OK: ${bad.join(", ")}`);
      const resuming = this.#supervisionNotWhole();
      if (resuming) return void (problem = resuming);
      const nodes = await this.#admin.core.listNode();
      for (const n of nodes.items) {
        if (n.spec?.unschedulable) return void (problem = `${n.metadata?.name} cordoned`);
        if ((n.spec?.taints ?? []).some((t) => t.key === TAINT_KEY)) {
          return void (problem = `${n.metadata?.name} fenced`);
        }
      }
      const pods = await this.#admin.core.listNamespacedPod({ namespace: this.namespace });
      for (const w of WORKLOADS) {
        for (const side of ["primary", "standby"] as const) {
          const name = deploymentName(w.name, side);
          const node = w[side].node;
          const ready = pods.items.some((p) =>
            p.metadata?.labels?.app === name && p.spec?.nodeName === node &&
            !p.metadata?.deletionTimestamp && p.status?.phase === "Running" &&
            (p.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True")
          );
          if (!ready) return void (problem = `${name}: no Ready pod on ${node}`);
        }
      }
      return true;
    });
    return ok ? undefined : problem;
  }

  /**
   * Why the current supervisor's supervision is not whole yet: ingest in a fault, or inside the
   * grace that follows an outage longer than 1 s (a fault there is detected at the grace's end at
   * the latest: a second fault during the first one's recovery, see docs/campaign.md).
   */
  #supervisionNotWhole(): string | undefined {
    let fault: LogLine | undefined;
    let restored: LogLine | undefined;
    for (const l of this.supervisor.lines) {
      if (l.event === "ingest-fault") fault = l;
      else if (l.event === "ingest-restored") restored = l;
    }
    if (fault && (!restored || restored.wallMs < fault.wallMs)) {
      return `supervisor: ingest fault (${fault.why})`;
    }
    if (!restored) return undefined;
    const graceEndWallMs = restored.wallMs + Number(restored.graceMs ?? 0);
    const leftMs = graceEndWallMs - wallNowMs();
    return leftMs > 0 ? `supervisor: resume grace, ${leftMs.toFixed(0)} ms left` : undefined;
  }

  /** Targets whose last logged state in the current supervisor is not OK. */
  #targetsNotOk(): string[] {
    const state = new Map<string, string>();
    for (const l of this.supervisor.lines) {
      if (l.event === "expired") state.set(String(l.target), "EXPIRED");
      else if (l.event === "transition") state.set(String(l.target), String(l.to));
    }
    return [...state].filter(([, s]) => s !== "OK").map(([t, s]) => `${t}=${s}`);
  }

  /** Stops everything: supervisor first (so that orderly node stops are not failovers). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#nodeWatch?.abort();
    await this.supervisor?.stop().catch(() => {});
    await Promise.all([...this.nodes.values()].map((p) => stopNodeProc(p).catch(() => {})));
    await this.#observer?.endAsync(true).catch(() => {});
    for (const ns of this.namespaces.values()) await ns.remove().catch(() => {});
    await this.toxiproxy.stop().catch(() => {});
    await this.broker.stop().catch(() => {});
    await this.cp.stop().catch(() => {});
  }

  async #createWorkloads(): Promise<void> {
    const { core, apps } = this.#admin;
    await core.createNamespace({ body: { metadata: { name: this.namespace } } });
    for (const w of WORKLOADS) {
      for (const side of ["primary", "standby"] as const) {
        await apps.createNamespacedDeployment({
          namespace: this.namespace,
          body: pinnedDeployment(deploymentName(w.name, side), w[side].node),
        });
      }
    }
  }

  async #startObserver(): Promise<void> {
    const client = mqtt.connect(this.broker.url, {
      clientId: "campaign-observer",
      reconnectPeriod: 200,
      clean: true,
    });
    this.#observer = client;
    client.on("error", () => {});
    client.on("connect", () => {
      client.subscribe(`${this.prefix}/workload/+/promotion`, { qos: 1 });
    });
    client.on("message", (_topic, payload, packet) => {
      const receivedAtWallMs = wallNowMs();
      if (packet.retain) return; // a replay of the current state, not a promotion
      const p = decodePromotion(payload);
      if (!p) return;
      this.promotions.push({
        workload: p.workload,
        epoch: p.epoch,
        activeNode: p.activeNode,
        reason: p.reason,
        receivedAtWallMs,
      });
    });
    await new Promise<void>((resolve) => client.once("connect", () => resolve()));
  }
}

/** The campaign's config (see {@linkcode TIMING}, {@linkcode WORKLOADS}). */
function campaignConfig(url: string, cp: ControlPlane) {
  const { periodMs, timeoutMs } = TIMING;
  return {
    supervisor: {
      id: "campaign",
      bootWindowMs: TIMING.bootWindowMs,
      recoveryWindowMs: TIMING.recoveryWindowMs,
      fenceConfirmationMs: TIMING.fenceConfirmationMs,
    },
    mqtt: { url, topicPrefix: "sdvc", keepaliveS: 5, reconnectPeriodMs: 200 },
    cluster: { kubeconfig: cp.runtimeKubeconfigPath, requestTimeoutMs: 2000, retries: 3 },
    nodes: NODES.map((name) => ({
      name,
      heartbeatPeriodMs: periodMs,
      heartbeatTimeoutMs: timeoutMs,
      requiredSensors: SENSORS[name].filter((s) => s.startsWith("camera")),
    })),
    sensors: Object.entries(SENSORS).flatMap(([node, sensors]) =>
      sensors.map((name) => ({ name, node, periodMs, timeoutMs }))
    ),
    workloads: WORKLOADS.map((w) => ({
      name: w.name,
      namespace: "campaign",
      asil: w.asil,
      fttiMs: w.fttiMs,
      primary: {
        deployment: deploymentName(w.name, "primary"),
        node: w.primary.node,
        sensors: w.primary.sensors,
      },
      standby: {
        deployment: deploymentName(w.name, "standby"),
        node: w.standby.node,
        sensors: w.standby.sensors,
      },
      ...(w.app ? { appHeartbeat: { periodMs, timeoutMs } } : {}),
    })),
  };
}
