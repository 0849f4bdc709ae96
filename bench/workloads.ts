/**
 * The Deployments of one repetition and the reset between repetitions.
 *
 * Every repetition gets its own namespace with, per workload of the topology, the Deployments of
 * its primary (`<w>-original` in the shipped configs) and of its standby. The standby is pinned to the standby node (`nodeSelector`). The original is NOT pinned to the
 * victim: it *prefers* it (nodeAffinity preferred, weight 100) and *requires* one of
 * [victim, standby node]. The real scheduler therefore places it on the victim, and a replacement
 * has somewhere to go once the victim is fenced (ours: cordon + NoExecute taint) or marked
 * unreachable (K3s) — the same shape in every mode, so "fault → replacement Running" means the
 * same thing everywhere. No tolerations are set: the DefaultTolerationSeconds admission plugin adds
 * K3s's (300 s by default).
 *
 * @module
 */
import type { Topology, Workload } from "../lib/topology/topology.ts";
import type { ClusterObserver, PodRecord } from "./cluster_observer.ts";
import { type KubeApi, KubeError } from "./kube_api.ts";
import { shippedTopology } from "./runtime_config.ts";
import type { NodeSet } from "./scenarios.ts";

/** Our taint, removed between repetitions (what an operator does after repairing a node). */
export const OUR_TAINT = "sdv-failover.io/unreachable";

/** The Deployment of one side of a workload. */
export function deployment(
  name: string,
  side: "original" | "standby",
  nodes: NodeSet,
): Record<string, unknown> {
  const affinity = side === "original"
    ? {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{
            matchExpressions: [{
              key: "kubernetes.io/hostname",
              operator: "In",
              values: [nodes.victim, nodes.standby],
            }],
          }],
        },
        preferredDuringSchedulingIgnoredDuringExecution: [{
          weight: 100,
          preference: {
            matchExpressions: [{
              key: "kubernetes.io/hostname",
              operator: "In",
              values: [nodes.victim],
            }],
          },
        }],
      },
    }
    : undefined;
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          ...(side === "standby"
            ? { nodeSelector: { "kubernetes.io/hostname": nodes.standby } }
            : { affinity }),
          containers: [{ name: "app", image: "registry.local/vehicle/app:1.0" }],
        },
      },
    },
  };
}

/**
 * Creates `namespace` with both sides of every workload of `topology` (default: the shipped
 * configs') and waits (bounded) until each primary runs on the victim and each standby on the
 * standby node. Only the Deployment names come from the topology; the nodes are `nodes`.
 * @throws Error when the pods are not placed within `timeoutMs`.
 */
export async function setupWorkloads(
  api: KubeApi,
  observer: ClusterObserver,
  namespace: string,
  nodes: NodeSet,
  topology: Topology = shippedTopology(),
  timeoutMs = 30_000,
): Promise<void> {
  try {
    await api.post("/api/v1/namespaces", { metadata: { name: namespace } });
  } catch (e) {
    if (!(e instanceof KubeError && e.status === 409)) throw e;
  }
  const { workloads } = topology;
  await Promise.all(workloads.flatMap((w) => [
    api.post(
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      deployment(w.primary.deployment, "original", nodes),
    ),
    api.post(
      `/apis/apps/v1/namespaces/${namespace}/deployments`,
      deployment(w.standby.deployment, "standby", nodes),
    ),
  ]));
  const runsOn = (deploymentName: string, node: string) =>
    observer.podsOf(namespace, deploymentName).some((p) =>
      p.node === node && p.runningWallMs !== undefined && p.deletionWallMs === undefined
    );
  const placed = () =>
    workloads.every((w) =>
      runsOn(w.primary.deployment, nodes.victim) && runsOn(w.standby.deployment, nodes.standby)
    );
  if (!(await observer.until(placed, timeoutMs))) {
    const pods = observer.podsOf(namespace).map((p) =>
      `${p.name}@${p.node ?? "unbound"}${p.runningWallMs ? " Running" : ""}`
    );
    throw new Error(`pods of ${namespace} not placed within ${timeoutMs} ms: ${pods.join(", ")}`);
  }
}

/** Deletes the repetition's Deployments (their pods go with them); the empty namespace stays. */
export async function cleanupWorkloads(api: KubeApi, namespace: string): Promise<void> {
  await api.request(
    "DELETE",
    `/apis/apps/v1/namespaces/${namespace}/deployments?propagationPolicy=Background`,
  ).catch((e) => console.error(`[bench] cleanup ${namespace}: ${(e as Error).message}`));
}

/** Uncordons `node` and removes our taint, if present. */
export async function resetNode(api: KubeApi, node: string): Promise<void> {
  const n = await api.get<{
    spec?: { unschedulable?: boolean; taints?: { key: string; effect: string }[] };
  }>(`/api/v1/nodes/${node}`);
  const taints = n.spec?.taints ?? [];
  const kept = taints.filter((t) => t.key !== OUR_TAINT);
  if (!n.spec?.unschedulable && kept.length === taints.length) return;
  // A merge patch replaces the taint list as a whole: the controllers' taints are kept.
  await api.patch(`/api/v1/nodes/${node}`, { spec: { unschedulable: null, taints: kept } });
}

/**
 * Waits until `node` is Ready, schedulable and carries no taint at all (the node-lifecycle
 * controller removes its `unreachable`/`not-ready` taints once the restarted kwok renews).
 */
export function nodeHealthy(
  observer: ClusterObserver,
  node: string,
  timeoutMs: number,
): Promise<boolean> {
  return observer.until(() => {
    const s = observer.nodeNow(node);
    return s !== undefined && s.ready === "True" && !s.unschedulable && s.taints.length === 0;
  }, timeoutMs);
}

/**
 * The replacement of the workload's primary Deployment after a fault: a pod first seen after
 * `faultWallMs` that is Running (and not being deleted) on a node other than `failedNode` (when
 * given).
 */
export function replacementPod(
  observer: ClusterObserver,
  namespace: string,
  workload: Workload,
  faultWallMs: number,
  failedNode?: string,
): PodRecord | undefined {
  return observer.podsOf(namespace, workload.primary.deployment).find((p) =>
    p.firstSeenWallMs > faultWallMs && p.runningWallMs !== undefined &&
    p.deletionWallMs === undefined && (failedNode === undefined || p.node !== failedNode)
  );
}

/** A pod of the workload's primary Deployment first seen after the fault, bound to `failedNode`. */
export function strandedPod(
  observer: ClusterObserver,
  namespace: string,
  workload: Workload,
  faultWallMs: number,
  failedNode: string,
): PodRecord | undefined {
  return observer.podsOf(namespace, workload.primary.deployment).find((p) =>
    p.firstSeenWallMs > faultWallMs && p.node === failedNode && p.deletionWallMs === undefined
  );
}
