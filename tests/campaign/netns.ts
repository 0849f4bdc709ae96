/**
 * Fault campaign: a simulated node's own network namespace.
 *
 * Each node gets a namespace `sdvc-<runId>-n<index>` joined to the host by a veth pair with
 * loopback-range addresses: the host end has `127.10.<index>.<4j+1>/30`, the namespace end
 * (`eth0`) `127.10.<index>.<4j+2>/30`, where `j` is the first /30 not already on a host
 * interface (so parallel runs and leftovers never share an address). Linux refuses to route
 * 127.0.0.0/8 over anything but `lo` unless `route_localnet` is set; it is set per device, on the
 * host end and on `eth0` in the namespace, so the host's global setting stays untouched.
 *
 * A partition is a membership in the nftables set `partitioned` of the run's table
 * `inet sdvc-<runId>`, whose input and output chains drop every packet whose incoming/outgoing
 * interface is in the set; partitioning and healing are single element updates, idempotent.
 *
 * Everything here needs root, `ip` (iproute2) and `nft` (nftables); see {@linkcode netnsSupported}.
 *
 * @module
 */

/** Every name this module creates (namespaces, the nft table, veth aliases) starts with this. */
export const NAME_PREFIX = "sdvc-";

/** The nft set of host-side veth names whose traffic is dropped. */
const PARTITION_SET = "partitioned";
/** Name of the veth end inside the namespace. */
const NS_LINK = "eth0";
/** Serializes address allocation between parallel runs (other processes). */
const LOCK_FILE = `${Deno.env.get("TMPDIR") || "/tmp"}/sdvc-netns.lock`;
/** How many /30 blocks of `127.10.<index>.0/24` can hold one node index (64 parallel runs). */
const BLOCKS_PER_INDEX = 64;

/** A simulated node's network namespace, joined to the host by a veth pair. */
export interface NodeNamespace {
  /** Namespace name, `sdvc-<runId>-n<index>` (as in `ip netns list`). */
  readonly name: string;
  /** Name of the host end of the veth pair (its alias is {@linkcode NodeNamespace.name}). */
  readonly hostInterface: string;
  /** Address of the host end, e.g. `127.10.3.1`: what the node connects to. */
  readonly hostAddress: string;
  /** Address of the namespace end (`eth0`), e.g. `127.10.3.2`. */
  readonly nsAddress: string;
  /** argv prefix that runs a command inside the namespace: `["ip", "netns", "exec", name]`. */
  execPrefix(): string[];
  /**
   * Drops every packet between the namespace and the host, both directions (established
   * connections stall, new ones time out). Idempotent.
   */
  partition(): Promise<void>;
  /** Removes the partition. Idempotent (also when the run's nft table is already gone). */
  heal(): Promise<void>;
  /**
   * Heals, then deletes the veth pair and the namespace, and the run's nft table once this
   * process has no other namespace of the run. Idempotent; never throws for parts already gone.
   * Processes still inside the namespace lose their network at once (kill them first anyway).
   */
  remove(): Promise<void>;
}

/** Options for {@linkcode createNodeNamespace}. */
export interface CreateNodeNamespaceOptions {
  /** Identifies the run: 1–8 characters of `[a-z0-9]`, unique among concurrent runs. */
  runId: string;
  /** The node's index in the run, an integer 0–255 (the third octet of its addresses). */
  index: number;
}

/**
 * `sdvc-<runId>-`: the prefix of every name a run creates, for {@linkcode removeStaleNamespaces}.
 *
 * @throws Error when `runId` is not 1–8 characters of `[a-z0-9]`.
 */
export function runPrefix(runId: string): string {
  if (!/^[a-z0-9]{1,8}$/.test(runId)) {
    throw new Error(`runId must be 1-8 characters of [a-z0-9], got ${JSON.stringify(runId)}`);
  }
  return `${NAME_PREFIX}${runId}-`;
}

let supported: Promise<boolean> | undefined;

/**
 * True when we are root and both `ip netns` and `nft` work (the campaign is skipped otherwise).
 * Probed once per process.
 */
export function netnsSupported(): Promise<boolean> {
  supported ??= (async () => {
    if (Deno.uid() !== 0) return false;
    try {
      const ip = await run(["ip", "netns", "list"]);
      const nft = await run(["nft", "list", "tables"]);
      return ip.ok && nft.ok;
    } catch {
      return false; // a binary is missing
    }
  })();
  return supported;
}

/** Live namespaces per run id in this process (the last `remove()` deletes the nft table). */
const liveByRun = new Map<string, number>();

