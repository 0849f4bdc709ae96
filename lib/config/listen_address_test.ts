import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "./load.ts";
import { formatListenAddress, listenAddressProblem, parseListenAddress } from "./listen_address.ts";

const MINIMAL = `nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
`;

Deno.test("parseListenAddress: IPv4, host names and bracketed IPv6 with a port 0–65535", () => {
  assert.deepEqual(parseListenAddress("127.0.0.1:9464"), { hostname: "127.0.0.1", port: 9464 });
  assert.deepEqual(parseListenAddress("0.0.0.0:0"), { hostname: "0.0.0.0", port: 0 });
  assert.deepEqual(parseListenAddress("localhost:65535"), { hostname: "localhost", port: 65535 });
  assert.deepEqual(parseListenAddress("[::1]:9465"), { hostname: "::1", port: 9465 });
  assert.equal(formatListenAddress({ hostname: "::1", port: 9465 }), "[::1]:9465");
  assert.equal(formatListenAddress({ hostname: "10.0.0.2", port: 80 }), "10.0.0.2:80");
});

Deno.test("parseListenAddress: every malformed address is a problem, never an exception", () => {
  for (
    const [value, why] of [
      ["9464", /no port/],
      ["127.0.0.1", /no port/],
      ["127.0.0.1:", /port "" is not a number/],
      ["127.0.0.1:65536", /port "65536"/],
      ["127.0.0.1:-1", /port "-1"/],
      ["127.0.0.1:94x", /port "94x"/],
      ["256.0.0.1:9464", /"256.0.0.1" is not an IPv4 address/],
      ["1.2.3:9464", /"1.2.3" is not an IPv4 address/],
      [":9464", /"" is not an IPv4 address or a host name/],
      ["::1:9464", /IPv6 address needs brackets/],
      ["[zz]:9464", /"\[zz\]" is not an IPv6 address/],
      ["http://x:1", /needs brackets|not an IPv4/],
      ["a_b:1", /"a_b" is not/],
    ] as const
  ) {
    const parsed = parseListenAddress(value);
    assert.ok("problem" in parsed, value);
    assert.match(parsed.problem, why, value);
    assert.match(parsed.problem, /^must be HOST:PORT/, value);
  }
  assert.equal(listenAddressProblem(""), undefined, '"" disables the endpoint');
  assert.equal(listenAddressProblem("127.0.0.1:9464"), undefined);
  assert.match(listenAddressProblem("nope")!, /no port/);
});

Deno.test('http: defaults 127.0.0.1:9464 (run) and 127.0.0.1:9465 (agent); "" disables', () => {
  assert.deepEqual(parseConfig(MINIMAL).http, {
    listen: "127.0.0.1:9464",
    agentListen: "127.0.0.1:9465",
  });
  assert.deepEqual(
    parseConfig(`http:\n  listen: "0.0.0.0:9464"\n  agentListen: ""\n${MINIMAL}`).http,
    { listen: "0.0.0.0:9464", agentListen: "" },
  );
});

Deno.test("http: malformed addresses and unknown keys at their line:column", () => {
  const text = `http:
  listen: 127.0.0.1
  agentListen: "[::1]:99999"
  port: 9464
${MINIMAL}`;
  let error: ConfigError | undefined;
  try {
    parseConfig(text, "c.yaml");
  } catch (e) {
    error = e as ConfigError;
  }
  assert.ok(error instanceof ConfigError);
  assert.deepEqual(error.issues.map((i) => `${i.line}:${i.column} ${i.path}`), [
    "2:11 http.listen",
    "3:16 http.agentListen",
    "4:3 http.port",
  ]);
  assert.match(error.issues[0].message, /must be HOST:PORT .*no port/);
  assert.match(error.message, /^c\.yaml:2:11 http\.listen: must be HOST:PORT/m);
});
