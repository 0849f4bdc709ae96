/**
 * Semantic checks of a configuration: the rules a schema cannot express (cross-references,
 * uniqueness, timing sanity, FTTI budgets).
 *
 * {@linkcode semanticIssues} works on the *raw* parsed YAML, not on a validated
 * {@linkcode Config}, so that `load.ts` can report schema and semantic problems in one run: every
 * value is checked against its own field schema first and a check is skipped when an input it
 * needs is itself invalid (the schema reports that one), so one mistake is reported once, not
 * again as a cascade of follow-up errors.
 *
 * @module
 */
import type { z } from "zod";
import {
  type Config,
  MqttSchema,
  type NodeConfig,
  NodeSchema,
  PairSchema,
  PlacementSchema,
  type SensorConfig,
  SensorSchema,
  SupervisorSchema,
  WorkloadSchema,
} from "./schema.ts";
import {
  appHeartbeatTopic,
  barrierTopic,
  nodeHeartbeatTopic,
  nodeStatusTopic,
  promotionTopic,
  sensorTickTopic,
  supervisorStatusTopic,
} from "../topology/topics.ts";
import { MAX_MQTT_STRING_BYTES, TLS_URL_SCHEMES, utf8ByteLength } from "./mqtt_rules.ts";
import { type BudgetWorkload, workloadBudget } from "./budget.ts";

/** A semantic problem; `load.ts` adds the YAML position of {@linkcode SemanticIssue.path}. */
export interface SemanticIssue {
  /** Where, in the form `workloads[0].primary.sensors[1]` (see {@linkcode formatPath}). */
  path: string;
  /** What is wrong and why it matters. */
  message: string;
}

/** One step of a path into the configuration: a mapping key or a sequence index. */
export type PathSegment = string | number;

/**
 * Formats path segments as `nodes[1].heartbeatTimeoutMs`; the empty path formats as `""`.
 * Inverse of {@linkcode parsePath} for keys without `.`, `[` or `]` (every key of the schema).
 */
export function formatPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out;
}

/** Parses a path made by {@linkcode formatPath} back into segments (`""` gives `[]`). */
export function parsePath(path: string): PathSegment[] {
  const segments: PathSegment[] = [];
  for (const match of path.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) {
    segments.push(match[1] !== undefined ? Number(match[1]) : match[2]);
  }
  return segments;
}

/**
 * Checks what the schema cannot, on the raw parsed YAML (any shape; never throws):
 * - unique names of nodes, sensors and workloads;
 * - unique MQTT topics among node heartbeat/status topics, sensor tick topics and the topics the
 *   supervisor derives (app heartbeats, promotions, its own status/barrier), after the defaults
 *   of `lib/topology/topics.ts` with `mqtt.topicPrefix` (default `sdv`);
 * - references: `sensors[].node`, `nodes[].requiredSensors` (must exist and be attached to that
 *   node), `workloads[].primary/standby.node` and `.sensors` (must exist and be attached to that
 *   placement's node);
 * - failover sanity: primary and standby on different nodes and in different Deployments, and no
 *   Deployment (namespace/name) used by two workload sides;
 * - every topic (derived or configured) at most 65,535 UTF-8 bytes (MQTT 3.1.1 §1.5.3);
 * - MQTT settings that conflict (see `checkMqttSettings`): two sources of one credential, a
 *   password without a user name, TLS files with a non-TLS URL, a certificate without its key;
 * - timing: every timeout ≥ 2 × its period (nodes, sensors, app heartbeats: heartbeats are QoS 0,
 *   one lost heartbeat must not expire a target), `supervisor.recoveryWindowMs` ≥ the largest
 *   period; a supervisor pair's `retryPeriodMs` < `renewDeadlineMs` < `leaseDurationMs`;
 * - FTTI: for every workload, on both sides, detection + lateness allowance + reaction budget ≤
 *   `fttiMs` (see `budget.ts`).
 *
 * A check is skipped when a value it needs is missing or invalid (the schema reports those); a
 * reference check is skipped when the list it refers to is not a valid list or has an entry
 * without a valid name (an "unknown" verdict would then be unfounded).
 *
 * @returns the problems in check order, each with a {@linkcode formatPath} path; `[]` when none.
 */
