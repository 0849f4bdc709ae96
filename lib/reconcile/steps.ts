/**
 * The typed, ordered steps that converge the cluster to a desired state: the ONE definition both
 * the Kubernetes reconciler (`reconciler.ts`) and the dry run (`dry_run.ts`) interpret.
 *
 * Planning is pure: {@linkcode planWorkload} and {@linkcode planNode} compare a desired state with
 * what a {@linkcode ClusterView} observes and return only the steps still needed (an empty list
 * means converged), so applying a plan and planning again yields `[]` — the same result whether a
 * change is seen once or five times.
 *
 * - `fenceNode`: one strategic-merge patch of only what is missing on a Node: `spec.unschedulable`
 *   (only when not already set; then `sdv-failover.io/cordoned-by` records that WE cordoned it, so
 *   a later un-fence never lifts an operator's cordon), our NoExecute taint, and
 *   `sdv-failover.io/fence-reason`.
 * - `unfenceNode`: one strategic-merge patch that removes only what WE added: our NoExecute taint
 *   (the atomic taint list rewritten without it, with a resourceVersion precondition; every other
 *   taint kept), the cordon only when `sdv-failover.io/cordoned-by` records that we set it (an
 *   operator's cordon stays), and our annotations (`cordoned-by`, `fence-reason`,
 *   `unfence-requested`).
 * - `persistEpoch`: a merge patch of a Deployment's metadata only (never the pod template): epoch,
 *   active node, role, failed node and reason annotations, plus the role label when the workload
 *   allows `markDeployments`. The epoch is always persisted on both Deployments once it is > 0:
 *   it is the fencing token that survives a restart. An epoch is never lowered.
 * - `awaitFence`: a barrier (no API call): the following deletes wait until the failed node is
 *   fenced, else the ReplicaSet's replacement is scheduled straight back onto that node.
 * - `deletePod`: one pod of the failed placement's Deployment on the failed node, grace 0, with a
 *   uid precondition.
 *
 * @module
 */
import { otherSide } from "../topology/topology.ts";
import type { NodeTarget, Placement, Workload } from "../topology/topology.ts";
import type { NodeDesired, WorkloadDesired } from "../policy/desired.ts";
import { ANNOTATIONS, parseEpoch } from "./annotations.ts";
import type { ClusterView, ObservedNode, ObservedTaint } from "./cluster_view.ts";

/** Fence a node: add only the missing parts (`cordon`/`taint` true = to be set by this step). */
export interface FenceNodeStep {
  kind: "fenceNode";
  node: NodeTarget;
  /** Set `spec.unschedulable` (it is not set yet). */
  cordon: boolean;
  /** Add our NoExecute taint (it is not present yet). */
  taint: boolean;
  /** Why, written to `sdv-failover.io/fence-reason`. */
  reason: string;
}

/**
 * Lift our fence from a node: remove only what we added and is still there (`untaint`/`uncordon`
 * true = to be removed by this step).
 */
export interface UnfenceNodeStep {
  kind: "unfenceNode";
  node: NodeTarget;
  /** Remove our NoExecute taint (it is present). */
  untaint: boolean;
  /** Clear `spec.unschedulable` (set, and `cordoned-by` says we set it). */
  uncordon: boolean;
  /** Our annotations present on the Node, removed by this step. */
  annotations: string[];
}

/** Persist a workload's epoch and role on one of its Deployments (metadata only). */
export interface PersistEpochStep {
  kind: "persistEpoch";
  workload: Workload;
  placement: Placement;
  role: "active" | "failed";
  epoch: number;
  activeNode: NodeTarget;
  failedNode?: NodeTarget;
  reason: string;
  /** Wall time of the failover decision (ISO 8601), persisted for a restarted supervisor. */
  failedAt?: string;
  /** Also write the `sdv-failover.io/role` label (the workload allows `markDeployments`). */
  roleLabel: boolean;
}

/** Barrier: the following `deletePod` steps run only once `node` is fenced. No API call. */
export interface AwaitFenceStep {
  kind: "awaitFence";
  workload: Workload;
  node: NodeTarget;
}

/** Delete one pod of the failed placement on its node, grace 0, only if its uid still matches. */
export interface DeletePodStep {
  kind: "deletePod";
  workload: Workload;
  placement: Placement;
  pod: string;
  uid: string;
}

/** Any step. */
export type Step =
  | FenceNodeStep
  | UnfenceNodeStep
  | PersistEpochStep
  | AwaitFenceStep
  | DeletePodStep;

