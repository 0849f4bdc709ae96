import assert from "node:assert/strict";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { FakeReconciler } from "../../tests/fakes/fake_reconciler.ts";
import { ConfigSchema } from "../config/schema.ts";
import type { NodeDesired } from "../policy/desired.ts";
import type { ReconcileReport } from "../reconcile/reconciler.ts";
import { Supervisor } from "../runtime/supervisor.ts";
import { buildTopology } from "../topology/topology.ts";
import { snakeCase, SupervisorMetrics } from "./supervisor_metrics.ts";
import { samples } from "../../tests/harness/exposition.ts";

const config = ConfigSchema.parse({
  supervisor: { id: "sup", bootWindowMs: 100 },
  nodes: ["worker-node2", "worker-node3"].map((name) => ({
    name,
    heartbeatPeriodMs: 10,
    heartbeatTimeoutMs: 30,
  })),
  sensors: [
    { name: "cam2", node: "worker-node2", periodMs: 10, timeoutMs: 30 },
    { name: "cam3", node: "worker-node3", periodMs: 10, timeoutMs: 30 },
  ],
  workloads: [{
    name: "lane",
    asil: "D",
    fttiMs: 100,
    primary: { deployment: "lane-original", node: "worker-node2", sensors: ["cam2"] },
    standby: { deployment: "lane-standby", node: "worker-node3", sensors: ["cam3"] },
  }],
});
const topology = buildTopology(config);

/** A supervisor on fakes with its metrics wired as `run` wires them. */
async function setup(options: { pair?: boolean; kubeApi?: boolean } = {}) {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  let metrics: SupervisorMetrics | undefined = undefined;
  const sup = new Supervisor({
    config,
    topology,
    client,
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock,
    onEvent: (e) => metrics?.onEvent(e),
    onTimerLateness: (ms) => metrics?.observeTimerLatenessMs(ms),
  });
  const leader = { leader: true, term: 3 };
  metrics = new SupervisorMetrics({
    source: sup,
    clock,
    kubeApi: options.kubeApi,
    leadership: options.pair ? () => leader : undefined,
  });
  const m = metrics;
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  const scrape = async () => samples(await m.metrics());
  const beat = (nodes = ["worker-node2", "worker-node3"], sensors = ["cam2", "cam3"]) => {
    for (const n of nodes) client.deliver(`sdv/node/${n}/hb`, '{"seq":1}');
    for (const s of sensors) client.deliver(`sdv/sensor/${s}/tick`, '{"seq":1}');
  };
  return { clock, client, sup, metrics: m, scrape, beat, leader };
}

Deno.test("metrics: readiness follows start-up (not armed → running), and every family is named", async () => {
  const clock = new FakeClock(0);
  const client = new FakeMqttClient();
  client.syncEcho = true;
  let metrics: SupervisorMetrics | undefined = undefined;
  const sup = new Supervisor({
    config,
    topology,
    client,
    reconciler: () => Promise.resolve(new FakeReconciler()),
    clock,
    onEvent: (e) => metrics?.onEvent(e),
  });
  metrics = new SupervisorMetrics({ source: sup, clock });
  assert.deepEqual(metrics.readiness().reasons, [
    "watchdog not armed: no broker connection yet",
    "cluster cache not synced: persisted failover state not adopted yet",
  ]);
  let s = samples(await metrics.metrics());
  assert.equal(s.get("sdv_failover_ready"), 0);
  const started = sup.start();
  await Promise.resolve();
  client.connect();
  await started;
  assert.deepEqual(metrics.readiness(), { ready: true, reasons: [] });
  s = samples(await metrics.metrics());
  assert.equal(s.get("sdv_failover_ready"), 1);
  const text = await metrics.metrics();
  const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(families.sort(), [
    "process_cpu_seconds_total counter",
    "process_resident_memory_bytes gauge",
    "sdv_failover_event_loop_lag_seconds histogram",
    "sdv_failover_expiries_total counter",
    "sdv_failover_expiry_lateness_seconds histogram",
    "sdv_failover_failovers_blocked_total counter",
    "sdv_failover_fences_total counter",
    "sdv_failover_heartbeat_age_seconds gauge",
    "sdv_failover_ingest_faulted gauge",
    "sdv_failover_ingest_forged_barriers_total counter",
    "sdv_failover_ingest_last_wills_deferred_total counter",
    "sdv_failover_ingest_malformed_total counter",
    "sdv_failover_ingest_messages_total counter",
    "sdv_failover_ingest_oversized_total counter",
    "sdv_failover_ingest_reconnects_total counter",
    "sdv_failover_ingest_refused_promotions_total counter",
    "sdv_failover_ingest_retained_beats_total counter",
    "sdv_failover_ingest_stale_barriers_total counter",
    "sdv_failover_ingest_unknown_topic_total counter",
    "sdv_failover_kube_api_errors_total counter",
    "sdv_failover_kube_api_request_duration_seconds histogram",
    "sdv_failover_promotions_total counter",
    "sdv_failover_ready gauge",
    "sdv_failover_reconcile_queue_depth gauge",
    "sdv_failover_target_state gauge",
    "sdv_failover_unfences_total counter",
    "sdv_failover_watchdog_barriers_total counter",
    "sdv_failover_watchdog_lag_events_total counter",
    "sdv_failover_watchdog_refuted_expiries_total counter",
    "sdv_failover_watchdog_slow_barriers_total counter",
    "sdv_failover_watchdog_timer_lateness_seconds histogram",
  ]);
  await sup.stop();
  assert.deepEqual(metrics.readiness().reasons, ["shutting down (stopped)"]);
});

