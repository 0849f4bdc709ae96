import assert from "node:assert/strict";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { ConfigSchema } from "../config/schema.ts";
import { encodeStateMessage } from "../wire/state_message.ts";
import { STATUS_NOTHING, STATUS_OK, statusCommand } from "./status_command.ts";
import { crashedSnapshot } from "../../tests/fixtures/status_snapshot.ts";
import type { StatusView } from "./status_table.ts";

const config = (supervisor: Record<string, unknown> = { id: "sup" }) =>
  ConfigSchema.parse({
    supervisor,
    mqtt: { topicPrefix: "v" },
    nodes: [{ name: "worker-node2", heartbeatPeriodMs: 10, heartbeatTimeoutMs: 30 }],
  });

/** A fake broker connection: retained messages delivered on subscribe. */
function fakeBus(retained: Record<string, Uint8Array | string>) {
  const client = new FakeMqttClient();
  const subscribeAsync = client.subscribeAsync.bind(client);
  client.subscribeAsync = (topics, options) => {
    const result = subscribeAsync(topics, options);
    for (const topic of [topics].flat()) {
      const payload = retained[topic];
      if (payload === undefined) continue;
      client.emit(
        "message",
        topic,
        typeof payload === "string" ? new TextEncoder().encode(payload) : payload,
        { retain: true },
      );
    }
    return result;
  };
  queueMicrotask(() => client.connect());
  return client;
}

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, sinks: { out: (t: string) => out.push(t), err: (l: string) => err.push(l) } };
}

Deno.test("status from the bus: the retained state and status of each configured id, JSON", async () => {
  const client = fakeBus({
    "v/supervisor/sup/state": encodeStateMessage(crashedSnapshot()),
    "v/supervisor/sup/status": "online",
  });
  const { out, err, sinks } = capture();
  const code = await statusCommand({
    source: { kind: "bus", config: config() },
    output: "json",
    timeoutMs: 60_000, // completes as soon as everything expected arrived
    connect: () => client,
    isTty: false,
    ...sinks,
  });
  assert.equal(code, STATUS_OK, err.join("\n"));
  const views: StatusView[] = JSON.parse(out.join(""));
  assert.deepEqual(views, [{ id: "sup", status: "online", snapshot: crashedSnapshot() }]);
  assert.deepEqual([...client.subscribed].sort(), [
    "v/supervisor/sup/state",
    "v/supervisor/sup/status",
  ]);
  assert.ok(client.ended);
});

Deno.test("status from the bus: a pair shows both ids, one offline; malformed states are reported", async () => {
  const client = fakeBus({
    "v/supervisor/a/state": encodeStateMessage(crashedSnapshot("a")),
    "v/supervisor/a/status": "online",
    "v/supervisor/b/state": "not gzip",
    "v/supervisor/b/status": "offline",
  });
  const { out, err, sinks } = capture();
  const code = await statusCommand({
    source: { kind: "bus", config: config({ id: "a", pair: { ids: ["a", "b"] } }) },
    timeoutMs: 100,
    connect: () => client,
    isTty: false,
    ...sinks,
  });
  assert.equal(code, STATUS_OK);
  const text = out.join("");
  assert.match(text, /^supervisor a: single, running/m);
  assert.match(text, /^supervisor b: OFFLINE, no state received$/m);
  assert.deepEqual(err, ["status: 1 malformed state or status message(s) dropped"]);
});

Deno.test("status from the bus: nothing received is exit 1 with the topics it waited on", async () => {
  const { out, err, sinks } = capture();
  const code = await statusCommand({
    source: { kind: "bus", config: config(), ids: ["extra"] },
    timeoutMs: 20,
    connect: () => fakeBus({ "v/supervisor/sup/status": "offline" }),
    ...sinks,
  });
  assert.equal(code, STATUS_NOTHING);
  assert.deepEqual(out, []);
  assert.match(err[0], /only the status \(sup offline\), no state received/);
  assert.match(err[0], /v\/supervisor\/sup\/state, v\/supervisor\/extra\/state/);
});

Deno.test("status --watch from the bus: a redraw per new message until the signal aborts", async () => {
  const client = fakeBus({ "v/supervisor/sup/state": encodeStateMessage(crashedSnapshot()) });
  const abort = new AbortController();
  const { out, sinks } = capture();
  const done = statusCommand({
    source: { kind: "bus", config: config() },
    output: "json",
    watch: true,
    connect: () => client,
    signal: abort.signal,
    ...sinks,
  });
  for (let i = 0; i < 10 && out.length === 0; i++) await new Promise((r) => setTimeout(r, 1));
  assert.equal(out.length, 1, "drawn once the retained state arrived");
  const next = crashedSnapshot();
  next.workloads[0].epoch = 2;
  client.emit("message", "v/supervisor/sup/state", encodeStateMessage(next), {});
  assert.equal(out.length, 2);
  assert.equal(JSON.parse(out[1])[0].snapshot.workloads[0].epoch, 2);
  abort.abort();
  assert.equal(await done, STATUS_OK);
});

Deno.test("status --url: GET <url>/status on a real HTTP server (127.0.0.1), then errors", async () => {
  let body = JSON.stringify(crashedSnapshot());
  let status = 200;
  const paths: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    paths.push(new URL(req.url).pathname);
    return new Response(body, { status, headers: { "content-type": "application/json" } });
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  try {
    const ok = capture();
    assert.equal(
      await statusCommand({ source: { kind: "http", url }, isTty: false, ...ok.sinks }),
      STATUS_OK,
    );
    assert.deepEqual(paths, ["/status"]);
    assert.match(ok.out.join(""), /^supervisor sup: single, running/);
    assert.match(ok.out.join(""), /lane-detection +B +500 ms +worker-node3 +worker-node2 +1 /);

    body = '{"v":9}';
    const bad = capture();
    assert.equal(await statusCommand({ source: { kind: "http", url }, ...bad.sinks }), 1);
    assert.match(bad.err[0], /not a status snapshot/);

    status = 503;
    const down = capture();
    assert.equal(await statusCommand({ source: { kind: "http", url }, ...down.sinks }), 1);
    assert.match(down.err[0], /HTTP 503/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("status --url --watch: one draw per interval until aborted", async () => {
  const abort = new AbortController();
  let calls = 0;
  const fakeFetch = (() => {
    calls++;
    if (calls === 3) abort.abort();
    return Promise.resolve(new Response(JSON.stringify(crashedSnapshot())));
  }) as typeof fetch;
  const { out, sinks } = capture();
  const code = await statusCommand({
    source: { kind: "http", url: "http://127.0.0.1:1" },
    output: "json",
    watch: true,
    intervalMs: 1,
    signal: abort.signal,
    fetch: fakeFetch,
    ...sinks,
  });
  assert.equal(code, STATUS_OK);
  assert.equal(out.length, 2, "the third answer came after the abort: not drawn");
});
