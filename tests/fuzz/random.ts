/**
 * Seeded randomness and payload mutators for the fuzz tests: a tiny PRNG (mulberry32, `seededRandom` of bench/stats.ts) so that a
 * failure reproduces with its seed (`FUZZ_SEED=<n> deno test …`), and generators of the hostile
 * payloads the MQTT wire may carry (bit flips, truncations, huge or non-finite numbers, nested
 * JSON, wrong types, unicode, oversized and empty payloads).
 *
 * @module
 */
import { seededRandom } from "../../bench/stats.ts";

/**
 * The seed of this run, printed: `FUZZ_SEED` when set (a 32-bit unsigned integer), else a random
 * one.
 * @throws Error when `FUZZ_SEED` is set but not such an integer (a typo must not fuzz seed 0).
 */
export function fuzzSeed(name: string): number {
  const fromEnv = Deno.env.get("FUZZ_SEED");
  if (fromEnv && (!/^\d{1,10}$/.test(fromEnv) || Number(fromEnv) >= 2 ** 32)) {
    throw new Error(`FUZZ_SEED must be an integer in [0, 2^32), not ${JSON.stringify(fromEnv)}`);
  }
  const seed = fromEnv ? Number(fromEnv) : (Math.random() * 2 ** 32) >>> 0;
  console.log(`${name}: seed ${seed} (reproduce with FUZZ_SEED=${seed})`);
  return seed;
}

const encoder = new TextEncoder();

/** Numbers (as JSON-ish text) that break naive decoders. */
export const NASTY_NUMBERS: readonly string[] = [
  "0",
  "1",
  "-1",
  "-0",
  "1.5",
  "1.0",
  "1e3",
  "1e400",
  "-1e400",
  "1e-400",
  "NaN",
  "Infinity",
  "-Infinity",
  "9007199254740991",
  "9007199254740992",
  "18446744073709551616",
  "99999999999999999999999999999",
  "007",
  "0x10",
  "+1",
  ".5",
  '"1"',
  "null",
  "true",
  "false",
  "[]",
  "[1]",
  "{}",
  '{"seq":1}',
];

/** Strings that are not what a field expects. */
export const NASTY_STRINGS: readonly string[] = [
  "",
  " ",
  "worker-node2 ",
  "WORKER-NODE2",
  "worker_node2",
  "ümlaut-node",
  "node\u0000",
  "😀",
  "\ud800",
  "a".repeat(300),
  "../../etc/passwd",
  "sdv/#",
  "+",
  "-leading",
  "trailing-",
  "a..b",
];

/** A seeded source of random choices and hostile payloads. */
export class Rand {
  /** The next uniform number in [0, 1). */
  readonly next: () => number;

  /** @param seed any 32-bit integer (see {@linkcode fuzzSeed}). */
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One of `items`, uniformly. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** A random unicode string (ASCII, BMP, astral, lone surrogates, controls). */
  unicode(maxLength = 24): string {
    let s = "";
    const n = this.int(maxLength + 1);
    for (let i = 0; i < n; i++) {
      const r = this.int(6);
      if (r === 0) s += String.fromCharCode(this.int(0x20));
      else if (r === 1) s += String.fromCharCode(0x20 + this.int(0x5f));
      else if (r === 2) s += String.fromCharCode(0x80 + this.int(0xd700));
      else if (r === 3) s += String.fromCodePoint(0x10000 + this.int(0xfffff));
      else if (r === 4) s += String.fromCharCode(0xd800 + this.int(0x800)); // lone surrogate
      else s += this.pick(["{", "}", '"', ":", ",", "[", "]", "\\", "seq", "degraded:"]);
    }
    return s;
  }

  /** Random bytes, also invalid UTF-8. */
  bytes(maxLength = 40): Uint8Array {
    const out = new Uint8Array(this.int(maxLength + 1));
    for (let i = 0; i < out.length; i++) out[i] = this.int(256);
    return out;
  }

  /** A random JSON-ish value of a wrong type (for a field that expects something else). */
  wrongValue(depth = 0): unknown {
    switch (this.int(depth > 3 ? 6 : 8)) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1.5, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 31]);
      case 3:
        return this.pick(NASTY_STRINGS);
      case 4:
        return this.unicode(8);
      case 5:
        return String(this.int(100));
      case 6:
        return [this.wrongValue(depth + 1), this.wrongValue(depth + 1)];
      default:
        return { x: this.wrongValue(depth + 1) };
    }
  }

  /** `depth` levels of nested JSON arrays/objects around `inner`. */
  nested(depth: number, inner = "1"): string {
    let s = inner;
    for (let i = 0; i < depth; i++) s = this.chance(0.5) ? `[${s}]` : `{"seq":${s}}`;
    return s;
  }

  /** One random mutation of `input` (bit flip, truncation, insertion, deletion, splice…). */
  mutate(input: Uint8Array): Uint8Array {
    const b = input.slice();
    switch (this.int(8)) {
      case 0: { // bit flips
        if (b.length === 0) return b;
        const flips = 1 + this.int(3);
        for (let i = 0; i < flips; i++) b[this.int(b.length)] ^= 1 << this.int(8);
        return b;
      }
      case 1: // truncation
        return b.slice(0, this.int(b.length + 1));
      case 2: { // insert a random byte
        const at = this.int(b.length + 1);
        const out = new Uint8Array(b.length + 1);
        out.set(b.subarray(0, at));
        out[at] = this.int(256);
        out.set(b.subarray(at), at + 1);
        return out;
      }
      case 3: { // delete a byte
        if (b.length === 0) return b;
        const at = this.int(b.length);
        const out = new Uint8Array(b.length - 1);
        out.set(b.subarray(0, at));
        out.set(b.subarray(at + 1), at);
        return out;
      }
      case 4: { // replace a digit or a byte with an interesting one
        if (b.length === 0) return b;
        b[this.int(b.length)] = this.pick([
          0x30,
          0x39,
          0x2d,
          0x2e,
          0x65,
          0x22,
          0x7b,
          0x7d,
          0,
          0xff,
        ]);
        return b;
      }
      case 5: { // duplicate a slice
        const from = this.int(b.length + 1);
        const to = from + this.int(b.length - from + 1);
        const out = new Uint8Array(b.length + (to - from));
        out.set(b.subarray(0, to));
        out.set(b.subarray(from), to);
        return out;
      }
      case 6: // splice in a nasty token
        return concat(
          b.subarray(0, this.int(b.length + 1)),
          encoder.encode(this.pick(NASTY_NUMBERS)),
          b.subarray(this.int(b.length + 1)),
        );
      default: // a few mutations at once
        return this.mutate(this.mutate(b));
    }
  }

  /** `text` padded (inside a JSON object when it is one) to `length` bytes or more. */
  oversize(text: string, length: number): Uint8Array {
    const pad = Math.max(0, length - text.length);
    if (text.startsWith("{") && text.endsWith("}")) {
      return encoder.encode(`{"pad":"${"x".repeat(pad)}",${text.slice(1)}`);
    }
    return encoder.encode(text + " ".repeat(pad));
  }
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** The first 64 bytes of a payload in hex (and its length when longer), for failure messages. */
export function hexdump(bytes: Uint8Array): string {
  const head = Array.from(bytes.subarray(0, 64), (x) => x.toString(16).padStart(2, "0")).join("");
  return bytes.length > 64 ? `${head}…(${bytes.length} bytes)` : head;
}
