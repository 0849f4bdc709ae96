/**
 * The bench's own view of the cluster: a small JSON client over mTLS (Deno's fetch, one kept-alive
 * HTTP client) with list-then-watch streams. Used with the admin identity to set up scenarios and
 * to observe them; the runtime under test and the origin baseline use their own clients.
 *
 * @module
 */
import { parse as parseYaml } from "yaml";

/** A Kubernetes object as far as the bench reads it. */
export interface KubeObject {
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

/** One watch event with the bench's receipt time. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "SYNC";
  object: KubeObject;
  /** `performance.timeOrigin + performance.now()` at receipt. */
  wallMs: number;
}

/** An HTTP error from the API server. */
export class KubeError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Wall-clock milliseconds comparable across processes on this host. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

interface KubeconfigDoc {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
}

const b64 = (s: string) =>
  new TextDecoder().decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));

/** A JSON client for one identity (from a kubeconfig with embedded certificate data). */
export class KubeApi {
  readonly server: string;
  readonly #client: Deno.HttpClient;
  readonly #watches = new Set<AbortController>();

  constructor(kubeconfigPath: string) {
    const doc = parseYaml(Deno.readTextFileSync(kubeconfigPath)) as KubeconfigDoc;
    const cluster = doc.clusters[0].cluster;
    const user = doc.users[0].user;
    this.server = cluster.server;
    this.#client = Deno.createHttpClient({
      caCerts: [b64(cluster["certificate-authority-data"])],
      cert: b64(user["client-certificate-data"]),
      key: b64(user["client-key-data"]),
    });
  }

  /** One request; returns the parsed JSON body. @throws KubeError on HTTP ≥ 300. */
  async request<T = KubeObject>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const res = await fetch(`${this.server}${path}`, {
      method,
      client: this.#client,
      headers: body === undefined ? {} : { "content-type": contentType },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (res.status >= 300) {
      throw new KubeError(
        res.status,
        `${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`,
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  post<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>("POST", path, body);
  }

  /** Merge patch. */
  patch<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, body, "application/merge-patch+json");
  }

  /** DELETE; a 404 counts as done. */
  async delete(path: string): Promise<void> {
    try {
      await this.request("DELETE", path);
    } catch (e) {
      if (!(e instanceof KubeError && e.status === 404)) throw e;
    }
  }

  /** Lists `path` (a collection) and returns its items and resourceVersion. */
  async list(path: string): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const r = await this.get<{ items: KubeObject[]; metadata: { resourceVersion: string } }>(path);
    return { items: r.items ?? [], resourceVersion: r.metadata.resourceVersion };
  }

  /**
   * Lists `path`, reports every item as a `SYNC` event, then watches from that version and reports
   * every change with its receipt time, until `stop()`. A closed watch is resumed from the last
   * seen version; a `410 Gone` (history compacted) or any error leads to a fresh list after a short
   * pause (bounded: 100 ms – 2 s backoff).
   */
  watch(path: string, onEvent: (e: WatchEvent) => void): { stop(): void; ready: Promise<void> } {
    const ctl = new AbortController();
    this.#watches.add(ctl);
    let markReady: () => void = () => {};
    const ready = new Promise<void>((r) => (markReady = r));
    const sep = path.includes("?") ? "&" : "?";
    const loop = async () => {
      let rv: string | undefined;
      let backoffMs = 100;
      while (!ctl.signal.aborted) {
        try {
          if (rv === undefined) {
            const listed = await this.list(path);
            const wallMs = wallNow();
            for (const object of listed.items) onEvent({ type: "SYNC", object, wallMs });
            rv = listed.resourceVersion;
            markReady();
          }
          const res = await fetch(
            `${this.server}${path}${sep}watch=true&allowWatchBookmarks=true&resourceVersion=${rv}`,
            { client: this.#client, signal: ctl.signal },
          );
          if (res.status === 410) {
            await res.body?.cancel();
            rv = undefined;
            continue;
          }
          if (res.status !== 200 || !res.body) {
            await res.body?.cancel();
            throw new Error(`watch ${path}: HTTP ${res.status}`);
          }
          backoffMs = 100;
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          let buffer = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            const wallMs = wallNow();
            buffer += value;
            let nl;
            while ((nl = buffer.indexOf("\n")) >= 0) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              if (!line.trim()) continue;
              const ev = JSON.parse(line) as { type: string; object: KubeObject };
              if (ev.type === "ERROR") {
                const code = (ev.object as unknown as { code?: number }).code;
                if (code === 410) rv = undefined;
                continue;
              }
              const version = ev.object?.metadata?.resourceVersion;
              if (version) rv = version;
              if (ev.type === "BOOKMARK") continue;
              onEvent({ type: ev.type as WatchEvent["type"], object: ev.object, wallMs });
            }
          }
        } catch (error) {
          if (ctl.signal.aborted) return;
          rv = undefined;
          console.error(`[bench] watch ${path}: ${(error as Error).message}; relisting`);
          await new Promise((r) => setTimeout(r, backoffMs));
          backoffMs = Math.min(2000, backoffMs * 2);
        }
      }
    };
    loop().finally(() => this.#watches.delete(ctl));
    return { stop: () => ctl.abort(), ready };
  }

  /** Stops every watch and closes the HTTP client. */
  close(): void {
    for (const w of this.#watches) w.abort();
    this.#client.close();
  }
}