/** What planning needs besides the desired state and the view. */
export interface PlanContext {
  /** Key of our NoExecute taint (`cluster.taintKey`). */
  taintKey: string;
  /** Supervisor id: our taint's value and the `cordoned-by` annotation. */
  supervisorId: string;
  /**
   * True when `node` counts as fenced for pod deletion. Default {@linkcode observedFenced}: the
   * view shows our taint or a cordon, or the Node does not exist.
   */
  nodeFenced?: (node: NodeTarget) => boolean;
}

/** A step as one log line / dry-run row. */
export interface StepDescription {
  /** `markActive`, `markFailed`, `deletePods`, `fenceNode`, `unfenceNode`, `awaitFence`. */
  action: string;
  /** `deployment/<ns>/<name>`, `pod/<ns>/<name>` or `node/<name>`. */
  object: string;
  detail: string;
}

/** True when `node` carries our NoExecute taint. */
export function hasOurTaint(node: ObservedNode, taintKey: string): boolean {
  return node.taints.some((t) => t.key === taintKey && t.effect === "NoExecute");
}

/** Default fence check: the Node is absent, or carries our taint, or is unschedulable. */
export function observedFenced(view: ClusterView, node: NodeTarget, taintKey: string): boolean {
  const observed = view.node(node.name);
  return !observed || observed.unschedulable || hasOurTaint(observed, taintKey);
}

/** Highest epoch persisted on a placement's Deployment (0 when absent or unset). */
export function observedEpoch(view: ClusterView, placement: Placement): number {
  return parseEpoch(
    view.deployment(placement.workload.namespace, placement.deployment)?.annotations[
      ANNOTATIONS.epoch
    ],
  );
}

/**
 * The Deployments of a workload whose persisted epoch is higher than `desired.epoch`: the
 * desired state is stale (another supervisor instance, or a restart that did not adopt it).
 * {@linkcode planWorkload} plans nothing for such a workload.
 */
export function higherObservedEpochs(
  desired: WorkloadDesired,
  view: ClusterView,
): { placement: Placement; epoch: number }[] {
  const w = desired.workload;
  return [w.primary, w.standby]
    .map((placement) => ({ placement, epoch: observedEpoch(view, placement) }))
    .filter((e) => e.epoch > desired.epoch);
}

/** The annotations (and label) a {@linkcode PersistEpochStep} writes. */
export function persistEpochFields(
  step: Pick<
    PersistEpochStep,
    "role" | "epoch" | "activeNode" | "failedNode" | "reason" | "roleLabel" | "failedAt"
  >,
): { annotations: Record<string, string>; labels: Record<string, string> } {
  const annotations: Record<string, string> = {
    [ANNOTATIONS.epoch]: String(step.epoch),
    [ANNOTATIONS.activeNode]: step.activeNode.name,
    [ANNOTATIONS.role]: step.role,
    [ANNOTATIONS.reason]: step.reason,
  };
  if (step.failedNode) annotations[ANNOTATIONS.failedNode] = step.failedNode.name;
  if (step.failedAt) annotations[ANNOTATIONS.failedAt] = step.failedAt;
  return { annotations, labels: step.roleLabel ? { [ANNOTATIONS.role]: step.role } : {} };
}

/** The merge-patch body of a {@linkcode PersistEpochStep}: Deployment metadata only. */
export function persistEpochPatch(step: PersistEpochStep): { metadata: object } {
  const { annotations, labels } = persistEpochFields(step);
  return {
    metadata: Object.keys(labels).length ? { annotations, labels } : { annotations },
  };
}

/**
 * The strategic-merge-patch body of a {@linkcode FenceNodeStep}, built against the Node as
 * observed now.
 *
 * `spec.taints` has no patch strategy in core/v1 (the list is atomic: a patch replaces it), so
 * the body carries every observed taint plus ours, and `metadata.resourceVersion` as an
 * optimistic-lock precondition: a concurrent taint change makes the patch fail with 409, and the
 * next attempt rebuilds the list from the fresher cache. Without a taint change no precondition
 * is sent.
 */
