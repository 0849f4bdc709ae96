import assert from "node:assert/strict";
import { brokerUrlForLog } from "./mqtt_rules.ts";

Deno.test("brokerUrlForLog keeps scheme, host, port and path and drops user info, query, fragment", () => {
  assert.equal(
    brokerUrlForLog("mqtts://user:pw@broker.local:8883/mqtt?k=v#f"),
    "mqtts://broker.local:8883/mqtt",
  );
  assert.equal(brokerUrlForLog("mqtt://127.0.0.1:1883"), "mqtt://127.0.0.1:1883");
  assert.equal(brokerUrlForLog("mqtt://[::1]:1883"), "mqtt://[::1]:1883");
  assert.equal(brokerUrlForLog("mqtt://:only-a-password@h"), "mqtt://h");
});

Deno.test("brokerUrlForLog never echoes an unparseable URL (it may hold a secret)", () => {
  assert.equal(brokerUrlForLog("mqtt://user:pa ss@bad host"), "<invalid broker URL>");
});
