/**
 * Structured logging: one line per event, either human-readable or JSON (`--log-format json`),
 * each carrying the monotonic time `tMs` so timelines from one process can be compared exactly.
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
  /** `json` writes one JSON object per line; `text` (default) writes `tMs level event k=v`. */
  format?: "json" | "text";
  /** Lines below this level are dropped (default `info`). */
  level?: LogLevel;
  /** Line sink (default: stderr). */
  write?: (line: string) => void;
  /** Monotonic time source in ms (default `performance.now`). */
  nowMs?: () => number;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const encoder = new TextEncoder();

/** Creates a {@linkcode Logger}. */
export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const format = options.format ?? "text";
  const min = ORDER[options.level ?? "info"];
  const write = options.write ??
    ((line: string) => Deno.stderr.writeSync(encoder.encode(line + "\n")));
  const nowMs = options.nowMs ?? (() => performance.now());
  const emit = (level: LogLevel, event: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const tMs = Math.round(nowMs() * 1000) / 1000;
    const all = { ...base, ...fields };
    if (format === "json") {
      // wallMs (time origin + monotonic) lets lines of two processes on one host be compared.
      const wallMs = Math.round((performance.timeOrigin + tMs) * 1000) / 1000;
      write(JSON.stringify({ tMs, wallMs, level, event, ...all }));
    } else {
      const kv = Object.entries(all).map(([k, v]) =>
        `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
      ).join(" ");
      write(`${tMs.toFixed(3).padStart(12)} ${level.padEnd(5)} ${event}${kv ? " " + kv : ""}`);
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

/** A logger that drops everything. */
export const silentLogger: Logger = createLogger({ write: () => {} });
