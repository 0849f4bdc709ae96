/**
 * MQTT topic names of the wire format (see `docs/design.md` for payloads, QoS and retained
 * flags). Pure string functions: the config validator checks topic uniqueness with them, the
 * topology computes every topic once with them, and nothing else builds a topic.
 *
 * | topic (prefix `sdv` by default)     | what                                   |
 * |-------------------------------------|----------------------------------------|
 * | `{p}/node/{node}/hb`                | node heartbeat (agent)                 |
 * | `{p}/node/{node}/status`            | node `online` / `offline` (LWT)        |
 * | `{p}/sensor/{sensor}/tick`          | one sensor frame                       |
 * | `{p}/app/{workload}/{node}/hb`      | one app instance's heartbeat           |
 * | `{p}/workload/{workload}/promotion` | retained promotion (fencing epoch)     |
 * | `{p}/supervisor/{id}/status`        | supervisor `online` / `offline` (LWT)  |
 * | `{p}/supervisor/{id}/barrier`       | ingest barrier, to itself              |
 * | `{p}/supervisor/{id}/state`         | retained status snapshot (gzip JSON)   |
 *
 * A node's heartbeat and status topics and a sensor's tick topic may be overridden in the config;
 * the overrides are applied by the topology, not here.
 *
 * @module
 */

/** Default topic of a node's heartbeat. */
export function nodeHeartbeatTopic(prefix: string, node: string): string {
  return `${prefix}/node/${node}/hb`;
}

/** Default topic of a node's retained `online`/`offline` status (the agent's Last Will). */
export function nodeStatusTopic(prefix: string, node: string): string {
  return `${prefix}/node/${node}/status`;
}

/** Default topic of a sensor's frame ticks. */
export function sensorTickTopic(prefix: string, sensor: string): string {
  return `${prefix}/sensor/${sensor}/tick`;
}

/** Topic of one app instance's heartbeat (`node` is where that instance runs). */
export function appHeartbeatTopic(prefix: string, workload: string, node: string): string {
  return `${prefix}/app/${workload}/${node}/hb`;
}

/** Topic of a workload's retained promotion (QoS 1). */
export function promotionTopic(prefix: string, workload: string): string {
  return `${prefix}/workload/${workload}/promotion`;
}

/** Topic of a supervisor's retained status. */
export function supervisorStatusTopic(prefix: string, id: string): string {
  return `${prefix}/supervisor/${id}/status`;
}

/** Topic a supervisor publishes to itself to prove that ingest has caught up. */
export function barrierTopic(prefix: string, id: string): string {
  return `${prefix}/supervisor/${id}/barrier`;
}

/**
 * Topic of a supervisor's retained status snapshot (`lib/wire/state_message.ts`: gzip-compressed
 * JSON, QoS 1), read by `sdv-failover status`.
 */
export function supervisorStateTopic(prefix: string, id: string): string {
  return `${prefix}/supervisor/${id}/state`;
}
