/**
 * The supervisor pair's two sides partitioned from each other, on real components (issue 10):
 * two mosquitto brokers, the real control plane, the two supervisors (`supervisor.pair`, each its
 * own `run --id` process under the runtime's least-privilege identity) and three simulated Jetsons
 * in network namespaces, each reaching each broker through a fault proxy of its own — the
 * campaign's pair world (`tests/campaign/world.ts`). Side A is sup-a with broker A, side B sup-b
 * with broker B; nftables cuts sup-a's path to broker B and sup-b's to broker A (`port_cut.ts`).
 * The nodes reach both brokers and both supervisors reach the API server throughout.
 *
 * 1. The sides partitioned, nothing else: each supervisor still hears every node through its own
 *    broker — no expiry, no ingest fault, no promotion; the leader stays.
 * 2. The sides partitioned while a node crashes: failed over exactly once (one decision per
 *    workload, by the leader; the promotion reaches the agents through the leader's broker).
 *
 * Asserted from both processes' logs and the Lease, sampled every 50 ms during the run: never two
 * actives (leadership periods disjoint, one Lease holder, the one that leads by the logs), no
 * epoch decided twice, epochs strictly increasing; and the campaign oracle's verdict of each
 * fault (false 0, missed 0, split brain 0, converged, restored).
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1 or SDV_SKIP_CAMPAIGN=1, or without root, `ip netns`, `nft`.
 */
import assert from "node:assert/strict";
import { newOracle, runOneFault } from "./campaign/campaign.ts";
import { netnsSupported } from "./campaign/netns.ts";
import { CampaignWorld, sleep, wallNowMs } from "./campaign/world.ts";

const SKIP = Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1" ||
  Deno.env.get("SDV_SKIP_CAMPAIGN") === "1" || !(await netnsSupported());

Deno.test({
  name: "supervisor pair partitioned from each other: never two actives, a crash failed over once",
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-pair-partition-" });
    const log = (line: string) => console.log(`  ${line}`);
    const world = await CampaignWorld.start({
      runId: `pp${Deno.pid % 1000}`,
      dir,
      log,
      pair: true,
    });
    // the Lease holder, sampled all along
    const holders: { wallMs: number; holder: string | undefined }[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        holders.push({ wallMs: wallNowMs(), holder: await world.leaseHolder().catch(() => "?") });
        await sleep(50);
      }
    })();
    try {
      const oracle = newOracle();
      const leader = world.leaderId();
      assert.ok(leader !== undefined, "one leader at the start");
      const judged = (r: Awaited<ReturnType<typeof runOneFault>>) => {
        const v = r.verdict;
        assert.deepEqual(
          [v.falseActions, v.missed, v.splitBrain, v.notConverged, v.notRestored, v.error],
          [[], [], [], undefined, undefined, undefined],
          JSON.stringify(r),
        );
      };

      await t.step("the sides partitioned: nothing happens, the leader stays", async () => {
        const before = world.promotions.length;
        const droppedBefore = await world.droppedPackets();
        const r = await runOneFault(world, oracle, {
          seq: 1,
          kind: "supervisor-partition",
          scope: "sides",
          durationMs: 3000,
        }, log);
        judged(r);
        assert.equal(world.promotions.length, before, "no promotion");
        assert.equal(world.leaderId(), leader, "the leader stays");
        // the cut was real: nftables dropped the supervisors' traffic with the other side's broker
        assert.ok(await world.droppedPackets() > droppedBefore, "packets dropped by the cut");
      });

      await t.step(
        "the sides partitioned while a node crashes: failed over exactly once",
        async () => {
          const sentBefore = world.allLines().flatMap((s) =>
            s.lines.filter((l) => l.event === "promotion-sent")
          ).length;
          const observedBefore = world.promotions.length;
          const r = await runOneFault(world, oracle, {
            seq: 2,
            kind: "supervisor-partition-crash",
            scope: "sides",
            node: "worker-node2",
            delayMs: 100,
          }, log);
          judged(r);
          // lane-detection and pose-estimation are active on worker-node2 in a fresh vehicle
          assert.deepEqual(r.expected.promote, {
            "lane-detection": "worker-node3",
            "pose-estimation": "worker-node3",
          });
          const sent = world.allLines().flatMap((s) =>
            s.lines.filter((l) => l.event === "promotion-sent").map((l) => ({
              workload: String(l.workload),
              by: s.label,
            }))
          ).slice(sentBefore);
          assert.deepEqual(
            sent.map((l) => l.workload).sort(),
            Object.keys(r.expected.promote).sort(),
            "one decision per workload",
          );
          assert.ok(sent.every((l) => l.by.startsWith(`${leader}#`)), "all by the leader");
          const observed = world.promotions.slice(observedBefore);
          assert.deepEqual(
            observed.map((p) => p.workload).sort(),
            Object.keys(r.expected.promote).sort(),
            "one promotion per workload on the bus",
          );
          assert.equal(world.leaderId(), leader, "the leader stays");
        },
      );

      // never two actives, over the whole run
      sampling = false;
      await sampler;
      const obs = world.pairObservation(0, leader, world.lastElectedId());
      const periods = [...obs.leadership].sort((a, b) => a.fromWallMs - b.fromWallMs);
      for (let i = 1; i < periods.length; i++) {
        const [a, b] = [periods[i - 1], periods[i]];
        assert.ok(
          a.supervisor === b.supervisor || a.toWallMs <= b.fromWallMs,
          `${a.supervisor} and ${b.supervisor} led at once: ${JSON.stringify([a, b])}`,
        );
      }
      const identities = new Set(holders.map((h) => h.holder).filter((h) => h !== undefined));
      assert.ok(holders.length > 20, `the Lease was sampled (${holders.length})`);
      assert.deepEqual(
        [...identities].map((h) => h!.split("/")[0]),
        [leader],
        `one Lease holder throughout: ${[...identities]}`,
      );
      const byWorkload = new Map<string, { epoch: number; node: string }[]>();
      for (const p of obs.promotionsSent) {
        const list = byWorkload.get(p.workload) ?? [];
        list.push({ epoch: p.epoch, node: p.activeNode });
        byWorkload.set(p.workload, list);
      }
      for (const [w, list] of byWorkload) {
        for (let i = 1; i < list.length; i++) {
          assert.ok(list[i].epoch > list[i - 1].epoch, `${w}: epochs ${JSON.stringify(list)}`);
        }
      }
      console.log(
        `pair partition: leader ${leader}, Lease sampled ${holders.length} times, one holder; ` +
          `leadership periods ${periods.length}; decided ${obs.promotionsSent.length} promotions`,
      );
    } finally {
      sampling = false;
      await sampler;
      await world.stop();
      for (const i of world.instances) {
        Deno.writeTextFileSync(
          `${dir}/${i.label.replace("#", "-")}.log`,
          i.proc.lines.map((l) => JSON.stringify(l)).join("\n") + "\n",
        );
      }
      console.log(`pair partition logs: ${dir}`);
    }
  },
});
