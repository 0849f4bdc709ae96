import assert from "node:assert/strict";
import { crashIncident } from "../../tests/fixtures/incident.ts";
import { reportCommand, type ReportCommandOptions } from "./report_command.ts";

async function run(opts: Omit<ReportCommandOptions, "write" | "writeError">) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await reportCommand({
    ...opts,
    write: (t) => out.push(t),
    writeError: (t) => err.push(t),
  });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

Deno.test("report: list, --incident, --last with --svg, json; usage and read errors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdv-report-" });
  try {
    const journal = `${dir}/journal.jsonl`;
    const older = crashIncident({ id: "older", outcome: "timeout" });
    await Deno.writeTextFile(`${journal}.1`, JSON.stringify(older) + "\n");
    await Deno.writeTextFile(journal, JSON.stringify(crashIncident()) + "\nnot json\n");
    const list = await run({ journalPath: journal });
    assert.equal(list.code, 0);
    assert.deepEqual(list.out.split("\n").slice(1).map((l) => l.split(" ")[0]), [
      "older",
      "20260314T101502.000Z-node-worker-node2",
    ]);
    assert.match(list.err, /1 line\(s\) of .* not readable, skipped/);
    const listJson = await run({ journalPath: journal, output: "json" });
    assert.deepEqual(JSON.parse(listJson.out).map((s: { outcome: string }) => s.outcome), [
      "timeout",
      "converged",
    ]);
    const one = await run({ journalPath: journal, incident: "older" });
    assert.equal(one.code, 0);
    assert.match(one.out, /^incident older: timeout/);
    const svg = `${dir}/last.svg`;
    const last = await run({ journalPath: journal, last: true, svgPath: svg, output: "json" });
    assert.equal(last.code, 0, last.err);
    const parsed = JSON.parse(last.out);
    assert.equal(parsed.incident.id, "20260314T101502.000Z-node-worker-node2");
    assert.equal(parsed.budget[0].check, "detection");
    assert.match(await Deno.readTextFile(svg), /^<svg[\s\S]*converged<\/text>[\s\S]*<\/svg>$/);
    assert.match(last.err, /timeline written to .*last\.svg \(\d+ bytes, rendered in \d+ ms\)/);
    // usage errors: exit 2
    assert.equal((await run({ journalPath: journal, incident: "x", last: true })).code, 2);
    assert.equal((await run({ journalPath: journal, svgPath: svg })).code, 2);
    const unknown = await run({ journalPath: journal, incident: "nope" });
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /no incident "nope" .* \(2 incident\(s\)/);
    // unreadable journal, empty journal with --last: exit 1
    const missing = await run({ journalPath: `${dir}/missing.jsonl` });
    assert.equal(missing.code, 1);
    assert.match(missing.err, /journal ".*missing\.jsonl" cannot be read/);
    await Deno.writeTextFile(`${dir}/empty.jsonl`, "");
    assert.equal((await run({ journalPath: `${dir}/empty.jsonl`, last: true })).code, 1);
    assert.equal((await run({ journalPath: `${dir}/empty.jsonl` })).out, "(no incidents)");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
