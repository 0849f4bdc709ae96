/**
 * Alive supervision of every target (node heartbeat, sensor tick, app heartbeat) against a
 * deadline on the monotonic clock.
 *
 * Vocabulary and states follow the AUTOSAR Watchdog Manager's alive supervision (AUTOSAR
 * SWS_WatchdogManager: local supervision status OK / FAILED / EXPIRED / DEACTIVATED), adapted:
 *
 * ```
 *            heartbeat                      deadline passed, confirmed
 *   INIT ──────────────▶ OK ───────────────────────────────────────────▶ EXPIRED
 *     │ grace passed,                ▲                                      │ heartbeat
 *     │ confirmed                    │ heartbeats for recoveryWindowMs     ▼
 *     └──────────────▶ EXPIRED       └─────────────────────────────── RECOVERING
 *                                       (deadline passed while RECOVERING → EXPIRED, no new expiry)
 * ```
 *
 * Design rules:
 * - **Event-driven, never polling.** One heap of deadlines and ONE timer armed for the earliest.
 *   A heartbeat moves its target's deadline later (one O(log n) sift) and never touches the
 *   timer; the timer is re-armed only when it fires or when an earlier deadline appears.
 * - **Monotonic time only**: wall-clock jumps change nothing.
 * - **Expiry is confirmed against ingest.** A passed deadline or a Last Will makes the target
 *   *pending*; it expires only after an ingest barrier (a message the supervisor sends itself
 *   through the broker) comes back, proving that every heartbeat the broker held at that moment
 *   has been read.
 *   A stalled event loop (GC, CPU load) therefore cannot blame a healthy node, and a lost or hung
 *   broker (the barrier never returns) is reported as an ingest stall, never as every node
 *   failing at once — also when a dying broker publishes every client's Last Will on its way down.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";
import { DeadlineHeap, type HeapEntry } from "./deadline_heap.ts";

/**
 * Supervision state of one target. `DEACTIVATED` (AUTOSAR WdgM: supervision switched off): a
 * planned stop; silence is expected and nothing expires until the target heartbeats again.
 */
export type TargetState = "INIT" | "OK" | "EXPIRED" | "RECOVERING" | "DEACTIVATED";

/** What kind of thing a target supervises. */
export type TargetKind = "node" | "sensor" | "app";

/**
 * What the watchdog needs of a supervised target; the topology's `Target` satisfies it (the
 * watchdog hands the same object back in every {@linkcode Transition}).
 */
export interface TargetSpec {
  /** For humans (logs); never parsed. */
  readonly label: string;
  readonly kind: TargetKind;
  /** Expected heartbeat period in ms (informational; timing sanity is checked by the config). */
  readonly periodMs: number;
  /** Silence longer than this expires the target, in ms. */
  readonly timeoutMs: number;
}

/** Why a target expired. */
export type ExpiryCause = "deadline" | "offline" | "never-seen";

/** A state change, delivered to the {@linkcode WatchdogOptions.onTransition} listener. */
export interface Transition<S extends TargetSpec = TargetSpec> {
  /** The target as it was added (the same object). */
  target: S;
  from: TargetState;
  to: TargetState;
  /** Monotonic time of the transition in ms. */
  atMs: number;
  /** Receipt time of the last heartbeat before the transition (undefined if none ever). */
  lastHeartbeatAtMs: number | undefined;
  /** For expiries: the deadline that passed (ms). */
  deadlineMs?: number;
  /** For expiries: how long after the deadline it was confirmed (ms). */
  latenessMs?: number;
  /** For expiries: the cause. */
  cause?: ExpiryCause;
  /**
   * For expiries: when the passed deadline (or the Last Will) was first noticed, before the
   * barrier confirmed it (monotonic ms).
   */
  noticedAtMs?: number;
  /** True when this is the OK/INIT → EXPIRED edge that should trigger failover. */
  isFailure: boolean;
}

