/**
 * The contract between the supervisor and whatever carries out a failover plan against the
 * cluster: the Kubernetes executor (`kube_executor.ts`) or the dry-run one (`dry_run.ts`).
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { FailoverPlan, NodeFencePlan } from "../policy/policy.ts";

/** Annotation and label keys written on Deployments; the epoch is persisted here. */
export const ANNOTATIONS = {
  role: "sdv-failover.io/role",
  epoch: "sdv-failover.io/epoch",
  activeNode: "sdv-failover.io/active-node",
  failedNode: "sdv-failover.io/failed-node",
  reason: "sdv-failover.io/reason",
} as const;

/** What one action did. */
export type ActionOutcome = "done" | "unchanged" | "planned" | "failed";

/** Result of one API action of a plan. */
export interface ActionResult {
  /** `markActive`, `markFailed`, `deletePods`, `fenceNode`, `event:<reason>`. */
  action: string;
  /** The object acted on, `kind/namespace/name` or `kind/name`. */
  object: string;
  outcome: ActionOutcome;
  /** Attempts made (1 = no retry). */
  attempts: number;
  /** From the start of the plan's execution to this action's acknowledgement, ms. */
  doneAtMs: number;
  /** Human-readable detail (e.g. pods deleted, error text). */
  detail?: string;
}

/** The state of one workload observed in the cluster at start-up (reconcile). */
export interface ObservedWorkload {
  /** Highest `sdv-failover.io/epoch` on the workload's Deployments (0 if none). */
  epoch: number;
  /** `sdv-failover.io/active-node` of the Deployment carrying that epoch, if any. */
  activeNode?: string;
}

/** Carries out failover plans against the cluster. */
export interface FailoverExecutor {
  /** Reads persisted failover state so a restarted supervisor repeats no action. */
  observe(config: Config, signal?: AbortSignal): Promise<Map<string, ObservedWorkload>>;
  /**
   * Converges the cluster to the plan: every API action of the plan, independent ones
   * concurrently. Idempotent: re-running a plan changes nothing. Never throws; failures are
   * reported per action.
   */
  execute(plan: FailoverPlan, signal?: AbortSignal): Promise<ActionResult[]>;
  /**
   * Fences a failed node (cordon and/or our NoExecute taint). Observes first: a node already
   * fenced is left alone and no Event is recorded. Never throws.
   */
  fenceNode(plan: NodeFencePlan, signal?: AbortSignal): Promise<ActionResult[]>;
  /** Releases connections. */
  close(): void;
}
