/**
 * What MQTT and the broker URL allow: the rules of MQTT 3.1.1 (OASIS Standard, 29 October 2014)
 * for UTF-8 strings and topic names, and the broker URLs `npm:mqtt` can connect to.
 *
 * Each function returns a problem as a sentence (to become a config issue), or `undefined` when
 * the value is fine. None of them echoes a credential.
 *
 * @module
 */

/** Largest UTF-8 encoded MQTT string, in bytes (MQTT 3.1.1 §1.5.3: a 16-bit length prefix). */
export const MAX_MQTT_STRING_BYTES = 65_535;

/** URL schemes `npm:mqtt` connects with (TCP, TLS, WebSocket, secure WebSocket). */
export const BROKER_URL_SCHEMES: readonly string[] = ["mqtt", "mqtts", "tcp", "ssl", "ws", "wss"];

/** Schemes of {@linkcode BROKER_URL_SCHEMES} that use TLS. */
export const TLS_URL_SCHEMES: readonly string[] = ["mqtts", "ssl", "wss"];

const encoder = new TextEncoder();

/** The UTF-8 encoded length of `text`, in bytes (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8ByteLength(text: string): number {
  return encoder.encode(text).length;
}

/**
 * The first character an MQTT UTF-8 string must or should not contain, described, or
 * `undefined`. Source: MQTT 3.1.1 §1.5.3: U+0000 MUST NOT be included [MQTT-1.5.3-2], nor the
 * surrogates U+D800–U+DFFF [MQTT-1.5.3-1]; the control characters U+0001–U+001F and
 * U+007F–U+009F and Unicode non-characters (U+FDD0–U+FDEF, U+xFFFE and U+xFFFF) SHOULD NOT be
 * included, and a receiver MAY close the connection on them, so they are rejected here too.
 */
export function forbiddenCharacter(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdfff) {
      const next = text.charCodeAt(i + 1);
      if (unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const cp = text.codePointAt(i)!;
        i++;
        if ((cp & 0xfffe) === 0xfffe) return describe(cp, i - 1, "a Unicode non-character");
        continue;
      }
      return describe(unit, i, "a lone surrogate, invalid in UTF-8");
    }
    if (unit === 0) return describe(unit, i, "the null character");
    if (unit < 0x20 || (unit >= 0x7f && unit <= 0x9f)) {
      return describe(unit, i, "a control character");
    }
    if ((unit >= 0xfdd0 && unit <= 0xfdef) || unit === 0xfffe || unit === 0xffff) {
      return describe(unit, i, "a Unicode non-character");
    }
  }
  return undefined;
}

function describe(cp: number, index: number, what: string): string {
  const hex = cp.toString(16).toUpperCase().padStart(4, "0");
  return `U+${hex} (${what}) at character ${index + 1}`;
}

/**
 * The problem of an MQTT UTF-8 string (client id, user name), or `undefined`: at most
 * {@linkcode MAX_MQTT_STRING_BYTES} bytes and no character {@linkcode forbiddenCharacter} names.
 */
export function mqttStringProblem(text: string): string | undefined {
  const bytes = utf8ByteLength(text);
  if (bytes > MAX_MQTT_STRING_BYTES) {
    return `is ${bytes} bytes long in UTF-8; MQTT strings are at most ${MAX_MQTT_STRING_BYTES} ` +
      `bytes (MQTT 3.1.1 §1.5.3)`;
  }
  const bad = forbiddenCharacter(text);
  return bad === undefined
    ? undefined
    : `contains ${bad}, which MQTT forbids or discourages in strings (MQTT 3.1.1 §1.5.3)`;
}

/**
 * The problem of a topic name we publish or subscribe to (a full topic, or the prefix of one),
 * or `undefined`. Rules: not empty; at most `maxBytes` UTF-8 bytes (default 65,535, MQTT 3.1.1
 * §1.5.3, §4.7.3); no forbidden character (§1.5.3, see {@linkcode forbiddenCharacter}); no
 * wildcard `+` or `#` (§4.7.1: wildcards are for subscriptions, never in a topic name); not
 * starting with `$` (§4.7.2: such topics are the server's, e.g. mosquitto's `$SYS`, and a
 * subscription to `#` does not match them); no empty level (a leading or trailing `/` or `//`:
 * legal in MQTT but a distinct topic from the one without, almost always a typo).
 */
