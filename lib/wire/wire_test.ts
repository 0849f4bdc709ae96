import assert from "node:assert/strict";
import { decodeBeat, decodePromotion, decodeStatus, encodeBeat } from "./wire.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("decodeBeat: canonical bytes, other JSON spellings, and malformed payloads", () => {
  for (const seq of [0, 7, 123456, 2 ** 40]) assert.equal(decodeBeat(bytes(encodeBeat(seq))), seq);
  assert.equal(decodeBeat(bytes('{ "seq": 5, "extra": true }')), 5, "fallback to JSON.parse");
  assert.equal(decodeBeat('{"seq":9}'), 9);
  for (
    const bad of [
      "",
      "{}",
      '{"seq":-1}',
      '{"seq":1.5}',
      '{"seq":"1"}',
      "null",
      "[1]",
      "{",
      '{"seq":}',
      '{"seq":1x}',
    ]
  ) {
    assert.equal(decodeBeat(bytes(bad)), undefined, JSON.stringify(bad));
  }
  assert.equal(decodeBeat(bytes('{"seq":99999999999999999}')), undefined, "beyond safe integers");
});

Deno.test("decodeBeat: bytes and text agree on leading zeros (not JSON, so malformed)", () => {
  for (const bad of ['{"seq":007}', '{"seq":00}', '{"seq":0123456789}']) {
    assert.equal(decodeBeat(bytes(bad)), undefined, `${bad} as bytes (the fast path)`);
    assert.equal(decodeBeat(bad), undefined, `${bad} as text`);
  }
  assert.equal(decodeBeat(bytes('{"seq":0}')), 0);
  assert.equal(decodeBeat(bytes('{"seq":10}')), 10);
});

Deno.test("decodeStatus and decodePromotion reject anything off the wire format", () => {
  assert.equal(decodeStatus(bytes("online")), "online");
  assert.equal(decodeStatus(bytes("offline")), "offline");
  assert.equal(decodeStatus(bytes("OFFLINE")), undefined);
  const ok = {
    v: 1,
    workload: "w",
    namespace: "default",
    activeNode: "b",
    activeDeployment: "w-standby",
    failedNode: "a",
    epoch: 2,
    reason: "node-expired",
    supervisor: "s",
    issuedAt: "2026-01-01T00:00:00Z",
  };
  assert.equal(decodePromotion(JSON.stringify(ok))?.epoch, 2);
  assert.equal(decodePromotion(JSON.stringify({ ...ok, epoch: 0 })), undefined);
  assert.equal(decodePromotion(JSON.stringify({ ...ok, v: 2 })), undefined);
  assert.equal(decodePromotion(""), undefined);
});

Deno.test("decoders bound the payload before parsing", () => {
  assert.equal(decodeBeat(`{"seq":1,"x":"${"a".repeat(300)}"}`), undefined);
  const big = JSON.stringify({ v: 1, pad: "x".repeat(5000) });
  assert.equal(decodePromotion(big), undefined);
  assert.equal(decodeBeat('{"seq":7}'), 7);
});
