/**
 * The service manager's notification protocol (systemd's `sd_notify(3)`): newline-separated
 * `KEY=VALUE` assignments sent as one datagram to the `AF_UNIX` datagram socket named by the
 * environment variable `NOTIFY_SOCKET` — `READY=1` (start-up finished, `Type=notify`), `STATUS=…`
 * (a one-line human status, `systemctl status` shows it), `WATCHDOG=1` (keep-alive for
 * `WatchdogSec=`), `STOPPING=1` (the shutdown began). Without `NOTIFY_SOCKET` everything here is a
 * no-op. The watchdog interval comes from `WATCHDOG_USEC` (µs), meant for this process only when
 * `WATCHDOG_PID` is unset or is our pid (`sd_watchdog_enabled(3)`, which also advises pinging at
 * half the interval).
 *
 * Deno: datagram sockets are `Deno.listenDatagram({ transport: "unixpacket" })`, an unstable API
 * (`--unstable-net`; deno.json enables it for `deno run`/`test`/`check`, the launcher and
 * `deno compile` pass the flag). Sending needs a bound socket: ours is bound to a unique name in the
 * abstract namespace (`\0sdv-failover-notify-<pid>-<random>`: no file, no permission). Sending to a
 * socket path needs write permission for that path (`--allow-write=/run/systemd/notify`, the
 * system manager's socket, is in the shipped permission set); an abstract `NOTIFY_SOCKET` (leading
 * `@`) needs none. Any failure (API missing, permission denied, socket gone) is logged once as a
 * warning and the notifier goes quiet: notification never stops the program.
 *
 * @module
 */
import type { Logger } from "../log/log.ts";

/** Sends `sd_notify` messages; every method is a no-op when there is no notification socket. */
export interface Notifier {
  /** True when `NOTIFY_SOCKET` names a socket and no send has failed so far. */
  readonly enabled: boolean;
  /**
   * Sends one datagram of `KEY=VALUE` lines (e.g. `{ READY: "1", STATUS: "armed" }`); newlines in a
   * value are replaced by spaces. Never rejects.
   */
  notify(fields: Record<string, string>): Promise<void>;
  /** Closes the socket. Idempotent. */
  close(): void;
}

/** Options of {@linkcode openNotifier}. */
export interface NotifierOptions {
  /** Reads an environment variable (default `Deno.env.get`). */
  env?: (name: string) => string | undefined;
  /** Where the one warning goes when notifying fails. */
  log: Logger;
}

/** A {@linkcode Notifier} that does nothing. */
export const noNotifier: Notifier = {
  enabled: false,
  notify: () => Promise.resolve(),
  close: () => {},
};

/**
 * The socket address of `NOTIFY_SOCKET`: a path, or with a leading `@` a name in the abstract
 * namespace (returned with a leading NUL, as Deno takes it). Undefined when unset or empty.
 */
export function notifySocketPath(value: string | undefined): string | undefined {
  if (!value) return undefined;
  return value.startsWith("@") ? `\0${value.slice(1)}` : value;
}

/**
 * The service manager's watchdog timeout for this process, ms: `WATCHDOG_USEC` / 1000 when it is a
 * positive integer and `WATCHDOG_PID` is unset or equals `pid` (`sd_watchdog_enabled(3)`); else
 * undefined (no watchdog). Ping at half of it.
 */
export function watchdogTimeoutMs(
  env: (name: string) => string | undefined,
  pid: number,
): number | undefined {
  const usec = env("WATCHDOG_USEC");
  if (!usec || !/^\d+$/.test(usec) || Number(usec) <= 0) return undefined;
  const forPid = env("WATCHDOG_PID");
  if (forPid && forPid !== String(pid)) return undefined;
  return Number(usec) / 1000;
}

/**
 * Opens a notifier for `NOTIFY_SOCKET` (see the module documentation); {@linkcode noNotifier}
 * when it is unset. Never throws: a socket that cannot be opened yields a warning and a notifier
 * that does nothing.
 */
export function openNotifier(options: NotifierOptions): Notifier {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const target = notifySocketPath(env("NOTIFY_SOCKET"));
  if (!target) return noNotifier;
  const log = options.log;
  let failed = false;
  const fail = (why: string) => {
    if (failed) return;
    failed = true;
    log.warn("systemd-notify-failed", {
      socket: env("NOTIFY_SOCKET"),
      error: why,
      action: "no more notifications (Type=notify units then time out, WatchdogSec= restarts)",
    });
  };
  const listen = (Deno as unknown as { listenDatagram?: typeof Deno.listenDatagram })
    .listenDatagram;
  if (typeof listen !== "function") {
    fail("Deno.listenDatagram is not available: run with --unstable-net");
    return noNotifier;
  }
  let conn: Deno.DatagramConn;
  try {
    const random = crypto.getRandomValues(new Uint32Array(1))[0].toString(16);
    conn = listen({ transport: "unixpacket", path: `\0sdv-failover-notify-${Deno.pid}-${random}` });
  } catch (error) {
    fail((error as Error).message);
    return noNotifier;
  }
  const encoder = new TextEncoder();
  let closed = false;
  return {
    get enabled() {
      return !failed && !closed;
    },
    async notify(fields) {
      if (failed || closed) return;
      const text = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/\n/g, " ")}`)
        .join("\n");
      try {
        await conn.send(encoder.encode(text), { transport: "unixpacket", path: target });
      } catch (error) {
        if (!closed) fail((error as Error).message);
      }
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    },
  };
}
