import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import {
  FakeLeaseApi,
  FakeLeaseStore,
  type LeaseFault,
  offsetClock,
  runFor,
  settle,
} from "../../tests/fakes/fake_lease.ts";
import { seededRandom } from "../../bench/stats.ts";
import type { Clock } from "../clock/clock.ts";
import {
  checkLeaseTiming,
  DuplicateIdentityError,
  type LeaseApi,
  LeaseConflictError,
  LeaseElector,
  type LeaseRecord,
  LeaseTerminalError,
  type ObservedLease,
  type StopReason,
} from "./lease_elector.ts";

const TIMING = { leaseDurationMs: 400, renewDeadlineMs: 250, retryPeriodMs: 50 };

interface Candidate {
  elector: LeaseElector;
  api: FakeLeaseApi;
  controller: AbortController;
  done: Promise<void>;
  events: { event: "started" | "stopped"; atMs: number; term?: number; reason?: StopReason }[];
}

function candidate(
  store: FakeLeaseStore,
  clock: FakeClock,
  id: string,
  opts: { nonce?: string; machineClock?: Clock; wallOffsetMs?: number } = {},
): Candidate {
  const api = new FakeLeaseApi(store, clock);
  const events: Candidate["events"] = [];
  const elector = new LeaseElector({
    ...TIMING,
    id,
    nonce: opts.nonce,
    api,
    clock: opts.machineClock ?? clock,
    wallNow: () => new Date(Date.UTC(2026, 0, 1) + clock.nowMs() + (opts.wallOffsetMs ?? 0)),
    onStartedLeading: (term) => events.push({ event: "started", atMs: clock.nowMs(), term }),
    onStoppedLeading: (reason) => events.push({ event: "stopped", atMs: clock.nowMs(), reason }),
  });
  const controller = new AbortController();
  const done = elector.run(controller.signal);
  done.catch(() => {});
  return { elector, api, controller, done, events };
}

async function stop(c: Candidate, clock: FakeClock): Promise<void> {
  c.controller.abort();
  let finished = false;
  c.done.finally(() => (finished = true)).catch(() => {});
  for (let i = 0; i < 1000 && !finished; i++) {
    clock.advance(1);
    await settle();
  }
  assert(finished, "run() did not finish after abort");
}

Deno.test("timing: renewDeadline < leaseDuration and retryPeriod < renewDeadline", () => {
  checkLeaseTiming(TIMING);
  let threw = 0;
  for (
    const bad of [
      { ...TIMING, renewDeadlineMs: 400 },
      { ...TIMING, retryPeriodMs: 250 },
      { ...TIMING, retryPeriodMs: 0 },
    ]
  ) {
    try {
      checkLeaseTiming(bad);
    } catch {
      threw++;
    }
  }
  assert.deepEqual(threw, 3);
});

Deno.test("a lone candidate creates the Lease, leads with term 0 and renews every retry period", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a", { nonce: "n1" });
  await runFor(clock, 20);
  assert(a.elector.isLeader());
  assert.deepEqual(a.elector.term, 0);
  assert.deepEqual(store.lease?.record.holderIdentity, "sup-a/n1");
  assert.deepEqual(store.lease?.record.leaseDurationMs, 400);
  const writes = store.writes.length;
  await runFor(clock, 1000, 1, () => assert(a.elector.isLeader()));
  // one renew per 50 ms, each one write (the fast path needs no read)
  assert.deepEqual(store.writes.length - writes, 20);
  assert.deepEqual(store.lease?.record.leaseTransitions, 0);
  await stop(a, clock);
  assert.deepEqual(a.events.map((e) => e.event), ["started", "stopped"]);
});

