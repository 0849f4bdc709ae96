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
import type { MqttClientLike } from "../mqtt/client.ts";
import { openSession } from "../mqtt/session.ts";
import { DryRunReconciler } from "../reconcile/dry_run.ts";
import type { ClusterReconciler } from "../reconcile/reconciler.ts";
import {
  type Leadership,
  type LeadershipFactory,
  type ReconcilerFactory,
  Supervisor,
  supervisorWill,
} from "../runtime/supervisor.ts";
import { buildTopology, type Topology } from "../topology/topology.ts";
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
  /** Environment (default `Deno.env.get`): `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`. */
  env?: (name: string) => string | undefined;
}

/**
 * Runs the supervisor until `signal` aborts.
 *
 * Under systemd (`Type=notify`, `NOTIFY_SOCKET` set) it sends `READY=1` once the watchdog is armed
 * and the cluster state adopted, a `STATUS=` line, `WATCHDOG=1` every half `WatchdogSec` only while
 * the heartbeat watchdog's deadline timer is alive and ingest has not been in a fault for longer
 * than `connectionFaultBoundMs` (see `lib/systemd/liveness.ts`), and `STOPPING=1` when the
 * shutdown begins.
 * @returns 0 after a clean shutdown, 1 when the runtime could not start (cluster state not
 *   observable, broker credentials unreadable) or failed.
 */
export async function runCommand(opts: RunCommandOptions): Promise<number> {
  const { config, log } = opts;
  const topology = buildTopology(config);
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
  let leadership: Leadership | undefined;
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
      );
  const election: LeadershipFactory | undefined = pair
    ? async (hooks) => {
      const [{ LeaseElector }, client] = await Promise.all([
        import("../leader/lease_elector.ts"),
        kube(),
      ]);
      leadership = new LeaseElector({
        id: config.supervisor.id,
        api: client.leaseApi(pair.leaseNamespace, pair.leaseName),
        clock: systemClock,
        leaseDurationMs: pair.leaseDurationMs,
        renewDeadlineMs: pair.renewDeadlineMs,
        retryPeriodMs: pair.retryPeriodMs,
        onStartedLeading: hooks.onStartedLeading,
        onStoppedLeading: hooks.onStoppedLeading,
        log,
      });
      return leadership;
    }
    : undefined;
  let client: MqttClientLike;
  try {
    client = openSession({
      config: config.mqtt,
      clientId: config.mqtt.clientId ?? `sdv-failover-${config.supervisor.id}`,
      will: supervisorWill(config),
      // the broker drops anything larger than our largest payload (4 KiB) plus topic and header
      maxPacketBytes: SUPERVISOR_MAX_PACKET_BYTES,
    });
  } catch (error) {
    log.error("mqtt-setup-failed", { error: (error as Error).message });
    return 1;
  }
  // A fatal election error (another instance with this id, a 403) ends the run.
  const fatal = new AbortController();
  const signal = AbortSignal.any([opts.signal, fatal.signal]);
  // The current ingest fault, for the service manager's watchdog and status.
  let ingestFault: { sinceMs: number; why: string } | undefined;
  const supervisor = new Supervisor({
    config,
    topology,
    client,
    reconciler,
    log,
    leadership: election,
    onFatal: (error) => fatal.abort(error),
    onEvent: (e) => {
      if (e.type === "ingest-fault") ingestFault = { sinceMs: e.atMs, why: e.why };
      else if (e.type === "ingest-restored") ingestFault = undefined;
    },
  });
  const env = opts.env ?? ((name: string) => Deno.env.get(name));
  const notifier = openNotifier({ env, log });
  try {
    await supervisor.start(signal);
  } catch (error) {
    if (!fatal.signal.aborted) log.error("start-failed", { error: (error as Error).message });
    await notifier.notify({ STOPPING: "1", STATUS: "start failed" });
    notifier.close();
    await supervisor.stop();
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
  notifier.close();
  log.info("stopped", { ...supervisor.ingest, ...supervisor.watchdog.stats });
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
): Promise<ClusterReconciler> {
  const [{ KubeReconciler }, { gateWrites }] = await Promise.all([
    import("../reconcile/reconciler.ts"),
    import("../leader/write_gate.ts"),
  ]);
  const reconciler = new KubeReconciler({
    topology,
    cluster: config.cluster,
    supervisorId: config.supervisor.id,
    api: isLeader ? gateWrites(kube.api, isLeader) : kube.api,
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
