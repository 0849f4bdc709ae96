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
import { brokerUrlProblem, mqttStringProblem, topicNameProblem } from "./mqtt_rules.ts";
import { listenAddressProblem } from "./listen_address.ts";

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

// ---------------------------------------------------------------------------------------------
// Building blocks.

/**
 * The longest delay `setTimeout` honours, 2^31 − 1 ms (≈ 24.8 days): a longer one is clamped to
 * 1 ms (HTML Living Standard, timer initialisation steps; Deno and Node.js do the same), which
 * would turn a timer into a busy loop. Every `...Ms` key is bounded by this or less.
 */
export const MAX_TIMER_MS = 2_147_483_647;
/** One hour in ms: the upper bound of every heartbeat, tick, FTTI and window setting. */
export const HOUR_MS = 3_600_000;
/** Upper bound of network timeouts and retry periods, ms (5 min). */
export const NETWORK_TIMEOUT_MAX_MS = 300_000;

/** Longest node name: a DNS-1123 subdomain, as Kubernetes requires of node names. */
export const NODE_NAME_MAX_CHARS = 253;
/**
 * Longest Deployment name: Kubernetes allows a DNS-1123 subdomain (≤ 253), but the Deployment
 * controller names its ReplicaSets `<deployment>-<pod-template-hash>` (hash ≤ 10 characters),
 * which must fit in 253 too.
 */
export const DEPLOYMENT_NAME_MAX_CHARS = 242;
/**
 * Longest name of a sensor, a workload or the supervisor: a DNS-1123 label's 63 (each is one
 * MQTT topic level; the supervisor id is also the value of our taint, and label/taint values are
 * at most 63 characters in Kubernetes).
 */
export const LABEL_NAME_MAX_CHARS = 63;
/** Longest `mqtt.topicPrefix`, in UTF-8 bytes (every topic starts with it). */
export const TOPIC_PREFIX_MAX_BYTES = 256;

const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A DNS-1123 name (Kubernetes' subdomain syntax) of at most `maxChars` characters. */
function dnsName(maxChars: number, why: string) {
  return z.string()
    .max(maxChars, `must be at most ${maxChars} characters (${why})`)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS-1123 name (lower case letters, digits, '-', '.')");
}

const nodeName = dnsName(NODE_NAME_MAX_CHARS, "a Kubernetes node name is a DNS-1123 subdomain");
const sensorName = dnsName(LABEL_NAME_MAX_CHARS, "it is one MQTT topic level, like a DNS label");
const workloadName = dnsName(LABEL_NAME_MAX_CHARS, "it is one MQTT topic level, like a DNS label");
const deploymentName = dnsName(
  DEPLOYMENT_NAME_MAX_CHARS,
  "its ReplicaSets are named <deployment>-<10-character hash>, at most 253 characters",
);
const namespaceName = z.string()
  .max(LABEL_NAME_MAX_CHARS, `must be at most ${LABEL_NAME_MAX_CHARS} characters (a DNS label)`)
  .regex(
    DNS_1123_LABEL,
    "must be a DNS-1123 label (lower case letters, digits, '-'; no '.'), as Kubernetes " +
      "requires of namespaces",
  );

/**
 * A duration in ms from `minMs` to `maxMs` (≤ {@linkcode MAX_TIMER_MS}); `why` explains the
 * upper bound in the message.
 */
function durationMs(minMs: 0 | 1, maxMs: number, why: string) {
  return z.number().int().min(minMs).max(maxMs, `must be at most ${maxMs} ms (${why})`);
}
const heartbeatMs = durationMs(1, HOUR_MS, "1 h; longer would not supervise anything");
const windowMs = durationMs(0, HOUR_MS, "1 h");
const networkMs = durationMs(1, NETWORK_TIMEOUT_MAX_MS, "5 min");

/** A string that passes `check` (a problem sentence or `undefined`), as a zod refinement. */
function refined(check: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const problem = check(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
}

const topic = refined((t) => topicNameProblem(t));
const envName = z.string().regex(
  /^[A-Za-z_][A-Za-z0-9_]*$/,
  "must be an environment variable name (letters, digits and '_', not starting with a digit)",
);
const filePath = z.string().min(1, "must be a file path");

/**
 * A Kubernetes qualified name (label, annotation and taint keys): an optional DNS-1123
 * subdomain prefix of ≤ 253 characters and `/`, then a name of ≤ 63 characters made of
 * alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric (apimachinery
 * `IsQualifiedName`).
 */
export function qualifiedNameProblem(value: string): string | undefined {
  const slash = value.lastIndexOf("/");
  const prefix = slash < 0 ? undefined : value.slice(0, slash);
  const name = value.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !DNS_1123_SUBDOMAIN.test(prefix))) {
    return "must be a qualified name: its prefix before '/' must be a DNS-1123 subdomain of at " +
      "most 253 characters";
  }
  if (
    name.length === 0 || name.length > 63 ||
    !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name)
  ) {
    return "must be a qualified name ([PREFIX/]NAME, NAME at most 63 characters: letters, digits, " +
      "'-', '_', '.', starting and ending with a letter or digit)";
  }
  return undefined;
}