Deno.test("metrics: one-hot target states, heartbeat ages, expiries, lateness and a promotion after a node falls silent", async () => {
  const { clock, client, sup, scrape, beat } = await setup();
  let s = await scrape();
  const state = (target: string, kind: string, st: string) =>
    s.get(`sdv_failover_target_state{target="${target}",kind="${kind}",state="${st}"}`);
  assert.equal(state("node/worker-node2", "node", "INIT"), 1);
  assert.equal(state("node/worker-node2", "node", "OK"), 0);
  assert.equal(
    s.get('sdv_failover_heartbeat_age_seconds{target="node/worker-node2",kind="node"}'),
    undefined,
    "no age before the first heartbeat",
  );
  for (let i = 0; i < 20; i++) {
    beat();
    clock.advance(10);
  }
  s = await scrape();
  for (const target of topology.targets) {
    const values = ["INIT", "OK", "EXPIRED", "RECOVERING", "DEACTIVATED"].map((st) =>
      state(target.label, target.kind, st)
    );
    assert.equal(values.reduce((a, b) => a! + b!, 0), 1, `${target.label}: one-hot`);
  }
  assert.equal(state("node/worker-node2", "node", "OK"), 1);
  assert.equal(
    s.get('sdv_failover_heartbeat_age_seconds{target="node/worker-node2",kind="node"}'),
    0.01,
    "last heartbeat 10 ms before the scrape",
  );
  assert.equal(s.get("sdv_failover_ingest_messages_total"), 80);
  client.deliver("sdv/node/worker-node2/hb", "not json");
  for (let i = 0; i < 5; i++) {
    beat(["worker-node3"], ["cam2", "cam3"]); // worker-node2 silent
    clock.advance(10);
  }
  await Promise.resolve();
  s = await scrape();
  assert.equal(state("node/worker-node2", "node", "EXPIRED"), 1);
  assert.equal(state("node/worker-node2", "node", "OK"), 0);
  assert.equal(s.get('sdv_failover_expiries_total{kind="node",cause="deadline"}'), 1);
  assert.equal(s.get('sdv_failover_expiries_total{kind="sensor",cause="deadline"}'), 0);
  assert.equal(s.get('sdv_failover_expiry_lateness_seconds_count{kind="node"}'), 1);
  assert.equal(
    s.get('sdv_failover_promotions_total{workload="lane",reason="node-expired"}'),
    1,
  );
  assert.equal(s.get('sdv_failover_failovers_blocked_total{workload="lane"}'), 0);
  assert.equal(s.get("sdv_failover_ingest_malformed_total"), 1);
  // 80 + the malformed one + 15, and what the fake broker echoed back (barrier, promotion)
  assert.equal(s.get("sdv_failover_ingest_messages_total"), sup.ingest.messages);
  assert.ok(sup.ingest.messages >= 80 + 1 + 15 + 1);
  assert.ok(s.get("sdv_failover_watchdog_timer_lateness_seconds_count")! >= 1);
  assert.equal(s.get("sdv_failover_watchdog_barriers_total"), sup.watchdog.stats.barriers);
  assert.equal(s.get("sdv_failover_reconcile_queue_depth"), 0);
  assert.equal(s.get("sdv_failover_leader"), undefined, "no pair: no leadership families");
  // counters never go back: a second scrape without news keeps them
  const again = await scrape();
  assert.equal(again.get('sdv_failover_expiries_total{kind="node",cause="deadline"}'), 1);
  assert.equal(again.get("sdv_failover_ingest_malformed_total"), 1);
  await sup.stop();
});

