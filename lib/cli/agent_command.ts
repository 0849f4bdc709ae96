/**
 * `agent`: the node agent on every Jetson. Connects with the node's retained `offline` Last Will,
 * runs a {@linkcode NodeAgent} until the signal aborts, then shuts down in order: on a planned stop
 * (abort reason `SIGTERM` or `SIGHUP`) it drains first (retained `draining`, heartbeats go on until
 * the supervisor has moved every workload active here, bounded by `drainTimeoutMs`), then it
 * publishes retained `offline` and DISCONNECTs. Never loads the Kubernetes client.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { brokerUrlForLog } from "../config/mqtt_rules.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import type { SessionOptions } from "../mqtt/session.ts";
import type { Logger } from "../log/log.ts";
import { buildTopology } from "../topology/topology.ts";
import { agentWill, DEFAULT_DRAIN_TIMEOUT_MS, NodeAgent } from "../agent/agent.ts";
import { openAgentSession } from "../agent/agent_session.ts";
import { openRoleEndpoint, type RoleEndpoint } from "../http/role_endpoint.ts";
import { AgentMetrics } from "../metrics/agent_metrics.ts";
import { systemClock } from "../clock/clock.ts";
import { encodeNodeStatus } from "../wire/wire.ts";
import { openNotifier, watchdogTimeoutMs } from "../systemd/notify.ts";
import { ServiceWatchdog } from "../systemd/service_watchdog.ts";
import { agentStatus, agentUnhealthy, connectionFaultBoundMs } from "../systemd/liveness.ts";

/** Options of {@linkcode agentCommand}. */
export interface AgentCommandOptions {
  /** Validated configuration. */
  config: Config;
  /** This node's name, as in `config.nodes`. */
  nodeName: string;
  /**
   * Aborting starts the ordered shutdown. Its reason says which: `"SIGTERM"` or `"SIGHUP"` is a
   * planned stop (drain, then stop: SIGHUP has nothing to reload); anything else (`"SIGINT"`, a
   * test's reason) stops at once.
   */
  signal: AbortSignal;
  /** Bound of the drain of a planned stop, ms (default {@linkcode DEFAULT_DRAIN_TIMEOUT_MS}). */
  drainTimeoutMs?: number;
  /** Logger for every line, errors included. */
  log: Logger;
  /** Opens the MQTT session (default `openAgentSession`); for tests. */
  openClient?: (options: SessionOptions) => MqttClientLike;
  /**
   * Address of the HTTP endpoint (`agent --http-listen`), overriding `config.http.agentListen`;
   * `""` disables it. Must be valid (see `parseListenAddress`).
   */
  httpListen?: string;
  /** The JSON `/status` answers (absent: 404). */
  status?: () => unknown;
  /** Environment (default `Deno.env.get`): `NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`. */
  env?: (name: string) => string | undefined;
}

/** Abort reasons that mean a planned stop (an OTA update, `systemctl stop`, SIGHUP). */
const PLANNED_STOP_REASONS: readonly string[] = ["SIGTERM", "SIGHUP"];

/**
 * Runs the node agent until `signal` aborts.
 *
 * The client id is `config.mqtt.clientId`, else `sdv-agent-<node>`. An unreachable broker is not
 * fatal: the client keeps reconnecting every `reconnectPeriodMs` (heartbeats are skipped, never
 * queued, while disconnected). A broker that refuses the connection (CONNACK return code, e.g.
 * bad credentials) is fatal, since the client stops retrying.
 *
 * Under systemd (`Type=notify`) it sends `READY=1` at the first heartbeat sent, `WATCHDOG=1` every
 * half `WatchdogSec` while the heartbeat schedule runs and the broker connection is up or has been
 * down for at most `connectionFaultBoundMs` (`lib/systemd/liveness.ts`), and `STOPPING=1` when the
 * shutdown begins.
 *
 * A planned stop whose drain times out (the supervisor could not move a workload, e.g. no healthy
 * standby) still stops, with a warning, and returns 0.
 *
 * The HTTP endpoint (`/metrics`, `/healthz`, `/readyz`, `/status`; `http.agentListen`) listens
 * from before the broker connection until the end of the ordered shutdown.
 *
 * @returns 0 after an ordered shutdown; 1 on a fatal runtime error (MQTT credentials unreadable,
 *   connection refused by the broker, the HTTP address in use); 2 when the node is not configured (the message names the
 *   configured nodes). Never throws, never calls `Deno.exit`.
 */
