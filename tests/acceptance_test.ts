/**
 * Acceptance tests on real components: mosquitto as the broker, and a real Kubernetes control
 * plane (kube-apiserver + kine/SQLite + controller-manager + scheduler + one kwok per Jetson
 * node). The runtime runs as its own process under its own least-privilege identity
 * (config/k3s/rbac.yaml); the test uses the admin identity only to set up and to observe.
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1. Measurements are printed and written to
 * `tests/.results/acceptance.json` (never asserted on time).
 */
import { pinnedDeployment } from "./harness/workloads.ts";
import assert from "node:assert/strict";
import {
  AppsV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import mqtt from "mqtt";
import { parse as parseYaml, stringify } from "yaml";
import { decodePromotion, type Promotion } from "../lib/wire/wire.ts";
import { parseFault } from "../lib/publisher/faults.ts";
import { runPublisher } from "../lib/publisher/publisher.ts";
import { ConfigSchema } from "../lib/config/schema.ts";
import { type ControlPlane, startControlPlane } from "./harness/control_plane.ts";
import { startMosquitto } from "./harness/mosquitto.ts";
import { type LogLine, spawnMain, startSupervisor } from "./harness/supervisor_process.ts";

const SKIP = Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1";
const NODES = ["worker-node1", "worker-node2", "worker-node3"];
const PERIOD_MS = 20;
// 7.5 periods: a 2-core CI machine also runs the control plane; the publisher must not starve
const TIMEOUT_MS = 150;
const WORKLOADS = ["lane-detection", "pose-estimation"] as const;

interface Measurement {
  scenario: string;
  target: string;
  cause: string;
  silenceMs: number;
  latenessMs: number;
  timeoutMs: number;
  expiryToPromotionSentMs?: number;
  expiryToPromotionReceivedMs?: number;
  expiryToApiDoneMs?: number;
  expiryToApiAndEventsMs?: number;
  convergeAfterResumeMs?: number;
  plannedStopSwitchoverMs?: number;
}
const measurements: Measurement[] = [];

function kubeClients(kubeconfigPath: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  return { apps: kc.makeApiClient(AppsV1Api), core: kc.makeApiClient(CoreV1Api) };
}
type Admin = ReturnType<typeof kubeClients>;

async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms: ${what}${last ? ` (last error: ${last})` : ""}`,
  );
}

/** Uncordons every node and removes our taint (what an operator does after repairing a node). */
async function resetNodes(admin: Admin) {
  for (const name of NODES) {
    const node = await admin.core.readNode({ name });
    const taints = (node.spec?.taints ?? []).filter((x) => x.key !== "sdv-failover.io/unreachable");
    if (!node.spec?.unschedulable && taints.length === (node.spec?.taints ?? []).length) continue;
    await admin.core.patchNode(
      { name, body: { spec: { unschedulable: false, taints } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
  }
}

/** Creates the namespace and the four Deployments, waits until each has a Running pod on its node. */
async function setupWorkloads(admin: Admin, ns: string) {
  await resetNodes(admin);
  await admin.core.createNamespace({ body: { metadata: { name: ns } } });
  // The namespace's default ServiceAccount is not needed (ServiceAccount admission is disabled).
  for (const w of WORKLOADS) {
    await admin.apps.createNamespacedDeployment({
      namespace: ns,
      body: pinnedDeployment(`${w}-original`, "worker-node2"),
    });
    await admin.apps.createNamespacedDeployment({
      namespace: ns,
      body: pinnedDeployment(`${w}-standby`, "worker-node3"),
    });
  }
  await until(`pods Running in ${ns}`, 60_000, async () => {
    const pods = await admin.core.listNamespacedPod({ namespace: ns });
    const running = pods.items.filter((p) =>
      p.status?.phase === "Running" && !p.metadata?.deletionTimestamp
    );
    const placed = (app: string, node: string) =>
      running.some((p) => p.metadata?.labels?.app === app && p.spec?.nodeName === node);
    return WORKLOADS.every((w) =>
        placed(`${w}-original`, "worker-node2") && placed(`${w}-standby`, "worker-node3")
      )
      ? true
      : undefined;
  });
}

function writeConfig(
  dir: string,
  ns: string,
  brokerUrl: string,
  kubeconfig: string,
  options: { laneActions?: string[] } = {},
): string {
  const config = {
    supervisor: { id: `acc-${ns}`, bootWindowMs: 1000, recoveryWindowMs: 300 },
    mqtt: { url: brokerUrl, topicPrefix: `sdv-${ns}`, keepaliveS: 5 },
    cluster: { kubeconfig, requestTimeoutMs: 2000, retries: 3 },
    nodes: NODES.map((name, i) => ({
      name,
      heartbeatPeriodMs: PERIOD_MS,
      heartbeatTimeoutMs: TIMEOUT_MS,
      requiredSensors: [`camera-node${i + 1}`],
    })),
    sensors: [
      ...NODES.map((node, i) => ({
        name: `camera-node${i + 1}`,
        node,
        periodMs: PERIOD_MS,
        timeoutMs: TIMEOUT_MS,
      })),
      { name: "lidar-node2", node: "worker-node2", periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
      { name: "lidar-node3", node: "worker-node3", periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
    ],
    workloads: [
      {
        name: "lane-detection",
        namespace: ns,
        asil: "B",
        fttiMs: 500,
        primary: {
          deployment: "lane-detection-original",
          node: "worker-node2",
          sensors: ["camera-node2"],
        },
        standby: {
          deployment: "lane-detection-standby",
          node: "worker-node3",
          sensors: ["camera-node3"],
        },
        appHeartbeat: { periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
        ...(options.laneActions ? { actions: options.laneActions } : {}),
      },
      {
        name: "pose-estimation",
        namespace: ns,
        asil: "QM",
        fttiMs: 1000,
        primary: {
          deployment: "pose-estimation-original",
          node: "worker-node2",
          sensors: ["lidar-node2"],
        },
        standby: {
          deployment: "pose-estimation-standby",
          node: "worker-node3",
          sensors: ["lidar-node3"],
        },
      },
    ],
  };
  const path = `${dir}/${ns}.yaml`;
  Deno.writeTextFileSync(path, stringify(config));
  return path;
}

/** Subscribes to every promotion of a prefix; records receipt wall time. */
async function promotionWatcher(url: string, prefix: string) {
  const received: { promotion: Promotion; wallMs: number; retained: boolean }[] = [];
  const client = mqtt.connect(url, { clientId: `acc-watch-${prefix}`, reconnectPeriod: 0 });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  client.on("message", (_t, payload, packet) => {
    const wallMs = performance.timeOrigin + performance.now();
    const promotion = decodePromotion(payload);
    if (promotion) received.push({ promotion, wallMs, retained: packet.retain });
  });
  await client.subscribeAsync(`${prefix}/workload/+/promotion`, { qos: 1 });
  return { received, close: () => client.endAsync() };
}

/** Keeps the supervisor's log of a scenario next to the test's temp files. */
function keepLog(dir: string, ns: string, lines: LogLine[], raw: string[]) {
  const path = `${dir}/${ns}.supervisor.log`;
  Deno.writeTextFileSync(path, [...raw, ...lines.map((l) => JSON.stringify(l))].join("\n") + "\n");
  return path;
}

async function annotations(admin: Admin, ns: string, name: string) {
  const d = await admin.apps.readNamespacedDeployment({ namespace: ns, name });
  return {
    annotations: d.metadata?.annotations ?? {},
    resourceVersion: d.metadata?.resourceVersion,
  };
}

function record(
  scenario: string,
  lines: LogLine[],
  received: { promotion: Promotion; wallMs: number }[],
) {
  for (const e of lines.filter((l) => l.event === "expired")) {
    // the supervisor acts before it logs: match lines by the expiry they belong to
    const sent = lines.find((l) =>
      l.event === "promotion-sent" && l.trigger === e.target && l.expiredAtMs === e.expiredAtMs
    );
    const done = lines.find((l) =>
      l.event === "failover-done" && l.trigger === e.target && l.expiredAtMs === e.expiredAtMs
    );
    const got = sent &&
      received.find((r) =>
        r.promotion.workload === sent.workload && r.promotion.epoch === sent.epoch
      );
    measurements.push({
      scenario,
      target: String(e.target),
      cause: String(e.cause),
      silenceMs: Number(e.silenceMs),
      latenessMs: Number(e.latenessMs),
      timeoutMs: TIMEOUT_MS,
      expiryToPromotionSentMs: sent ? Number(sent.expiryToPromotionMs) : undefined,
      // the log line is written after acting: its wall time minus the lag since expiry
      expiryToPromotionReceivedMs: got
        ? got.wallMs - (e.wallMs - (e.tMs - Number(e.expiredAtMs ?? e.tMs)))
        : undefined,
      expiryToApiDoneMs: done ? Number(done.expiryToActionsMs) : undefined,
      expiryToApiAndEventsMs: done ? Number(done.expiryToDoneMs) : undefined,
    });
  }
}

/**
 * Runs the test publisher (`main.ts publish`) as its own process, with a long duration: the
 * scenario stops the supervisor FIRST, then the publisher (the simulated agents' ordered shutdown
 * publishes `offline`, which a running supervisor rightly treats as nodes going away).
 */
function startPublisher(config: string, faults: string[]) {
  const args = ["publish", "--config", config, "--duration", "120s", "--log-format", "json"];
  for (const f of faults) args.push("--fault", f);
  const child = spawnMain(args);
  const output = child.output();
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const out = await output;
      return out.code;
    },
  };
}

/** Runs an in-process publisher for a subset of the nodes (used to bring one node back briefly). */
async function publishNodes(
  configPath: string,
  nodes: string[],
  faults: string[],
  durationMs: number,
) {
  const config = ConfigSchema.parse(parseYaml(Deno.readTextFileSync(configPath)));
  return await runPublisher({ config, nodes, faults: faults.map(parseFault), durationMs });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "acceptance: MQTT heartbeats → watchdog → failover on a real control plane",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-acc-" });
    let cp: ControlPlane | undefined;
    let broker: Awaited<ReturnType<typeof startMosquitto>> | undefined;
    try {
      [cp, broker] = await Promise.all([
        startControlPlane({ nodes: NODES }),
        startMosquitto({ workDir: dir, tcpNoDelay: true }),
      ]);
      const admin = kubeClients(cp.adminKubeconfigPath);
      const runtimeKubeconfig = cp.runtimeKubeconfigPath;
      const url = broker.url;

      await t.step("check on a broken config exits 2 with line:column", async () => {
        const out = await spawnMain(["check", "--config", "tests/fixtures/broken.yaml"]).output();
        assert.equal(out.code, 2);
        const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
        assert.match(text, /broken\.yaml:\d+:\d+ /);
      });

      /**
       * One scenario: fresh namespace and topic prefix, supervisor + publisher processes, `body`
       * runs while both are up; the supervisor stops before the publisher.
       */
      const scenario = async (
        ns: string,
        faults: string[],
        body: (ctx: {
          /** The running supervisor; a body that replaces it (restart) assigns the new one. */
          sup: Awaited<ReturnType<typeof startSupervisor>>;
          watch: Awaited<ReturnType<typeof promotionWatcher>>;
          cfg: string;
        }) => Promise<void>,
        options: {
          laneActions?: string[];
          /** The supervisor's state directory (STATE_DIRECTORY, writable): its journal. */
          stateDir?: string;
        } = {},
      ) => {
        await setupWorkloads(admin, ns);
        const cfg = writeConfig(dir, ns, url, runtimeKubeconfig, options);
        const ctx = {
          sup: await startSupervisor(
            cfg,
            options.stateDir
              ? { env: { STATE_DIRECTORY: options.stateDir }, allowWrite: options.stateDir }
              : {},
          ),
          watch: await promotionWatcher(url, `sdv-${ns}`),
          cfg,
        };
        const publisher = startPublisher(cfg, faults);
        try {
          await body(ctx);
        } finally {
          await ctx.watch.close();
          const code = await ctx.sup.stop();
          await publisher.stop();
          console.log(`supervisor log: ${keepLog(dir, ns, ctx.sup.lines, ctx.sup.raw)}`);
          assert.equal(code, 0, "supervisor: clean shutdown exit code");
        }
      };
      const failoversDone = (sup: { lines: LogLine[] }, n: number) =>
        until(`${n} failover(s) done`, 15_000, () =>
          Promise.resolve(
            sup.lines.filter((l) => l.event === "failover-done").length >= n ? true : undefined,
          ));

      await t.step("a healthy node with jitter below its timeout is never failed over", () =>
        // max gap = period 20 + jitter 50 = 70 ms < timeout 150 ms
        scenario(
          "acc-jitter",
          ["jitter:worker-node2:50", "jitter:worker-node3:50"],
          async ({ sup, watch }) => {
            await sleep(1500); // past the start-up grace
            await sleep(5000);
            assert.equal(watch.received.length, 0, "no promotion");
            assert.deepEqual(sup.lines.filter((l) => l.event === "expired"), [], "no expiry");
            const a = await annotations(admin, "acc-jitter", "lane-detection-original");
            assert.equal(a.annotations["sdv-failover.io/epoch"], undefined);
            const node = await admin.core.readNode({ name: "worker-node2" });
            assert.notEqual(node.spec?.unschedulable, true);
          },
        ));

      await t.step("sensor loss fails over only the workloads needing that sensor", async () => {
        const ns = "acc-sensor";
        await scenario(ns, ["sensor-loss:lidar-node2@2s"], async ({ sup, watch }) => {
          const before = await admin.core.listNamespacedPod({
            namespace: ns,
            labelSelector: "app=pose-estimation-original",
          });
          await failoversDone(sup, 1);
          await sleep(300);
          assert.deepEqual(watch.received.map((r) => r.promotion.workload), ["pose-estimation"]);
          assert.equal(watch.received[0].promotion.reason, "sensor-expired:lidar-node2");
          const standby = await annotations(admin, ns, "pose-estimation-standby");
          assert.equal(standby.annotations["sdv-failover.io/role"], "active");
          const lane = await annotations(admin, ns, "lane-detection-original");
          assert.equal(
            lane.annotations["sdv-failover.io/epoch"],
            undefined,
            "lane-detection untouched",
          );
          const oldPod = before.items[0].metadata!.uid;
          const after = await admin.core.listNamespacedPod({
            namespace: ns,
            labelSelector: "app=pose-estimation-original",
          });
          assert.ok(
            !after.items.some((p) => p.metadata?.uid === oldPod),
            "the primary's pod was deleted",
          );
          const node = await admin.core.readNode({ name: "worker-node2" });
          assert.notEqual(
            node.spec?.unschedulable,
            true,
            "a sensor fault does not cordon the node",
          );
          record("sensor-loss", sup.lines, watch.received);
        });
      });

      await t.step("app hang fails over that workload only", async () => {
        const ns = "acc-app";
        await scenario(ns, ["app-hang:lane-detection@2s"], async ({ sup, watch }) => {
          await failoversDone(sup, 1);
          await sleep(300);
          assert.deepEqual(watch.received.map((r) => r.promotion.workload), ["lane-detection"]);
          assert.equal(watch.received[0].promotion.reason, "app-expired");
          const pose = await annotations(admin, ns, "pose-estimation-original");
          assert.equal(pose.annotations["sdv-failover.io/epoch"], undefined);
          record("app-hang", sup.lines, watch.received);
        });
      });

      await t.step(
        "node hang (connection kept, silence) fails over both and cordons/taints the node",
        async () => {
          const ns = "acc-hang";
          await scenario(ns, ["node-hang:worker-node2@2s"], async ({ sup, watch }) => {
            await failoversDone(sup, 2);
            assert.deepEqual(watch.received.map((r) => r.promotion.workload).sort(), [
              ...WORKLOADS,
            ]);
            const expired = sup.lines.find((l) =>
              l.event === "expired" && l.target === "node/worker-node2"
            );
            assert.equal(expired?.cause, "deadline");
            const node = await admin.core.readNode({ name: "worker-node2" });
            assert.equal(node.spec?.unschedulable, true);
            assert.ok(
              node.spec?.taints?.some((x) =>
                x.key === "sdv-failover.io/unreachable" && x.effect === "NoExecute"
              ),
            );
            record("node-hang", sup.lines, watch.received);
          });
        },
      );

      /** What a converged node-fault failover of both workloads looks like in the cluster. */
      const nodeFailoverConverged = async (ns: string) => {
        const node = await admin.core.readNode({ name: "worker-node2" });
        if (node.spec?.unschedulable !== true) return undefined;
        if (
          !node.spec?.taints?.some((x) =>
            x.key === "sdv-failover.io/unreachable" && x.effect === "NoExecute"
          )
        ) return undefined;
        for (const w of WORKLOADS) {
          for (const side of ["original", "standby"]) {
            const a = await annotations(admin, ns, `${w}-${side}`);
            if (a.annotations["sdv-failover.io/epoch"] !== "1") return undefined;
            if (a.annotations["sdv-failover.io/active-node"] !== "worker-node3") return undefined;
          }
          const onNode2 = await admin.core.listNamespacedPod({
            namespace: ns,
            labelSelector: `app=${w}-original`,
            fieldSelector: "spec.nodeName=worker-node2",
          });
          if (onNode2.items.length > 0) return undefined;
        }
        return true;
      };
      const sdvEvents = async (ns: string, reason: string) =>
        (await admin.core.listNamespacedEvent({ namespace: ns })).items.filter((e) =>
          e.source?.component === "sdv-failover" && e.reason === reason
        );

      await t.step(
        "API server stopped at a node crash: promotion on time; 12 s later the cluster converges (epoch persisted without markDeployments)",
        async () => {
          const ns = "acc-apistop";
          await scenario(ns, ["node-crash:worker-node2@2s"], async ({ sup, watch }) => {
            await sleep(1700);
            cp!.pauseApiServer();
            let resumedAtMs = NaN;
            try {
              const expired = await sup.waitFor(
                (l) => l.event === "expired" && l.target === "node/worker-node2",
                5000,
                "worker-node2 expiry",
              );
              await until("both promotions received", 3000, () =>
                Promise.resolve(
                  watch.received.filter((r) => !r.retained).length >= 2 ? true : undefined,
                ));
              // received here, while the API server is still stopped: the data-plane switch
              // does not wait for the API
              record("api-stopped-crash", sup.lines, watch.received);
              const m = measurements.at(-1)!;
              console.log(
                `api stopped: expiry → promotion received ${
                  m.expiryToPromotionReceivedMs?.toFixed(2)
                } ms (expiry ${expired.expiredAtMs})`,
              );
              await sleep(12_000);
            } finally {
              cp!.resumeApiServer();
              resumedAtMs = performance.now();
            }
            await until(
              "converged after the API server returned",
              15_000,
              () => nodeFailoverConverged(ns),
            );
            const convergeMs = performance.now() - resumedAtMs;
            console.log(`api stopped 12 s: converged ${convergeMs.toFixed(0)} ms after resume`);
            measurements.push({
              scenario: "api-stopped-converge",
              target: "node/worker-node2",
              cause: "resume",
              silenceMs: NaN,
              latenessMs: NaN,
              timeoutMs: TIMEOUT_MS,
              convergeAfterResumeMs: convergeMs,
            });
            assert.ok(
              convergeMs <= 2000,
              `converged within 2 s of the API's return: ${convergeMs}`,
            );
            const lane = await annotations(admin, ns, "lane-detection-standby");
            assert.equal(lane.annotations["sdv-failover.io/epoch"], "1", "epoch persisted");
            assert.equal(
              (await admin.apps.readNamespacedDeployment({
                namespace: ns,
                name: "lane-detection-standby",
              })).metadata?.labels?.["sdv-failover.io/role"],
              undefined,
              "no role label without markDeployments",
            );
            await sleep(500);
            const promos = watch.received.filter((r) => !r.retained);
            assert.equal(promos.length, 2, "no new fault, no new promotion");
            assert.ok(promos.every((p) => p.promotion.epoch === 1));
            assert.equal(
              sup.lines.filter((l) => l.event === "promotion-sent").length,
              2,
              "nothing new planned",
            );
          }, { laneActions: ["promote", "deletePods", "cordon", "taint", "events"] });
        },
      );

      await t.step(
        "supervisor SIGKILLed in the middle of a failover: the restarted one converges the rest, repeats nothing",
        async () => {
          const ns = "acc-kill";
          await scenario(ns, ["node-crash:worker-node2@2s"], async (ctx) => {
            const { watch, cfg } = ctx;
            await sleep(1700);
            // The API stalls so the failover is cut in the middle: promotions out, API writes not.
            cp!.pauseApiServer();
            try {
              await until("both promotions received", 5000, () =>
                Promise.resolve(
                  watch.received.filter((r) => !r.retained).length >= 2 ? true : undefined,
                ));
              await sleep(300);
              await ctx.sup.kill();
            } finally {
              cp!.resumeApiServer();
            }
            const first = ctx.sup;
            ctx.sup = await startSupervisor(cfg);
            const observed = await ctx.sup.waitFor(
              (l) => l.event === "cluster-state-observed",
              15_000,
              "cluster state adopted",
            );
            assert.deepEqual(observed.states, {
              "lane-detection": "worker-node3@1",
              "pose-estimation": "worker-node3@1",
            }, "the failover's epoch adopted (retained promotions and/or annotations)");
            await until("converged after the restart", 15_000, () => nodeFailoverConverged(ns));
            await sleep(1000);
            const restarted = ctx.sup.lines;
            assert.equal(
              restarted.filter((l) => l.event === "promotion-sent").length,
              0,
              "the restarted supervisor planned nothing new",
            );
            const promos = watch.received.filter((r) => !r.retained);
            assert.equal(promos.length, 2, "no new promotion");
            assert.ok(promos.every((p) => p.promotion.epoch === 1));
            for (const reason of ["FailoverPodsDeleted", "FailoverPromoted"]) {
              const events = await sdvEvents(ns, reason);
              assert.ok(
                events.length <= 2,
                `${reason} at most once per workload: ${events.length}`,
              );
            }
            console.log(
              `killed supervisor log: ${keepLog(dir, `${ns}-killed`, first.lines, first.raw)}`,
            );
          });
        },
      );

      const notFenced = async (ns: string) => {
        const node = await admin.core.readNode({ name: "worker-node2" });
        assert.notEqual(node.spec?.unschedulable, true, "worker-node2 not cordoned");
        assert.ok(
          !(node.spec?.taints ?? []).some((x) => x.key === "sdv-failover.io/unreachable"),
          "worker-node2 not tainted",
        );
        for (const w of WORKLOADS) {
          const onNode2 = await admin.core.listNamespacedPod({
            namespace: ns,
            labelSelector: `app=${w}-original`,
            fieldSelector: "spec.nodeName=worker-node2",
          });
          assert.equal(
            onNode2.items.filter((p) => !p.metadata?.deletionTimestamp).length,
            1,
            `${w}: its pod on worker-node2 is kept`,
          );
        }
      };

      await t.step(
        "planned stop (agent drains): workloads move first, no fence, no pod deleted",
        async () => {
          const ns = "acc-drain";
          await scenario(ns, ["planned-stop:worker-node2@2s"], async ({ sup, watch }) => {
            const stop = await sup.waitFor(
              (l) => l.event === "planned-stop" && l.node === "worker-node2",
              6000,
              "planned stop announced",
            );
            await until("both workloads moved", 3000, () =>
              Promise.resolve(
                watch.received.filter((r) => !r.retained).length >= 2 ? true : undefined,
              ));
            const promos = watch.received.filter((r) => !r.retained);
            assert.ok(promos.every((p) => p.promotion.reason === "planned-stop"));
            assert.ok(promos.every((p) => p.promotion.activeNode === "worker-node3"));
            // switchover: the supervisor heard `draining` → the standbys' apps got the promotion
            const heardWallMs = Number(stop.wallMs);
            const switchMs = Math.max(...promos.map((p) => p.wallMs)) - heardWallMs;
            console.log(
              `planned stop: draining heard → last promotion received ${switchMs.toFixed(2)} ms`,
            );
            measurements.push({
              scenario: "planned-stop",
              target: "node/worker-node2",
              cause: "draining",
              silenceMs: NaN,
              latenessMs: NaN,
              timeoutMs: TIMEOUT_MS,
              plannedStopSwitchoverMs: switchMs,
            });
            await sup.waitFor(
              (l) => l.event === "node-deactivated" && l.node === "worker-node2",
              5000,
              "worker-node2 deactivated after its ordered offline",
            );
            await sleep(1000);
            assert.deepEqual(
              sup.lines.filter((l) => l.event === "expired" && l.target === "node/worker-node2"),
              [],
              "the planned silence expires nothing",
            );
            await notFenced(ns);
            assert.equal(watch.received.filter((r) => !r.retained).length, 2, "nothing else");
          });
        },
      );

      await t.step(
        "broker stalls (SIGSTOP 200 ms, 300 ms ×4 and 5 s) while every node is healthy: no failover, no fence",
        async () => {
          const ns = "acc-stall";
          await scenario(ns, [], async ({ sup, watch }) => {
            await sleep(1500); // past the boot window
            for (const pauseMs of [200, 300, 300, 300, 300, 5000]) {
              broker!.pause();
              await sleep(pauseMs);
              broker!.resume();
              await sleep(pauseMs > 1000 ? 4000 : 800);
            }
            const expired = sup.lines.filter((l) => l.event === "expired");
            console.log(
              `broker stalls: ${expired.length} confirmed expiries, ${
                sup.lines.filter((l) => l.event === "ingest-fault").length
              } ingest faults, slow barriers in the last stats: ${
                sup.lines.filter((l) => l.event === "stopped").at(-1)?.slowBarriers ?? "n/a"
              }`,
            );
            assert.equal(watch.received.filter((r) => !r.retained).length, 0, "no failover");
            await notFenced(ns);
          });
        },
      );

      await t.step(
        "boot: a node never seen in the boot window is not fenced; its workloads move to the standby",
        async () => {
          const ns = "acc-boot";
          await setupWorkloads(admin, ns);
          const cfg = writeConfig(dir, ns, url, runtimeKubeconfig);
          const sup = await startSupervisor(cfg);
          const watch = await promotionWatcher(url, `sdv-${ns}`);
          // worker-node2 is still booting: only worker-node1 and worker-node3 run their agents
          const publishing = publishNodes(cfg, ["worker-node1", "worker-node3"], [], 4000);
          try {
            await sup.waitFor(
              (l) => l.event === "node-never-seen" && l.node === "worker-node2",
              3000,
              "worker-node2 reported never seen",
            );
            await until("both workloads moved", 3000, () =>
              Promise.resolve(
                watch.received.filter((r) => !r.retained).length >= 2 ? true : undefined,
              ));
            const promos = watch.received.filter((r) => !r.retained);
            assert.deepEqual(promos.map((p) => p.promotion.workload).sort(), [...WORKLOADS]);
            assert.ok(promos.every((p) => p.promotion.reason === "node-never-seen"));
            await sleep(500);
            await notFenced(ns);
          } finally {
            await watch.close();
            // the supervisor stops before the simulated agents' ordered offline
            assert.equal(await sup.stop(), 0);
            await publishing;
            console.log(`supervisor log: ${keepLog(dir, ns, sup.lines, sup.raw)}`);
          }
        },
      );

      await t.step(
        "node crash: promotion with epoch, standby active, pods gone, cordon+taint, Events; back: unfenced; again: fenced, no new failover; a restart changes nothing",
        async () => {
          const ns = "acc-crash";
          const stateDir = `${dir}/state-${ns}`;
          Deno.mkdirSync(stateDir);
          const journalPath = `${stateDir}/journal.jsonl`;
          let restarted: Awaited<ReturnType<typeof startSupervisor>> | undefined;
          await scenario(ns, ["node-crash:worker-node2@2s"], async ({ sup, watch, cfg }) => {
            // The same fault for the control plane: the node lost power.
            const killed = sleep(2000).then(() => cp!.killNode("worker-node2"));
            await failoversDone(sup, 2);
            await killed;
            await sleep(300);
            const promos = watch.received.filter((r) => !r.retained);
            assert.deepEqual(promos.map((r) => r.promotion.workload).sort(), [...WORKLOADS]);
            for (const p of promos) {
              assert.equal(p.promotion.epoch, 1);
              assert.equal(p.promotion.activeNode, "worker-node3");
              assert.equal(p.promotion.failedNode, "worker-node2");
            }
            const expired = sup.lines.find((l) =>
              l.event === "expired" && l.target === "node/worker-node2"
            );
            assert.equal(expired?.cause, "offline", "Last Will fast path");
            for (const w of WORKLOADS) {
              const standby = await annotations(admin, ns, `${w}-standby`);
              assert.equal(standby.annotations["sdv-failover.io/role"], "active");
              assert.equal(standby.annotations["sdv-failover.io/epoch"], "1");
              assert.equal(standby.annotations["sdv-failover.io/active-node"], "worker-node3");
              const original = await annotations(admin, ns, `${w}-original`);
              assert.equal(original.annotations["sdv-failover.io/role"], "failed");
              const onNode2 = await admin.core.listNamespacedPod({
                namespace: ns,
                labelSelector: `app=${w}-original`,
                fieldSelector: "spec.nodeName=worker-node2",
              });
              assert.equal(onNode2.items.length, 0, `${w}: no pod left on worker-node2`);
            }
            const node = await admin.core.readNode({ name: "worker-node2" });
            assert.equal(node.spec?.unschedulable, true);
            assert.ok(
              node.spec?.taints?.some((x) =>
                x.key === "sdv-failover.io/unreachable" && x.effect === "NoExecute"
              ),
            );
            const events = await admin.core.listNamespacedEvent({ namespace: ns });
            const reasons = events.items.filter((e) => e.source?.component === "sdv-failover").map((
              e,
            ) => e.reason);
            for (const r of ["FailoverFenced", "FailoverPodsDeleted", "FailoverPromoted"]) {
              assert.equal(
                reasons.filter((x) => x === r).length,
                2,
                `${r} per workload: ${reasons}`,
              );
            }
            const nodeEvents = (await admin.core.listNamespacedEvent({ namespace: "default" }))
              .items
              .filter((e) =>
                e.source?.component === "sdv-failover" && e.involvedObject?.name === "worker-node2"
              );
            assert.ok(nodeEvents.length >= 1, "node Event recorded");
            record("node-crash", sup.lines, watch.received);

            // --- the failover journal (default path in STATE_DIRECTORY): the incident is written
            // once the cluster converged, and `report --last --svg` renders it
            const journaled = await sup.waitFor(
              (l) => l.event === "incident-journaled",
              15_000,
              "the node crash journaled",
            );
            assert.equal(journaled.outcome, "converged");
            const svgPath = `${stateDir}/last.svg`;
            const reported = await spawnMain(
              ["report", "--journal", journalPath, "--last", "--svg", svgPath, "-o", "json"],
              {},
              { allowWrite: stateDir },
            ).output();
            const reportErr = new TextDecoder().decode(reported.stderr);
            assert.equal(reported.code, 0, reportErr);
            const { incident } = JSON.parse(new TextDecoder().decode(reported.stdout));
            assert.equal(incident.id, journaled.incident);
            assert.equal(incident.trigger.target, "node/worker-node2");
            assert.equal(incident.trigger.cause, "offline");
            assert.equal(incident.node, "worker-node2");
            assert.equal(incident.outcome, "converged");
            assert.deepEqual(incident.supervisor, { id: `acc-${ns}`, term: null });
            assert.equal(incident.asil, "B");
            assert.equal(incident.fttiMs, 500);
            assert.deepEqual(
              incident.workloads.map((
                w: { name: string; epoch: number; activeNode: string; issuer: string },
              ) => [w.name, w.epoch, w.activeNode, w.issuer]).sort(),
              WORKLOADS.map((w) => [w, 1, "worker-node3", `acc-${ns}`]),
            );
            const steps: { step: string; tMs: number }[] = incident.steps;
            const at = (prefix: string) => {
              const i = steps.findIndex((x) => x.step.startsWith(prefix));
              assert.ok(i >= 0, `step "${prefix}" in ${steps.map((x) => x.step).join(" | ")}`);
              return i;
            };
            const order = [
              "last heartbeat: node/worker-node2",
              "expiry detected: Last Will (offline)",
              "expiry confirmed (ingest barrier)",
              "promotion published: ",
              "fenceNode node/worker-node2",
              "deletePods pod/acc-crash/",
              "active instance Running and Ready: ",
              "converged",
            ].map(at);
            assert.deepEqual(order, [...order].sort((a, b) => a - b), "steps in order");
            assert.equal(order[0], 0);
            assert.equal(order.at(-1), steps.length - 1, "converged is the last step");
            for (const w of WORKLOADS) at(`promotion published: ${w} epoch 1 → worker-node3`);
            at("markActive deployment/acc-crash/");
            assert.equal(steps[0].tMs, 0);
            for (let i = 1; i < steps.length; i++) {
              assert.ok(steps[i].tMs > 0, `positive offset: ${steps[i].step} ${steps[i].tMs}`);
              assert.ok(steps[i].tMs >= steps[i - 1].tMs, `increasing at ${steps[i].step}`);
            }
            const svg = await Deno.readTextFile(svgPath);
            assert.match(svg, /^<svg [\s\S]*<\/svg>\s*$/);
            assert.ok(svg.includes("converged</text>"), "step labels in the SVG");
            assert.ok(svg.includes("FTTI 500 ms"), "the FTTI line");
            const journalBytes = (await Deno.stat(journalPath)).size;
            console.log(
              `journal: 1 incident, ${journalBytes} bytes, ${steps.length} steps, end to end ` +
                `${incident.endToEndMs} ms, promotion ${
                  incident.workloads.map((w: { promotionMs: number }) => w.promotionMs)
                } ms after the last heartbeat (FTTI met: ${incident.fttiMet}); ${reportErr.trim()}`,
            );

            // --- the node comes back: unfenced (undo); it crashes again: no new failover (its
            // instances are standbys now), fenced again after the confirmation window
            // What the runtime writes (controllers keep updating status, resourceVersions and
            // their own Events, which is not ours to freeze): our annotations and their managed
            // timestamps, our Events, the node's spec.
            const ours = (d: Awaited<ReturnType<typeof annotations>>) =>
              Object.entries(d.annotations).filter(([k]) => k.startsWith("sdv-failover.io/"));
            const fencedNow = async () => {
              const spec = (await admin.core.readNode({ name: "worker-node2" })).spec;
              return spec?.unschedulable === true &&
                (spec.taints ?? []).some((x) => x.key === "sdv-failover.io/unreachable");
            };
            const live = () => watch.received.filter((r) => !r.retained).length;
            const liveBefore = live();
            const deploymentsBefore = (await Promise.all(
              WORKLOADS.flatMap((w) => [`${w}-standby`, `${w}-original`]).map((n) =>
                annotations(admin, ns, n)
              ),
            )).map(ours);
            // worker-node2's agent comes back (RECOVERING → OK), then crashes again
            const back = publishNodes(
              cfg,
              ["worker-node2"],
              ["node-crash:worker-node2@1500ms"],
              2000,
            );
            await sup.waitFor(
              (l) => l.event === "unfence" && l.node === "worker-node2",
              5000,
              "unfence of worker-node2 once OK for the recovery window",
            );
            await until(
              "our cordon and taint removed",
              5000,
              async () => (await fencedNow()) ? undefined : true,
            );
            await back;
            await sup.waitFor(
              (l) =>
                l.event === "expired" && l.target === "node/worker-node2" && l.tMs > expired!.tMs,
              5000,
              "second expiry of worker-node2",
            );
            await sup.waitFor(
              (l) => l.event === "fence-pending" && l.node === "worker-node2",
              2000,
              "fence waits: the expiry moved no workload",
            );
            await until(
              "fenced again after the confirmation window",
              6000,
              async () => (await fencedNow()) ? true : undefined,
            );
            assert.equal(live(), liveBefore, "no new promotion");
            // the second crash is an incident too: a fence pending, then confirmed
            const second = await sup.waitFor(
              (l) => l.event === "incident-journaled" && l.incident !== journaled.incident,
              10_000,
              "the second crash journaled",
            );
            const listed = await spawnMain(
              ["report", "--journal", journalPath, "--incident", String(second.incident)],
            ).output();
            const secondText = new TextDecoder().decode(listed.stdout);
            assert.equal(listed.code, 0, new TextDecoder().decode(listed.stderr));
            assert.match(secondText, /: converged\n/);
            assert.match(secondText, /\nfence pending: worker-node2 .*no-workload-moved/);
            assert.match(secondText, /\nfenceNode node\/worker-node2 /);
            assert.deepEqual(
              (await Promise.all(
                WORKLOADS.flatMap((w) => [`${w}-standby`, `${w}-original`]).map((n) =>
                  annotations(admin, ns, n)
                ),
              )).map(ours),
              deploymentsBefore,
              "epochs unchanged",
            );
            const snapshot = async () => ({
              deployments: (await Promise.all(
                WORKLOADS.flatMap((w) => [`${w}-standby`, `${w}-original`]).map((n) =>
                  annotations(admin, ns, n)
                ),
              )).map(ours),
              patchTimes: await Promise.all(
                WORKLOADS.flatMap((w) => [`${w}-standby`, `${w}-original`]).map(async (n) =>
                  (await admin.apps.readNamespacedDeployment({ namespace: ns, name: n })).metadata
                    ?.managedFields?.filter((f) =>
                      f.operation === "Update" && f.subresource !== "status"
                    )
                    .map((f) => `${f.manager}@${f.time}`).sort()
                ),
              ),
              events: [
                ...(await admin.core.listNamespacedEvent({ namespace: ns })).items,
                ...(await admin.core.listNamespacedEvent({ namespace: "default" })).items,
              ].filter((e) => e.source?.component === "sdv-failover").length,
              node: (await admin.core.readNode({ name: "worker-node2" })).spec,
            });
            await sleep(500);
            const before = await snapshot();

            // --- a restart of the runtime changes nothing either
            assert.equal(await sup.stop(), 0);
            restarted = await startSupervisor(cfg);
            const observed = await restarted.waitFor(
              (l) => l.event === "cluster-state-observed",
              10_000,
              "reconcile",
            );
            // from the Deployment annotations and/or the retained promotions
            assert.deepEqual(observed.states, {
              "lane-detection": "worker-node3@1",
              "pose-estimation": "worker-node3@1",
            }, "persisted epochs observed on restart");
            // worker-node2 stays silent: it expires (never seen) after the start-up grace
            await restarted.waitFor(
              (l) => l.event === "expired" && l.target === "node/worker-node2",
              5000,
              "worker-node2 expiry after restart",
            );
            await sleep(500);
            assert.equal(live(), liveBefore, "no new promotion after restart");
            assert.deepEqual(await snapshot(), before, "no API change after restart");
            assert.equal(await restarted.stop(), 0);
            console.log(
              `restarted supervisor log: ${
                keepLog(dir, `${ns}-restart`, restarted.lines, restarted.raw)
              }`,
            );
          }, { stateDir }).finally(() => restarted?.stop());
        },
      );
    } finally {
      await broker?.stop();
      await cp?.stop();
      const summary = summarize();
      console.log(summary);
      try {
        Deno.mkdirSync("tests/.results", { recursive: true });
        Deno.writeTextFileSync(
          "tests/.results/acceptance.json",
          JSON.stringify({ measurements }, null, 2),
        );
      } catch { /* read-only checkout */ }
    }
  },
});