Deno.test("takeover after the leader stops renewing: ≤ leaseDuration + retryPeriod + one round trip, after the old leader stepped down", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  await runFor(clock, 20);
  // B runs on another machine: its monotonic clock reads 7 h more, its wall clock is 1 h behind.
  const b = candidate(store, clock, "sup-b", {
    machineClock: offsetClock(clock, 25_200_000),
    wallOffsetMs: -3_600_000,
  });
  await runFor(clock, 337); // an arbitrary phase
  a.api.fault = "hang"; // A can no longer reach the API
  const lastWriteMs = store.writes.at(-1)!.atMs;
  await runFor(clock, 1000, 1, () => assert(!(a.elector.isLeader() && b.elector.isLeader())));
  const takeover = store.writes.find((w) => w.holder === b.elector.identity)!;
  assert(takeover !== undefined, "B never took over");
  const rtt = b.api.rttMs;
  assert(
    takeover.atMs - lastWriteMs <= TIMING.leaseDurationMs + TIMING.retryPeriodMs + rtt,
    `takeover ${takeover.atMs - lastWriteMs} ms after the last renew`,
  );
  assert(takeover.atMs - lastWriteMs >= TIMING.leaseDurationMs, "taken before expiry");
  const stepDown = a.events.find((e) => e.event === "stopped")!;
  assert.deepEqual(stepDown.reason, "renew-deadline");
  assert(stepDown.atMs <= lastWriteMs + TIMING.renewDeadlineMs);
  assert(stepDown.atMs < takeover.atMs);
  assert(b.elector.isLeader());
  assert.deepEqual(b.elector.term, 1);
  await stop(a, clock);
  await stop(b, clock);
});

Deno.test("release on stop gives an immediate takeover", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  await runFor(clock, 20);
  const b = candidate(store, clock, "sup-b");
  await runFor(clock, 200);
  assert(a.elector.isLeader() && !b.elector.isLeader());
  a.controller.abort();
  const abortedAtMs = clock.nowMs();
  assert(!a.elector.isLeader(), "stops acting before the release is written");
  assert.deepEqual(a.events.at(-1)?.reason, "released");
  await runFor(clock, 100);
  assert(b.elector.isLeader());
  const takeover = store.writes.find((w) => w.holder === b.elector.identity)!;
  assert(
    takeover.atMs - abortedAtMs <= TIMING.retryPeriodMs + 2 * b.api.rttMs,
    `takeover ${takeover.atMs - abortedAtMs} ms after the release`,
  );
  await stop(b, clock);
  assert.deepEqual(store.lease?.record.holderIdentity, "");
  assert.deepEqual(store.lease?.record.leaseTransitions, 1, "the record is kept");
});

Deno.test("an ineligible leader (lost its bus) stops at once and hands the Lease to an eligible peer; an ineligible candidate never acquires", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  await runFor(clock, 20);
  const b = candidate(store, clock, "sup-b");
  await runFor(clock, 137);
  assert(a.elector.isLeader() && !b.elector.isLeader());
  a.elector.setEligible(false);
  const atMs = clock.nowMs();
  assert(!a.elector.isLeader(), "stops acting before anything is written");
  assert.deepEqual(a.events.at(-1)?.reason, "ineligible");
  await runFor(clock, 200, 1, () => assert(!(a.elector.isLeader() && b.elector.isLeader())));
  assert(b.elector.isLeader());
  const takeover = store.writes.find((w) => w.holder === b.elector.identity)!;
  assert(
    takeover.atMs - atMs <= 2 * TIMING.retryPeriodMs + 4 * b.api.rttMs,
    `takeover ${takeover.atMs - atMs} ms after A became ineligible (no wait for expiry)`,
  );
  // A, still ineligible, does not take the Lease back when B stops
  b.elector.setEligible(false);
  await runFor(clock, 1500, 1, () => assert(!a.elector.isLeader() && !b.elector.isLeader()));
  assert.deepEqual(store.lease?.record.holderIdentity, "", "nobody holds it: nobody can hear");
  // A hears again: it acquires (a new term)
  a.elector.setEligible(true);
  await runFor(clock, 200);
  assert(a.elector.isLeader());
  assert.deepEqual(a.elector.term, 2);
  await stop(a, clock);
  await stop(b, clock);
});

