/**
 * Secret files under systemd's credentials directory.
 *
 * A unit with `LoadCredential=ID:PATH` gets a private, read-only copy of `PATH` at
 * `$CREDENTIALS_DIRECTORY/ID`, readable by the service's own (even dynamic) user only, and
 * systemd sets `CREDENTIALS_DIRECTORY` for the service (systemd.exec(5), "Credentials"). One
 * config file then serves every role on a host: each unit loads its own key under the same ID.
 * So a secret file path in the config (`mqtt.passwordFile`, `mqtt.tls.caFile`, `.certFile`,
 * `.keyFile`, `cluster.kubeconfig`) may start with the literal `${CREDENTIALS_DIRECTORY}/`; that
 * prefix, and nothing else, is replaced by the variable's value. No other variable is expanded.
 *
 * @module
 */

/** The prefix replaced by {@linkcode resolveCredentialPath}. */
export const CREDENTIALS_PREFIX = "${CREDENTIALS_DIRECTORY}/";
/** The environment variable systemd sets for a unit with credentials. */
export const CREDENTIALS_DIRECTORY_ENV = "CREDENTIALS_DIRECTORY";

/**
 * The file path with a leading {@linkcode CREDENTIALS_PREFIX} replaced by
 * `$CREDENTIALS_DIRECTORY/`; any other path unchanged.
 * @param getEnv reads an environment variable (e.g. `Deno.env.get`).
 * @throws Error when the path needs `CREDENTIALS_DIRECTORY` and it is unset or empty (the message
 *   says systemd sets it only for a unit with `LoadCredential=`).
 */
export function resolveCredentialPath(
  path: string,
  getEnv: (name: string) => string | undefined,
): string {
  if (!path.startsWith(CREDENTIALS_PREFIX)) return path;
  const dir = getEnv(CREDENTIALS_DIRECTORY_ENV);
  if (dir === undefined || dir === "") {
    throw new Error(
      `the environment variable ${CREDENTIALS_DIRECTORY_ENV} is ${
        dir === undefined ? "not set" : "empty"
      }; systemd sets it for a unit with LoadCredential= (elsewhere, set it to the directory ` +
        `holding the files)`,
    );
  }
  return `${dir.replace(/\/+$/, "")}/${path.slice(CREDENTIALS_PREFIX.length)}`;
}
