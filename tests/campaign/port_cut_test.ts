import assert from "node:assert/strict";
import { netnsSupported } from "./netns.ts";
import { createPortCut } from "./port_cut.ts";

const SKIP = !(await netnsSupported());

/** Reads one chunk from `conn`, or "timeout" after `ms`. */
async function readWithin(conn: Deno.Conn, ms: number): Promise<string> {
  const buf = new Uint8Array(64);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    conn.read(buf).then((n) => new TextDecoder().decode(buf.subarray(0, n ?? 0))),
    new Promise<string>((resolve) => timer = setTimeout(() => resolve("timeout"), ms)),
  ]);
  clearTimeout(timer);
  return r;
}

Deno.test({
  name: "port cut: an established connection stalls while cut and resumes after the heal",
  ignore: SKIP,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const cut = await createPortCut(`pc${Deno.pid % 10000}`);
    const client = await Deno.connect({ hostname: "127.0.0.1", port });
    const server = await listener.accept();
    try {
      assert.equal(await cut.droppedPackets(), 0);
      await client.write(new TextEncoder().encode("a"));
      assert.equal(await readWithin(server, 2000), "a", "passes before the cut");
      await cut.cut([port]);
      await cut.cut([port]); // idempotent
      assert.deepEqual([...cut.cutPorts], [port]);
      await client.write(new TextEncoder().encode("b"));
      const pending = readWithin(server, 5000);
      // the byte is retransmitted after the heal: it arrives, but not while the port is cut
      const early = await Promise.race([
        pending,
        new Promise<string>((r) => setTimeout(() => r("still cut"), 500)),
      ]);
      assert.equal(early, "still cut", "nothing passes while cut");
      assert.ok((await cut.droppedPackets()) > 0, "the rules counted the drops");
      await cut.heal([port]);
      await cut.heal([port]); // idempotent
      assert.equal(await pending, "b", "the connection resumes after the heal");
      await assert.rejects(cut.cut([70000]), /invalid port/);
    } finally {
      client.close();
      server.close();
      listener.close();
      await cut.remove();
      await cut.remove();
    }
  },
});