export function semanticIssues(raw: unknown): SemanticIssue[] {
  const issues: SemanticIssue[] = [];
  const report = (path: PathSegment[], message: string) => {
    issues.push({ path: formatPath(path), message });
  };
  const root = isRecord(raw) ? raw : {};
  const model = looseModel(root);

  checkUniqueNames(model, report);
  checkReferences(model, report);
  checkPlacements(model, report);
  checkTopics(model, report);
  checkMqttSettings(root, model, report);
  checkTiming(model, report);
  checkPair(root, report);
  checkBudgets(model, report);
  return issues;
}

// ---------------------------------------------------------------------------------------------
// A loose, field-by-field validated view of the raw data.

type Report = (path: PathSegment[], message: string) => void;
type Loose<T> = { [K in keyof T]?: T[K] };

interface Ref {
  name: string;
  index: number;
}

interface LooseList<T> {
  items: T[];
  /** Every entry has a valid name and the list itself is valid: "unknown" verdicts are sound. */
  complete: boolean;
}

interface LooseNode extends Loose<Omit<NodeConfig, "requiredSensors">> {
  index: number;
  requiredSensors: Ref[];
  /** A topic key is present but invalid: leave this node out of the topic checks. */
  badTopic: boolean;
}

interface LooseSensor extends Loose<SensorConfig> {
  index: number;
  badTopic: boolean;
}

interface LoosePlacement {
  deployment?: string;
  node?: string;
  sensors: Ref[];
  /** The sensor list is valid and every entry a valid name. */
  sensorsComplete: boolean;
}

interface LooseWorkload {
  index: number;
  name?: string;
  namespace?: string;
  asil?: Config["workloads"][number]["asil"];
  fttiMs?: number;
  primary?: LoosePlacement;
  standby?: LoosePlacement;
  /** Present in the file (valid or not). */
  hasAppHeartbeat: boolean;
  appHeartbeat: { periodMs?: number; timeoutMs?: number };
}

interface Model {
  supervisor: Loose<Config["supervisor"]>;
  mqtt: Loose<Config["mqtt"]>;
  nodes: LooseList<LooseNode>;
  sensors: LooseList<LooseSensor>;
  workloads: LooseList<LooseWorkload>;
  /** First node / sensor of each name. */
  nodeByName: Map<string, LooseNode>;
  sensorByName: Map<string, LooseSensor>;
}

const sensorNameSchema = SensorSchema.shape.name;
const appHeartbeatSchema = WorkloadSchema.shape.appHeartbeat.unwrap();

function looseModel(root: Record<string, unknown>): Model {
  const supervisor = pick(SupervisorSchema, isRecord(root.supervisor) ? root.supervisor : {});
  const mqtt = pick(MqttSchema, isRecord(root.mqtt) ? root.mqtt : {});
  const nodes = looseList(root.nodes, false, (value, index): LooseNode => {
    const fields = pick(NodeSchema, value);
    return {
      ...fields,
      index,
      requiredSensors: refs(field(value, "requiredSensors")).items,
      badTopic: isBad(value, fields, "heartbeatTopic") || isBad(value, fields, "statusTopic"),
    };
  });
  const sensors = looseList(root.sensors, true, (value, index): LooseSensor => {
    const fields = pick(SensorSchema, value);
    return { ...fields, index, badTopic: isBad(value, fields, "topic") };
  });
  const workloads = looseList(root.workloads, true, (value, index): LooseWorkload => {
    const fields = pick(WorkloadSchema, value);
    const app = field(value, "appHeartbeat");
    return {
      index,
      name: fields.name,
      namespace: fields.namespace,
      asil: fields.asil,
      fttiMs: fields.fttiMs,
      primary: placement(field(value, "primary")),
      standby: placement(field(value, "standby")),
      hasAppHeartbeat: app !== undefined,
      appHeartbeat: pick(appHeartbeatSchema, app),
    };
  });
  const nodeByName = new Map<string, LooseNode>();
  for (const n of nodes.items) if (n.name && !nodeByName.has(n.name)) nodeByName.set(n.name, n);
  const sensorByName = new Map<string, LooseSensor>();
  for (const s of sensors.items) {
    if (s.name && !sensorByName.has(s.name)) sensorByName.set(s.name, s);
  }
  return { supervisor, mqtt, nodes, sensors, workloads, nodeByName, sensorByName };
}

