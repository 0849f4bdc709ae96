/**
 * For every goal the run did not meet, what bounds it — stated with measurements of the same run
 * (per-action API times, the API write probe, CPU of the runtime/broker/publisher, floors).
 *
 * @module
 */
import type { BenchResults, Sample } from "./results.ts";
import { summarize } from "./stats.ts";
import { fmtMs, select } from "./summary.ts";

const p = (xs: (number | undefined)[]) => {
  const s = summarize(xs);
  return s ? `p50 ${fmtMs(s.p50)} / p99 ${fmtMs(s.p99)}` : "—";
};

/** Fills `bound` of each unmet goal. */
export function explainBounds(results: BenchResults): void {
  const fast = select(results.samples, "ours-fast");
  const load = results.load;
  const h = load?.headline;
  const phase = results.phases.find((x) => x.name === "load");
  for (const g of results.goals) {
    if (g.met !== false) continue;
    if (g.goal.startsWith("expiry → promotion received")) {
      const inRuntime = fast.map((s) => s.expiryToPromotionSentMs);
      const broker = fast.map((s) =>
        s.expiryToPromotionReceivedMs !== undefined && s.expiryToPromotionSentMs !== undefined
          ? s.expiryToPromotionReceivedMs - s.expiryToPromotionSentMs
          : undefined
      );
      g.bound = `inside the runtime (expiry → publish call returned) ${p(inRuntime)}; ` +
        `publish → subscriber via mosquitto ${p(broker)}. Each repetition is a fresh process, ` +
        `so the failover path runs cold (first execution, unoptimised) — as it would in the field.`;
    } else if (g.goal.startsWith("expiry → all API actions")) {
      const actions = new Set(fast.flatMap((s) => Object.keys(s.actionMs ?? {})));
      const per = [...actions].sort().map((a) => `${a} ${p(fast.map((s) => s.actionMs?.[a]))}`);
      const probe = results.apiProbe;
      g.bound = `per action, from the start of its plan: ${per.join("; ")}. ` +
        (probe
          ? `The API server's own write latency on this machine (kine/SQLite, one kept-alive ` +
            `connection): one merge-patch ${
              probe.sequential
                ? `p50 ${fmtMs(probe.sequential.p50)} / p99 ${fmtMs(probe.sequential.p99)}`
                : "—"
            }; ${probe.concurrency} concurrent ${
              probe.concurrentRound
                ? `p50 ${fmtMs(probe.concurrentRound.p50)} / p99 ${
                  fmtMs(probe.concurrentRound.p99)
                }`
                : "—"
            }. The reconciler reads from its watch-backed cache and issues writes only, but the ` +
            `pod deletions wait for the node's fence (fence before delete) and every write is ` +
            `a SQLite commit, serialized with the scheduler's, the ReplicaSet controller's and ` +
            `kwok's writes.`
          : "");
    } else if (g.goal.startsWith("fault → promotion received")) {
      g.bound = `fault → detection ${p(fast.map((s) => s.faultToDetectionMs))} (a 30 ms timeout ` +
        `from the last heartbeat, which is 0–10 ms before the fault, plus lateness) + expiry → ` +
        `promotion received ${p(fast.map((s) => s.expiryToPromotionReceivedMs))}.`;
    } else if (g.goal.startsWith("fault → replacement Running")) {
      const sched = fast.map((s: Sample) =>
        s.faultToReplacementRunningMs !== undefined && s.faultToActionsMs !== undefined
          ? s.faultToReplacementRunningMs - s.faultToActionsMs
          : undefined
      );
      g.bound = `fault → API actions ${p(fast.map((s) => s.faultToActionsMs))}; then ` +
        `ReplicaSet → scheduler → kwok Running ${p(sched)}.`;
    } else if (h && (g.goal.startsWith("detection lateness") || g.goal.startsWith("ingest"))) {
      const worst = [...(load?.search ?? [])].filter((r) => r.deadlinesMissed > 0)
        .sort((a, b) => a.targets - b.targets)[0];
      g.bound =
        `at ${h.targets} targets the runtime used ${h.cpuPercent.toFixed(0)} % of a core, ` +
        `mosquitto ${h.brokerCpuPercent?.toFixed(0) ?? "?"} %, the load publisher ` +
        `${h.publisherCpuPercent?.toFixed(0) ?? "?"} % of a core (the machine's 2 cores were ${
          phase?.cpuBusyPercent ?? "?"
        } % busy over the load phase, ${phase?.foreignCpuPercent ?? "?"} % by other work); ` +
        `sent ${Math.round(h.sentPerS)} /s, received ${Math.round(h.ingestPerS)} /s` +
        (h.ingestPerS < h.sentPerS * 0.99
          ? " — mosquitto drops QoS 0 messages for a subscriber that falls behind, and a " +
            "dropped heartbeat is a missed deadline"
          : "") +
        `; the watchdog's largest timer lateness was ${fmtMs(h.maxTimerLatenessMs)} ` +
        `(${h.lagEvents ?? "?"} firings later than the 5 ms tolerance). The largest count with ` +
        `no deadline missed was ${load?.maxTargetsNoMiss ?? "not found"}` +
        (worst
          ? `; at ${worst.targets} targets ${worst.deadlinesMissed} deadlines were missed with the ` +
            `runtime at ${worst.cpuPercent.toFixed(0)} % of a core and mosquitto at ${
              worst.brokerCpuPercent?.toFixed(0) ?? "?"
            } % (sent ${Math.round(worst.sentPerS)} /s, received ${
              Math.round(worst.ingestPerS)
            } /s).`
          : ".");
    } else if (h && g.goal.startsWith("runtime RSS")) {
      g.bound = load?.floor
        ? `the runtime (\`run --dry-run\`) with ${load.floor.targets} targets already holds ` +
          `${load.floor.rssMaxMb.toFixed(1)} MB; an idle Deno holds ${
            load.rssFloorMb?.deno?.toFixed(1) ?? "?"
          } MB, with npm:mqtt imported ${load.rssFloorMb?.denoWithMqtt?.toFixed(1) ?? "?"} MB ` +
          `(measured in this run); ${h.targets} targets add ${
            (h.rssMaxMb - load.floor.rssMaxMb).toFixed(1)
          } MB.`
        : "no floor measured";
    } else if (h && g.goal.startsWith("start → all watchdogs armed")) {
      g.bound = `Deno's own start-up (spawn → first output of \`deno eval\`) takes ` +
        `${fmtMs(load?.denoStartupMs)}; with ${
          load?.floor?.targets ?? "few"
        } targets the runtime ` +
        `is armed ${fmtMs(load?.floor?.spawnToArmedMs)} after spawn; at ${h.targets} targets ` +
        `${fmtMs(h.spawnToArmedMs)} (${fmtMs(h.processArmedMs)} on its own clock, i.e. module ` +
        `loading, config parsing, MQTT connect and one SUBSCRIBE of ${h.targets} topics).`;
    }
  }
}
