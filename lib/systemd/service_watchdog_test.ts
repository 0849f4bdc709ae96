import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { createLogger } from "../log/log.ts";
import type { Notifier } from "./notify.ts";
import { ServiceWatchdog } from "./service_watchdog.ts";
import {
  agentUnhealthy,
  connectionFaultBoundMs,
  supervisorStatus,
  supervisorUnhealthy,
} from "./liveness.ts";

class RecordingNotifier implements Notifier {
  enabled = true;
  readonly sent: { atMs: number; fields: Record<string, string> }[] = [];
  constructor(readonly clock: FakeClock) {}
  notify(fields: Record<string, string>): Promise<void> {
    this.sent.push({ atMs: this.clock.nowMs(), fields });
    return Promise.resolve();
  }
  close(): void {}
  pingTimes(): number[] {
    return this.sent.filter((m) => m.fields.WATCHDOG === "1").map((m) => m.atMs);
  }
}

/** A supervisor's readings under test control, gated exactly as `run` gates them. */
function supervisorSetup(watchdogMs = 2000) {
  const clock = new FakeClock(0);
  const notifier = new RecordingNotifier(clock);
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) });
  const state = {
    running: true,
    timerDueMs: 0,
    stopped: false,
    faultSinceMs: undefined as number | undefined,
  };
  const bounds = {
    timerBoundMs: watchdogMs / 2,
    connectionFaultBoundMs: connectionFaultBoundMs(watchdogMs, 500),
  };
  const service = new ServiceWatchdog({
    notifier,
    timeoutMs: watchdogMs,
    clock,
    log,
    check: (nowMs) =>
      supervisorUnhealthy({
        nowMs,
        running: state.running,
        deadlineTimerOverdueMs: state.stopped ? Infinity : Math.max(0, nowMs - state.timerDueMs),
        ingestFaultSinceMs: state.faultSinceMs,
      }, bounds),
    status: (nowMs) =>
      supervisorStatus({
        nowMs,
        targets: 6,
        armed: state.faultSinceMs === undefined ? 6 : 0,
        expired: 0,
        leader: undefined,
        ingestFaultSinceMs: state.faultSinceMs,
        ingestFaultWhy: "broker connection closed",
      }),
  });
  /** Advances time with the deadline timer firing punctually (re-armed 30 ms ahead). */
  const run = (ms: number) => {
    for (let t = 0; t < ms; t += 10) {
      clock.advance(10);
      if (!state.stopped) state.timerDueMs = clock.nowMs() + 30;
    }
  };
  return { clock, notifier, lines, state, service, run, bounds };
}

Deno.test("service watchdog: READY=1 with STATUS, then WATCHDOG=1 every half timeout", () => {
  const { notifier, service, run } = supervisorSetup();
  service.ready();
  assert.deepEqual(notifier.sent[0].fields, {
    READY: "1",
    STATUS: "running: 6/6 armed, 0 expired, ingest ok",
    WATCHDOG: "1",
  });
  run(10_000);
  assert.deepEqual(notifier.pingTimes(), [
    0,
    1000,
    2000,
    3000,
    4000,
    5000,
    6000,
    7000,
    8000,
    9000,
    10000,
  ]);
  service.ready(); // idempotent
  assert.equal(notifier.sent.filter((m) => m.fields.READY).length, 1);
  service.close();
});

