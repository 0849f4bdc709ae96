/**
 * Hostile payload generators for every topic kind the runtime reads, and a reference oracle that
 * says, from the wire format's documentation alone (`lib/wire/wire.ts`), whether a payload must be
 * accepted. The oracle is written independently of the decoders it checks.
 *
 * @module
 */
import { NASTY_NUMBERS, NASTY_STRINGS, type Rand, utf8 } from "./random.ts";

/**
 * Topic kinds the runtime reads (`lib/topology/topics.ts`): the supervisor's ingest reads all six,
 * the node agent its required sensors' ticks and its workloads' promotions.
 */
export type Kind =
  | "nodeHeartbeat"
  | "sensorTick"
  | "appHeartbeat"
  | "nodeStatus"
  | "promotion"
  | "barrier";

/** Why a message was not accepted, named after the ingest counter that must count it. */
export type Verdict =
  | "accepted"
  | "unknownTopic"
  | "oversized"
  | "retainedBeats"
  | "malformed"
  | "forgedBarriers"
  | "staleBarriers"
  | "refusedPromotions";

/** Longest heartbeat, tick or barrier payload, bytes (repeated on purpose: the test pins it). */
export const BEAT_BOUND = 256;
/** Longest node status payload, bytes. */
export const STATUS_BOUND = 4096;
/** Longest promotion payload, bytes. */
export const PROMOTION_BOUND = 4096;
/** Highest epoch a promotion may carry (2^31 − 1; repeated on purpose: the test pins it). */
export const EPOCH_BOUND = 2147483647;

const decoder = new TextDecoder();

