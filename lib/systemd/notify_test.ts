import assert from "node:assert/strict";
import { createLogger } from "../log/log.ts";
import { notifySocketPath, openNotifier, watchdogTimeoutMs } from "./notify.ts";

const decoder = new TextDecoder();

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) }) };
}

Deno.test("notify: datagrams reach a real AF_UNIX datagram socket at a path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdv-notify-" });
  const path = `${dir}/notify`;
  const listener = Deno.listenDatagram({ transport: "unixpacket", path });
  const { lines, log } = capture();
  const notifier = openNotifier({ env: (n) => (n === "NOTIFY_SOCKET" ? path : undefined), log });
  try {
    assert.equal(notifier.enabled, true);
    await notifier.notify({ READY: "1", STATUS: "armed: 3 targets\nsecond line" });
    const [data] = await listener.receive();
    assert.equal(decoder.decode(data), "READY=1\nSTATUS=armed: 3 targets second line");
    await notifier.notify({ WATCHDOG: "1" });
    assert.equal(decoder.decode((await listener.receive())[0]), "WATCHDOG=1");
    assert.deepEqual(lines, []);
  } finally {
    notifier.close();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("notify: an abstract NOTIFY_SOCKET (leading @) is supported", async () => {
  const name = `sdv-notify-test-${Deno.pid}-${Math.random().toString(16).slice(2)}`;
  const listener = Deno.listenDatagram({ transport: "unixpacket", path: `\0${name}` });
  const { log } = capture();
  const notifier = openNotifier({
    env: (n) => (n === "NOTIFY_SOCKET" ? `@${name}` : undefined),
    log,
  });
  try {
    await notifier.notify({ STOPPING: "1" });
    assert.equal(decoder.decode((await listener.receive())[0]), "STOPPING=1");
  } finally {
    notifier.close();
    listener.close();
  }
});

Deno.test("notify: no NOTIFY_SOCKET → no-op; a missing socket → one warning, then quiet", async () => {
  const { lines, log } = capture();
  const none = openNotifier({ env: () => undefined, log });
  assert.equal(none.enabled, false);
  await none.notify({ READY: "1" });
  const dir = await Deno.makeTempDir({ prefix: "sdv-notify-" });
  const gone = openNotifier({
    env: (n) => (n === "NOTIFY_SOCKET" ? `${dir}/nobody-listens` : undefined),
    log,
  });
  await gone.notify({ READY: "1" });
  await gone.notify({ WATCHDOG: "1" });
  gone.close();
  await Deno.remove(dir, { recursive: true });
  assert.equal(gone.enabled, false);
  assert.equal(lines.length, 1);
  assert.equal(lines[0].msg, "systemd-notify-failed");
});

Deno.test("notify: socket address and watchdog timeout from the environment (sd_watchdog_enabled)", () => {
  assert.equal(notifySocketPath(undefined), undefined);
  assert.equal(notifySocketPath(""), undefined);
  assert.equal(notifySocketPath("/run/systemd/notify"), "/run/systemd/notify");
  assert.equal(notifySocketPath("@abc"), "\0abc");
  const env = (vars: Record<string, string>) => (n: string) => vars[n];
  assert.equal(watchdogTimeoutMs(env({ WATCHDOG_USEC: "2000000" }), 42), 2000);
  assert.equal(watchdogTimeoutMs(env({ WATCHDOG_USEC: "2000000", WATCHDOG_PID: "42" }), 42), 2000);
  assert.equal(
    watchdogTimeoutMs(env({ WATCHDOG_USEC: "2000000", WATCHDOG_PID: "7" }), 42),
    undefined,
  );
  assert.equal(watchdogTimeoutMs(env({ WATCHDOG_USEC: "0" }), 42), undefined);
  assert.equal(watchdogTimeoutMs(env({ WATCHDOG_USEC: "2s" }), 42), undefined);
  assert.equal(watchdogTimeoutMs(env({}), 42), undefined);
});
