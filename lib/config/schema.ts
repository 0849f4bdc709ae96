/**
 * The configuration schema of the supervisor, the node agent and the test publisher.
 *
 * One YAML file describes the whole zonal cluster: the MQTT broker, the Kubernetes API, the
 * supervised nodes and sensors, and the workloads with their ASIL level, FTTI and standby. The
 * schema is the single source of the {@linkcode Config} type; cross-reference and timing rules that
 * a schema cannot express live in `validate.ts`.
 *
 * @module
 */
import { z } from "zod";

/** Automotive Safety Integrity Level (ISO 26262-1:2018, 3.6); QM = quality managed, no ASIL. */
export const AsilSchema = z.enum(["QM", "A", "B", "C", "D"]);
/** An ASIL level. */
export type Asil = z.infer<typeof AsilSchema>;

/** The failover actions a workload may allow, executed in this order (see `docs/design.md`). */
export const FailoverActionSchema = z.enum([
  "promote", // publish the retained MQTT promotion (data-plane switch, fencing epoch)
  "markDeployments", // also label the Deployments with their role (the epoch is always persisted)
  "deletePods", // delete the workload's pods on the failed node, grace 0
  "cordon", // mark the failed node unschedulable (node faults only)
  "taint", // add our NoExecute taint to the failed node (node faults only)
  "events", // record a core/v1 Event per action
]);
/** One failover action. */
export type FailoverAction = z.infer<typeof FailoverActionSchema>;

const name = z.string().regex(
  /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
  "must be a DNS-1123 name (lower case letters, digits, '-', '.')",
);
const positiveMs = z.number().int().positive();
const topic = z.string().min(1).refine((t) => !/[+#]/.test(t), "must not contain wildcards");

/** MQTT connection settings. Credentials come from the environment or a file, never inline. */
export const MqttSchema = z.strictObject({
  url: z.string().regex(
    /^(mqtts?|wss?|tcp|ssl):\/\//,
    "must be an mqtt://, mqtts://, ws:// or wss:// URL",
  )
    .default("mqtt://127.0.0.1:1883"),
  clientId: z.string().min(1).optional(),
  topicPrefix: z.string().min(1).regex(/^[^+#]+$/, "must not contain wildcards").default("sdv"),
  keepaliveS: z.number().int().min(0).max(65535).default(5),
  connectTimeoutMs: positiveMs.default(5000),
  reconnectPeriodMs: positiveMs.default(500),
  username: z.string().optional(),
  usernameEnv: z.string().optional(),
  passwordEnv: z.string().optional(),
  passwordFile: z.string().optional(),
  tls: z.strictObject({
    caFile: z.string().optional(),
    certFile: z.string().optional(),
    keyFile: z.string().optional(),
    rejectUnauthorized: z.boolean().default(true),
  }).optional(),
});

/** Kubernetes API access. */
export const ClusterSchema = z.strictObject({
  kubeconfig: z.string().default("/etc/rancher/k3s/k3s.yaml"),
  inCluster: z.boolean().default(false),
  requestTimeoutMs: positiveMs.default(2000),
  retries: z.number().int().min(0).max(10).default(3),
  retryBackoffMs: positiveMs.default(20),
  taintKey: z.string().default("sdv-failover.io/unreachable"),
  eventSource: z.string().default("sdv-failover"),
});

/** Supervisor-wide timing. */
export const SupervisorSchema = z.strictObject({
  id: name.default("supervisor"),
  /**
   * Boot window after the supervisor starts, ms: a target never heard from in it causes no
   * failure; at its end a never-seen node is reported (no fence) and a workload whose primary
   * never appeared fails over to a healthy standby. Default 120 s: a Jetson's cold boot (≈ 30–90 s
   * to a running k3s-agent) plus the agent's own start.
   */
  bootWindowMs: z.number().int().min(0).max(3_600_000).default(120_000),
  recoveryWindowMs: z.number().int().min(0).default(1000),
  /**
   * Mass expiry: when more than this share of the nodes expires within one node timeout, it is
   * suspected to be the infrastructure (broker, network, the supervisor itself), not the nodes:
   * promotions to healthy standbys still go out, but nothing is fenced or deleted until the nodes
   * stayed silent for `fenceConfirmationMs`. Default 0.5, in line with Kubernetes (evictions stop
   * at ≥ 55 % unhealthy) and medik8s NodeHealthCheck (`minHealthy` 51 %).
   */
  massExpiryShare: z.number().min(0).max(1).default(0.5),
  /**
   * How long a node must stay silent before it is fenced when its expiry is suspect (mass
   * expiry) or moved no workload (nothing gained by hurrying), ms.
   */
  fenceConfirmationMs: z.number().int().min(0).max(3_600_000).default(2000),
  reactionBudgetMs: positiveMs.default(25),
  lagToleranceMs: positiveMs.default(5),
  barrierTimeoutMs: positiveMs.default(200),
  shutdownTimeoutMs: positiveMs.default(2000),
  /** Period of the `stats` log line (ingest rate, watchdog lag, RSS), ms; 0 disables it. */
  statsIntervalMs: z.number().int().min(0).default(10000),
});

/** A supervised node (a Jetson running the `agent`). */
export const NodeSchema = z.strictObject({
  name,
  heartbeatPeriodMs: positiveMs,
  heartbeatTimeoutMs: positiveMs,
  heartbeatTopic: topic.optional(),
  statusTopic: topic.optional(),
  /** Sensors whose freshness gates this node's heartbeat (the origin gates on camera frames). */
  requiredSensors: z.array(name).default([]),
});

/** A supervised sensor, attached to one node, ticking once per frame. */
export const SensorSchema = z.strictObject({
  name,
  node: name,
  periodMs: positiveMs,
  timeoutMs: positiveMs,
  topic: topic.optional(),
});

/** One side (primary or standby) of a workload. */
export const PlacementSchema = z.strictObject({
  deployment: name,
  node: name,
  sensors: z.array(name).default([]),
});

/** A safety-relevant application with a hot standby. */
export const WorkloadSchema = z.strictObject({
  name,
  namespace: name.default("default"),
  asil: AsilSchema,
  fttiMs: positiveMs,
  primary: PlacementSchema,
  standby: PlacementSchema,
  appHeartbeat: z.strictObject({
    periodMs: positiveMs,
    timeoutMs: positiveMs,
  }).optional(),
  actions: z.array(FailoverActionSchema).min(1).default([...FailoverActionSchema.options]),
});

/** The whole configuration file. */
export const ConfigSchema = z.strictObject({
  supervisor: SupervisorSchema.default(SupervisorSchema.parse({})),
  mqtt: MqttSchema.default(MqttSchema.parse({})),
  cluster: ClusterSchema.default(ClusterSchema.parse({})),
  nodes: z.array(NodeSchema).min(1),
  sensors: z.array(SensorSchema).default([]),
  workloads: z.array(WorkloadSchema).default([]),
});

/** A validated configuration, defaults applied. */
export type Config = z.infer<typeof ConfigSchema>;
/** A supervised node's configuration. */
export type NodeConfig = z.infer<typeof NodeSchema>;
/** A sensor's configuration. */
export type SensorConfig = z.infer<typeof SensorSchema>;
/** A workload's configuration. */
export type WorkloadConfig = z.infer<typeof WorkloadSchema>;
/** MQTT settings. */
export type MqttConfig = z.infer<typeof MqttSchema>;
/** Kubernetes access settings. */
export type ClusterConfig = z.infer<typeof ClusterSchema>;
/** Supervisor timing settings. */
export type SupervisorConfig = z.infer<typeof SupervisorSchema>;