/** MQTT connection settings. Credentials come from the environment or a file, never inline. */
export const MqttSchema = z.strictObject({
  /** Broker URL, `SCHEME://HOST[:PORT][/PATH]`; see `brokerUrlProblem` in `mqtt_rules.ts`. */
  url: refined(brokerUrlProblem).default("mqtt://127.0.0.1:1883"),
  /**
   * The second broker of a broker pair (off when absent): every client keeps a session to both
   * and publishes everything to both; losing one broker changes nothing, losing both is an ingest
   * fault (docs/redundancy.md, "Broker pair"). Same scheme family and TLS settings as `url`.
   */
  pairUrl: refined(brokerUrlProblem).optional(),
  clientId: refined((id) => id === "" ? "must not be empty" : mqttStringProblem(id)).optional(),
  topicPrefix: refined((t) => topicNameProblem(t, TOPIC_PREFIX_MAX_BYTES)).default("sdv"),
  /** MQTT 3.1.1 §3.1.2.10: a 16-bit number of seconds. */
  keepaliveS: z.number().int().min(0).max(65535).default(5),
  connectTimeoutMs: networkMs.default(5000),
  reconnectPeriodMs: networkMs.default(500),
  username: refined(mqttStringProblem).optional(),
  usernameEnv: envName.optional(),
  passwordEnv: envName.optional(),
  passwordFile: filePath.optional(),
  tls: z.strictObject({
    caFile: filePath.optional(),
    certFile: filePath.optional(),
    keyFile: filePath.optional(),
    rejectUnauthorized: z.boolean().default(true),
  }).optional(),
});

/** Kubernetes API access. */
export const ClusterSchema = z.strictObject({
  /**
   * The supervisor's kubeconfig; may start with `${CREDENTIALS_DIRECTORY}/` (systemd's
   * `LoadCredential=`, `lib/config/credentials.ts`). Production: the one `cluster-identity`
   * writes, never the admin's; the default is K3s's admin kubeconfig, for development only.
   */
  kubeconfig: filePath.default("/etc/rancher/k3s/k3s.yaml"),
  inCluster: z.boolean().default(false),
  requestTimeoutMs: networkMs.default(2000),
  retries: z.number().int().min(0).max(10).default(3),
  /** First requeue delay, doubled per retry. */
  retryBackoffMs: durationMs(1, 60_000, "1 min; it doubles per retry").default(20),
  taintKey: refined(qualifiedNameProblem).default("sdv-failover.io/unreachable"),
  /** Kubernetes limits an Event's reporting component to 128 characters. */
  eventSource: refined((s) =>
    s.length > 128
      ? "must be at most 128 characters (Kubernetes Event reportingComponent)"
      : qualifiedNameProblem(s)
  ).default("sdv-failover"),
});

/**
 * A supervisor pair (`supervisor.pair`): two `run` instances with their own ids (`run --id NAME`),
 * exactly one active, elected through one Kubernetes Lease (`lib/leader/lease_elector.ts`;
 * docs/redundancy.md, "Supervisor pair"). The defaults are sized for node timeouts of 150–300 ms and
 * measured on the real API server (`deno task bench:pair`, bench/results/pair.json):
 *
 * - `retryPeriodMs` 30: the leader renews 5 times per renew deadline, so 4 renews in a row may
 *   fail or be slow (a Lease write takes ≈ 5–10 ms on K3s/kine) before it steps down; ≈ 33
 *   writes/s on one Lease is a light load for the API server. A candidate also polls at this
 *   period.
 * - `renewDeadlineMs` 150: the leader acts only within 150 ms of the start of its last successful
 *   renew; an API outage longer than that stops it (see the design notes for this trade-off).
 * - `leaseDurationMs` 250: a candidate takes over after 250 ms without observing a change of the
 *   Lease. The 100 ms margin over the renew deadline covers timer lateness on a loaded Jetson and
 *   the rate difference of the two machines' monotonic clocks (ppm: µs per 250 ms); no wall
 *   clocks are compared. A takeover after the leader's last renew takes at most leaseDuration +
 *   retryPeriod + one API round trip (measured p50 271 / p99 322 ms; 400 / 250 / 50: 432 / 612
 *   ms, with the same rate of renew-deadline step-downs; 200 / 120 / 25: five times as many).
 *   Rule: `leaseDurationMs` ≤ the smallest node timeout, so a takeover costs about one node
 *   timeout (`check` adds the takeover bound to every FTTI budget).
 *
 * Rules (checked with positions by `validate.ts`): retryPeriodMs < renewDeadlineMs <
 * leaseDurationMs.
 */
