import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import {
  decodeStateMessage,
  encodeStateMessage,
  MAX_STATE_BYTES,
  MAX_STATE_JSON_BYTES,
  parseStatusSnapshot,
  type StatusSnapshot,
} from "./state_message.ts";

const snapshot: StatusSnapshot = {
  v: 1,
  generatedAt: "2025-01-01T00:00:00.000Z",
  supervisor: {
    id: "sup",
    lifecycle: "running",
    role: "single",
    term: null,
    armed: true,
    ingestFaulted: false,
    upMs: 1234,
    reconcileQueue: 0,
    counters: { messages: 10, malformed: 0, refusedPromotions: 0, expiries: 1 },
  },
  nodes: [{
    name: "n1",
    state: "EXPIRED",
    heartbeatAgeMs: 400,
    fence: "fenced",
    fenceReason: "node-expired",
    draining: false,
  }],
  sensors: [{ name: "cam1", node: "n1", state: "OK", ageMs: null }],
  apps: [{ workload: "lane", node: "n1", side: "primary", state: "OK", ageMs: 3 }],
  workloads: [{
    name: "lane",
    namespace: "default",
    asil: "D",
    fttiMs: 100,
    activeSide: "standby",
    activeNode: "n2",
    standbyNode: "n1",
    epoch: 2,
    reason: "node-expired",
    failedAt: "2025-01-01T00:00:00.000Z",
  }],
};

const gzip = (text: string) => new Uint8Array(gzipSync(text));

Deno.test("state message: gzip JSON round trip; the HTTP body parses to the same snapshot", () => {
  const payload = encodeStateMessage(snapshot);
  assert.equal(payload[0], 0x1f, "gzip magic");
  assert.equal(payload[1], 0x8b);
  assert.deepEqual(decodeStateMessage(payload), snapshot);
  assert.deepEqual(parseStatusSnapshot(JSON.stringify(snapshot)), snapshot);
});

Deno.test("state message: malformed payloads decode to undefined, never throw", () => {
  assert.equal(decodeStateMessage(new TextEncoder().encode(JSON.stringify(snapshot))), undefined);
  assert.equal(decodeStateMessage(gzip("not json")), undefined);
  assert.equal(decodeStateMessage(gzip(JSON.stringify({ ...snapshot, v: 2 }))), undefined);
  assert.equal(decodeStateMessage(gzip(JSON.stringify({ ...snapshot, nodes: [{}] }))), undefined);
  assert.equal(decodeStateMessage(new Uint8Array(MAX_STATE_BYTES + 1)), undefined, "oversized");
  // a gzip bomb: small on the wire, over the bound once inflated
  const bomb = gzip(" ".repeat(MAX_STATE_JSON_BYTES + 1));
  assert.ok(bomb.length <= MAX_STATE_BYTES);
  assert.equal(decodeStateMessage(bomb), undefined);
  assert.equal(parseStatusSnapshot("{"), undefined);
  assert.equal(parseStatusSnapshot({ ...snapshot, supervisor: { id: 1 } }), undefined);
});
