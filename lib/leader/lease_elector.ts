/**
 * Leader election between the two supervisors of a pair, with one Kubernetes Lease as the arbiter.
 *
 * The rules are those of client-go's `k8s.io/client-go/tools/leaderelection` package
 * (`leaderelection.go`, `tryAcquireOrRenew`, `renew`, `release`; resource lock
 * `resourcelock/leaselock.go`), adapted to sub-second timing:
 *
 * - **Skew-free expiry.** A candidate never compares another machine's timestamps (the Lease's
 *   `renewTime`, wall time) with its own clock. It records, on its own monotonic clock, when it last
 *   *observed* the lease record change (holder, renew time or resourceVersion — the
 *   resourceVersion changes on every write) and considers the lease expired only after
 *   `leaseDurationMs` of no observed change (client-go: `observedTime`). Only clock *rates* must
 *   agree; the margin `leaseDurationMs − renewDeadlineMs` absorbs rate differences and the jitter of
 *   timers.
 * - **Optimistic concurrency.** Acquire and renew replace the Lease with the resourceVersion last
 *   observed; a 409 Conflict means another write came first: the elector re-reads at once and never
 *   writes blind. An absent Lease is created; a 409 AlreadyExists on create means another candidate
 *   created it first.
 * - **Leader only within the renew deadline.** The holder is leader only while
 *   `now − start of its last successful write < renewDeadlineMs` (client-go: `RenewDeadline`), on
 *   its own monotonic clock. {@linkcode LeaseElector.isLeader} evaluates that at call time, so a
 *   caller gates every action on it. When renewing keeps failing past the deadline the elector
 *   steps down (`onStoppedLeading("renew-deadline")`) and does not act again until it acquires
 *   the Lease anew. Safety: a write that started at `A` is applied by the API server at or after
 *   `A`; another candidate observes it no earlier, and takes over no earlier than
 *   `observed + leaseDurationMs > A + renewDeadlineMs`; a candidate that missed a later renew
 *   fails on the resourceVersion. So two electors are never both leader at one instant.
 * - **Retry period.** Every `retryPeriodMs` an attempt is made (leader: renew; candidate: read and
 *   maybe acquire); a candidate also wakes exactly when the lease it watches would expire, so a
 *   takeover after the leader's last write takes at most `leaseDurationMs + retryPeriodMs` plus
 *   one API round trip.
 * - **Terms.** The Lease's `spec.leaseTransitions`, carried as the leader's `term`: +1 whenever a
 *   leadership period starts (client-go counts holder changes only; we also count a holder that
 *   re-acquires after stepping down, so a term never spans a gap in which the holder could not act).
 * - **Release.** On stop the leader first stops acting, then writes an empty holder (the record is
 *   kept) so the standby takes over at its next attempt instead of waiting for expiry
 *   (client-go: `ReleaseOnCancel`).
 * - **Errors.** 404 on read: the Lease is created. 409: re-read. 401/403 and other 4xx are terminal
 *   ({@linkcode LeaseTerminalError}; a 403 names the RBAC rule). 5xx, 429, network errors and
 *   timeouts are retried at the next attempt; a leader whose renews keep failing steps down at the
 *   renew deadline.
 *
 * Sub-second durations do not fit `spec.leaseDurationSeconds` (an integer), so the holder's
 * duration in milliseconds travels in the annotation {@linkcode LEASE_DURATION_ANNOTATION}
 * (`leaseDurationSeconds` carries it rounded up, for `kubectl`).
 *
 * **Identity.** The holder identity is `<id>/<nonce>`, the nonce random per process. A candidate
 * that sees a lease held by its own id with another nonce *being renewed* (the record changed
 * under that holder since it first saw it) throws {@linkcode DuplicateIdentityError}: another
 * supervisor with the same id is running. A record that merely exists (left by a crashed
 * predecessor of this instance) expires and is taken over as usual.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";

/** Annotation on the Lease carrying the holder's lease duration in ms (sub-second). */
export const LEASE_DURATION_ANNOTATION = "sdv-failover.io/lease-duration-ms";

/** The election record kept in the Lease's spec (and the duration annotation). */
export interface LeaseRecord {
  /** `<id>/<nonce>` of the holder; `""` when released. */
  holderIdentity: string;
  /** How long candidates wait without observing a change before taking over, ms. */
  leaseDurationMs: number;
  /** Number of leadership periods begun; the leader's term. */
  leaseTransitions: number;
  /** Wall time of the acquisition (informational only, never compared). */
  acquireTime?: Date;
  /** Wall time of the last renew (informational only, never compared). */
  renewTime?: Date;
}

