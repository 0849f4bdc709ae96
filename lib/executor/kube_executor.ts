/**
 * Carries out failover plans through the Kubernetes API (observe → compare → converge).
 *
 * For one plan, all API actions run concurrently over one keep-alive connection pool:
 * - `markActive` / `markFailed`: merge-patch the Deployments' annotations and labels
 *   (`sdv-failover.io/role`, `/epoch`, `/active-node`, `/failed-node`): the epoch and active node
 *   are persisted in the cluster, so a restarted supervisor observes them and repeats nothing.
 *   Only metadata is patched, never the pod template (that would roll the Deployment).
 * - `deletePods`: the failed instance's pods on the failed node (label selector of its Deployment
 *   + `spec.nodeName` field selector), grace period 0. 404 counts as done.
 * - `fenceNode` (node failures, a separate plan): read the Node, then one strategic-merge patch of
 *   only what is missing (`spec.unschedulable`, our NoExecute taint; taints merge by key, so other
 *   taints are untouched). A node already fenced is left alone: no write, no Event.
 * - a core/v1 Event per action that changed something.
 * Every call has a timeout and bounded retries; retryable vs terminal errors are separated.
 *
 * @module
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { type Clock, systemClock } from "../clock/clock.ts";
import type { ClusterConfig, Config } from "../config/schema.ts";
import type { KubeApi } from "../kube/kube_client.ts";
import { type Logger, silentLogger } from "../log/log.ts";
import type { FailoverPlan, NodeFencePlan } from "../policy/policy.ts";
import {
  type ActionResult,
  ANNOTATIONS,
  type FailoverExecutor,
  type ObservedWorkload,
} from "./executor.ts";
import { RetryError, withRetry } from "./retry.ts";

/** Options of {@linkcode KubeExecutor}. */
export interface KubeExecutorOptions {
  api: KubeApi;
  cluster: ClusterConfig;
  /** Supervisor id, written as the Events' reporting instance and the taint's value. */
  supervisorId: string;
  clock?: Clock;
  log?: Logger;
}

interface Involved {
  kind: "Deployment" | "Node";
  name: string;
  namespace?: string;
  uid?: string;
}

/** The Kubernetes failover executor. */
export class KubeExecutor implements FailoverExecutor {
  readonly #api: KubeApi;
  readonly #cluster: ClusterConfig;
  readonly #supervisorId: string;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** Deployment label selectors and uids by `namespace/name`, learned in observe(). */
  readonly #deployments = new Map<string, { selector: string; uid?: string }>();
  /** In-flight node fences, so concurrent fences of the same node share one observe + patch. */
  readonly #nodeOps = new Map<
    string,
    Promise<{ attempts: number; detail: string; outcome: "done" | "unchanged" }>
  >();

  /** Creates the executor over an API client (see `kube_client.ts`). */
  constructor(options: KubeExecutorOptions) {
    this.#api = options.api;
    this.#cluster = options.cluster;
    this.#supervisorId = options.supervisorId;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.log ?? silentLogger;
  }

  /**
   * Reads both Deployments of every workload: their persisted epoch and active node, and their
   * selectors (cached so a failover needs no extra read).
   * @throws RetryError when a Deployment cannot be read (missing, forbidden, API down).
   */
  async observe(config: Config, signal?: AbortSignal): Promise<Map<string, ObservedWorkload>> {
    const out = new Map<string, ObservedWorkload>();
    await Promise.all(config.workloads.map(async (w) => {
      const [primary, standby] = await Promise.all(
        [w.primary.deployment, w.standby.deployment].map((name) =>
          this.#call(() => this.#api.readDeployment(w.namespace, name, signal), signal)
            .then((r) => r.value)
        ),
      );
      let best: ObservedWorkload = { epoch: 0 };
      for (const d of [primary, standby]) {
        this.#remember(w.namespace, d);
        const a = d.metadata?.annotations ?? {};
        const epoch = Number.parseInt(a[ANNOTATIONS.epoch] ?? "0", 10) || 0;
        if (epoch > best.epoch) best = { epoch, activeNode: a[ANNOTATIONS.activeNode] };
      }
      out.set(w.name, best);
    }));
    return out;
  }

