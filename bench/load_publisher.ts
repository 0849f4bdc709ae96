/**
 * The load publisher: N targets × 50 Hz of canonical heartbeats (`{"seq":n}`, QoS 0) on a few raw
 * MQTT 3.1.1 connections, so that the simulator costs as little CPU as possible and the runtime,
 * not the generator, is what the load test measures.
 *
 * Sending: every `slotMs` one slot of the period (targets `i ≡ slot mod slots`), each connection's
 * packets of that slot written in one `write`. Send times follow an absolute schedule; how late a
 * slot went out is recorded (publisher lag). Pauses: from `pauseStartMs`, every `pauseEveryMs` a
 * random target that is not recovering goes silent for `pauseMs` (> its timeout), then resumes —
 * each pause must cause exactly one expiry, whose lateness the supervisor reports.
 *
 * Run: `deno run -A load_publisher.ts CONFIG.json` (see {@linkcode LoadPublisherConfig}); prints
 * JSON lines `ready`, `pause`, `stats`, `done`; ends on SIGTERM or after `durationMs`.
 *
 * @module
 */
import { seededRandom } from "./stats.ts";

/** What the load publisher is told (a JSON file). */
export interface LoadPublisherConfig {
  host: string;
  port: number;
  topics: string[];
  periodMs: number;
  slots: number;
  connections: number;
  durationMs: number;
  pauseStartMs: number;
  pauseEndMs: number;
  pauseEveryMs: number;
  pauseMs: number;
  /** A paused target is not paused again before this long after it resumed. */
  pauseGapMs: number;
  seed: number;
}

const enc = new TextEncoder();

/** MQTT "remaining length" variable-byte integer. */
export function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/** An MQTT 3.1.1 CONNECT packet (clean session). */
export function connectPacket(clientId: string, keepaliveS: number): Uint8Array {
  const id = enc.encode(clientId);
  const body = [
    0x00,
    0x04,
    0x4d,
    0x51,
    0x54,
    0x54, // "MQTT"
    0x04, // protocol level 3.1.1
    0x02, // clean session
    (keepaliveS >> 8) & 0xff,
    keepaliveS & 0xff,
    (id.length >> 8) & 0xff,
    id.length & 0xff,
    ...id,
  ];
  return Uint8Array.from([0x10, ...varint(body.length), ...body]);
}

/** A QoS 0 PUBLISH of `payload` on `topic`. */
export function publishPacket(topic: Uint8Array, payload: Uint8Array): Uint8Array {
  const len = 2 + topic.length + payload.length;
  const head = [0x30, ...varint(len), (topic.length >> 8) & 0xff, topic.length & 0xff];
  const out = new Uint8Array(head.length + topic.length + payload.length);
  out.set(head, 0);
  out.set(topic, head.length);
  out.set(payload, head.length + topic.length);
  return out;
}

/** A connection that writes whole buffers in order, coalescing what queues up meanwhile. */
class Writer {
  #queue: Uint8Array[] = [];
  #busy = false;
  constructor(readonly conn: Deno.TcpConn) {}

  send(buf: Uint8Array): void {
    this.#queue.push(buf);
    if (!this.#busy) this.#drain();
  }

  async #drain(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue.length) {
        const parts = this.#queue;
        this.#queue = [];
        let buf = parts[0];
        if (parts.length > 1) {
          buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
          let o = 0;
          for (const p of parts) {
            buf.set(p, o);
            o += p.length;
          }
        }
        let off = 0;
        while (off < buf.length) off += await this.conn.write(buf.subarray(off));
      }
    } finally {
      this.#busy = false;
    }
  }
}

async function connect(host: string, port: number, clientId: string): Promise<Writer> {
  const conn = await Deno.connect({ hostname: host, port });
  conn.setNoDelay(true);
  await conn.write(connectPacket(clientId, 60));
  const ack = new Uint8Array(4);
  let got = 0;
  while (got < 4) {
    const n = await conn.read(ack.subarray(got));
    if (n === null) throw new Error("connection closed before CONNACK");
    got += n;
  }
  if (ack[0] !== 0x20 || ack[3] !== 0) throw new Error(`CONNACK refused: ${ack}`);
  // Drain whatever the broker sends later (PINGRESP).
  (async () => {
    const sink = new Uint8Array(256);
    try {
      while ((await conn.read(sink)) !== null) { /* discard */ }
    } catch { /* closed */ }
  })();
  return new Writer(conn);
}

