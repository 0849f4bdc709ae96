import assert from "node:assert/strict";
import { writeDevPki } from "./dev_pki.ts";

const hasOpenssl = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

async function openssl(...args: string[]): Promise<string> {
  const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`openssl ${args.join(" ")}: ${text}`);
  return text;
}

Deno.test({
  name:
    "writeDevPki: a CA, a server certificate for the broker's hosts, a client bundle per identity",
  ignore: !hasOpenssl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "sdv-devpki-" });
    try {
      const pki = await writeDevPki({
        dir,
        identities: ["node:worker-node2", "supervisor:sup"],
        serverHosts: ["broker.vehicle.local"],
      });
      const server = await openssl("x509", "-in", pki.serverCertFile, "-noout", "-text");
      assert.match(server, /DNS:broker\.vehicle\.local/);
      assert.match(server, /IP Address:127\.0\.0\.1/);
      assert.match(server, /TLS Web Server Authentication/);
      assert.match(server, /CA:FALSE/);
      assert.match(await openssl("verify", "-CAfile", pki.caCertFile, pki.serverCertFile), /OK/);

      const bundle = pki.clients.get("node:worker-node2")!;
      assert.equal(bundle.dir, `${dir}/clients/node_worker-node2`);
      assert.match(
        await openssl("x509", "-in", bundle.certFile, "-noout", "-subject"),
        /CN ?= ?node:worker-node2/,
      );
      assert.match(
        await openssl("verify", "-purpose", "sslclient", "-CAfile", bundle.caFile, bundle.certFile),
        /OK/,
      );
      assert.equal(await Deno.readTextFile(bundle.caFile), await Deno.readTextFile(pki.caCertFile));
      for (const key of [pki.caKeyFile, pki.serverKeyFile, bundle.keyFile]) {
        assert.equal((await Deno.stat(key)).mode! & 0o777, 0o600, key);
        assert.match(await Deno.readTextFile(key), /^-----BEGIN PRIVATE KEY-----/);
      }
      // A client certificate is no CA: it cannot sign another identity's certificate.
      const other = await openssl("x509", "-in", bundle.certFile, "-noout", "-text");
      assert.match(other, /CA:FALSE/);
      assert.match(other, /TLS Web Client Authentication/);
      const entries = [];
      for await (const e of Deno.readDir(dir)) entries.push(e.name);
      assert.deepEqual(entries.sort(), ["ca.crt", "ca.key", "clients", "server.crt", "server.key"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("writeDevPki reports a failing openssl with its message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sdv-devpki-" });
  try {
    await assert.rejects(
      writeDevPki({
        dir,
        identities: [],
        serverHosts: [],
        openssl: () => Promise.reject(new Error("openssl genpkey failed (exit 1): boom")),
      }),
      /openssl genpkey failed \(exit 1\): boom/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