  /** Converges the cluster to `plan`. Never throws: failures are reported per action. */
  async execute(plan: FailoverPlan, signal?: AbortSignal): Promise<ActionResult[]> {
    const startMs = this.#clock.nowMs();
    const results: ActionResult[] = [];
    const events: Promise<void>[] = [];
    const record = (
      r: Omit<ActionResult, "doneAtMs">,
      event?: { involved: Involved; reason: string; message: string; warning?: boolean },
    ) => {
      const result = { ...r, doneAtMs: this.#clock.nowMs() - startMs };
      results.push(result);
      if (event && r.outcome === "done" && plan.actions.includes("events")) {
        events.push(
          this.#event(
            plan,
            event.involved,
            event.reason,
            event.message,
            event.warning,
            signal,
            startMs,
            results,
          ),
        );
      }
    };
    const run = async (
      action: string,
      object: string,
      body: () => Promise<{ attempts: number; detail: string; outcome?: "done" | "unchanged" }>,
      event?: { involved: Involved; reason: string; message: string; warning?: boolean },
    ) => {
      try {
        const r = await body();
        record({
          action,
          object,
          outcome: r.outcome ?? "done",
          attempts: r.attempts,
          detail: r.detail,
        }, event);
      } catch (error) {
        record({
          action,
          object,
          outcome: "failed",
          attempts: error instanceof RetryError ? error.attempts : 1,
          detail: error instanceof Error ? error.message : String(error),
        });
      }
    };

    const ns = plan.namespace;
    const tasks: Promise<void>[] = [];
    if (plan.actions.includes("markDeployments")) {
      tasks.push(
        run(
          "markActive",
          `deployment/${ns}/${plan.active.deployment}`,
          () => this.#markDeployment(plan, "active", signal),
          {
            involved: this.#involvedDeployment(ns, plan.active.deployment),
            reason: "FailoverPromoted",
            message:
              `promoted to active on ${plan.active.node} (epoch ${plan.epoch}, ${plan.reason} on ${plan.failed.node})`,
          },
        ),
      );
      tasks.push(
        run(
          "markFailed",
          `deployment/${ns}/${plan.failed.deployment}`,
          () => this.#markDeployment(plan, "failed", signal),
          {
            involved: this.#involvedDeployment(ns, plan.failed.deployment),
            reason: "FailoverFenced",
            message:
              `fenced: lost the active role at epoch ${plan.epoch} (${plan.reason} on ${plan.failed.node})`,
            warning: true,
          },
        ),
      );
    }
    if (plan.actions.includes("deletePods")) {
      tasks.push(
        run(
          "deletePods",
          `pods/${ns}/${plan.failed.deployment}@${plan.failed.node}`,
          () => this.#deletePods(plan, signal),
          {
            involved: this.#involvedDeployment(ns, plan.failed.deployment),
            reason: "FailoverPodsDeleted",
            message: `deleted pods on ${plan.failed.node} with grace 0 (${plan.reason})`,
            warning: true,
          },
        ),
      );
    }
    await Promise.all(tasks);
    await Promise.all(events);
    return results;
  }

