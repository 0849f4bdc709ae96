/**
 * The API actions a plan implies, shared by the Kubernetes and the dry-run executors so the dry
 * run shows exactly what a real run would do.
 *
 * @module
 */
import type { FailoverPlan, NodeFencePlan } from "../policy/policy.ts";

/** One API action of a plan. */
export interface PlannedAction {
  action: "markActive" | "markFailed" | "deletePods" | "fenceNode";
  object: string;
  detail: string;
}

/** Lists the API actions of `plan` (promotion on MQTT is not an API action). */
export function plannedActions(plan: FailoverPlan): PlannedAction[] {
  const ns = plan.namespace;
  const out: PlannedAction[] = [];
  if (plan.actions.includes("markDeployments")) {
    out.push({
      action: "markActive",
      object: `deployment/${ns}/${plan.active.deployment}`,
      detail: `role=active epoch=${plan.epoch} active-node=${plan.active.node}`,
    });
    out.push({
      action: "markFailed",
      object: `deployment/${ns}/${plan.failed.deployment}`,
      detail: `role=failed epoch=${plan.epoch} failed-node=${plan.failed.node}`,
    });
  }
  if (plan.actions.includes("deletePods")) {
    out.push({
      action: "deletePods",
      object: `pods/${ns}/${plan.failed.deployment}@${plan.failed.node}`,
      detail: "grace 0",
    });
  }
  return out;
}

/** The API action of a node fence plan. */
export function plannedFence(plan: NodeFencePlan): PlannedAction {
  return {
    action: "fenceNode",
    object: `node/${plan.node}`,
    detail: [plan.cordon && "unschedulable", plan.taint && "taint NoExecute"].filter(Boolean).join(
      " + ",
    ),
  };
}