function placement(value: unknown): LoosePlacement | undefined {
  if (!isRecord(value)) return undefined;
  const fields = pick(PlacementSchema, value);
  const sensors = refs(value.sensors);
  return {
    deployment: fields.deployment,
    node: fields.node,
    sensors: sensors.items,
    sensorsComplete: sensors.complete,
  };
}

/** Each field of `schema` parsed on its own; invalid fields are left out, defaults applied. */
function pick<S extends z.ZodObject>(schema: S, value: unknown): Loose<z.output<S>> {
  const out: Record<string, unknown> = {};
  if (!isRecord(value)) return out as Loose<z.output<S>>;
  for (const [key, fieldSchema] of Object.entries(schema.shape as Record<string, z.ZodType>)) {
    const result = fieldSchema.safeParse(value[key]);
    if (result.success && result.data !== undefined) out[key] = result.data;
  }
  return out as Loose<z.output<S>>;
}

/** `value[key]` was given but did not parse. */
function isBad(value: unknown, fields: Record<string, unknown>, key: string): boolean {
  return isRecord(value) && value[key] !== undefined && fields[key] === undefined;
}

function looseList<T extends { name?: string }>(
  value: unknown,
  defaultsToEmpty: boolean,
  each: (item: unknown, index: number) => T,
): LooseList<T> {
  if (value === undefined) return { items: [], complete: defaultsToEmpty };
  if (!Array.isArray(value)) return { items: [], complete: false };
  const items = value.map(each);
  return { items, complete: items.every((i) => i.name !== undefined) };
}

function refs(value: unknown): { items: Ref[]; complete: boolean } {
  if (value === undefined) return { items: [], complete: true };
  if (!Array.isArray(value)) return { items: [], complete: false };
  const items: Ref[] = [];
  value.forEach((v, index) => {
    if (sensorNameSchema.safeParse(v).success) items.push({ name: v as string, index });
  });
  return { items, complete: items.length === value.length };
}