Deno.test("service watchdog: an ingest fault within the bound keeps the pings; beyond it they stop until restored", () => {
  const { clock, notifier, lines, state, service, run, bounds } = supervisorSetup();
  assert.equal(bounds.connectionFaultBoundMs, 10_000, "5 × WatchdogSec (2 s)");
  service.ready();
  run(3000);
  // a short outage (a broker restart): pings go on, STATUS says so
  state.faultSinceMs = clock.nowMs();
  run(4000);
  state.faultSinceMs = undefined;
  run(3000);
  assert.deepEqual(notifier.pingTimes(), [
    0,
    1000,
    2000,
    3000,
    4000,
    5000,
    6000,
    7000,
    8000,
    9000,
    10000,
  ]);
  assert.ok(
    notifier.sent.some((m) =>
      m.fields.STATUS?.startsWith("running: 0/6 armed, 0 expired, ingest fault")
    ),
  );
  // a lost broker: the last ping is at most the bound after the fault began
  const faultAt = clock.nowMs();
  state.faultSinceMs = faultAt;
  run(30_000);
  const pings = notifier.pingTimes();
  const lastPing = pings.at(-1)!;
  assert.ok(lastPing <= faultAt + bounds.connectionFaultBoundMs, `${lastPing}`);
  assert.ok(lastPing >= faultAt + bounds.connectionFaultBoundMs - 1000, `${lastPing}`);
  assert.match(String(service.withheld), /ingest fault for \d+ ms \(tolerated 10000 ms\)/);
  const withheld = lines.filter((l) => l.msg === "systemd-watchdog-withheld");
  assert.equal(withheld.length, 1, "logged once, not at every tick");
  // restored: pings resume at the next tick
  state.faultSinceMs = undefined;
  run(1000);
  assert.equal(notifier.pingTimes().at(-1), clock.nowMs());
  assert.ok(lines.some((l) => l.msg === "systemd-watchdog-resumed"));
  service.close();
});

Deno.test("service watchdog: a dead deadline timer or a stopped watchdog stops the pings", () => {
  const { clock, notifier, state, service, run } = supervisorSetup();
  service.ready();
  run(2000);
  const before = notifier.pingTimes().length;
  // the deadline timer stays due in the past (never fired, never re-armed)
  state.stopped = false;
  const frozenDue = clock.nowMs();
  state.timerDueMs = frozenDue;
  clock.advance(5000);
  assert.ok(before > 0);
  assert.deepEqual(
    notifier.pingTimes().filter((t) => t > frozenDue + 1000),
    [],
    "no ping once it is more than half the timeout overdue",
  );
  assert.match(String(service.withheld), /deadline timer \d+ ms overdue/);
  run(1000);
  assert.ok(notifier.pingTimes().length > before);
  state.stopped = true;
  run(5000);
  assert.match(String(service.withheld), /stopped/);
  service.stopping("SIGTERM");
  assert.deepEqual(notifier.sent.at(-1)!.fields, { STOPPING: "1", STATUS: "stopping: SIGTERM" });
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("service watchdog: without WATCHDOG_USEC only READY and STATUS changes are sent", () => {
  const clock = new FakeClock(0);
  const notifier = new RecordingNotifier(clock);
  let status = "a";
  const service = new ServiceWatchdog({
    notifier,
    timeoutMs: undefined,
    clock,
    log: createLogger({ write: () => {} }),
    check: () => "never asked",
    status: () => status,
  });
  service.ready();
  clock.advance(3000);
  status = "b";
  clock.advance(3000);
  assert.deepEqual(notifier.sent.map((m) => m.fields), [{ READY: "1", STATUS: "a" }, {
    STATUS: "b",
  }]);
  service.close();
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("agent liveness: the heartbeat schedule must run; a disconnect is tolerated for the bound", () => {
  const b = { timerBoundMs: 2500, connectionFaultBoundMs: connectionFaultBoundMs(5000, 500) };
  assert.equal(b.connectionFaultBoundMs, 25_000);
  const r = { nowMs: 10_000, lastSlotAtMs: 9_990, periodMs: 33, disconnectedSinceMs: undefined };
  assert.equal(agentUnhealthy(r, b), undefined);
  assert.equal(
    agentUnhealthy({ ...r, lastSlotAtMs: undefined }, b),
    "heartbeat schedule not running",
  );
  assert.match(
    String(agentUnhealthy({ ...r, lastSlotAtMs: 7_000 }, b)),
    /no heartbeat slot for 3000 ms/,
  );
  assert.equal(
    agentUnhealthy({ ...r, disconnectedSinceMs: 0 }, b),
    undefined,
    "10 s down: tolerated",
  );
  assert.match(
    String(
      agentUnhealthy({ ...r, nowMs: 30_000, lastSlotAtMs: 29_990, disconnectedSinceMs: 0 }, b),
    ),
    /broker connection down for 30000 ms/,
  );
  // the reconnect allowance is the floor of the bound
  assert.equal(connectionFaultBoundMs(100, 2000), 5000);
});
