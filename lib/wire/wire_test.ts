import assert from "node:assert/strict";
import {
  decodeBarrier,
  decodeBeat,
  decodePromotion,
  decodeStatus,
  encodeBarrier,
  encodeBeat,
  MAX_EPOCH,
  newBarrierNonce,
} from "./wire.ts";

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
    issuer: "s",
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

Deno.test("decodePromotion: the epoch is bounded by MAX_EPOCH, the issuer is required", () => {
  const ok = {
    v: 1,
    workload: "w",
    namespace: "default",
    activeNode: "b",
    activeDeployment: "w-standby",
    failedNode: "a",
    epoch: MAX_EPOCH,
    reason: "node-expired",
    issuer: "sup",
    issuedAt: "2026-01-01T00:00:00Z",
  };
  assert.equal(MAX_EPOCH, 2 ** 31 - 1);
  assert.ok(Number.isSafeInteger(MAX_EPOCH + 1), "the next epoch is always exact");
  assert.equal(decodePromotion(JSON.stringify(ok))?.epoch, MAX_EPOCH);
  for (const epoch of [MAX_EPOCH + 1, 2 ** 53 - 1, 2 ** 53, 1e300, 1.5, -1]) {
    assert.equal(decodePromotion(JSON.stringify({ ...ok, epoch })), undefined, String(epoch));
  }
  assert.equal(decodePromotion(JSON.stringify({ ...ok, issuer: "" })), undefined);
  assert.equal(decodePromotion(JSON.stringify({ ...ok, issuer: 7 })), undefined);
  const { issuer: _, ...withoutIssuer } = ok;
  assert.equal(decodePromotion(JSON.stringify(withoutIssuer)), undefined);
  // written by a release before the issuer check: the same id in `supervisor`
  assert.equal(
    decodePromotion(JSON.stringify({ ...withoutIssuer, supervisor: "sup" }))?.issuer,
    "sup",
  );
  assert.equal(
    decodePromotion(JSON.stringify({ ...ok, supervisor: "other" }))?.issuer,
    "sup",
    "`issuer` wins over the legacy field",
  );
});

Deno.test("barriers carry seq and nonce; a nonce is 128 random bits", () => {
  const nonce = newBarrierNonce();
  assert.match(nonce, /^[0-9a-f]{32}$/);
  assert.notEqual(newBarrierNonce(), nonce);
  assert.deepEqual(decodeBarrier(bytes(encodeBarrier(42, nonce))), { seq: 42, nonce });
  assert.deepEqual(decodeBarrier('{"seq":3}'), { seq: 3, nonce: undefined }, "no nonce: forged");
  for (const bad of ['{"seq":-1,"nonce":"a"}', '{"seq":1,"nonce":5}', "{}", "x", '{"nonce":"a"}']) {
    assert.equal(decodeBarrier(bad), undefined, bad);
  }
  assert.ok(encodeBarrier(Number.MAX_SAFE_INTEGER, nonce).length <= 256, "within MAX_BEAT_BYTES");
});
