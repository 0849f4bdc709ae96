import assert from "node:assert/strict";
import { buildTopology, type Target } from "../topology/topology.ts";
import { Ingest } from "../ingest/ingest.ts";
import { Watchdog } from "../watchdog/watchdog.ts";
import { NodeAgent } from "../agent/agent.ts";
import { silentLogger } from "../log/log.ts";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import { FakeMqttClient } from "../../tests/fakes/fake_mqtt.ts";
import { VEHICLE } from "../../tests/fixtures/locked_vehicle.ts";
import {
  appIdentity,
  busIdentities,
  identityFileStem,
  nodeIdentity,
  OPERATOR_IDENTITY,
  supervisorIdentity,
} from "./identities.ts";

const identities = () => busIdentities({ topology: buildTopology(VEHICLE) });

Deno.test("identity names: kind and names joined by ':', file stems with '_'", () => {
  assert.equal(supervisorIdentity("sup"), "supervisor:sup");
  assert.equal(nodeIdentity("worker-node2"), "node:worker-node2");
  assert.equal(appIdentity("lane-detection", "worker-node3"), "app:lane-detection:worker-node3");
  assert.equal(
    identityFileStem("app:lane-detection:worker-node3"),
    "app_lane-detection_worker-node3",
  );
});

Deno.test("busIdentities: the supervisor publishes promotions, its status, barrier and state, reads all it supervises", () => {
  const [sup] = identities();
  assert.equal(sup.name, "supervisor:sup");
  assert.deepEqual(sup.publishes, [
    "v/supervisor/sup/barrier",
    "v/supervisor/sup/state",
    "v/supervisor/sup/status",
    "v/workload/lane-detection/promotion",
    "v/workload/logger/promotion",
  ]);
  assert.deepEqual(sup.reads, [
    "lidar/2",
    "v/app/lane-detection/worker-node2/hb",
    "v/app/lane-detection/worker-node3/hb",
    "v/node/worker-node2/hb",
    "v/node/worker-node2/status",
    "v/node/worker-node3/hb",
    "v/node/worker-node3/status",
    "v/sensor/camera-node2/tick",
    "v/supervisor/sup/barrier",
    "v/workload/lane-detection/promotion",
    "v/workload/logger/promotion",
  ]);
});

Deno.test("busIdentities: a node publishes only its own topics and reads only what its agent needs", () => {
  const byName = new Map(identities().map((i) => [i.name, i]));
  const node2 = byName.get("node:worker-node2")!;
  assert.deepEqual(node2.publishes, [
    "lidar/2",
    "v/node/worker-node2/hb",
    "v/node/worker-node2/status",
    "v/sensor/camera-node2/tick",
  ]);
  assert.deepEqual(node2.reads, [
    "v/sensor/camera-node2/tick",
    "v/workload/lane-detection/promotion",
    "v/workload/logger/promotion",
  ]);
  const node3 = byName.get("node:worker-node3")!;
  assert.deepEqual(node3.publishes, ["v/node/worker-node3/hb", "v/node/worker-node3/status"]);
  for (const identity of byName.values()) {
    if (identity.kind === "supervisor") continue;
    for (const topic of identity.publishes) {
      assert.ok(!topic.includes("/promotion"), `${identity.name} may publish ${topic}`);
      assert.ok(!topic.includes("/supervisor/"), `${identity.name} may publish ${topic}`);
    }
  }
});

Deno.test("busIdentities: one app identity per placement, publishing only its own heartbeat", () => {
  const apps = identities().filter((i) => i.kind === "app");
  assert.deepEqual(apps.map((a) => [a.name, a.publishes, a.reads]), [
    [
      "app:lane-detection:worker-node2",
      ["v/app/lane-detection/worker-node2/hb"],
      ["v/workload/lane-detection/promotion"],
    ],
    [
      "app:lane-detection:worker-node3",
      ["v/app/lane-detection/worker-node3/hb"],
      ["v/workload/lane-detection/promotion"],
    ],
    ["app:logger:worker-node3", [], ["v/workload/logger/promotion"]],
    ["app:logger:worker-node2", [], ["v/workload/logger/promotion"]],
  ]);
});

