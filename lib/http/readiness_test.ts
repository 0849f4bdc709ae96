import assert from "node:assert/strict";
import { agentReadiness, supervisorReadiness } from "./readiness.ts";

Deno.test("supervisorReadiness: ready only when running, armed, ingest fine and cluster synced", () => {
  const base = {
    state: "running",
    armed: true,
    ingestFaulted: false,
    clusterSynced: true,
  } as const;
  assert.deepEqual(supervisorReadiness(base), { ready: true, reasons: [] });
  assert.deepEqual(
    supervisorReadiness({
      state: "starting",
      armed: false,
      ingestFaulted: false,
      clusterSynced: false,
    })
      .reasons,
    [
      "watchdog not armed: no broker connection yet",
      "cluster cache not synced: persisted failover state not adopted yet",
    ],
  );
  assert.deepEqual(
    supervisorReadiness({ ...base, state: "starting", clusterSynced: false }).reasons,
    ["cluster cache not synced: persisted failover state not adopted yet"],
  );
  assert.deepEqual(supervisorReadiness({ ...base, ingestFaulted: true }), {
    ready: false,
    reasons: ["ingest fault: broker lost or stalled, supervision suspended"],
  });
  assert.deepEqual(supervisorReadiness({ ...base, state: "created", armed: true }).reasons, [
    "state created",
  ]);
  for (const state of ["stopping", "stopped"] as const) {
    assert.deepEqual(supervisorReadiness({ ...base, state }).reasons, [
      `shutting down (${state})`,
    ]);
  }
});

Deno.test("agentReadiness: connected and every required sensor known; stale is no reason", () => {
  const sensors = [{ sensor: "cam", state: "fresh" }, { sensor: "lidar", state: "stale" }] as const;
  assert.deepEqual(agentReadiness({ connected: true, sensors, stopping: false }), {
    ready: true,
    reasons: [],
  });
  assert.deepEqual(agentReadiness({ connected: true, sensors: [], stopping: false }).ready, true);
  assert.deepEqual(
    agentReadiness({
      connected: true,
      sensors: [...sensors, { sensor: "radar", state: "unknown" }],
      stopping: false,
    }).reasons,
    ["sensor state not known yet: radar"],
  );
  assert.deepEqual(agentReadiness({ connected: false, sensors, stopping: false }).reasons, [
    "not connected to the broker",
  ]);
  assert.deepEqual(agentReadiness({ connected: true, sensors, stopping: true }).reasons, [
    "stopping",
  ]);
});