/** A Lease as read or written: the record and the resourceVersion of that state. */
export interface ObservedLease {
  record: LeaseRecord;
  resourceVersion: string;
}

/**
 * The Lease operations the elector needs, on one named Lease. Errors: {@linkcode LeaseNotFoundError}
 * (404), {@linkcode LeaseConflictError} (409: AlreadyExists on create, Conflict on replace),
 * {@linkcode LeaseTerminalError} (401, 403, other 4xx); anything else counts as retryable.
 */
export interface LeaseApi {
  /** Reads the Lease. */
  get(signal: AbortSignal): Promise<ObservedLease>;
  /** Creates the Lease with `record`. */
  create(record: LeaseRecord, signal: AbortSignal): Promise<ObservedLease>;
  /** Replaces the Lease's record if its resourceVersion is still `resourceVersion`. */
  replace(
    record: LeaseRecord,
    resourceVersion: string,
    signal: AbortSignal,
  ): Promise<ObservedLease>;
}

/** The Lease does not exist (HTTP 404). */
export class LeaseNotFoundError extends Error {
  constructor(message = "lease not found") {
    super(message);
    this.name = "LeaseNotFoundError";
  }
}

/** Another write came first (HTTP 409: AlreadyExists or Conflict). */
export class LeaseConflictError extends Error {
  constructor(message = "lease conflict") {
    super(message);
    this.name = "LeaseConflictError";
  }
}

/** A request that will not succeed by retrying (HTTP 401, 403, other 4xx). */
export class LeaseTerminalError extends Error {
  /** HTTP status. */
  readonly status: number;
  constructor(status: number, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LeaseTerminalError";
    this.status = status;
  }
}

/** Another supervisor with the same id renews the Lease: two instances must not share an id. */
export class DuplicateIdentityError extends Error {
  /** The supervisor id both use. */
  readonly id: string;
  /** The other instance's holder identity (`<id>/<nonce>`). */
  readonly holderIdentity: string;
  constructor(id: string, holderIdentity: string) {
    super(
      `another supervisor with id "${id}" is running (it holds and renews the lease as ` +
        `"${holderIdentity}"); give each instance of the pair its own id (run --id NAME)`,
    );
    this.name = "DuplicateIdentityError";
    this.id = id;
    this.holderIdentity = holderIdentity;
  }
}

/** Why a leader stopped leading. */
export type StopReason =
  /** No successful renew within `renewDeadlineMs`. */
  | "renew-deadline"
  /** The Lease was observed held by another candidate. */
  | "lost"
  /** Orderly stop: the Lease was released. */
  | "released"
  /** A terminal API error or a duplicate id ended the election. */
  | "error"
  /**
   * The caller declared this candidate unfit to act (the supervisor lost its bus: it cannot see
   * what it would decide on); the Lease is released so a fit peer takes over at once.
   */
  | "ineligible";

/** Timing of the election, ms (see `supervisor.pair` in the config). */
export interface LeaseTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** Options of {@linkcode LeaseElector}. */
export interface LeaseElectorOptions extends LeaseTiming {
  /** The supervisor id (unique per instance of the pair). */
  id: string;
  /** Random per process (default: 8 hex digits of a random UUID). */
  nonce?: string;
  api: LeaseApi;
  /** Monotonic clock and timers. */
  clock: Clock;
  /** Wall time for the informational `acquireTime`/`renewTime` (default `new Date()`). */
  wallNow?: () => Date;
  /** Called when a leadership period starts, with its term. */
  onStartedLeading?: (term: number) => void;
  /** Called when a leadership period ends (never while {@linkcode LeaseElector.isLeader}). */
  onStoppedLeading?: (reason: StopReason) => void;
  log?: Logger;
}

/** Throws when the timing cannot keep two leaders apart. */
export function checkLeaseTiming(t: LeaseTiming): void {
  if (!(t.retryPeriodMs > 0 && t.retryPeriodMs < t.renewDeadlineMs)) {
    throw new RangeError("retryPeriodMs must be > 0 and < renewDeadlineMs");
  }
  if (!(t.renewDeadlineMs < t.leaseDurationMs)) {
    throw new RangeError("renewDeadlineMs must be < leaseDurationMs");
  }
}

/**
 * One candidate of the pair. {@linkcode LeaseElector.run} campaigns until its signal aborts;
 * {@linkcode LeaseElector.isLeader} gates every action of the caller.
 */
