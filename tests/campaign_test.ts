/**
 * The short seeded fault campaign (≈ 50 faults) on real components: mosquitto, the real control
 * plane, the supervisor process and three simulated Jetsons in network namespaces behind their own
 * TCP fault proxies. The oracle must find 0 false, 0 missed, 0 split brain, and the vehicle must
 * converge and be restored after every fault. The full campaign (≥ 500 faults) and the soak run
 * outside CI with `deno task campaign` (results in bench/results/).
 *
 * Skipped when SDV_SKIP_CONTROLPLANE=1 or without root (network namespaces, nftables).
 */
import assert from "node:assert/strict";
import { runCampaign, summarize } from "./campaign/campaign.ts";
import { netnsSupported } from "./campaign/netns.ts";
import { CampaignWorld } from "./campaign/world.ts";

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