export function fenceNodePatch(
  step: FenceNodeStep,
  observed: ObservedNode | undefined,
  ctx: Pick<PlanContext, "taintKey" | "supervisorId">,
): { metadata: object; spec: object } {
  const annotations: Record<string, string> = { [ANNOTATIONS.fenceReason]: step.reason };
  if (step.cordon) annotations[ANNOTATIONS.cordonedBy] = ctx.supervisorId;
  const metadata: Record<string, unknown> = { annotations };
  const spec: Record<string, unknown> = {};
  if (step.cordon) spec.unschedulable = true;
  if (step.taint) {
    const others: ObservedTaint[] = (observed?.taints ?? []).filter((t) =>
      !(t.key === ctx.taintKey && t.effect === "NoExecute")
    );
    spec.taints = [...others, { key: ctx.taintKey, value: ctx.supervisorId, effect: "NoExecute" }];
    if (observed?.resourceVersion) metadata.resourceVersion = observed.resourceVersion;
  }
  return { metadata, spec };
}

/** The Node annotations an {@linkcode UnfenceNodeStep} removes (when present). */
export const OUR_NODE_ANNOTATIONS: readonly string[] = [
  ANNOTATIONS.cordonedBy,
  ANNOTATIONS.fenceReason,
  ANNOTATIONS.unfenceRequested,
];

/**
 * What lifting our fence from `observed` would still remove: our NoExecute taint, the cordon
 * (only when `cordoned-by` records it is ours), our annotations. Undefined when nothing is left.
 */
export function unfenceNeeded(
  observed: ObservedNode,
  taintKey: string,
): Pick<UnfenceNodeStep, "untaint" | "uncordon" | "annotations"> | undefined {
  const untaint = hasOurTaint(observed, taintKey);
  const uncordon = observed.unschedulable && ANNOTATIONS.cordonedBy in observed.annotations;
  const annotations = OUR_NODE_ANNOTATIONS.filter((k) => k in observed.annotations);
  if (!untaint && !uncordon && annotations.length === 0) return undefined;
  return { untaint, uncordon, annotations };
}

/**
 * The strategic-merge-patch body of an {@linkcode UnfenceNodeStep}, built against the Node as
 * observed now: our annotations set to `null` (removed), `unfenced-at` set to `unfencedAt` (ISO
 * 8601, when given and a taint or cordon is lifted), `spec.unschedulable: false` only when
 * the cordon is ours, and — when our taint goes — the full list of the other taints (atomic list)
 * with `metadata.resourceVersion` as precondition, so a concurrent taint change fails with 409
 * and is retried against the fresher cache instead of being overwritten.
 */
export function unfenceNodePatch(
  step: UnfenceNodeStep,
  observed: ObservedNode | undefined,
  ctx: Pick<PlanContext, "taintKey">,
  unfencedAt?: string,
): { metadata: object; spec: object } {
  const annotations: Record<string, string | null> = {};
  for (const k of step.annotations) annotations[k] = null;
  if (unfencedAt !== undefined && (step.untaint || step.uncordon)) {
    annotations[ANNOTATIONS.unfencedAt] = unfencedAt;
  }
  const metadata: Record<string, unknown> = { annotations };
  const spec: Record<string, unknown> = {};
  if (step.uncordon) spec.unschedulable = false;
  if (step.untaint) {
    spec.taints = (observed?.taints ?? []).filter((t) =>
      !(t.key === ctx.taintKey && t.effect === "NoExecute")
    );
    if (observed?.resourceVersion) metadata.resourceVersion = observed.resourceVersion;
  }
  return { metadata, spec };
}

/**
 * True when a pod created at `createdAt` is the failed instance of a failover decided at
 * `failedAt` rather than a replacement the ReplicaSet created afterwards: without this, a
 * failed instance on a node that is not fenced (sensor or app fault) would be replaced on the same
 * node and deleted again, forever. Kubernetes timestamps have one-second resolution, so a pod
 * counts as older only when created at least one second before the decision (a failed instance
 * has been running far longer). Unknown decision time: nothing is removed (never guess on a
 * destructive step). Unknown creation time (models): it is the failed instance.
 */
export function createdBeforeFailover(
  createdAt: string | undefined,
  failedAt: string | undefined,
): boolean {
  if (failedAt === undefined) return false;
  if (createdAt === undefined) return true;
  const created = Date.parse(createdAt);
  const failed = Date.parse(failedAt);
  if (Number.isNaN(created) || Number.isNaN(failed)) return false;
  return created + 1000 <= failed;
}

