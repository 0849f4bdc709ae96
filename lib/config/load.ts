/**
 * Loads and validates the configuration file, reporting every problem with its position.
 *
 * Three passes, all reported together:
 * 1. YAML (npm `yaml`, YAML 1.2): syntax errors, warnings (e.g. unresolved tags) and duplicate
 *    keys, at the position the parser gives (a duplicate key at its second occurrence);
 * 2. the zod schema ({@linkcode ConfigSchema}): each issue at the YAML node its path names, a
 *    missing key at the mapping that lacks it, an unknown key at the key itself;
 * 3. the semantic checks of `validate.ts` (references, uniqueness, timing, FTTI budgets), run on
 *    the raw data even when the schema failed, so that one run reports everything;
 * 4. ({@linkcode loadConfig} only) the environment check of `environment.ts`: the files and
 *    environment variables the config names exist and are usable here.
 *
 * After a YAML *syntax* error the document's structure is the parser's guess, so passes 2 and 3
 * are skipped: their findings would be follow-ups of the syntax error, not problems of their own.
 *
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Node as YamlNode,
  parseDocument,
} from "yaml";
import { z } from "zod";
import { type Config, ConfigSchema } from "./schema.ts";
import {
  formatPath,
  parsePath,
  type PathSegment,
  type SemanticIssue,
  semanticIssues,
} from "./validate.ts";
import { type ConfigNeeds, type EnvironmentAccess, environmentIssues } from "./environment.ts";

export type { ConfigNeeds, EnvironmentAccess } from "./environment.ts";

/** One problem of a configuration file. */
export interface ConfigIssue {
  /** Where in the data, like `nodes[1].heartbeatTimeoutMs`; `""` for the document itself. */
  path: string;
  /** 1-based line of the YAML node concerned. */
  line: number;
  /** 1-based column of the YAML node concerned. */
  column: number;
  /** What is wrong (and, for semantic problems, why it matters). */
  message: string;
}

/**
 * An invalid or unreadable configuration file. `message` is a header line followed by one line
 * per issue, `FILE:LINE:COL PATH: MESSAGE` (see {@linkcode formatIssue}), sorted by position.
 */
export class ConfigError extends Error {
  /** The file name as given to {@linkcode loadConfig} / {@linkcode parseConfig}. */
  readonly file: string;
  /** Every problem found, sorted by line then column. */
  readonly issues: ConfigIssue[];

  /** Creates the error; `issues` should be sorted already (see {@linkcode parseConfig}). */
  constructor(file: string, issues: ConfigIssue[]) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(
      [`invalid configuration ${file} (${count}):`, ...issues.map((i) => formatIssue(file, i))]
        .join("\n"),
    );
    this.name = "ConfigError";
    this.file = file;
    this.issues = issues;
  }
}

/**
 * Formats an issue as `FILE:LINE:COL PATH: MESSAGE` (the form editors and CI annotators jump
 * to); an empty path prints as `(root)`.
 */
export function formatIssue(file: string, issue: ConfigIssue): string {
  return `${file}:${issue.line}:${issue.column} ${issue.path || "(root)"}: ${issue.message}`;
}

/**
 * Environment variables the YAML parser (npm `yaml` 2.x, debug switches) reads on every parse.
 * Under Deno, parsing therefore needs `--allow-env=LOG_TOKENS,LOG_STREAM` (or `--allow-env`);
 * without it, and without a prompt, parsing fails with `NotCapable`.
 */
export const YAML_ENV_VARS: readonly string[] = ["LOG_TOKENS", "LOG_STREAM"];

/**
 * Parses and validates configuration text (the document only: no file or environment access).
 * @param text YAML text of one document.
 * @param file Name used in issues and messages (default `<config>`).
 * @returns the config with the schema's defaults applied.
 * @throws {ConfigError} listing every problem found (YAML, schema and semantic; see the module
 *   documentation), sorted by line and column.
 * @throws {Deno.errors.NotCapable} without env permission for `LOG_TOKENS` and `LOG_STREAM`,
 *   which npm `yaml` reads while parsing (see {@linkcode YAML_ENV_VARS}).
 */
export function parseConfig(text: string, file = "<config>"): Config {
  const result = analyze(text);
  if (result.config !== undefined && result.issues.length === 0) return result.config;
  return fail(file, result.issues);
}

