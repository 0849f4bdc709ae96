/**
 * Fuzz of the configuration loader: ≥ 10,000 mutated configs, derived from `config/example.yaml`
 * and `config/fast.yaml` by mutating their YAML text (deleted, duplicated, swapped or re-indented
 * lines, flipped characters, truncation, nasty tokens) and their parsed values (deleted keys, wrong
 * types, out-of-range numbers, bad names and topics, duplicate list items), through `parseConfig`.
 * The only error allowed is a `ConfigError` whose every issue has a path and a line:column inside
 * the text; a config that parses builds a topology.
 *
 * Reproduce a failure with the printed seed: `FUZZ_SEED=<seed> deno test -A tests/config_fuzz_test.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parse, stringify } from "yaml";
import { ConfigError, parseConfig } from "../lib/config/load.ts";
import { buildTopology } from "../lib/topology/topology.ts";
import { fuzzSeed, NASTY_STRINGS, Rand } from "./fuzz/random.ts";

const CONFIGS = 10_000;

const sources = ["example.yaml", "fast.yaml"].map((name) => ({
  name,
  text: Deno.readTextFileSync(new URL(`../config/${name}`, import.meta.url)),
}));

const BAD_TOPICS = [
  "",
  "/",
  "sdv/#",
  "sdv/+/x",
  "a\u0000b",
  "x".repeat(300),
  "$SYS/x",
  "sdv//x",
  "😀",
];
const BAD_NUMBERS = [-1, 0, 0.5, 1.5, 1e12, -1e12, 2 ** 53, 1e308, Number.NaN, Infinity, -Infinity];
const BAD_NAMES = [...NASTY_STRINGS, "Worker-Node2", "worker_node2", "a".repeat(254), "x.", "-"];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every container (object or array) in `value`, with itself. */
function containers(value: Json, out: (Json[] | { [k: string]: Json })[] = []) {
  if (value !== null && typeof value === "object") {
    out.push(value);
    for (const v of Object.values(value)) containers(v, out);
  }
  return out;
}

/** One mutation of the parsed config, in place (the root may be replaced: returned). */
function mutateValue(r: Rand, root: Json): Json {
  const all = containers(root);
  if (all.length === 0 || r.chance(0.01)) return r.pick<Json>([null, "x", 1, [], {}, [root]]);
  const c = r.pick(all);
  const keys = Object.keys(c);
  if (keys.length === 0) return root;
  const key = r.pick(keys);
  const get = () => (c as Record<string, Json>)[key];
  const set = (v: Json) => ((c as Record<string, Json>)[key] = v);
  const old = get();
  switch (r.int(9)) {
    case 0: // delete a key / an item
      if (Array.isArray(c)) c.splice(Number(key), 1);
      else delete c[key];
      break;
    case 1: // a wrong type
      set(r.wrongValue() as Json);
      break;
    case 2: // an out-of-range number
      set(r.pick(BAD_NUMBERS));
      break;
    case 3: // a bad name
      set(r.pick(BAD_NAMES));
      break;
    case 4: // a bad topic
      set(r.pick(BAD_TOPICS));
      break;
    case 5: // duplicate a list item (duplicate names) or a sibling's value
      if (Array.isArray(c)) c.push(structuredClone(r.pick(c)));
      else set(structuredClone(c[r.pick(keys)]));
      break;
    case 6: // a near value
      if (typeof old === "number") set(r.pick([old - 1, old + 1, old * 1000, -old, old / 3]));
      else if (typeof old === "string") set(old + r.pick(["x", "-", ".", " ", "2"]));
      else set(r.pick([[], {}, null]));
      break;
    case 7: // an unknown key
      if (!Array.isArray(c)) c[r.pick(["nodez", "timeoutMS", "extra", key + "s"])] = 1;
      break;
    default: // an empty list or mapping
      set(Array.isArray(old) ? [] : typeof old === "object" ? {} : null);
  }
  return root;
}