function jsonObject(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(decoder.decode(bytes));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reference: a heartbeat/tick is a JSON object (so `{"seq":007}` is not one) whose `seq`
 * is a non-negative safe integer; returns it, else `undefined`.
 */
export function refBeat(bytes: Uint8Array): number | undefined {
  if (bytes.length > BEAT_BOUND) return undefined;
  const seq = jsonObject(bytes)?.seq;
  return typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
}

/**
 * Reference: a barrier is a JSON object with a non-negative safe integer `seq` and, if any, a
 * string `nonce`; it counts only with the supervisor's own `nonce` (else it is forged) and a `seq`
 * in flight (else it is stale).
 */
export function refBarrier(
  bytes: Uint8Array,
  nonce: string,
  inFlight: (seq: number) => boolean,
): "accepted" | "malformed" | "forgedBarriers" | "staleBarriers" {
  if (bytes.length > BEAT_BOUND) return "malformed";
  const p = jsonObject(bytes);
  const seq = p?.seq;
  if (!p || typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) return "malformed";
  if (p.nonce !== undefined && typeof p.nonce !== "string") return "malformed";
  if (p.nonce !== nonce) return "forgedBarriers";
  return inFlight(seq) ? "accepted" : "staleBarriers";
}

function isSensorName(s: string): boolean {
  if (s.length === 0) return false;
  const alnum = (c: string) => (c >= "a" && c <= "z") || (c >= "0" && c <= "9");
  if (!alnum(s[0]) || !alnum(s[s.length - 1])) return false;
  for (const c of s) if (!alnum(c) && c !== "-" && c !== ".") return false;
  return true;
}

/**
 * Reference: `online`, `offline`, `draining` or `degraded:` + unique sensor names (lowercase
 * alphanumerics, `-` and `.` inside); returns the state, else `undefined`.
 */
export function refStatus(bytes: Uint8Array): string | undefined {
  if (bytes.length > STATUS_BOUND) return undefined;
  const text = decoder.decode(bytes);
  if (text === "online" || text === "offline" || text === "draining") return text;
  if (!text.startsWith("degraded:")) return undefined;
  const names = text.slice(9).split(",");
  if (!names.every(isSensorName) || new Set(names).size !== names.length) return undefined;
  return "degraded";
}

/** Fields a consumer acts on: a promotion without one of them as a string is malformed. */
const PROMOTION_STRINGS = [
  "workload",
  "namespace",
  "activeNode",
  "activeDeployment",
  "failedNode",
  "reason",
] as const;
/**
 * Informational field (`issuedAt`: for humans and logs, never for decisions): the wire format does
 * not require it, so a promotion without it (or with another type) is accepted.
 */
const PROMOTION_INFO = ["issuedAt"] as const;

/** A decoded promotion, as far as the oracle needs it. */
export interface RefPromotion {
  epoch: number;
  activeNode: string;
  issuer: string;
}

/**
 * Reference: `v` is 1, every field a consumer acts on is a string, `issuer` (else the older
 * `supervisor`) a non-empty string, `epoch` an integer from 1 to {@linkcode EPOCH_BOUND}.
 */
export function refPromotion(bytes: Uint8Array, workload: string): RefPromotion | undefined {
  if (bytes.length > PROMOTION_BOUND) return undefined;
  const p = jsonObject(bytes);
  if (!p || p.v !== 1) return undefined;
  if (!PROMOTION_STRINGS.every((k) => typeof p[k] === "string")) return undefined;
  const epoch = p.epoch;
  if (typeof epoch !== "number" || !Number.isInteger(epoch) || epoch < 1) return undefined;
  if (epoch > EPOCH_BOUND) return undefined;
  const issuer = "issuer" in p ? p.issuer : p.supervisor;
  if (typeof issuer !== "string" || issuer === "") return undefined;
  if (p.workload !== workload) return undefined;
  return { epoch, activeNode: p.activeNode as string, issuer };
}

/** Who may be obeyed for a workload, and what the consumer holds (see {@linkcode refObey}). */
export interface ObeyScope {
  /** Supervisor ids of the config. */
  issuers: readonly string[];
  /** The workload's primary and standby nodes. */
  nodes: readonly string[];
  /** The highest epoch the consumer holds and its active node (epoch 0: none). */
  held: { epoch: number; activeNode: string };
}

/**
 * Reference: a well-formed promotion is refused unless its issuer is a supervisor of the config,
 * its active node one of the workload's two nodes, and its epoch not the held one with another
 * node; a lower epoch, or the held one with the same node, is stale; anything else is obeyed.
 */
export function refObey(p: RefPromotion, scope: ObeyScope): "obey" | "stale" | "refused" {
  if (!scope.issuers.includes(p.issuer)) return "refused";
  if (!scope.nodes.includes(p.activeNode)) return "refused";
  const { held } = scope;
  if (held.epoch > 0 && p.epoch === held.epoch && p.activeNode !== held.activeNode) {
    return "refused";
  }
  return p.epoch <= held.epoch ? "stale" : "obey";
}

/** What the oracle needs to know beyond the payload (see {@linkcode verdict}). */
export interface VerdictContext {
  /** Promotions: the workload of the topic and what may be obeyed. */
  workload?: string;
  scope?: ObeyScope;
  /** Barriers: the supervisor's nonce and whether a `seq` is in flight. */
  nonce?: string;
  inFlight?: (seq: number) => boolean;
}

/** What ingest must do with a message on a known topic of `kind` (see `lib/ingest/ingest.ts`). */
export function verdict(
  kind: Kind,
  bytes: Uint8Array,
  retained: boolean,
  ctx: VerdictContext = {},
): Verdict {
  const beatLike = kind === "nodeHeartbeat" || kind === "sensorTick" ||
    kind === "appHeartbeat" || kind === "barrier";
  const bound = kind === "promotion"
    ? PROMOTION_BOUND
    : kind === "nodeStatus"
    ? STATUS_BOUND
    : BEAT_BOUND;
  if (bytes.length > bound) return "oversized";
  if (beatLike && retained) return "retainedBeats";
  if (kind === "barrier") return refBarrier(bytes, ctx.nonce ?? "", ctx.inFlight ?? (() => false));
  if (beatLike) return refBeat(bytes) === undefined ? "malformed" : "accepted";
  if (kind === "nodeStatus") return refStatus(bytes) === undefined ? "malformed" : "accepted";
  const p = refPromotion(bytes, ctx.workload ?? "");
  if (p === undefined) return "malformed";
  if (ctx.scope && refObey(p, ctx.scope) === "refused") return "refusedPromotions";
  return "accepted";
}

/** A hostile (or, often enough, valid) heartbeat/tick/barrier payload. */
export function beatPayload(r: Rand, seqHint = 1 + r.int(1e9)): Uint8Array {
  const canonical = `{"seq":${seqHint}}`;
  switch (r.int(20)) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 4:
      return utf8(canonical);
    case 5:
    case 6:
      return utf8(`{"seq":${r.pick(NASTY_NUMBERS)}}`);
    case 7:
      return utf8(
        r.pick([
          ` { "seq" : ${seqHint} , "t" : "x" } `,
          `{"seq":${seqHint},"seq":-1}`,
          `{"seq":-1,"seq":${seqHint}}`,
          `{"seq":${seqHint}.0}`,
          `{"seq":${seqHint}e0}`,
          `{"seq":${seqHint}}\n`,
          `{"__proto__":{"seq":1}}`,
          `{"seq":${seqHint},"__proto__":null}`,
        ]),
      );
    case 8:
      return utf8(
        r.pick([
          `[{"seq":1}]`,
          `"seq"`,
          "null",
          "1",
          `{"Seq":1}`,
          `{"seq":{"seq":1}}`,
          `{"seq":[1]}`,
          `{"seq":"1"}`,
          `{seq:1}`,
          `{'seq':1}`,
          `{"seq":1`,
          `{"seq":}`,
          "{}",
        ]),
      );
    case 9:
      return utf8(r.nested(1 + r.int(200)));
    case 10:
    case 11:
    case 12:
    case 13:
      return r.mutate(utf8(canonical));
    case 14:
      return r.bytes(40);
    case 15:
      return utf8(r.unicode(30));
    case 16:
      return r.oversize(canonical, BEAT_BOUND + 1 + r.int(r.chance(0.1) ? 100_000 : 200));
    case 17: // right at the bound: still accepted when valid
      return r.oversize(canonical, BEAT_BOUND - r.int(2));
    case 18:
      return new Uint8Array(0);
    default:
      return utf8(`{"seq":${r.pick(NASTY_NUMBERS)},"x":${JSON.stringify(r.wrongValue())}}`);
  }
}

