import assert from "node:assert/strict";
import type { NodeAgentStats } from "../agent/agent.ts";
import type { AgentSensorState } from "../http/readiness.ts";
import { AgentMetrics } from "./agent_metrics.ts";
import { samples } from "../../tests/harness/exposition.ts";

function fakeAgent() {
  const agent = {
    stats: {
      heartbeatsSent: 0,
      degradedPeriods: 0,
      deferredSensorChecks: 0,
      offlinePeriods: 0,
      missedSlots: 0,
      lastHeartbeatAtMs: undefined,
      seq: 0,
      malformed: 0,
      fenced: 0,
      refusedPromotions: 0,
      status: { state: "online" },
    } as { -readonly [K in keyof NodeAgentStats]: NodeAgentStats[K] },
    sensors: [{ sensor: "cam", state: "unknown" as AgentSensorState }],
    stopping: false,
    isConnected: false,
  };
  const metrics = new AgentMetrics({
    get stats() {
      return agent.stats;
    },
    sensorStates: () => agent.sensors,
    get stopping() {
      return agent.stopping;
    },
    connected: () => agent.isConnected,
  });
  return { agent, metrics, scrape: async () => samples(await metrics.metrics()) };
}

Deno.test("agent metrics: counters from the agent's stats, one-hot sensor state and status, connection, readiness", async () => {
  const { agent, metrics, scrape } = fakeAgent();
  let s = await scrape();
  assert.equal(s.get("sdv_failover_agent_heartbeats_sent_total"), 0);
  assert.equal(s.get("sdv_failover_agent_broker_connected"), 0);
  assert.equal(s.get("sdv_failover_agent_ready"), 0);
  assert.deepEqual(metrics.readiness().reasons, ["not connected to the broker"]);
  assert.equal(s.get('sdv_failover_agent_sensor_state{sensor="cam",state="unknown"}'), 1);
  assert.equal(s.get('sdv_failover_agent_sensor_state{sensor="cam",state="fresh"}'), 0);
  assert.equal(s.get('sdv_failover_agent_status{status="online"}'), 1);

  agent.isConnected = true;
  assert.deepEqual(metrics.readiness().reasons, ["sensor state not known yet: cam"]);
  agent.sensors = [{ sensor: "cam", state: "stale" }];
  agent.stats.status = { state: "degraded", stale: ["cam"] };
  Object.assign(agent.stats, {
    heartbeatsSent: 120,
    degradedPeriods: 7,
    offlinePeriods: 2,
    missedSlots: 1,
    malformed: 3,
    fenced: 1,
    refusedPromotions: 4,
  });
  s = await scrape();
  assert.equal(s.get("sdv_failover_agent_ready"), 1, "a stale sensor, correctly reported");
  assert.equal(s.get("sdv_failover_agent_broker_connected"), 1);
  assert.equal(s.get("sdv_failover_agent_heartbeats_sent_total"), 120);
  assert.equal(s.get("sdv_failover_agent_degraded_periods_total"), 7);
  assert.equal(s.get("sdv_failover_agent_offline_periods_total"), 2);
  assert.equal(s.get("sdv_failover_agent_missed_slots_total"), 1);
  assert.equal(s.get("sdv_failover_agent_malformed_total"), 3);
  assert.equal(s.get("sdv_failover_agent_stand_downs_total"), 1);
  assert.equal(s.get("sdv_failover_agent_refused_promotions_total"), 4);
  assert.equal(s.get('sdv_failover_agent_sensor_state{sensor="cam",state="stale"}'), 1);
  assert.equal(s.get('sdv_failover_agent_sensor_state{sensor="cam",state="unknown"}'), 0);
  assert.equal(s.get('sdv_failover_agent_status{status="degraded"}'), 1);
  assert.equal(s.get('sdv_failover_agent_status{status="online"}'), 0);
  assert.ok(s.get("process_resident_memory_bytes")! > 0);
  metrics.observeEventLoopLagMs(2);
  s = await scrape();
  assert.equal(s.get("sdv_failover_event_loop_lag_seconds_count"), 1);
  assert.equal(s.get('sdv_failover_event_loop_lag_seconds_bucket{le="0.0025"}'), 1);
  assert.equal(s.get('sdv_failover_event_loop_lag_seconds_bucket{le="0.001"}'), 0);
  agent.stopping = true;
  assert.deepEqual(metrics.readiness().reasons, ["stopping"]);
});
