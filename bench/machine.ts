/**
 * The machine a benchmark ran on (CPU model and count, memory, kernel, Deno), plus /proc readers
 * for the CPU time and resident memory of a process.
 *
 * @module
 */

/** What the results file records about the machine. */
export interface MachineInfo {
  hostname: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  kernel: string;
  os: string;
  deno: string;
  v8: string;
  typescript: string;
  /** 1-minute load average when the benchmark started. */
  loadAverage1m?: number;
}

function read(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return "";
  }
}

/** Reads the machine description. */
export function machineInfo(): MachineInfo {
  const cpuinfo = read("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown";
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(read("/proc/meminfo"))?.[1] ?? 0);
  const load = Number(read("/proc/loadavg").split(" ")[0]);
  return {
    hostname: Deno.hostname(),
    cpus: navigator.hardwareConcurrency,
    cpuModel: model,
    memoryGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    kernel: read("/proc/sys/kernel/osrelease").trim() || Deno.osRelease(),
    os: `${Deno.build.os} ${Deno.build.arch}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    typescript: Deno.version.typescript,
    loadAverage1m: Number.isFinite(load) ? load : undefined,
  };
}

/** Clock ticks per second of /proc/PID/stat (USER_HZ; 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process has used so far; `undefined` when it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const stat = read(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  // The command may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the full line, i.e. 11 and 12 after the command.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / USER_HZ;
}

/** Resident set size in MB (VmRSS); `undefined` when the process is gone. */
export function rssMb(pid: number): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(read(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : undefined;
}

/** PIDs whose command line contains `needle` (used to find the broker and the runtime). */
export function findPids(needle: string): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const cmd = read(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
    if (cmd.includes(needle)) out.push(Number(e.name));
  }
  return out;
}

/** Jiffies of all CPUs: busy and total (from the `cpu` line of /proc/stat). */
export function cpuJiffies(): { busy: number; total: number } {
  const line = read("/proc/stat").split("\n")[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** 1-minute load average. */
export function loadAverage(): number {
  return Number(read("/proc/loadavg").split(" ")[0]);
}

/**
 * CPU seconds used so far by the process tree under `root` (inclusive): each live process's
 * user + system time plus that of its children already reaped (cutime + cstime).
 */
export function treeCpuSeconds(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    const stat = read(`/proc/${e.name}/stat`);
    if (!stat) continue;
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    parent.set(Number(e.name), Number(f[1]));
    cpu.set(
      Number(e.name),
      (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / USER_HZ,
    );
  }
  const inTree = (pid: number): boolean => {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (p === root) return true;
    }
    return false;
  };
  let total = 0;
  for (const [pid, s] of cpu) if (inTree(pid)) total += s;
  return total;
}
