/**
 * A {@linkcode ClusterView} that overlays acknowledged writes on a watch-backed cache until the
 * cache catches up, so a pass planned right after a write (the cache lags the acknowledgement by
 * a fraction of a millisecond to seconds) never repeats it: no fence re-patched, no pod deleted
 * twice.
 *
 * An overlaid object is served while the cache still shows the resourceVersion it had when the
 * write was acknowledged; as soon as the cache shows any other version (ours or a later one),
 * the cache wins and the overlay entry is dropped. Deleted pods (by uid) are hidden until they
 * leave the cache.
 *
 * @module
 */
import type {
  ChangeListener,
  ClusterView,
  ObservedDeployment,
  ObservedNode,
  ObservedPod,
} from "./cluster_view.ts";

/** Bound on remembered deleted pod uids (oldest forgotten first). */
const MAX_DELETED = 4096;

/** Acknowledged writes over a cache. */
export class AckOverlay implements ClusterView {
  readonly #base: ClusterView;
  readonly #nodes = new Map<string, { beforeRv: string | undefined; node: ObservedNode }>();
  readonly #deployments = new Map<
    string,
    { beforeRv: string | undefined; deployment: ObservedDeployment }
  >();
  readonly #deletedPods = new Set<string>();

  /** @param base the cache this overlays. */
  constructor(base: ClusterView) {
    this.#base = base;
  }

  get synced(): boolean {
    return this.#base.synced;
  }

  /** Records an acknowledged Node write: `node` is the object as the write left it. */
  recordNode(name: string, node: ObservedNode): void {
    this.#nodes.set(name, { beforeRv: this.#base.node(name)?.resourceVersion, node });
  }

  /** Records an acknowledged Deployment write. */
  recordDeployment(namespace: string, name: string, deployment: ObservedDeployment): void {
    this.#deployments.set(`${namespace}/${name}`, {
      beforeRv: this.#base.deployment(namespace, name)?.resourceVersion,
      deployment,
    });
  }

  /** Records an acknowledged (or 404/409: already gone) pod deletion. */
  recordPodDeleted(uid: string): void {
    this.#deletedPods.delete(uid);
    this.#deletedPods.add(uid);
    if (this.#deletedPods.size > MAX_DELETED) {
      this.#deletedPods.delete(this.#deletedPods.values().next().value!);
    }
  }

  /** True when a deletion of the pod with this uid was acknowledged. */
  podDeleted(uid: string): boolean {
    return this.#deletedPods.has(uid);
  }

  deployment(namespace: string, name: string): ObservedDeployment | undefined {
    const key = `${namespace}/${name}`;
    const base = this.#base.deployment(namespace, name);
    const o = this.#deployments.get(key);
    if (o && base?.resourceVersion === o.beforeRv) return o.deployment;
    if (o) this.#deployments.delete(key);
    return base;
  }

  pods(namespace: string, selector: Record<string, string>, nodeName: string): ObservedPod[] {
    return this.#base.pods(namespace, selector, nodeName).filter((p) =>
      !this.#deletedPods.has(p.uid)
    );
  }

  node(name: string): ObservedNode | undefined {
    const base = this.#base.node(name);
    const o = this.#nodes.get(name);
    if (o && base?.resourceVersion === o.beforeRv) return o.node;
    if (o) this.#nodes.delete(name);
    return base;
  }

  onChange(listener: ChangeListener): () => void {
    return this.#base.onChange(listener);
  }
}