/**
 * The steps still needed to converge `view` to a workload's desired state, in order:
 * `persistEpoch` for the active then the failed Deployment (each only when an annotation or the
 * role label differs), then — when `desired.removeFailed` — `deletePod` for each pod of the
 * failed placement's Deployment (its matchLabels selector) on the failed node that is not
 * already deleting, preceded by `awaitFence` when `desired.nodeFault` and the node is not fenced
 * yet.
 *
 * Plans nothing at epoch 0 (nothing failed over) and nothing when a Deployment carries a higher
 * epoch than desired (see {@linkcode higherObservedEpochs}): an epoch is never lowered and a
 * stale decision deletes nothing. A Deployment missing from the view still gets its
 * `persistEpoch` (the write reports the 404); its pods cannot be matched, so none are deleted.
 */
export function planWorkload(
  desired: WorkloadDesired,
  view: ClusterView,
  ctx: PlanContext,
): Step[] {
  if (desired.epoch <= 0) return [];
  if (higherObservedEpochs(desired, view).length > 0) return [];
  const w = desired.workload;
  const active = w[desired.active];
  const failed = w[otherSide(desired.active)];
  const steps: Step[] = [];
  const roleLabel = w.actions.has("markDeployments");
  for (const [placement, role] of [[active, "active"], [failed, "failed"]] as const) {
    const step: PersistEpochStep = {
      kind: "persistEpoch",
      workload: w,
      placement,
      role,
      epoch: desired.epoch,
      activeNode: active.node,
      failedNode: failed.node,
      reason: desired.reason,
      failedAt: desired.failedAt,
      roleLabel,
    };
    const observed = view.deployment(w.namespace, placement.deployment);
    const want = persistEpochFields(step);
    const differs = !observed ||
      Object.entries(want.annotations).some(([k, v]) => observed.annotations[k] !== v) ||
      Object.entries(want.labels).some(([k, v]) => observed.labels[k] !== v);
    if (differs) steps.push(step);
  }
  if (desired.removeFailed) {
    const deployment = view.deployment(w.namespace, failed.deployment);
    const pods = deployment
      ? view.pods(w.namespace, { ...deployment.selector }, failed.node.name).filter((p) =>
        !p.deleting && createdBeforeFailover(p.createdAt, desired.failedAt)
      )
      : [];
    if (pods.length > 0) {
      const fenced = ctx.nodeFenced ??
        ((node: NodeTarget) => observedFenced(view, node, ctx.taintKey));
      if (desired.nodeFault && !fenced(failed.node)) {
        steps.push({ kind: "awaitFence", workload: w, node: failed.node });
      }
      for (const p of pods) {
        steps.push({ kind: "deletePod", workload: w, placement: failed, pod: p.name, uid: p.uid });
      }
    }
  }
  return steps;
}

/**
 * The steps still needed to converge `view` to a node's desired state: at most one `fenceNode`
 * with only the missing parts (a cordon already set — ours or an operator's — and our taint
 * already present are not re-patched). Plans nothing for a Node missing from the view.
 *
 * `fenced: false` plans at most one `unfenceNode` removing only what we added and is still there
 * (see {@linkcode unfenceNeeded}): our taint, our cordon (never an operator's), our annotations.
 */
export function planNode(desired: NodeDesired, view: ClusterView, ctx: PlanContext): Step[] {
  const observed = view.node(desired.node.name);
  if (!observed) return [];
  if (!desired.fenced) {
    const need = unfenceNeeded(observed, ctx.taintKey);
    return need ? [{ kind: "unfenceNode", node: desired.node, ...need }] : [];
  }
  const cordon = desired.cordon && !observed.unschedulable;
  const taint = desired.taint && !hasOurTaint(observed, ctx.taintKey);
  if (!cordon && !taint) return [];
  return [{ kind: "fenceNode", node: desired.node, cordon, taint, reason: desired.reason ?? "" }];
}

/** The kubectl-style object reference of a step. */
function stepObject(step: Step): string {
  switch (step.kind) {
    case "fenceNode":
    case "unfenceNode":
    case "awaitFence":
      return `node/${step.node.name}`;
    case "persistEpoch":
      return `deployment/${step.workload.namespace}/${step.placement.deployment}`;
    case "deletePod":
      return `pod/${step.workload.namespace}/${step.pod}`;
  }
}

