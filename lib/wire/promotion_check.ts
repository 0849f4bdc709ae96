/**
 * Which well-formed promotions a consumer obeys: the runtime's defence in depth behind the locked
 * broker (docs/threat_model.md). The supervisor (adopting promotions seen on the bus), every node
 * agent and every app apply the same rules through {@linkcode checkPromotion}:
 *
 * 1. the `issuer` is a supervisor id of the config ({@linkcode Workload.issuers});
 * 2. the `activeNode` is one of the workload's two placements (primary or standby node): a
 *    promotion naming any other node (`nowhere`) would make both instances stand down;
 * 3. an epoch is never reused with another active node: a promotion at the epoch the consumer
 *    already holds must name the node it holds for that epoch. Only the highest epoch and its
 *    active node need remembering: every lower epoch is stale anyway.
 *
 * A lower epoch, or the same epoch naming the same node (a retained promotion delivered again), is
 * `stale`: ignored, not a refusal. The epoch's bound ({@linkcode MAX_EPOCH}) is the decoder's
 * business: a promotion above it is malformed.
 *
 * @module
 */
import type { Logger } from "../log/log.ts";
import type { Workload } from "../topology/topology.ts";
import type { Promotion } from "./wire.ts";

/** Why a well-formed promotion is not obeyed (the log's `reason`). */
export type PromotionRefusal = "unknown-issuer" | "foreign-active-node" | "epoch-reused";

/** What a consumer holds for a workload: the highest epoch seen or issued, and its active node. */
export interface HeldEpoch {
  /** Highest epoch seen or issued (0: none yet). */
  epoch: number;
  /** The active node named at that epoch. */
  activeNode: string;
}

/** The outcome of {@linkcode checkPromotion}. */
export type PromotionVerdict =
  | { kind: "obey" }
  | { kind: "stale" }
  | { kind: "refused"; reason: PromotionRefusal; why: string };

/**
 * Judges a decoded promotion of `workload` against the config and what the consumer holds.
 * @param held the highest epoch the consumer holds and its active node (`undefined`: none yet).
 * @returns `obey` (a higher epoch, from a known issuer, naming one of the workload's nodes),
 *   `stale` (a lower epoch, or the held one naming the same node), or `refused` with the reason.
 */
export function checkPromotion(
  workload: Workload,
  p: Promotion,
  held: HeldEpoch | undefined,
): PromotionVerdict {
  if (!workload.issuers.has(p.issuer)) {
    return {
      kind: "refused",
      reason: "unknown-issuer",
      why: `issuer ${JSON.stringify(p.issuer)} is not a supervisor of the config (${
        [...workload.issuers].join(", ")
      })`,
    };
  }
  const nodes = [workload.primary.node.name, workload.standby.node.name];
  if (!nodes.includes(p.activeNode)) {
    return {
      kind: "refused",
      reason: "foreign-active-node",
      why: `activeNode ${JSON.stringify(p.activeNode)} is not a placement of ${workload.name} (${
        nodes.join(", ")
      })`,
    };
  }
  if (held && held.epoch > 0 && p.epoch === held.epoch && p.activeNode !== held.activeNode) {
    return {
      kind: "refused",
      reason: "epoch-reused",
      why: `epoch ${p.epoch} already names ${held.activeNode} active`,
    };
  }
  if (held && p.epoch <= held.epoch) return { kind: "stale" };
  return { kind: "obey" };
}

/**
 * Logs a refused promotion as `promotion-refused` once per workload and reason; later refusals of
 * the same kind are only counted by the caller (`refusedPromotions`). `logged` is the caller's
 * memory of what it already logged (`<workload>/<reason>` keys).
 */
export function logRefusalOnce(
  log: Logger,
  logged: Set<string>,
  workload: Workload,
  p: Promotion,
  verdict: Extract<PromotionVerdict, { kind: "refused" }>,
): void {
  const key = `${workload.name}/${verdict.reason}`;
  if (logged.has(key)) return;
  logged.add(key);
  log.error("promotion-refused", {
    workload: workload.name,
    reason: verdict.reason,
    why: verdict.why,
    epoch: p.epoch,
    activeNode: p.activeNode,
    issuer: p.issuer,
    action: "ignored (later refusals of this kind are only counted: refusedPromotions)",
  });
}
