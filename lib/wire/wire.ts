/**
 * The MQTT wire format's payloads: encoders and never-throwing decoders for every payload the
 * product uses. Topic names live in `lib/topology/topics.ts`; `docs/design.md` has the whole table
 * (topics, payloads, QoS, retained) for readers.
 *
 * | topic (prefix `sdv` by default)          | payload                         | QoS | retained |
 * |------------------------------------------|---------------------------------|-----|----------|
 * | `{p}/node/{node}/hb`                     | `{"seq":n}` node heartbeat      | 0   | no       |
 * | `{p}/node/{node}/status`                 | {@linkcode NodeStatus} (LWT `offline`) | 1 | yes |
 * | `{p}/sensor/{sensor}/tick`               | `{"seq":n}` one frame seen      | 0   | no       |
 * | `{p}/app/{workload}/{node}/hb`           | `{"seq":n}` app alive           | 0   | no       |
 * | `{p}/workload/{workload}/promotion`      | {@linkcode Promotion} JSON      | 1   | yes      |
 * | `{p}/supervisor/{id}/status`             | `online` / `offline` (LWT)      | 1   | yes      |
 * | `{p}/supervisor/{id}/barrier`            | {@linkcode Barrier} JSON        | 0   | no       |
 * | `{p}/supervisor/{id}/state`              | gzip status snapshot (`state_message.ts`) | 1 | yes |
 *
 * Heartbeats are QoS 0: a retransmitted heartbeat is a stale one, and the next period brings a fresh
 * one. Status and promotion messages are QoS 1 and retained so that a client that (re)connects
 * learns the current state at once; the promotion's `epoch` is the fencing token.
 *
 * @module
 */
/** The payload of a liveness status topic. */
export type Status = "online" | "offline";

/**
 * Longest heartbeat, tick or barrier payload accepted, bytes: checked before any parsing, so a
 * flood of oversized messages costs a length comparison each (the canonical `{"seq":n}` is ≤ 27,
 * a barrier with its nonce ≤ 67).
 */
export const MAX_BEAT_BYTES = 256;
/**
 * Longest promotion payload accepted, bytes, checked before parsing: every agent parses every
 * promotion of its workloads, and a 1 MB nested JSON stalled a simulated fleet for ≈ 400 ms.
 */
export const MAX_PROMOTION_BYTES = 4096;

/** Encodes a heartbeat or tick payload. */
export function encodeBeat(seq: number): string {
  return `{"seq":${seq}}`;
}

/**
 * Decodes a heartbeat/tick payload (the `seq` of a barrier too: see {@linkcode decodeBarrier}).
 *
 * The canonical encoding (`{"seq":123}`, as {@linkcode encodeBeat} writes it) is parsed straight
 * from the bytes, without allocating a string or an object: at 50 k messages/s the garbage of
 * `JSON.parse` shows up as GC pauses in detection lateness. Anything else falls back to
 * `JSON.parse`, so any JSON object with a non-negative integer `seq` is accepted.
 * @returns the sequence number, or `undefined` when the payload is malformed. Never throws.
 */
export function decodeBeat(payload: Uint8Array | string): number | undefined {
  if (payload.length > MAX_BEAT_BYTES) return undefined;
  if (typeof payload !== "string") {
    const fast = decodeCanonicalBeat(payload);
    if (fast !== undefined) return fast;
  }
  const seq = parseJsonObject(payload)?.seq;
  return typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}

const BEAT_PREFIX = [0x7b, 0x22, 0x73, 0x65, 0x71, 0x22, 0x3a]; // {"seq":

/**
 * `{"seq":<digits>}` exactly, in JSON's spelling of a number (no leading zero: `{"seq":007}` is
 * not JSON), else undefined (then the caller falls back to JSON.parse, which decides).
 */
