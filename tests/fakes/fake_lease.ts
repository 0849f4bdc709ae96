/**
 * An in-memory Lease (the arbiter) and per-candidate API views of it for the elector's unit
 * tests: each view has its own round-trip time and injectable faults, on a {@linkcode FakeClock}.
 *
 * A request is applied to the store at `applyAfterMs` (default 0) after it was sent and answered
 * at `rttMs`; a `lost-response` fault applies it but answers with an error, a `hang` never answers
 * (the caller's signal ends it), as a real API server and network can.
 *
 * @module
 */
import type { Clock } from "../../lib/clock/clock.ts";
import {
  type LeaseApi,
  LeaseConflictError,
  LeaseNotFoundError,
  type LeaseRecord,
  LeaseTerminalError,
  type ObservedLease,
} from "../../lib/leader/lease_elector.ts";

/** The one Lease, with resourceVersion optimistic concurrency. */
export class FakeLeaseStore {
  lease: ObservedLease | undefined;
  #version = 0;
  /** Every successful write: holder, when (store clock) and term. */
  readonly writes: { holder: string; atMs: number; term: number }[] = [];

  constructor(private readonly clock: Clock) {}

  get(): ObservedLease {
    if (this.lease === undefined) throw new LeaseNotFoundError();
    return structuredClone(this.lease);
  }

  create(record: LeaseRecord): ObservedLease {
    if (this.lease !== undefined) throw new LeaseConflictError("already exists");
    return this.#put(record);
  }

  replace(record: LeaseRecord, resourceVersion: string): ObservedLease {
    if (this.lease === undefined) throw new LeaseNotFoundError();
    if (this.lease.resourceVersion !== resourceVersion) throw new LeaseConflictError();
    return this.#put(record);
  }

  #put(record: LeaseRecord): ObservedLease {
    this.lease = { record: structuredClone(record), resourceVersion: String(++this.#version) };
    this.writes.push({
      holder: record.holderIdentity,
      atMs: this.clock.nowMs(),
      term: record.leaseTransitions,
    });
    return structuredClone(this.lease);
  }
}

/** A fault of one request. */
export type LeaseFault =
  | "none"
  /** 503 before applying. */
  | "error"
  /** applied, but the answer is lost (a 504 / timeout to the caller). */
  | "lost-response"
  /** never answered (nor applied) until the caller aborts. */
  | "hang"
  | "forbidden";

/** One candidate's view of the store. */
export class FakeLeaseApi implements LeaseApi {
  /** Round trip of a request, ms. */
  rttMs = 5;
  /** When the store applies a request after it was sent, ms (≤ rttMs). */
  applyAfterMs = 0;
  /** Fault of the next requests (consumed one per request when a queue is given). */
  faults: LeaseFault[] = [];
  /** Fault of every request while `faults` is empty. */
  fault: LeaseFault = "none";
  calls = 0;

  constructor(readonly store: FakeLeaseStore, private readonly clock: Clock) {}

  get(signal: AbortSignal): Promise<ObservedLease> {
    return this.#request(() => this.store.get(), signal);
  }
  create(record: LeaseRecord, signal: AbortSignal): Promise<ObservedLease> {
    return this.#request(() => this.store.create(record), signal);
  }
  replace(record: LeaseRecord, resourceVersion: string, signal: AbortSignal) {
    return this.#request(() => this.store.replace(record, resourceVersion), signal);
  }

  #request<T>(op: () => T, signal: AbortSignal): Promise<T> {
    this.calls++;
    const fault = this.faults.shift() ?? this.fault;
    const { clock } = this;
    return new Promise<T>((resolve, reject) => {
      let outcome: { value: T } | { error: unknown } | undefined;
      const timers: unknown[] = [];
      const onAbort = () => {
        for (const t of timers) clock.clearTimer(t);
        reject(signal.reason ?? new DOMException("aborted", "AbortError"));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      const settle = (fn: () => void) => {
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      if (fault === "hang") return;
      if (fault === "forbidden") {
        timers.push(clock.setTimer(
          () => settle(() => reject(new LeaseTerminalError(403, "forbidden (403)"))),
          this.rttMs,
        ));
        return;
      }
      if (fault === "error") {
        timers.push(clock.setTimer(
          () => settle(() => reject(Object.assign(new Error("503"), { code: 503 }))),
          this.rttMs,
        ));
        return;
      }
      const apply = () => {
        try {
          outcome = { value: op() };
        } catch (error) {
          outcome = { error };
        }
      };
      if (this.applyAfterMs <= 0) apply();
      else timers.push(clock.setTimer(apply, this.applyAfterMs));
      timers.push(clock.setTimer(() =>
        settle(() => {
          if (outcome === undefined) apply();
          if (fault === "lost-response") reject(Object.assign(new Error("504"), { code: 504 }));
          else if ("error" in outcome!) reject(outcome.error);
          else resolve(outcome!.value);
        }), this.rttMs));
    });
  }
}

/** A view of `clock` shifted by `offsetMs` (another machine's monotonic clock, same rate). */
export function offsetClock(clock: Clock, offsetMs: number): Clock {
  return {
    nowMs: () => clock.nowMs() + offsetMs,
    setTimer: (callback, delayMs) => clock.setTimer(callback, delayMs),
    clearTimer: (handle) => clock.clearTimer(handle),
  };
}

/** Lets pending promise continuations run (no timers involved). */
export async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/**
 * Advances `clock` by `totalMs` in steps of `stepMs`, letting continuations run after each step;
 * `each` is called after every step (e.g. to check an invariant).
 */
export async function runFor(
  clock: { advance(ms: number): void },
  totalMs: number,
  stepMs = 1,
  each?: () => void,
): Promise<void> {
  for (let t = 0; t < totalMs; t += stepMs) {
    clock.advance(stepMs);
    await settle();
    each?.();
  }
}
