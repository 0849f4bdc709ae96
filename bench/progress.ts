/**
 * Progress lines on stderr while the benchmark runs: what runs, repetition n of N, elapsed time.
 *
 * @module
 */

/** Formats seconds as `m:ss` (or `h:mm:ss`). */
export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Prints progress lines prefixed with the elapsed time since construction. */
export class Progress {
  readonly #t0 = performance.now();
  readonly #write: (line: string) => void;

  constructor(write: (line: string) => void = (l) => console.error(l)) {
    this.#write = write;
  }

  /** Seconds since start. */
  get elapsedS(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  /** One line: `[bench 3:07] <text>`. */
  line(text: string): void {
    this.#write(`[bench ${formatElapsed(this.elapsedS)}] ${text}`);
  }

  /** `[bench 3:07] ours-fast node-crash rep 7/50 …`. */
  rep(what: string, n: number, of: number, detail = ""): void {
    this.line(`${what} rep ${n}/${of}${detail ? ` ${detail}` : ""}`);
  }
}
