import assert from "node:assert/strict";
import { connectPacket, publishPacket, varint } from "./load_publisher.ts";

Deno.test("MQTT remaining length: variable-byte integer", () => {
  assert.deepEqual(varint(0), [0x00]);
  assert.deepEqual(varint(127), [0x7f]);
  assert.deepEqual(varint(128), [0x80, 0x01]);
  assert.deepEqual(varint(16_383), [0xff, 0x7f]);
  assert.deepEqual(varint(16_384), [0x80, 0x80, 0x01]);
});

Deno.test("MQTT 3.1.1 CONNECT and QoS 0 PUBLISH packets", () => {
  const c = connectPacket("ab", 60);
  assert.deepEqual(
    [...c],
    [0x10, 14, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0, 2, 0x61, 0x62],
  );
  const enc = new TextEncoder();
  const p = publishPacket(enc.encode("t/x"), enc.encode('{"seq":1}'));
  assert.equal(p[0], 0x30);
  assert.equal(p[1], 2 + 3 + 9);
  assert.deepEqual([...p.slice(2, 4)], [0, 3]);
  assert.equal(new TextDecoder().decode(p.slice(4, 7)), "t/x");
  assert.equal(new TextDecoder().decode(p.slice(7)), '{"seq":1}');
});
