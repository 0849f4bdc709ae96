/**
 * The real toxiproxy-server (built by scripts/toxiproxy/build.sh; skipped when it is not) between
 * a TCP probe and an echo server: on the host, and from inside a node's network namespace (root).
 */
import assert from "node:assert/strict";
import { createNodeNamespace, netnsSupported, type NodeNamespace } from "./netns.ts";
import { type EchoServer, type Probe, startEchoServer, startProbe } from "./tcp_probe.ts";
import { startToxiproxy, type Toxiproxy, toxiproxyBinary } from "./toxiproxy.ts";

const HAVE_TOXIPROXY = toxiproxyBinary() !== undefined;
const SUPPORTED = HAVE_TOXIPROXY && await netnsSupported();

/** Lowest round trip of `n` pings (each bounded by 5 s); fails on a lost ping. */
async function minRttMs(probe: Probe, n: number): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < n; i++) {
    const result = await probe.ping(5000);
    assert.ok(result.ok, `ping ${i} got no echo`);
    min = Math.min(min, result.rttMs);
  }
  return min;
}

Deno.test({
  name:
    "toxiproxy: a proxy forwards; latency each way (set, then updated) delays every round trip by at least twice it; clearToxics; stop",
  ignore: !HAVE_TOXIPROXY,
  async fn() {
    let toxiproxy: Toxiproxy | undefined;
    let echo: EchoServer | undefined;
    let probe: Probe | undefined;
    try {
      toxiproxy = await startToxiproxy();
      echo = startEchoServer("127.0.0.1");
      const listen = await toxiproxy.addProxy("host", "127.0.0.1:0", `127.0.0.1:${echo.port}`);
      const port = Number(listen.split(":").at(-1));
      assert.ok(port > 0, `no port in ${listen}`);
      await assert.rejects(
        toxiproxy.addProxy("host", "127.0.0.1:0", `127.0.0.1:${echo.port}`),
        /HTTP 409/,
      );

      const started = await startProbe([], "127.0.0.1", port, 5000);
      assert.ok(started.connected, JSON.stringify(started));
      probe = started.probe;
      assert.ok((await probe.ping(5000)).ok, "no echo through the proxy");

      await toxiproxy.setLatency("host", 20, 0);
      await toxiproxy.setLatency("host", 50, 0); // updates the existing toxics
      const both = await minRttMs(probe, 5);
      assert.ok(both >= 100, `round trip ${both.toFixed(1)} ms with 50 ms each way`);

      await toxiproxy.clearToxics("host");
      await toxiproxy.setLatency("host", 50, 10, ["upstream"]);
      const up = await minRttMs(probe, 5);
      assert.ok(up >= 40, `round trip ${up.toFixed(1)} ms with 50 ± 10 ms upstream`);

      await toxiproxy.clearToxics("host");
      await toxiproxy.clearToxics("host"); // nothing left: no error
      assert.ok((await probe.ping(5000)).ok, "no echo after clearToxics");
      await assert.rejects(toxiproxy.setLatency("host", 10, 20), /jitterMs/);
      await assert.rejects(toxiproxy.setLatency("host", 1.5, 0), /latencyMs/);

      await probe.close();
      const { apiUrl } = toxiproxy;
      await toxiproxy.stop();
      await toxiproxy.stop(); // idempotent
      await assert.rejects(fetch(`${apiUrl}/version`, { signal: AbortSignal.timeout(2000) }));
    } finally {
      await probe?.close();
      await toxiproxy?.stop();
      await echo?.close();
    }
  },
});

Deno.test({
  name: "toxiproxy: an aborted signal stops the server",
  ignore: !HAVE_TOXIPROXY,
  async fn() {
    const controller = new AbortController();
    const toxiproxy = await startToxiproxy({ signal: controller.signal });
    try {
      controller.abort();
      await toxiproxy.stop(); // the same stop the abort started
      await assert.rejects(
        fetch(`${toxiproxy.apiUrl}/version`, { signal: AbortSignal.timeout(2000) }),
      );
    } finally {
      await toxiproxy.stop();
    }
  },
});

Deno.test({
  name:
    "toxiproxy + netns: a node reaches the broker side through its proxy on hostAddress; latency and partition apply to it",
  ignore: !SUPPORTED,
  async fn() {
    const runId = crypto.randomUUID().slice(0, 8);
    let ns: NodeNamespace | undefined;
    let toxiproxy: Toxiproxy | undefined;
    let echo: EchoServer | undefined;
    const probes: Probe[] = [];
    try {
      ns = await createNodeNamespace({ runId, index: 3 });
      toxiproxy = await startToxiproxy();
      echo = startEchoServer("127.0.0.1"); // stands in for the broker
      const listen = await toxiproxy.addProxy(
        ns.name,
        `${ns.hostAddress}:0`,
        `127.0.0.1:${echo.port}`,
      );
      assert.ok(listen.startsWith(`${ns.hostAddress}:`), listen);
      const port = Number(listen.split(":").at(-1));

      const started = await startProbe(ns.execPrefix(), ns.hostAddress, port, 5000);
      assert.ok(started.connected, JSON.stringify(started));
      probes.push(started.probe);
      const probe = started.probe;
      assert.ok((await probe.ping(5000)).ok, "no echo through namespace and proxy");

      await toxiproxy.setLatency(ns.name, 50, 0);
      const rtt = await minRttMs(probe, 3);
      assert.ok(rtt >= 100, `round trip ${rtt.toFixed(1)} ms with 50 ms each way`);
      await toxiproxy.clearToxics(ns.name);

      await ns.partition();
      assert.deepEqual(await probe.ping(1000), { ok: false }, "echo through a partition");
      const blocked = await startProbe(ns.execPrefix(), ns.hostAddress, port, 1000);
      assert.ok(!blocked.connected, "a new connection got through the partition");
      await ns.heal();
      assert.ok((await probe.ping(15_000)).ok, "established connection did not resume");
    } finally {
      for (const probe of probes) await probe.close();
      await toxiproxy?.stop();
      await echo?.close();
      await ns?.remove();
    }
  },
});
