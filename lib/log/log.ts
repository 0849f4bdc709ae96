/**
 * Structured logging: one line per event, either logfmt text (default) or JSON (`--log-format
 * json`).
 *
 * Every line carries `time` (wall time, ISO 8601 UTC with ms: for people and the journal), `tMs`
 * (the process's monotonic clock, ms: timelines from one process compare exactly), `level` and
 * `msg` (the event's name, a kebab-case word such as `expired` or `ingest-fault`), then the event's
 * own fields.
 *
 * - JSON: `{"time":"…","tMs":12.345,"wallMs":…,"level":"warn","msg":"expired","event":"expired",…}`.
 *   `wallMs` is the time origin plus `tMs` (µs precision; lines of two processes on one host
 *   compare). `event` repeats `msg` for the parsers written before `msg` existed (tests, bench,
 *   campaign); new code reads `msg`.
 * - Text: logfmt (https://brandur.org/logfmt): `time=… level=warn msg=expired tMs=12.345 k=v …`.
 *   A value is written bare unless it is empty or holds a space, `=`, `"` or a control character;
 *   then it is quoted with `"` and `\`, `"` and control characters are escaped (`\n`, `\t`, `\r`,
 *   `\uXXXX`). Arrays of strings and numbers are joined with `,`; other objects are written as JSON.
 *   Fields whose value is `undefined` are left out (as in JSON).
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
/** Extra structured fields of a log line. */
export type LogFields = Record<string, unknown>;

/** A structured logger. */
export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  /** `json` writes one JSON object per line; `text` (default) writes one logfmt line. */
  format?: "json" | "text";
  /** Lines below this level are dropped (default `info`). */
  level?: LogLevel;
  /** Line sink (default: stderr). */
  write?: (line: string) => void;
  /** Monotonic time source in ms (default `performance.now`): the `tMs` field. */
  nowMs?: () => number;
  /** Wall-clock time source in ms since the epoch (default `Date.now`): the `time` field. */
  wallNowMs?: () => number;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const encoder = new TextEncoder();
/** Names of the fields every line starts with; an event field of the same name is prefixed `_`. */
const HEADER = new Set(["time", "tMs", "wallMs", "level", "msg", "event"]);

/** Creates a {@linkcode Logger}. */
export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const format = options.format ?? "text";
  const min = ORDER[options.level ?? "info"];
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const nowMs = options.nowMs ?? (() => performance.now());
  const wallNowMs = options.wallNowMs ?? (() => Date.now());
  const emit = (level: LogLevel, event: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const tMs = Math.round(nowMs() * 1000) / 1000;
    const time = new Date(wallNowMs()).toISOString();
    const all: LogFields = {};
    for (const [k, v] of Object.entries({ ...base, ...fields })) {
      all[HEADER.has(k) ? `_${k}` : k] = v;
    }
    if (format === "json") {
      const wallMs = Math.round((performance.timeOrigin + tMs) * 1000) / 1000;
      write(JSON.stringify({ time, tMs, wallMs, level, msg: event, event, ...all }));
    } else {
      let line = `time=${time} level=${level} msg=${logfmtValue(event)} tMs=${tMs.toFixed(3)}`;
      for (const [k, v] of Object.entries(all)) {
        if (v !== undefined) line += ` ${k}=${logfmtValue(v)}`;
      }
      write(line);
    }
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/**
 * A value as logfmt writes it: bare, or quoted and escaped when it is empty or contains a space,
 * `=`, `"`, `\` or a control character (see the module documentation).
 */
export function logfmtValue(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (value === null || typeof value !== "object") text = String(value);
  else if (
    Array.isArray(value) && value.every((x) => typeof x === "string" || typeof x === "number")
  ) {
    text = value.join(",");
  } else text = JSON.stringify(value) ?? String(value);
  // deno-lint-ignore no-control-regex
  if (text !== "" && !/[\s="\\\u0000-\u001f\u007f]/.test(text)) return text;
  // deno-lint-ignore no-control-regex
  return `"${text.replace(/[\\"\u0000-\u001f\u007f]/g, escapeChar)}"`;
}

function escapeChar(c: string): string {
  switch (c) {
    case "\\":
      return "\\\\";
    case '"':
      return '\\"';
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default:
      return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  }
}

/**
 * Parses one logfmt line as {@linkcode createLogger} writes it (for tests and tools): every
 * `key=value` pair, quoted values unescaped; values stay strings.
 * @throws SyntaxError on an unterminated quoted value.
 */
export function parseLogfmt(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < line.length) {
    while (line[i] === " ") i++;
    if (i >= line.length) break;
    const eq = line.indexOf("=", i);
    const sp = line.indexOf(" ", i);
    if (eq < 0 || (sp >= 0 && sp < eq)) {
      const end = sp < 0 ? line.length : sp;
      out[line.slice(i, end)] = "";
      i = end;
      continue;
    }
    const key = line.slice(i, eq);
    i = eq + 1;
    if (line[i] === '"') {
      let value = "";
      i++;
      for (;;) {
        if (i >= line.length) throw new SyntaxError(`unterminated value of ${key}: ${line}`);
        const c = line[i++];
        if (c === '"') break;
        if (c !== "\\") {
          value += c;
          continue;
        }
        const e = line[i++];
        if (e === "n") value += "\n";
        else if (e === "r") value += "\r";
        else if (e === "t") value += "\t";
        else if (e === "u") {
          value += String.fromCharCode(parseInt(line.slice(i, i + 4), 16));
          i += 4;
        } else value += e;
      }
      out[key] = value;
    } else {
      const space = line.indexOf(" ", i);
      const end = space < 0 ? line.length : space;
      out[key] = line.slice(i, end);
      i = end;
    }
  }
  return out;
}

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ write: () => {} });
