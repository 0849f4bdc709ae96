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
export type Verdict = "accepted" | "unknownTopic" | "oversized" | "retainedBeats" | "malformed";

/** Longest heartbeat, tick or barrier payload, bytes (repeated on purpose: the test pins it). */
export const BEAT_BOUND = 256;
/** Longest node status payload, bytes. */
export const STATUS_BOUND = 4096;
/** Longest promotion payload, bytes. */
export const PROMOTION_BOUND = 4096;

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
 * Reference: a heartbeat/tick/barrier is a JSON object (so `{"seq":007}` is not one) whose `seq`
 * is a non-negative safe integer; returns it, else `undefined`.
 */
export function refBeat(bytes: Uint8Array): number | undefined {
  if (bytes.length > BEAT_BOUND) return undefined;
  const seq = jsonObject(bytes)?.seq;
  return typeof seq === "number" && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
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
 * Informational fields (`supervisor`, `issuedAt`: for humans and logs, never for decisions): the
 * wire format does not require them, so a promotion without them (or with another type) is accepted.
 */
const PROMOTION_INFO = ["supervisor", "issuedAt"] as const;

/** Reference: `v` is 1, every field a consumer acts on is a string, `epoch` ≥ 1 is safe. */
export function refPromotion(
  bytes: Uint8Array,
  workload: string,
): { epoch: number; activeNode: string } | undefined {
  if (bytes.length > PROMOTION_BOUND) return undefined;
  const p = jsonObject(bytes);
  if (!p || p.v !== 1) return undefined;
  if (!PROMOTION_STRINGS.every((k) => typeof p[k] === "string")) return undefined;
  const epoch = p.epoch;
  if (typeof epoch !== "number" || !Number.isSafeInteger(epoch) || epoch < 1) return undefined;
  if (p.workload !== workload) return undefined;
  return { epoch, activeNode: p.activeNode as string };
}

/** What ingest must do with a message on a known topic of `kind` (see `lib/ingest/ingest.ts`). */
export function verdict(
  kind: Kind,
  bytes: Uint8Array,
  retained: boolean,
  workload = "",
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
  if (beatLike) return refBeat(bytes) === undefined ? "malformed" : "accepted";
  if (kind === "nodeStatus") return refStatus(bytes) === undefined ? "malformed" : "accepted";
  return refPromotion(bytes, workload) === undefined ? "malformed" : "accepted";
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

/** A valid promotion object for `workload`, at `epoch` (default: 1–50). */
export function promotionObject(
  r: Rand,
  workload: string,
  nodes: readonly string[],
  epoch = 1 + r.int(50),
): Record<string, unknown> {
  return {
    v: 1,
    workload,
    namespace: "default",
    activeNode: r.chance(0.9) ? r.pick(nodes) : r.pick(NASTY_STRINGS),
    activeDeployment: `${workload}-${r.int(2) ? "standby" : "original"}`,
    failedNode: r.pick(nodes),
    epoch,
    reason: r.pick(["node-expired", "node-offline", "planned-stop", "app-expired", "x"]),
    supervisor: "fuzz",
    issuedAt: "2026-12-02T00:00:00.000Z",
  };
}

const PROMOTION_KEYS = ["v", "epoch", ...PROMOTION_STRINGS, ...PROMOTION_INFO];

/**
 * A hostile (or valid) promotion payload for `workload` (`others`: other workload names), near
 * `epoch` when given. Huge epochs (2^53 and above, 1e300) are malformed; a valid 2^53 − 1 is drawn
 * only with `maxSafeEpoch` (once adopted, it ends every later failover of that workload).
 */
export function promotionPayload(
  r: Rand,
  workload: string,
  others: readonly string[],
  nodes: readonly string[],
  epoch?: number,
  maxSafeEpoch = false,
): Uint8Array {
  const p = promotionObject(r, workload, nodes, epoch);
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
      const epoch = nasty === String(Number.MAX_SAFE_INTEGER) && !maxSafeEpoch ? "1e400" : nasty;
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
        maxSafeEpoch ? Number.MAX_SAFE_INTEGER : 2 ** 53 + 2,
        maxSafeEpoch ? Number.MAX_SAFE_INTEGER - 1 : -Number.MAX_SAFE_INTEGER,
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