export class LeaseElector {
  /** `<id>/<nonce>`, this candidate's holder identity. */
  readonly identity: string;
  readonly #o: LeaseElectorOptions;
  readonly #clock: Clock;
  /** Last observed state of the Lease and when (monotonic) it was observed to change. */
  #observed: ObservedLease | undefined;
  #observedAtMs = 0;
  /** A foreign holder with our id was observed once; a change under it proves it renews. */
  #sameIdHolderSeen: string | undefined;
  /** A leadership period is running (onStartedLeading fired, onStoppedLeading not yet). */
  #leading = false;
  /** Start of our last successful write to the Lease (monotonic). */
  #validFromMs = Number.NEGATIVE_INFINITY;
  #term = -1;
  #deadlineTimer: TimerHandle | undefined;
  #stopped = false;
  /** The run signal aborted: no new leadership period starts. */
  #stopping = false;
  /** May lead (see {@linkcode LeaseElector.setEligible}). */
  #eligible = true;

  constructor(options: LeaseElectorOptions) {
    checkLeaseTiming(options);
    if (options.id.includes("/")) throw new RangeError("id must not contain '/'");
    this.#o = options;
    this.#clock = options.clock;
    this.identity = `${options.id}/${options.nonce ?? crypto.randomUUID().slice(0, 8)}`;
  }

  /**
   * True while this candidate leads: a leadership period is running and its last successful write
   * started less than `renewDeadlineMs` ago on the monotonic clock. Check it before every action.
   */
  isLeader(): boolean {
    return this.#leading && !this.#stopped && !this.#stopping && this.#eligible &&
      this.#clock.nowMs() - this.#validFromMs < this.#o.renewDeadlineMs;
  }

