/** The CLI as a user meets it: exit codes, --help, config errors before anything starts. */
import assert from "node:assert/strict";
import { spawnMain } from "./harness/supervisor_process.ts";

async function run(args: string[]) {
  const out = await spawnMain(args).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: version and --help of every command exit 0", async () => {
  const v = await run(["version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^sdv-failover \d+\.\d+\.\d+/);
  for (const cmd of ["run", "agent", "check", "publish", "demo"]) {
    const h = await run([cmd, "--help"]);
    assert.equal(h.code, 0, `${cmd} --help`);
    assert.match(h.stdout, new RegExp(`Usage: sdv-failover ${cmd}`));
  }
});

Deno.test("cli: usage errors exit 2", async () => {
  assert.equal((await run(["no-such-command"])).code, 2);
  assert.equal((await run(["run"])).code, 2, "missing --config");
  assert.equal((await run(["agent", "--config", "config/example.yaml"])).code, 2, "missing --node");
  assert.equal((await run(["run", "--config", "config/example.yaml", "--bogus"])).code, 2);
});

Deno.test("cli: a broken config exits 2 with file:line:column before anything starts", async () => {
  for (const cmd of [["check"], ["run", "--dry-run"], ["agent", "--node", "worker-node1"]]) {
    const r = await run([...cmd, "--config", "tests/fixtures/broken.yaml"]);
    assert.equal(r.code, 2, cmd.join(" "));
    assert.match(r.stderr, /tests\/fixtures\/broken\.yaml:\d+:\d+ \S+: /);
  }
  const missing = await run(["check", "--config", "does/not/exist.yaml"]);
  assert.equal(missing.code, 2);
});

Deno.test("cli: check prints the FTTI budget of the shipped configs", async () => {
  const r = await run(["check", "--config", "config/fast.yaml"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /lane-detection\s+D\s+100\s+30\s+5\s+25\s+60\s+\+40/);
});

Deno.test("cli: agent with an unknown node exits 2", async () => {
  const r = await run(["agent", "--config", "config/example.yaml", "--node", "worker-node9"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr + r.stdout, /worker-node9/);
});
