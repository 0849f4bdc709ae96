/**
 * Test workloads for the real control plane: one-replica Deployments pinned to a node.
 *
 * @module
 */
import type { V1Deployment } from "@kubernetes/client-node";

/**
 * A one-replica Deployment `name` (label and selector `app: name`) pinned to `node` with a
 * `kubernetes.io/hostname` nodeSelector; kwok runs its pod.
 */
export function pinnedDeployment(name: string, node: string): V1Deployment {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          nodeSelector: { "kubernetes.io/hostname": node },
          containers: [{ name: "app", image: "registry.local/vehicle/app:1.0" }],
        },
      },
    },
  };
}