const wall = () => performance.timeOrigin + performance.now();
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, wallMs: wall(), ...fields }));

async function main(cfg: LoadPublisherConfig): Promise<void> {
  const random = seededRandom(cfg.seed);
  const writers = await Promise.all(
    Array.from(
      { length: cfg.connections },
      (_, c) => connect(cfg.host, cfg.port, `sdv-load-${cfg.seed}-${c}`),
    ),
  );
  const topics = cfg.topics.map((t) => enc.encode(t));
  const seq = new Array<number>(topics.length).fill(0);
  const pausedUntil = new Float64Array(topics.length); // performance.now() ms
  const eligibleAt = new Float64Array(topics.length);
  const slotMs = cfg.periodMs / cfg.slots;
  const lags: number[] = [];
  let sent = 0;
  let sentAtLastStats = 0;
  let stop = false;
  Deno.addSignalListener("SIGTERM", () => (stop = true));

  emit("ready", { targets: topics.length, connections: cfg.connections });
  const t0 = performance.now();
  let k = 0;
  let nextPause = t0 + cfg.pauseStartMs;
  let nextStats = t0 + 1000;
  const ping = Uint8Array.from([0xc0, 0x00]);
  let nextPing = t0 + 20_000;
  while (!stop && performance.now() - t0 < cfg.durationMs) {
    const due = t0 + k * slotMs;
    const now = performance.now();
    if (due > now) {
      await new Promise((r) => setTimeout(r, Math.max(0, Math.floor(due - now))));
      continue;
    }
    lags.push(now - due);
    const slot = k % cfg.slots;
    const batches: Uint8Array[][] = writers.map(() => []);
    for (let i = slot; i < topics.length; i += cfg.slots) {
      if (pausedUntil[i] > now) continue;
      seq[i]++;
      batches[i % writers.length].push(publishPacket(topics[i], enc.encode(`{"seq":${seq[i]}}`)));
      sent++;
    }
    for (let c = 0; c < writers.length; c++) {
      const parts = batches[c];
      if (!parts.length) continue;
      const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let o = 0;
      for (const p of parts) {
        buf.set(p, o);
        o += p.length;
      }
      writers[c].send(buf);
    }
    k++;
    // ---- pauses ----------------------------------------------------------------------------
    while (now >= nextPause && now - t0 < cfg.pauseEndMs) {
      nextPause += cfg.pauseEveryMs;
      for (let attempt = 0; attempt < 20; attempt++) {
        const i = Math.floor(random() * topics.length);
        if (pausedUntil[i] > now || eligibleAt[i] > now) continue;
        pausedUntil[i] = now + cfg.pauseMs;
        eligibleAt[i] = now + cfg.pauseMs + cfg.pauseGapMs;
        emit("pause", {
          target: cfg.topics[i],
          startWallMs: performance.timeOrigin + now,
          resumeWallMs: performance.timeOrigin + now + cfg.pauseMs,
        });
        break;
      }
    }
    if (now >= nextStats) {
      nextStats += 1000;
      const sorted = lags.slice(-Math.ceil(1000 / slotMs)).sort((a, b) => a - b);
      emit("stats", {
        sent,
        sentPerS: sent - sentAtLastStats,
        lagP99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
        lagMaxMs: sorted.at(-1) ?? 0,
      });
      sentAtLastStats = sent;
    }
    if (now >= nextPing) {
      nextPing += 20_000;
      for (const w of writers) w.send(ping);
    }
  }
  const sorted = lags.sort((a, b) => a - b);
  emit("done", {
    sent,
    durationMs: performance.now() - t0,
    lagP99Ms: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
    lagMaxMs: sorted.at(-1) ?? 0,
  });
  for (const w of writers) {
    try {
      w.conn.close();
    } catch { /* closed */ }
  }
  Deno.exit(0);
}

if (import.meta.main) {
  await main(JSON.parse(Deno.readTextFileSync(Deno.args[0])) as LoadPublisherConfig);
}
