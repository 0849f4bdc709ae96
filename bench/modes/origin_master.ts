/**
 * The origin project's master, re-implemented in a few lines so that its cost is measured, not
 * quoted: it polls at 60 Hz on the wall clock (`setInterval` + `Date.now()`); a node
 * whose heartbeat is older than 300 ms gets every pod on it (in the namespace, listed by
 * `spec.nodeName`) deleted, one after the other, with the default grace period; 3 s start-up grace;
 * no cordon, no taint, no promotion — its standbys are always running. It uses client-node as it
 * comes (no shared keep-alive agent) with the runtime's kubeconfig.
 *
 * Run as its own process: `deno run -A origin_master.ts URL PREFIX KUBECONFIG NAMESPACE`. Prints
 * JSON lines (`ready`, `expired`, `deleted`) with precise wall-clock stamps for the bench; the
 * algorithm itself only looks at `Date.now()`.
 *
 * @module
 */
import * as k8s from "@kubernetes/client-node";
import mqtt from "mqtt";

const wall = () => performance.timeOrigin + performance.now();
const emit = (event: string, fields: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ event, wallMs: wall(), ...fields }));

if (import.meta.main) {
  const [url, prefix, kubeconfig, namespace] = Deno.args;
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const lastSeen = new Map<string, number>(); // node → Date.now() of its last heartbeat
  const lastSeenWall = new Map<string, number>(); // instrumentation only
  const failed = new Set<string>();
  const client = mqtt.connect(url, { clientId: `origin-master-${prefix}` });
  client.on("message", (topic) => {
    const node = topic.split("/")[2];
    lastSeen.set(node, Date.now());
    lastSeenWall.set(node, wall());
  });
  await client.subscribeAsync(`${prefix}/node/+/hb`, { qos: 0 });
  const started = Date.now();
  emit("ready", { graceEndsWallMs: wall() + 3000 });

  // ---- the origin's algorithm --------------------------------------------------------------
  setInterval(async () => {
    const now = Date.now();
    if (now - started < 3000) return;
    for (const [node, seen] of lastSeen) {
      if (failed.has(node) || now - seen <= 300) continue;
      failed.add(node);
      emit("expired", {
        node,
        silenceMs: wall() - lastSeenWall.get(node)!,
        lastSeenWallMs: lastSeenWall.get(node),
      });
      const pods = await core.listNamespacedPod({
        namespace,
        fieldSelector: `spec.nodeName=${node}`,
      });
      for (const pod of pods.items) {
        await core.deleteNamespacedPod({ name: pod.metadata!.name!, namespace });
      }
      emit("deleted", { node, pods: pods.items.map((p) => p.metadata?.name) });
    }
  }, 1000 / 60);
}