  /** Fences a failed node (observe, then patch only what is missing). Never throws. */
  async fenceNode(plan: NodeFencePlan, signal?: AbortSignal): Promise<ActionResult[]> {
    const startMs = this.#clock.nowMs();
    const object = `node/${plan.node}`;
    let inflight = this.#nodeOps.get(plan.node);
    if (!inflight) {
      inflight = this.#fence(plan, signal);
      this.#nodeOps.set(plan.node, inflight);
      inflight.then(() => this.#nodeOps.delete(plan.node), () => this.#nodeOps.delete(plan.node));
    }
    const results: ActionResult[] = [];
    try {
      const r = await inflight;
      results.push({
        action: "fenceNode",
        object,
        outcome: r.outcome,
        attempts: r.attempts,
        detail: r.detail,
        doneAtMs: this.#clock.nowMs() - startMs,
      });
      if (r.outcome === "done" && plan.events) {
        const reason = plan.cordon && plan.taint
          ? "FailoverCordonedTainted"
          : plan.cordon
          ? "FailoverCordoned"
          : "FailoverTainted";
        await this.#event(
          { workload: "-", asil: "-", fttiMs: 0 },
          { kind: "Node", name: plan.node, uid: plan.node },
          reason,
          `fenced after ${plan.reason}: ${r.detail}`,
          true,
          signal,
          startMs,
          results,
        );
      }
    } catch (error) {
      results.push({
        action: "fenceNode",
        object,
        outcome: "failed",
        attempts: error instanceof RetryError ? error.attempts : 1,
        detail: error instanceof Error ? error.message : String(error),
        doneAtMs: this.#clock.nowMs() - startMs,
      });
    }
    return results;
  }

  /** Closes the connection pool. */
  close(): void {
    this.#api.close();
  }

