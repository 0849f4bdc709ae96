/**
 * The campaign's vehicle on real components: mosquitto, the real control plane (kube-apiserver,
 * kine/SQLite, controller-manager, scheduler, one kwok per Jetson), the supervisor as its own
 * process under its least-privilege identity, and one simulated Jetson process per node inside its
 * own network namespace, reaching the broker through its own TCP fault proxy (toxiproxy). In pair
 * mode ({@linkcode WorldOptions.pair}) two brokers and two supervisors (`supervisor.pair`).
 *
 * The world performs the faults' operations and observes: live promotions on the bus, the
 * supervisor's log, and the cluster (fences, epochs, pods).
 *
 * @module
 */
import { pinnedDeployment } from "../harness/workloads.ts";
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  Watch,
} from "@kubernetes/client-node";
import type { V1Node } from "@kubernetes/client-node";
import mqtt from "mqtt";
import { stringify } from "yaml";
import { decodePromotion } from "../../lib/wire/wire.ts";
import { PairSchema } from "../../lib/config/schema.ts";
import { type PairTiming, takeoverBoundMs } from "../../lib/config/budget.ts";
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
import type { ObservedPromotion, OracleWorkload, PairObservation } from "./oracle.ts";
import { createPortCut, type PortCut } from "./port_cut.ts";
import {
  brokersConnectedByLog,
  expiriesSince,
  ingestFaultsSince,
  leadershipPeriods,
  leadsByLog,
  promotionsSent,
} from "./supervisor_log.ts";

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
  /**
   * Pair mode: two brokers (`mqtt.url` and `mqtt.pairUrl`; every node reaches each through a
   * fault proxy of its own) and two supervisors (`supervisor.pair`, {@linkcode PAIR_IDS}), each its
   * own process reaching each broker through a proxy of its own (so that its paths to the bus can
   * be cut, see `port_cut.ts`), both reaching the API server directly. Default false.
   */
  pair?: boolean;
}

/** The pair mode's supervisor ids (`supervisor.pair.ids`; side A is broker 0, side B broker 1). */
export const PAIR_IDS = ["sup-a", "sup-b"] as const;

/** The pair's Lease timing: the config defaults (what ships is what is exercised), ms. */
export const PAIR_TIMING: Readonly<PairTiming> = (() => {
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = PairSchema.parse({
    ids: [...PAIR_IDS],
  });
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
})();

/**
 * The takeover bound, ms (as in tests/pair_test.ts): `takeoverBoundMs` of `lib/config/budget.ts`
 * (lease duration + retry period + renew deadline after the leader's last renew) plus one more
 * retry period and renew deadline for a late timer on this loaded machine. A node fault during a
 * takeover is decided when the survivor leads: its budget is the FTTI plus this
 * (docs/redundancy.md).
 */
export const TAKEOVER_BOUND_MS = takeoverBoundMs(PAIR_TIMING) + PAIR_TIMING.retryPeriodMs +
  PAIR_TIMING.renewDeadlineMs;

/**
 * Pair mode: niceness of the simulated nodes and of the fault proxy. They are other machines in a
 * vehicle; the pair mode doubles the traffic on this one host (every client publishes to both
 * brokers, each supervisor reads both) and runs two supervisors, and a first run on the shared
 * 2-core machine had whole-vehicle silences of 150–175 ms while supervisors started: the rig
 * starved its own simulated nodes (as in the soak, docs/campaign.md). Supervisors, brokers and the
 * control plane stay at 0.
 */
export const PAIR_VEHICLE_NICE = -10;

/**
 * Sets the niceness of every thread of `pids` (Linux: a niceness is per thread, and `renice -p`
 * of a pid reaches its main thread only; toxiproxy's Go runtime and Deno's helpers run more; new
 * threads inherit it from their creator). @throws Error when `renice` fails.
 */
