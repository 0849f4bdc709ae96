/**
 * The HTTP endpoint, the metrics and the shipped Grafana dashboard on real components (issue 12):
 * a real mosquitto, a real kube-apiserver (kine/SQLite, controller-manager, scheduler, one kwok per
 * node), the supervisor (`run --id sup-a` of a `supervisor.pair` config, under the runtime's
 * least-privilege kubeconfig: it leads alone, so leadership and API-latency series are real), two
 * simulated Jetsons (`tests/campaign/node_process.ts`) and one real `agent` (whose camera this test
 * ticks; its lidar never ticks, so it reports `degraded:lidar-node3`), and a real Prometheus
 * (Debian package) scraping both endpoints every second.
 *
 * 1. `/readyz` is 503 until the supervisor is armed and has adopted the cluster state, then 200;
 *    `/healthz` 200; the agent's `/readyz` 200 once it knows its sensors.
 * 2. A second `run` on the same address exits 1 with `address already in use`.
 * 3. worker-node1 crashes (SIGKILL of its process: the broker publishes its Last Will; SIGKILL of
 *    its kwok): expiries, promotions and fences become non-zero in `/metrics`.
 * 4. `promtool check metrics` accepts both expositions; `promtool check rules` the shipped rules.
 * 5. Every query of `packaging/grafana/sdv-failover-dashboard.json` returns at least one series
 *    from Prometheus (`/api/v1/query`; `$__rate_interval` = 10s, `$job` / `$agent_job` = the
 *    scrape jobs).
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1 or SDV_SKIP_PROMETHEUS=1.
 */
