import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { type Transition, Watchdog, type WatchdogOptions } from "./watchdog.ts";

function setup(options: Partial<WatchdogOptions> & { useBarrier?: boolean } = {}) {
  const clock = new FakeClock(1000);
  const transitions: Transition[] = [];
  const barriers: number[] = [];
  const stalls: number[] = [];
  const wd = new Watchdog({
    clock,
    onTransition: (t) => transitions.push(t),
    onIngestStall: (s) => stalls.push(s),
    barrier: options.useBarrier ? { request: (seq) => barriers.push(seq) } : undefined,
    recoveryWindowMs: 100,
    ...options,
  });
  return { clock, wd, transitions, barriers, stalls };
}

const failures = (ts: Transition[]) => ts.filter((t) => t.isFailure);

Deno.test("a target heartbeating within its timeout never expires", () => {
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  for (let k = 0; k < 1000; k++) {
    clock.advance(10);
    wd.heartbeatAt(i);
  }
  assert.equal(failures(transitions).length, 0);
  assert.equal(wd.stateAt(i), "OK");
  // one timer at a time, re-armed only on firing
  assert.equal(clock.pendingTimers, 1);
  assert.ok(wd.stats.timerFirings < 1000 / 2, `timer fired ${wd.stats.timerFirings} times`);
});

Deno.test("silence expires exactly at last heartbeat + timeout (no barrier)", () => {
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  clock.advance(5);
  wd.heartbeatAt(i); // at 1005
  clock.advance(29.9);
  assert.equal(failures(transitions).length, 0);
  clock.advance(0.2);
  const [expiry] = failures(transitions);
  assert.ok(expiry, "expired");
  assert.equal(expiry.lastHeartbeatAtMs, 1005);
  assert.equal(expiry.deadlineMs, 1035);
  assert.equal(expiry.cause, "deadline");
  assert.equal(expiry.from, "OK");
  assert.equal(wd.stateAt(i), "EXPIRED");
});

Deno.test("start-up grace: an unseen target expires as never-seen after the grace", () => {
  const { clock, wd, transitions } = setup();
  wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(3000);
  clock.advance(2999);
  assert.equal(transitions.length, 0);
  clock.advance(2);
  assert.equal(failures(transitions)[0]?.cause, "never-seen");
});

Deno.test("a wall-clock jump changes nothing (only the injected monotonic clock counts)", () => {
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + 3_600_000;
    for (let k = 0; k < 10; k++) {
      clock.advance(10);
      wd.heartbeatAt(i);
    }
  } finally {
    Date.now = realNow;
  }
  assert.equal(failures(transitions).length, 0);
});

Deno.test("expiry waits for the ingest barrier; a heartbeat read before it refutes the expiry", () => {
  const { clock, wd, transitions, barriers } = setup({ useBarrier: true });
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  wd.heartbeatAt(i);
  // The loop stalls 50 ms (GC): the timer fires late, the heartbeats sit unread in the socket.
  clock.advance(50, 20);
  assert.deepEqual(barriers, [1], "one barrier requested");
  assert.equal(failures(transitions).length, 0, "not expired before the barrier returns");
  // Ingest drains the socket: the queued heartbeat is read, then the barrier.
  wd.heartbeatAt(i);
  wd.barrierPassed(1);
  assert.equal(failures(transitions).length, 0, "refuted");
  assert.equal(wd.stats.refuted, 1);
  assert.equal(wd.stateAt(i), "OK");
});

Deno.test("a barrier that comes back with no heartbeat confirms the expiry with honest lateness", () => {
  const { clock, wd, transitions, barriers } = setup({ useBarrier: true });
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  wd.heartbeatAt(i); // 1000
  clock.advance(31);
  assert.deepEqual(barriers, [1]);
  clock.advance(0.5);
  wd.barrierPassed(1);
  const [expiry] = failures(transitions);
  assert.equal(expiry.deadlineMs, 1030);
  assert.equal(expiry.atMs, 1031.5);
  assert.equal(expiry.latenessMs, 1.5);
});

