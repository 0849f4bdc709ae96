/**
 * The commit a benchmark or campaign ran on, for its results file.
 *
 * @module
 */

/** The commit under test (`git describe --always --dirty --abbrev=12`), or "unknown" outside a
 * checkout or without git. */
export async function gitCommit(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["describe", "--always", "--dirty", "--abbrev=12"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}
