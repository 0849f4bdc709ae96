import assert from "node:assert/strict";
import { parseConfig } from "../config/load.ts";
import { DuplicateIdentityError, LeaseTerminalError } from "../leader/lease_elector.ts";
import { JournalFile } from "../journal/journal_file.ts";
import { createLogger } from "../log/log.ts";
import {
  adminKubeconfigWarning,
  openJournal,
  runFailure,
  withSupervisorId,
} from "./run_command.ts";

const CONFIG = `supervisor:
  id: vehicle
  pair:
    ids: [vehicle, sup-b]
nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
`;

Deno.test("run --id overrides supervisor.id; without it the config's id stays", () => {
  const config = parseConfig(CONFIG);
  const result = withSupervisorId(config, "sup-b");
  assert("config" in result);
  assert.equal(result.config.supervisor.id, "sup-b");
  assert.deepEqual(result.config.supervisor.pair, config.supervisor.pair);
  assert.equal(config.supervisor.id, "vehicle", "the loaded config is not mutated");
  const unchanged = withSupervisorId(config, undefined);
  assert("config" in unchanged && unchanged.config === config);
});

Deno.test("run in a pair: an id outside supervisor.pair.ids is a usage error (its promotions would be refused)", () => {
  const config = parseConfig(CONFIG);
  const outsider = withSupervisorId(config, "sup-c");
  assert("error" in outsider);
  assert.match(
    outsider.error,
    /^--id: "sup-c" is not one of supervisor\.pair\.ids \(vehicle, sup-b\)/,
  );
  const configured = parseConfig(CONFIG.replace("id: vehicle", "id: other"));
  const noFlag = withSupervisorId(configured, undefined);
  assert("error" in noFlag);
  assert.match(noFlag.error, /^supervisor\.id: "other" is not one of/);
  const single = parseConfig(CONFIG.replace(/ {2}pair:\n {4}ids: .*\n/, ""));
  assert("config" in withSupervisorId(single, "sup-c"), "no pair: any valid id");
});

Deno.test("run --id: an invalid id or a fixed mqtt.clientId is a usage error", () => {
  const config = parseConfig(CONFIG);
  for (const bad of ["", "Sup_B", "a/b", "x".repeat(64)]) {
    const result = withSupervisorId(config, bad);
    assert("error" in result, bad);
    assert.match(result.error, /^--id: /);
  }
  const fixed = parseConfig(CONFIG.replace("nodes:", "mqtt:\n  clientId: sup\nnodes:"));
  const result = withSupervisorId(fixed, "sup-b");
  assert("error" in result);
  assert.match(result.error, /mqtt\.clientId \("sup"\).*remove it/);
});

Deno.test("another supervisor with the same id: exit 2 with a clear message; others exit 1", () => {
  const duplicate = runFailure(new DuplicateIdentityError("sup-a", "sup-a/1f2e3d4c"));
  assert.equal(duplicate.code, 2);
  assert.match(duplicate.message, /another supervisor with id "sup-a" is running/);
  const forbidden = runFailure(
    new LeaseTerminalError(403, "Lease kube-system/x: update forbidden"),
  );
  assert.equal(forbidden.code, 1);
  assert.match(forbidden.message, /election: Lease kube-system\/x: update forbidden/);
  const other = runFailure(new Error("boom"));
  assert.equal(other.code, 1);
  assert.match(other.message, /^fatal: Error: boom/);
});

Deno.test("run warns when the kubeconfig is K3s's admin kubeconfig (the schema's default)", () => {
  const byDefault = adminKubeconfigWarning(parseConfig(CONFIG));
  assert.match(byDefault ?? "", /cluster-admin kubeconfig \(\/etc\/rancher\/k3s\/k3s\.yaml\)/);
  assert.match(byDefault ?? "", /sdv-failover cluster-identity/);
  const own = parseConfig(
    `${CONFIG}cluster:\n  kubeconfig: \${CREDENTIALS_DIRECTORY}/kubeconfig\n`,
  );
  assert.equal(adminKubeconfigWarning(own), undefined);
  const pod = parseConfig(`${CONFIG}cluster:\n  inCluster: true\n`);
  assert.equal(adminKubeconfigWarning(pod), undefined);
});

Deno.test("run's journal: off without a state directory, STATE_DIRECTORY missing → 2, unwritable → 1", async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ format: "json", write: (l) => lines.push(JSON.parse(l)) });
  const noEnv = () => undefined;
  assert.equal(await openJournal(parseConfig(CONFIG), log, noEnv), undefined);
  assert.equal(lines.at(-1)?.event, "journal-off");
  const needsState = parseConfig(`${CONFIG}journal:\n  path: \${STATE_DIRECTORY}/j.jsonl\n`);
  assert.equal(await openJournal(needsState, log, noEnv), 2);
  assert.match(String(lines.at(-1)?.error), /STATE_DIRECTORY is not set/);
  const dir = await Deno.makeTempDir({ prefix: "sdv-run-journal-" });
  try {
    const unwritable = parseConfig(`${CONFIG}journal:\n  path: ${dir}/no/such/dir/j.jsonl\n`);
    assert.equal(await openJournal(unwritable, log, noEnv), 1);
    assert.equal(lines.at(-1)?.event, "journal-unwritable");
    assert.match(String(lines.at(-1)?.error), /no\/such\/dir\/j\.jsonl" cannot be written/);
    const state = (name: string) => (name === "STATE_DIRECTORY" ? dir : undefined);
    const opened = await openJournal(parseConfig(CONFIG), log, state);
    assert.ok(opened instanceof JournalFile);
    assert.equal(opened.path, `${dir}/journal.jsonl`);
    assert.ok((await Deno.stat(`${dir}/journal.jsonl`)).isFile, "created at start");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