/**
 * Creates the namespace of node `index` of run `runId`: namespace, veth pair with addresses,
 * `lo` and `eth0` up, `route_localnet` on both ends, and the run's nft table (idempotently).
 *
 * @throws Error on invalid options, when a namespace of that name exists already, when all 64
 *   address blocks of the index are taken, or when a command fails (its stderr in the message);
 *   whatever was created is removed again before throwing.
 */
export async function createNodeNamespace(
  opts: CreateNodeNamespaceOptions,
): Promise<NodeNamespace> {
  const prefix = runPrefix(opts.runId);
  const index = opts.index;
  if (!Number.isInteger(index) || index < 0 || index > 255) {
    throw new Error(`index must be an integer 0-255, got ${index}`);
  }
  const name = `${prefix}n${index}`;
  // IFNAMSIZ: at most 15 characters ("sv" + 8 + "-" + 3 = 14).
  const hostInterface = `sv${opts.runId}-${index}`;
  const table = tableName(opts.runId);
  await nftBatch([
    `add table inet ${table}`,
    `add set inet ${table} ${PARTITION_SET} { type ifname; }`,
    `add chain inet ${table} input { type filter hook input priority filter; policy accept; }`,
    `add chain inet ${table} output { type filter hook output priority filter; policy accept; }`,
    // Flush + add in one transaction keeps a repeated setup at one rule per chain.
    `flush chain inet ${table} input`,
    `flush chain inet ${table} output`,
    `add rule inet ${table} input iifname @${PARTITION_SET} drop`,
    `add rule inet ${table} output oifname @${PARTITION_SET} drop`,
  ]);

  const { hostAddress, nsAddress } = await withAllocationLock(async () => {
    const block = await freeBlock(index);
    const base = `127.10.${index}.`;
    const addrs = { hostAddress: `${base}${block * 4 + 1}`, nsAddress: `${base}${block * 4 + 2}` };
    await must(["ip", "netns", "add", name]);
    try {
      const inNs = ["ip", "-n", name];
      // The peer is created inside the namespace: the pair exists completely or not at all.
      await must(["ip", "link", "add", hostInterface, "type", "veth", "peer", "name", NS_LINK]
        .concat(["netns", name]));
      await must(["ip", "link", "set", "dev", hostInterface, "alias", name]);
      await Deno.writeTextFile(`/proc/sys/net/ipv4/conf/${hostInterface}/route_localnet`, "1");
      await must(["ip", "addr", "add", `${addrs.hostAddress}/30`, "dev", hostInterface]);
      await must(["ip", "link", "set", "dev", hostInterface, "up"]);
      // /proc/sys/net shows the network namespace of the reading process: set it from inside.
      await must([
        "ip",
        "netns",
        "exec",
        name,
        "sysctl",
        "-q",
        "-w",
        `net.ipv4.conf.${NS_LINK}.route_localnet=1`,
      ]);
      await must([...inNs, "link", "set", "dev", "lo", "up"]);
      await must([...inNs, "addr", "add", `${addrs.nsAddress}/30`, "dev", NS_LINK]);
      await must([...inNs, "link", "set", "dev", NS_LINK, "up"]);
    } catch (error) {
      await run(["ip", "link", "del", "dev", hostInterface]).catch(() => {});
      await run(["ip", "netns", "del", name]).catch(() => {});
      throw error;
    }
    return addrs;
  });
  liveByRun.set(opts.runId, (liveByRun.get(opts.runId) ?? 0) + 1);

  let removed: Promise<void> | undefined;
  const heal = () => nftIgnoringMissing([...toggle(table, hostInterface, false)]);
  return {
    name,
    hostInterface,
    hostAddress,
    nsAddress,
    execPrefix: () => ["ip", "netns", "exec", name],
    partition: () => nftBatch([...toggle(table, hostInterface, true)]),
    heal,
    remove: () => {
      removed ??= (async () => {
        await heal().catch(() => {});
        await run(["ip", "link", "del", "dev", hostInterface]).catch(() => {});
        await run(["ip", "netns", "del", name]).catch(() => {});
        const left = (liveByRun.get(opts.runId) ?? 1) - 1;
        if (left > 0) {
          liveByRun.set(opts.runId, left);
        } else {
          liveByRun.delete(opts.runId);
          await run(["nft", "delete", "table", "inet", table]).catch(() => {});
        }
      })();
      return removed;
    },
  };
}

/**
 * Removes what earlier runs left behind under `prefix` (e.g. {@linkcode NAME_PREFIX} for every
 * run, or `runPrefix(runId)` for one): host veths whose alias starts with it, namespaces whose
 * name starts with it, and `inet` nft tables whose name does (`sdvc-<runId>`). Best effort: never
 * throws for something already gone. Do not pass {@linkcode NAME_PREFIX} while other runs may be
 * live on the machine.
 *
 * @throws Error when `prefix` does not start with {@linkcode NAME_PREFIX}.
 */
