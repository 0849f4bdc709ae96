/**
 * A supervisor's status snapshot (what `sdv-failover status` shows, like Pacemaker's `crm_mon`):
 * its shape, its wire encoding on `{p}/supervisor/{id}/state` and never-throwing decoders.
 *
 * Shape, version 1 ({@linkcode StatusSnapshot}): the supervisor itself (id, lifecycle, role in a
 * pair, armed, ingest fault), then one row per node, sensor, app instance and workload. Ages
 * (`heartbeatAgeMs`, `ageMs`, `upMs`) are monotonic-clock differences taken when the snapshot was
 * built, never wall-clock differences; `generatedAt` is the one wall time, for the reader.
 *
 * On the bus (retained, QoS 1) the payload is the snapshot's JSON **gzip-compressed** (RFC 1952):
 * the locked broker drops payloads over 4096 bytes (`message_size_limit`, `lib/broker/`), and the
 * plain JSON of a 20-node vehicle is ≈ 7.6 KB while its gzip is ≈ 0.8 KB. Read it by hand with
 * `mosquitto_sub -N -C 1 -t sdv/supervisor/supervisor/state | gunzip`. The HTTP `/status` route
 * serves the plain JSON (no size limit there).
 *
 * @module
 */
import { gunzipSync, gzipSync } from "node:zlib";
import { z } from "zod";

/** Version of the snapshot shape (`v`). */
export const STATUS_SNAPSHOT_VERSION = 1;

/**
 * Longest state payload (gzip bytes) published or accepted: the locked broker's payload limit
 * (`MESSAGE_SIZE_LIMIT_BYTES` in `lib/broker/mosquitto_conf.ts` is at least this). A larger one
 * is not published (the supervisor logs `state-too-large` once) and, received, is dropped unread.
 */
export const MAX_STATE_BYTES = 4096;

/**
 * Longest decompressed state accepted, bytes: a bound on what a forged payload can make the
 * reader inflate (a gzip bomb), far above any vehicle's snapshot (≈ 380 bytes per node with two
 * sensors and half a workload).
 */
export const MAX_STATE_JSON_BYTES = 1024 * 1024;

/** Supervision states, as the watchdog names them (AUTOSAR WdgM vocabulary). */
const TargetStateSchema = z.enum(["INIT", "OK", "EXPIRED", "RECOVERING", "DEACTIVATED"]);

/** A supervision state (see `lib/watchdog/watchdog.ts`). */
export type TargetStateName = z.infer<typeof TargetStateSchema>;

const age = z.number().nonnegative().nullable();

/** The supervisor instance that built the snapshot. */
const SupervisorRowSchema = z.object({
  /** `supervisor.id` (or `run --id`). */
  id: z.string(),
  /** Lifecycle: created, starting, running, stopping, stopped. */
  lifecycle: z.enum(["created", "starting", "running", "stopping", "stopped"]),
  /**
   * `single` (no pair), `leader` (this instance of the pair acts now) or `standby` (it decides
   * nothing until it leads).
   */
  role: z.enum(["single", "leader", "standby"]),
  /** The leader's term (the Lease's transitions) when this instance leads or led; else null. */
  term: z.number().int().nonnegative().nullable(),
  /** The watchdog is armed (subscribed, deadlines running). */
  armed: z.boolean(),
  /** Supervision is suspended: the broker was lost or stalled (no failover meanwhile). */
  ingestFaulted: z.boolean(),
  /** Time since `start()`, monotonic ms (null before it). */
  upMs: age,
  /** Reconcile keys still queued (0 when converged or not built yet). */
  reconcileQueue: z.number().int().nonnegative(),
  /** Messages received, malformed dropped, promotions refused, expiries (counters since start). */
  counters: z.object({
    messages: z.number().int().nonnegative(),
    malformed: z.number().int().nonnegative(),
    refusedPromotions: z.number().int().nonnegative(),
    expiries: z.number().int().nonnegative(),
  }),
});

const NodeRowSchema = z.object({
  name: z.string(),
  state: TargetStateSchema,
  /** Time since its last heartbeat, monotonic ms; null when never heard from. */
  heartbeatAgeMs: age,
  /**
   * `none`; `pending` (its expiry was suspect or moved nothing: the fence waits
   * `fenceConfirmationMs`); `fenced` (our cordon and/or NoExecute taint is desired).
   */
  fence: z.enum(["none", "pending", "fenced"]),
  /** Why it is fenced (`node-expired`, `node-offline`, `node-never-seen`, `adopted`), else null. */
  fenceReason: z.string().nullable(),
  /** It announced a planned stop (`draining`) and has not come back. */
  draining: z.boolean(),
});