export function topicNameProblem(
  topic: string,
  maxBytes: number = MAX_MQTT_STRING_BYTES,
): string | undefined {
  if (topic.length === 0) return "must not be empty";
  const bytes = utf8ByteLength(topic);
  if (bytes > maxBytes) {
    return `is ${bytes} bytes long in UTF-8; at most ${maxBytes} bytes allowed` +
      (maxBytes === MAX_MQTT_STRING_BYTES ? " (MQTT 3.1.1 §1.5.3: a topic is an MQTT string)" : "");
  }
  const bad = forbiddenCharacter(topic);
  if (bad !== undefined) {
    return `contains ${bad}, which MQTT forbids or discourages in topics (MQTT 3.1.1 §1.5.3)`;
  }
  const wildcard = topic.search(/[+#]/);
  if (wildcard >= 0) {
    return `contains the wildcard "${topic[wildcard]}" at character ${wildcard + 1}; ` +
      `wildcards are only allowed in subscriptions, not in topic names (MQTT 3.1.1 §4.7.1)`;
  }
  if (topic.startsWith("$")) {
    return `starts with "$": such topics are reserved for the broker (e.g. $SYS) and not ` +
      `matched by the wildcard "#" (MQTT 3.1.1 §4.7.2)`;
  }
  if (topic.startsWith("/") || topic.endsWith("/") || topic.includes("//")) {
    return `has an empty topic level (a leading or trailing "/" or "//"); MQTT treats it as a ` +
      `different topic from the one without, which is almost always a mistake`;
  }
  return undefined;
}

/**
 * The problem of a broker URL, or `undefined`. It must parse as a URL (WHATWG `new URL()`), use
 * a scheme of {@linkcode BROKER_URL_SCHEMES}, name a host (`npm:mqtt` silently falls back to
 * `localhost` without one) that is an IP address or a host name (RFC 1123 §2.1 labels), have a
 * port in 1–65535 if any, and carry no user name or password: credentials come from
 * `usernameEnv`, `passwordEnv` or `passwordFile`, never from the config file. The message never
 * repeats the URL (it may contain a password).
 */
export function brokerUrlProblem(text: string): string | undefined {
  const schemes = BROKER_URL_SCHEMES.map((s) => `${s}://`).join(", ");
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(text)?.[1]?.toLowerCase();
  if (scheme === undefined || !BROKER_URL_SCHEMES.includes(scheme)) {
    return `must be an mqtt://, mqtts://, ws:// or wss:// URL (schemes: ${schemes})`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    const port = /^[^:]+:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*):(\d+)/.exec(text)?.[1];
    if (port !== undefined && Number(port) > 65535) {
      return `the port ${port} is out of range (1–65535)`;
    }
    return `is not a valid URL (e.g. a space or another character not allowed in a host name)`;
  }
  if (url.username !== "" || url.password !== "") {
    return `must not contain credentials (user info before "@"): put the user name in ` +
      `mqtt.username or mqtt.usernameEnv and the password in mqtt.passwordEnv or ` +
      `mqtt.passwordFile, so the config file holds no secret`;
  }
  const host = url.hostname;
  if (host === "" || !/^[^:]+:\/\//.test(text)) {
    return `names no host; write ${scheme}://HOST[:PORT]`;
  }
  const isIpv6 = host.startsWith("[") && host.endsWith("]");
  if (!isIpv6 && !isHostName(host)) {
    return `the host "${host}" is not a host name or IP address`;
  }
  if (url.port !== "" && (Number(url.port) < 1 || Number(url.port) > 65535)) {
    return `the port ${url.port} is out of range (1–65535)`;
  }
  return undefined;
}

/** RFC 1123 §2.1 host name (also matches dotted IPv4 addresses): labels of ≤ 63, ≤ 253 in all. */
function isHostName(host: string): boolean {
  const name = host.endsWith(".") ? host.slice(0, -1) : host;
  if (name.length === 0 || name.length > 253) return false;
  return name.split(".").every((label) =>
    label.length <= 63 && /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(label)
  );
}

/**
 * The broker URL as it may be logged: scheme, host, port and path only. User info (a password
 * written into the URL), query and fragment are dropped, so a URL that bypassed validation (a
 * config built in code, a test) still leaks no secret. Never throws: an unparseable URL becomes
 * `<invalid broker URL>` (its text might hold a secret too).
 */
export function brokerUrlForLog(text: string): string {
  try {
    const url = new URL(text);
    const path = url.pathname === "/" ? "" : url.pathname;
    return `${url.protocol}//${url.host}${path}`;
  } catch {
    return "<invalid broker URL>";
  }
}