  /**
   * Whether this candidate may lead (default true). Made ineligible, a leader stops acting at once
   * (`onStoppedLeading("ineligible")`) and releases the Lease at its next attempt (within
   * `retryPeriodMs`), so the peer takes over without waiting for the Lease to expire; an
   * ineligible candidate keeps observing the Lease but never acquires it. The supervisor makes
   * itself ineligible while its ingest is faulted: a leader that cannot hear the nodes must not
   * be the one that decides, and the standby, which can, takes over (docs/design.md).
   */
  setEligible(eligible: boolean): void {
    if (this.#eligible === eligible) return;
    this.#eligible = eligible;
    this.#o.log?.info("lease-eligibility", { identity: this.identity, eligible });
    if (!eligible) this.#stepDown("ineligible");
  }

  /** Whether this candidate may lead (see {@linkcode LeaseElector.setEligible}). */
  get eligible(): boolean {
    return this.#eligible;
  }

  /** The term of the current (or last) leadership period; -1 before the first. */
  get term(): number {
    return this.#term;
  }

  /** The holder identity last observed on the Lease (`""` when released or unknown). */
  get observedHolder(): string {
    return this.#observed?.record.holderIdentity ?? "";
  }

  /**
   * Campaigns until `signal` aborts, then releases the Lease if it holds it.
   * @throws DuplicateIdentityError when another instance with this id renews the Lease.
   * @throws LeaseTerminalError on a terminal API error (e.g. 403: RBAC).
   */
  async run(signal: AbortSignal): Promise<void> {
    // Stop acting at once; the release is written when the current attempt has ended.
    const onAbort = () => {
      this.#stopping = true;
      this.#stepDown("released");
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const startMs = this.#clock.nowMs();
        await this.#attempt(signal);
        this.#checkDeadline();
        if (signal.aborted) break;
        await this.#sleep(this.#nextDelayMs(startMs), signal);
      }
    } catch (error) {
      this.#stepDown("error");
      this.#stopped = true;
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
    await this.#release();
  }

  // -------------------------------------------------------------------------------------------

  /** One try to acquire or renew (client-go `tryAcquireOrRenew`); errors other than terminal ones are absorbed. */
  async #attempt(signal: AbortSignal): Promise<void> {
    const api = this.#o.api;
    if (!this.#eligible) return await this.#attemptIneligible(signal);
    try {
      // Fast path: we hold the Lease as last observed; renew with that resourceVersion.
      const observed = this.#observed;
      if (observed !== undefined && observed.record.holderIdentity === this.identity) {
        const writeStartMs = this.#clock.nowMs();
        try {
          const written = await this.#call(
            (s) => api.replace(this.#nextRecord(observed.record), observed.resourceVersion, s),
            signal,
          );
          this.#wrote(written, writeStartMs);
          return;
        } catch (error) {
          if (!(error instanceof LeaseConflictError) && !(error instanceof LeaseNotFoundError)) {
            throw error;
          }
          // stale view: fall through and re-read
        }
      }
      let current: ObservedLease;
      try {
        current = await this.#call((s) => api.get(s), signal);
      } catch (error) {
        if (!(error instanceof LeaseNotFoundError)) throw error;
        const writeStartMs = this.#clock.nowMs();
        try {
          const created = await this.#call(
            (s) => api.create(this.#nextRecord(undefined), s),
            signal,
          );
          this.#wrote(created, writeStartMs);
        } catch (createError) {
          if (!(createError instanceof LeaseConflictError)) throw createError;
          this.#o.log?.debug("lease-create-lost", { identity: this.identity });
        }
        return;
      }
      this.#observe(current);
      if (!this.#mayWrite(current.record)) return;
      const writeStartMs = this.#clock.nowMs();
      try {
        const written = await this.#call(
          (s) => api.replace(this.#nextRecord(current.record), current.resourceVersion, s),
          signal,
        );
        this.#wrote(written, writeStartMs);
      } catch (error) {
        if (!(error instanceof LeaseConflictError)) throw error;
        // Lost the race: re-read at once so the observation (and its time) is current.
        this.#observe(await this.#call((s) => api.get(s), signal));
      }
    } catch (error) {
      if (error instanceof LeaseTerminalError || error instanceof DuplicateIdentityError) {
        throw error;
      }
      if (signal.aborted) return;
      this.#o.log?.warn("lease-attempt-failed", {
        identity: this.identity,
        leader: this.isLeader(),
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** Ineligible: hand the Lease back if we hold it, else only observe it. Errors are absorbed. */
  async #attemptIneligible(signal: AbortSignal): Promise<void> {
    try {
      const current = await this.#call((s) => this.#o.api.get(s), signal);
      this.#observe(current);
      if (current.record.holderIdentity !== this.identity) return;
      const record: LeaseRecord = {
        ...current.record,
        holderIdentity: "",
        renewTime: this.#o.wallNow?.() ?? new Date(),
      };
      this.#observe(
        await this.#call((s) => this.#o.api.replace(record, current.resourceVersion, s), signal),
      );
      this.#o.log?.info("lease-released", { identity: this.identity, why: "ineligible" });
    } catch (error) {
      if (error instanceof LeaseTerminalError || error instanceof DuplicateIdentityError) {
        throw error;
      }
      if (signal.aborted) return;
      this.#o.log?.warn("lease-attempt-failed", {
        identity: this.identity,
        eligible: false,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  /** The Lease may be written by us: released, ours, or unchanged for its duration. */
  #mayWrite(record: LeaseRecord): boolean {
    const holder = record.holderIdentity;
    if (holder === "" || holder === this.identity) return true;
    return this.#clock.nowMs() - this.#observedAtMs >= record.leaseDurationMs;
  }

  /** The record we write: us as holder; a new term when a leadership period starts. */
  #nextRecord(current: LeaseRecord | undefined): LeaseRecord {
    const wall = this.#o.wallNow?.() ?? new Date();
    const continuing = current !== undefined && current.holderIdentity === this.identity &&
      this.isLeader();
    return {
      holderIdentity: this.identity,
      leaseDurationMs: this.#o.leaseDurationMs,
      leaseTransitions: current === undefined
        ? 0
        : continuing
        ? current.leaseTransitions
        : current.leaseTransitions + 1,
      acquireTime: continuing ? (current.acquireTime ?? wall) : wall,
      renewTime: wall,
    };
  }

  /** Records an observation; the observation time moves only when the record changed. */
  #observe(lease: ObservedLease): void {
    const before = this.#observed;
    const changed = before === undefined || before.resourceVersion !== lease.resourceVersion ||
      before.record.holderIdentity !== lease.record.holderIdentity ||
      before.record.renewTime?.getTime() !== lease.record.renewTime?.getTime();
    this.#observed = lease;
    if (!changed) return;
    this.#observedAtMs = this.#clock.nowMs();
    const holder = lease.record.holderIdentity;
    if (holder !== this.identity && this.#leading) this.#stepDown("lost");
    if (holder !== this.identity && holder.slice(0, holder.lastIndexOf("/")) === this.#o.id) {
      if (this.#sameIdHolderSeen === holder) {
        throw new DuplicateIdentityError(this.#o.id, holder);
      }
      this.#sameIdHolderSeen = holder;
    } else {
      this.#sameIdHolderSeen = undefined;
    }
  }

  /** Our write succeeded: it started at `writeStartMs`, so we lead until that + renewDeadline. */
  #wrote(lease: ObservedLease, writeStartMs: number): void {
    this.#observe(lease);
    // A new term means the previous period lapsed before this write began (see #nextRecord).
    if (this.#leading && lease.record.leaseTransitions !== this.#term) {
      this.#stepDown("renew-deadline");
    }
    this.#validFromMs = writeStartMs;
    if (this.#clock.nowMs() - writeStartMs >= this.#o.renewDeadlineMs) {
      // Too slow to count: the deadline passed while the write was under way.
      this.#stepDown("renew-deadline");
      return;
    }
    if (this.#stopping) return;
    this.#armDeadline();
    if (!this.#leading) {
      this.#leading = true;
      this.#term = lease.record.leaseTransitions;
      this.#o.log?.info("leader-elected", { identity: this.identity, term: this.#term });
      this.#o.onStartedLeading?.(this.#term);
    }
  }

  #armDeadline(): void {
    if (this.#deadlineTimer !== undefined) this.#clock.clearTimer(this.#deadlineTimer);
    const dueMs = this.#validFromMs + this.#o.renewDeadlineMs - this.#clock.nowMs();
    this.#deadlineTimer = this.#clock.setTimer(() => {
      this.#deadlineTimer = undefined;
      this.#checkDeadline();
    }, dueMs);
  }

  #checkDeadline(): void {
    if (this.#leading && !this.isLeader()) this.#stepDown("renew-deadline");
  }

  #stepDown(reason: StopReason): void {
    if (this.#deadlineTimer !== undefined) {
      this.#clock.clearTimer(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
    if (!this.#leading) return;
    this.#leading = false;
    this.#validFromMs = Number.NEGATIVE_INFINITY;
    const log = reason === "released" ? this.#o.log?.info : this.#o.log?.warn;
    log?.call(this.#o.log, "leader-stepped-down", {
      identity: this.identity,
      term: this.#term,
      reason,
    });
    this.#o.onStoppedLeading?.(reason);
  }

  /** Leader: the next renew one retry period after the last began; candidate: also at expiry. */
  #nextDelayMs(attemptStartMs: number): number {
    const nowMs = this.#clock.nowMs();
    let delayMs = attemptStartMs + this.#o.retryPeriodMs - nowMs;
    const o = this.#observed;
    if (
      o !== undefined && o.record.holderIdentity !== "" && o.record.holderIdentity !== this.identity
    ) {
      const expiryInMs = this.#observedAtMs + o.record.leaseDurationMs - nowMs;
      if (expiryInMs > 0) delayMs = Math.min(delayMs, expiryInMs);
    }
    return Math.max(0, delayMs);
  }

