/**
 * What every mode's repetition needs: the cluster (with the bench's admin client and observer),
 * the broker, the vehicle workers, a scratch directory, a seeded random source, progress output.
 *
 * @module
 */
import type { ControlPlane } from "../tests/harness/control_plane.ts";
import type { ClusterObserver } from "./cluster_observer.ts";
import type { KubeApi } from "./kube_api.ts";
import type { Progress } from "./progress.ts";
import type { NodeSet } from "./scenarios.ts";
import type { Stall } from "./stall_monitor.ts";
import type { PromotionFeed, SimPublisher } from "./vehicle.ts";

/** Shared state of one benchmark phase. */
export interface BenchContext {
  cp: ControlPlane;
  api: KubeApi;
  observer: ClusterObserver;
  brokerUrl: string;
  publisher: SimPublisher;
  promotions: PromotionFeed;
  /** Scratch directory (configs, logs). */
  dir: string;
  random: () => number;
  progress: Progress;
  /** The Jetson node set the mode runs on. */
  nodes: NodeSet;
  /** Stalls of the bench's main thread. */
  stalls: Stall[];
}

/** `ms` later. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rounds to µs for the JSON file. */
export function r3(v: number | undefined): number | undefined {
  return v === undefined || !Number.isFinite(v) ? undefined : Math.round(v * 1000) / 1000;
}

/** A DNS-1123 label from parts (≤ 63 characters). */
export function label(...parts: (string | number)[]): string {
  return parts.join("-").toLowerCase().replace(/[^a-z0-9-]/g, "-").slice(0, 63).replace(
    /-+$/,
    "",
  );
}
