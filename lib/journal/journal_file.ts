/**
 * The failover journal file: one JSON line per incident ({@linkcode IncidentRecord}), appended
 * and bounded.
 *
 * - **Append-only, flushed per incident:** each record is one `write` of one whole line to a file
 *   opened for appending (`Deno.writeTextFile` with `append`), so a crash loses at most the
 *   incident being written and never leaves another line torn; no fsync (the page cache reaches
 *   the disk within seconds; an fsync could stall for long on an eMMC).
 * - **Bounded:** when a line would take the file past `maxBytes`, the file is renamed to
 *   `<path>.1` (replacing the older one) and a new file is started, so the journal holds at most
 *   ≈ 2 × `maxBytes` on disk, the newest incidents always kept.
 * - **Never stops supervision:** writes run one at a time in the background; a failure is logged
 *   once per streak (`journal-write-failed`, then `journal-write-recovered` with the number of
 *   incidents lost), never thrown.
 *
 * @module
 */
import type { Logger } from "../log/log.ts";
import { type IncidentRecord, IncidentRecordSchema } from "./record.ts";

/** The prefix of `journal.path` replaced by `$STATE_DIRECTORY/` (systemd's `StateDirectory=`). */
export const STATE_PREFIX = "${STATE_DIRECTORY}/";
/** The environment variable systemd sets for a unit with `StateDirectory=`. */
export const STATE_DIRECTORY_ENV = "STATE_DIRECTORY";
/** The journal's file name in the state directory when `journal.path` is not given. */
export const DEFAULT_JOURNAL_FILE = "journal.jsonl";

/** Where the journal goes: a file, off (with why), or a configuration problem (exit 2). */
export type JournalPath = { path: string } | { off: string } | { error: string };

/**
 * Resolves `journal.path`: absent → `$STATE_DIRECTORY/journal.jsonl` when systemd gave the unit a
 * state directory, else off; `""` → off; a leading `${STATE_DIRECTORY}/` replaced by the
 * variable (unset: an error); any other path as given.
 * @param getEnv reads an environment variable (e.g. `Deno.env.get`).
 */
export function resolveJournalPath(
  path: string | undefined,
  getEnv: (name: string) => string | undefined,
): JournalPath {
  const dir = getEnv(STATE_DIRECTORY_ENV)?.split(":")[0]?.replace(/\/+$/, "");
  if (path === undefined) {
    return dir
      ? { path: `${dir}/${DEFAULT_JOURNAL_FILE}` }
      : { off: `no journal.path and ${STATE_DIRECTORY_ENV} not set (systemd StateDirectory=)` };
  }
  if (path === "") return { off: "journal.path is empty" };
  if (!path.startsWith(STATE_PREFIX)) return { path };
  if (!dir) {
    return {
      error: `journal.path "${path}": the environment variable ${STATE_DIRECTORY_ENV} is not ` +
        `set; systemd sets it for a unit with StateDirectory= (elsewhere, set it or give a path)`,
    };
  }
  return { path: `${dir}/${path.slice(STATE_PREFIX.length)}` };
}

/** Options of {@linkcode JournalFile.open}. */
export interface JournalFileOptions {
  path: string;
  /** Size at which the file is rotated to `<path>.1`, bytes. */
  maxBytes: number;
  log: Logger;
}

/** Counters of a {@linkcode JournalFile}. */
export interface JournalStats {
  /** Incidents written. */
  written: number;
  /** Incidents lost to write failures. */
  failed: number;
  /** Rotations to `<path>.1`. */
  rotations: number;
  /** Bytes of the last line written. */
  lastLineBytes: number;
}

const encoder = new TextEncoder();

/** The journal file, open for appending. */
export class JournalFile {
  readonly #path: string;
  readonly #maxBytes: number;
  readonly #log: Logger;
  #sizeBytes: number;
  #chain: Promise<void> = Promise.resolve();
  #streak = 0;
  readonly stats: JournalStats = { written: 0, failed: 0, rotations: 0, lastLineBytes: 0 };

  private constructor(options: JournalFileOptions, sizeBytes: number) {
    this.#path = options.path;
    this.#maxBytes = options.maxBytes;
    this.#log = options.log;
    this.#sizeBytes = sizeBytes;
  }

  /**
   * Checks that the journal can be written (creating the file when absent; its directory must
   * exist) and opens it.
   * @throws Error naming the path and the reason when it cannot be written (a directory, no
   *   permission, a missing directory, a read-only file system).
   */
  static async open(options: JournalFileOptions): Promise<JournalFile> {
    try {
      const file = await Deno.open(options.path, { append: true, create: true });
      try {
        const info = await file.stat();
        if (!info.isFile) throw new Error("not a regular file");
        return new JournalFile(options, info.size);
      } finally {
        file.close();
      }
    } catch (error) {
      throw new Error(
        `journal "${options.path}" cannot be written: ${(error as Error).message}`,
      );
    }
  }

  /** The journal's path. */
  get path(): string {
    return this.#path;
  }

  /** Appends one incident (in the background, one write at a time); never rejects. */
  append(record: IncidentRecord): Promise<void> {
    const bytes = encoder.encode(JSON.stringify(record) + "\n");
    this.#chain = this.#chain.then(() => this.#write(bytes, record.id));
    return this.#chain;
  }

  /** Resolves when every append so far is written (or failed). */
  flush(): Promise<void> {
    return this.#chain;
  }

  async #write(bytes: Uint8Array, id: string): Promise<void> {
    try {
      if (this.#sizeBytes > 0 && this.#sizeBytes + bytes.length > this.#maxBytes) {
        await Deno.rename(this.#path, `${this.#path}.1`);
        this.#sizeBytes = 0;
        this.stats.rotations++;
      }
      await Deno.writeFile(this.#path, bytes, { append: true, create: true });
      this.#sizeBytes += bytes.length;
      this.stats.written++;
      this.stats.lastLineBytes = bytes.length;
      if (this.#streak > 0) {
        this.#log.info("journal-write-recovered", { path: this.#path, lost: this.#streak });
        this.#streak = 0;
      }
    } catch (error) {
      this.stats.failed++;
      if (this.#streak++ === 0) {
        this.#log.error("journal-write-failed", {
          path: this.#path,
          incident: id,
          error: (error as Error).message,
          action: "incident not journaled; supervision continues (logged once until a write works)",
        });
      }
    }
  }
}

/** The incidents of a journal and what could not be read. */
export interface JournalContents {
  /** Oldest first (`<path>.1` before `<path>`). */
  incidents: IncidentRecord[];
  /** Lines that are not valid JSON or not a record of this schema version, count. */
  malformed: number;
}

/**
 * Reads a journal and its rotated predecessor `<path>.1` (when present).
 * @throws Deno.errors.NotFound when `path` does not exist; other I/O errors as thrown.
 */
export async function readJournal(path: string): Promise<JournalContents> {
  const texts: string[] = [];
  try {
    texts.push(await Deno.readTextFile(`${path}.1`));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  texts.push(await Deno.readTextFile(path));
  const incidents: IncidentRecord[] = [];
  let malformed = 0;
  for (const line of texts.join("\n").split("\n")) {
    if (line.trim() === "") continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      malformed++;
      continue;
    }
    const parsed = IncidentRecordSchema.safeParse(json);
    if (parsed.success) incidents.push(parsed.data);
    else malformed++;
  }
  return { incidents, malformed };
}
