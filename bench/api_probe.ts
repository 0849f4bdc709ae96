/**
 * The API server's write latency on this machine, as a floor for "expiry → all API actions
 * acknowledged": merge-patches of Deployment annotations over one kept-alive connection, first one
 * at a time, then in rounds of concurrent writes as a failover issues them (two workloads × mark
 * active + mark failed + delete pods, and the node fence). Each write is a kine (SQLite) commit.
 *
 * @module
 */
import type { KubeApi } from "./kube_api.ts";
import type { Summary } from "./stats.ts";
import { summarize } from "./stats.ts";

/** Result of {@linkcode probeApiWrites}. */
export interface ApiProbe {
  /** One merge-patch at a time, ms. */
  sequential: Summary | undefined;
  /** A round of `concurrency` patches issued together: time until the last is acknowledged. */
  concurrentRound: Summary | undefined;
  concurrency: number;
}

/** Runs the probe in `namespace` (created, with `concurrency` Deployments). */
export async function probeApiWrites(
  api: KubeApi,
  namespace: string,
  opts: { sequential?: number; rounds?: number; concurrency?: number } = {},
): Promise<ApiProbe> {
  const concurrency = opts.concurrency ?? 5;
  await api.post("/api/v1/namespaces", { metadata: { name: namespace } });
  const names = Array.from({ length: concurrency }, (_, i) => `probe-${i}`);
  for (const name of names) {
    await api.post(`/apis/apps/v1/namespaces/${namespace}/deployments`, {
      metadata: { name },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: { containers: [{ name: "c", image: "registry.local/probe:1" }] },
        },
      },
    });
  }
  let n = 0;
  const patch = (name: string) =>
    api.patch(`/apis/apps/v1/namespaces/${namespace}/deployments/${name}`, {
      metadata: { annotations: { "bench.sdv/probe": String(++n) } },
    });
  const seq: number[] = [];
  for (let i = 0; i < (opts.sequential ?? 50); i++) {
    const t = performance.now();
    await patch(names[0]);
    seq.push(performance.now() - t);
  }
  const rounds: number[] = [];
  for (let i = 0; i < (opts.rounds ?? 30); i++) {
    const t = performance.now();
    await Promise.all(names.map(patch));
    rounds.push(performance.now() - t);
  }
  await api.request("DELETE", `/apis/apps/v1/namespaces/${namespace}/deployments`).catch(() => {});
  return { sequential: summarize(seq), concurrentRound: summarize(rounds), concurrency };
}
