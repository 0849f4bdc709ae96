/**
 * Test harness: cutting one established TCP connection on the loopback with nftables (a broken
 * path, not a crash: nothing is closed, the connection stalls), for the supervisor pair and the
 * broker pair tests. Needs root and `nft`.
 *
 * @module
 */

/**
 * Cuts one established TCP connection on the loopback (both directions) with an nftables table of
 * its own: the connection stalls, nothing is closed (a broken path, not a crash). Needs root and
 * `nft`; `heal` deletes the table and is idempotent.
 */
export async function cutConnection(localPort: number) {
  const table = `sdv-cut-${Deno.pid}-${localPort}`;
  const nft = async (...args: string[]) => {
    const out = await new Deno.Command("nft", { args, stdout: "null", stderr: "piped" }).output();
    if (!out.success) {
      throw new Error(`nft ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  await nft("add", "table", "inet", table);
  await nft(
    "add",
    "chain",
    "inet",
    table,
    "out",
    "{ type filter hook output priority 0 ; policy accept ; }",
  );
  await nft("add", "rule", "inet", table, "out", "tcp", "sport", String(localPort), "drop");
  await nft("add", "rule", "inet", table, "out", "tcp", "dport", String(localPort), "drop");
  let healed = false;
  return {
    heal: async () => {
      if (healed) return;
      healed = true;
      await nft("delete", "table", "inet", table).catch(() => {});
    },
  };
}

/** `nft` runs here (root, nftables): the partition step can cut a connection. */
export function canCut(): boolean {
  try {
    return Deno.uid?.() === 0 &&
      new Deno.Command("nft", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
        .success;
  } catch {
    return false;
  }
}

/** The local port of `pid`'s established TCP connection to 127.0.0.1:`port`. */
export async function localPortOf(pid: number, port: number): Promise<number> {
  const out = await new Deno.Command("ss", {
    args: ["-tnpH", "state", "established", "dst", `127.0.0.1:${port}`],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  for (const line of text.split("\n")) {
    const m = line.match(/127\.0\.0\.1:(\d+)\s+127\.0\.0\.1:(\d+)\s.*pid=(\d+),/);
    if (m && Number(m[2]) === port && Number(m[3]) === pid) return Number(m[1]);
  }
  throw new Error(`no connection of pid ${pid} to 127.0.0.1:${port} in:\n${text}`);
}