/** The ingest barrier: sends a message through the broker back to the supervisor. */
export interface IngestBarrier {
  /**
   * Sends barrier number `seq` through the broker; ingest must call
   * {@linkcode Watchdog.barrierPassed} with the same `seq` when it comes back.
   */
  request(seq: number): void;
}

/** Options of {@linkcode Watchdog}. */
export interface WatchdogOptions<S extends TargetSpec = TargetSpec> {
  clock: Clock;
  /** Receives every state change, synchronously, in order. */
  onTransition: (transition: Transition<S>) => void;
  /** Called once when a barrier did not return within `barrierTimeoutMs`. */
  onIngestStall?: (sinceMs: number) => void;
  /**
   * Called after every batch of expiries confirmed together, once all of them are applied: a
   * decision must see the state after the whole batch (a standby that expires in the same batch as
   * the active side is not healthy).
   */
  onBatchEnd?: () => void;
  /** Barrier used to confirm expiries; without one, passed deadlines expire at once. */
  barrier?: IngestBarrier;
  /** How long a barrier may take before ingest counts as stalled, ms (default 200). */
  barrierTimeoutMs?: number;
  /** Continuous heartbeats needed for RECOVERING → OK, ms (default 1000). */
  recoveryWindowMs?: number;
  /** Timer lateness above this counts as a supervisor lag event, ms (default 5). */
  lagToleranceMs?: number;
  /**
   * A barrier slower than this shows a stalled broker, ms (default 5): after a stall the broker
   * may hand back the barrier before frames still queued in other clients' sockets (seen with a
   * 200–300 ms SIGSTOP of mosquitto), so such a barrier confirms nothing and one more round trip
   * is made; the frames read meanwhile refute the expiry.
   */
  slowBarrierMs?: number;
  /**
   * Receives the lateness of every deadline-timer firing (now − due, ms; what `maxTimerLatenessMs`
   * and `lagEvents` summarise), e.g. for a metrics histogram. Called on the timer's task, before
   * the due deadlines are collected; must be O(1) and must not throw. Default: none.
   */
  onTimerLateness?: (latenessMs: number) => void;
}

/** Counters exported as metrics. */
export interface WatchdogStats {
  heartbeats: number;
  expiries: number;
  /** Deadlines that passed but were refuted by a heartbeat read before the barrier returned. */
  refuted: number;
  /** Barriers slower than `slowBarrierMs` (a stalled broker): one more round trip was made. */
  slowBarriers: number;
  barriers: number;
  timerFirings: number;
  /** Timer firings later than `lagToleranceMs`. */
  lagEvents: number;
  /** Largest timer lateness seen, ms. */
  maxTimerLatenessMs: number;
}

interface Target<S extends TargetSpec = TargetSpec> extends HeapEntry {
  spec: S;
  index: number;
  state: TargetState;
  lastHeartbeatAtMs: number | undefined;
  /** {@linkcode Watchdog.trustedNowMs} at the last heartbeat. */
  lastHeartbeatTrustedMs: number;
  recoveringSinceMs: number;
  /** Set while the deadline has passed and a barrier is awaited; the passed deadline. */
  pendingDeadlineMs: number;
  pendingSinceMs: number;
  /** Why it is pending: a passed deadline (undefined) or a Last Will. */
  pendingCause: ExpiryCause | undefined;
}

const KIND_ORDER: Record<TargetKind, number> = { node: 0, sensor: 1, app: 2 };

