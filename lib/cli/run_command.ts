/**
 * `run`: the supervisor on the server node. Connects to the broker with its own retained
 * status and Last Will, reconciles persisted failover state from the cluster, arms the watchdog,
 * and fails workloads over until the signal aborts; then shuts down in order.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { DryRunExecutor } from "../executor/dry_run.ts";
import type { FailoverExecutor } from "../executor/executor.ts";
import { buildMqttOptions, connectNoDelay } from "../ingest/mqtt_options.ts";
import type { MqttClientLike } from "../ingest/mqtt_client.ts";
import type { Logger } from "../log/log.ts";
import { Supervisor, supervisorWill } from "../runtime/supervisor.ts";

/** Options of {@linkcode runCommand}. */
export interface RunCommandOptions {
  config: Config;
  /** Print the plans, call no API (and read no kubeconfig). */
  dryRun: boolean;
  /** Aborting starts the ordered shutdown. */
  signal: AbortSignal;
  log: Logger;
}

/**
 * Runs the supervisor until `signal` aborts.
 * @returns 0 after a clean shutdown, 1 when the runtime could not start (cluster state not
 *   observable, broker credentials unreadable) or failed.
 */
export async function runCommand(opts: RunCommandOptions): Promise<number> {
  const { config, log } = opts;
  // The Kubernetes executor (client-node) loads while ingest connects and the watchdog arms.
  const executor = opts.dryRun
    ? () => Promise.resolve<FailoverExecutor>(new DryRunExecutor({ log }))
    : () => kubeExecutor(config, log);
  let client: MqttClientLike;
  try {
    client = connectNoDelay(
      config.mqtt.url,
      buildMqttOptions(config.mqtt, {
        clientId: config.mqtt.clientId ?? `sdv-failover-${config.supervisor.id}`,
        will: supervisorWill(config),
      }),
    ) as unknown as MqttClientLike;
  } catch (error) {
    log.error("mqtt-setup-failed", { error: (error as Error).message });
    return 1;
  }
  const supervisor = new Supervisor({ config, client, executor, log });
  try {
    await supervisor.start(opts.signal);
  } catch (error) {
    log.error("start-failed", { error: (error as Error).message });
    await supervisor.stop();
    return opts.signal.aborted ? 0 : 1;
  }
  log.info("running", { dryRun: opts.dryRun, targets: supervisor.watchdog.size });
  if (!opts.signal.aborted) {
    await new Promise<void>((resolve) =>
      opts.signal.addEventListener("abort", () => resolve(), { once: true })
    );
  }
  log.info("shutdown", { reason: String(opts.signal.reason ?? "signal") });
  await supervisor.stop();
  log.info("stopped", { ...supervisor.ingest, ...supervisor.watchdog.stats });
  return 0;
}

/** Loads client-node only here, so the agent and `--dry-run` never pay its ≈ 65 MB. */
async function kubeExecutor(config: Config, log: Logger): Promise<FailoverExecutor> {
  const [{ createKubeClient }, { KubeExecutor }] = await Promise.all([
    import("../kube/kube_client.ts"),
    import("../executor/kube_executor.ts"),
  ]);
  const api = createKubeClient({
    kubeconfigPath: config.cluster.kubeconfig,
    inCluster: config.cluster.inCluster,
    requestTimeoutMs: config.cluster.requestTimeoutMs,
  });
  return new KubeExecutor({
    api,
    cluster: config.cluster,
    supervisorId: config.supervisor.id,
    log,
  });
}