import { sleep, until } from "./harness/until.ts";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { AppsV1Api, CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import mqtt from "mqtt";
import { stringify } from "yaml";
import { type ControlPlane, startControlPlane } from "./harness/control_plane.ts";
import { samples } from "./harness/exposition.ts";
import { type RunningMosquitto, startMosquitto } from "./harness/mosquitto.ts";
import {
  type LogLine,
  startSupervisor,
  type SupervisorProcess,
  watchMain,
} from "./harness/supervisor_process.ts";
import { pinnedDeployment } from "./harness/workloads.ts";
import { type NodeProc, startNodeProc } from "./campaign/node_proc.ts";

const SKIP = Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1" ||
  Deno.env.get("SDV_SKIP_PROMETHEUS") === "1";
const DASHBOARD = fileURLToPath(
  new URL("../packaging/grafana/sdv-failover-dashboard.json", import.meta.url),
);
const RULES = fileURLToPath(
  new URL("../packaging/prometheus/sdv-failover-rules.yaml", import.meta.url),
);
const NODES = ["worker-node1", "worker-node2", "worker-node3"];
const NS = "prom";
const PREFIX = "sdv-prom";
const PERIOD_MS = 20;
const TIMEOUT_MS = 150;
const SUPERVISOR_JOB = "sdv-failover-supervisor";
const AGENT_JOB = "sdv-failover-agent";

function config(brokerUrl: string, kubeconfig: string) {
  return {
    supervisor: {
      id: "sup-a",
      bootWindowMs: 3000,
      recoveryWindowMs: 300,
      pair: { ids: ["sup-a", "sup-b"] },
    },
    mqtt: { url: brokerUrl, topicPrefix: PREFIX, keepaliveS: 5 },
    cluster: { kubeconfig, requestTimeoutMs: 2000, retries: 3 },
    nodes: NODES.map((name, i) => ({
      name,
      heartbeatPeriodMs: PERIOD_MS,
      heartbeatTimeoutMs: TIMEOUT_MS,
      requiredSensors: i === 2 ? ["camera-node3", "lidar-node3"] : [`camera-node${i + 1}`],
    })),
    sensors: [
      ...NODES.map((node, i) => ({
        name: `camera-node${i + 1}`,
        node,
        periodMs: PERIOD_MS,
        timeoutMs: TIMEOUT_MS,
      })),
      { name: "lidar-node3", node: "worker-node3", periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
    ],
    workloads: [{
      name: "lane-detection",
      namespace: NS,
      asil: "B",
      fttiMs: 500,
      primary: {
        deployment: "lane-detection-original",
        node: "worker-node1",
        sensors: ["camera-node1"],
      },
      standby: {
        deployment: "lane-detection-standby",
        node: "worker-node2",
        sensors: ["camera-node2"],
      },
      appHeartbeat: { periodMs: PERIOD_MS, timeoutMs: TIMEOUT_MS },
    }],
  };
}

async function setupWorkloads(adminKubeconfig: string) {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const apps = kc.makeApiClient(AppsV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  const placements = [["lane-detection-original", "worker-node1"], [
    "lane-detection-standby",
    "worker-node2",
  ]];
  for (const [name, node] of placements) {
    await apps.createNamespacedDeployment({ namespace: NS, body: pinnedDeployment(name, node) });
  }
  await until(`pods Running in ${NS}`, 60_000, async () => {
    const pods = await core.listNamespacedPod({ namespace: NS });
    const running = pods.items.filter((p) => p.status?.phase === "Running");
    return placements.every(([name, node]) =>
        running.some((p) => p.metadata?.labels?.app === name && p.spec?.nodeName === node)
      )
      ? true
      : undefined;
  });
}

/** The address a `run` / `agent` process logged in `http-listening`. */
async function httpAddress(proc: SupervisorProcess): Promise<string> {
  const line = await proc.waitFor((l) => l.event === "http-listening", 30_000, "http-listening");
  return String(line.address);
}

/** A free TCP port on 127.0.0.1 (closed again: the caller binds it at once). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Runs `promtool` with `stdin`; returns its exit code and output. */
async function promtool(args: string[], stdin?: string) {
  const child = new Deno.Command("promtool", {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/** Every `expr` of the dashboard with the Grafana variables substituted. */
async function dashboardQueries(): Promise<{ panel: string; expr: string }[]> {
  const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD));
  const out: { panel: string; expr: string }[] = [];
  for (const panel of dashboard.panels) {
    for (const target of panel.targets ?? []) {
      const expr = String(target.expr)
        .replaceAll("$__rate_interval", "10s")
        .replaceAll("$agent_job", AGENT_JOB)
        .replaceAll("$job", SUPERVISOR_JOB);
      assert.doesNotMatch(expr, /\$/, `unsubstituted variable in ${panel.title}: ${expr}`);
      out.push({ panel: panel.title, expr });
    }
  }
  return out;
}

/** A real Prometheus scraping both endpoints every second. */
async function startPrometheus(supervisor: string, agent: string) {
  const dir = await Deno.makeTempDir({ prefix: "sdv-prom-" });
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/prometheus.yml`,
    stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: [RULES],
      scrape_configs: [
        { job_name: SUPERVISOR_JOB, static_configs: [{ targets: [supervisor] }] },
        { job_name: AGENT_JOB, static_configs: [{ targets: [agent] }] },
      ],
    }),
  );
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr: string[] = [];
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr.push(chunk);
    }
  })();
  const base = `http://127.0.0.1:${port}`;
  const query = async (expr: string) => {
    const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = await r.json();
    if (body.status !== "success") throw new Error(`${expr}: ${JSON.stringify(body)}`);
    return body.data.result as { metric: Record<string, string>; value: [number, string] }[];
  };
  try {
    await until("prometheus ready", 30_000, async () => {
      const r = await fetch(`${base}/-/ready`);
      await r.body?.cancel();
      return r.ok ? true : undefined;
    });
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw new Error(`${error}\n${stderr.join("").slice(-2000)}`);
  }
  return {
    query,
    stderr,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

Deno.test({
  name:
    "prometheus: /metrics, /healthz, /readyz on a real supervisor and agent; promtool; every dashboard query has series",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    let cp: ControlPlane | undefined;
    let broker: RunningMosquitto | undefined;
    let sup: SupervisorProcess | undefined;
    let agent: SupervisorProcess | undefined;
    const nodes: NodeProc[] = [];
    let ticker: mqtt.MqttClient | undefined;
    let tickTimer: ReturnType<typeof setInterval> | undefined;
    let prometheus: Awaited<ReturnType<typeof startPrometheus>> | undefined;
    const dir = await Deno.makeTempDir({ prefix: "sdv-promtest-" });
    try {
      [cp, broker] = await Promise.all([startControlPlane({ nodes: NODES }), startMosquitto()]);
      await setupWorkloads(cp.adminKubeconfigPath);
      const cfg = `${dir}/config.yaml`;
      await Deno.writeTextFile(cfg, stringify(config(broker.url, cp.runtimeKubeconfigPath)));

      // The sensors of worker-node3: the camera ticks, the lidar never does.
      ticker = mqtt.connect(broker.url, { clientId: "prom-ticker", reconnectPeriod: 0 });
      await new Promise<void>((resolve, reject) => {
        ticker!.once("connect", () => resolve());
        ticker!.once("error", reject);
      });
      let seq = 0;
      tickTimer = setInterval(() => {
        ticker!.publish(`${PREFIX}/sensor/camera-node3/tick`, JSON.stringify({ seq: ++seq }));
      }, PERIOD_MS);

      for (const node of ["worker-node1", "worker-node2"]) {
        nodes.push(await startNodeProc({ node, configPath: cfg, url: broker.url, execPrefix: [] }));
      }
      agent = watchMain([
        "agent",
        "--config",
        cfg,
        "--node",
        "worker-node3",
        "--log-format",
        "json",
      ]);
      const agentAddress = await httpAddress(agent);

      // 1. Readiness follows the start-up; the supervisor leads alone.
      sup = await startSupervisor(cfg, { id: "sup-a", armedTimeoutMs: 60_000 });
      const supAddress = await httpAddress(sup);
      const get = async (address: string, path: string) => {
        const r = await fetch(`http://${address}${path}`);
        return { status: r.status, body: await r.text() };
      };
      await until("supervisor /readyz 200", 60_000, async () => {
        const r = await get(supAddress, "/readyz");
        return r.status === 200 ? r : undefined;
      });
      assert.ok(
        sup.lines.some((l) => l.event === "http-listening") &&
          sup.lines.findIndex((l) => l.event === "http-listening") <
            sup.lines.findIndex((l) => l.event === "running"),
        "listening before running",
      );
      assert.equal((await get(supAddress, "/healthz")).status, 200);
      const status = await get(supAddress, "/status");
      assert.equal(status.status, 200, "/status serves the status snapshot");
      const snapshot = JSON.parse(status.body);
      assert.equal(snapshot.v, 1);
      assert.equal(snapshot.supervisor.id, "sup-a");
      const elected = await sup.waitFor((l) => l.event === "leader", 30_000, "leader");
      await until("agent /readyz 200", 30_000, async () => {
        const r = await get(agentAddress, "/readyz");
        return r.status === 200 ? r : undefined;
      });
      const okAt = await until("every target OK but worker-node3's lidar", 30_000, async () => {
        const s = samples((await get(supAddress, "/metrics")).body);
        const ok = (target: string, kind: string) =>
          s.get(`sdv_failover_target_state{target="${target}",kind="${kind}",state="OK"}`) === 1;
        return ["node/worker-node1", "node/worker-node2", "node/worker-node3"].every((t) =>
            ok(t, "node")
          ) &&
            ok("sensor/camera-node3", "sensor") &&
            ok("app/lane-detection/worker-node1", "app")
          ? s
          : undefined;
      });

      // 2. The address is taken: a second supervisor fails at once with a clear error.
      const second = watchMain([
        "run",
        "--config",
        cfg,
        "--id",
        "sup-b",
        "--dry-run",
        "--log-format",
        "json",
        "--http-listen",
        supAddress,
      ]);
      assert.equal((await second.exited).code, 1);
      await second.stop();
      const failed = second.lines.find((l: LogLine) => l.event === "http-listen-failed");
      assert.ok(failed, second.lines.map((l) => JSON.stringify(l)).join("\n"));
      assert.match(String(failed.error), new RegExp(`${supAddress}: address already in use`));

      prometheus = await startPrometheus(supAddress, agentAddress);

      // 3. worker-node1 crashes.
      nodes[0].signal("SIGKILL");
      await nodes[0].exited;
      await cp.killNode("worker-node1");
      await sup.waitFor((l) => l.event === "failover-done", 30_000, "failover-done");
      const after = await until("expiries, promotion and fence in /metrics", 30_000, async () => {
        const s = samples((await get(supAddress, "/metrics")).body);
        return (s.get('sdv_failover_expiries_total{kind="node",cause="offline"}') ?? 0) >= 1 &&
            (s.get(
                'sdv_failover_promotions_total{workload="lane-detection",reason="node-offline"}',
              ) ?? 0) >= 1 &&
            (s.get('sdv_failover_fences_total{reason="node-offline"}') ?? 0) >= 1
          ? s
          : undefined;
      });
      assert.equal(after.get("sdv_failover_leader"), 1);
      // the term of the current leadership period (a renew slower than the renew deadline on a
      // loaded machine ends a period and the next one has the next term)
      const current = sup.lines.filter((l) => l.event === "leader").at(-1) ?? elected;
      assert.equal(after.get("sdv_failover_leader_term"), Number(current.term), "the logged term");
      assert.ok(
        after.get(
          'sdv_failover_kube_api_request_duration_seconds_count{verb="patch",resource="nodes"}',
        )! >= 1,
        "the fence's Node patch was timed",
      );
      const messages = (s: Map<string, number>) => s.get("sdv_failover_ingest_messages_total")!;
      assert.ok(messages(okAt) > 0 && messages(after) > messages(okAt), "messages counted");
      assert.equal(
        after.get(
          'sdv_failover_target_state{target="node/worker-node1",kind="node",state="EXPIRED"}',
        ),
        1,
      );

      // 4. promtool accepts both expositions and the shipped rules.
      for (const address of [supAddress, agentAddress]) {
        const body = (await get(address, "/metrics")).body;
        const lint = await promtool(["check", "metrics"], body);
        assert.equal(lint.code, 0, `promtool check metrics (${address}):\n${lint.text}`);
      }
      const agentMetrics = samples((await get(agentAddress, "/metrics")).body);
      assert.equal(
        agentMetrics.get('sdv_failover_agent_sensor_state{sensor="lidar-node3",state="stale"}'),
        1,
      );
      assert.equal(
        agentMetrics.get('sdv_failover_agent_sensor_state{sensor="camera-node3",state="fresh"}'),
        1,
      );
      assert.equal(agentMetrics.get('sdv_failover_agent_status{status="degraded"}'), 1);
      assert.ok(agentMetrics.get("sdv_failover_agent_heartbeats_sent_total")! > 10);
      const rules = await promtool(["check", "rules", RULES]);
      assert.equal(rules.code, 0, rules.text);

      // 5. Every dashboard query returns at least one series.
      const prom = prometheus;
      await until("both targets up in Prometheus", 30_000, async () => {
        const up = await prom.query("up == 1");
        return up.length === 2 ? true : undefined;
      });
      await until("Prometheus scraped the failover", 30_000, async () => {
        const r = await prom.query(`sdv_failover_promotions_total{job="${SUPERVISOR_JOB}"} > 0`);
        return r.length > 0 ? true : undefined;
      });
      const queries = await dashboardQueries();
      assert.ok(queries.length >= 20, `${queries.length} queries`);
      const counts: string[] = [];
      for (const { panel, expr } of queries) {
        const result = await until(`series for ${panel}: ${expr}`, 20_000, async () => {
          const r = await prom.query(expr);
          return r.length > 0 ? r : undefined;
        });
        counts.push(`${result.length} series: ${panel}: ${expr}`);
      }
      console.log(counts.join("\n"));
    } finally {
      if (tickTimer !== undefined) clearInterval(tickTimer);
      await prometheus?.stop();
      await ticker?.endAsync().catch(() => {});
      await sup?.stop();
      await agent?.stop();
      for (const n of nodes) {
        n.signal("SIGKILL");
        await n.exited;
      }
      await broker?.stop();
      await cp?.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