/** One mutation of the YAML text. */
function mutateText(r: Rand, text: string): string {
  const lines = text.split("\n");
  const at = r.int(lines.length);
  switch (r.int(10)) {
    case 0:
      lines.splice(at, 1);
      break;
    case 1:
      lines.splice(at, 0, lines[r.int(lines.length)]);
      break;
    case 2: {
      const other = r.int(lines.length);
      [lines[at], lines[other]] = [lines[other], lines[at]];
      break;
    }
    case 3:
      lines[at] = r.pick(["", " ", "  ", "\t", "    "]) + lines[at].trimStart();
      break;
    case 4: { // flip a character
      if (text.length === 0) return text;
      const i = r.int(text.length);
      return text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ (1 << r.int(7))) +
        text.slice(i + 1);
    }
    case 5:
      return text.slice(0, r.int(text.length + 1));
    case 6: { // a nasty token
      const i = r.int(text.length + 1);
      const token = r.pick([
        ":",
        ": :",
        "- ",
        "{",
        "[",
        "&a ",
        "*a",
        "!!binary ",
        "!custom ",
        "? ",
        "|",
        "'",
        '"',
        "#",
        "\t",
        "\u0000",
        "\ufeff",
        "---\n",
        "...\n",
        "<<: *a\n",
        ".nan",
        "1e400",
        "0x1F",
        "~",
      ]);
      return text.slice(0, i) + token + text.slice(i);
    }
    case 7: // a value replaced
      lines[at] = lines[at].replace(
        /: .*$/,
        `: ${r.pick(["-1", "1e400", "null", "[]", "{}", "yes", '""', "0.5", ".inf"])}`,
      );
      break;
    case 8:
      lines[at] = lines[at] + r.pick([" # c", " x", ":", " - a"]);
      break;
    default:
      return r.unicode(40) + text;
  }
  return lines.join("\n");
}

Deno.test(`fuzz: parseConfig on ${CONFIGS} mutated configs`, () => {
  const seed = fuzzSeed("config fuzz");
  const r = new Rand(seed);
  const parsed = sources.map((s) => parse(s.text) as Json);
  let ok = 0;
  let rejected = 0;
  let issues = 0;
  for (let i = 0; i < CONFIGS; i++) {
    const s = r.int(sources.length);
    let text: string;
    if (r.chance(0.5)) {
      text = sources[s].text;
      for (let k = 1 + r.int(3); k > 0; k--) text = mutateText(r, text);
    } else {
      let value = structuredClone(parsed[s]);
      for (let k = 1 + r.int(3); k > 0; k--) value = mutateValue(r, value);
      text = stringify(value);
      if (r.chance(0.2)) text = mutateText(r, text);
    }
    const where = () =>
      `seed ${seed}, config ${i} (from ${sources[s].name}):\n${text.slice(0, 2000)}`;
    const lines = text.split("\n"); // as the YAML parser counts them
    let config;
    try {
      config = parseConfig(text, "fuzz.yaml");
    } catch (error) {
      if (!(error instanceof ConfigError)) {
        assert.fail(`not a ConfigError: ${(error as Error)?.stack ?? error} (${where()})`);
      }
      rejected++;
      assert.ok(error.issues.length >= 1, `a ConfigError without issues (${where()})`);
      for (const issue of error.issues) {
        issues++;
        const at = `${issue.line}:${issue.column} ${issue.path}: ${issue.message} (${where()})`;
        assert.equal(typeof issue.path, "string", where());
        assert.ok(issue.message.length > 0, where());
        assert.ok(
          Number.isInteger(issue.line) && issue.line >= 1 && issue.line <= lines.length,
          `line out of the text's ${lines.length}: ${at}`,
        );
        assert.ok(
          Number.isInteger(issue.column) && issue.column >= 1 &&
            issue.column <= lines[issue.line - 1].length + 1,
          `column out of its line: ${at}`,
        );
      }
      continue;
    }
    ok++;
    try {
      buildTopology(config);
    } catch (error) {
      assert.fail(`a valid config did not build a topology: ${error} (${where()})`);
    }
  }
  assert.equal(ok + rejected, CONFIGS);
  console.log(
    `config fuzz: ${CONFIGS} configs, ${ok} valid (topology built), ${rejected} rejected with ${issues} issues`,
  );
});