/** Largest configuration file {@linkcode loadConfig} reads, in bytes (1 MiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /**
   * What the calling command needs beyond the MQTT settings (see {@linkcode ConfigNeeds}):
   * `run` passes `{ kubeconfig: true }` unless `--dry-run`; `agent`, `publish` and `check`
   * (without `--supervisor`) pass nothing.
   */
  needs?: ConfigNeeds;
  /** How files and variables named by the config are checked (default: the real ones). */
  environment?: EnvironmentAccess;
  /** Size cap of the file in bytes (default {@linkcode MAX_CONFIG_BYTES}). */
  maxBytes?: number;
}

/**
 * Reads and validates a configuration file (UTF-8 YAML), then checks that the files and
 * environment variables it names are there (`environment.ts`), so a config that cannot run is a
 * {@linkcode ConfigError} before anything starts.
 *
 * The file must be a regular file (not a directory, FIFO or device such as `/dev/zero`, which
 * would block or never end) of at most `maxBytes` (default 1 MiB, checked before reading; at most
 * `maxBytes + 1` bytes are ever read) in valid UTF-8. Needs `--allow-read` for `path` and the
 * files the config names, and env access to {@linkcode YAML_ENV_VARS} and the variables it names.
 * @returns the config with the schema's defaults applied.
 * @throws {ConfigError} when the file cannot be read (one issue at 1:1) or is invalid (every
 *   problem, see {@linkcode parseConfig}, plus the environment's).
 * @throws {Deno.errors.NotCapable} without env access to {@linkcode YAML_ENV_VARS}.
 */
export async function loadConfig(path: string, options: LoadConfigOptions = {}): Promise<Config> {
  const maxBytes = options.maxBytes ?? MAX_CONFIG_BYTES;
  let text: string;
  try {
    text = await readConfigFile(path, maxBytes);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(path, [
      { path: "", line: 1, column: 1, message: `cannot read the configuration file: ${reason}` },
    ]);
  }
  const result = analyze(text);
  if (result.raw !== undefined) {
    const found = await environmentIssues(result.raw, options.needs, options.environment);
    for (const issue of found) result.report(issue);
  }
  if (result.config !== undefined && result.issues.length === 0) return result.config;
  return fail(path, result.issues);
}

/**
 * The text of a configuration file: a regular file (checked with `stat` before opening, since
 * opening a FIFO blocks, and again on the open file), at most `maxBytes`, valid UTF-8.
 * @throws Error with a message that completes "cannot read the configuration file: ".
 */
async function readConfigFile(path: string, maxBytes: number): Promise<string> {
  const notRegular = (info: Deno.FileInfo) =>
    new Error(
      `not a regular file (${
        info.isDirectory ? "a directory" : "a device, FIFO or socket"
      }); give the path of a YAML file`,
    );
  const tooLarge = () =>
    new Error(`larger than ${maxBytes} bytes; a configuration file is at most that large`);
  const before = await Deno.stat(path);
  if (!before.isFile) throw notRegular(before);
  if (before.size > maxBytes) throw tooLarge();
  using file = await Deno.open(path, { read: true });
  const info = await file.stat();
  if (!info.isFile) throw notRegular(info);
  const buffer = new Uint8Array(maxBytes + 1);
  let length = 0;
  while (length < buffer.length) {
    const n = await file.read(buffer.subarray(length));
    if (n === null) break;
    length += n;
  }
  if (length > maxBytes) throw tooLarge();
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(buffer.subarray(0, length));
  } catch {
    throw new Error("not valid UTF-8; save the file as UTF-8");
  }
}

interface Analysis {
  /** The validated config when the schema passed (other issues may still exist). */
  config?: Config;
  /** The parsed data when the YAML had no syntax error (for the environment check). */
  raw?: unknown;
  /** Every issue so far, unsorted. */
  issues: ConfigIssue[];
  /** Adds an issue at the YAML position of its path. */
  report(issue: SemanticIssue): void;
}

