/**
 * `run`: the supervisor on the server node. Connects to the broker with its own retained
 * status and Last Will, arms the watchdog, syncs the reconciler's watch-backed cache and adopts the
 * persisted failover state, and fails workloads over until the signal aborts; then shuts down in
 * order.
 *
 * @module
 */
import { type Config, SupervisorSchema } from "../config/schema.ts";
import { resolveCredentialPath } from "../config/credentials.ts";
import { DuplicateIdentityError, LeaseTerminalError } from "../leader/lease_elector.ts";
import type { KubeClient } from "../kube/kube_client.ts";
import { systemClock } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { IncomingPacket, MqttClientLike } from "../mqtt/client.ts";
import { decodeNodeStatus } from "../wire/wire.ts";
import { openClient } from "../mqtt/session.ts";
import { DryRunReconciler } from "../reconcile/dry_run.ts";
import type { ClusterReconciler } from "../reconcile/reconciler.ts";
import {
  type Leadership,
  type LeadershipFactory,
  type ReconcilerFactory,
  Supervisor,
  type SupervisorEvent,
  supervisorWill,
} from "../runtime/supervisor.ts";
import { buildTopology, type Topology } from "../topology/topology.ts";
import { JournalFile, resolveJournalPath } from "../journal/journal_file.ts";
import { IncidentRecorder } from "../journal/recorder.ts";
import {
  openRoleEndpoint,
  PROMETHEUS_CONTENT_TYPE,
  type RoleEndpoint,
  type RoleMetrics,
} from "../http/role_endpoint.ts";
import type { SupervisorMetrics } from "../metrics/supervisor_metrics.ts";
import { supervisorReadiness } from "../http/readiness.ts";
import { type KubeCallObserver, timedKubeApi, timedLeaseApi } from "../kube/timed_api.ts";
import { openNotifier, watchdogTimeoutMs } from "../systemd/notify.ts";
import { ServiceWatchdog } from "../systemd/service_watchdog.ts";
import {
  connectionFaultBoundMs,
  supervisorStatus,
  supervisorUnhealthy,
} from "../systemd/liveness.ts";

/** Largest MQTT packet the supervisor accepts, bytes (see `openSession`'s `maxPacketBytes`). */
const SUPERVISOR_MAX_PACKET_BYTES = 16 * 1024;

/**
 * `run --id NAME`: the config with `supervisor.id` replaced by `id` (each instance of a supervisor
 * pair runs the same config under its own id; the id names its MQTT client, status and barrier
 * topics and its Lease identity).
 * @returns the config, or a usage error (exit 2): an id that is not a DNS-1123 label of at most 63
 *   characters, an id given while the config fixes `mqtt.clientId` (both instances would then
 *   connect with one client id and the broker would disconnect one of them at every connect), or
 *   in a pair an id (given or the config's `supervisor.id`) that is not one of
 *   `supervisor.pair.ids` (its promotions would be refused by every agent, app and the peer).
 */
export function withSupervisorId(
  config: Config,
  id: string | undefined,
): { config: Config } | { error: string } {
  if (id === undefined) return inPair(config, "supervisor.id");
  const parsed = SupervisorSchema.shape.id.safeParse(id);
  if (!parsed.success) {
    return { error: `--id: ${parsed.error.issues.map((i) => i.message).join("; ")}` };
  }
  if (config.mqtt.clientId !== undefined) {
    return {
      error: `--id: the config fixes mqtt.clientId ("${config.mqtt.clientId}"), which every ` +
        `instance would share; remove it (the client id is then sdv-failover-<id>)`,
    };
  }
  return inPair({ ...config, supervisor: { ...config.supervisor, id: parsed.data } }, "--id");
}

function inPair(config: Config, what: string): { config: Config } | { error: string } {
  const { id, pair } = config.supervisor;
  if (pair && !pair.ids.includes(id)) {
    return {
      error: `${what}: "${id}" is not one of supervisor.pair.ids (${pair.ids.join(", ")}); ` +
        `give each instance of the pair one of them with --id`,
    };
  }
  return { config };
}

/**
 * How `run` ends on an error that escapes {@linkcode runCommand}: another supervisor running with
 * the same id is a usage error (exit 2: the systemd unit does not restart), anything else is
 * fatal (1).
 */