export const PairSchema = z.strictObject({
  /**
   * The ids of both instances (each runs `run --id` with one of them). Both may issue promotions:
   * agents, apps and the other instance obey a promotion only from these issuers, and
   * `broker-config` grants both the supervisor's rights. Required: without the peer's id the
   * standby would refuse the leader's promotions.
   */
  ids: z.array(workloadName).length(2, "a pair has exactly two instance ids").refine(
    (ids) => ids[0] !== ids[1],
    "the two instance ids must differ",
  ),
  /** The Lease both instances compete for. */
  leaseName: dnsName(253, "a Kubernetes object name is a DNS-1123 subdomain").default(
    "sdv-failover",
  ),
  leaseNamespace: namespaceName.default("kube-system"),
  leaseDurationMs: durationMs(1, 60_000, "1 min").default(250),
  renewDeadlineMs: durationMs(1, 60_000, "1 min").default(150),
  retryPeriodMs: durationMs(1, 60_000, "1 min").default(30),
});

/** Supervisor-wide timing. */
export const SupervisorSchema = z.strictObject({
  /** This instance's name (`run --id NAME` overrides it; each instance of a pair needs its own). */
  id: workloadName.default("supervisor"),
  /**
   * Boot window after the supervisor starts, ms: a target never heard from in it causes no
   * failure; at its end a never-seen node is reported (no fence) and a workload whose primary
   * never appeared fails over to a healthy standby. Default 120 s: a Jetson's cold boot (≈ 30–90 s
   * to a running k3s-agent) plus the agent's own start.
   */
  bootWindowMs: windowMs.default(120_000),
  recoveryWindowMs: windowMs.default(1000),
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
  fenceConfirmationMs: windowMs.default(2000),
  reactionBudgetMs: durationMs(1, HOUR_MS, "1 h, the largest FTTI").default(25),
  lagToleranceMs: durationMs(1, HOUR_MS, "1 h, the largest FTTI").default(5),
  barrierTimeoutMs: durationMs(1, 60_000, "1 min").default(200),
  shutdownTimeoutMs: networkMs.default(2000),
  /** Period of the `stats` log line (ingest rate, watchdog lag, RSS), ms; 0 disables it. */
  statsIntervalMs: windowMs.default(10000),
  /**
   * Period of the retained status snapshot on `{p}/supervisor/{id}/state` (read by
   * `sdv-failover status`), ms; it is also published, coalesced, on every state change (a
   * transition, a promotion, a fence). 0 disables the topic. Default 1000: the ages in it stay
   * meaningful to within a second.
   */
  stateIntervalMs: windowMs.default(1000),
  /** Run as one of a supervisor pair (off when absent). */
  pair: PairSchema.optional(),
});

/** Smallest `journal.maxBytes`: room for a few incidents (one is ≈ 2–6 KiB), bytes. */
export const JOURNAL_MIN_BYTES = 16_384;
/** Largest `journal.maxBytes` (1 GiB): the journal is for incidents, not a log store. */
export const JOURNAL_MAX_BYTES = 1_073_741_824;

/**
 * The failover journal (`lib/journal`, `sdv-failover report`): the supervisor appends one JSON
 * line per incident. `path` absent: `$STATE_DIRECTORY/journal.jsonl` when systemd gives the unit
 * a state directory (`StateDirectory=`), else off; `""`: off; may start with
 * `${STATE_DIRECTORY}/`. A file reaching `maxBytes` is renamed to `<path>.1` (one old file kept).
 */