export async function agentCommand(opts: AgentCommandOptions): Promise<number> {
  const { config, nodeName, signal } = opts;
  const log = opts.log.child({ node: nodeName });
  const node = buildTopology(config).node(nodeName);
  if (!node) {
    log.error("unknown-node", {
      error: `node ${JSON.stringify(nodeName)} is not in the config; configured nodes: ${
        config.nodes.map((n) => n.name).join(", ")
      }`,
    });
    return 2;
  }
  if (signal.aborted) return 0;
  const clientId = config.mqtt.clientId ?? `sdv-agent-${nodeName}`;
  const open = opts.openClient ?? openAgentSession;
  let client: MqttClientLike;
  try {
    client = open({ config: config.mqtt, clientId, will: agentWill(node) });
  } catch (error) {
    log.error("mqtt-setup-failed", { error: (error as Error).message });
    return 1;
  }
  const env = opts.env ?? ((name: string) => Deno.env.get(name));
  const notifier = openNotifier({ env, log });
  const serviceTimeoutMs = watchdogTimeoutMs(env, Deno.pid);
  let lastSlotAtMs: number | undefined;
  let disconnectedSinceMs: number | undefined = systemClock.nowMs();
  client.on("connect", () => disconnectedSinceMs = undefined);
  client.on("close", () => disconnectedSinceMs ??= systemClock.nowMs());
  const agent: NodeAgent = new NodeAgent({
    node,
    client,
    log: opts.log,
    onSlot: (atMs, sent) => {
      lastSlotAtMs = atMs;
      if (sent) service.ready(); // idempotent: the first heartbeat sent completes the start-up
    },
  });
  const service = new ServiceWatchdog({
    notifier,
    timeoutMs: serviceTimeoutMs,
    log,
    check: (nowMs) =>
      agentUnhealthy({ nowMs, lastSlotAtMs, periodMs: node.periodMs, disconnectedSinceMs }, {
        timerBoundMs: (serviceTimeoutMs ?? 0) / 2,
        connectionFaultBoundMs: connectionFaultBoundMs(
          serviceTimeoutMs ?? 0,
          config.mqtt.reconnectPeriodMs,
        ),
      }),
    status: (nowMs) =>
      agentStatus({
        nowMs,
        periodMs: node.periodMs,
        status: encodeNodeStatus(agent.stats.status),
        disconnectedSinceMs,
      }),
  });
  let http: RoleEndpoint | undefined;
  try {
    http = openRoleEndpoint({
      listen: opts.httpListen ?? config.http.agentListen,
      metrics: new AgentMetrics({
        get stats() {
          return agent.stats;
        },
        sensorStates: () => agent.sensorStates(),
        get stopping() {
          return agent.stopping;
        },
        connected: () => client.connected,
      }),
      status: opts.status,
      log,
    });
  } catch (error) {
    log.error("http-listen-failed", { error: (error as Error).message });
    await client.endAsync(true).catch(() => undefined);
    return 1;
  }
  let fatal: Error | undefined;
  const outcome = await new Promise<"aborted" | "fatal">((resolve) => {
    client.on("error", (error) => {
      // a refused CONNECT (bad credentials, not authorized): retrying cannot fix it (with a broker
      // pair the message starts with the broker's URL)
      if (/(^|: )Connection refused/.test(error.message)) {
        fatal = error;
        resolve("fatal");
      }
    });
    if (signal.aborted) return resolve("aborted");
    signal.addEventListener("abort", () => resolve("aborted"), { once: true });
    // Still in the task that opened the connection: no event can have been missed.
    agent.start();
    log.info("agent-running", { url: brokerUrlForLog(config.mqtt.url), clientId });
  });
  if (outcome === "fatal") {
    log.error("agent-failed", { error: fatal?.message });
  } else {
    const reason = String(signal.reason ?? "signal");
    const planned = PLANNED_STOP_REASONS.includes(reason);
    log.info("shutdown", { reason, planned });
    service.stopping(planned ? `planned stop (${reason}): draining` : reason);
    if (planned) await agent.drain({ timeoutMs: opts.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS });
  }
  service.close();
  await agent.stop({ timeoutMs: config.supervisor.shutdownTimeoutMs });
  await http?.close();
  notifier.close();
  return outcome === "fatal" ? 1 : 0;
}