/** YAML, schema and semantic passes over `text` (see the module documentation). */
function analyze(text: string): Analysis {
  const linePos = linePositions(text);
  const doc = parseYaml(text);
  const issues: ConfigIssue[] = [];
  const at = (offset: number, path: readonly PathSegment[], message: string) => {
    const { line, col } = linePos(offset);
    issues.push({ path: formatPath(path), line, column: col, message });
  };
  const report = (issue: SemanticIssue) => {
    const path = parsePath(issue.path);
    at(locate(doc, path, "value"), path, issue.message);
  };

  for (const error of doc.errors) {
    at(
      error.pos[0],
      pathAtOffset(doc.contents, error.pos[0]),
      `YAML syntax error: ${error.message}`,
    );
  }
  for (const warning of doc.warnings) {
    at(warning.pos[0], pathAtOffset(doc.contents, warning.pos[0]), `YAML: ${warning.message}`);
  }
  for (const dup of duplicateKeys(doc.contents)) {
    const first = linePos(dup.firstOffset);
    at(
      dup.offset,
      dup.path,
      `duplicate key "${dup.path.at(-1)}" (first at line ${first.line}, column ${first.col}); ` +
        `YAML keys must be unique, the later value would silently replace the earlier one`,
    );
  }
  if (doc.errors.length > 0) return { issues, report };

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (error) {
    at(0, [], `YAML: ${error instanceof Error ? error.message : String(error)}`);
    return { issues, report };
  }
  let config: Config | undefined;
  const result = ConfigSchema.safeParse(raw);
  if (result.success) config = result.data;
  else {
    for (const issue of result.error.issues) {
      const path = issue.path.filter((p): p is PathSegment => typeof p !== "symbol");
      if (issue.code === "unrecognized_keys") {
        const allowed = allowedKeys(path);
        for (const key of issue.keys) {
          const suggestion = closest(key, allowed);
          at(
            locate(doc, [...path, key], "key"),
            [...path, key],
            `unknown key "${key}"` +
              (suggestion
                ? `; did you mean "${suggestion}"?`
                : ` (allowed: ${allowed.join(", ")})`),
          );
        }
        continue;
      }
      at(locate(doc, path, "value"), path, schemaMessage(issue, raw, path));
    }
  }
  for (const issue of semanticIssues(raw)) report(issue);
  return { config, raw, issues, report };
}

/**
 * The 1-based line and column of an offset into `text` (columns in UTF-16 code units, as the YAML
 * parser's offsets). Counted on the text itself, not with the parser's `LineCounter`: that one
 * misses the line breaks inside a plain scalar the parser recovered after a syntax error, so every
 * later issue was reported lines too high (`    a: [x]\n- b: c\n    d: 1`: `d` at 2:35).
 */
function linePositions(text: string): (offset: number) => { line: number; col: number } {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return (offset) => {
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (starts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return { line: low + 1, col: offset - starts[low] + 1 };
  };
}

function parseYaml(text: string): Document.Parsed {
  try {
    return parseDocument(text, { prettyErrors: false, uniqueKeys: false });
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw new Deno.errors.NotCapable(
        `the YAML parser (npm:yaml) reads the environment variables ${
          YAML_ENV_VARS.join(" and ")
        }; ` +
          `run with --allow-env=${YAML_ENV_VARS.join(",")} (or --allow-env)`,
        { cause: error },
      );
    }
    throw error;
  }
}

function fail(file: string, issues: ConfigIssue[]): never {
  const sorted = issues
    .map((issue, order) => ({ issue, order }))
    .sort((a, b) =>
      a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.order - b.order
    )
    .map((entry) => entry.issue);
  throw new ConfigError(file, sorted);
}

// ---------------------------------------------------------------------------------------------
// Positions.

/** Offset of the node at `path`: its value, or with `key` the key of its last step; the deepest
 * existing ancestor when the path does not exist (so a missing key points at its mapping). An
 * empty value (`key:` and nothing) points at its key. */
