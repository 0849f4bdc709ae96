/**
 * `agent`: the node agent on every Jetson. Connects with the node's retained `offline` Last Will,
 * runs a {@linkcode NodeAgent} until the signal aborts, then shuts down in order (retained
 * `offline`, graceful DISCONNECT). Never loads the Kubernetes client.
 *
 * @module
 */
import type { IClientOptions } from "mqtt";
import type { Config } from "../config/schema.ts";
import { buildMqttOptions, connectNoDelay } from "../ingest/mqtt_options.ts";
import type { MqttClientLike } from "../ingest/mqtt_client.ts";
import type { Logger } from "../log/log.ts";
import { agentWill, NodeAgent } from "../agent/agent.ts";

/** Options of {@linkcode agentCommand}. */
export interface AgentCommandOptions {
  /** Validated configuration. */
  config: Config;
  /** This node's name, as in `config.nodes`. */
  nodeName: string;
  /** Aborting starts the ordered shutdown. */
  signal: AbortSignal;
  /** Logger for every line, errors included. */
  log: Logger;
  /** Opens the connection (default `mqtt.connect(config.mqtt.url, options)`); for tests. */
  connect?: (options: IClientOptions) => MqttClientLike;
}

/**
 * Runs the node agent until `signal` aborts.
 *
 * The client id is `config.mqtt.clientId`, else `sdv-agent-<node>`. An unreachable broker is not
 * fatal: the client keeps reconnecting every `reconnectPeriodMs` (heartbeats are skipped, never
 * queued, while disconnected). A broker that refuses the connection (CONNACK return code, e.g.
 * bad credentials) is fatal, since the client stops retrying.
 *
 * @returns 0 after an ordered shutdown; 1 on a fatal runtime error (MQTT credentials unreadable,
 *   connection refused by the broker); 2 when the node is not configured or its required sensors
 *   are not (the message names the configured nodes). Never throws, never calls `Deno.exit`.
 */
export async function agentCommand(opts: AgentCommandOptions): Promise<number> {
  const { config, nodeName, signal } = opts;
  const log = opts.log.child({ node: nodeName });
  if (!config.nodes.some((n) => n.name === nodeName)) {
    log.error("unknown-node", {
      error: `node ${JSON.stringify(nodeName)} is not in the config; configured nodes: ${
        config.nodes.map((n) => n.name).join(", ")
      }`,
    });
    return 2;
  }
  let options: IClientOptions;
  try {
    options = buildMqttOptions(config.mqtt, {
      clientId: config.mqtt.clientId ?? `sdv-agent-${nodeName}`,
      will: agentWill(config, nodeName),
    });
  } catch (error) {
    log.error("mqtt-setup-failed", { error: (error as Error).message });
    return 1;
  }
  options.queueQoSZero = false; // a heartbeat sent late is a stale one: never queue
  let agent: NodeAgent | undefined;
  let client: MqttClientLike | undefined;
  const connect = opts.connect ??
    ((o: IClientOptions): MqttClientLike => connectNoDelay(config.mqtt.url, o));
  if (signal.aborted) return 0;
  try {
    client = connect(options);
    agent = new NodeAgent({ config, nodeName, client, log: opts.log });
  } catch (error) {
    log.error("agent-setup-failed", { error: (error as Error).message });
    client?.end(true);
    return 2;
  }
  let fatal: Error | undefined;
  const outcome = await new Promise<"aborted" | "fatal">((resolve) => {
    client.on("error", (error) => {
      if (/^Connection refused/.test(error.message)) {
        fatal = error;
        resolve("fatal");
      }
    });
    if (signal.aborted) return resolve("aborted");
    signal.addEventListener("abort", () => resolve("aborted"), { once: true });
    // Still in the task that opened the connection: no event can have been missed.
    agent.start();
    log.info("agent-running", { url: config.mqtt.url, clientId: options.clientId });
  });
  if (outcome === "fatal") {
    log.error("agent-failed", { error: fatal?.message });
  } else {
    log.info("shutdown", { reason: String(signal.reason ?? "signal") });
  }
  await agent.stop({ timeoutMs: config.supervisor.shutdownTimeoutMs });
  return outcome === "fatal" ? 1 : 0;
}
