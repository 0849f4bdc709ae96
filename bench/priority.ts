/**
 * Scheduling priority of the simulated vehicle. On a Jetson cluster the node agents, sensors and
 * apps run on their own boards; here they share two cores with the control plane, the broker and
 * the runtime under test. A starved simulator thread delays heartbeats that a real board would
 * have sent on time, and the runtime then (rightly) expires a healthy node. To measure the runtime
 * rather than the simulation, the threads that stand in for the vehicle run at a higher priority
 * (nice −10); the runtime, the broker and the control plane keep the default.
 *
 * @module
 */

/** The nice value of the simulated vehicle's threads. */
export const VEHICLE_NICE = -10;

/**
 * Sets the calling thread's nice value (Linux: `setpriority` on the thread id from
 * /proc/thread-self, via `renice`). Returns what happened, for the results' notes; never throws.
 */
export async function raiseThreadPriority(nice = VEHICLE_NICE): Promise<string> {
  try {
    const tid = Deno.readLinkSync("/proc/thread-self").split("/").pop()!;
    const out = await new Deno.Command("renice", {
      args: ["-n", String(nice), "-p", tid],
      stdout: "null",
      stderr: "piped",
    }).output();
    return out.success
      ? `thread ${tid} at nice ${nice}`
      : `renice failed: ${new TextDecoder().decode(out.stderr).trim()}`;
  } catch (error) {
    return `renice failed: ${(error as Error).message}`;
  }
}

/**
 * Raises V8's platform threads of this process (the parallel/concurrent GC and compiler helpers,
 * shared by the main isolate and the workers) to the vehicle's priority: a vehicle thread's GC
 * pause waits for them, and at the default priority they queue behind the control plane — a
 * priority inversion that shows as a stalled simulator. Returns how many threads were changed.
 */
export async function raiseV8PlatformThreads(nice = VEHICLE_NICE): Promise<number> {
  let changed = 0;
  for (const t of Deno.readDirSync("/proc/self/task")) {
    let comm = "";
    try {
      comm = Deno.readTextFileSync(`/proc/self/task/${t.name}/comm`).trim();
    } catch {
      continue;
    }
    if (!comm.startsWith("V8 ")) continue;
    const out = await new Deno.Command("renice", {
      args: ["-n", String(nice), "-p", t.name],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => undefined);
    if (out?.success) changed++;
  }
  return changed;
}
