/**
 * The environment check: the files and environment variables a configuration names must exist
 * where it runs, so that a missing one is a config error (exit 2, which systemd does not restart)
 * found before anything starts, not a runtime failure (exit 1, restarted forever).
 *
 * Like `validate.ts` it works on the raw parsed YAML, each field checked on its own, so that it
 * runs even when other parts of the file are invalid. All access goes through an injectable
 * {@linkcode EnvironmentAccess}, so tests need no real files or variables.
 *
 * @module
 */
import { ClusterSchema, MqttSchema } from "./schema.ts";
import { formatPath, type PathSegment, type SemanticIssue } from "./validate.ts";
import { resolveCredentialPath } from "./credentials.ts";

/** What a command needs besides the MQTT settings every command uses. */
export interface ConfigNeeds {
  /**
   * Kubernetes API access: `cluster.kubeconfig` must be a readable regular file, or with
   * `cluster.inCluster` the service account token and `KUBERNETES_SERVICE_HOST`/`_PORT` must be
   * there. Only `run` without `--dry-run` needs it (default false).
   */
  kubeconfig?: boolean;
  /**
   * The MQTT files and variables (`mqtt.passwordFile`, `mqtt.tls.*File`, `mqtt.usernameEnv`,
   * `mqtt.passwordEnv`) must be usable here (default true). `broker-config` passes false: it
   * runs where the broker's configuration is made, not where the roles run.
   */
  mqttCredentials?: boolean;
}

/** File information, as much of `Deno.FileInfo` as the check uses. */
export interface FileStat {
  isFile: boolean;
  isDirectory: boolean;
}

/** How the check reaches the environment; every function may throw like its `Deno` default. */
export interface EnvironmentAccess {
  /** `Deno.stat` (follows symbolic links). */
  stat(path: string): Promise<FileStat>;
  /** Opens a regular file for reading and closes it; throws when that is not possible. */
  openForReading(path: string): Promise<void>;
  /** `Deno.env.get`. */
  getEnv(name: string): string | undefined;
}

/** The real environment: `Deno.stat`, `Deno.open`, `Deno.env.get`. */
export const denoEnvironment: EnvironmentAccess = {
  stat: (path) => Deno.stat(path),
  openForReading: async (path) => {
    const file = await Deno.open(path, { read: true });
    file.close();
  },
  getEnv: (name) => Deno.env.get(name),
};

/** Where Kubernetes mounts a pod's service account token (used with `cluster.inCluster`). */
export const SERVICE_ACCOUNT_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Checks that the files and environment variables `raw` names exist and are usable here:
 * - `mqtt.passwordFile`, `mqtt.tls.caFile`, `.certFile`, `.keyFile`: readable regular files
 *   (a directory, FIFO or device would fail or block the reader), a leading
 *   `${CREDENTIALS_DIRECTORY}/` resolved with `$CREDENTIALS_DIRECTORY` (see `credentials.ts`);
 * - `mqtt.usernameEnv`, `mqtt.passwordEnv`: set and not empty;
 * - none of these with `needs.mqttCredentials === false`;
 * - with `needs.kubeconfig`: `cluster.kubeconfig` (default `/etc/rancher/k3s/k3s.yaml`; a leading
 *   `${CREDENTIALS_DIRECTORY}/` resolved the same way) a readable regular file, or with `cluster.inCluster` the service account token
 *   ({@linkcode SERVICE_ACCOUNT_TOKEN_FILE}) and `KUBERNETES_SERVICE_HOST`/`_PORT`.
 *
 * Values that are themselves invalid are skipped (the schema reports them). Never throws;
 * relative paths are taken from the current directory, as the commands do. Messages name the
 * variable or file, never a value read from it.
 * @returns the problems, each at the {@linkcode formatPath} path of the setting concerned (e.g.
 *   `mqtt.tls.caFile`; `cluster.inCluster` for the service account); `[]` when none.
 */