function decodeCanonicalBeat(bytes: Uint8Array): number | undefined {
  const n = bytes.length;
  if (n < 9 || n > 24 || bytes[n - 1] !== 0x7d) return undefined;
  for (let i = 0; i < 7; i++) if (bytes[i] !== BEAT_PREFIX[i]) return undefined;
  if (bytes[7] === 0x30 && n > 9) return undefined; // a leading zero
  let value = 0;
  for (let i = 7; i < n - 1; i++) {
    const digit = bytes[i] - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * An ingest barrier (topic `{p}/supervisor/{id}/barrier`, QoS 0, not retained): a message the
 * supervisor sends itself through the broker to confirm an expiry. `seq` numbers the barriers of
 * one process; `nonce` is that process's random nonce ({@linkcode newBarrierNonce}), so a barrier
 * forged by another client (which would turn a supervisor stall into a confirmed expiry) is told
 * apart from the supervisor's own without guessing `seq`.
 */
export interface Barrier {
  seq: number;
  /** The issuing supervisor process's nonce; `undefined` when the payload has none. */
  nonce: string | undefined;
}

/** Random bytes of a barrier nonce: 128 bits, never guessed by a blind forger. */
const BARRIER_NONCE_BYTES = 16;

/**
 * Draws a fresh barrier nonce (`crypto.getRandomValues`, 128 bits as 32 lowercase hex digits):
 * once per supervisor process, at start.
 */
export function newBarrierNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(BARRIER_NONCE_BYTES));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Encodes a barrier payload: `{"seq":n,"nonce":"<hex>"}`. */
export function encodeBarrier(seq: number, nonce: string): string {
  return `{"seq":${seq},"nonce":${JSON.stringify(nonce)}}`;
}

/**
 * Decodes a barrier payload: a JSON object with a non-negative safe integer `seq` and, when
 * present, a string `nonce` (a barrier without one decodes with `nonce: undefined`: the caller
 * counts it as forged, not as malformed). Over {@linkcode MAX_BEAT_BYTES} or otherwise off the
 * format: `undefined`. Never throws.
 */
export function decodeBarrier(payload: Uint8Array | string): Barrier | undefined {
  if (payload.length > MAX_BEAT_BYTES) return undefined;
  const p = parseJsonObject(payload);
  if (!p) return undefined;
  const { seq, nonce } = p;
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return undefined;
  if (nonce !== undefined && typeof nonce !== "string") return undefined;
  return { seq, nonce };
}

/** Decodes a supervisor status payload (`online`/`offline`); `undefined` when malformed. */
export function decodeStatus(payload: Uint8Array | string): Status | undefined {
  const text = typeof payload === "string" ? payload : textDecoder.decode(payload);
  return text === "online" || text === "offline" ? text : undefined;
}

/**
 * A node agent's retained status (topic `{p}/node/{node}/status`, QoS 1, retained):
 * - `online`: the agent runs and every required sensor of its node is fresh;
 * - `degraded:<sensor>,<sensor>…`: the agent runs (its heartbeats continue) but these required
 *   sensors are stale as seen on the node: only the workloads that need them are failed over;
 * - `draining`: a planned stop (SIGTERM/SIGHUP, an OTA): move the node's active workloads to their
 *   standbys now; the silence that follows is no fault and fences nothing;
 * - `offline`: the agent stopped in order after draining, or (as its Last Will) its connection
 *   broke.
 */
export type NodeStatus =
  | { state: "online" }
  | { state: "offline" }
  | { state: "draining" }
  | { state: "degraded"; stale: string[] };

/** Longest node status payload accepted, bytes (a bound before any parsing). */
export const MAX_NODE_STATUS_BYTES = 4096;

/** Encodes a node status payload (see {@linkcode NodeStatus}). */
export function encodeNodeStatus(status: NodeStatus): string {
  return status.state === "degraded" ? `degraded:${status.stale.join(",")}` : status.state;
}

/**
 * Decodes a node status payload; `undefined` when malformed (unknown state, empty or duplicate
 * sensor names, over {@linkcode MAX_NODE_STATUS_BYTES}). Never throws.
 */
export function decodeNodeStatus(payload: Uint8Array | string): NodeStatus | undefined {
  if (payload.length > MAX_NODE_STATUS_BYTES) return undefined;
  const text = typeof payload === "string" ? payload : textDecoder.decode(payload);
  if (text === "online" || text === "offline" || text === "draining") return { state: text };
  if (!text.startsWith("degraded:")) return undefined;
  const stale = text.slice("degraded:".length).split(",");
  if (stale.some((s) => !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(s))) return undefined;
  if (new Set(stale).size !== stale.length) return undefined;
  return { state: "degraded", stale };
}

/**
 * Highest epoch a promotion may carry: 2^31 − 1. Far above any vehicle's failovers in its lifetime
 * (one failover a second for 68 years), and far below 2^53 − 1, so the next epoch after any
 * accepted one is still an exact integer (no promotion can freeze a workload's epoch at the edge
 * of what a double represents) and the epoch fits a signed 32-bit field in any app's own code.
 * Every decoder rejects a promotion above it as malformed; the policy never issues one above it.
 */
export const MAX_EPOCH = 2 ** 31 - 1;

/** True when `epoch` is an epoch a promotion may carry: an integer from 1 to {@linkcode MAX_EPOCH}. */
export function isValidEpoch(epoch: unknown): epoch is number {
  return typeof epoch === "number" && Number.isInteger(epoch) && epoch >= 1 && epoch <= MAX_EPOCH;
}

/**
 * The retained promotion a supervisor publishes when it switches a workload to its standby.
 * Consumers (the apps, the agents) act on the highest `epoch` they have seen and ignore lower ones:
 * an old primary that sees an epoch above its own stands down (fencing). They obey a promotion only
 * when its `issuer` is a supervisor id of the config and its `activeNode` one of the workload's two
 * placements, and never one that names another active node at an epoch they already hold
 * (`checkPromotion` in `lib/wire/promotion_check.ts`).
 */
export interface Promotion {
  /** Wire format version. */
  v: 1;
  workload: string;
  namespace: string;
  /** Node that runs the instance that is now active. */
  activeNode: string;
  /** Deployment that is now active. */
  activeDeployment: string;
  /** Node whose instance lost the role. */
  failedNode: string;
  /**
   * Fencing token: strictly greater than every earlier promotion of this workload, from 1 to
   * {@linkcode MAX_EPOCH}.
   */
  epoch: number;
  /** Why: `node-expired`, `node-offline`, `sensor-expired:<sensor>`, `app-expired`. */
  reason: string;
  /**
   * The supervisor id (config `supervisor.id`) that issued it. Promotions written before the
   * issuer check name it in `supervisor`; {@linkcode decodePromotion} reads that when `issuer` is
   * absent.
   */
  issuer: string;
  /** Wall-clock issue time (ISO 8601), for humans and logs only; never used for decisions. */
  issuedAt: string;
}

/**
 * Decodes a promotion payload; `undefined` when malformed: over {@linkcode MAX_PROMOTION_BYTES},
 * not a JSON object, `v` not 1, one of `workload`, `namespace`, `activeNode`, `activeDeployment`,
 * `failedNode`, `reason` not a string, `issuer` (else, from earlier releases, `supervisor`) not a
 * non-empty string, or `epoch` not an integer from 1 to {@linkcode MAX_EPOCH}. `issuedAt` is
 * informational and not checked: a consumer checks its type before using it. Never throws.
 */
export function decodePromotion(payload: Uint8Array | string): Promotion | undefined {
  if (payload.length > MAX_PROMOTION_BYTES) return undefined;
  const p = parseJsonObject(payload);
  if (!p) return undefined;
  const strings = [
    "workload",
    "namespace",
    "activeNode",
    "activeDeployment",
    "failedNode",
    "reason",
  ];
  if (p.v !== 1 || !strings.every((k) => typeof p[k] === "string")) return undefined;
  if (!isValidEpoch(p.epoch)) return undefined;
  const issuer = p.issuer === undefined ? p.supervisor : p.issuer;
  if (typeof issuer !== "string" || issuer.length === 0) return undefined;
  return { ...p, issuer } as unknown as Promotion;
}

const textDecoder = new TextDecoder();

/** The payload as a JSON object, or `undefined` when it is not one. Never throws. */
function parseJsonObject(payload: Uint8Array | string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(typeof payload === "string" ? payload : textDecoder.decode(payload));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? value as Record<string, unknown>
      : undefined;
  } catch {
    return undefined;
  }
}