const SensorRowSchema = z.object({
  name: z.string(),
  node: z.string(),
  state: TargetStateSchema,
  /** Time since its last tick, monotonic ms; null when never seen. */
  ageMs: age,
});

const AppRowSchema = z.object({
  workload: z.string(),
  /** The node this instance runs on. */
  node: z.string(),
  side: z.enum(["primary", "standby"]),
  state: TargetStateSchema,
  /** Time since its last app heartbeat, monotonic ms; null when never seen. */
  ageMs: age,
});

const WorkloadRowSchema = z.object({
  name: z.string(),
  namespace: z.string(),
  asil: z.enum(["QM", "A", "B", "C", "D"]),
  /** Fault-tolerant time interval, ms (ISO 26262-1:2018, 3.61). */
  fttiMs: z.number().int().positive(),
  /** Which side holds the active role (desired state). */
  activeSide: z.enum(["primary", "standby"]),
  /** Node of the active instance. */
  activeNode: z.string(),
  /** Node of the instance that is the standby now. */
  standbyNode: z.string(),
  /** Fencing token: 0 = never failed over. */
  epoch: z.number().int().nonnegative(),
  /** Why the active side holds the role (`initial`, `node-expired`, `planned-stop`, …). */
  reason: z.string(),
  /** Wall time (ISO 8601) of the last failover decision; null at epoch 0. */
  failedAt: z.string().nullable(),
});

/** The zod schema of a {@linkcode StatusSnapshot} (what readers validate against). */
export const StatusSnapshotSchema = z.object({
  v: z.literal(STATUS_SNAPSHOT_VERSION),
  /** Wall time (ISO 8601) the snapshot was built: for the reader only, never for ages. */
  generatedAt: z.string(),
  supervisor: SupervisorRowSchema,
  nodes: z.array(NodeRowSchema),
  sensors: z.array(SensorRowSchema),
  apps: z.array(AppRowSchema),
  workloads: z.array(WorkloadRowSchema),
});

/**
 * A status snapshot, version 1. Field documentation: {@linkcode StatusSnapshotSchema}. Units are
 * in the names (`...Ms`: milliseconds).
 */
export type StatusSnapshot = z.infer<typeof StatusSnapshotSchema>;
/** The supervisor row of a snapshot. */
export type SupervisorRow = StatusSnapshot["supervisor"];
/** One node row. */
export type NodeRow = StatusSnapshot["nodes"][number];
/** One sensor row. */
export type SensorRow = StatusSnapshot["sensors"][number];
/** One app instance row. */
export type AppRow = StatusSnapshot["apps"][number];
/** One workload row. */
export type WorkloadRow = StatusSnapshot["workloads"][number];

/** Encodes the state payload: the snapshot's JSON, gzip-compressed. */
export function encodeStateMessage(snapshot: StatusSnapshot): Uint8Array {
  return new Uint8Array(gzipSync(JSON.stringify(snapshot)));
}

/**
 * Decodes a state payload; `undefined` when malformed: over {@linkcode MAX_STATE_BYTES}, not gzip,
 * inflating beyond {@linkcode MAX_STATE_JSON_BYTES}, not JSON, or not a version-1
 * {@linkcode StatusSnapshot}. Never throws.
 */
export function decodeStateMessage(payload: Uint8Array): StatusSnapshot | undefined {
  if (payload.length > MAX_STATE_BYTES) return undefined;
  let text: string;
  try {
    text = new TextDecoder().decode(
      gunzipSync(payload, { maxOutputLength: MAX_STATE_JSON_BYTES }),
    );
  } catch {
    return undefined;
  }
  return parseStatusSnapshot(text);
}

/**
 * Parses a snapshot from JSON text (the HTTP `/status` body) or an already parsed value;
 * `undefined` when it is not a version-1 {@linkcode StatusSnapshot} (or text over
 * {@linkcode MAX_STATE_JSON_BYTES}). Never throws.
 */
export function parseStatusSnapshot(input: string | unknown): StatusSnapshot | undefined {
  let value = input;
  if (typeof input === "string") {
    if (input.length > MAX_STATE_JSON_BYTES) return undefined;
    try {
      value = JSON.parse(input);
    } catch {
      return undefined;
    }
  }
  const parsed = StatusSnapshotSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