Deno.test("a barrier that never returns is an ingest stall, not a mass failover", () => {
  const { clock, wd, transitions, barriers, stalls } = setup({
    useBarrier: true,
    barrierTimeoutMs: 100,
  });
  const ids = ["node/a", "node/b", "node/c"].map((label) =>
    wd.add({ label, kind: "node", periodMs: 10, timeoutMs: 30 })
  );
  wd.start(0);
  for (const i of ids) wd.heartbeatAt(i);
  clock.advance(1000); // broker hung: nothing arrives
  assert.equal(failures(transitions).length, 0);
  assert.equal(stalls.length, 1, "stall reported once");
  assert.ok(barriers.length > 1, "barrier re-sent while stalled");
  assert.ok(wd.ingestStalled);
  wd.suspend(); // the supervisor reacts to the stall / disconnect
  clock.advance(1000);
  assert.equal(failures(transitions).length, 0);
  wd.resume(500);
  clock.advance(499);
  for (const i of ids.slice(0, 2)) wd.heartbeatAt(i);
  clock.advance(40);
  const sent = barriers.length;
  wd.barrierPassed(barriers.at(-1)!);
  assert.deepEqual(failures(transitions), [], "a slow barrier (40 ms) confirms nothing");
  assert.equal(barriers.length, sent + 1, "one more round trip");
  assert.equal(wd.stats.slowBarriers, 1);
  clock.advance(1);
  for (const i of ids.slice(0, 2)) wd.heartbeatAt(i); // their frames, read before the barrier
  wd.barrierPassed(barriers.at(-1)!);
  const failed = failures(transitions).map((t) => t.target.label);
  assert.deepEqual(failed, ["node/c"], "only the target still silent after resume");
});

Deno.test("a barrier lost with a reconnect does not block later confirmations", () => {
  // found by the fault campaign: the stall listener suspends at once (as the supervisor does),
  // the connection drops and reconnects; a barrier in flight then never comes back
  const clock = new FakeClock(1000);
  const transitions: Transition[] = [];
  const barriers: number[] = [];
  const wd: Watchdog = new Watchdog({
    clock,
    onTransition: (t) => transitions.push(t),
    onIngestStall: () => wd.suspend(),
    barrier: { request: (seq) => barriers.push(seq) },
    barrierTimeoutMs: 100,
    recoveryWindowMs: 100,
  });
  const ids = ["node/a", "node/b"].map((label) =>
    wd.add({ label, kind: "node", periodMs: 10, timeoutMs: 30 })
  );
  wd.start(0);
  for (const i of ids) wd.heartbeatAt(i);
  clock.advance(40); // broker stalled: both deadlines pass, a barrier goes out and never returns
  assert.equal(barriers.length, 1);
  clock.advance(100); // barrier timeout: the listener suspends supervision
  assert.equal(barriers.length, 1, "no barrier sent into a suspended supervision");
  assert.equal(failures(transitions).length, 0);
  wd.resume(0); // reconnected
  for (const i of ids) wd.heartbeatAt(i);
  wd.barrierPassed(1); // the old one, very late: vouches for nothing, changes nothing
  clock.advance(10);
  wd.heartbeatAt(ids[0]);
  clock.advance(20); // node/b crashed: its deadline passes
  assert.equal(barriers.length, 2, "a fresh barrier confirms the new expiry");
  wd.barrierPassed(2);
  assert.deepEqual(failures(transitions).map((t) => t.target.label), ["node/b"]);
});

