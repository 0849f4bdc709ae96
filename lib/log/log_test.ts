import assert from "node:assert/strict";
import { createLogger, logfmtValue, parseLogfmt } from "./log.ts";

const WALL_MS = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

function capture(format: "json" | "text") {
  const lines: string[] = [];
  const log = createLogger({
    format,
    write: (l) => lines.push(l),
    nowMs: () => 1234.5678,
    wallNowMs: () => WALL_MS,
  }, { role: "supervisor" });
  return { lines, log };
}

Deno.test("log json: time (ISO, ms), tMs, level, msg (and event, for older parsers), fields", () => {
  const { lines, log } = capture("json");
  log.warn("expired", { target: "node/worker-node2", silenceMs: 30.5, gone: undefined });
  const line = JSON.parse(lines[0]);
  assert.equal(line.time, "2026-01-02T03:04:05.678Z");
  assert.equal(line.tMs, 1234.568);
  assert.equal(line.level, "warn");
  assert.equal(line.msg, "expired");
  assert.equal(line.event, "expired");
  assert.equal(line.role, "supervisor");
  assert.equal(line.target, "node/worker-node2");
  assert.equal(line.silenceMs, 30.5);
  assert.ok(!("gone" in line));
  assert.equal(typeof line.wallMs, "number");
  assert.deepEqual(Object.keys(line).slice(0, 6), [
    "time",
    "tMs",
    "wallMs",
    "level",
    "msg",
    "event",
  ]);
});

Deno.test("log: a field named like a header field does not overwrite it", () => {
  const { lines, log } = capture("json");
  log.info("x", { msg: "mine", level: "fake" });
  const line = JSON.parse(lines[0]);
  assert.equal(line.msg, "x");
  assert.equal(line.level, "info");
  assert.equal(line._msg, "mine");
  assert.equal(line._level, "fake");
});

Deno.test("log text: logfmt, values quoted and escaped only when needed", () => {
  const { lines, log } = capture("text");
  log.error("failover-blocked", {
    workload: "lane",
    why: 'standby not ready: pod "x" = pending\nretry',
    count: 3,
    ok: true,
    empty: "",
    sensors: ["cam-front", "cam-rear"],
    nested: { a: 1 },
    skipped: undefined,
  });
  assert.equal(
    lines[0],
    "time=2026-01-02T03:04:05.678Z level=error msg=failover-blocked tMs=1234.568 role=supervisor " +
      'workload=lane why="standby not ready: pod \\"x\\" = pending\\nretry" count=3 ok=true ' +
      'empty="" sensors=cam-front,cam-rear nested="{\\"a\\":1}"',
  );
  const parsed = parseLogfmt(lines[0]);
  assert.equal(parsed.why, 'standby not ready: pod "x" = pending\nretry');
  assert.equal(parsed.msg, "failover-blocked");
  assert.equal(parsed.nested, '{"a":1}');
  assert.equal(parsed.empty, "");
  assert.ok(!("skipped" in parsed));
});

Deno.test("logfmtValue: control characters and backslashes round-trip through parseLogfmt", () => {
  for (const v of ["a\\b", "tab\there", "bell\u0007", "x=y", "plain", "ünïcode", " lead"]) {
    const line = `k=${logfmtValue(v)} z=1`;
    assert.deepEqual(parseLogfmt(line), { k: v, z: "1" }, line);
  }
  assert.equal(logfmtValue("plain"), "plain");
  assert.equal(logfmtValue("bell\u0007"), '"bell\\u0007"');
  assert.equal(logfmtValue(null), "null");
  assert.throws(() => parseLogfmt('k="open'), SyntaxError);
});

Deno.test("log: lines below the level are dropped", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "warn", write: (l) => lines.push(l) });
  log.info("a");
  log.debug("b");
  log.warn("c");
  assert.equal(lines.length, 1);
  assert.match(lines[0], / msg=c /);
});