/** Alive supervision of many targets with one timer. See the module doc for the state machine. */
export class Watchdog<S extends TargetSpec = TargetSpec> {
  readonly #clock: Clock;
  readonly #onTransition: (t: Transition<S>) => void;
  readonly #onIngestStall?: (sinceMs: number) => void;
  readonly #onBatchEnd?: () => void;
  readonly #onTimerLateness?: (latenessMs: number) => void;
  readonly #barrier?: IngestBarrier;
  readonly #barrierTimeoutMs: number;
  readonly #recoveryWindowMs: number;
  readonly #lagToleranceMs: number;
  readonly #slowBarrierMs: number;
  /** The last barrier was slow: the next one must come back before anything is confirmed. */
  #recheck = false;
  readonly #targets: Target<S>[] = [];
  readonly #heap = new DeadlineHeap<Target<S>>();
  readonly #pending = new Set<Target<S>>();
  #timer: TimerHandle | undefined;
  #timerDueMs = Infinity;
  /** Outstanding barriers: seq → monotonic send time. */
  readonly #barriersInFlight = new Map<number, number>();
  #barrierSeq = 0;
  #barrierTimer: TimerHandle | undefined;
  #suspended = false;
  #stalled = false;
  #stopped = false;
  /** End of the boot window (monotonic ms): never-seen targets do not expire before it. */
  #bootUntilMs = -Infinity;
  /** After a resume with a grace: no deadline earlier than this (see {@linkcode Watchdog.resume}). */
  #resumeGraceUntilMs = -Infinity;
  /** Time spent suspended so far, ms (silence while ingest cannot be trusted proves nothing). */
  #suspendedTotalMs = 0;
  #suspendedAtMs = 0;

  /** Counters; read-only for callers. */
  readonly stats: WatchdogStats = {
    heartbeats: 0,
    expiries: 0,
    refuted: 0,
    slowBarriers: 0,
    barriers: 0,
    timerFirings: 0,
    lagEvents: 0,
    maxTimerLatenessMs: 0,
  };

  /** Creates a watchdog; add targets with {@linkcode Watchdog.add} then call {@linkcode Watchdog.start}. */
  constructor(options: WatchdogOptions<S>) {
    this.#clock = options.clock;
    this.#onTransition = options.onTransition;
    this.#onIngestStall = options.onIngestStall;
    this.#onBatchEnd = options.onBatchEnd;
    this.#onTimerLateness = options.onTimerLateness;
    this.#barrier = options.barrier;
    this.#barrierTimeoutMs = options.barrierTimeoutMs ?? 200;
    this.#recoveryWindowMs = options.recoveryWindowMs ?? 1000;
    this.#lagToleranceMs = options.lagToleranceMs ?? 5;
    this.#slowBarrierMs = options.slowBarrierMs ?? 5;
  }

  /**
   * Registers a target and returns its index (a handle for {@linkcode Watchdog.heartbeatAt}).
   * Add the topology's targets in order, so that the returned index equals `target.index`.
   * @throws Error when the timeout is not positive.
   */
  add(spec: S): number {
    if (!(spec.timeoutMs > 0)) throw new Error(`target ${spec.label}: timeoutMs must be > 0`);
    const target: Target<S> = {
      spec,
      index: this.#targets.length,
      state: "INIT",
      lastHeartbeatAtMs: undefined,
      lastHeartbeatTrustedMs: 0,
      recoveringSinceMs: 0,
      pendingDeadlineMs: NaN,
      pendingSinceMs: NaN,
      pendingCause: undefined,
      deadlineMs: Infinity,
      heapIndex: -1,
    };
    this.#targets.push(target);
    return target.index;
  }

  /** Number of targets. */
  get size(): number {
    return this.#targets.length;
  }

  /**
   * Arms every target: a target not heard from within `max(graceMs, timeoutMs)` expires with
   * cause `never-seen`.
   * @param graceMs start-up grace in ms (the origin project used 3000).
   */
  start(graceMs: number): void {
    const nowMs = this.#clock.nowMs();
    this.#bootUntilMs = nowMs + graceMs;
    for (const t of this.#targets) {
      if (t.state === "INIT" || t.state === "OK") {
        this.#heap.set(t, nowMs + Math.max(graceMs, t.spec.timeoutMs));
      }
    }
    this.#arm();
  }

