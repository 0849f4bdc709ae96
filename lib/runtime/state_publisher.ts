/**
 * Publishes the supervisor's status snapshot, retained at QoS 1, on `{p}/supervisor/{id}/state`:
 * at a low rate (`supervisor.stateIntervalMs`, default 1 s, so the ages in the last retained copy
 * are at most that old) and, coalesced, soon after every change that matters (a transition, a
 * promotion, a fence, a change of leadership or of the ingest state).
 *
 * Never on the hot path: {@linkcode StatePublisher.changed} only arms a timer when none is due
 * within `coalesceMs`; the snapshot is built, serialized and compressed in that timer's callback,
 * after the promotion and the API requests of a failover have left.
 *
 * @module
 */
import type { Clock, TimerHandle } from "../clock/clock.ts";
import type { Logger } from "../log/log.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import { encodeStateMessage, MAX_STATE_BYTES, type StatusSnapshot } from "../wire/state_message.ts";

/** How long changes are gathered into one publish, ms (a failover's transitions come together). */
export const STATE_COALESCE_MS = 20;

/**
 * Least time between two publishes, ms: a status display needs no more than a few frames a second,
 * and a large vehicle's snapshot costs ≈ 1 ms of the event loop (1,000 targets: 0.2 ms to build,
 * 0.5–1.5 ms to compress), which must not be paid at every change when targets flap (found by the
 * load benchmark: 50 snapshots/s at 1,000 targets with pauses).
 */
export const STATE_MIN_GAP_MS = 250;

/** Options of {@linkcode StatePublisher}. */
export interface StatePublisherOptions {
  clock: Clock;
  client: MqttClientLike;
  /** `{p}/supervisor/{id}/state`. */
  topic: string;
  /** Period of the publish, ms; 0 disables the publisher entirely. */
  intervalMs: number;
  /** Builds the snapshot now. */
  snapshot: () => StatusSnapshot;
  log: Logger;
  /** See {@linkcode STATE_COALESCE_MS} (default). */
  coalesceMs?: number;
  /** See {@linkcode STATE_MIN_GAP_MS} (default). */
  minGapMs?: number;
  /** Largest payload published, bytes (default {@linkcode MAX_STATE_BYTES}). */
  maxBytes?: number;
}

/** Periodic and change-driven publisher of the retained state. */
export class StatePublisher {
  readonly #o: StatePublisherOptions;
  readonly #coalesceMs: number;
  readonly #minGapMs: number;
  #lastPublishAtMs = -Infinity;
  readonly #maxBytes: number;
  #timer: TimerHandle | undefined;
  #dueMs = Infinity;
  #running = false;
  /** Snapshots published so far. */
  published = 0;
  /** Size of the last payload published or refused, bytes. */
  lastBytes = 0;

  /** Creates it stopped. */
  constructor(options: StatePublisherOptions) {
    this.#o = options;
    this.#coalesceMs = options.coalesceMs ?? STATE_COALESCE_MS;
    this.#minGapMs = options.minGapMs ?? STATE_MIN_GAP_MS;
    this.#maxBytes = options.maxBytes ?? MAX_STATE_BYTES;
  }

  /** Publishes now and then every `intervalMs` (no-op when the interval is 0 or running). */
  start(): void {
    if (this.#o.intervalMs <= 0 || this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /**
   * Something that matters changed: publish within `coalesceMs`, but not sooner than `minGapMs`
   * after the last publish (cheap; no work done here).
   */
  changed(): void {
    if (!this.#running) return;
    const gapLeftMs = this.#lastPublishAtMs + this.#minGapMs - this.#o.clock.nowMs();
    this.#schedule(Math.max(this.#coalesceMs, gapLeftMs));
  }

  /** Stops publishing (the retained copy stays; the status topic says `offline`). */
  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#o.clock.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#dueMs = Infinity;
  }

  #schedule(delayMs: number): void {
    const { clock } = this.#o;
    const dueMs = clock.nowMs() + delayMs;
    if (dueMs >= this.#dueMs) return; // an earlier publish is already due
    if (this.#timer !== undefined) clock.clearTimer(this.#timer);
    this.#dueMs = dueMs;
    this.#timer = clock.setTimer(() => this.#publish(), delayMs);
  }

  #publish(): void {
    this.#timer = undefined;
    this.#dueMs = Infinity;
    if (!this.#running) return;
    const { client, log } = this.#o;
    if (client.connected) {
      const payload = encodeStateMessage(this.#o.snapshot());
      this.lastBytes = payload.length;
      if (payload.length <= this.#maxBytes) {
        client.publish(this.#o.topic, payload, { qos: 1, retain: true });
        this.#lastPublishAtMs = this.#o.clock.nowMs();
        this.published++;
      } else {
        // The topology is fixed, so the snapshot will not shrink below the limit: stop building
        // it (a large vehicle's snapshot and its gzip cost milliseconds of the event loop each).
        log.warn("state-too-large", {
          bytes: payload.length,
          limitBytes: this.#maxBytes,
          action: "state publishing stopped (the broker would drop it); the HTTP /status " +
            "still serves it",
        });
        this.stop();
        return;
      }
    }
    this.#schedule(this.#o.intervalMs);
  }
}