  /** Runs one API call with a timeout of `renewDeadlineMs` (on the injected clock). */
  async #call<T>(op: (signal: AbortSignal) => Promise<T>, outer: AbortSignal): Promise<T> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(outer.reason);
    outer.addEventListener("abort", onAbort, { once: true });
    const timer = this.#clock.setTimer(
      () => controller.abort(new DOMException("lease request timed out", "TimeoutError")),
      this.#o.renewDeadlineMs,
    );
    try {
      return await op(controller.signal);
    } finally {
      this.#clock.clearTimer(timer);
      outer.removeEventListener("abort", onAbort);
    }
  }

  #sleep(delayMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const onAbort = () => {
        this.#clock.clearTimer(timer);
        resolve();
      };
      const timer = this.#clock.setTimer(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, delayMs);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Orderly stop: stop acting first, then hand the Lease back (client-go `release`). */
  async #release(): Promise<void> {
    this.#stepDown("released");
    this.#stopped = true;
    const signal = new AbortController().signal;
    const api = this.#o.api;
    const release = async (observed: ObservedLease | undefined): Promise<boolean> => {
      if (observed === undefined || observed.record.holderIdentity !== this.identity) return false;
      const record: LeaseRecord = {
        ...observed.record,
        holderIdentity: "",
        renewTime: this.#o.wallNow?.() ?? new Date(),
      };
      this.#observed = await this.#call(
        (s) => api.replace(record, observed.resourceVersion, s),
        signal,
      );
      return true;
    };
    try {
      let released: boolean;
      try {
        released = await release(this.#observed);
      } catch (error) {
        // An in-flight renew cut by the stop may have been applied: re-read; release if still ours.
        if (!(error instanceof LeaseConflictError)) throw error;
        released = await release(await this.#call((s) => api.get(s), signal));
      }
      if (released) this.#o.log?.info("lease-released", { identity: this.identity });
    } catch (error) {
      this.#o.log?.warn("lease-release-failed", {
        identity: this.identity,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