Deno.test("a leader whose renews fail steps down before its lease can be taken", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  await runFor(clock, 20);
  const b = candidate(store, clock, "sup-b");
  await runFor(clock, 113);
  a.api.fault = "error"; // 503 on every request
  const lastWriteMs = store.writes.at(-1)!.atMs;
  let aLostAtMs: number | undefined;
  let bWonAtMs: number | undefined;
  await runFor(clock, 800, 1, () => {
    if (aLostAtMs === undefined && !a.elector.isLeader()) aLostAtMs = clock.nowMs();
    if (bWonAtMs === undefined && b.elector.isLeader()) bWonAtMs = clock.nowMs();
  });
  assert(aLostAtMs !== undefined && bWonAtMs !== undefined);
  assert(aLostAtMs <= lastWriteMs + TIMING.renewDeadlineMs, `${aLostAtMs - lastWriteMs}`);
  const takeover = store.writes.find((w) => w.holder === b.elector.identity)!;
  assert(aLostAtMs < takeover.atMs, "the old leader was still leading when B wrote");
  assert.deepEqual(a.events.at(-1)?.reason, "renew-deadline");
  // A recovers: it does not lead again while B holds the Lease
  a.api.fault = "none";
  await runFor(clock, 500, 1, () => assert(!a.elector.isLeader()));
  await stop(a, clock);
  await stop(b, clock);
});

/** A scripted API: answers in order, records the calls. */
class ScriptedApi implements LeaseApi {
  calls: string[] = [];
  constructor(private readonly script: (() => ObservedLease)[]) {}
  #next(name: string): Promise<ObservedLease> {
    this.calls.push(name);
    const step = this.script.shift();
    if (!step) return new Promise(() => {}); // nothing more: hang
    try {
      return Promise.resolve(step());
    } catch (error) {
      return Promise.reject(error);
    }
  }
  get(_signal: AbortSignal) {
    return this.#next("get");
  }
  create(_record: LeaseRecord, _signal: AbortSignal) {
    return this.#next("create");
  }
  replace(_record: LeaseRecord, _rv: string, _signal: AbortSignal) {
    return this.#next("replace");
  }
}

Deno.test("a 409 on replace is a lost race: the candidate re-reads and does not write blind", async () => {
  const clock = new FakeClock();
  const lease = (holder: string, rv: string): ObservedLease => ({
    resourceVersion: rv,
    record: { holderIdentity: holder, leaseDurationMs: 400, leaseTransitions: 3 },
  });
  const api = new ScriptedApi([
    () => lease("", "7"), // released: free to take
    () => {
      throw new LeaseConflictError();
    },
    () => lease("sup-b/x", "8"), // the winner
  ]);
  const started: number[] = [];
  const elector = new LeaseElector({
    ...TIMING,
    id: "sup-a",
    api,
    clock,
    onStartedLeading: (t) => started.push(t),
  });
  const controller = new AbortController();
  const done = elector.run(controller.signal);
  await settle();
  assert.deepEqual(api.calls, ["get", "replace", "get"]);
  assert.deepEqual(elector.observedHolder, "sup-b/x");
  assert(!elector.isLeader());
  assert.deepEqual(started, []);
  controller.abort();
  await done;
});

Deno.test("AlreadyExists on create: another candidate created the Lease first", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  const b = candidate(store, clock, "sup-b"); // both find no Lease and create at once
  await runFor(clock, 300, 1, () => assert(!(a.elector.isLeader() && b.elector.isLeader())));
  assert.deepEqual([a, b].filter((c) => c.elector.isLeader()).length, 1);
  assert.deepEqual(store.writes.filter((w) => w.term === 0).length >= 1, true);
  await stop(a, clock);
  await stop(b, clock);
});

Deno.test("a second instance with the same id refuses: DuplicateIdentityError", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a", { nonce: "first" });
  await runFor(clock, 20);
  const twin = candidate(store, clock, "sup-a", { nonce: "second" });
  let failure: unknown;
  twin.done.catch((e) => (failure = e));
  await runFor(clock, 2 * TIMING.retryPeriodMs + 20);
  assert(failure instanceof DuplicateIdentityError, String(failure));
  assert.deepEqual(failure.id, "sup-a");
  assert.deepEqual(failure.holderIdentity, "sup-a/first");
  assert(/another supervisor with id "sup-a" is running/.test(failure.message));
  assert(a.elector.isLeader());
  await stop(a, clock);
});

Deno.test("a restart finds its predecessor's record, which is not renewed: takes over after expiry", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  store.create({ holderIdentity: "sup-a/crashed", leaseDurationMs: 400, leaseTransitions: 4 });
  const a = candidate(store, clock, "sup-a", { nonce: "restarted" });
  await runFor(clock, 380, 1, () => assert(!a.elector.isLeader()));
  await runFor(clock, 80);
  assert(a.elector.isLeader());
  assert.deepEqual(a.elector.term, 5);
  await stop(a, clock);
});