/** Describes a step for logs and the dry run. */
export function describeStep(step: Step): StepDescription {
  const object = stepObject(step);
  switch (step.kind) {
    case "fenceNode":
      return {
        action: "fenceNode",
        object,
        detail: [
          step.cordon && "unschedulable",
          step.taint && "taint NoExecute",
        ].filter(Boolean).join(" + ") + (step.reason ? ` (${step.reason})` : ""),
      };
    case "unfenceNode":
      return {
        action: "unfenceNode",
        object,
        detail: [
          step.untaint && "remove taint NoExecute",
          step.uncordon && "uncordon",
          step.annotations.length > 0 && `remove ${step.annotations.join(", ")}`,
        ].filter(Boolean).join(" + "),
      };
    case "persistEpoch":
      return {
        action: step.role === "active" ? "markActive" : "markFailed",
        object,
        detail: `role=${step.role} epoch=${step.epoch} active-node=${step.activeNode.name}` +
          (step.failedNode ? ` failed-node=${step.failedNode.name}` : "") +
          (step.roleLabel ? "" : " (annotations only)"),
      };
    case "awaitFence":
      return { action: "awaitFence", object, detail: "pods deleted only once the node is fenced" };
    case "deletePod":
      return {
        action: "deletePods",
        object,
        detail: `grace 0 uid=${step.uid} on ${step.placement.node.name}`,
      };
  }
}

/** The core/v1 Event a step that changed something records. */
export interface StepEvent {
  reason: string;
  type: "Normal" | "Warning";
  message: string;
  involved: { kind: "Deployment" | "Node"; name: string; namespace?: string };
  /** Namespace the Event is created in (`default` for Nodes). */
  namespace: string;
}

/** Workloads that allow `events` and have a placement on `node`. */
function eventWorkloadsOn(node: NodeTarget): Workload[] {
  const out: Workload[] = [];
  for (const p of node.placements) {
    if (p.workload.actions.has("events") && !out.includes(p.workload)) out.push(p.workload);
  }
  return out;
}

const workloadTag = (w: Workload) => `workload ${w.name}, ASIL ${w.asil}, FTTI ${w.fttiMs} ms`;

/**
 * The Event for a step that changed something, or undefined when none is due: the workload does
 * not allow `events` (for a node: no workload placed on it does), the step is a barrier, or an
 * un-fence that only removes our annotations.
 */
export function stepEvent(step: Step): StepEvent | undefined {
  switch (step.kind) {
    case "awaitFence":
      return undefined;
    case "fenceNode": {
      const workloads = eventWorkloadsOn(step.node);
      if (workloads.length === 0) return undefined;
      const reason = step.cordon && step.taint
        ? "FailoverCordonedTainted"
        : step.cordon
        ? "FailoverCordoned"
        : "FailoverTainted";
      return {
        reason,
        type: "Warning",
        message: `fenced (${describeStep(step).detail}) [${workloads.map(workloadTag).join("; ")}]`,
        involved: { kind: "Node", name: step.node.name },
        namespace: "default",
      };
    }
    case "unfenceNode": {
      if (!step.untaint && !step.uncordon) return undefined; // only our annotations: no news
      const workloads = eventWorkloadsOn(step.node);
      if (workloads.length === 0) return undefined;
      return {
        reason: "FailoverUnfenced",
        type: "Normal",
        message: `unfenced (${describeStep(step).detail}) [${
          workloads.map(workloadTag).join("; ")
        }]`,
        involved: { kind: "Node", name: step.node.name },
        namespace: "default",
      };
    }
    case "persistEpoch": {
      const w = step.workload;
      if (!w.actions.has("events")) return undefined;
      const failed = step.failedNode ? ` on ${step.failedNode.name}` : "";
      return step.role === "active"
        ? {
          reason: "FailoverPromoted",
          type: "Normal",
          message:
            `promoted to active on ${step.activeNode.name} (epoch ${step.epoch}, ${step.reason}${failed}) [${
              workloadTag(w)
            }]`,
          involved: { kind: "Deployment", name: step.placement.deployment, namespace: w.namespace },
          namespace: w.namespace,
        }
        : {
          reason: "FailoverFenced",
          type: "Warning",
          message: `lost the active role at epoch ${step.epoch} (${step.reason}${failed}) [${
            workloadTag(w)
          }]`,
          involved: { kind: "Deployment", name: step.placement.deployment, namespace: w.namespace },
          namespace: w.namespace,
        };
    }
    case "deletePod": {
      const w = step.workload;
      if (!w.actions.has("events")) return undefined;
      return {
        reason: "FailoverPodsDeleted",
        type: "Warning",
        message: `deleted pod ${step.pod} on ${step.placement.node.name} with grace 0 [${
          workloadTag(w)
        }]`,
        involved: { kind: "Deployment", name: step.placement.deployment, namespace: w.namespace },
        namespace: w.namespace,
      };
    }
  }
}