Deno.test("busIdentities grant the real supervisor ingest and node agents exactly what they subscribe to", () => {
  const topology = buildTopology(VEHICLE);
  const byName = new Map(identities().map((i) => [i.name, i]));
  const ingest = new Ingest({
    topology,
    barrierTopic: topology.supervisorTopics("sup").barrier,
    barrierNonce: "0123456789abcdef0123456789abcdef",
    watchdog: new Watchdog<Target>({ clock: new FakeClock(), onTransition: () => {} }),
    clock: new FakeClock(),
    onPromotion: () => undefined,
    onNodeStatus: () => {},
    isDraining: () => false,
    onDrained: () => {},
    onFault: () => {},
    onRestored: () => {},
  });
  assert.deepEqual([...ingest.subscriptions].sort(), byName.get("supervisor:sup")!.reads);
  for (const node of topology.nodes) {
    const client = new FakeMqttClient();
    new NodeAgent({ node, client, clock: new FakeClock(), log: silentLogger }).start();
    assert.deepEqual([...client.subscribed].sort(), byName.get(`node:${node.name}`)!.reads);
  }
});

Deno.test("busIdentities: in a supervisor pair each instance has its own identity with the supervisor's rights", () => {
  const pair = {
    ...VEHICLE,
    supervisor: {
      ...VEHICLE.supervisor,
      id: "sup-a",
      pair: {
        ids: ["sup-a", "sup-b"],
        leaseName: "sdv-failover",
        leaseNamespace: "kube-system",
        leaseDurationMs: 400,
        renewDeadlineMs: 250,
        retryPeriodMs: 50,
      },
    },
  };
  const topology = buildTopology(pair);
  const sups = busIdentities({ topology }).filter((i) => i.kind === "supervisor");
  assert.deepEqual(sups.map((s) => s.name), ["supervisor:sup-a", "supervisor:sup-b"]);
  for (const s of sups) {
    const id = s.name.slice("supervisor:".length);
    const own = topology.supervisorTopics(id);
    assert.ok(s.publishes.includes(own.barrier) && s.reads.includes(own.barrier), s.name);
    for (const w of topology.workloads) assert.ok(s.publishes.includes(w.promotionTopic));
  }
  assert.ok(!sups[0].publishes.includes(topology.supervisorTopics("sup-b").barrier));
  for (const w of topology.workloads) assert.deepEqual([...w.issuers], ["sup-a", "sup-b"]);
});

Deno.test("busIdentities: the operator reads every supervisor's status and state, publishes nothing", () => {
  const single = identities().find((i) => i.kind === "operator")!;
  assert.equal(single.name, OPERATOR_IDENTITY);
  assert.deepEqual(single.publishes, []);
  assert.deepEqual(single.reads, ["v/supervisor/sup/state", "v/supervisor/sup/status"]);
  const pair = busIdentities({
    topology: buildTopology({
      ...VEHICLE,
      supervisor: {
        ...VEHICLE.supervisor,
        id: "sup-a",
        pair: {
          ids: ["sup-a", "sup-b"],
          leaseName: "sdv-failover",
          leaseNamespace: "kube-system",
          leaseDurationMs: 400,
          renewDeadlineMs: 250,
          retryPeriodMs: 50,
        },
      },
    }),
  }).find((i) => i.kind === "operator")!;
  assert.deepEqual(pair.reads, [
    "v/supervisor/sup-a/state",
    "v/supervisor/sup-a/status",
    "v/supervisor/sup-b/state",
    "v/supervisor/sup-b/status",
  ]);
  // nobody else may read a state, and only its supervisor may write it
  for (const identity of identities()) {
    if (identity.kind === "operator") continue;
    assert.ok(!identity.reads.some((t) => t.endsWith("/state")), identity.name);
    const writes = identity.publishes.filter((t) => t.endsWith("/state"));
    assert.deepEqual(writes, identity.kind === "supervisor" ? ["v/supervisor/sup/state"] : []);
  }
});
