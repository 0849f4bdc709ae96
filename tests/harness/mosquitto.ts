/**
 * Test harness: a private mosquitto broker on a free 127.0.0.1 port.
 *
 * Debian's mosquitto (2.0.x) is not started by its package inside a container; this starts one per
 * test with a generated config file (anonymous, no persistence, log to a file in the work
 * directory) and waits, with a bounded loop, until it accepts TCP connections.
 *
 * @module
 */

/** Where Debian installs the broker. */
export const MOSQUITTO_BIN = "/usr/sbin/mosquitto";

/** Options for {@linkcode startMosquitto}. */
export interface StartMosquittoOptions {
  /**
   * Directory for the generated `mosquitto.conf` and `mosquitto.log`. Default: a fresh temporary
   * directory that {@linkcode RunningMosquitto.stop} removes again (a given directory is kept).
   */
  workDir?: string;
  /** Listen on this port (e.g. to restart a broker where its clients expect it); default: a free one. */
  port?: number;
  /** Upper bound on the wait for the broker to accept TCP, in ms (default 5000). */
  readyTimeoutMs?: number;
  /**
   * Sets mosquitto's `set_tcp_nodelay true` (default false, as a stock broker). Measured here:
   * with Nagle on (the stock default) a Last Will sent to a subscriber that still owes an ACK is
   * held for ≈ 40 ms (38–42 ms, delayed-ACK timer); with it off, ≈ 1.3 ms.
   */
  tcpNoDelay?: boolean;
  /**
   * Start from this configuration file (e.g. the `mosquitto.conf` that `broker-config` wrote)
   * instead of the default anonymous one. Its text is copied into the work directory with the
   * harness's log settings (and, as root, `user root`) appended; `port` must then be the port of
   * its listener. `tcpNoDelay` still applies.
   */
  confFile?: string;
}

/** A running broker. */
export interface RunningMosquitto {
  /** `mqtt://127.0.0.1:PORT`, or `mqtts://127.0.0.1:PORT` for a `confFile` with a certificate. */
  url: string;
  /** The TCP port on 127.0.0.1. */
  port: number;
  /** Path of the broker's log file. */
  logFile: string;
  /** Kills the broker (SIGTERM, then SIGKILL after 2 s) and waits for it. Idempotent. */
  stop(): Promise<void>;
  /**
   * SIGKILL (a crashed broker: no Last Will is published, retained state is lost) and waits for
   * the exit. Idempotent; {@linkcode RunningMosquitto.stop} afterwards only cleans up.
   */
  kill(): Promise<void>;
  /** SIGSTOP (a stalled broker: connections stay open, nothing is read or written). */
  pause(): void;
  /** SIGCONT after {@linkcode RunningMosquitto.pause}. */
  resume(): void;
}

/**
 * Starts a private mosquitto on a free 127.0.0.1 port.
 *
 * @throws Error when `/usr/sbin/mosquitto` is missing (with the install hint), when `confFile` is
 *   given without `port`, or when the broker exits or does not accept TCP within `readyTimeoutMs`
 *   (after 3 attempts on fresh ports; the message carries the tail of its log).
 */
export async function startMosquitto(opts: StartMosquittoOptions = {}): Promise<RunningMosquitto> {
  try {
    await Deno.stat(MOSQUITTO_BIN);
  } catch {
    throw new Error(
      `mosquitto not found at ${MOSQUITTO_BIN}; install it: apt-get install -y mosquitto`,
    );
  }
  if (opts.confFile !== undefined && opts.port === undefined) {
    throw new Error("startMosquitto: confFile needs the port of its listener");
  }
  const base = opts.confFile === undefined ? undefined : await Deno.readTextFile(opts.confFile);
  const ownDir = opts.workDir === undefined;
  const workDir = opts.workDir ?? await Deno.makeTempDir({ prefix: "sdv-mosquitto-" });
  const readyTimeoutMs = opts.readyTimeoutMs ?? 5000;
  let lastError: Error | undefined;
  // The free port is found by binding port 0 and releasing it; another process may take it in the
  // gap, so a broker that exits at once is retried on a new port.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce({
        workDir,
        ownDir,
        readyTimeoutMs,
        tcpNoDelay: opts.tcpNoDelay ?? false,
        fixedPort: opts.port,
        base,
      });
    } catch (error) {
      lastError = error as Error;
    }
  }
  if (ownDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
  throw lastError;
}

