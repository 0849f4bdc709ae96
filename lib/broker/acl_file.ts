/**
 * Renders the mosquitto `acl_file` of a vehicle from its {@linkcode BusIdentity} list.
 *
 * Format (mosquitto.conf(5), `acl_file`): `user <name>` starts the rules of one user name; each
 * `topic read|write|readwrite <topic>` line grants one topic; a line starting with `#` is a
 * comment. With an ACL file in force, mosquitto grants only what is listed: no anonymous rules
 * are written (the listener refuses anonymous clients anyway), and no `pattern` lines (they would
 * apply to every user).
 *
 * @module
 */
import type { BusIdentity } from "./identities.ts";

/** Options of {@linkcode renderAclFile}. */
export interface RenderAclFileOptions {
  /** Every identity and its rights (`busIdentities`). */
  identities: readonly BusIdentity[];
  /** First comment line (e.g. which config it was generated from); default none. */
  header?: string;
}

/**
 * The topic's problem as an ACL file entry, or `undefined`: mosquitto reads a rule up to the end
 * of its line and trims blanks, and treats `+` and `#` as wildcards, so a topic with white space
 * or a wildcard character could grant something else than meant. (The config's own rules already
 * refuse wildcards and control characters; white space is legal MQTT but not here.)
 */
export function aclTopicProblem(topic: string): string | undefined {
  if (/\s/.test(topic)) {
    return `the topic "${topic}" contains white space, which an ACL file cannot express exactly`;
  }
  if (/[+#]/.test(topic)) return `the topic "${topic}" contains an MQTT wildcard (+ or #)`;
  return undefined;
}

/**
 * The ACL file text: a comment, then per identity a `user` line and one `topic` line per topic
 * (`readwrite` for a topic it both publishes and reads). Deterministic for a given input.
 * @throws Error naming the identity when one of its topics fails {@linkcode aclTopicProblem}.
 */
export function renderAclFile(options: RenderAclFileOptions): string {
  const lines: string[] = [];
  if (options.header) lines.push(`# ${options.header}`);
  lines.push(
    "# Only what is listed is allowed: every identity may publish (write) and receive (read)",
    "# exactly these topics. Identities are client certificate CNs (use_identity_as_username).",
  );
  for (const identity of options.identities) {
    lines.push("", `user ${identity.name}`);
    const topics = [...new Set([...identity.publishes, ...identity.reads])].sort();
    for (const topic of topics) {
      const problem = aclTopicProblem(topic);
      if (problem !== undefined) throw new Error(`identity ${identity.name}: ${problem}`);
      const write = identity.publishes.includes(topic);
      const read = identity.reads.includes(topic);
      lines.push(`topic ${write && read ? "readwrite" : write ? "write" : "read"} ${topic}`);
    }
  }
  return lines.join("\n") + "\n";
}
