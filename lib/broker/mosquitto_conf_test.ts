import assert from "node:assert/strict";
import { MAX_BEAT_BYTES, MAX_NODE_STATUS_BYTES, MAX_PROMOTION_BYTES } from "../wire/wire.ts";
import {
  brokerListener,
  MESSAGE_SIZE_LIMIT_BYTES,
  MQTTS_DEFAULT_PORT,
  renderMosquittoConf,
} from "./mosquitto_conf.ts";

Deno.test("the payload limit is the largest payload a receiver accepts", () => {
  assert.equal(
    MESSAGE_SIZE_LIMIT_BYTES,
    Math.max(MAX_BEAT_BYTES, MAX_NODE_STATUS_BYTES, MAX_PROMOTION_BYTES),
  );
  assert.equal(MESSAGE_SIZE_LIMIT_BYTES, 4096);
});

Deno.test("brokerListener: port and bind address from the clients' URL", () => {
  assert.deepEqual(brokerListener("mqtts://127.0.0.1:18883"), {
    port: 18883,
    host: "127.0.0.1",
    bindAddress: "127.0.0.1",
  });
  assert.deepEqual(brokerListener("mqtts://broker.vehicle.local"), {
    port: MQTTS_DEFAULT_PORT,
    host: "broker.vehicle.local",
    bindAddress: undefined,
  });
  assert.deepEqual(brokerListener("ssl://[fd00::1]:9000"), {
    port: 9000,
    host: "fd00::1",
    bindAddress: "fd00::1",
  });
  assert.equal(brokerListener("mqtts://broker.local", "10.0.0.1").bindAddress, "10.0.0.1");
});

Deno.test("brokerListener refuses a URL without TLS", () => {
  assert.throws(() => brokerListener("mqtt://127.0.0.1:1883"), /uses mqtt:\/\/.*use mqtts:\/\//);
  assert.throws(() => brokerListener("wss://127.0.0.1:443"), /uses wss:\/\//);
});

Deno.test("renderMosquittoConf: TLS listener with client certificates as identities, no anonymous, ACL, limit", () => {
  const text = renderMosquittoConf({
    listener: { port: 18883, host: "127.0.0.1", bindAddress: "127.0.0.1" },
    caFile: "/x/pki/ca.crt",
    certFile: "/x/pki/server.crt",
    keyFile: "/x/pki/server.key",
    aclFile: "/x/acl",
  });
  const settings = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  assert.deepEqual(settings, [
    "per_listener_settings false",
    "allow_anonymous false",
    "acl_file /x/acl",
    "message_size_limit 4096",
    "listener 18883 127.0.0.1",
    "cafile /x/pki/ca.crt",
    "certfile /x/pki/server.crt",
    "keyfile /x/pki/server.key",
    "require_certificate true",
    "use_identity_as_username true",
    "use_username_as_clientid true",
  ]);
  const everyInterface = renderMosquittoConf({
    listener: { port: 8883, host: "broker.local", bindAddress: undefined },
    caFile: "c",
    certFile: "s",
    keyFile: "k",
    aclFile: "a",
  });
  assert.match(everyInterface, /^listener 8883$/m);
});
