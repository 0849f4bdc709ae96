/**
 * Relating decisions to the watchdog failures that caused them, through the topology (a
 * placement's targets), never through id strings. Used by the demo's timeline and by the failover
 * journal (`lib/journal`) to assemble a timeline from the supervisor's {@linkcode SupervisorEvent}s.
 *
 * @module
 */
import type { Placement, Target } from "../topology/topology.ts";
import type { Transition } from "../watchdog/watchdog.ts";
import type { SupervisorEvent } from "./supervisor.ts";

/** The watchdog's failure transitions (OK/INIT → EXPIRED) among `events`, in order. */
export function failures(events: readonly SupervisorEvent[]): Transition<Target>[] {
  return events.flatMap((e) =>
    e.type === "transition" && e.transition.isFailure ? [e.transition as Transition<Target>] : []
  );
}

/**
 * The failure of one of `placement`'s targets (its node, sensors or app) confirmed no later than
 * `notAfterMs` (monotonic ms): the `earliest` (what caused a promotion that arrived at
 * `notAfterMs`) or the `latest` (what a decision taken at `notAfterMs` was about).
 * @returns `undefined` when none of its targets failed by then.
 */
export function placementFailure(
  placement: Placement,
  failed: readonly Transition<Target>[],
  notAfterMs: number,
  pick: "earliest" | "latest",
): Transition<Target> | undefined {
  let found: Transition<Target> | undefined;
  for (const t of failed) {
    if (t.atMs > notAfterMs || !placement.targets.includes(t.target)) continue;
    if (!found || (pick === "earliest" ? t.atMs < found.atMs : t.atMs >= found.atMs)) found = t;
  }
  return found;
}