export async function removeStaleNamespaces(prefix: string): Promise<void> {
  if (!prefix.startsWith(NAME_PREFIX)) {
    throw new Error(`prefix must start with ${NAME_PREFIX}, got ${JSON.stringify(prefix)}`);
  }
  const links = await run(["ip", "-j", "link", "show", "type", "veth"]);
  if (links.ok) {
    for (const link of JSON.parse(links.stdout || "[]") as { ifname: string; ifalias?: string }[]) {
      if (link.ifalias?.startsWith(prefix)) {
        await run(["ip", "link", "del", "dev", link.ifname]).catch(() => {});
      }
    }
  }
  const namespaces = await run(["ip", "netns", "list"]);
  if (namespaces.ok) {
    // Lines are "name" or "name (id: N)".
    for (const line of namespaces.stdout.split("\n")) {
      const ns = line.trim().split(/\s+/)[0];
      if (ns?.startsWith(prefix)) await run(["ip", "netns", "del", ns]).catch(() => {});
    }
  }
  const tables = await run(["nft", "-j", "list", "tables"]);
  if (tables.ok) {
    const parsed = JSON.parse(tables.stdout) as {
      nftables: { table?: { family: string; name: string } }[];
    };
    for (const { table } of parsed.nftables) {
      // A table is named like a run prefix without its trailing "-".
      if (table?.family === "inet" && `${table.name}-`.startsWith(prefix)) {
        await run(["nft", "delete", "table", "inet", table.name]).catch(() => {});
      }
    }
    for (const runId of [...liveByRun.keys()]) {
      if (`${tableName(runId)}-`.startsWith(prefix)) liveByRun.delete(runId);
    }
  }
}

/** The run's nft table (`inet`), `sdvc-<runId>`. */
function tableName(runId: string): string {
  return runPrefix(runId).slice(0, -1);
}

/** nft commands that put `link` into the partition set, or take it out (idempotently). */
function toggle(table: string, link: string, partitioned: boolean): string[] {
  const element = `inet ${table} ${PARTITION_SET} { "${link}" }`;
  // "add element" of a member is a no-op; "delete element" of a non-member fails, so healing
  // adds it first in the same transaction.
  return partitioned
    ? [`add element ${element}`]
    : [`add element ${element}`, `delete element ${element}`];
}

/** Runs an nft batch as one transaction; "no such table" counts as success (nothing to undo). */
async function nftIgnoringMissing(commands: string[]): Promise<void> {
  const result = await run(["nft", "-f", "-"], commands.join("\n") + "\n");
  if (!result.ok && !/No such file or directory/.test(result.stderr)) {
    throw new Error(`nft failed: ${result.stderr.trim()}`);
  }
}

/** Runs an nft batch as one transaction. */
async function nftBatch(commands: string[]): Promise<void> {
  const result = await run(["nft", "-f", "-"], commands.join("\n") + "\n");
  if (!result.ok) throw new Error(`nft failed: ${result.stderr.trim()}\n${commands.join("\n")}`);
}

/** The first block j (0–63) such that no host interface has an address in 127.10.index.4j/30. */
async function freeBlock(index: number): Promise<number> {
  const listing = await must(["ip", "-j", "-4", "addr", "show"]);
  const taken = new Set<number>();
  for (const link of JSON.parse(listing) as { addr_info?: { local: string }[] }[]) {
    for (const { local } of link.addr_info ?? []) {
      const m = /^127\.10\.(\d+)\.(\d+)$/.exec(local);
      if (m && Number(m[1]) === index) taken.add(Math.floor(Number(m[2]) / 4));
    }
  }
  for (let block = 0; block < BLOCKS_PER_INDEX; block++) {
    if (!taken.has(block)) return block;
  }
  throw new Error(`no free address block left in 127.10.${index}.0/24`);
}

let lockChain: Promise<unknown> = Promise.resolve();

/** Runs `fn` holding the allocation lock (in this process, and across processes via flock). */
function withAllocationLock<T>(fn: () => Promise<T>): Promise<T> {
  const next = lockChain.then(async () => {
    const file = await Deno.open(LOCK_FILE, { create: true, write: true });
    try {
      await file.lock(true);
      return await fn();
    } finally {
      file.close(); // releases the lock
    }
  });
  lockChain = next.catch(() => {});
  return next;
}

interface RunResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (stdin from `input` when given). */
async function run(argv: string[], input?: string): Promise<RunResult> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (input !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    ok: out.success,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
}

/** Runs a command; its stdout, or an Error naming the command and carrying its stderr. */
async function must(argv: string[]): Promise<string> {
  const result = await run(argv);
  if (!result.ok) throw new Error(`${argv.join(" ")} failed: ${result.stderr.trim()}`);
  return result.stdout;
}
