/**
 * Per-repetition copies of the shipped configs (config/fast.yaml, config/example.yaml): topology and
 * timing unchanged, only where things are replaced — the broker URL, a fresh topic prefix and MQTT
 * client id, the runtime's kubeconfig, and the repetition's namespace for every workload.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { parse as parseYaml, stringify } from "yaml";
import { type Config, ConfigSchema } from "../lib/config/schema.ts";
import { buildTopology, type Topology } from "../lib/topology/topology.ts";

/** The shipped configs the bench runs. */
export type ConfigName = "fast" | "example";

/** Path of a shipped config. */
export function shippedConfigPath(name: ConfigName): string {
  return fileURLToPath(new URL(`../config/${name}.yaml`, import.meta.url));
}

/** What a repetition replaces. */
export interface Placement {
  brokerUrl: string;
  topicPrefix: string;
  kubeconfig: string;
  namespace: string;
}

/**
 * The shipped config `name` with the repetition's broker, prefix, client id, kubeconfig and
 * namespace. Everything else (nodes, sensors, workloads, timing, supervisor settings) is kept.
 */
export function runtimeConfig(name: ConfigName, p: Placement): Record<string, unknown> {
  const raw = parseYaml(Deno.readTextFileSync(shippedConfigPath(name))) as Record<string, unknown>;
  const mqtt = { ...(raw.mqtt as Record<string, unknown> ?? {}) };
  mqtt.url = p.brokerUrl;
  mqtt.topicPrefix = p.topicPrefix;
  mqtt.clientId = `sdv-failover-${p.topicPrefix}`;
  const cluster = { ...(raw.cluster as Record<string, unknown> ?? {}) };
  cluster.kubeconfig = p.kubeconfig;
  const workloads = (raw.workloads as Record<string, unknown>[]).map((w) => ({
    ...w,
    namespace: p.namespace,
  }));
  const out = { ...raw, mqtt, cluster, workloads };
  ConfigSchema.parse(out); // fail here, not in the child process
  return out;
}

/** Parses a raw config as the runtime does (defaults filled in). */
export function parseRuntimeConfig(raw: unknown): Config {
  return ConfigSchema.parse(raw);
}

/** The topology the runtime builds from `raw` (targets, labels and topics as it logs them). */
export function runtimeTopology(raw: unknown): Topology {
  return buildTopology(parseRuntimeConfig(raw));
}

/**
 * The topology of a shipped config: the node, sensor and workload names, placements and
 * Deployment names every mode and scenario of the bench uses (fast and example share them).
 */
export function shippedTopology(name: ConfigName = "fast"): Topology {
  return runtimeTopology(parseYaml(Deno.readTextFileSync(shippedConfigPath(name))));
}

/** Writes `raw` as YAML to `dir/<file>` and returns the path. */
export function writeConfig(dir: string, file: string, raw: unknown): string {
  const path = `${dir}/${file}`;
  Deno.writeTextFileSync(path, stringify(raw));
  return path;
}
