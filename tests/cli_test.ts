/** The CLI as a user meets it: exit codes, --help, config errors before anything starts. */
import assert from "node:assert/strict";
import { spawnMain } from "./harness/supervisor_process.ts";

async function run(args: string[]) {
  return await runWith(args, {});
}

async function runWith(args: string[], env: Record<string, string>) {
  const out = await spawnMain(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `main.ts <args> > path` (the shell redirects; the program keeps its run permissions). */
async function runToFile(args: string[], path: string, perms = ["--allow-all"]) {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const out = await new Deno.Command("sh", {
    args: [
      "-c",
      'f=$1; shift; exec "$@" > "$f"',
      "sh",
      path,
      Deno.execPath(),
      "run",
      ...perms,
      main,
      ...args,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("cli: version and --help of every command exit 0", async () => {
  const v = await run(["version"]);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^sdv-failover \d+\.\d+\.\d+/);
  for (const cmd of ["run", "agent", "check", "publish", "demo", "cluster-identity", "report"]) {
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
  assert.equal((await run(["cluster-identity", "--out", "x"])).code, 2, "missing --kubeconfig");
  assert.equal((await run(["report"])).code, 2, "missing --journal");
  assert.equal((await run(["report", "--journal", "j", "-o", "xml"])).code, 2, "bad --output");
  const duration = await run([
    "cluster-identity",
    "--kubeconfig",
    "admin.yaml",
    "--out",
    "x",
    "--duration",
    "1y",
  ]);
  assert.equal(duration.code, 2, "bad --duration");
  assert.match(duration.stderr, /--duration: invalid duration "1y"/);
  // --out - onto a file others can read: refused before the admin kubeconfig is even read.
  const shared = await Deno.makeTempFile();
  try {
    await Deno.chmod(shared, 0o644);
    const out = await runToFile(
      ["cluster-identity", "--kubeconfig", "does/not/exist.yaml", "--out", "-"],
      shared,
    );
    assert.equal(out.code, 2);
    assert.match(out.stderr, /refusing to write the token to a file others can read/);
    assert.equal(await Deno.readTextFile(shared), "");
    // With the runtime's own permissions /proc/self/fd is out of reach: warned, not judged.
    const unjudged = await runToFile(
      ["cluster-identity", "--kubeconfig", "does/not/exist.yaml", "--out", "-"],
      shared,
      ["--allow-net", "--allow-read", "--allow-env", "--allow-sys"],
    );
    assert.match(unjudged.stderr, /cannot check where standard output goes/);
    assert.equal(unjudged.code, 1, "then the missing admin kubeconfig");
  } finally {
    await Deno.remove(shared);
  }
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

Deno.test("cli: limits.yaml (names, topics, URL, timers) exits 2 for check, run and agent", async () => {
  const file = "tests/fixtures/limits.yaml";
  const expected = [
    `${file}:5:17 supervisor.bootWindowMs: must be at most 3600000 ms (1 h)`,
    `${file}:7:8 mqtt.url: must not contain credentials`,
    `${file}:8:16 mqtt.topicPrefix: starts with "$"`,
    `${file}:12:25 nodes[0].heartbeatTimeoutMs: must be at most 3600000 ms`,
    `${file}:13:18 nodes[0].statusTopic: contains U+0000`,
    `${file}:17:21 nodes[1].heartbeatTopic: has an empty topic level`,
  ];
  const check = await run(["check", "--config", file]);
  assert.equal(check.code, 2);
  assert.equal(check.stdout, "");
  const lines = check.stderr.trim().split("\n");
  assert.equal(lines.length, expected.length + 1, check.stderr);
  expected.forEach((start, i) => assert.ok(lines[i].startsWith(start), lines[i]));
  assert.equal(lines.at(-1), `${file}: 6 problems`);
  for (const cmd of [["run", "--dry-run"], ["run"], ["agent", "--node", "worker-node1"]]) {
    const r = await run([...cmd, "--config", file]);
    assert.equal(r.code, 2, cmd.join(" "));
    assert.match(r.stderr, /limits\.yaml:7:8 mqtt\.url: must not contain credentials/);
    assert.doesNotMatch(r.stderr + r.stdout, /hunter2/);
  }
  assert.doesNotMatch(check.stderr, /hunter2/);
});

Deno.test("cli: a missing file or variable the config names exits 2, not 1", async () => {
  const file = "tests/fixtures/needs_files.yaml";
  const user =
    `${file}:9:16 mqtt.usernameEnv: the environment variable SDV_TEST_MQTT_USER is not set`;
  const kube = `${file}:12:15 cluster.kubeconfig: the kubeconfig ` +
    `"tests/fixtures/no-such-kubeconfig.yaml" cannot be used: it does not exist`;
  for (const cmd of [["check"], ["run", "--dry-run"], ["agent", "--node", "worker-node1"]]) {
    const r = await run([...cmd, "--config", file]);
    assert.equal(r.code, 2, cmd.join(" "));
    assert.ok(r.stderr.includes(user), r.stderr);
    assert.ok(!r.stderr.includes("cluster.kubeconfig"), r.stderr); // not needed by these
  }
  const withUser = { SDV_TEST_MQTT_USER: "sdv" };
  const check = await runWith(["check", "--config", file], withUser);
  assert.equal(check.code, 0, check.stderr);
  for (const cmd of [["check", "--supervisor"], ["run"]]) {
    const r = await runWith([...cmd, "--config", file], withUser);
    assert.equal(r.code, 2, cmd.join(" "));
    assert.ok(r.stderr.includes(kube), r.stderr);
  }
});

Deno.test("cli: a malformed --http-listen exits 2 before anything starts, for run and agent", async () => {
  for (
    const args of [
      ["run", "--config", "config/example.yaml", "--dry-run"],
      ["agent", "--config", "config/example.yaml", "--node", "worker-node2"],
    ]
  ) {
    const r = await run([...args, "--http-listen", "127.0.0.1"]);
    assert.equal(r.code, 2, args[0]);
    assert.match(r.stderr, /^--http-listen: must be HOST:PORT .*: no port$/m, args[0]);
  }
});