interface StartOnce {
  workDir: string;
  ownDir: boolean;
  readyTimeoutMs: number;
  tcpNoDelay: boolean;
  fixedPort?: number;
  /** Text of a given configuration file, instead of the anonymous listener. */
  base?: string;
}

async function startOnce(o: StartOnce): Promise<RunningMosquitto> {
  const { workDir, readyTimeoutMs, tcpNoDelay, base } = o;
  let ownDir = o.ownDir;
  const port = o.fixedPort ?? freePort();
  const confFile = `${workDir}/mosquitto-${port}.conf`;
  const logFile = `${workDir}/mosquitto-${port}.log`;
  await Deno.writeTextFile(
    confFile,
    [
      ...(base === undefined
        ? [`listener ${port} 127.0.0.1`, "allow_anonymous true"]
        : [base, "# appended by tests/harness/mosquitto.ts"]),
      "persistence false",
      // Running as root, mosquitto drops privileges to `mosquitto`, which could not write the log.
      ...(Deno.uid?.() === 0 ? ["user root"] : []),
      `log_dest file ${logFile}`,
      "log_type error",
      "log_type warning",
      "log_type notice",
      "log_type information",
      "connection_messages true",
      ...(tcpNoDelay ? ["set_tcp_nodelay true"] : []),
      "log_timestamp true",
      "",
    ].join("\n"),
  );
  const child = new Deno.Command(MOSQUITTO_BIN, {
    args: ["-c", confFile],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stderrText = new Response(child.stderr).text().catch(() => "");

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
        let killTimer: ReturnType<typeof setTimeout> | undefined;
        const forced = new Promise<void>((resolve) => {
          killTimer = setTimeout(() => {
            try {
              child.kill("SIGKILL");
            } catch { /* already gone */ }
            resolve();
          }, 2000);
        });
        await Promise.race([status, forced]);
        clearTimeout(killTimer);
      }
      await status;
      await stderrText;
      if (ownDir) await Deno.remove(workDir, { recursive: true }).catch(() => {});
    })();
    return stopped;
  };

  const deadline = performance.now() + readyTimeoutMs;
  for (;;) {
    if (exited) {
      const s = await status;
      const log = await tail(logFile);
      await stderrText.then((t) => t && log.push(t.trim()));
      throw new Error(
        `mosquitto exited (code ${s.code}) before accepting connections on 127.0.0.1:${port}: ` +
          log.join(" | "),
      );
    }
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      break;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) {
      const log = await tail(logFile);
      // Keep the log of a failed start for inspection: do not delete a directory we report.
      const keepDir = ownDir;
      ownDir = false;
      await stop();
      throw new Error(
        `mosquitto did not accept TCP on 127.0.0.1:${port} within ${readyTimeoutMs} ms ` +
          `(log ${logFile}${keepDir ? ", kept" : ""}): ${log.join(" | ")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const tls = base !== undefined && /^certfile /m.test(base);
  return {
    url: `${tls ? "mqtts" : "mqtt"}://127.0.0.1:${port}`,
    port,
    logFile,
    stop,
    kill: async () => {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
      }
      await status;
    },
    pause: () => Deno.kill(child.pid, "SIGSTOP"),
    resume: () => Deno.kill(child.pid, "SIGCONT"),
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function tail(file: string, lines = 5): Promise<string[]> {
  try {
    return (await Deno.readTextFile(file)).trim().split("\n").slice(-lines);
  } catch {
    return [];
  }
}
