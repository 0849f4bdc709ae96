import assert from "node:assert/strict";
import { renderSvg } from "../plot/svg.ts";
import { crashIncident } from "../../tests/fixtures/incident.ts";
import {
  budgetChecks,
  formatIncident,
  formatIncidentList,
  incidentTimelineSpec,
} from "./report.ts";

Deno.test("formatIncident: steps with t since the last heartbeat and delta, then the budget", () => {
  const text = formatIncident(crashIncident());
  const lines = text.split("\n");
  assert.match(lines[0], /^incident 20260314T101502\.000Z-node-worker-node2: converged$/);
  assert.ok(
    lines.some((l) => /^ {2}trigger +node\/worker-node2 \(offline, timeout 150 ms\)/.test(l)),
  );
  assert.ok(
    lines.some((l) => /pose-estimation .*BLOCKED: standby worker-node3 not healthy/.test(l)),
  );
  const row = (step: string) => lines.find((l) => l.startsWith(step))!.slice(step.length).trim();
  assert.match(row("expiry confirmed (ingest barrier)"), /^22\.0 +2\.0$/);
  assert.match(row("markActive deployment/default/lane-detection-standby"), /^45\.3 +5\.3 +done$/);
  assert.match(row("converged"), /^61\.0 +1\.0$/);
  assert.match(row("last heartbeat: node/worker-node2"), /^0\.0$/, "no delta on the first step");
  assert.match(text, /\ndetection +last heartbeat → expiry confirmed +22\.0 +155 +yes/);
  assert.match(text, /\nreaction +expiry confirmed → last promotion published +1\.5 +25 +yes/);
  assert.match(
    text,
    /\nFTTI lane-detection \(ASIL B\) +last heartbeat → promotion published +23\.5 +500 +yes/,
  );
  assert.match(text, /\nFTTI pose-estimation \(ASIL QM\) +failover blocked: .* +— +1000 +NO/);
});

Deno.test("budgetChecks: a late detection and a slow reaction are not met", () => {
  const record = crashIncident();
  record.steps[2] = { ...record.steps[2], tMs: 170 };
  record.workloads[0] = { ...record.workloads[0], promotionMs: 200 };
  const checks = budgetChecks(record);
  assert.deepEqual(checks.slice(0, 2).map((c) => [c.check, c.measuredMs, c.ok]), [
    ["detection", 170, false],
    ["reaction", 30, false],
  ]);
  const none = budgetChecks(crashIncident({ workloads: [] }));
  assert.deepEqual(
    none.map((c) => [c.check, c.measuredMs, c.ok]),
    [["detection", 22, true]],
    "no promotion: no reaction to check",
  );
});

Deno.test("formatIncidentList: one row per incident with cause, outcome, FTTI met and end-to-end", () => {
  assert.equal(formatIncidentList([]), "(no incidents)");
  const text = formatIncidentList([
    crashIncident(),
    crashIncident({ id: "b", workloads: [], fttiMet: null, outcome: "timeout", endToEndMs: 30150 }),
  ]);
  const [header, a, b] = text.split("\n");
  assert.match(
    header,
    /^id +started \(wall\) +workloads +cause +outcome +FTTI met +end-to-end ms$/,
  );
  assert.match(
    a,
    /lane-detection,pose-estimation +node\/worker-node2 offline +converged +NO +61\.0$/,
  );
  assert.match(
    b,
    /^b +2026-03-14T10:15:02\.000Z +— +node\/worker-node2 offline +timeout +— +30150\.0$/,
  );
});

/** Every element closed in order: a well-formed XML document (without a DOM parser). */
function assertWellFormed(xml: string): void {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([A-Za-z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the open element`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], "every element closed");
}

Deno.test("the timeline renders to a valid SVG with every step's label and the FTTI line", async () => {
  const record = crashIncident();
  const svg = await renderSvg(incidentTimelineSpec(record));
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.ok(svg.trimEnd().endsWith("</svg>"));
  assertWellFormed(svg);
  for (const [i, s] of record.steps.entries()) {
    const n = String(i + 1).padStart(String(record.steps.length).length, "0");
    const label = `${n} ${s.step}`.replace(/&/g, "&amp;").replace(/</g, "&lt;")
      .replace(/>/g, "&gt;");
    assert.ok(svg.includes(`>${label}</text>`), `axis label of step ${i + 1}: ${label}`);
  }
  assert.ok(svg.includes("FTTI 500 ms"), "the FTTI line's label");
  assert.ok(svg.includes("Kubernetes API"), "the legend");
  const noFtti = await renderSvg(
    incidentTimelineSpec(crashIncident({ fttiMs: null, workloads: [] })),
  );
  assert.ok(!noFtti.includes("FTTI 500 ms"));
});
