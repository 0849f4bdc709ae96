/**
 * Real network namespaces, veth pairs and nftables (needs root, `ip`, `nft`; skipped otherwise):
 * a TCP probe inside a node's namespace talks to an echo server on the host end of its veth.
 */
import assert from "node:assert/strict";
import {
  createNodeNamespace,
  netnsSupported,
  type NodeNamespace,
  removeStaleNamespaces,
  runPrefix,
} from "./netns.ts";
import { type EchoServer, type Probe, startEchoServer, startProbe } from "./tcp_probe.ts";

const SUPPORTED = await netnsSupported();

/** A fresh run id (8 hex characters), so parallel test runs never share names or addresses. */
function newRunId(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** Exit status of a command (output discarded). */
async function succeeds(argv: string[]): Promise<boolean> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "null",
    stderr: "null",
  })
    .output();
  return out.success;
}

async function namespaceNames(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0]).filter(
    Boolean,
  );
}

/** Asserts that nothing of `ns` (namespace, host veth) nor, if given, the run's table is left. */
async function assertGone(ns: NodeNamespace, runId?: string): Promise<void> {
  assert.ok(!(await namespaceNames()).includes(ns.name), `${ns.name} still in ip netns list`);
  assert.ok(!(await succeeds(["ip", "link", "show", "dev", ns.hostInterface])), "veth left");
  if (runId !== undefined) {
    const table = runPrefix(runId).slice(0, -1);
    assert.ok(!(await succeeds(["nft", "list", "table", "inet", table])), `table ${table} left`);
  }
}

Deno.test({
  name:
    "netns: a node's namespace reaches its host address; partition stalls established and new connections; heal resumes both; remove leaves nothing",
  ignore: !SUPPORTED,
  async fn() {
    const runId = newRunId();
    let ns: NodeNamespace | undefined;
    let echo: EchoServer | undefined;
    const probes: Probe[] = [];
    try {
      ns = await createNodeNamespace({ runId, index: 7 });
      assert.equal(ns.name, `sdvc-${runId}-n7`);
      assert.match(ns.hostAddress, /^127\.10\.7\.\d+$/);
      assert.match(ns.nsAddress, /^127\.10\.7\.\d+$/);
      assert.ok((await namespaceNames()).includes(ns.name));
      assert.deepEqual(ns.execPrefix(), ["ip", "netns", "exec", ns.name]);

      echo = startEchoServer(ns.hostAddress);
      const first = await startProbe(ns.execPrefix(), ns.hostAddress, echo.port, 5000);
      assert.ok(first.connected, `connect from the namespace failed: ${JSON.stringify(first)}`);
      probes.push(first.probe);
      assert.ok((await first.probe.ping(5000)).ok, "no echo before the partition");

      await ns.partition();
      await ns.partition(); // idempotent
      assert.deepEqual(await first.probe.ping(1000), { ok: false }, "echo through a partition");
      const during = await startProbe(ns.execPrefix(), ns.hostAddress, echo.port, 1000);
      assert.ok(!during.connected, "a new connection got through the partition");
      assert.match(during.error, /timed out/);

      await ns.heal();
      await ns.heal(); // idempotent
      // The established connection recovers by TCP retransmission (bounded wait).
      assert.ok((await first.probe.ping(15_000)).ok, "established connection did not resume");
      const after = await startProbe(ns.execPrefix(), ns.hostAddress, echo.port, 5000);
      assert.ok(after.connected, `connect after heal failed: ${JSON.stringify(after)}`);
      probes.push(after.probe);
      assert.ok((await after.probe.ping(5000)).ok, "no echo on a new connection after heal");

      for (const probe of probes.splice(0)) await probe.close();
      await ns.remove();
      await ns.remove(); // idempotent
      await ns.heal(); // nothing left to heal: still no error
      await assertGone(ns, runId);
    } finally {
      for (const probe of probes) await probe.close();
      await echo?.close();
      await ns?.remove();
    }
  },
});

Deno.test({
  name:
    "netns: runs get distinct addresses, a partition cuts only its own namespace, removeStaleNamespaces clears a run",
  ignore: !SUPPORTED,
  async fn() {
    const runA = newRunId();
    const runB = newRunId();
    const created: NodeNamespace[] = [];
    const echoes: EchoServer[] = [];
    const probes: Probe[] = [];
    try {
      const a1 = await createNodeNamespace({ runId: runA, index: 1 });
      created.push(a1);
      const a2 = await createNodeNamespace({ runId: runA, index: 2 });
      created.push(a2);
      const b1 = await createNodeNamespace({ runId: runB, index: 1 });
      created.push(b1);
      // Same index in another run: same /24, another /30.
      assert.notEqual(a1.hostAddress, b1.hostAddress);
      assert.notEqual(a1.nsAddress, b1.nsAddress);

      const connected: Probe[] = [];
      for (const ns of [a1, a2, b1]) {
        const echo = startEchoServer(ns.hostAddress);
        echoes.push(echo);
        const started = await startProbe(ns.execPrefix(), ns.hostAddress, echo.port, 5000);
        assert.ok(started.connected, `${ns.name}: ${JSON.stringify(started)}`);
        probes.push(started.probe);
        connected.push(started.probe);
        assert.ok((await started.probe.ping(5000)).ok, `${ns.name}: no echo`);
      }
      await a1.partition();
      assert.deepEqual(await connected[0].ping(1000), { ok: false }, "a1 not partitioned");
      assert.ok((await connected[1].ping(5000)).ok, "a2 cut by a1's partition");
      assert.ok((await connected[2].ping(5000)).ok, "b1 cut by a1's partition");

      for (const probe of probes.splice(0)) await probe.close();
      await removeStaleNamespaces(runPrefix(runA));
      await assertGone(a1, runA);
      await assertGone(a2);
      assert.ok((await namespaceNames()).includes(b1.name), "another run's namespace was removed");
      for (const ns of created) await ns.remove(); // already gone: no error
      await assertGone(b1, runB);
    } finally {
      for (const probe of probes) await probe.close();
      for (const echo of echoes) await echo.close();
      for (const ns of created) await ns.remove();
    }
  },
});

Deno.test("netns: run ids and prefixes are validated", async () => {
  assert.equal(runPrefix("ab12"), "sdvc-ab12-");
  for (const bad of ["", "ABC", "a-b", "123456789"]) {
    assert.throws(() => runPrefix(bad), /runId/, `runId ${JSON.stringify(bad)} accepted`);
  }
  await assert.rejects(removeStaleNamespaces("other-"), /prefix must start with sdvc-/);
});