Deno.test("403 is terminal: run() rejects with a clear message, the leader steps down", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  await runFor(clock, 20);
  assert(a.elector.isLeader());
  a.api.fault = "forbidden";
  await runFor(clock, 60);
  await assert.rejects(a.done, (e) => e instanceof LeaseTerminalError && /403/.test(e.message));
  assert(!a.elector.isLeader());
  assert.deepEqual(a.events.at(-1)?.reason, "error");
});

Deno.test("property: two electors on one Lease are never both leader (randomized faults, delays, restarts, eligibility)", async () => {
  const faults: LeaseFault[] = ["none", "error", "lost-response", "hang"];
  let leaderships = 0;
  let handovers = 0;
  for (let seed = 1; seed <= 12; seed++) {
    const random = seededRandom(seed);
    const clock = new FakeClock();
    const store = new FakeLeaseStore(clock);
    const ids = ["sup-a", "sup-b"];
    const live: (Candidate | undefined)[] = ids.map((id, i) =>
      candidate(store, clock, id, {
        machineClock: offsetClock(clock, i * 1e6 + random() * 1e5),
        wallOffsetMs: (random() - 0.5) * 3.6e6,
      })
    );
    const all = [...live] as Candidate[];
    const stopping: Candidate[] = [];
    for (let step = 0; step < 3000; step++) {
      for (const [i, c] of live.entries()) {
        if (c === undefined) {
          // restarted after its predecessor finished
          if (random() < 0.01) all.push(live[i] = candidate(store, clock, ids[i]));
          continue;
        }
        if (random() < 0.02) {
          c.api.rttMs = 1 + Math.floor(random() * 60);
          c.api.applyAfterMs = Math.floor(random() * c.api.rttMs);
          const r = random();
          c.api.fault = r < 0.7 ? "none" : faults[1 + Math.floor(random() * 3)];
        }
        if (random() < 0.004) c.elector.setEligible(!c.elector.eligible); // bus lost / back
        if (random() < 0.002) {
          c.controller.abort();
          stopping.push(c);
          live[i] = undefined;
          c.done.finally(() => stopping.splice(stopping.indexOf(c), 1)).catch(() => {});
        }
      }
      clock.advance(1 + Math.floor(random() * 3));
      await settle();
      const leaders = [...live, ...stopping].filter((c) => c?.elector.isLeader());
      assert(
        leaders.length <= 1,
        `seed ${seed}, t=${clock.nowMs()}: both ${leaders.map((c) => c!.elector.identity)} lead`,
      );
      for (const l of leaders) {
        assert.deepEqual(store.lease?.record.holderIdentity, l!.elector.identity, `seed ${seed}`);
      }
    }
    for (const c of live) {
      if (c === undefined) continue;
      c.api.fault = "none";
      await stop(c, clock);
    }
    for (const c of all) {
      leaderships += c.events.filter((e) => e.event === "started").length;
      // callbacks alternate, starting with "started"
      c.events.forEach((e, k) => assert.deepEqual(e.event, k % 2 === 0 ? "started" : "stopped"));
    }
    handovers += store.writes.filter((w, k) =>
      k > 0 && w.holder !== "" && w.holder !== store.writes[k - 1].holder
    ).length;
  }
  assert(leaderships > 50, `only ${leaderships} leaderships: the schedule exercised too little`);
  assert(handovers > 20, `only ${handovers} handovers`);
});

Deno.test("isLeader() is judged at call time: a stalled event loop (no timer fired) is not leading", async () => {
  const clock = new FakeClock();
  const store = new FakeLeaseStore(clock);
  const a = candidate(store, clock, "sup-a");
  await runFor(clock, 20);
  assert(a.elector.isLeader());
  const lastWriteMs = store.writes.at(-1)!.atMs;
  clock.jump(lastWriteMs + TIMING.renewDeadlineMs - clock.nowMs() - 1); // no timers run
  assert(a.elector.isLeader(), "1 ms before the deadline");
  clock.jump(1);
  assert(!a.elector.isLeader(), "at the deadline, before any callback could run");
  await stop(a, clock);
});
