import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  CHECK_INVALID,
  CHECK_OK,
  checkCommand,
  type CheckCommandOptions,
} from "./check_command.ts";
import type { EnvironmentAccess } from "../config/environment.ts";

const here = (relative: string) => fileURLToPath(new URL(relative, import.meta.url));
const EXAMPLE = here("../../config/example.yaml");
const FAST = here("../../config/fast.yaml");
const BROKEN = here("../../tests/fixtures/broken.yaml");

async function run(configPath: string, more: Partial<CheckCommandOptions> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await checkCommand({
    ...more,
    configPath,
    out: (l) => out.push(l),
    err: (l) => err.push(l),
  });
  return { code, out, err };
}

Deno.test("check example.yaml: 0, a summary and the budget table", async () => {
  const { code, out, err } = await run(EXAMPLE);
  assert.equal(code, CHECK_OK);
  assert.equal(code, 0);
  assert.deepEqual(err, []);
  assert.equal(out[0], `${EXAMPLE}: OK (3 nodes, 5 sensors, 2 workloads)`);
  assert.match(out[2], /^FTTI budgets \(ISO 26262-1:2018: FDTI \+ FRTI ≤ FTTI/);
  assert.match(out[3], /^workload +asil +ftti ms/);
  assert.match(out[4], /^lane-detection +B +500 +300 +5 +25 +330 +\+170 /);
  assert.match(out[5], /^pose-estimation +QM +1000 +300 +5 +25 +330 +\+670 /);
  assert.match(out[6], /end of the boot window, 120000 ms \(supervisor\.bootWindowMs\)\.$/);
  assert.equal(out.length, 7);
});

Deno.test("check fast.yaml: 0, lane-detection fits 100 ms with 40 ms to spare", async () => {
  const { code, out } = await run(FAST);
  assert.equal(code, 0);
  assert.match(out.find((l) => l.startsWith("lane-detection"))!, / D +100 +30 +5 +25 +60 +\+40 /);
});

Deno.test("check broken.yaml: 2, every issue as FILE:LINE:COL PATH: MESSAGE on err", async () => {
  const { code, out, err } = await run(BROKEN);
  assert.equal(code, CHECK_INVALID);
  assert.equal(code, 2);
  assert.deepEqual(out, []);
  assert.equal(err.length, 15);
  for (const line of err.slice(0, -1)) {
    assert.ok(line.startsWith(`${BROKEN}:`), line);
    assert.match(line.slice(BROKEN.length), /^:\d+:\d+ [\w.[\]]+: \S/);
  }
  assert.equal(
    err[0],
    `${BROKEN}:5:21 supervisor.recoveryWindowMs: recoveryWindowMs 20 is shorter than the ` +
      "largest period, 100 ms (sensors[2].periodMs): a recovering target could not send even one " +
      "heartbeat within the window",
  );
  assert.ok(err.includes(
    `${BROKEN}:13:5 nodes[1].heartbeatTimeoutMs: missing required key ` +
      `"heartbeatTimeoutMs" (expected number)`,
  ));
  assert.equal(err[14], `${BROKEN}: 14 problems`);
});

Deno.test("an FTTI violation alone makes check return 2", async () => {
  const text = (await Deno.readTextFile(FAST)).replace("fttiMs: 100", "fttiMs: 59");
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(path, text);
    const { code, out, err } = await run(path);
    assert.equal(code, 2);
    assert.deepEqual(out, []);
    assert.equal(err.length, 2);
    // 30 + 5 + 25 = 60 > 59
    assert.match(
      err[0],
      /^.*:\d+:13 workloads\[0\]\.fttiMs: FTTI budget exceeded by 1 ms: detection 30 ms/,
    );
    assert.match(err[0], /= 60 ms > fttiMs 59/);
    assert.equal(err[1], `${path}: 1 problem`);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("a missing file makes check return 2, not throw or exit", async () => {
  const path = here("./no-such-config.yaml");
  const { code, err } = await run(path);
  assert.equal(code, 2);
  assert.match(err[0], new RegExp(`^${path.replaceAll(".", "\\.")}:1:1 \\(root\\): cannot read`));
});

Deno.test("check with needs.kubeconfig: a missing kubeconfig is a problem at its line:column", async () => {
  const missing: EnvironmentAccess = {
    stat: (path) => Promise.reject(new Deno.errors.NotFound(path)),
    openForReading: () => Promise.resolve(),
    getEnv: (name) =>
      name === "CREDENTIALS_DIRECTORY"
        ? "/run/credentials/sdv-failover-supervisor.service"
        : undefined,
  };
  // example.yaml names ${CREDENTIALS_DIRECTORY}/kubeconfig (its line found below); agents and
  // dry runs do not need it.
  const kubeconfigLine = (await Deno.readTextFile(EXAMPLE)).split("\n")
    .findIndex((l) => l.startsWith("  kubeconfig: ${CREDENTIALS_DIRECTORY}/kubeconfig")) + 1;
  assert.ok(kubeconfigLine > 0, "example.yaml names the unit's kubeconfig credential");
  assert.equal((await run(EXAMPLE, { environment: missing })).code, CHECK_OK);
  const { code, out, err } = await run(EXAMPLE, {
    environment: missing,
    needs: { kubeconfig: true },
  });
  assert.equal(code, CHECK_INVALID);
  assert.deepEqual(out, []);
  assert.match(
    err[0],
    new RegExp(
      `example\\.yaml:${kubeconfigLine}:15 cluster\\.kubeconfig: the kubeconfig ` +
        `"\\$\\{CREDENTIALS_DIRECTORY\\}/kubeconfig" ` +
        `\\(/run/credentials/sdv-failover-supervisor\\.service/kubeconfig\\) cannot be used: ` +
        `it does not exist; `,
    ),
  );
  assert.equal(err[1], `${EXAMPLE}: 1 problem`);
  const present: EnvironmentAccess = {
    ...missing,
    stat: () => Promise.resolve({ isFile: true, isDirectory: false }),
  };
  const ok = await run(EXAMPLE, { environment: present, needs: { kubeconfig: true } });
  assert.equal(ok.code, CHECK_OK);
});

Deno.test("check a pair: the takeover added to each budget, a warning when it exceeds the FTTI", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = await Deno.readTextFile(EXAMPLE);
    const withPair = (timing: string) =>
      text.replace(/^supervisor:\n/m, `supervisor:\n  pair:\n    ids: [sup-a, sup-b]\n${timing}`);
    // defaults 250 / 150 / 30: 330 + 430 > 500 for lane-detection, ≤ 1000 for pose-estimation
    await Deno.writeTextFile(`${dir}/default.yaml`, withPair(""));
    const slow = await run(`${dir}/default.yaml`);
    assert.equal(slow.code, 0, slow.err.join("\n"));
    assert.ok(slow.out.some((l) => /= 250 \+ 30 \+ 150 = 430 ms/.test(l)), slow.out.join("\n"));
    assert.ok(
      slow.out.includes(
        "  lane-detection: 330 + takeover 430 = 760 ms > FTTI 500 ms (short by 260 ms)",
      ),
      slow.out.join("\n"),
    );
    assert.ok(
      slow.out.includes(
        "  pose-estimation: 330 + takeover 430 = 760 ms ≤ FTTI 1000 ms (margin 240 ms)",
      ),
      slow.out.join("\n"),
    );
    assert.ok(slow.out.some((l) => /^warning: .*lane-detection/.test(l)));
    assert.ok(!slow.out.some((l) => /^warning: .*pose-estimation/.test(l)));
    // 100 / 40 / 10: 330 + 150 ≤ 500, no warning
    await Deno.writeTextFile(
      `${dir}/short.yaml`,
      withPair("    leaseDurationMs: 100\n    renewDeadlineMs: 40\n    retryPeriodMs: 10\n"),
    );
    const fast = await run(`${dir}/short.yaml`);
    assert.equal(fast.code, 0, fast.err.join("\n"));
    assert.ok(
      fast.out.includes(
        "  lane-detection: 330 + takeover 150 = 480 ms ≤ FTTI 500 ms (margin 20 ms)",
      ),
    );
    assert.ok(!fast.out.some((l) => l.startsWith("warning")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
