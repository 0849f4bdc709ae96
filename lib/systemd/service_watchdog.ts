/**
 * The service manager's watchdog (`WatchdogSec=`), fed only on evidence: `WATCHDOG=1` is sent from
 * a timer every half timeout (so (1) the event loop runs), and only while `check` finds no reason
 * against it — for the supervisor (2) the deadline timer of the heartbeat watchdog is alive and (3)
 * ingest has not been in a fault for longer than its bound; for the agent the heartbeat schedule
 * runs and the broker connection is up or within its bound (see `liveness.ts`). When the pings
 * stop, systemd kills the process after `WatchdogSec` and restarts it (`Restart=always`). Each tick
 * also refreshes `STATUS=` when the status line changed.
 *
 * @module
 */
import { type Clock, systemClock, type TimerHandle } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { Notifier } from "./notify.ts";

/** STATUS refresh period without a service watchdog, ms. */
const STATUS_INTERVAL_MS = 1000;

/** Options of {@linkcode ServiceWatchdog}. */
export interface ServiceWatchdogOptions {
  notifier: Notifier;
  /**
   * The service manager's watchdog timeout, ms (`WatchdogSec`, from `WATCHDOG_USEC`: see
   * `watchdogTimeoutMs`); pings go every half of it. Undefined: no watchdog, STATUS only.
   */
  timeoutMs: number | undefined;
  /** Why the process must not look alive at `nowMs` (monotonic ms), or undefined when it may. */
  check: (nowMs: number) => string | undefined;
  /** A one-line status for `systemctl status` (e.g. `running: 6 targets armed, ingest ok`). */
  status: (nowMs: number) => string;
  clock?: Clock;
  log: Logger;
}

/** Sends READY/STATUS/WATCHDOG/STOPPING for one service (see the module documentation). */
export class ServiceWatchdog {
  readonly #notifier: Notifier;
  readonly #timeoutMs: number | undefined;
  readonly #check: (nowMs: number) => string | undefined;
  readonly #status: (nowMs: number) => string;
  readonly #clock: Clock;
  readonly #log: Logger;
  #timer: TimerHandle | undefined;
  #running = false;
  #lastStatus = "";
  #withheld: string | undefined;
  #pings = 0;

  /** Creates it; nothing is sent before {@linkcode ServiceWatchdog.ready}. */
  constructor(options: ServiceWatchdogOptions) {
    this.#notifier = options.notifier;
    this.#timeoutMs = options.timeoutMs;
    this.#check = options.check;
    this.#status = options.status;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log;
  }

  /** The ping period, ms (half the timeout), or undefined without a service watchdog. */
  get pingIntervalMs(): number | undefined {
    return this.#timeoutMs === undefined ? undefined : this.#timeoutMs / 2;
  }

  /** `WATCHDOG=1` sent so far. */
  get pings(): number {
    return this.#pings;
  }

  /** Why pings are withheld now, or undefined while they are sent. */
  get withheld(): string | undefined {
    return this.#withheld;
  }

  /**
   * Start-up is complete: sends `READY=1` with the status and, when there is a watchdog, the first
   * ping (if the check allows), then ticks every half timeout. Idempotent.
   */
  ready(): void {
    if (this.#running || !this.#notifier.enabled) return;
    this.#running = true;
    const nowMs = this.#clock.nowMs();
    this.#lastStatus = this.#status(nowMs);
    this.#send({ READY: "1", STATUS: this.#lastStatus, ...this.#ping(nowMs) });
    this.#log.info("systemd-ready", {
      watchdogMs: this.#timeoutMs ?? null,
      pingIntervalMs: this.pingIntervalMs ?? null,
    });
    this.#arm();
  }

  /** The shutdown began: stops pinging and sends `STOPPING=1`. Idempotent. */
  stopping(why: string): void {
    this.close();
    if (!this.#notifier.enabled) return;
    this.#send({ STOPPING: "1", STATUS: `stopping: ${why}` });
  }

  /** Stops the timer (sends nothing). Idempotent. */
  close(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimer(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    if (!this.#running) return;
    const periodMs = this.pingIntervalMs ?? STATUS_INTERVAL_MS;
    this.#timer = this.#clock.setTimer(() => this.#tick(), periodMs);
  }

  #tick(): void {
    this.#timer = undefined;
    if (!this.#running) return;
    const nowMs = this.#clock.nowMs();
    const fields: Record<string, string> = this.#ping(nowMs);
    const status = this.#status(nowMs);
    if (status !== this.#lastStatus) fields.STATUS = this.#lastStatus = status;
    if (Object.keys(fields).length > 0) this.#send(fields);
    this.#arm();
  }

  /** `{ WATCHDOG: "1" }` when a watchdog is configured and the check passes; logs changes. */
  #ping(nowMs: number): Record<string, string> {
    if (this.#timeoutMs === undefined) return {};
    const why = this.#check(nowMs);
    if (why !== undefined) {
      if (this.#withheld === undefined) {
        this.#log.warn("systemd-watchdog-withheld", {
          why,
          action: `systemd restarts the service ${this.#timeoutMs} ms after the last ping`,
        });
      }
      this.#withheld = why;
      return {};
    }
    if (this.#withheld !== undefined) {
      this.#log.info("systemd-watchdog-resumed", { after: this.#withheld });
      this.#withheld = undefined;
    }
    this.#pings++;
    return { WATCHDOG: "1" };
  }

  #send(fields: Record<string, string>): void {
    this.#notifier.notify(fields);
  }
}
