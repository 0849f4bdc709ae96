/**
 * The short seeded fault campaign (≈ 50 faults) on real components: mosquitto, the real control
 * plane, the supervisor process and three simulated Jetsons in network namespaces behind their own
 * TCP fault proxies. The oracle must find 0 false, 0 missed, 0 split brain, and the vehicle must
 * converge and be restored after every fault. The full campaign (≥ 500 faults) and the soak run
 * outside CI with `deno task campaign` (results in bench/results/).
 *
 * A second, smaller seeded run in pair mode (two brokers, two supervisors, the pair's faults:
 * `deno task campaign --pair` outside CI) asks the same of the pair's verdicts (docs/campaign.md,
 * "Pair mode"; `CAMPAIGN_PAIR_FAULTS=0` skips it).
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1 or without root (network namespaces, nftables).
 */
import assert from "node:assert/strict";
import { runCampaign, summarize } from "./campaign/campaign.ts";
import { netnsSupported } from "./campaign/netns.ts";
import { CampaignWorld } from "./campaign/world.ts";
import { PAIR_ONLY_KINDS } from "./campaign/faults.ts";

const SKIP = Deno.env.get("SDV_SKIP_CONTROLPLANE") === "1" ||
  Deno.env.get("SDV_SKIP_CAMPAIGN") === "1" || !(await netnsSupported());
const SEED = Number(Deno.env.get("CAMPAIGN_SEED") ?? 20261202);
const FAULTS = Number(Deno.env.get("CAMPAIGN_FAULTS") ?? 50);

Deno.test({
  name: `campaign: ${FAULTS} seeded faults (seed ${SEED}): 0 false, 0 missed, 0 split brain`,
  ignore: SKIP,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-campaign-test-" });
    const lines: string[] = [];
    const log = (line: string) => {
      lines.push(line);
      console.log(`  ${line}`);
    };
    const world = await CampaignWorld.start({ runId: `t${Deno.pid % 1000}`, dir, log });
    try {
      const records = await runCampaign({ world, seed: SEED, faults: FAULTS, log });
      const s = summarize(records);
      Deno.mkdirSync("tests/.results", { recursive: true });
      Deno.writeTextFileSync(
        "tests/.results/campaign-short.json",
        JSON.stringify({ seed: SEED, summary: s, records }, null, 2),
      );
      console.log(
        `campaign: ${s.faults} faults, reaction p50/p99 ${s.reactionMs.p50}/${s.reactionMs.p99} ms`,
      );
      assert.equal(s.faults, FAULTS);
      assert.deepEqual(s.findings, [], "every fault judged ok");
      assert.deepEqual(
        [s.false, s.missed, s.splitBrain, s.notConverged, s.notRestored],
        [0, 0, 0, 0, 0],
      );
      assert.ok(s.reactionMs.n > 0, "some faults called for promotions");
    } finally {
      await world.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

const PAIR_SEED = Number(Deno.env.get("CAMPAIGN_PAIR_SEED") ?? 20261203);
const PAIR_FAULTS = Number(Deno.env.get("CAMPAIGN_PAIR_FAULTS") ?? 30);

Deno.test({
  name:
    `campaign pair mode: ${PAIR_FAULTS} seeded faults (seed ${PAIR_SEED}): 0 false, 0 missed, 0 split brain`,
  ignore: SKIP || PAIR_FAULTS === 0,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "sdv-campaign-pair-test-" });
    const log = (line: string) => console.log(`  ${line}`);
    const world = await CampaignWorld.start({
      runId: `tp${Deno.pid % 1000}`,
      dir,
      log,
      pair: true,
    });
    try {
      const records = await runCampaign({ world, seed: PAIR_SEED, faults: PAIR_FAULTS, log });
      const s = summarize(records);
      Deno.mkdirSync("tests/.results", { recursive: true });
      Deno.writeTextFileSync(
        "tests/.results/campaign-pair-short.json",
        JSON.stringify({ seed: PAIR_SEED, summary: s, records }, null, 2),
      );
      console.log(
        `campaign pair: ${s.faults} faults, reaction p50/p99 ${s.reactionMs.p50}/${s.reactionMs.p99} ` +
          `ms, takeover p50/max ${s.pair?.takeoverMs.p50}/${s.pair?.takeoverMs.max} ms`,
      );
      assert.equal(s.faults, PAIR_FAULTS);
      assert.deepEqual(s.findings, [], "every fault judged ok");
      assert.deepEqual(
        [s.false, s.missed, s.splitBrain, s.notConverged, s.notRestored],
        [0, 0, 0, 0, 0],
      );
      assert.ok(
        records.filter((r) => PAIR_ONLY_KINDS.includes(r.fault.kind)).length >= PAIR_FAULTS / 4,
        "the pair's faults were drawn",
      );
      assert.ok(s.pair!.takeoverMs.n > 0, "a leader was lost and taken over");
    } finally {
      await world.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