  #remember(namespace: string, d: V1Deployment): void {
    const labels = d.spec?.selector?.matchLabels ?? {};
    const selector = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",");
    this.#deployments.set(`${namespace}/${d.metadata?.name}`, { selector, uid: d.metadata?.uid });
  }

  #involvedDeployment(namespace: string, name: string): Involved {
    return {
      kind: "Deployment",
      name,
      namespace,
      uid: this.#deployments.get(`${namespace}/${name}`)?.uid,
    };
  }

  #call<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<{ value: T; attempts: number }> {
    return withRetry(fn, {
      retries: this.#cluster.retries,
      backoffMs: this.#cluster.retryBackoffMs,
      signal,
    });
  }

  async #markDeployment(plan: FailoverPlan, role: "active" | "failed", signal?: AbortSignal) {
    const side = role === "active" ? plan.active : plan.failed;
    const body = {
      metadata: {
        labels: { [ANNOTATIONS.role]: role },
        annotations: {
          [ANNOTATIONS.role]: role,
          [ANNOTATIONS.epoch]: String(plan.epoch),
          [ANNOTATIONS.activeNode]: plan.active.node,
          [ANNOTATIONS.failedNode]: plan.failed.node,
          [ANNOTATIONS.reason]: plan.reason,
        },
      },
    };
    const { attempts } = await this.#call(
      () => this.#api.patchDeployment(plan.namespace, side.deployment, body, "merge", signal),
      signal,
    );
    return { attempts, detail: `role=${role} epoch=${plan.epoch}` };
  }

  async #deletePods(plan: FailoverPlan, signal?: AbortSignal) {
    // Fence before delete: a replacement must not be scheduled back onto the failed node.
    if (plan.nodeFault) await this.#nodeOps.get(plan.failed.node)?.catch(() => {});
    const key = `${plan.namespace}/${plan.failed.deployment}`;
    let known = this.#deployments.get(key);
    let attempts = 0;
    if (!known) {
      const r = await this.#call(
        () => this.#api.readDeployment(plan.namespace, plan.failed.deployment, signal),
        signal,
      );
      attempts += r.attempts;
      this.#remember(plan.namespace, r.value);
      known = this.#deployments.get(key)!;
    }
    if (!known.selector) throw new Error(`deployment ${key} has no matchLabels selector`);
    const listed = await this.#call(() =>
      this.#api.listPods(plan.namespace, {
        labelSelector: known.selector,
        fieldSelector: `spec.nodeName=${plan.failed.node}`,
      }, signal), signal);
    attempts += listed.attempts;
    const names = listed.value.items.map((p) => p.metadata?.name).filter((n): n is string => !!n);
    const deleted = await Promise.all(names.map((name) =>
      this.#call(async () => {
        try {
          await this.#api.deletePod(plan.namespace, name, 0, signal);
        } catch (e) {
          if ((e as { code?: number })?.code !== 404) throw e; // already gone: converged
        }
      }, signal)
    ));
    attempts += deleted.reduce((sum, d) => sum + d.attempts, 0);
    return {
      attempts,
      outcome: names.length ? "done" as const : "unchanged" as const,
      detail: names.length ? `deleted ${names.join(", ")}` : "no pods on the failed node",
    };
  }

  async #fence(plan: NodeFencePlan, signal?: AbortSignal) {
    const read = await this.#call(() => this.#api.readNode(plan.node, signal), signal);
    const node = read.value;
    const cordoned = node.spec?.unschedulable === true;
    const tainted = (node.spec?.taints ?? []).some((t) =>
      t.key === this.#cluster.taintKey && t.effect === "NoExecute"
    );
    const spec: Record<string, unknown> = {};
    if (plan.cordon && !cordoned) spec.unschedulable = true;
    if (plan.taint && !tainted) {
      spec.taints = [{
        key: this.#cluster.taintKey,
        value: this.#supervisorId,
        effect: "NoExecute",
      }];
    }
    if (Object.keys(spec).length === 0) {
      return { attempts: read.attempts, outcome: "unchanged" as const, detail: "already fenced" };
    }
    // Strategic merge: taints merge by key, other taints stay; no-op fields are not sent.
    const { attempts } = await this.#call(
      () => this.#api.patchNode(plan.node, { spec }, "strategic", signal),
      signal,
    );
    const detail = [
      spec.unschedulable && "unschedulable",
      spec.taints && `taint ${this.#cluster.taintKey}:NoExecute`,
    ]
      .filter(Boolean).join(", ");
    return { attempts: read.attempts + attempts, outcome: "done" as const, detail };
  }

  async #event(
    plan: { workload: string; asil: string; fttiMs: number },
    involved: Involved,
    reason: string,
    message: string,
    warning: boolean | undefined,
    signal: AbortSignal | undefined,
    startMs: number,
    results: ActionResult[],
  ): Promise<void> {
    const namespace = involved.namespace ?? "default";
    const now = new Date().toISOString();
    const body = {
      metadata: { generateName: `${involved.name}.sdv-failover.`, namespace },
      involvedObject: {
        kind: involved.kind,
        apiVersion: involved.kind === "Deployment" ? "apps/v1" : "v1",
        name: involved.name,
        ...(involved.namespace ? { namespace: involved.namespace } : {}),
        ...(involved.uid ? { uid: involved.uid } : {}),
      },
      reason,
      message: plan.workload === "-"
        ? message
        : `${message} [workload ${plan.workload}, ASIL ${plan.asil}, FTTI ${plan.fttiMs} ms]`,
      type: warning ? "Warning" : "Normal",
      source: { component: this.#cluster.eventSource },
      reportingComponent: this.#cluster.eventSource,
      reportingInstance: this.#supervisorId,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    const object = `event/${namespace}/${reason}`;
    try {
      const { attempts } = await this.#call(
        () => this.#api.createEvent(namespace, body, signal),
        signal,
      );
      results.push({
        action: `event:${reason}`,
        object,
        outcome: "done",
        attempts,
        doneAtMs: this.#clock.nowMs() - startMs,
      });
    } catch (error) {
      this.#log.warn("event-failed", {
        reason,
        error: error instanceof Error ? error.message : String(error),
      });
      results.push({
        action: `event:${reason}`,
        object,
        outcome: "failed",
        attempts: error instanceof RetryError ? error.attempts : 1,
        doneAtMs: this.#clock.nowMs() - startMs,
        detail: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
