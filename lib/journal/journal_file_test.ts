import assert from "node:assert/strict";
import { createLogger } from "../log/log.ts";
import { JournalFile, readJournal, resolveJournalPath } from "./journal_file.ts";
import type { IncidentRecord } from "./record.ts";

function incident(id: string, steps = 3): IncidentRecord {
  return {
    v: 1,
    id,
    startedAt: "2026-03-14T10:15:02.000Z",
    supervisor: { id: "vehicle", term: null },
    trigger: {
      target: "node/worker-node2",
      kind: "node",
      cause: "offline",
      timeoutMs: 150,
      heardFrom: true,
    },
    node: "worker-node2",
    workloads: [],
    asil: null,
    fttiMs: null,
    fttiMet: null,
    budget: { detectionMs: 155, reactionMs: 25 },
    outcome: "converged",
    steps: Array.from({ length: steps }, (_, i) => ({ step: `s${i}`, kind: "kube", tMs: i })),
    stepsDropped: 0,
    endToEndMs: steps - 1,
  };
}

function logSink() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) });
  return { lines, log };
}

Deno.test("resolveJournalPath: state directory default, empty = off, ${STATE_DIRECTORY}/ prefix", () => {
  const env = (value?: string) => (name: string) => name === "STATE_DIRECTORY" ? value : undefined;
  assert.deepEqual(resolveJournalPath(undefined, env("/var/lib/sdv-failover")), {
    path: "/var/lib/sdv-failover/journal.jsonl",
  });
  assert.deepEqual(resolveJournalPath(undefined, env("/var/lib/a:/var/lib/b")), {
    path: "/var/lib/a/journal.jsonl",
  });
  assert.ok("off" in resolveJournalPath(undefined, env()));
  assert.ok("off" in resolveJournalPath("", env("/var/lib/x")));
  assert.deepEqual(resolveJournalPath("${STATE_DIRECTORY}/j.jsonl", env("/s/")), {
    path: "/s/j.jsonl",
  });
  const missing = resolveJournalPath("${STATE_DIRECTORY}/j.jsonl", env());
  assert.ok("error" in missing);
  assert.match(missing.error, /STATE_DIRECTORY is not set/);
  assert.deepEqual(resolveJournalPath("/tmp/j", env()), { path: "/tmp/j" });
});

Deno.test("JournalFile: one line per incident, rotation to .1 keeps the newest, read back in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdv-journal-" });
  try {
    const path = `${dir}/journal.jsonl`;
    const { log } = logSink();
    const oneLine = JSON.stringify(incident("x")).length + 1;
    // room for two incidents per file
    const journal = await JournalFile.open({ path, maxBytes: 2 * oneLine + 10, log });
    for (const id of ["a", "b", "c", "d", "e"]) await journal.append(incident(id));
    assert.equal(journal.stats.written, 5);
    assert.equal(journal.stats.rotations, 2);
    assert.equal(journal.stats.lastLineBytes, oneLine);
    const current = (await Deno.readTextFile(path)).trimEnd().split("\n");
    const previous = (await Deno.readTextFile(`${path}.1`)).trimEnd().split("\n");
    assert.deepEqual(current.map((l) => JSON.parse(l).id), ["e"]);
    assert.deepEqual(previous.map((l) => JSON.parse(l).id), ["c", "d"]);
    assert.ok((await Deno.stat(path)).size <= 2 * oneLine + 10);
    // a garbled line and a line of another schema version are counted and dropped
    await Deno.writeTextFile(path, '{"v":1,"id":\n{"v":2,"id":"z"}\n', { append: true });
    const read = await readJournal(path);
    assert.deepEqual(read.incidents.map((i) => i.id), ["c", "d", "e"]);
    assert.equal(read.malformed, 2);
    // re-opened: the size is taken from the file, the next line rotates
    const again = await JournalFile.open({ path, maxBytes: 2 * oneLine + 10, log });
    await again.append(incident("f"));
    assert.equal(again.stats.rotations, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("JournalFile: an unwritable path fails at open, a later write failure is logged once and never thrown", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdv-journal-" });
  try {
    await assert.rejects(
      JournalFile.open({ path: `${dir}/missing/j.jsonl`, maxBytes: 1 << 20, log: logSink().log }),
      /journal ".*missing\/j\.jsonl" cannot be written: /,
    );
    await assert.rejects(
      JournalFile.open({ path: dir, maxBytes: 1 << 20, log: logSink().log }),
      /cannot be written/,
    );
    const { lines, log } = logSink();
    const path = `${dir}/j.jsonl`;
    const journal = await JournalFile.open({ path, maxBytes: 1 << 20, log });
    // the file is replaced by a directory: every append fails
    await Deno.remove(path);
    await Deno.mkdir(path);
    await journal.append(incident("a"));
    await journal.append(incident("b"));
    await journal.append(incident("c"));
    assert.equal(journal.stats.failed, 3);
    assert.deepEqual(lines.map((l) => l.event), ["journal-write-failed"]);
    assert.equal(lines[0].incident, "a");
    await Deno.remove(path);
    await journal.append(incident("d"));
    assert.deepEqual(lines.map((l) => l.event), [
      "journal-write-failed",
      "journal-write-recovered",
    ]);
    assert.equal(lines[1].lost, 3);
    assert.deepEqual((await readJournal(path)).incidents.map((i) => i.id), ["d"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
