/**
 * A child process that prints JSON lines (the origin master, the load publisher): spawn, collect
 * the parsed lines, wait for one, stop.
 *
 * @module
 */

/** A parsed JSON line. */
export type JsonLine = Record<string, unknown> & { event?: string };

/** A running JSON-lines child. */
export interface JsonChild {
  pid: number;
  /** Parsed stdout lines so far. */
  lines: JsonLine[];
  /** Other output (stderr, non-JSON stdout), for diagnostics. */
  raw: string[];
  /** Called on every parsed line. */
  onLine?: (line: JsonLine) => void;
  /** Resolves with the first matching line (seen or future), or rejects after `timeoutMs`. */
  waitFor(pred: (l: JsonLine) => boolean, timeoutMs: number, what: string): Promise<JsonLine>;
  /** SIGTERM (SIGKILL after `graceMs`), then the exit code. */
  stop(graceMs?: number): Promise<number>;
  /** Resolves with the exit code when the process ends by itself. */
  status: Promise<number>;
}

/** Spawns `cmd args` and parses its stdout as JSON lines. */
export function spawnJson(cmd: string, args: string[]): JsonChild {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: JsonLine[] = [];
  const raw: string[] = [];
  const waiters = new Set<{ pred: (l: JsonLine) => boolean; resolve: (l: JsonLine) => void }>();
  const self: JsonChild = {
    pid: child.pid,
    lines,
    raw,
    waitFor(pred, timeoutMs, what) {
      const seen = lines.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = {
          pred,
          resolve: (l: JsonLine) => {
            clearTimeout(timer);
            waiters.delete(w);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(
            new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${raw.slice(-5)}`),
          );
        }, timeoutMs);
        waiters.add(w);
      });
    },
    async stop(graceMs = 3000) {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, graceMs);
      const code = await self.status;
      clearTimeout(timer);
      await pumps;
      return code;
    },
    status: child.status.then((s) => s.code),
  };
  const pump = async (stream: ReadableStream<Uint8Array>, json: boolean) => {
    let buffer = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: JsonLine | undefined;
        if (json && text.startsWith("{")) {
          try {
            line = JSON.parse(text);
          } catch { /* not JSON */ }
        }
        if (!line) {
          raw.push(text);
          continue;
        }
        lines.push(line);
        self.onLine?.(line);
        for (const w of [...waiters]) if (w.pred(line)) w.resolve(line);
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout, true), pump(child.stderr, false)]);
  return self;
}
