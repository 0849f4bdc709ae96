/**
 * The dry-run executor (`run --dry-run`, the demo): prints what would be done and calls nothing.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { FailoverPlan, NodeFencePlan } from "../policy/policy.ts";
import type { Logger } from "../log/log.ts";
import type { ActionResult, FailoverExecutor, ObservedWorkload } from "./executor.ts";
import { plannedActions, plannedFence } from "./plan_actions.ts";

/** An executor that reports every planned API action as `planned` and touches nothing. */
export class DryRunExecutor implements FailoverExecutor {
  /** Plans received, in order (for tests and the demo timeline). */
  readonly plans: FailoverPlan[] = [];
  /** Node fences received, in order. */
  readonly fences: NodeFencePlan[] = [];
  readonly #log?: Logger;

  /** @param options.log prints each planned action (`planned-action`). */
  constructor(options: { log?: Logger } = {}) {
    this.#log = options.log;
  }

  /** Nothing is persisted in a dry run: every workload starts at epoch 0. */
  observe(_config: Config): Promise<Map<string, ObservedWorkload>> {
    return Promise.resolve(new Map());
  }

  /** Returns the API actions the plan would run, each `planned`. */
  execute(plan: FailoverPlan): Promise<ActionResult[]> {
    this.plans.push(plan);
    const actions = plannedActions(plan);
    for (const a of actions) {
      this.#log?.info("planned-action", { workload: plan.workload, epoch: plan.epoch, ...a });
    }
    return Promise.resolve(
      actions.map((a) => ({ ...a, outcome: "planned", attempts: 0, doneAtMs: 0 })),
    );
  }

  /** Returns the node fence the plan would apply, `planned`. */
  fenceNode(plan: NodeFencePlan): Promise<ActionResult[]> {
    this.fences.push(plan);
    const a = plannedFence(plan);
    this.#log?.info("planned-action", { node: plan.node, ...a });
    return Promise.resolve([{ ...a, outcome: "planned", attempts: 0, doneAtMs: 0 }]);
  }

  /** Nothing to release. */
  close(): void {}
}