/**
 * A hostile (or valid) barrier payload near `seqHint`: the supervisor's own `nonce` (often), none,
 * another one, or any hostile heartbeat payload.
 */
export function barrierPayload(r: Rand, seqHint: number, nonce: string): Uint8Array {
  switch (r.int(8)) {
    case 0:
    case 1:
      return utf8(JSON.stringify({ seq: seqHint, nonce }));
    case 2:
      return utf8(`{"seq":${seqHint}}`); // a forgery that does not know the nonce
    case 3:
      return utf8(
        JSON.stringify({
          seq: seqHint,
          nonce: r.pick([nonce.toUpperCase(), nonce.slice(1), `${nonce} `, "", "0".repeat(32)]),
        }),
      );
    case 4:
      return utf8(`{"seq":${seqHint},"nonce":${JSON.stringify(r.wrongValue())}}`);
    case 5:
      return r.mutate(utf8(JSON.stringify({ seq: seqHint, nonce })));
    default:
      return beatPayload(r, seqHint);
  }
}

/** A hostile (or valid) node status payload; `sensors` are names worth using. */
export function statusPayload(r: Rand, sensors: readonly string[]): Uint8Array {
  const list = (n: number) => Array.from({ length: n }, () => r.pick(sensors));
  switch (r.int(16)) {
    case 0:
    case 1:
    case 2:
      return utf8(r.pick(["online", "offline", "draining"]));
    case 3:
    case 4:
      return utf8(`degraded:${[...new Set(list(1 + r.int(3)))].join(",")}`);
    case 5:
      return utf8(`degraded:${list(2 + r.int(3)).join(",")}`); // often duplicates
    case 6:
      return utf8(
        r.pick([
          "degraded:",
          "degraded",
          "degraded:a,,b",
          "degraded:,a",
          "degraded:a,",
          "Online",
          " online",
          "online\n",
          "ONLINE",
          "offline\u0000",
          "degraded:Camera",
          "degraded:cam_1",
          "degraded:-cam",
          "degraded:cam-",
          "degraded:a.b",
          "degraded:ü",
          '"online"',
          "null",
          "{}",
        ]),
      );
    case 7:
      return utf8(`degraded:${r.pick(NASTY_STRINGS)}`);
    case 8:
    case 9:
    case 10:
      return r.mutate(utf8(r.pick(["online", "offline", "draining", `degraded:${list(1)}`])));
    case 11:
      return utf8(r.unicode(20));
    case 12:
      return r.bytes(20);
    case 13: { // oversized: a long list of distinct valid names
      const names: string[] = [];
      let n = 9;
      for (let i = 0; n <= STATUS_BOUND + r.int(2000); i++) {
        names.push(`s${i}`);
        n += `s${i}`.length + 1;
      }
      return utf8(`degraded:${names.join(",")}`);
    }
    case 14:
      return new Uint8Array(0);
    default:
      return utf8(`degraded:${"a".repeat(STATUS_BOUND - 9 - r.int(3) + r.int(3))}`);
  }
}