Deno.test("within a resume's grace, a backlog heartbeat does not shorten the deadline", () => {
  // found by the fault campaign: after a 2.6 s broker stall a node's first frame arrived at once,
  // the next ones 161 ms later (burst delivery of the backlog): no expiry inside the grace
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 20, timeoutMs: 150 });
  wd.start(0);
  wd.heartbeatAt(i);
  wd.suspend();
  clock.advance(2400);
  wd.resume(1400);
  wd.heartbeatAt(i); // one frame of the backlog
  clock.advance(1000); // the rest comes late, still inside the grace
  assert.equal(failures(transitions).length, 0);
  wd.heartbeatAt(i);
  clock.advance(399);
  assert.equal(failures(transitions).length, 0, "the grace holds until its end");
  wd.heartbeatAt(i); // after the grace, deadlines are the timeout again
  clock.advance(151);
  assert.equal(failures(transitions).length, 1, "silent for the timeout after the grace: expired");
});

Deno.test("offline (Last Will) expires without its deadline, once a barrier confirms it", () => {
  const { clock, wd, transitions, barriers } = setup({ useBarrier: true });
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 300 });
  wd.start(0);
  wd.heartbeatAt(i);
  clock.advance(12);
  wd.offline(i);
  assert.equal(failures(transitions).length, 0, "not before the barrier");
  assert.deepEqual(barriers, [1]);
  clock.advance(0.3);
  wd.barrierPassed(1);
  const [expiry] = failures(transitions);
  assert.equal(expiry.cause, "offline");
  assert.equal(expiry.atMs, 1012.3);
  assert.equal(expiry.lastHeartbeatAtMs, 1000);
  wd.offline(i);
  assert.equal(failures(transitions).length, 1, "second offline changes nothing");
});

Deno.test("a dying broker's Last Wills fail nothing: the barrier never returns, the link drops", () => {
  const { clock, wd, transitions, stalls } = setup({ useBarrier: true, barrierTimeoutMs: 50 });
  const ids = ["node/a", "node/b"].map((label) =>
    wd.add({ label, kind: "node", periodMs: 10, timeoutMs: 300 })
  );
  wd.start(0);
  for (const i of ids) wd.heartbeatAt(i);
  for (const i of ids) wd.offline(i); // mosquitto on SIGTERM: every will, then close
  clock.advance(60);
  assert.equal(stalls.length, 1);
  wd.suspend(); // the supervisor sees the connection close
  clock.advance(5000);
  assert.equal(failures(transitions).length, 0);
  wd.resume(0);
  for (const i of ids) wd.heartbeatAt(i);
  assert.deepEqual(ids.map((i) => wd.stateAt(i)), ["OK", "OK"]);
});

Deno.test("recovery: EXPIRED → RECOVERING → OK after the recovery window; relapse is no new failure", () => {
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  wd.heartbeatAt(i);
  clock.advance(40);
  assert.equal(wd.stateAt(i), "EXPIRED");
  wd.heartbeatAt(i);
  assert.equal(wd.stateAt(i), "RECOVERING");
  clock.advance(40); // relapse
  assert.equal(wd.stateAt(i), "EXPIRED");
  assert.equal(failures(transitions).length, 1, "relapse does not trigger failover again");
  for (let k = 0; k <= 11; k++) {
    wd.heartbeatAt(i);
    clock.advance(10);
  }
  assert.equal(wd.stateAt(i), "OK");
  const path = transitions.map((t) => `${t.from}>${t.to}`);
  assert.deepEqual(path, [
    "INIT>OK",
    "OK>EXPIRED",
    "EXPIRED>RECOVERING",
    "RECOVERING>EXPIRED",
    "EXPIRED>RECOVERING",
    "RECOVERING>OK",
  ]);
  clock.advance(40);
  assert.equal(failures(transitions).length, 2, "a new failure after full recovery");
});

Deno.test("checkDue expires without waiting for a late timer", () => {
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  wd.heartbeatAt(i);
  clock.jump(31); // the loop is busy: no timer fires
  assert.equal(failures(transitions).length, 0);
  wd.checkDue();
  assert.equal(failures(transitions).length, 1);
});

