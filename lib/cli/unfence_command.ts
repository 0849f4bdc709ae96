/**
 * `unfence`: an operator asks the supervisor to lift its fence (our cordon and NoExecute taint)
 * from a node.
 *
 * The supervisor owns the desired state — if someone removed our taint by hand, its reconciler
 * would restore it — so this command does not touch the fence. It writes the Node annotation
 * `sdv-failover.io/unfence-requested: <ISO 8601 wall time>` (one merge patch, with the operator's
 * own kubeconfig); the supervisor's reconciler sees it, the supervisor sets the node's desired
 * state to unfenced, and the un-fence step removes our taint, our cordon (never an operator's)
 * and our annotations, the request included.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { KubeApi } from "../kube/kube_api.ts";
import { resolveCredentialPath } from "../config/credentials.ts";
import { ANNOTATIONS } from "../reconcile/annotations.ts";

/** Exit status: the request was written. */
export const UNFENCE_OK = 0;
/** Exit status: the API failed (unreachable, 403, 404: no such Node in the cluster, …). */
export const UNFENCE_FAILED = 1;
/** Exit status: the node is not in the config. */
export const UNFENCE_UNKNOWN_NODE = 2;

/** Options of {@linkcode unfenceCommand}. */
export interface UnfenceCommandOptions {
  /** Validated configuration. */
  config: Config;
  /** The node to un-fence, as in `config.nodes`. */
  nodeName: string;
  /**
   * The operator's kubeconfig (default `config.cluster.kubeconfig`; a leading
   * `${CREDENTIALS_DIRECTORY}/` is resolved, see `lib/config/credentials.ts`).
   */
  kubeconfigPath?: string;
  /**
   * Opens the API (default: client-node over `kubeconfigPath`, loaded only here, with
   * `config.cluster.requestTimeoutMs`); for tests. The command closes it.
   */
  connect?: (kubeconfigPath: string) => Pick<KubeApi, "patchNode" | "close">;
  /** Wall-clock source of the request time (default `Date.now`). */
  wallNowMs?: () => number;
  /** Aborts the API call. */
  signal?: AbortSignal;
  /** Receives the confirmation line (default `console.log`). */
  out?: (line: string) => void;
  /** Receives error lines (default `console.error`). */
  err?: (line: string) => void;
}

/**
 * Writes the unfence request annotation on `nodeName` (merge patch of its metadata only).
 * @returns {@linkcode UNFENCE_OK} when written, {@linkcode UNFENCE_UNKNOWN_NODE} when the node is
 *   not in the config (nothing is called), {@linkcode UNFENCE_FAILED} when the kubeconfig cannot
 *   be loaded or the API call fails. Never throws, never calls `Deno.exit`.
 */
export async function unfenceCommand(opts: UnfenceCommandOptions): Promise<number> {
  const out = opts.out ?? ((line: string) => console.log(line));
  const err = opts.err ?? ((line: string) => console.error(line));
  const { config, nodeName } = opts;
  if (!config.nodes.some((n) => n.name === nodeName)) {
    err(
      `unfence: node ${JSON.stringify(nodeName)} is not in the config; configured nodes: ${
        config.nodes.map((n) => n.name).join(", ")
      }`,
    );
    return UNFENCE_UNKNOWN_NODE;
  }
  const kubeconfigPath = opts.kubeconfigPath ?? config.cluster.kubeconfig;
  let api: Pick<KubeApi, "patchNode" | "close">;
  try {
    const path = resolveCredentialPath(kubeconfigPath, (name) => Deno.env.get(name));
    api = opts.connect
      ? opts.connect(path)
      : await connectClientNode(path, config.cluster.requestTimeoutMs);
  } catch (error) {
    err(`unfence: cannot load kubeconfig ${kubeconfigPath}: ${errorText(error)}`);
    return UNFENCE_FAILED;
  }
  const requestedAt = new Date((opts.wallNowMs ?? Date.now)()).toISOString();
  const body = { metadata: { annotations: { [ANNOTATIONS.unfenceRequested]: requestedAt } } };
  try {
    await api.patchNode(nodeName, body, "merge", opts.signal);
  } catch (error) {
    const status = (error as { code?: unknown })?.code;
    const what = status === 404
      ? "no such Node in the cluster (HTTP 404)"
      : typeof status === "number"
      ? `HTTP ${status}: ${errorText(error)}`
      : errorText(error);
    err(`unfence: node/${nodeName}: ${what}`);
    return UNFENCE_FAILED;
  } finally {
    api.close();
  }
  out(
    `node/${nodeName}: unfence requested at ${requestedAt} (${ANNOTATIONS.unfenceRequested}); ` +
      "the supervisor lifts its fence",
  );
  return UNFENCE_OK;
}

async function connectClientNode(
  kubeconfigPath: string,
  requestTimeoutMs: number,
): Promise<KubeApi> {
  const { createKubeClient } = await import("../kube/kube_client.ts");
  return createKubeClient({ kubeconfigPath, requestTimeoutMs }).api;
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300);
}