function summarize(): string {
  if (!measurements.length) return "acceptance: no measurements";
  const fmt = (xs: (number | undefined)[]) => {
    const v = xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x)).sort((
      a,
      b,
    ) => a - b);
    if (!v.length) return "n/a";
    return `p50 ${v[Math.floor((v.length - 1) / 2)].toFixed(2)} ms, max ${
      v[v.length - 1].toFixed(2)
    } ms (n=${v.length})`;
  };
  const deadline = measurements.filter((m) => m.cause === "deadline");
  return [
    "acceptance measurements:",
    `  expiry − last heartbeat (deadline expiries; timeout ${TIMEOUT_MS} ms): ${
      fmt(deadline.map((m) => m.silenceMs))
    }`,
    `  lateness beyond the deadline: ${fmt(deadline.map((m) => m.latenessMs))}`,
    `  expiry → promotion sent: ${fmt(measurements.map((m) => m.expiryToPromotionSentMs))}`,
    `  expiry → promotion received on MQTT: ${
      fmt(measurements.map((m) => m.expiryToPromotionReceivedMs))
    }`,
    `  expiry → all API actions acknowledged: ${fmt(measurements.map((m) => m.expiryToApiDoneMs))}`,
    `  expiry → API actions and their Events: ${
      fmt(measurements.map((m) => m.expiryToApiAndEventsMs))
    }`,
  ].join("\n");
}