Deno.test("thousands of targets: each expires once, in deadline order, one timer", () => {
  const { clock, wd, transitions } = setup();
  const n = 5000;
  const idx = Array.from(
    { length: n },
    (_, k) => wd.add({ label: `t/${k}`, kind: "sensor", periodMs: 20, timeoutMs: 50 + (k % 7) }),
  );
  wd.start(0);
  for (let round = 0; round < 10; round++) {
    clock.advance(20);
    for (const i of idx) wd.heartbeatAt(i);
  }
  assert.equal(failures(transitions).length, 0);
  assert.equal(clock.pendingTimers, 1);
  clock.advance(100);
  const f = failures(transitions);
  assert.equal(f.length, n);
  for (let k = 1; k < f.length; k++) assert.ok(f[k - 1].deadlineMs! <= f[k].deadlineMs!);
  assert.equal(wd.armedCount, 0);
});

Deno.test("bad timeouts are rejected; indices follow the order of add", () => {
  const { wd } = setup();
  assert.equal(wd.add({ label: "x", kind: "node", periodMs: 1, timeoutMs: 2 }), 0);
  assert.equal(wd.add({ label: "x", kind: "node", periodMs: 1, timeoutMs: 2 }), 1);
  assert.throws(
    () => wd.add({ label: "y", kind: "node", periodMs: 1, timeoutMs: 0 }),
    /y: timeoutMs/,
  );
  assert.equal(wd.size, 2);
});

Deno.test("transitions hand back the very target object that was added", () => {
  const { clock, wd, transitions } = setup();
  const target = { label: "node/a", kind: "node" as const, periodMs: 10, timeoutMs: 30, extra: 7 };
  const i = wd.add(target);
  wd.start(0);
  wd.heartbeatAt(i);
  clock.advance(31);
  assert.equal(transitions.length, 2);
  for (const t of transitions) assert.strictEqual(t.target, target);
  assert.strictEqual(wd.describe(i)?.spec, target);
});

Deno.test("a batch confirmed by one barrier expires nodes first, then sensors, then apps", () => {
  const { clock, wd, transitions, barriers } = setup({ useBarrier: true });
  const ids = [
    wd.add({ label: "app/w/n", kind: "app", periodMs: 10, timeoutMs: 30 }),
    wd.add({ label: "sensor/s", kind: "sensor", periodMs: 10, timeoutMs: 30 }),
    wd.add({ label: "node/n", kind: "node", periodMs: 10, timeoutMs: 30 }),
  ];
  wd.start(0);
  for (const i of ids) wd.heartbeatAt(i, 1000); // all stop in the same instant (a hung node)
  clock.advance(31);
  wd.barrierPassed(barriers[0]);
  assert.deepEqual(failures(transitions).map((t) => t.target.label), [
    "node/n",
    "sensor/s",
    "app/w/n",
  ]);
});

Deno.test("deactivate: a planned stop's silence expires nothing; a heartbeat starts a recovery", () => {
  const { clock, wd, transitions } = setup();
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  wd.heartbeatAt(i);
  wd.deactivate(i);
  assert.equal(wd.stateAt(i), "DEACTIVATED");
  clock.advance(10_000);
  wd.offline(i); // its Last Will or ordered offline: nothing
  clock.advance(100);
  assert.deepEqual(failures(transitions), []);
  assert.equal(wd.armedCount, 0, "no deadline while deactivated");
  wd.heartbeatAt(i);
  assert.equal(wd.stateAt(i), "RECOVERING");
  for (let k = 0; k < 12; k++) {
    clock.advance(10);
    wd.heartbeatAt(i);
  }
  assert.equal(wd.stateAt(i), "OK");
  clock.advance(31);
  assert.equal(failures(transitions).length, 1, "supervised again");
});

