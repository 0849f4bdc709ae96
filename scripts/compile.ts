/**
 * `deno task compile [TARGET...]`: one self-contained `sdv-failover` binary per target in `dist/`,
 * with the narrowest permission set the program needs (no `-A`) and the version embedded.
 *
 * `deno compile` needs the `denort` runtime of each target, which it downloads from Deno's own
 * host; where that host is unreachable, give a local runtime: `DENORT_BIN=/path/to/denort`
 * (for a single target) or `DENORT_BIN_<ARCH>` (`DENORT_BIN_AARCH64`, `DENORT_BIN_X86_64`).
 * Without one, this fails fast and says so.
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/** Permissions the compiled binary runs with (see README, "Permissions"). */
export const PERMISSIONS = ["--allow-net", "--allow-read", "--allow-env", "--allow-sys"];
const TARGETS = ["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"];

if (import.meta.main) {
  const targets = Deno.args.length ? Deno.args : TARGETS;
  let failed = 0;
  Deno.mkdirSync("dist", { recursive: true });
  for (const target of targets) {
    const arch = target.split("-")[0].toUpperCase();
    const denort = Deno.env.get(`DENORT_BIN_${arch}`) ??
      (targets.length === 1 ? Deno.env.get("DENORT_BIN") : undefined);
    const output = `dist/sdv-failover-${denoJson.version}-${target}`;
    const env: Record<string, string> = denort ? { DENORT_BIN: denort } : {};
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "compile",
        "--target",
        target,
        "--output",
        output,
        ...PERMISSIONS,
        "--no-prompt",
        "main.ts",
      ],
      env,
      stdout: "inherit",
      stderr: "piped",
    });
    const out = await cmd.output();
    const err = new TextDecoder().decode(out.stderr);
    if (out.code === 0) {
      console.log(`compiled ${output}`);
      continue;
    }
    failed++;
    console.error(err.trim());
    if (!denort) {
      console.error(
        `compile ${target}: the denort runtime could not be obtained (Deno's download host is not reachable). ` +
          `Provide it: DENORT_BIN_${arch}=/path/to/denort deno task compile ${target} ` +
          `(or DENORT_BIN=… for a single target). See README, "Building the binary".`,
      );
    }
  }
  if (failed) Deno.exitCode = 1;
}
