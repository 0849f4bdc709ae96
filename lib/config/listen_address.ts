/**
 * The `HOST:PORT` address an HTTP endpoint listens on (`http.listen`, `http.agentListen`,
 * `--http-listen`).
 *
 * @module
 */

/** A parsed listen address. */
export interface ListenAddress {
  /** An IPv4 address, a host name, or an IPv6 address without its brackets. */
  hostname: string;
  /** TCP port, 0–65535; 0 lets the kernel choose a free port (the log line names it). */
  port: number;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/**
 * Parses `HOST:PORT`: an IPv4 address (`127.0.0.1:9464`, `0.0.0.0:9464`), a host name
 * (`localhost:9464`) or a bracketed IPv6 address (`[::1]:9464`), and a decimal port 0–65535.
 * @returns the address, or a problem sentence (for config and usage errors).
 */
export function parseListenAddress(value: string): ListenAddress | { problem: string } {
  const bad = (why: string) => ({
    problem: `must be HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464; "" disables it): ${why}`,
  });
  const colon = value.lastIndexOf(":");
  if (colon < 0) return bad("no port");
  let host = value.slice(0, colon);
  const portText = value.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    return bad(`port "${portText}" is not a number from 0 to 65535`);
  }
  if (host.startsWith("[") && host.endsWith("]")) {
    host = host.slice(1, -1);
    if (!IPV6.test(host) || !host.includes(":")) return bad(`"[${host}]" is not an IPv6 address`);
  } else if (host.includes(":")) {
    return bad("an IPv6 address needs brackets, e.g. [::1]:9464");
  } else if (/^[\d.]+$/.test(host) ? !IPV4.test(host) : !HOST_NAME.test(host)) {
    return bad(`"${host}" is not an IPv4 address or a host name`);
  }
  return { hostname: host, port: Number(portText) };
}

/** `value` is `""` (disabled) or a valid `HOST:PORT`; else the problem (see {@linkcode parseListenAddress}). */
export function listenAddressProblem(value: string): string | undefined {
  if (value === "") return undefined;
  const parsed = parseListenAddress(value);
  return "problem" in parsed ? parsed.problem : undefined;
}

/** Formats an address for logs and URLs: `host:port`, IPv6 in brackets. */
export function formatListenAddress(address: ListenAddress): string {
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}