/**
 * A well-formed promotion object for `workload`, at `epoch` (default: 1–50), from `issuer`
 * (sometimes from another one: `mallory`, or in the older `supervisor` field), naming one of
 * `nodes` (the workload's two nodes first) active, rarely another string.
 */
export function promotionObject(
  r: Rand,
  workload: string,
  nodes: readonly string[],
  epoch = 1 + r.int(50),
  issuer = "supervisor",
): Record<string, unknown> {
  const from = r.chance(0.05) ? r.pick(["mallory", `${issuer} `, issuer.toUpperCase()]) : issuer;
  const p: Record<string, unknown> = {
    v: 1,
    workload,
    namespace: "default",
    activeNode: r.chance(0.9) ? r.pick(r.chance(0.8) ? nodes.slice(0, 2) : nodes) : r.pick(
      NASTY_STRINGS,
    ),
    activeDeployment: `${workload}-${r.int(2) ? "standby" : "original"}`,
    failedNode: r.pick(nodes),
    epoch,
    reason: r.pick(["node-expired", "node-offline", "planned-stop", "app-expired", "x"]),
    issuer: from,
    issuedAt: "2026-12-02T00:00:00.000Z",
  };
  if (r.chance(0.05)) {
    delete p.issuer;
    p.supervisor = from; // written by a release before the issuer check
  }
  return p;
}

const PROMOTION_KEYS = ["v", "epoch", "issuer", ...PROMOTION_STRINGS, ...PROMOTION_INFO];

/**
 * A hostile (or valid) promotion payload for `workload` (`others`: other workload names; `nodes`:
 * its two nodes first, then the vehicle's others), near `epoch` when given. Epochs above
 * {@linkcode EPOCH_BOUND} (2^31, 2^53 − 1, 1e300) are malformed; a valid {@linkcode EPOCH_BOUND}
 * is drawn only with `maxEpoch` (once adopted, it ends every later failover of that workload).
 */
export function promotionPayload(
  r: Rand,
  workload: string,
  others: readonly string[],
  nodes: readonly string[],
  epoch?: number,
  maxEpoch = false,
  issuer = "supervisor",
): Uint8Array {
  const p = promotionObject(r, workload, nodes, epoch, issuer);
  switch (r.int(18)) {
    case 0:
    case 1:
    case 2:
    case 3:
      return utf8(JSON.stringify(p));
    case 4: // one field missing
      delete p[r.pick(PROMOTION_KEYS)];
      return utf8(JSON.stringify(p));
    case 5:
    case 6: // one field of a wrong type
      p[r.pick(PROMOTION_KEYS)] = r.wrongValue();
      return utf8(JSON.stringify(p));
    case 7: { // a nasty epoch (text, so that NaN, 1e400, -0 reach the parser)
      const nasty = r.pick(NASTY_NUMBERS);
      const epoch = Number(nasty) === EPOCH_BOUND && !maxEpoch ? "1e400" : nasty;
      return utf8(JSON.stringify({ ...p, epoch: 0 }).replace('"epoch":0', `"epoch":${epoch}`));
    }
    case 8:
      p.v = r.pick([0, 2, "1", 1.5, null, true]);
      return utf8(JSON.stringify(p));
    case 9:
      p.workload = r.pick([...others, workload.toUpperCase(), `${workload} `, ""]);
      return utf8(JSON.stringify(p));
    case 10:
      p.epoch = r.pick([
        maxEpoch ? EPOCH_BOUND : 2 ** 53 + 2,
        maxEpoch ? EPOCH_BOUND - 1 : -Number.MAX_SAFE_INTEGER,
        EPOCH_BOUND + 1,
        Number.MAX_SAFE_INTEGER,
        2 ** 53,
        1e300,
      ]);
      return utf8(JSON.stringify(p));
    case 11:
      return utf8(
        JSON.stringify({ ...p, extra: r.wrongValue(), nested: JSON.parse(r.nested(30)) }),
      );
    case 12:
    case 13:
    case 14:
      return r.mutate(utf8(JSON.stringify(p)));
    case 15:
      return r.oversize(
        JSON.stringify(p),
        PROMOTION_BOUND + (r.chance(0.5) ? -r.int(2) : 1 + r.int(50_000)),
      );
    case 16:
      return r.chance(0.5)
        ? new Uint8Array(0)
        : utf8(r.pick(["[]", "null", "1", `"x"`, r.nested(500)]));
    default:
      return r.chance(0.5) ? r.bytes(100) : utf8(r.unicode(60));
  }
}