function field(value: unknown, key: string): unknown {
  return isRecord(value) ? value[key] : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// The checks.

function checkUniqueNames(model: Model, report: Report): void {
  const lists = [
    ["node", "nodes", model.nodes.items],
    ["sensor", "sensors", model.sensors.items],
    ["workload", "workloads", model.workloads.items],
  ] as const;
  for (const [kind, key, items] of lists) {
    const first = new Map<string, number>();
    for (const item of items) {
      if (item.name === undefined) continue;
      const firstIndex = first.get(item.name);
      if (firstIndex === undefined) first.set(item.name, item.index);
      else {
        report(
          [key, item.index, "name"],
          `duplicate ${kind} name "${item.name}" (first defined at ${key}[${firstIndex}]); ` +
            `${kind} names must be unique`,
        );
      }
    }
  }
}

function checkReferences(model: Model, report: Report): void {
  const { nodes, sensors, nodeByName, sensorByName } = model;
  const knownNodes = () => [...nodeByName.keys()].join(", ") || "none";
  const knownSensors = () => [...sensorByName.keys()].join(", ") || "none";
  // Judged only when the sensor's node is known (else it is a follow-up of that error).
  const attachedElsewhere = (sensor: LooseSensor, node: string) =>
    sensor.node !== undefined && nodeByName.has(sensor.node) && sensor.node !== node;

  for (const sensor of sensors.items) {
    if (sensor.node !== undefined && nodes.complete && !nodeByName.has(sensor.node)) {
      report(
        ["sensors", sensor.index, "node"],
        `unknown node "${sensor.node}" (nodes: ${knownNodes()})`,
      );
    }
  }

  /**
   * Checks one list of sensor references at `path`: no sensor twice, every sensor known (judged
   * only when the sensor list is complete) and attached to `expectedNode` (judged only when that
   * node is given); `whyOwnNode` completes the message of a sensor attached elsewhere.
   */
  const checkSensorRefs = (
    path: PathSegment[],
    refs: readonly Ref[],
    expectedNode: string | undefined,
    whyOwnNode: string,
  ) => {
    const seen = new Set<string>();
    for (const ref of refs) {
      const at = [...path, ref.index];
      if (seen.has(ref.name)) {
        report(at, `sensor "${ref.name}" is listed twice`);
        continue;
      }
      seen.add(ref.name);
      const sensor = sensorByName.get(ref.name);
      if (sensor === undefined) {
        if (sensors.complete) {
          report(at, `unknown sensor "${ref.name}" (sensors: ${knownSensors()})`);
        }
      } else if (expectedNode !== undefined && attachedElsewhere(sensor, expectedNode)) {
        report(
          at,
          `sensor "${ref.name}" is attached to node "${sensor.node}" ` +
            `(sensors[${sensor.index}].node), ${whyOwnNode}`,
        );
      }
    }
  };

  for (const node of nodes.items) {
    checkSensorRefs(
      ["nodes", node.index, "requiredSensors"],
      node.requiredSensors,
      node.name,
      `not to "${node.name}"; a node can only gate its heartbeat on its own sensors`,
    );
  }

  for (const workload of model.workloads.items) {
    for (const side of ["primary", "standby"] as const) {
      const place = workload[side];
      if (place === undefined) continue;
      const base = ["workloads", workload.index, side];
      // Attachment is only judged against a known node (else it is a follow-up of that error).
      const node = place.node !== undefined && nodeByName.has(place.node) ? place.node : undefined;
      if (place.node !== undefined && nodes.complete && node === undefined) {
        report([...base, "node"], `unknown node "${place.node}" (nodes: ${knownNodes()})`);
      }
      checkSensorRefs(
        [...base, "sensors"],
        place.sensors,
        node,
        `but the ${side} runs on "${node}"; a placement can only depend on sensors of its own ` +
          `node`,
      );
    }
  }
}

function checkPlacements(model: Model, report: Report): void {
  const owners = new Map<string, { index: number; side: string }>();
  for (const w of model.workloads.items) {
    const { primary, standby } = w;
    if (primary?.node !== undefined && primary.node === standby?.node) {
      report(
        ["workloads", w.index, "standby", "node"],
        `the standby runs on the same node as the primary ("${primary.node}"); a fault of that ` +
          `node would take both down, so the standby must be on another node`,
      );
    }
    if (primary?.deployment !== undefined && primary.deployment === standby?.deployment) {
      report(
        ["workloads", w.index, "standby", "deployment"],
        `the standby uses the primary's Deployment "${primary.deployment}" in namespace ` +
          `"${w.namespace ?? "default"}"; the standby must be a Deployment of its own`,
      );
    }
    if (w.namespace === undefined) continue;
    for (const side of ["primary", "standby"] as const) {
      const deployment = w[side]?.deployment;
      if (deployment === undefined) continue;
      const key = `${w.namespace}/${deployment}`;
      const owner = owners.get(key);
      if (owner === undefined) owners.set(key, { index: w.index, side });
      else if (owner.index !== w.index) {
        report(
          ["workloads", w.index, side, "deployment"],
          `Deployment "${key}" is already used by workloads[${owner.index}].${owner.side}; ` +
            `each Deployment belongs to one side of one workload`,
        );
      }
    }
  }
}

interface TopicUse {
  topic: string;
  /** Where it is configured; reported there when it collides. */
  path: PathSegment[];
  /** Explicitly configured (a collision between two derived topics is a duplicate name). */
  custom: boolean;
  what: string;
}

function checkTopics(model: Model, report: Report): void {
  const prefix = model.mqtt.topicPrefix;
  const uses: TopicUse[] = [];
  for (const n of model.nodes.items) {
    const name = n.name;
    if (name === undefined || n.badTopic) continue;
    for (
      const [key, defaultTopic, what] of [
        ["heartbeatTopic", nodeHeartbeatTopic, "heartbeat"],
        ["statusTopic", nodeStatusTopic, "status"],
      ] as const
    ) {
      const override = n[key];
      const topic = override ?? (prefix === undefined ? undefined : defaultTopic(prefix, name));
      if (topic === undefined) continue;
      uses.push({
        topic,
        path: ["nodes", n.index, key],
        custom: override !== undefined,
        what: `the ${what} topic of nodes[${n.index}] ("${name}")`,
      });
    }
  }
  for (const s of model.sensors.items) {
    if (s.name === undefined || s.badTopic) continue;
    const topic = s.topic ?? (prefix === undefined ? undefined : sensorTickTopic(prefix, s.name));
    if (topic === undefined) continue;
    uses.push({
      topic,
      path: ["sensors", s.index, "topic"],
      custom: s.topic !== undefined,
      what: `the tick topic of sensors[${s.index}] ("${s.name}")`,
    });
  }
  if (prefix !== undefined) {
    for (const w of model.workloads.items) {
      if (w.name === undefined) continue;
      for (const node of new Set([w.primary?.node, w.standby?.node])) {
        if (node === undefined) continue;
        uses.push({
          topic: appHeartbeatTopic(prefix, w.name, node),
          path: ["workloads", w.index],
          custom: false,
          what: `the app heartbeat topic of workload "${w.name}" on "${node}"`,
        });
      }
      uses.push({
        topic: promotionTopic(prefix, w.name),
        path: ["workloads", w.index],
        custom: false,
        what: `the promotion topic of workload "${w.name}"`,
      });
    }
    const id = model.supervisor.id;
    if (id !== undefined) {
      for (
        const [topic, what] of [
          [supervisorStatusTopic(prefix, id), "the supervisor's status topic"],
          [barrierTopic(prefix, id), "the supervisor's barrier topic"],
        ]
      ) uses.push({ topic, path: ["supervisor", "id"], custom: false, what });
    }
  }
  const first = new Map<string, TopicUse>();
  for (const use of uses) {
    const bytes = utf8ByteLength(use.topic);
    if (bytes > MAX_MQTT_STRING_BYTES) {
      // Derived topics are bounded by the name and prefix limits; this guards the sum.
      report(
        use.custom ? use.path : ["mqtt", "topicPrefix"],
        `${use.what} is ${bytes} bytes long in UTF-8; MQTT topics are at most ` +
          `${MAX_MQTT_STRING_BYTES} bytes (MQTT 3.1.1 §1.5.3)`,
      );
      continue;
    }
    const earlier = first.get(use.topic);
    if (earlier === undefined) {
      first.set(use.topic, use);
      continue;
    }
    if (!use.custom && !earlier.custom) continue; // same derived topic = a duplicate name
    const [at, other] = use.custom ? [use, earlier] : [earlier, use];
    report(
      at.path,
      `MQTT topic "${use.topic}" is also ${other.what}; every supervised target needs a topic ` +
        `of its own, or one target's messages would keep the other alive`,
    );
  }
}

/**
 * MQTT settings that are valid one by one but not together: one source per credential, a
 * password only with a user name (MQTT 3.1.1 §3.1.2.9: "If the User Name Flag is set to 0, the
 * Password Flag MUST be set to 0"), TLS files only with a TLS URL (else they are silently
 * ignored), and a client certificate only with its key.
 */
function checkMqttSettings(root: Record<string, unknown>, model: Model, report: Report): void {
  const given = isRecord(root.mqtt) ? root.mqtt : {};
  const { mqtt } = model;
  const has = (key: string) => given[key] !== undefined;
  if (has("username") && has("usernameEnv")) {
    report(
      ["mqtt", "usernameEnv"],
      "both username and usernameEnv are set; give the user name one way only",
    );
  }
  if (has("passwordEnv") && has("passwordFile")) {
    report(
      ["mqtt", "passwordFile"],
      "both passwordEnv and passwordFile are set; give the password one way only",
    );
  }
  if ((has("passwordEnv") || has("passwordFile")) && !has("username") && !has("usernameEnv")) {
    report(
      ["mqtt", has("passwordEnv") ? "passwordEnv" : "passwordFile"],
      "a password needs a user name (mqtt.username or mqtt.usernameEnv): MQTT 3.1.1 §3.1.2.9 " +
        "allows no password without a user name",
    );
  }
  const schemeOf = (url: string | undefined) =>
    url === undefined ? undefined : url.slice(0, url.indexOf(":")).toLowerCase();
  const isTls = (scheme: string) => TLS_URL_SCHEMES.includes(scheme);
  if (typeof mqtt.pairUrl === "string" && typeof mqtt.url === "string") {
    if (sameBroker(mqtt.url, mqtt.pairUrl)) {
      report(
        ["mqtt", "pairUrl"],
        "names the same broker as mqtt.url; a broker pair needs two brokers (two hosts, or two " +
          "ports)",
      );
    } else if (isTls(schemeOf(mqtt.url)!) !== isTls(schemeOf(mqtt.pairUrl)!)) {
      report(
        ["mqtt", "pairUrl"],
        "must use TLS exactly when mqtt.url does (both brokers of a pair share mqtt.tls and the " +
          "credentials)",
      );
    }
  }
  const tls = isRecord(given.tls) ? given.tls : undefined;
  if (tls === undefined) return;
  const scheme = schemeOf(mqtt.url);
  const files = ["caFile", "certFile", "keyFile"].filter((k) => tls[k] !== undefined);
  if (scheme !== undefined && files.length > 0 && !isTls(scheme)) {
    report(
      ["mqtt", "tls"],
      `TLS files are set but mqtt.url uses ${scheme}://, which does not use TLS, so they would ` +
        `be ignored; use ${TLS_URL_SCHEMES.map((s) => `${s}://`).join(", ")}`,
    );
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    const missing = tls.certFile === undefined ? "certFile" : "keyFile";
    report(
      ["mqtt", "tls", tls.certFile === undefined ? "keyFile" : "certFile"],
      `a client certificate needs both certFile and keyFile; ${missing} is missing`,
    );
  }
}

function checkTiming(model: Model, report: Report): void {
  const periods: { periodMs: number; path: PathSegment[] }[] = [];
  const rule = (
    periodMs: number | undefined,
    timeoutMs: number | undefined,
    path: PathSegment[],
    names: [timeout: string, period: string],
    target: string,
  ) => {
    if (periodMs === undefined) return;
    periods.push({ periodMs, path: [...path.slice(0, -1), names[1]] });
    if (timeoutMs === undefined || timeoutMs >= 2 * periodMs) return;
    report(
      path,
      `${names[0]} ${timeoutMs} is less than 2 × ${names[1]} (2 × ${periodMs} = ` +
        `${2 * periodMs} ms): heartbeats are QoS 0, so one lost message must not expire the ` +
        `${target}; use at least ${2 * periodMs}`,
    );
  };
  for (const n of model.nodes.items) {
    rule(n.heartbeatPeriodMs, n.heartbeatTimeoutMs, ["nodes", n.index, "heartbeatTimeoutMs"], [
      "heartbeatTimeoutMs",
      "heartbeatPeriodMs",
    ], "node");
  }
  for (const s of model.sensors.items) {
    rule(
      s.periodMs,
      s.timeoutMs,
      ["sensors", s.index, "timeoutMs"],
      ["timeoutMs", "periodMs"],
      "sensor",
    );
  }
  for (const w of model.workloads.items) {
    rule(
      w.appHeartbeat.periodMs,
      w.appHeartbeat.timeoutMs,
      ["workloads", w.index, "appHeartbeat", "timeoutMs"],
      ["timeoutMs", "periodMs"],
      "app",
    );
  }
  const windowMs = model.supervisor.recoveryWindowMs;
  if (windowMs === undefined || periods.length === 0) return;
  const largest = periods.reduce((a, b) => (b.periodMs > a.periodMs ? b : a));
  if (windowMs < largest.periodMs) {
    report(
      ["supervisor", "recoveryWindowMs"],
      `recoveryWindowMs ${windowMs} is shorter than the largest period, ${largest.periodMs} ms ` +
        `(${formatPath(largest.path)}): a recovering target could not send even one heartbeat ` +
        `within the window`,
    );
  }
}

/**
 * A supervisor pair's timing (see `PairSchema`): the leader acts only within `renewDeadlineMs` of
 * its last renew, and the standby takes over after `leaseDurationMs` without a change, so the
 * deadline must be shorter than the duration (or both could act at once); it renews every
 * `retryPeriodMs`, which must be shorter than the deadline (or a single slow renew would stop it).
 */
function checkPair(root: Record<string, unknown>, report: Report): void {
  const supervisor = isRecord(root.supervisor) ? root.supervisor : {};
  if (!isRecord(supervisor.pair)) return;
  const pair = pick(PairSchema, supervisor.pair);
  const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = pair;
  const at = (key: string) => ["supervisor", "pair", key];
  if (
    renewDeadlineMs !== undefined && leaseDurationMs !== undefined &&
    renewDeadlineMs >= leaseDurationMs
  ) {
    report(
      at("renewDeadlineMs"),
      `renewDeadlineMs ${renewDeadlineMs} must be less than leaseDurationMs ${leaseDurationMs}: ` +
        `the leader must stop acting before the standby may take the lease over, or both could ` +
        `act at once`,
    );
  }
  if (
    retryPeriodMs !== undefined && renewDeadlineMs !== undefined &&
    retryPeriodMs >= renewDeadlineMs
  ) {
    report(
      at("retryPeriodMs"),
      `retryPeriodMs ${retryPeriodMs} must be less than renewDeadlineMs ${renewDeadlineMs}: the ` +
        `leader renews every retry period and steps down at the renew deadline, so it needs more ` +
        `than one try`,
    );
  }
}

function checkBudgets(model: Model, report: Report): void {
  const { reactionBudgetMs, lagToleranceMs } = model.supervisor;
  if (reactionBudgetMs === undefined || lagToleranceMs === undefined) return;
  const timeouts = {
    node: (name: string) => model.nodeByName.get(name)?.heartbeatTimeoutMs,
    sensor: (name: string) => model.sensorByName.get(name)?.timeoutMs,
  };
  for (const w of model.workloads.items) {
    const { fttiMs, primary, standby } = w;
    if (fttiMs === undefined || primary?.node === undefined || standby?.node === undefined) {
      continue;
    }
    if (!primary.sensorsComplete || !standby.sensorsComplete) continue;
    if (w.hasAppHeartbeat && w.appHeartbeat.timeoutMs === undefined) continue;
    const input: BudgetWorkload = {
      name: w.name ?? `workloads[${w.index}]`,
      asil: w.asil ?? "QM",
      fttiMs,
      primary: { node: primary.node, sensors: primary.sensors.map((r) => r.name) },
      standby: { node: standby.node, sensors: standby.sensors.map((r) => r.name) },
      appHeartbeat: w.appHeartbeat.timeoutMs === undefined
        ? undefined
        : { timeoutMs: w.appHeartbeat.timeoutMs },
    };
    const budget = workloadBudget(input, timeouts, { reactionBudgetMs, lagToleranceMs });
    if (budget === undefined || budget.marginMs >= 0) continue;
    report(
      ["workloads", w.index, "fttiMs"],
      `FTTI budget exceeded by ${-budget.marginMs} ms: detection ${budget.detectionMs} ms ` +
        `(${budget.limitedBy}) + lateness allowance ${budget.latenessAllowanceMs} ms ` +
        `(supervisor.lagToleranceMs) + reaction budget ${budget.reactionBudgetMs} ms ` +
        `(supervisor.reactionBudgetMs) = ${budget.totalMs} ms > fttiMs ${fttiMs} ` +
        `(ISO 26262-1: FDTI + FRTI ≤ FTTI); shorten the limiting timeout or the supervisor's ` +
        `budgets, or revisit the FTTI`,
    );
  }
}

/** Two broker URLs that reach one broker: same host (case-insensitive) and same effective port. */
function sameBroker(a: string, b: string): boolean {
  const parse = (text: string) => {
    try {
      const url = new URL(text);
      const scheme = url.protocol.slice(0, -1).toLowerCase();
      const port = url.port !== "" ? url.port : ({
        mqtt: "1883",
        tcp: "1883",
        mqtts: "8883",
        ssl: "8883",
        ws: "80",
        wss: "443",
      } as Record<string, string>)[scheme] ?? "";
      return `${url.hostname.toLowerCase()}:${port}`;
    } catch {
      return undefined;
    }
  };
  const pa = parse(a);
  return pa !== undefined && pa === parse(b);
}