export const JournalSchema = z.strictObject({
  path: z.string().optional(),
  maxBytes: z.number().int()
    .min(JOURNAL_MIN_BYTES, `must be at least ${JOURNAL_MIN_BYTES} bytes (a few incidents)`)
    .max(JOURNAL_MAX_BYTES, `must be at most ${JOURNAL_MAX_BYTES} bytes (1 GiB)`)
    .default(1_048_576),
  /** Longest wait from an expiry to the cluster's convergence before a `timeout` record, ms. */
  convergeTimeoutMs: durationMs(1, HOUR_MS, "1 h").default(30_000),
});

/** Default address of the supervisor's HTTP endpoint (9464: the Prometheus exporter port range). */
export const DEFAULT_SUPERVISOR_HTTP_LISTEN = "127.0.0.1:9464";
/** Default address of the node agent's HTTP endpoint (its own port: both may run on one host). */
export const DEFAULT_AGENT_HTTP_LISTEN = "127.0.0.1:9465";

/**
 * The HTTP endpoint of `run` and `agent` (`lib/http`): `/metrics` (Prometheus text format),
 * `/healthz`, `/readyz`, `/status`. Each address is `HOST:PORT` (IPv6 in brackets; port 0: any free
 * port), `""` disables the endpoint; `run --http-listen` / `agent --http-listen` override them.
 * Loopback by default: in a pod with `hostNetwork` the kubelet probes the node's address, so the
 * pod manifest passes `--http-listen $(POD_IP):9464` (see `packaging/k3s/supervisor-pod.yaml`).
 */
export const HttpSchema = z.strictObject({
  /** The supervisor's (`run`) endpoint. */
  listen: refined(listenAddressProblem).default(DEFAULT_SUPERVISOR_HTTP_LISTEN),
  /** The node agent's (`agent`) endpoint. */
  agentListen: refined(listenAddressProblem).default(DEFAULT_AGENT_HTTP_LISTEN),
});

/** A supervised node (a Jetson running the `agent`). */
export const NodeSchema = z.strictObject({
  name: nodeName,
  heartbeatPeriodMs: heartbeatMs,
  heartbeatTimeoutMs: heartbeatMs,
  heartbeatTopic: topic.optional(),
  statusTopic: topic.optional(),
  /**
   * Sensors the node needs (the origin gated its heartbeat on camera frames): while one is stale the
   * agent reports `degraded:<sensors>`; the sensor's own deadline moves only the workloads needing it.
   */
  requiredSensors: z.array(sensorName).default([]),
});

/** A supervised sensor, attached to one node, ticking once per frame. */
export const SensorSchema = z.strictObject({
  name: sensorName,
  node: nodeName,
  periodMs: heartbeatMs,
  timeoutMs: heartbeatMs,
  topic: topic.optional(),
});

/** One side (primary or standby) of a workload. */
export const PlacementSchema = z.strictObject({
  deployment: deploymentName,
  node: nodeName,
  sensors: z.array(sensorName).default([]),
});

/** A safety-relevant application with a hot standby. */
export const WorkloadSchema = z.strictObject({
  name: workloadName,
  namespace: namespaceName.default("default"),
  asil: AsilSchema,
  fttiMs: durationMs(1, HOUR_MS, "1 h"),
  primary: PlacementSchema,
  standby: PlacementSchema,
  appHeartbeat: z.strictObject({
    periodMs: heartbeatMs,
    timeoutMs: heartbeatMs,
  }).optional(),
  actions: z.array(FailoverActionSchema).min(1).default([...FailoverActionSchema.options]),
});

/** The whole configuration file. */
export const ConfigSchema = z.strictObject({
  supervisor: SupervisorSchema.default(SupervisorSchema.parse({})),
  mqtt: MqttSchema.default(MqttSchema.parse({})),
  cluster: ClusterSchema.default(ClusterSchema.parse({})),
  http: HttpSchema.default(HttpSchema.parse({})),
  nodes: z.array(NodeSchema).min(1),
  sensors: z.array(SensorSchema).default([]),
  workloads: z.array(WorkloadSchema).default([]),
  journal: JournalSchema.default(JournalSchema.parse({})),
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
/** HTTP endpoint settings. */
export type HttpConfig = z.infer<typeof HttpSchema>;
/** Supervisor pair settings. */
export type PairConfig = z.infer<typeof PairSchema>;
/** Failover journal settings. */
export type JournalConfig = z.infer<typeof JournalSchema>;