export async function environmentIssues(
  raw: unknown,
  needs: ConfigNeeds = {},
  access: EnvironmentAccess = denoEnvironment,
): Promise<SemanticIssue[]> {
  const issues: SemanticIssue[] = [];
  const report = (path: PathSegment[], message: string) =>
    issues.push({ path: formatPath(path), message });
  const root = isRecord(raw) ? raw : {};
  const mqtt = isRecord(root.mqtt) ? root.mqtt : {};
  const tls = isRecord(mqtt.tls) ? mqtt.tls : {};
  const cluster = isRecord(root.cluster) ? root.cluster : {};

  const files: [PathSegment[], unknown, string][] = [
    [["mqtt", "passwordFile"], mqtt.passwordFile, "the MQTT password file"],
    [["mqtt", "tls", "caFile"], tls.caFile, "the broker's CA certificate file"],
    [["mqtt", "tls", "certFile"], tls.certFile, "the client certificate file"],
    [["mqtt", "tls", "keyFile"], tls.keyFile, "the client key file"],
  ];
  const fileSchema = MqttSchema.shape.passwordFile.unwrap();
  const envSchema = MqttSchema.shape.usernameEnv.unwrap();
  const getEnv = (name: string) => {
    try {
      return access.getEnv(name);
    } catch {
      return undefined;
    }
  };
  for (const [path, value, what] of needs.mqttCredentials === false ? [] : files) {
    if (!fileSchema.safeParse(value).success) continue;
    let resolved: string;
    try {
      resolved = resolveCredentialPath(value as string, getEnv);
    } catch (error) {
      report(path, `${what} "${value}" cannot be used: ${reason(error)}`);
      continue;
    }
    const problem = await fileProblem(resolved, access);
    const shown = resolved === value ? `"${value}"` : `"${value}" (${resolved})`;
    if (problem !== undefined) report(path, `${what} ${shown} ${problem}`);
  }
  for (
    const key of needs.mqttCredentials === false ? [] : ["usernameEnv", "passwordEnv"] as const
  ) {
    const name = mqtt[key];
    if (!envSchema.safeParse(name).success) continue;
    const problem = envProblem(name as string, access);
    if (problem !== undefined) report(["mqtt", key], problem);
  }

  if (!needs.kubeconfig) return issues;
  const inCluster = ClusterSchema.shape.inCluster.safeParse(cluster.inCluster);
  if (!inCluster.success) return issues;
  if (inCluster.data) {
    for (const name of ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]) {
      const problem = envProblem(name, access);
      if (problem !== undefined) {
        report(["cluster", "inCluster"], `${problem}; inCluster works only inside a pod`);
      }
    }
    const problem = await fileProblem(SERVICE_ACCOUNT_TOKEN_FILE, access);
    if (problem !== undefined) {
      report(
        ["cluster", "inCluster"],
        `the service account token "${SERVICE_ACCOUNT_TOKEN_FILE}" ${problem}; inCluster works ` +
          `only inside a pod`,
      );
    }
    return issues;
  }
  const kubeconfig = ClusterSchema.shape.kubeconfig.safeParse(cluster.kubeconfig);
  if (!kubeconfig.success) return issues;
  const given = cluster.kubeconfig !== undefined ? "" : " (the default)";
  let resolved: string;
  try {
    resolved = resolveCredentialPath(kubeconfig.data, getEnv);
  } catch (error) {
    report(
      ["cluster", "kubeconfig"],
      `the kubeconfig "${kubeconfig.data}"${given} cannot be used: ${reason(error)}`,
    );
    return issues;
  }
  const problem = await fileProblem(resolved, access);
  if (problem !== undefined) {
    const shown = resolved === kubeconfig.data
      ? `"${kubeconfig.data}"`
      : `"${kubeconfig.data}" (${resolved})`;
    report(
      ["cluster", "kubeconfig"],
      `the kubeconfig ${shown}${given} ${problem}; the supervisor needs it to reach ` +
        `the Kubernetes API (run --dry-run does not)`,
    );
  }
  return issues;
}

/** Why `path` is not a readable regular file, as the end of a sentence; `undefined` if it is. */
async function fileProblem(path: string, access: EnvironmentAccess): Promise<string | undefined> {
  let info: FileStat;
  try {
    info = await access.stat(path);
  } catch (error) {
    return `cannot be used: ${reason(error)}`;
  }
  if (!info.isFile) {
    return `is not a regular file (${
      info.isDirectory ? "a directory" : "a device, FIFO or socket"
    })`;
  }
  try {
    await access.openForReading(path);
  } catch (error) {
    return `cannot be read: ${reason(error)}`;
  }
  return undefined;
}

function envProblem(name: string, access: EnvironmentAccess): string | undefined {
  let value: string | undefined;
  try {
    value = access.getEnv(name);
  } catch (error) {
    return `the environment variable ${name} cannot be read: ${reason(error)}`;
  }
  if (value === undefined) return `the environment variable ${name} is not set`;
  if (value === "") return `the environment variable ${name} is empty`;
  return undefined;
}

function reason(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "it does not exist";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) {
    return "this process has no Deno permission for it (--allow-read / --allow-env)";
  }
  return error instanceof Error ? error.message : String(error);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