Deno.test("expiries carry when they were first noticed; a batch ends with one onBatchEnd", () => {
  let batches = 0;
  let seenAtBatchEnd: string[] = [];
  const { clock, wd, transitions, barriers } = setup({
    useBarrier: true,
    onBatchEnd: () => {
      batches++;
      seenAtBatchEnd = [a, b].map((x) => wd.stateAt(x)!);
    },
  });
  const a = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  const b = wd.add({ label: "node/b", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  wd.heartbeatAt(a);
  wd.heartbeatAt(b);
  clock.advance(31); // both pass their deadline: pending, one barrier
  assert.equal(barriers.length, 1);
  clock.advance(4); // the barrier comes back 4 ms later
  wd.barrierPassed(barriers[0]);
  const fs = failures(transitions);
  assert.equal(fs.length, 2);
  for (const f of fs) {
    assert.equal(f.noticedAtMs, 1030, "the deadline seen passed");
    assert.equal(f.atMs, 1035, "confirmed by the barrier");
  }
  assert.equal(batches, 1);
  assert.deepEqual(seenAtBatchEnd, ["EXPIRED", "EXPIRED"], "the whole batch applied first");
});

Deno.test("a broker reconnect inside the boot window keeps the window for never-seen targets", () => {
  const { clock, wd, transitions } = setup();
  wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(5000);
  clock.advance(100);
  wd.suspend();
  clock.advance(100);
  wd.resume(0);
  clock.advance(1000);
  assert.deepEqual(failures(transitions), [], "not never-seen 30 ms after the resume");
  clock.advance(3801);
  assert.equal(failures(transitions)[0]?.cause, "never-seen");
});

Deno.test("flapping ingest faults (a flood) do not hide a hung target for ever", () => {
  const { clock, wd, transitions } = setup();
  const hung = wd.add({ label: "node/hung", kind: "node", periodMs: 10, timeoutMs: 100 });
  const alive = wd.add({ label: "node/alive", kind: "node", periodMs: 10, timeoutMs: 100 });
  wd.start(0);
  wd.heartbeatAt(hung);
  wd.heartbeatAt(alive);
  let expiredAtMs: number | undefined;
  for (let k = 0; k < 40 && expiredAtMs === undefined; k++) {
    // 40 ms of trusted ingest, then a 15 ms fault, again and again
    for (let i = 0; i < 4; i++) {
      clock.advance(10);
      wd.heartbeatAt(alive);
    }
    wd.suspend();
    clock.advance(15);
    wd.heartbeatAt(alive);
    wd.resume(0);
    expiredAtMs = failures(transitions).find((t) => t.target.label === "node/hung")?.atMs;
  }
  assert.ok(expiredAtMs !== undefined, "the hung target expires despite the flapping");
  // 100 ms of trusted silence: 3 rounds of 40 ms (+ the faults in between) and a floor
  assert.ok(expiredAtMs - 1000 < 200, `expired ${expiredAtMs - 1000} ms after its last heartbeat`);
  assert.equal(failures(transitions).filter((t) => t.target.label === "node/alive").length, 0);
});

Deno.test("timerOverdueMs: 0 while the deadline timer is punctual or not needed, ∞ once stopped", () => {
  const { clock, wd } = setup();
  assert.equal(wd.timerOverdueMs(), 0, "not started: nothing armed");
  const i = wd.add({ label: "node/a", kind: "node", periodMs: 10, timeoutMs: 30 });
  wd.start(0);
  for (let k = 0; k < 100; k++) {
    clock.advance(10);
    wd.heartbeatAt(i);
    assert.equal(wd.timerOverdueMs(), 0);
  }
  // the event loop does not run the timer (due within one timeout): its lateness grows with time
  const overdue = wd.timerOverdueMs(clock.nowMs() + 500);
  assert.ok(overdue >= 470 && overdue <= 500, `${overdue}`);
  wd.suspend();
  assert.equal(wd.timerOverdueMs(clock.nowMs() + 10_000), 0, "suspended: no timer needed");
  wd.resume(0);
  wd.stop();
  assert.equal(wd.timerOverdueMs(), Infinity);
});