export function runFailure(error: unknown): { code: number; message: string } {
  if (error instanceof DuplicateIdentityError) {
    return { code: 2, message: `sdv-failover run: ${error.message}` };
  }
  if (error instanceof LeaseTerminalError) {
    return { code: 1, message: `sdv-failover run: supervisor pair election: ${error.message}` };
  }
  return {
    code: 1,
    message: `fatal: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
  };
}

/**
 * A live `offline` on a node's status topic: the node's Last Will (or the end of its planned stop).
 * With a broker pair such a message needs both brokers' agreement (`BrokerPair.needsAgreement`):
 * one broker's will says only that the node lost *that* broker.
 */
export function nodeLastWill(
  topology: Topology,
): (topic: string, payload: Uint8Array, packet: IncomingPacket) => boolean {
  const statusTopics = new Set(topology.nodes.map((n) => n.statusTopic));
  return (topic, payload, packet) =>
    packet.retain !== true && statusTopics.has(topic) &&
    decodeNodeStatus(payload)?.state === "offline";
}

/** Events kept for the metrics before the first scrape loads them (bounded memory). */
const MAX_EARLY_METRIC_EVENTS = 10_000;

/** K3s's cluster-admin kubeconfig. */
export const K3S_ADMIN_KUBECONFIG = "/etc/rancher/k3s/k3s.yaml";

/**
 * A warning when the supervisor would reach the API with K3s's admin kubeconfig (the schema's
 * default) instead of its own identity.
 * @returns the warning's text, or undefined (in-cluster, or another kubeconfig).
 */
export function adminKubeconfigWarning(config: Config): string | undefined {
  if (config.cluster.inCluster || config.cluster.kubeconfig !== K3S_ADMIN_KUBECONFIG) {
    return undefined;
  }
  return `cluster.kubeconfig is K3s's cluster-admin kubeconfig (${K3S_ADMIN_KUBECONFIG}): give ` +
    "the supervisor its own least-privilege identity with `sdv-failover cluster-identity` " +
    "(README: Cluster identity)";
}

/** Options of {@linkcode runCommand}. */
export interface RunCommandOptions {
  config: Config;
  /** Print the steps, call no API (and read no kubeconfig). */
  dryRun: boolean;
  /** Aborting starts the ordered shutdown. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Address of the HTTP endpoint (`run --http-listen`), overriding `config.http.listen`; `""`
   * disables it. Must be valid (see `parseListenAddress`).
   */
  httpListen?: string;
  /** The JSON `/status` answers (default: the supervisor's status snapshot, as on the bus). */
  status?: () => unknown;
  /** Environment (default `Deno.env.get`): `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`. */
  env?: (name: string) => string | undefined;
}

/**
 * Runs the supervisor until `signal` aborts. The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`,
 * `/status`) listens from before the broker connection until the end of the ordered shutdown. With
 * a journal (`journal.path`, see {@linkcode openJournal}) every incident is appended to it after
 * the failover, off the decision path.
 *
 * Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) it sends `READY=1` once the watchdog is armed
 * and the cluster state adopted, a `STATUS=` line, `WATCHDOG=1` every half `WatchdogSec` only while
 * the heartbeat watchdog's deadline timer is alive and ingest has not been in a fault for longer
 * than `connectionFaultBoundMs` (see `lib/systemd/liveness.ts`), and `STOPPING=1` when the
 * shutdown begins.
 * @returns 0 after a clean shutdown, 1 when the runtime could not start (cluster state not
 *   observable, broker credentials unreadable, the HTTP address in use, the journal not writable)
 *   or failed, 2 when `journal.path` needs `STATE_DIRECTORY` and it is not set (nothing started).
 */
export async function runCommand(opts: RunCommandOptions): Promise<number> {
  const { config, log } = opts;
  const topology = buildTopology(config);
  const journal = await openJournal(config, log, (name) => Deno.env.get(name));
  if (typeof journal === "number") return journal;
  // the recorder asks the supervisor (built below) about the policy and the cluster
  const built: { supervisor?: Supervisor } = {};
  const recorder = journal && new IncidentRecorder({
    supervisorId: config.supervisor.id,
    lagToleranceMs: config.supervisor.lagToleranceMs,
    reactionBudgetMs: config.supervisor.reactionBudgetMs,
    convergeTimeoutMs: config.journal.convergeTimeoutMs,
    clock: systemClock,
    probe: {
      nodeDesired: (node) => built.supervisor?.policy.node(node),
      placementReady: (placement) =>
        built.supervisor?.reconciler?.placementReady(placement) ??
          { ready: false, why: "no reconciler yet" },
    },
    onIncident: (record) => {
      journal.append(record);
      log.info("incident-journaled", {
        incident: record.id,
        outcome: record.outcome,
        endToEndMs: record.endToEndMs,
        fttiMet: record.fttiMet,
      });
    },
  });
  const closeJournal = async () => {
    recorder?.close();
    await journal?.flush();
  };
  const pair = opts.dryRun ? undefined : config.supervisor.pair;
  if (config.supervisor.pair && opts.dryRun) {
    log.warn("pair-ignored", { why: "a dry run has no cluster to arbitrate; this one acts alone" });
  }
  const adminWarning = opts.dryRun ? undefined : adminKubeconfigWarning(config);
  if (adminWarning) log.warn("admin-kubeconfig", { why: adminWarning });
  // One Kubernetes client for the reconciler and the election; client-node loads while ingest
  // connects and the watchdog arms.
  let kubeClient: Promise<KubeClient> | undefined;
  const kube = () =>
    kubeClient ??= import("../kube/kube_client.ts").then(({ createKubeClient }) =>
      createKubeClient({
        kubeconfigPath: config.cluster.inCluster
          ? undefined
          : resolveCredentialPath(config.cluster.kubeconfig, (name) => Deno.env.get(name)),
        inCluster: config.cluster.inCluster,
        requestTimeoutMs: config.cluster.requestTimeoutMs,
      })
    );
  let leadership: (Leadership & { readonly term: number }) | undefined;
  // prom-client is loaded at the first scrape (≈ 50 ms of start-up and ≈ 9 MB that a vehicle
  // without Prometheus never pays). Until then the few events the metrics count (failures,
  // promotions, fences, ingest faults) are kept and replayed; per-call observations (timer
  // lateness, API latency, event-loop lag) start with the first scrape.
  let metrics: SupervisorMetrics | undefined = undefined;
  let metricsLoading: Promise<void> | undefined;
  const earlyEvents: SupervisorEvent[] = [];
  const loadMetrics = () =>
    metricsLoading ??= import("../metrics/supervisor_metrics.ts").then(({ SupervisorMetrics }) => {
      const loaded = new SupervisorMetrics({
        source: supervisor,
        clock: systemClock,
        kubeApi: !opts.dryRun,
        leadership: pair
          ? () => ({ leader: leadership?.isLeader() === true, term: leadership?.term ?? -1 })
          : undefined,
      });
      for (const event of earlyEvents.splice(0)) loaded.onEvent(event);
      metrics = loaded;
    });
  const observeKubeCall: KubeCallObserver = (call) => metrics?.observeKubeCall(call);
  const reconciler: ReconcilerFactory = opts.dryRun
    ? ({ onReport }) =>
      Promise.resolve(
        new DryRunReconciler({
          topology,
          log,
          onReport,
          taintKey: config.cluster.taintKey,
          supervisorId: config.supervisor.id,
        }),
      )
    : async (hooks) =>
      kubeReconciler(
        config,
        topology,
        log,
        hooks,
        await kube(),
        pair ? () => leadership?.isLeader() === true : undefined,
        observeKubeCall,
      );
  const election: LeadershipFactory | undefined = pair
    ? async (hooks) => {
      const [{ LeaseElector }, client] = await Promise.all([
        import("../leader/lease_elector.ts"),
        kube(),
      ]);
      leadership = new LeaseElector({
        id: config.supervisor.id,
        api: timedLeaseApi(client.leaseApi(pair.leaseNamespace, pair.leaseName), observeKubeCall),
        clock: systemClock,
        leaseDurationMs: pair.leaseDurationMs,
        renewDeadlineMs: pair.renewDeadlineMs,
        retryPeriodMs: pair.retryPeriodMs,
        onStartedLeading: (term) => {
          if (recorder) recorder.term = term;
          hooks.onStartedLeading(term);
        },
        onStoppedLeading: hooks.onStoppedLeading,
        log,
      });
      return leadership;
    }
    : undefined;
  let client: MqttClientLike;
  try {
    client = openClient(
      {
        config: config.mqtt,
        clientId: config.mqtt.clientId ?? `sdv-failover-${config.supervisor.id}`,
        will: supervisorWill(config),
        // the broker drops anything larger than our largest payload (4 KiB) plus topic and header
        maxPacketBytes: SUPERVISOR_MAX_PACKET_BYTES,
      },
      () => {},
      // a node's Last Will counts only when both brokers publish it (see BrokerPair)
      { needsAgreement: nodeLastWill(topology) },
    );
  } catch (error) {
    log.error("mqtt-setup-failed", { error: (error as Error).message });
    return 1;
  }
  // A fatal election error (another instance with this id, a 403) ends the run.
  const fatal = new AbortController();
  const signal = AbortSignal.any([opts.signal, fatal.signal]);
  // The current ingest fault, for the service manager's watchdog and status.
  let ingestFault: { sinceMs: number; why: string } | undefined;
  const supervisor = built.supervisor = new Supervisor({
    config,
    topology,
    client,
    reconciler,
    log,
    leadership: election,
    onFatal: (error) => fatal.abort(error),
    onEvent: (event) => {
      if (event.type === "ingest-fault") ingestFault = { sinceMs: event.atMs, why: event.why };
      else if (event.type === "ingest-restored") ingestFault = undefined;
      if (metrics) metrics.onEvent(event);
      else if (
        earlyEvents.length < MAX_EARLY_METRIC_EVENTS &&
        (event.type !== "transition" || event.transition.isFailure)
      ) earlyEvents.push(event);
      recorder?.onEvent(event);
    },
    onTimerLateness: (latenessMs) => metrics?.observeTimerLatenessMs(latenessMs),
  });
  // The endpoint answers from the start; /metrics loads the metrics if a scrape comes first.
  const roleMetrics: RoleMetrics = {
    contentType: PROMETHEUS_CONTENT_TYPE,
    metrics: async () => {
      await loadMetrics();
      return metrics!.metrics();
    },
    readiness: () =>
      supervisorReadiness({
        state: supervisor.state,
        armed: supervisor.armed,
        ingestFaulted: supervisor.ingestFaulted,
        // `running` only once the reconciler started (cache synced) and the state is adopted
        clusterSynced: supervisor.state === "running",
      }),
    observeEventLoopLagMs: (lagMs) => metrics?.observeEventLoopLagMs(lagMs),
  };
  let http: RoleEndpoint | undefined;
  try {
    http = openRoleEndpoint({
      listen: opts.httpListen ?? config.http.listen,
      metrics: roleMetrics,
      status: opts.status ?? (() => supervisor.statusSnapshot()),
      log,
    });
  } catch (error) {
    log.error("http-listen-failed", { error: (error as Error).message });
    await client.endAsync(true).catch(() => undefined);
    await closeJournal();
    return 1;
  }
  const env = opts.env ?? ((name: string) => Deno.env.get(name));
  const notifier = openNotifier({ env, log });
  try {
    await supervisor.start(signal);
  } catch (error) {
    if (!fatal.signal.aborted) log.error("start-failed", { error: (error as Error).message });
    await notifier.notify({ STOPPING: "1", STATUS: "start failed" });
    notifier.close();
    await supervisor.stop();
    await closeJournal();
    await http?.close();
    if (fatal.signal.aborted) throw fatal.signal.reason;
    return opts.signal.aborted ? 0 : 1;
  }
  log.info("running", {
    dryRun: opts.dryRun,
    targets: supervisor.watchdog.size,
    ...(pair ? { pair: `${pair.leaseNamespace}/${pair.leaseName}` } : {}),
  });
  const serviceTimeoutMs = watchdogTimeoutMs(env, Deno.pid);
  const service = new ServiceWatchdog({
    notifier,
    timeoutMs: serviceTimeoutMs,
    log,
    check: (nowMs) =>
      supervisorUnhealthy({
        nowMs,
        running: supervisor.state === "running",
        deadlineTimerOverdueMs: supervisor.watchdog.timerOverdueMs(nowMs),
        ingestFaultSinceMs: ingestFault?.sinceMs,
      }, {
        timerBoundMs: (serviceTimeoutMs ?? 0) / 2,
        connectionFaultBoundMs: connectionFaultBoundMs(
          serviceTimeoutMs ?? 0,
          config.mqtt.reconnectPeriodMs,
        ),
      }),
    status: (nowMs) =>
      supervisorStatus({
        nowMs,
        targets: supervisor.watchdog.size,
        armed: supervisor.watchdog.armedCount,
        expired: topology.targets.filter((t) =>
          supervisor.watchdog.stateAt(t.index) === "EXPIRED"
        ).length,
        leader: pair ? leadership?.isLeader() === true : undefined,
        ingestFaultSinceMs: ingestFault?.sinceMs,
        ingestFaultWhy: ingestFault?.why,
      }),
  });
  service.ready();
  if (!signal.aborted) {
    await new Promise<void>((resolve) =>
      signal.addEventListener("abort", () => resolve(), { once: true })
    );
  }
  const reason = String(signal.reason ?? "signal");
  log.info("shutdown", { reason });
  service.stopping(reason);
  await supervisor.stop();
  await closeJournal();
  notifier.close();
  // Last: /readyz answers 503 "shutting down" until here.
  await http?.close();
  log.info("stopped", {
    ...supervisor.ingest,
    ...supervisor.watchdog.stats,
    ...(journal ? { journaled: journal.stats.written, journalFailed: journal.stats.failed } : {}),
  });
  if (fatal.signal.aborted) throw fatal.signal.reason;
  return 0;
}

/**
 * The Kubernetes reconciler on `kube` (client-node is loaded only by `run` without `--dry-run`,
 * so the agent never pays its ≈ 65 MB); in a pair its writes pass only while `isLeader()`.
 */
async function kubeReconciler(
  config: Config,
  topology: Topology,
  log: Logger,
  hooks: Parameters<ReconcilerFactory>[0],
  kube: KubeClient,
  isLeader: (() => boolean) | undefined,
  observeKubeCall: KubeCallObserver,
): Promise<ClusterReconciler> {
  const [{ KubeReconciler }, { gateWrites }] = await Promise.all([
    import("../reconcile/reconciler.ts"),
    import("../leader/write_gate.ts"),
  ]);
  const reconciler = new KubeReconciler({
    topology,
    cluster: config.cluster,
    supervisorId: config.supervisor.id,
    // timed inside the gate: only calls that reach the API server are timed
    api: isLeader
      ? gateWrites(timedKubeApi(kube.api, observeKubeCall), isLeader)
      : timedKubeApi(kube.api, observeKubeCall),
    view: kube.openCache({ namespaces: new Set(topology.workloads.map((w) => w.namespace)), log }),
    log,
    onReport: hooks.onReport,
    onUnfenceRequest: hooks.onUnfenceRequest,
  });
  // The reconciler does not own the client: release its sockets after it stopped (the election
  // has released its Lease before: Supervisor.stop).
  const close = reconciler.close.bind(reconciler);
  reconciler.close = async () => {
    await close();
    kube.close();
  };
  return reconciler;
}

/**
 * Opens the failover journal of `config.journal` before anything starts: `journal.path` absent →
 * `$STATE_DIRECTORY/journal.jsonl` (systemd's `StateDirectory=`) or off, `""` → off. The process
 * needs Deno's write permission for the file (`--allow-write=DIR`, which the package's launcher
 * gives `run` for `$STATE_DIRECTORY`); without it the default journal is off (a warning).
 * @returns the journal, `undefined` when off (logged), or the exit code: 2 when the path needs
 *   `STATE_DIRECTORY` and it is not set, 1 when the file given cannot be written (no permission,
 *   missing directory, …; logged with the path and the reason).
 */
export async function openJournal(
  config: Config,
  log: Logger,
  getEnv: (name: string) => string | undefined,
): Promise<JournalFile | undefined | number> {
  const where = resolveJournalPath(config.journal.path, getEnv);
  if ("error" in where) {
    log.error("journal-config", { error: where.error });
    return 2;
  }
  if ("off" in where) {
    log.info("journal-off", { why: where.off });
    return undefined;
  }
  const permission = await Deno.permissions.query({ name: "write", path: where.path });
  if (permission.state !== "granted") {
    const why = `no permission to write ${where.path}: the program runs with --allow-net ` +
      `--allow-read --allow-env --allow-sys; the package's launcher adds ` +
      `--allow-write=$STATE_DIRECTORY for run (elsewhere: deno run --allow-write=DIR)`;
    if (config.journal.path === undefined) {
      log.warn("journal-off", { why });
      return undefined;
    }
    log.error("journal-unwritable", { error: why, action: "not started" });
    return 1;
  }
  try {
    const journal = await JournalFile.open({
      path: where.path,
      maxBytes: config.journal.maxBytes,
      log,
    });
    log.info("journal", { path: journal.path, maxBytes: config.journal.maxBytes });
    return journal;
  } catch (error) {
    log.error("journal-unwritable", {
      error: (error as Error).message,
      action: 'not started; fix journal.path ("" turns the journal off)',
    });
    return 1;
  }
}