Deno.test("metrics: fences from reconcile reports (done or planned), ingest faults, API calls, leadership", async () => {
  const { sup, metrics, scrape, leader, client } = await setup({ pair: true, kubeApi: true });
  let s = await scrape();
  assert.equal(s.get('sdv_failover_fences_total{reason="node-expired"}'), 0, "initialised");
  assert.equal(
    s.get('sdv_failover_kube_api_request_duration_seconds_count{verb="patch",resource="nodes"}'),
    0,
    "known verbs have series from the start",
  );
  assert.equal(
    s.get('sdv_failover_kube_api_request_duration_seconds_count{verb="update",resource="leases"}'),
    0,
  );
  const node = topology.node("worker-node2")!;
  const desired: NodeDesired = {
    node,
    fenced: true,
    cordon: true,
    taint: true,
    reason: "node-offline",
  };
  const report = (outcome: "done" | "planned" | "failed"): ReconcileReport => ({
    key: { kind: "node", node },
    desired,
    startedAtMs: 0,
    finishedAtMs: 1,
    results: [{
      action: "fenceNode",
      object: "node/worker-node2",
      outcome,
      attempts: 1,
      doneAtMs: 1,
    }],
    converged: outcome !== "failed",
    attempt: 1,
  });
  metrics.onEvent({ type: "reconciled", atMs: 0, report: report("failed") });
  metrics.onEvent({ type: "reconciled", atMs: 0, report: report("done") });
  metrics.onEvent({ type: "reconciled", atMs: 0, report: report("planned") });
  client.drop(); // the broker connection closes: an ingest fault (the supervisor's own state)
  metrics.observeKubeCall({ verb: "patch", resource: "nodes", durationMs: 12, failed: false });
  metrics.observeKubeCall({ verb: "patch", resource: "nodes", durationMs: 3000, failed: true });
  s = await scrape();
  assert.equal(s.get('sdv_failover_fences_total{reason="node-offline"}'), 2);
  assert.equal(s.get("sdv_failover_ingest_faulted"), 1);
  assert.equal(s.get("sdv_failover_ready"), 0);
  assert.deepEqual(metrics.readiness().reasons, [
    "ingest fault: broker lost or stalled, supervision suspended",
  ]);
  const api = (suffix: string, extra = "") =>
    s.get(
      `sdv_failover_kube_api_request_duration_seconds_${suffix}{${extra}verb="patch",resource="nodes"}`,
    );
  assert.equal(api("count"), 2);
  assert.equal(api("sum"), 3.012);
  assert.equal(api("bucket", 'le="0.025",'), 1);
  assert.equal(api("bucket", 'le="+Inf",'), 2);
  assert.equal(s.get('sdv_failover_kube_api_errors_total{verb="patch",resource="nodes"}'), 1);
  assert.equal(s.get("sdv_failover_leader"), 1);
  assert.equal(s.get("sdv_failover_leader_term"), 3);
  leader.leader = false;
  client.connect(); // back: resubscribed, supervision resumes
  await new Promise((r) => setTimeout(r, 0));
  s = await scrape();
  assert.equal(s.get("sdv_failover_leader"), 0);
  assert.equal(s.get("sdv_failover_ingest_faulted"), 0);
  await sup.stop();
});

Deno.test("snakeCase: IngestStats keys become metric name parts", () => {
  assert.equal(snakeCase("lastWillsDeferred"), "last_wills_deferred");
  assert.equal(snakeCase("messages"), "messages");
});
