/**
 * Who may say what on the vehicle's bus: one MQTT identity per role instance, each with the exact
 * topics it may publish and read, derived from the {@linkcode Topology} (so from the same validated
 * config every role runs with). The ACL file (`acl_file.ts`) and the development PKI
 * (`dev_pki.ts`) are rendered from this list; `docs/threat_model.md` explains the choice.
 *
 * | identity (certificate CN = MQTT user name = client id) | publishes                                   | reads                                                       |
 * | ------------------------------------------------------ | ------------------------------------------- | ----------------------------------------------------------- |
 * | `supervisor:<supervisor.id>`                           | every promotion, its own status, barrier and state | every heartbeat, tick and node status, every promotion, its barrier |
 * | `node:<node>` (the agent and the node's sensor drivers) | its heartbeat and status, its sensors' ticks | its required sensors' ticks, the promotions of workloads placed on it |
 * | `app:<workload>:<node>` (one app instance)             | its own app heartbeat (when configured)     | its workload's promotion                                    |
 * | `operator` (`sdv-failover status`)                     | nothing                                     | every supervisor's status and state                          |
 *
 * The separator `:` cannot occur in a node, workload or supervisor name (DNS-1123 names, see
 * `lib/config/schema.ts`), so an identity names exactly one role instance.
 *
 * @module
 */
import type { NodeTarget, Placement, Topology } from "../topology/topology.ts";

/** What an identity stands for. */
export type IdentityKind = "supervisor" | "node" | "app" | "operator";

/** One client identity on the bus and its topic rights (exact topics, no wildcards). */
export interface BusIdentity {
  /** `supervisor:<id>`, `node:<node>`, `app:<workload>:<node>` or `operator`. */
  readonly name: string;
  readonly kind: IdentityKind;
  /** Topics it may publish (its Last Will included), sorted. */
  readonly publishes: readonly string[];
  /** Topics it may read (subscribe and receive, retained messages included), sorted. */
  readonly reads: readonly string[];
}

/** The identity of a supervisor instance (`supervisor.id` in the config). */
export function supervisorIdentity(id: string): string {
  return `supervisor:${id}`;
}

/** The identity of a node's agent and of the sensor drivers on that node. */
export function nodeIdentity(node: string): string {
  return `node:${node}`;
}

/** The identity of one app instance: `workload`'s instance on `node`. */
export function appIdentity(workload: string, node: string): string {
  return `app:${workload}:${node}`;
}

/**
 * The identity of an operator's reader (`sdv-failover status`): it may read every supervisor's
 * retained status and state, and publish nothing. One identity for all operators: mosquitto uses
 * it as the client id too, so two `status` commands with the same certificate at once take each
 * other's session over (the later one stays).
 */
export const OPERATOR_IDENTITY = "operator";

/**
 * A file name for an identity's certificate and key: the identity with `:` replaced by `_`
 * (`node:worker-node2` → `node_worker-node2`). `_` occurs in no node, workload or supervisor name,
 * so the mapping is one-to-one.
 */
export function identityFileStem(identity: string): string {
  return identity.replaceAll(":", "_");
}

/** Options of {@linkcode busIdentities}. */
export interface BusIdentitiesOptions {
  /** The vehicle's topology (`buildTopology` of the validated config). */
  topology: Topology;
}

/**
 * Every identity of the vehicle with its rights: the supervisor (both instances of a pair, each
 * with its own status, barrier and state), one per node, one per workload
 * placement (both sides; an instance reads its promotion even without an app heartbeat), and the
 * operator's reader ({@linkcode OPERATOR_IDENTITY}).
 * @returns supervisor first, then nodes in config order, then app instances (workload order,
 *   primary before standby), then the operator.
 */
export function busIdentities(options: BusIdentitiesOptions): BusIdentity[] {
  const { topology } = options;
  const promotions = topology.workloads.map((w) => w.promotionTopic);
  const identities: BusIdentity[] = topology.supervisorIds.map((id) => {
    const own = topology.supervisorTopics(id);
    return {
      name: supervisorIdentity(id),
      kind: "supervisor",
      publishes: sorted([own.status, own.barrier, own.state, ...promotions]),
      reads: sorted([
        ...topology.targets.map((t) => t.topic),
        ...topology.nodes.map((n) => n.statusTopic),
        ...promotions,
        own.barrier,
      ]),
    };
  });
  for (const node of topology.nodes) identities.push(nodeRights(node));
  for (const workload of topology.workloads) {
    for (const placement of [workload.primary, workload.standby]) {
      identities.push(appRights(placement));
    }
  }
  identities.push({
    name: OPERATOR_IDENTITY,
    kind: "operator",
    publishes: [],
    reads: sorted(topology.supervisorIds.flatMap((id) => {
      const own = topology.supervisorTopics(id);
      return [own.status, own.state];
    })),
  });
  return identities;
}

function nodeRights(node: NodeTarget): BusIdentity {
  return {
    name: nodeIdentity(node.name),
    kind: "node",
    publishes: sorted([node.topic, node.statusTopic, ...node.sensors.map((s) => s.topic)]),
    reads: sorted([
      ...node.requiredSensors.map((s) => s.topic),
      ...node.placements.map((p) => p.workload.promotionTopic),
    ]),
  };
}

function appRights(placement: Placement): BusIdentity {
  return {
    name: appIdentity(placement.workload.name, placement.node.name),
    kind: "app",
    publishes: placement.app ? [placement.app.topic] : [],
    reads: [placement.workload.promotionTopic],
  };
}

function sorted(topics: readonly string[]): string[] {
  return [...new Set(topics)].sort();
}