async function renice(pids: readonly number[], nice: number): Promise<void> {
  const tids: string[] = [];
  for (const pid of pids) {
    try {
      for (const task of Deno.readDirSync(`/proc/${pid}/task`)) tids.push(task.name);
    } catch {
      tids.push(String(pid)); // no procfs: the main thread
    }
  }
  const out = await new Deno.Command("renice", {
    args: ["-n", String(nice), "-p", ...tids],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`renice: ${new TextDecoder().decode(out.stderr)}`);
}

/** The Lease of the pair (the config defaults). */
const LEASE = { name: "sdv-failover", namespace: "kube-system" } as const;

/** One supervisor process of the run (a restart is a new instance). */
export interface SupervisorInstance {
  /** Its `supervisor.id` (`run --id`). */
  id: string;
  /** `id#n`: the n-th process run with this id. */
  label: string;
  /** The process. */
  proc: SupervisorProcess;
  /** When the campaign SIGKILLed it, wall ms. */
  killedAtWallMs?: number;
  /** True until it was killed or stopped. */
  alive: boolean;
}

/** The running vehicle and its observers. */
export class CampaignWorld {
  readonly cp: ControlPlane;
  /** The brokers: one, or the pair (`mqtt.url`, `mqtt.pairUrl`). */
  readonly brokers: RunningMosquitto[];
  readonly toxiproxy: Toxiproxy;
  readonly namespaces: Map<string, NodeNamespace>;
  readonly nodes = new Map<string, NodeProc>();
  /** Every node process of the run, restarts included (their stall reports). */
  readonly #allNodeProcs: NodeProc[] = [];
  /** Every supervisor process of the run, oldest first. */
  readonly instances: SupervisorInstance[] = [];
  /** Every supervisor's log lines, oldest instance first. */
  readonly supervisorLines: LogLine[][] = [];
  readonly configPath: string;
  readonly prefix = "sdvc";
  readonly namespace = "campaign";
  /** Pair mode (see {@linkcode WorldOptions.pair}). */
  readonly pair: boolean;
  /** Live promotions seen by the observer, in arrival order. */
  readonly promotions: ObservedPromotion[] = [];
  readonly #admin: { apps: AppsV1Api; core: CoreV1Api; coordination: CoordinationV1Api };
  readonly #kc: KubeConfig;
  /** Fence history per node from a watch on Nodes: [wall ms, fenced] in order. */
  readonly #fenceHistory = new Map<string, [number, boolean][]>();
  #nodeWatch: AbortController | undefined;
  #stopped = false;
  readonly #proxyPort: number;
  readonly #opts: WorldOptions;
  readonly #observers: mqtt.MqttClient[] = [];
  /** Pair: each supervisor's proxy port per broker, `${id}@${broker index}` → port. */
  readonly #supervisorPorts = new Map<string, number>();
  /** Pair: the nft port cuts of the supervisors' paths. */
  #portCut: PortCut | undefined;
  /** Brokers killed and not restarted yet (by index). */
  readonly #brokerDown = new Set<number>();

  private constructor(
    opts: WorldOptions,
    parts: {
      cp: ControlPlane;
      brokers: RunningMosquitto[];
      toxiproxy: Toxiproxy;
      namespaces: Map<string, NodeNamespace>;
      configPath: string;
      proxyPort: number;
    },
  ) {
    this.#opts = opts;
    this.pair = opts.pair === true;
    this.cp = parts.cp;
    this.brokers = parts.brokers;
    this.toxiproxy = parts.toxiproxy;
    this.namespaces = parts.namespaces;
    this.configPath = parts.configPath;
    this.#proxyPort = parts.proxyPort;
    const kc = new KubeConfig();
    kc.loadFromFile(this.cp.adminKubeconfigPath);
    this.#kc = kc;
    this.#admin = {
      apps: kc.makeApiClient(AppsV1Api),
      core: kc.makeApiClient(CoreV1Api),
      coordination: kc.makeApiClient(CoordinationV1Api),
    };
  }

  /** The (first) broker. */
  get broker(): RunningMosquitto {
    return this.brokers[0];
  }

  /**
   * Starts every component, creates the workloads, starts the nodes and the supervisor(s).
   * On failure everything started so far is stopped.
   */
  static async start(opts: WorldOptions): Promise<CampaignWorld> {
    const { log, dir, runId } = opts;
    const pair = opts.pair === true;
    const started: { stop(): Promise<void> }[] = [];
    try {
      await removeStaleNamespaces(runPrefix(runId));
      if (pair) Deno.mkdirSync(`${dir}/broker-b`, { recursive: true });
      const [cp, toxiproxy, ...brokers] = await Promise.all([
        startControlPlane({ nodes: [...NODES], log: (l) => log(`cp: ${l}`) }),
        startToxiproxy({}),
        startMosquitto({ workDir: dir, tcpNoDelay: true }),
        ...(pair ? [startMosquitto({ workDir: `${dir}/broker-b`, tcpNoDelay: true })] : []),
      ]);
      started.push(cp, toxiproxy, ...brokers);
      const namespaces = new Map<string, NodeNamespace>();
      for (const [i, node] of NODES.entries()) {
        const ns = await createNodeNamespace({ runId, index: i + 1 });
        namespaces.set(node, ns);
        started.push({ stop: () => ns.remove() });
      }
      const proxyPort = 18830;
      for (const [node, ns] of namespaces) {
        for (const [b, broker] of brokers.entries()) {
          await toxiproxy.addProxy(
            nodeProxyName(node, b),
            `${ns.hostAddress}:${proxyPort + b}`,
            `127.0.0.1:${broker.port}`,
          );
        }
      }
      const configPath = `${dir}/campaign.yaml`;
      Deno.writeTextFileSync(
        configPath,
        stringify(campaignConfig(brokers.map((b) => b.url), cp, pair)),
      );
      const world = new CampaignWorld(opts, {
        cp,
        brokers,
        toxiproxy,
        namespaces,
        configPath,
        proxyPort,
      });
      if (pair) {
        await renice([toxiproxy.pid], PAIR_VEHICLE_NICE);
        const cut = await createPortCut(runId);
        world.#portCut = cut;
        started.push({ stop: () => cut.remove() });
        for (const id of PAIR_IDS) {
          const urls: string[] = [];
          for (const [b, broker] of brokers.entries()) {
            const listen = await toxiproxy.addProxy(
              `${id}@${b}`,
              "127.0.0.1:0",
              `127.0.0.1:${broker.port}`,
            );
            world.#supervisorPorts.set(`${id}@${b}`, Number(listen.split(":").at(-1)));
            urls.push(`mqtt://${listen}`);
          }
          Deno.writeTextFileSync(
            world.#supervisorConfigPath(id),
            stringify(campaignConfig(urls, cp, pair)),
          );
        }
      }
      await world.#createWorkloads();
      await world.#startObservers();
      await world.#watchNodes();
      await Promise.all(NODES.map((n) => world.startNode(n)));
      if (pair) {
        // sup-a first: it leads at the start, sup-b is the warm standby
        await world.startSupervisor(PAIR_IDS[0]);
        await world.startSupervisor(PAIR_IDS[1]);
      } else {
        await world.startSupervisor();
      }
      // the first fault must not strike before the supervisor heard every target once
      await sleep(1000);
      const notReady = await world.restored(30_000);
      if (notReady) throw new Error(`vehicle not ready: ${notReady}`);
      log(
        `world ready: broker${pair ? "s" : ""} ${
          brokers.map((b) => b.url).join(", ")
        }, api ${cp.server}${
          pair ? `, supervisors ${PAIR_IDS.join(", ")} (leader ${world.leaderId()})` : ""
        }`,
      );
      return world;
    } catch (error) {
      for (const s of started.reverse()) await s.stop().catch(() => {});
      throw error;
    }
  }

  #supervisorConfigPath(id: string): string {
    return `${this.#opts.dir}/campaign-${id}.yaml`;
  }

  /** Starts (or restarts) a node's process and waits until it is connected. */
  async startNode(node: string): Promise<void> {
    const ns = this.namespaces.get(node)!;
    const proc = await startNodeProc({
      node,
      configPath: this.configPath,
      url: `mqtt://${ns.hostAddress}:${this.#proxyPort}`,
      ...(this.pair ? { pairUrl: `mqtt://${ns.hostAddress}:${this.#proxyPort + 1}` } : {}),
      execPrefix: ns.execPrefix(),
    });
    this.nodes.set(node, proc);
    this.#allNodeProcs.push(proc);
    if (this.pair) await renice([proc.pid], PAIR_VEHICLE_NICE);
  }

  /** SIGKILL of a node's process (a crash: the broker publishes its Last Will). */
  async killNode(node: string): Promise<void> {
    const proc = this.nodes.get(node);
    if (!proc) return;
    proc.signal("SIGKILL");
    await proc.exited;
  }

  /** Sets latency ± jitter on the node's path(s) to the broker(s). */
  async setNodeLatency(node: string, latencyMs: number, jitterMs: number): Promise<void> {
    for (let b = 0; b < this.brokers.length; b++) {
      await this.toxiproxy.setLatency(nodeProxyName(node, b), latencyMs, jitterMs);
    }
  }

  /** Removes the toxics of the node's path(s). */
  async clearNodeToxics(node: string): Promise<void> {
    for (let b = 0; b < this.brokers.length; b++) {
      await this.toxiproxy.clearToxics(nodeProxyName(node, b));
    }
  }

  /**
   * Starts a supervisor and waits until it is armed. Pair mode: `id` is one of
   * {@linkcode PAIR_IDS} (`run --id`), with its own config (its own proxies to the brokers).
   */
  async startSupervisor(id?: string): Promise<SupervisorInstance> {
    const proc = this.pair
      ? await startSupervisor(this.#supervisorConfigPath(id!), { id })
      : await startSupervisor(this.configPath);
    const sid = id ?? "campaign";
    const n = this.instances.filter((i) => i.id === sid).length + 1;
    const instance: SupervisorInstance = { id: sid, label: `${sid}#${n}`, proc, alive: true };
    this.instances.push(instance);
    this.supervisorLines.push(proc.lines);
    return instance;
  }

  /** The live instance of `id` (pair), or the single supervisor. */
  instance(id?: string): SupervisorInstance | undefined {
    return this.instances.findLast((i) => i.alive && (id === undefined || i.id === id));
  }

  /** Live supervisor instances. */
  get liveInstances(): SupervisorInstance[] {
    return this.instances.filter((i) => i.alive);
  }

  /** The single mode's supervisor (pair mode: the newest live instance). */
  get supervisor(): SupervisorProcess {
    return (this.instance() ?? this.instances.at(-1)!).proc;
  }

  /** SIGKILL of a supervisor (pair: of `id`; no-op when not running); records when. */
  async killSupervisor(id?: string): Promise<void> {
    const instance = this.instance(id);
    if (!instance) return;
    instance.killedAtWallMs = wallNowMs();
    instance.alive = false;
    await instance.proc.kill();
  }

  /**
   * Pair: the id leading now by the live processes' logs (their last leadership line is
   * `leader-elected`); undefined when none or more than one does.
   */
  leaderId(): string | undefined {
    const leading = this.liveInstances.filter((i) => leadsByLog(i.proc.lines));
    return leading.length === 1 ? leading[0].id : undefined;
  }

  /**
   * Pair: the id of the process that logged the latest `leader-elected` (a leader's short
   * step-downs on a slow renew do not hide it); undefined before any.
   */
  lastElectedId(): string | undefined {
    let best: { id: string; wallMs: number } | undefined;
    for (const i of this.instances) {
      const l = i.proc.lines.findLast((x) => x.event === "leader-elected");
      if (l && (!best || l.wallMs > best.wallMs)) best = { id: i.id, wallMs: l.wallMs };
    }
    return best?.id;
  }

  /** Pair: the id of the live instance that is not leading (undefined: none, or no leader). */
  standbyId(): string | undefined {
    const leader = this.leaderId();
    if (leader === undefined) return undefined;
    return this.liveInstances.find((i) => i.id !== leader)?.id;
  }

  /** Pair: the Lease's holder identity (`<id>/<nonce>`), or undefined without one. */
  async leaseHolder(): Promise<string | undefined> {
    const lease = await this.#admin.coordination.readNamespacedLease(LEASE);
    return lease.spec?.holderIdentity || undefined;
  }

  /** Pair: cuts a supervisor's path to both brokers (it still reaches the API server). */
  cutSupervisorBus(id: string): Promise<void> {
    return this.#portCut!.cut(
      this.brokers.map((_, b) => this.#supervisorPorts.get(`${id}@${b}`)!),
    );
  }

  /** Pair: cuts the two sides from each other: sup-a keeps broker A only, sup-b broker B only. */
  cutSides(): Promise<void> {
    return this.#portCut!.cut([
      this.#supervisorPorts.get(`${PAIR_IDS[0]}@1`)!,
      this.#supervisorPorts.get(`${PAIR_IDS[1]}@0`)!,
    ]);
  }

  /** Pair: packets the cuts of supervisor paths dropped so far. */
  droppedPackets(): Promise<number> {
    return this.#portCut?.droppedPackets() ?? Promise.resolve(0);
  }

  /** Pair: heals every cut supervisor path. */
  async healSupervisorPaths(): Promise<void> {
    await this.#portCut?.healAll();
  }

  /** SIGKILL of broker `index` (a crash: no Last Will is published, retained state is lost). */
  async killBroker(index: number): Promise<void> {
    this.#brokerDown.add(index);
    await this.brokers[index].kill();
  }

  /** Starts broker `index` again on its port (empty: no persistence). */
  async startBroker(index: number): Promise<void> {
    const old = this.brokers[index];
    await old.stop().catch(() => {});
    this.brokers[index] = await startMosquitto({
      workDir: index === 0 ? this.#opts.dir : `${this.#opts.dir}/broker-b`,
      tcpNoDelay: true,
      port: old.port,
    });
    this.#brokerDown.delete(index);
  }

  /** Restarts the broker on the same port after SIGKILL (no persistence: retained state is lost). */
  async restartBroker(downMs: number, index = 0): Promise<void> {
    await this.killBroker(index);
    await sleep(downMs);
    await this.startBroker(index);
  }

  /** Brokers killed and not started again (by index). */
  get brokersDown(): ReadonlySet<number> {
    return this.#brokerDown;
  }

  /** Every log line of the current supervisor (pair mode: of the newest live instance). */
  get lines(): LogLine[] {
    return this.supervisor.lines;
  }

  /** The log lines of every supervisor process, with its label (for the pair's checks). */
  allLines(): { label: string; lines: LogLine[] }[] {
    return this.instances.map((i) => ({ label: i.label, lines: i.proc.lines }));
  }

  /**
   * Pair: what the oracle reads from both processes' logs: every leadership period so far,
   * expiries and ingest faults since `sinceWallMs`, every decided promotion.
   */
  pairObservation(
    sinceWallMs: number,
    leaderBefore: string | undefined,
    leaderAfter: string | undefined,
  ): Omit<PairObservation, "takeoverMs"> {
    const now = wallNowMs();
    return {
      leaderAfter,
      leadership: this.instances.flatMap((i) =>
        leadershipPeriods(i.proc.lines, { supervisor: i.label, id: i.id }, i.killedAtWallMs ?? now)
      ),
      leaderBefore,
      expiries: this.instances.flatMap((i) => expiriesSince(i.proc.lines, i.label, sinceWallMs)),
      ingestFaults: this.instances.flatMap((i) =>
        ingestFaultsSince(i.proc.lines, i.label, sinceWallMs)
      ),
      promotionsSent: this.instances.flatMap((i) => promotionsSent(i.proc.lines, i.label)),
      nodeStalls: this.#allNodeProcs.flatMap((p) =>
        p.stalls.filter((s) => s.endWallMs >= sinceWallMs - 1000).map((s) => ({
          node: p.node,
          fromWallMs: s.endWallMs - s.gapMs,
          toWallMs: s.endWallMs,
        }))
      ),
    };
  }

  /** Stalls of simulated node processes of at least `minGapMs` that ended at or after `wallMs`. */
  nodeStallsSince(
    wallMs: number,
    minGapMs: number,
  ): { node: string; endWallMs: number; gapMs: number }[] {
    return this.#allNodeProcs.flatMap((p) =>
      p.stalls.filter((s) => s.endWallMs >= wallMs && s.gapMs >= minGapMs).map((s) => ({
        node: p.node,
        ...s,
      }))
    );
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

  /**
   * Lifts our fence (taint, cordon, our annotations; `unfenced-at` now) from `nodes` as an
   * operator would (a repair after a finding, never part of a fault). Retried on a conflict.
   */
  async operatorUnfence(nodes: Iterable<string>): Promise<void> {
    for (const name of nodes) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const node = await this.#admin.core.readNode({ name });
        node.spec ??= {};
        node.spec.unschedulable = false;
        node.spec.taints = (node.spec.taints ?? []).filter((t) => t.key !== TAINT_KEY);
        const annotations = { ...node.metadata?.annotations };
        delete annotations[ANNOTATIONS.cordonedBy];
        delete annotations[ANNOTATIONS.fenceReason];
        annotations[ANNOTATIONS.unfencedAt] = new Date().toISOString();
        node.metadata = { ...node.metadata, annotations };
        try {
          await this.#admin.core.replaceNode({ name, body: node });
          break;
        } catch (error) {
          if (attempt === 4) throw error;
          await sleep(100);
        }
      }
    }
  }

  /** Nodes that carry our fence taint or are cordoned now. */
  async fencedOrCordonedNodes(): Promise<Set<string>> {
    const nodes = await this.#admin.core.listNode();
    return new Set(
      nodes.items.filter((n) =>
        n.spec?.unschedulable || (n.spec?.taints ?? []).some((t) => t.key === TAINT_KEY)
      ).map((n) => n.metadata!.name!),
    );
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
   * supervisor's view. Pair mode also: every node and both supervisors connected to both brokers
   * (the supervisors' last `broker-up` says 2), both supervisors' supervision whole and every
   * target OK in both (the standby is warm), and exactly one leader by the logs, the one the Lease
   * names. Undefined when so within `timeoutMs`, else what is still missing.
   */
  async restored(timeoutMs: number): Promise<string | undefined> {
    let problem = "not checked";
    const ok = await poll(timeoutMs, async () => {
      for (const n of NODES) {
        const proc = this.nodes.get(n);
        if (!proc?.running) return void (problem = `${n}: process not running`);
        if (this.pair && proc.brokersConnected !== 2) {
          return void (problem = `${n}: connected to ${proc.brokersConnected} broker(s)`);
        }
      }
      const supervisors = this.pair
        ? PAIR_IDS.map((id) => this.instance(id))
        : [this.instance() ?? this.instances.at(-1)];
      for (const [k, instance] of supervisors.entries()) {
        if (!instance?.alive) return void (problem = `${PAIR_IDS[k]}: not running`);
        const name = this.pair ? instance.label : "supervisor";
        const bad = targetsNotOk(instance.proc.lines);
        if (bad.length) return void (problem = `${name}: not OK: ${bad.join(", ")}`);
        const resuming = supervisionNotWhole(instance.proc.lines);
        if (resuming) return void (problem = `${name}: ${resuming}`);
        if (this.pair) {
          const connected = brokersConnectedByLog(instance.proc.lines);
          if (connected !== 2) {
            return void (problem = `${name}: connected to ${connected} broker(s)`);
          }
        }
      }
      if (this.pair) {
        const leading = this.liveInstances.filter((i) => leadsByLog(i.proc.lines));
        if (leading.length !== 1) {
          return void (problem = `${leading.length} leaders: ${leading.map((i) => i.label)}`);
        }
        const holder = await this.leaseHolder();
        const elected = leading[0].proc.lines.findLast((l) => l.event === "leader-elected");
        if (holder !== elected?.identity) {
          return void (problem = `Lease held by ${holder}, ${
            leading[0].label
          } leads as ${elected?.identity}`);
        }
      }
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

  /** Stops everything: supervisors first (so that orderly node stops are not failovers). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#nodeWatch?.abort();
    for (const i of this.liveInstances) {
      i.alive = false;
      await i.proc.stop().catch(() => {});
    }
    await Promise.all([...this.nodes.values()].map((p) => stopNodeProc(p).catch(() => {})));
    for (const o of this.#observers) await o.endAsync(true).catch(() => {});
    await this.#portCut?.remove().catch(() => {});
    for (const ns of this.namespaces.values()) await ns.remove().catch(() => {});
    await this.toxiproxy.stop().catch(() => {});
    for (const b of this.brokers) await b.stop().catch(() => {});
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

  /**
   * The observer: subscribes to every live promotion on each broker (pair mode: on both, directly,
   * not through a fault proxy; the first copy of a promotion is recorded, the other broker's copy
   * is the same workload, epoch and active node and is dropped).
   */
  async #startObservers(): Promise<void> {
    const seen = new Set<string>();
    await Promise.all(this.brokers.map((broker, b) => {
      const client = mqtt.connect(broker.url, {
        clientId: `campaign-observer${b === 0 ? "" : `-${b}`}`,
        reconnectPeriod: 200,
        clean: true,
      });
      this.#observers.push(client);
      client.on("error", () => {});
      client.on("connect", () => {
        client.subscribe(`${this.prefix}/workload/+/promotion`, { qos: 1 });
      });
      client.on("message", (_topic, payload, packet) => {
        const receivedAtWallMs = wallNowMs();
        if (packet.retain) return; // a replay of the current state, not a promotion
        const p = decodePromotion(payload);
        if (!p) return;
        if (this.pair) {
          const key = `${p.workload}@${p.epoch}@${p.activeNode}`;
          if (seen.has(key)) return;
          seen.add(key);
        }
        this.promotions.push({
          workload: p.workload,
          epoch: p.epoch,
          activeNode: p.activeNode,
          reason: p.reason,
          receivedAtWallMs,
        });
      });
      return new Promise<void>((resolve) => client.once("connect", () => resolve()));
    }));
  }
}

/** The toxiproxy proxy of `node`'s path to broker `index`. */
function nodeProxyName(node: string, index: number): string {
  return index === 0 ? node : `${node}-b${index}`;
}

/**
 * Why a supervisor's supervision is not whole yet: ingest in a fault, or inside the grace that
 * follows an outage longer than 1 s (a fault there is detected at the grace's end at the latest: a
 * second fault during the first one's recovery, see docs/campaign.md).
 */
function supervisionNotWhole(lines: readonly LogLine[]): string | undefined {
  let fault: LogLine | undefined;
  let restored: LogLine | undefined;
  for (const l of lines) {
    if (l.event === "ingest-fault") fault = l;
    else if (l.event === "ingest-restored") restored = l;
  }
  if (fault && (!restored || restored.wallMs < fault.wallMs)) {
    return `ingest fault (${fault.why})`;
  }
  if (!restored) return undefined;
  const graceEndWallMs = restored.wallMs + Number(restored.graceMs ?? 0);
  const leftMs = graceEndWallMs - wallNowMs();
  return leftMs > 0 ? `resume grace, ${leftMs.toFixed(0)} ms left` : undefined;
}

/** Targets whose last logged state in a supervisor's log is not OK. */
function targetsNotOk(lines: readonly LogLine[]): string[] {
  const state = new Map<string, string>();
  for (const l of lines) {
    if (l.event === "expired") state.set(String(l.target), "EXPIRED");
    else if (l.event === "transition") state.set(String(l.target), String(l.to));
  }
  return [...state].filter(([, s]) => s !== "OK").map(([t, s]) => `${t}=${s}`);
}

/** The campaign's config (see {@linkcode TIMING}, {@linkcode WORKLOADS}). */
function campaignConfig(urls: readonly string[], cp: ControlPlane, pair: boolean) {
  const { periodMs, timeoutMs } = TIMING;
  return {
    supervisor: {
      id: pair ? PAIR_IDS[0] : "campaign",
      bootWindowMs: TIMING.bootWindowMs,
      recoveryWindowMs: TIMING.recoveryWindowMs,
      fenceConfirmationMs: TIMING.fenceConfirmationMs,
      // the Lease timing: the defaults (PAIR_TIMING)
      ...(pair ? { pair: { ids: [...PAIR_IDS] } } : {}),
    },
    mqtt: {
      url: urls[0],
      ...(pair ? { pairUrl: urls[1] } : {}),
      topicPrefix: "sdvc",
      keepaliveS: 5,
      reconnectPeriodMs: 200,
    },
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
