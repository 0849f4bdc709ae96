/**
 * Worker side of the simulated vehicle: runs `runPublisher` (the real node agents, sensors and
 * apps of lib/publisher) on its own thread and event loop, so the bench's own work (watch streams,
 * bookkeeping) cannot delay a heartbeat. Reports each applied fault at once (the bench SIGKILLs the
 * node's kwok at the same moment) and the full report at the end.
 *
 * Messages in: `{type:"run", config, faults, durationMs}`, `{type:"stop"}`.
 * Messages out: `{type:"started", startedWallMs}`, `{type:"fault", spec, wallTimeMs, …}`,
 * `{type:"done", report}`, `{type:"error", message}`, `{type:"stall", stall}` (this thread did not
 * run for more than 10 ms).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { raiseThreadPriority } from "./priority.ts";
import { watchEventLoop } from "./stall_monitor.ts";
import { ConfigSchema } from "../lib/config/schema.ts";
import { createLogger } from "../lib/log/log.ts";
import { parseFault } from "../lib/publisher/faults.ts";
import { runPublisher } from "../lib/publisher/publisher.ts";

let abort: AbortController | undefined;
const priority = raiseThreadPriority();
watchEventLoop("vehicle", (stall) => self.postMessage({ type: "stall", stall }));

self.onmessage = async (e: MessageEvent) => {
  const msg = e.data as { type: string; config?: unknown; faults?: string[]; durationMs?: number };
  if (msg.type === "stop") {
    abort?.abort();
    return;
  }
  if (msg.type !== "run") return;
  abort = new AbortController();
  await priority;
  const log = createLogger({
    format: "json",
    level: "info",
    write: (line) => {
      if (line.includes('"fault-applied"')) {
        self.postMessage({ type: "fault", ...JSON.parse(line) });
      } else if (line.includes('"publisher-started"')) {
        self.postMessage({ type: "started", ...JSON.parse(line) });
      }
    },
  });
  try {
    const report = await runPublisher({
      config: ConfigSchema.parse(msg.config),
      faults: (msg.faults ?? []).map(parseFault),
      durationMs: msg.durationMs ?? 60_000,
      log,
      signal: abort.signal,
    });
    self.postMessage({ type: "done", report: JSON.parse(JSON.stringify(report)) });
  } catch (error) {
    self.postMessage({ type: "error", message: (error as Error).message });
  }
};