  /** Records a heartbeat of target `index`, received at `atMs` (monotonic; default now). */
  heartbeatAt(index: number, atMs: number = this.#clock.nowMs()): void {
    const t = this.#targets[index];
    if (!t || this.#stopped) return;
    this.stats.heartbeats++;
    t.lastHeartbeatAtMs = atMs;
    t.lastHeartbeatTrustedMs = this.#trustedNowMs(atMs);
    if (this.#pending.delete(t)) {
      this.stats.refuted++;
      t.pendingCause = undefined;
    }
    switch (t.state) {
      case "INIT":
        this.#transition(t, "OK", atMs, {});
        break;
      case "DEACTIVATED":
      case "EXPIRED":
        t.recoveringSinceMs = atMs;
        this.#transition(t, "RECOVERING", atMs, {});
        break;
      case "RECOVERING":
        if (atMs - t.recoveringSinceMs >= this.#recoveryWindowMs) {
          this.#transition(t, "OK", atMs, {});
        }
        break;
    }
    if (this.#suspended) return;
    // Within a resume's grace a heartbeat does not shorten the target's deadline: after a stall
    // the broker delivers each client's backlog in bursts, so one early frame proves nothing about
    // the next one (found by the fault campaign: a node expired 150 ms after its first frame
    // following a 2.6 s broker stall, its next frames 11 ms later).
    this.#heap.set(t, Math.max(atMs + t.spec.timeoutMs, this.#resumeGraceUntilMs));
    // A heartbeat only moves a deadline later, so the armed timer stays valid (it may fire early
    // and re-arm). Only a target that was not in the heap can bring an earlier deadline.
    if (this.#timerDueMs > t.deadlineMs) this.#arm();
  }

  /**
   * The target announced it is gone (a Last Will `offline` delivered live by the broker): it
   * expires without waiting for its deadline, once an ingest barrier confirms that the broker is
   * alive. A broker that shuts down publishes the wills of all its clients and then closes (seen
   * with mosquitto 2.0 on SIGTERM); the barrier never returns then, and the outage becomes an
   * ingest fault instead of every node failing at once.
   */
  offline(index: number, atMs: number = this.#clock.nowMs()): void {
    const t = this.#targets[index];
    if (!t || this.#stopped || this.#suspended) return;
    if (t.state === "EXPIRED" || t.state === "DEACTIVATED" || this.#pending.has(t)) return;
    this.#heap.delete(t);
    t.pendingDeadlineMs = atMs;
    t.pendingSinceMs = atMs;
    t.pendingCause = "offline";
    this.#pending.add(t);
    if (!this.#barrier) this.#expireBatch([t], atMs);
    else if (this.#barriersInFlight.size === 0) this.#sendBarrier(atMs);
    // else: the barrier in flight was sent before this Last Will; when it returns,
    // barrierPassed() sends the next one for the targets it cannot vouch for.
  }

  /**
   * Checks the earliest deadline now. Cheap (O(1) when nothing is due); ingest calls it after each
   * batch of messages so that expiry does not wait for a timer that the event loop runs late.
   */
  checkDue(nowMs: number = this.#clock.nowMs()): void {
    const top = this.#heap.peek();
    if (top && top.deadlineMs <= nowMs && !this.#suspended) this.#collectDue(nowMs);
  }

  /**
   * Called by ingest when barrier `seq` came back through the broker: every target that became
   * pending before that barrier was sent, and got no heartbeat since, is now confirmed EXPIRED.
   * Unknown or stale `seq`s are ignored.
   * @returns true when `seq` was in flight (the barrier counted), false when it was ignored.
   */
  barrierPassed(seq: number): boolean {
    const sentAtMs = this.#barriersInFlight.get(seq);
    if (sentAtMs === undefined) return false;
    // Messages arrive in order: this barrier also vouches for every earlier one.
    for (const s of this.#barriersInFlight.keys()) if (s <= seq) this.#barriersInFlight.delete(s);
    if (this.#barrierTimer !== undefined) this.#clock.clearTimer(this.#barrierTimer);
    this.#barrierTimer = undefined;
    this.#stalled = false;
    const nowMs = this.#clock.nowMs();
    if (nowMs - sentAtMs > this.#slowBarrierMs && !this.#recheck && this.#pending.size > 0) {
      // A slow barrier: the broker was stalled; confirm only after one more round trip.
      this.#recheck = true;
      this.stats.slowBarriers++;
      this.#sendBarrier(nowMs);
      return true;
    }
    this.#recheck = false;
    const confirmed = [...this.#pending].filter((t) => t.pendingSinceMs <= sentAtMs);
    const waiting = confirmed.length < this.#pending.size;
    this.#expireBatch(confirmed, nowMs);
    if (waiting) this.#sendBarrier(nowMs);
    return true;
  }

  /** True while barrier `seq` is in flight: {@linkcode Watchdog.barrierPassed} would count it. */
  isBarrierInFlight(seq: number): boolean {
    return this.#barriersInFlight.has(seq);
  }

  /**
   * Switches supervision of a target off (a planned stop): no deadline, no pending expiry, no
   * transition to EXPIRED while it is silent. Its next heartbeat starts a recovery
   * (`DEACTIVATED → RECOVERING → OK`). No-op for an EXPIRED or already deactivated target.
   */
  deactivate(index: number, atMs: number = this.#clock.nowMs()): void {
    const t = this.#targets[index];
    if (!t || this.#stopped || t.state === "EXPIRED" || t.state === "DEACTIVATED") return;
    this.#heap.delete(t);
    this.#pending.delete(t);
    t.pendingCause = undefined;
    this.#transition(t, "DEACTIVATED", atMs, {});
  }

  /**
   * Suspends supervision (the broker connection is lost: no heartbeat can arrive, so silence
   * proves nothing). Pending expiries are dropped; states are kept.
   */
  suspend(): void {
    if (this.#suspended) return;
    this.#suspended = true;
    this.#suspendedAtMs = this.#clock.nowMs();
    this.#recheck = false;
    this.#cancelTimer();
    this.#cancelBarrier();
    this.#pending.clear();
    for (const t of this.#targets) this.#heap.delete(t);
  }

  /**
   * Resumes after {@linkcode Watchdog.suspend}. The outage is not counted as silence — but only
   * the outage: a target's silence is measured in trusted time (time not suspended), so a target
   * silent before the outage keeps what it had used of its timeout, and flapping ingest faults
   * (a flood) do not hide a hung node for ever. Every target gets at least `graceMs` (clients
   * reconnecting after a long outage) and two of its periods (frames queued during a stall are
   * read first); a target never seen keeps at least the rest of the boot window.
   */
  resume(graceMs: number): void {
    if (!this.#suspended || this.#stopped) return;
    this.#suspended = false;
    this.#stalled = false;
    // A barrier still in flight was sent before or during the outage, maybe on a connection that
    // is gone (QoS 0): it vouches for nothing now, and waiting for it would keep every later
    // expiry pending for ever (found by the fault campaign: a broker stall that ended in a
    // reconnect left a crashed node unnoticed). A late one is ignored as unknown.
    this.#cancelBarrier();
    const nowMs = this.#clock.nowMs();
    this.#suspendedTotalMs += nowMs - this.#suspendedAtMs;
    this.#resumeGraceUntilMs = nowMs + graceMs;
    const trustedNowMs = this.#trustedNowMs(nowMs);
    for (const t of this.#targets) {
      if (t.state === "EXPIRED" || t.state === "DEACTIVATED") continue;
      const floorMs = Math.max(graceMs, Math.min(t.spec.timeoutMs, 2 * t.spec.periodMs));
      let deadlineMs: number;
      if (t.state === "INIT") {
        deadlineMs = Math.max(nowMs + Math.max(graceMs, t.spec.timeoutMs), this.#bootUntilMs);
      } else {
        const remainingMs = t.spec.timeoutMs - (trustedNowMs - t.lastHeartbeatTrustedMs);
        deadlineMs = nowMs + Math.max(floorMs, remainingMs);
      }
      this.#heap.set(t, deadlineMs);
    }
    this.#arm();
  }

  /** Monotonic time minus the time spent suspended, ms. */
  #trustedNowMs(nowMs: number): number {
    return nowMs - this.#suspendedTotalMs - (this.#suspended ? nowMs - this.#suspendedAtMs : 0);
  }

  /** Stops all timers; further calls do nothing. */
  stop(): void {
    this.#stopped = true;
    this.#cancelTimer();
    this.#cancelBarrier();
  }

  /** True while suspended. */
  get suspended(): boolean {
    return this.#suspended;
  }

  /** State of a target by index. */
  stateAt(index: number): TargetState | undefined {
    return this.#targets[index]?.state;
  }

  /** Snapshot of one target by index (`undefined` if unknown). */
  describe(index: number):
    | { spec: S; state: TargetState; lastHeartbeatAtMs?: number; deadlineMs: number }
    | undefined {
    const t = this.#targets[index];
    if (!t) return undefined;
    return {
      spec: t.spec,
      state: t.state,
      lastHeartbeatAtMs: t.lastHeartbeatAtMs,
      deadlineMs: t.deadlineMs,
    };
  }

  /**
   * Evidence that the deadline machinery is alive (for the service manager's watchdog,
   * `lib/systemd`): how late the deadline timer is at `nowMs`, ms. 0 while it is not yet due or no
   * timer is needed (no armed target, suspended); `Infinity` once stopped, or when targets are
   * armed but no timer is set (never expected).
   */
  timerOverdueMs(nowMs: number = this.#clock.nowMs()): number {
    if (this.#stopped) return Infinity;
    if (this.#suspended || this.#heap.size === 0) return 0;
    if (this.#timer === undefined) return Infinity;
    return Math.max(0, nowMs - this.#timerDueMs);
  }

  /** Number of targets currently armed in the heap. */
  get armedCount(): number {
    return this.#heap.size;
  }

  #arm(): void {
    const top = this.#heap.peek();
    if (!top || this.#suspended || this.#stopped) {
      this.#cancelTimer();
      return;
    }
    if (this.#timer !== undefined && this.#timerDueMs <= top.deadlineMs) return;
    this.#cancelTimer();
    this.#timerDueMs = top.deadlineMs;
    const delayMs = Math.max(0, Math.ceil(top.deadlineMs - this.#clock.nowMs()));
    this.#timer = this.#clock.setTimer(() => this.#onTimer(), delayMs);
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerDueMs = Infinity;
  }

  #cancelBarrier(): void {
    if (this.#barrierTimer !== undefined) this.#clock.clearTimer(this.#barrierTimer);
    this.#barrierTimer = undefined;
    this.#barriersInFlight.clear();
  }

  #onTimer(): void {
    const dueMs = this.#timerDueMs;
    this.#timer = undefined;
    this.#timerDueMs = Infinity;
    if (this.#suspended || this.#stopped) return;
    const nowMs = this.#clock.nowMs();
    this.stats.timerFirings++;
    const latenessMs = nowMs - dueMs;
    if (latenessMs > this.stats.maxTimerLatenessMs) this.stats.maxTimerLatenessMs = latenessMs;
    if (latenessMs > this.#lagToleranceMs) this.stats.lagEvents++;
    this.#onTimerLateness?.(latenessMs);
    this.#collectDue(nowMs);
    this.#arm();
  }

  #collectDue(nowMs: number): void {
    let any = false;
    for (let top = this.#heap.peek(); top && top.deadlineMs <= nowMs; top = this.#heap.peek()) {
      this.#heap.delete(top);
      if (top.state === "RECOVERING") {
        // Relapse: not a new failure (failover already happened), no barrier needed.
        this.#transition(top, "EXPIRED", nowMs, {
          deadlineMs: top.deadlineMs,
          latenessMs: nowMs - top.deadlineMs,
          cause: "deadline",
        });
        continue;
      }
      top.pendingDeadlineMs = top.deadlineMs;
      top.pendingSinceMs = nowMs;
      this.#pending.add(top);
      any = true;
    }
    if (!any) return;
    if (!this.#barrier) {
      this.#expireBatch([...this.#pending], nowMs);
    } else if (this.#barriersInFlight.size === 0) {
      this.#sendBarrier(nowMs);
    }
  }

  #sendBarrier(nowMs: number): void {
    const seq = ++this.#barrierSeq;
    this.#barriersInFlight.set(seq, nowMs);
    this.stats.barriers++;
    if (this.#barrierTimer !== undefined) this.#clock.clearTimer(this.#barrierTimer);
    this.#barrierTimer = this.#clock.setTimer(
      () => this.#onBarrierTimeout(),
      this.#barrierTimeoutMs,
    );
    this.#barrier!.request(seq);
  }

  #onBarrierTimeout(): void {
    this.#barrierTimer = undefined;
    if (this.#barriersInFlight.size === 0 || this.#suspended || this.#stopped) return;
    if (!this.#stalled) {
      this.#stalled = true;
      this.#onIngestStall?.(Math.min(...this.#barriersInFlight.values()));
      // The listener suspended supervision (the supervisor does): nothing is pending any more,
      // and any message at all shows ingest back; a barrier sent now could be lost with the
      // connection and would then block every later confirmation.
      if (this.#suspended || this.#stopped) return;
    }
    // Keep the targets pending (a late barrier still confirms them) and ask again, so that a
    // broker that recovers without a reconnect is noticed. Bound the bookkeeping.
    if (this.#barriersInFlight.size > 16) {
      const oldest = Math.min(...this.#barriersInFlight.keys());
      this.#barriersInFlight.delete(oldest);
    }
    this.#sendBarrier(this.#clock.nowMs());
  }

  /** True while a barrier has been outstanding longer than `barrierTimeoutMs`. */
  get ingestStalled(): boolean {
    return this.#stalled;
  }

  /**
   * Expires a batch confirmed together. Within a batch the order of deadlines is noise (a hung
   * node's heartbeat, sensors and apps stop in the same instant), so the root cause goes first:
   * nodes, then sensors, then apps — the policy then attributes the fault to the node.
   */
  #expireBatch(batch: Target<S>[], nowMs: number): void {
    batch.sort((a, b) => KIND_ORDER[a.spec.kind] - KIND_ORDER[b.spec.kind]);
    for (const t of batch) {
      this.#pending.delete(t);
      const cause = t.pendingCause ?? (t.state === "INIT" ? "never-seen" : "deadline");
      t.pendingCause = undefined;
      this.#expire(t, nowMs, t.pendingDeadlineMs, cause);
    }
    if (batch.length) this.#onBatchEnd?.();
  }

  #expire(t: Target<S>, nowMs: number, deadlineMs: number, cause: ExpiryCause): void {
    const from = t.state;
    if (from === "EXPIRED" || from === "DEACTIVATED") return;
    const isFailure = from === "OK" || from === "INIT";
    if (isFailure) this.stats.expiries++;
    this.#transition(t, "EXPIRED", nowMs, {
      deadlineMs,
      latenessMs: nowMs - deadlineMs,
      noticedAtMs: t.pendingSinceMs,
      cause,
      isFailure,
    });
  }

  #transition(
    t: Target<S>,
    to: TargetState,
    atMs: number,
    extra: Partial<
      Pick<Transition, "deadlineMs" | "latenessMs" | "cause" | "isFailure" | "noticedAtMs">
    >,
  ): void {
    const from = t.state;
    t.state = to;
    this.#onTransition({
      target: t.spec,
      from,
      to,
      atMs,
      lastHeartbeatAtMs: t.lastHeartbeatAtMs,
      isFailure: false,
      ...extra,
    });
  }
}