function locate(doc: Document.Parsed, path: readonly PathSegment[], at: "value" | "key"): number {
  let node: unknown = doc.contents;
  let offset = rangeOf(node)?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    if (isAlias(node)) node = node.resolve(doc);
    const segment = path[i];
    if (isMap(node)) {
      const pair = node.items.findLast((p) =>
        isScalar(p.key) && String(p.key.value) === String(segment)
      );
      if (pair === undefined) return offset;
      const keyOffset = rangeOf(pair.key)?.[0] ?? offset;
      const valueRange = rangeOf(pair.value);
      if ((i === path.length - 1 && at === "key") || valueRange === undefined) return keyOffset;
      if (valueRange[0] === valueRange[1] && isScalar(pair.value) && pair.value.value === null) {
        return keyOffset; // `key:` with no value
      }
      node = pair.value;
      offset = valueRange[0];
    } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
      node = node.items[segment];
      offset = rangeOf(node)?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

/** The path of the innermost node around `offset` (best effort, for YAML errors). */
function pathAtOffset(node: unknown, offset: number, path: PathSegment[] = []): PathSegment[] {
  if (isMap(node)) {
    for (const pair of node.items) {
      const start = rangeOf(pair.key)?.[0] ?? rangeOf(pair.value)?.[0];
      const end = rangeOf(pair.value)?.[2] ?? rangeOf(pair.key)?.[2];
      if (start === undefined || end === undefined || offset < start || offset >= end) continue;
      if (!isScalar(pair.key)) return path;
      return pathAtOffset(pair.value, offset, [...path, String(pair.key.value)]);
    }
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      const range = rangeOf(item);
      if (range !== undefined && offset >= range[0] && offset < range[2]) {
        return pathAtOffset(item, offset, [...path, index]);
      }
    }
  }
  return path;
}

interface DuplicateKey {
  path: PathSegment[];
  offset: number;
  firstOffset: number;
}

/** Every repeated key of every mapping, at its second (third, …) occurrence. */
function duplicateKeys(node: unknown, path: PathSegment[] = [], out: DuplicateKey[] = []) {
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      if (!isScalar(pair.key)) continue;
      const key = String(pair.key.value);
      const offset = rangeOf(pair.key)?.[0] ?? 0;
      const firstOffset = seen.get(key);
      if (firstOffset === undefined) seen.set(key, offset);
      else out.push({ path: [...path, key], offset, firstOffset });
      duplicateKeys(pair.value, [...path, key], out);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => duplicateKeys(item, [...path, index], out));
  }
  return out;
}

function rangeOf(node: unknown): [number, number, number] | undefined {
  if (node === null || typeof node !== "object" || !("range" in node)) return undefined;
  return (node as YamlNode).range ?? undefined;
}

// ---------------------------------------------------------------------------------------------
// Schema messages.

function schemaMessage(issue: z.core.$ZodIssue, raw: unknown, path: PathSegment[]): string {
  const value = valueAt(raw, path);
  if (path.length === 0 && (value === null || value === undefined)) {
    return `the document is empty; expected a mapping with at least a "nodes" list`;
  }
  if (issue.code === "invalid_type" && path.length > 0 && value === undefined) {
    const parent = valueAt(raw, path.slice(0, -1));
    const key = path[path.length - 1];
    if (isRecord(parent) && !Object.hasOwn(parent, key)) {
      return `missing required key "${key}" (expected ${issue.expected})`;
    }
  }
  if (issue.code === "invalid_type" && value === null && schemaAt(path) instanceof z.ZodDefault) {
    return `${issue.message} (the value is empty; remove the key to use the defaults)`;
  }
  return issue.message;
}

function valueAt(raw: unknown, path: readonly PathSegment[]): unknown {
  let value = raw;
  for (const segment of path) {
    if (Array.isArray(value) && typeof segment === "number") value = value[segment];
    else if (isRecord(value)) value = value[segment];
    else return undefined;
  }
  return value;
}

function isRecord(value: unknown): value is Record<PropertyKey, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The schema at `path` (wrappers such as defaults kept on the last step). */
function schemaAt(path: readonly PathSegment[]): z.ZodType | undefined {
  let schema: z.ZodType = ConfigSchema;
  for (const segment of path) {
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject && typeof segment === "string") {
      const next = (inner.shape as Record<string, z.ZodType>)[segment];
      if (next === undefined) return undefined;
      schema = next;
    } else if (inner instanceof z.ZodArray && typeof segment === "number") {
      schema = inner.element as z.ZodType;
    } else {
      return undefined;
    }
  }
  return schema;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodPrefault) {
    s = s.unwrap() as z.ZodType;
  }
  return s;
}

function allowedKeys(path: readonly PathSegment[]): string[] {
  const schema = schemaAt(path);
  const inner = schema === undefined ? undefined : unwrap(schema);
  return inner instanceof z.ZodObject ? Object.keys(inner.shape) : [];
}

/** The allowed key closest to a misspelt one, if close enough to be a likely typo. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of allowed) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (best === undefined || distance < best.distance) best = { key: candidate, distance };
  }
  const limit = key.length >= 12 ? 3 : 2;
  return best !== undefined && best.distance <= limit ? best.key : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}
