/**
 * Main-thread handles of the two workers that stand in for the vehicle: the simulated publisher
 * (agents, sensors, apps, faults) and the promotion subscriber (what a standby app receives).
 *
 * @module
 */
import type { Promotion } from "../lib/wire/wire.ts";
import type { PublisherReport } from "../lib/publisher/publisher.ts";
import type { Stall } from "./stall_monitor.ts";

/** The `fault-applied` line of the publisher, as posted by its worker. */
export interface AppliedFaultLine {
  fault: string;
  kind: string;
  wallTimeMs: number;
  sinceLastHeartbeatMs: number | null;
}

/** A running publisher run. */
export interface PublisherRun {
  /** Resolves with the `publisher-started` line's wall time. */
  started: Promise<number>;
  /** Resolves when the (single) fault was applied. */
  fault: Promise<AppliedFaultLine>;
  /** Ordered shutdown; resolves with the report. */
  stop(): Promise<PublisherReport>;
}

/** The simulated-vehicle worker. One run at a time. */
export class SimPublisher {
  readonly #worker: Worker;
  #busy = false;
  /** Stalls of the simulator thread, as they were reported. */
  readonly stalls: Stall[] = [];
  #onMessage: (m: { type: string } & Record<string, unknown>) => void = () => {};

  constructor() {
    this.#worker = new Worker(new URL("./publisher_worker.ts", import.meta.url), {
      type: "module",
    });
    this.#worker.onmessage = (e: MessageEvent) => {
      const m = e.data as { type: string } & Record<string, unknown>;
      if (m.type === "stall") this.stalls.push(m.stall as Stall);
      else this.#onMessage(m);
    };
  }

  /**
   * Starts a run of `config` (raw, as written for the runtime) with `faults`; `onFault` is called
   * synchronously on the message (for the kwok SIGKILL).
   */
  run(
    config: unknown,
    faults: string[],
    onFault?: (f: AppliedFaultLine) => void,
    durationMs = 120_000,
  ): PublisherRun {
    if (this.#busy) throw new Error("SimPublisher: a run is in progress");
    this.#busy = true;
    let startedResolve: (v: number) => void = () => {};
    let faultResolve: (f: AppliedFaultLine) => void = () => {};
    let doneResolve: (r: PublisherReport) => void = () => {};
    let doneReject: (e: Error) => void = () => {};
    const started = new Promise<number>((r) => (startedResolve = r));
    const fault = new Promise<AppliedFaultLine>((r) => (faultResolve = r));
    const done = new Promise<PublisherReport>((res, rej) => {
      doneResolve = res;
      doneReject = rej;
    });
    this.#onMessage = (m) => {
      switch (m.type) {
        case "started":
          startedResolve(Number(m.wallMs));
          break;
        case "fault":
          onFault?.(m as unknown as AppliedFaultLine);
          faultResolve(m as unknown as AppliedFaultLine);
          break;
        case "done":
          this.#busy = false;
          doneResolve(m.report as PublisherReport);
          break;
        case "error":
          this.#busy = false;
          doneReject(new Error(`publisher: ${m.message}`));
          break;
      }
    };
    this.#worker.postMessage({ type: "run", config, faults, durationMs });
    return {
      started: Promise.race([started, done.then(() => NaN)]),
      fault,
      stop: () => {
        this.#worker.postMessage({ type: "stop" });
        return done;
      },
    };
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

/** A received promotion. */
export interface ReceivedPromotion {
  prefix: string;
  promotion: Promotion;
  wallMs: number;
}

/** The promotion-subscriber worker; keeps every live promotion it received. */
export class PromotionFeed {
  readonly #worker: Worker;
  readonly received: ReceivedPromotion[] = [];
  /** Broker round trips above 10 ms and stalls of the subscriber thread. */
  readonly stalls: Stall[] = [];
  readonly #listeners = new Set<() => void>();

  private constructor() {
    this.#worker = new Worker(new URL("./promotion_worker.ts", import.meta.url), {
      type: "module",
    });
  }

  /** Connects and subscribes; resolves when ready. */
  static async start(url: string): Promise<PromotionFeed> {
    const feed = new PromotionFeed();
    await new Promise<void>((resolve, reject) => {
      feed.#worker.onmessage = (e: MessageEvent) => {
        const m = e.data as { type: string } & Record<string, unknown>;
        if (m.type === "ready") resolve();
        else if (m.type === "error") reject(new Error(`promotion subscriber: ${m.message}`));
        else if (m.type === "stall") feed.stalls.push(m.stall as Stall);
        else if (m.type === "promotion") {
          feed.received.push({
            prefix: String(m.topic).split("/")[0],
            promotion: m.promotion as Promotion,
            wallMs: Number(m.wallMs),
          });
          for (const l of feed.#listeners) l();
        }
      };
      feed.#worker.postMessage({ type: "start", url });
    });
    return feed;
  }

  /** Promotions received under `prefix`. */
  of(prefix: string): ReceivedPromotion[] {
    return this.received.filter((r) => r.prefix === prefix);
  }

  /** Resolves true once `check()` holds (re-checked on every promotion), false after `timeoutMs`. */
  until(check: () => boolean, timeoutMs: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const listener = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        resolve(check());
      }, timeoutMs);
      this.#listeners.add(listener);
    });
  }

  terminate(): void {
    this.#worker.terminate();
  }
}
