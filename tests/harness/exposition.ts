/**
 * Reads a Prometheus text exposition (what `/metrics` serves) into samples, for assertions.
 *
 * @module
 */

/** `name{labels}` (labels as printed) → value of every sample line; comments are skipped. */
export function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}
