/**
 * Fault campaign: cutting TCP paths on the host by port (the supervisor pair's paths to the bus).
 *
 * Each supervisor of a pair reaches each broker through a fault proxy of its own, listening on a
 * port of its own on 127.0.0.1; cutting a supervisor's path to a broker is dropping every packet
 * to or from that port. The run's table `inet sdvc-<runId>-cut` has one output chain (on the
 * loopback every packet passes output once) that drops TCP whose source or destination port is in
 * the set `cut`: established connections stall (nothing is closed: a broken path, not a crash) and
 * new ones time out; after a heal the established connection resumes by retransmission. Cutting
 * and healing are single element updates, idempotent.
 *
 * Needs root and `nft` (see `netnsSupported` in `netns.ts`). The table's name starts with the
 * run's prefix, so `removeStaleNamespaces(runPrefix(runId))` also removes a killed run's table.
 *
 * @module
 */
import { runPrefix } from "./netns.ts";

/** A run's port cuts. */
export interface PortCut {
  /** The nft table, `sdvc-<runId>-cut` (family `inet`). */
  readonly table: string;
  /** Ports cut now. */
  readonly cutPorts: ReadonlySet<number>;
  /** Drops every TCP packet from or to each of `ports` (idempotent). */
  cut(ports: readonly number[]): Promise<void>;
  /** Lets the packets of `ports` pass again (idempotent; also for ports never cut). */
  heal(ports: readonly number[]): Promise<void>;
  /** Heals every port. */
  healAll(): Promise<void>;
  /** Packets dropped so far (the rules' counters). @throws Error when `nft` fails. */
  droppedPackets(): Promise<number>;
  /** Deletes the table (idempotent). */
  remove(): Promise<void>;
}

/**
 * Creates the run's table (replacing one a killed run of the same id left).
 * @throws Error when `runId` is invalid (see `runPrefix`) or `nft` fails (its stderr).
 */
export async function createPortCut(runId: string): Promise<PortCut> {
  const table = `${runPrefix(runId)}cut`;
  await nft([`add table inet ${table}`, `delete table inet ${table}`]);
  await nft([
    `add table inet ${table}`,
    `add set inet ${table} cut { type inet_service; }`,
    `add chain inet ${table} output { type filter hook output priority filter; policy accept; }`,
    `add rule inet ${table} output tcp dport @cut counter drop`,
    `add rule inet ${table} output tcp sport @cut counter drop`,
  ]);
  const cutPorts = new Set<number>();
  const check = (ports: readonly number[]) => {
    for (const p of ports) {
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`invalid port ${p}`);
    }
  };
  let removed = false;
  const heal = async (ports: readonly number[]) => {
    check(ports);
    if (ports.length === 0 || removed) return;
    const elements = ports.join(", ");
    // "delete element" of a non-member fails: add first, in the same transaction
    await nft([
      `add element inet ${table} cut { ${elements} }`,
      `delete element inet ${table} cut { ${elements} }`,
    ]);
    for (const p of ports) cutPorts.delete(p);
  };
  return {
    table,
    cutPorts,
    async cut(ports) {
      check(ports);
      if (ports.length === 0) return;
      await nft([`add element inet ${table} cut { ${ports.join(", ")} }`]);
      for (const p of ports) cutPorts.add(p);
    },
    heal,
    healAll: () => heal([...cutPorts]),
    async droppedPackets() {
      const out = await new Deno.Command("nft", {
        args: ["-j", "list", "chain", "inet", table, "output"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!out.success) throw new Error(`nft: ${new TextDecoder().decode(out.stderr).trim()}`);
      const listing = JSON.parse(new TextDecoder().decode(out.stdout)) as {
        nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
      };
      let packets = 0;
      for (const item of listing.nftables) {
        for (const e of item.rule?.expr ?? []) packets += e.counter?.packets ?? 0;
      }
      return packets;
    },
    async remove() {
      if (removed) return;
      removed = true;
      cutPorts.clear();
      await nft([`add table inet ${table}`, `delete table inet ${table}`]).catch(() => {});
    },
  };
}

/** Runs an nft batch as one transaction. */
async function nft(commands: string[]): Promise<void> {
  const child = new Deno.Command("nft", {
    args: ["-f", "-"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(commands.join("\n") + "\n"));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `nft failed: ${new TextDecoder().decode(out.stderr).trim()}\n${commands.join("\n")}`,
    );
  }
}
