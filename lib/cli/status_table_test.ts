import assert from "node:assert/strict";
import { crashedSnapshot } from "../../tests/fixtures/status_snapshot.ts";
import {
  formatAgeMs,
  renderStatusJson,
  renderStatusTables,
  renderTable,
  type StatusView,
} from "./status_table.ts";

Deno.test("formatAgeMs: ms, s, minutes, hours, never", () => {
  assert.equal(formatAgeMs(null), "never");
  assert.equal(formatAgeMs(12.4), "12 ms");
  assert.equal(formatAgeMs(1432), "1.4 s");
  assert.equal(formatAgeMs(75_300), "1m15s");
  assert.equal(formatAgeMs(3 * 3600_000 + 65_000), "3h01m");
});

Deno.test("renderTable: columns padded to the widest cell, two spaces apart, no trailing blanks", () => {
  assert.equal(
    renderTable(["A", "BB", "C"], [["long-name", "x", ""], ["s", "yyyy", "z"]]),
    "A          BB    C\nlong-name  x\ns          yyyy  z",
  );
});

Deno.test("renderStatusTables: a crashed node's tables, the leader mark and an offline supervisor", () => {
  const leader = crashedSnapshot("sup-a");
  leader.supervisor.role = "leader";
  leader.supervisor.term = 4;
  const views: StatusView[] = [
    { id: "sup-a", status: "online", snapshot: leader },
    { id: "sup-b", status: "offline", snapshot: null },
  ];
  const text = renderStatusTables(views);
  const lines = text.split("\n");
  assert.equal(
    lines[0],
    "supervisor sup-a: LEADER (term 4), running, armed, ingest ok, up 1m15s — state as of " +
      "2025-06-01T10:00:00.000Z",
  );
  const nodeHeader = lines.indexOf("NODE          STATE    HEARTBEAT AGE  FENCE   WHY");
  assert.ok(nodeHeader > 0, text);
  assert.equal(lines[nodeHeader + 1], "worker-node2  EXPIRED  1.4 s          fenced  node-offline");
  assert.equal(lines[nodeHeader + 2], "worker-node3  OK       12 ms          -");
  assert.ok(lines.includes("camera-node2  worker-node2  EXPIRED  1.4 s"), text);
  assert.ok(lines.includes("lane-detection  worker-node3  standby  OK     8 ms"), text);
  assert.ok(
    lines.includes(
      "lane-detection  B     500 ms  worker-node3  worker-node2  1      " +
        "node-offline at 2025-06-01T09:59:58.600Z",
    ),
    text,
  );
  assert.equal(lines.at(-2), "supervisor sup-b: OFFLINE, no state received");
  assert.ok(!text.includes("\x1b["), "no color unless asked");
  assert.ok(renderStatusTables(views, { color: true }).includes("\x1b[31mEXPIRED\x1b[0m"));
});

Deno.test("renderStatusTables: a fence waiting for confirmation, a standby, an ingest fault", () => {
  const s = crashedSnapshot();
  s.nodes[0].fence = "pending";
  s.nodes[0].fenceReason = null;
  s.supervisor.role = "standby";
  s.supervisor.ingestFaulted = true;
  const text = renderStatusTables([{ id: "sup", status: "offline", snapshot: s }]);
  assert.match(text, /^supervisor sup: OFFLINE, standby, running, armed, INGEST FAULT/);
  assert.match(text, /last state as of 2025-06-01T10:00:00.000Z/);
  assert.match(text, /worker-node2 +EXPIRED +1\.4 s +pending +expiry suspect/);
});

Deno.test("renderStatusJson: one line, the views with their snapshots", () => {
  const views: StatusView[] = [{ id: "sup", status: "online", snapshot: crashedSnapshot() }];
  const json = renderStatusJson(views);
  assert.equal(json.split("\n").length, 2, "one line and its newline");
  assert.deepEqual(JSON.parse(json), views);
});
