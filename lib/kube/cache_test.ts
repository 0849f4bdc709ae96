import assert from "node:assert/strict";
import type { V1Deployment, V1Node, V1Pod } from "@kubernetes/client-node";
import { FakeClock } from "../../tests/fakes/fake_clock.ts";
import {
  type InformerFactory,
  type InformerLike,
  type InformerObjectVerb,
  WatchCache,
} from "./cache.ts";

type Obj = { metadata?: { name?: string; namespace?: string; resourceVersion?: string } };

/** A fake client-node informer: `items` is what its list returns. */
class FakeInformer<T extends Obj> implements InformerLike<T> {
  items: T[];
  mode: "ok" | "error" | "hang";
  started = 0;
  stopped = false;
  #objects = new Map<string, T>();
  #cbs = new Map<string, Set<(x: never) => void>>();

  constructor(items: T[], mode: "ok" | "error" | "hang" = "ok") {
    this.items = items;
    this.mode = mode;
  }

  on(verb: string, cb: (x: never) => void): void {
    if (!this.#cbs.has(verb)) this.#cbs.set(verb, new Set());
    this.#cbs.get(verb)!.add(cb);
  }

  off(verb: string, cb: (x: never) => void): void {
    this.#cbs.get(verb)?.delete(cb);
  }

  fire(verb: string, arg?: unknown): void {
    for (const cb of [...(this.#cbs.get(verb) ?? [])]) (cb as (x: unknown) => void)(arg);
  }

  start(): Promise<void> {
    this.started++;
    if (this.mode === "hang") return new Promise(() => {});
    this.fire("connect");
    if (this.mode === "error") {
      this.fire("error", new Error("list failed"));
      return Promise.resolve();
    }
    for (const o of this.items) this.upsert(o, "add");
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }

  upsert(o: T, verb: InformerObjectVerb = "update"): void {
    this.#objects.set(`${o.metadata?.namespace ?? ""}/${o.metadata?.name}`, o);
    this.fire(verb, o);
  }

  remove(o: T): void {
    this.#objects.delete(`${o.metadata?.namespace ?? ""}/${o.metadata?.name}`);
    this.fire("delete", o);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(`${namespace ?? ""}/${name}`);
  }

  list(namespace?: string): T[] {
    return [...this.#objects.values()].filter((o) =>
      !namespace || o.metadata?.namespace === namespace
    );
  }
}

const node = (name: string, rv: string, extra: Partial<V1Node["spec"]> = {}): V1Node => ({
  metadata: { name, uid: `${name}-uid`, resourceVersion: rv, annotations: { a: "1" } },
  spec: { ...extra },
});
const deployment = (ns: string, name: string, rv = "1"): V1Deployment => ({
  metadata: { name, namespace: ns, uid: `${name}-uid`, resourceVersion: rv },
  spec: { selector: { matchLabels: { app: name } }, template: {} },
});
const pod = (ns: string, name: string, app: string, nodeName: string, deleting = false): V1Pod => ({
  metadata: {
    name,
    namespace: ns,
    uid: `${name}-uid`,
    resourceVersion: "1",
    labels: { app },
    ...(deleting ? { deletionTimestamp: new Date(0) } : {}),
  },
  spec: { nodeName, containers: [] },
});

/** A factory whose informers per collection are taken from queues (last one reused). */
function factory(queues: {
  nodes: FakeInformer<V1Node>[];
  deployments: FakeInformer<V1Deployment>[];
  pods: FakeInformer<V1Pod>[];
}): InformerFactory & { made: string[] } {
  const made: string[] = [];
  const take = <T>(q: T[]) => (q.length > 1 ? q.shift()! : q[0]);
  return {
    made,
    nodes: () => (made.push("nodes"), take(queues.nodes)),
    deployments: (ns) => (made.push(`deployments/${ns}`), take(queues.deployments)),
    pods: (ns) => (made.push(`pods/${ns}`), take(queues.pods)),
  };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("WatchCache syncs, converts objects and reports changes", async () => {
  const nodes = new FakeInformer([
    node("n1", "5", {
      unschedulable: true,
      taints: [{ key: "k", value: "v", effect: "NoExecute", timeAdded: new Date(0) }],
    }),
  ]);
  const deps = new FakeInformer([deployment("adas", "lane")]);
  const pods = new FakeInformer([
    pod("adas", "p1", "lane", "n1"),
    pod("adas", "p2", "lane", "n2"),
    pod("adas", "p3", "lane", "n1", true),
    pod("adas", "p4", "other", "n1"),
  ]);
  const f = factory({ nodes: [nodes], deployments: [deps], pods: [pods] });
  const cache = new WatchCache({
    namespaces: ["adas", "adas"],
    informers: f,
    clock: new FakeClock(),
  });
  assert.equal(cache.synced, false);
  await cache.start(new AbortController().signal);
  assert.equal(cache.synced, true);
  assert.deepEqual(f.made, ["nodes", "deployments/adas", "pods/adas"]);
  assert.deepEqual(cache.node("n1"), {
    uid: "n1-uid",
    unschedulable: true,
    taints: [{ key: "k", value: "v", effect: "NoExecute", timeAdded: "1970-01-01T00:00:00.000Z" }],
    annotations: { a: "1" },
    resourceVersion: "5",
  });
  assert.deepEqual(cache.deployment("adas", "lane")!.selector, { app: "lane" });
  assert.equal(cache.deployment("adas", "nope"), undefined);
  assert.equal(cache.deployment("other-ns", "lane"), undefined);
  assert.deepEqual(
    cache.pods("adas", { app: "lane" }, "n1").map((p) => [p.name, p.deleting]),
    [["p1", false], ["p3", true]],
  );
  assert.deepEqual(cache.pods("adas", {}, "n1"), []); // an empty selector matches nothing
  const changes: string[] = [];
  const off = cache.onChange((kind, ns, name) => changes.push(`${kind} ${ns} ${name}`));
  nodes.upsert(node("n1", "6"));
  pods.remove(pods.items[0]);
  deps.upsert(deployment("adas", "lane", "2"));
  assert.deepEqual(changes, ["node undefined n1", "pod adas p1", "deployment adas lane"]);
  off();
  nodes.upsert(node("n1", "7"));
  assert.equal(changes.length, 3);
  cache.close();
  assert.ok(nodes.stopped && deps.stopped && pods.stopped);
});

Deno.test("WatchCache replaces a failed informer with backoff and reports what changed meanwhile", async () => {
  const clock = new FakeClock(0);
  const first = new FakeInformer([node("n1", "1"), node("n2", "1")]);
  const broken = new FakeInformer<V1Node>([], "error");
  const second = new FakeInformer([node("n1", "1"), node("n3", "1"), node("n2", "2")]);
  const f = factory({
    nodes: [first, broken, second],
    deployments: [new FakeInformer([])],
    pods: [new FakeInformer([])],
  });
  const cache = new WatchCache({
    namespaces: ["adas"],
    informers: f,
    clock,
    restartBackoffMs: 100,
    inactivityMs: 0,
  });
  await cache.start(new AbortController().signal);
  const changes: string[] = [];
  cache.onChange((kind, _ns, name) => changes.push(`${kind} ${name}`));
  first.fire("error", new Error("watch closed: 500"));
  assert.equal(clock.pendingTimers, 1);
  clock.advance(99);
  assert.equal(broken.started, 0);
  clock.advance(1);
  await tick();
  assert.equal(broken.started, 1); // failed to list: retried after 200 ms
  assert.equal(cache.node("n1")!.resourceVersion, "1"); // the old cache still serves reads
  clock.advance(199);
  await tick();
  assert.equal(second.started, 0);
  clock.advance(1);
  await tick();
  assert.equal(second.started, 1);
  assert.ok(first.stopped && broken.stopped && !second.stopped);
  assert.deepEqual(changes.sort(), ["node n2", "node n3"]);
  assert.equal(cache.node("n3")!.uid, "n3-uid");
  // Events of the replaced informer are ignored.
  first.upsert(node("n9", "1"));
  assert.equal(changes.length, 2);
  second.remove(second.list()[0]);
  assert.equal(changes.length, 3);
  cache.close();
  assert.equal(clock.pendingTimers, 0);
});

Deno.test("WatchCache replaces a watch silent for longer than inactivityMs", async () => {
  const clock = new FakeClock(0);
  const nodesA = new FakeInformer([node("n1", "1")]);
  const nodesB = new FakeInformer([node("n1", "1")]);
  const depsA = new FakeInformer<V1Deployment>([]);
  const podsA = new FakeInformer<V1Pod>([]);
  const f = factory({ nodes: [nodesA, nodesB], deployments: [depsA], pods: [podsA] });
  const cache = new WatchCache({ namespaces: ["adas"], informers: f, clock, inactivityMs: 1000 });
  await cache.start(new AbortController().signal);
  // Deployments and pods keep talking; nodes go silent.
  for (let t = 0; t < 4; t++) {
    clock.advance(250);
    depsA.upsert(deployment("adas", "d", String(t + 2)));
    podsA.upsert(pod("adas", "p", "d", "n1"));
  }
  await tick();
  assert.equal(nodesB.started, 0);
  clock.advance(250);
  await tick();
  assert.equal(nodesB.started, 1);
  assert.ok(nodesA.stopped);
  assert.equal(depsA.stopped, false);
  cache.close();
});

Deno.test("WatchCache start: rejects on abort, retries a hanging start after startTimeoutMs", async () => {
  const clock = new FakeClock(0);
  const hanging = new FakeInformer<V1Node>([], "hang");
  const good = new FakeInformer([node("n1", "1")]);
  const f = factory({
    nodes: [hanging, good],
    deployments: [new FakeInformer([])],
    pods: [new FakeInformer([])],
  });
  const cache = new WatchCache({
    namespaces: [],
    informers: f,
    clock,
    startTimeoutMs: 500,
    restartBackoffMs: 10,
  });
  const controller = new AbortController();
  const first = cache.start(controller.signal);
  controller.abort(new Error("stop waiting"));
  await assert.rejects(first, /stop waiting/);
  const second = cache.start(new AbortController().signal);
  clock.advance(500);
  await tick();
  clock.advance(10);
  await second;
  assert.equal(cache.synced, true);
  assert.ok(hanging.stopped);
  cache.close();
});

Deno.test("WatchCache pods: phase and Ready mapped, indexed by node and kept in step with events", async () => {
  const running = (name: string, nodeName: string, ready: boolean): V1Pod => ({
    ...pod("adas", name, "lane", nodeName),
    status: {
      phase: "Running",
      conditions: [
        { type: "PodScheduled", status: "True" },
        { type: "Ready", status: ready ? "True" : "False" },
      ],
    },
  });
  const pods = new FakeInformer([running("p1", "n1", true), pod("adas", "p2", "lane", "")]);
  const cache = new WatchCache({
    namespaces: ["adas"],
    informers: factory({
      nodes: [new FakeInformer([])],
      deployments: [new FakeInformer([])],
      pods: [pods],
    }),
    clock: new FakeClock(),
  });
  await cache.start(new AbortController().signal);
  const view = (nodeName: string) =>
    cache.pods("adas", { app: "lane" }, nodeName).map((p) => `${p.name} ${p.phase} ${p.ready}`);
  assert.deepEqual(view("n1"), ["p1 Running true"]);
  assert.deepEqual(view(""), []); // unscheduled pods are never "on" a node
  assert.equal(
    cache.pods("adas", { app: "lane" }, "n1")[0],
    cache.pods("adas", { app: "lane" }, "n1")[0],
  );
  assert.ok(Object.isFrozen(cache.pods("adas", { app: "lane" }, "n1")[0]));
  // Scheduled, then Ready; p1 loses Ready; p1 deleted.
  pods.upsert(running("p2", "n2", false));
  assert.deepEqual(view("n2"), ["p2 Running false"]);
  pods.upsert(running("p2", "n2", true));
  pods.upsert(running("p1", "n1", false));
  assert.deepEqual(view("n1"), ["p1 Running false"]);
  assert.deepEqual(view("n2"), ["p2 Running true"]);
  pods.remove(running("p1", "n1", false));
  assert.deepEqual(view("n1"), []);
  assert.deepEqual(view("n2"), ["p2 Running true"]);
  assert.deepEqual(cache.pods("other-ns", { app: "lane" }, "n2"), []);
  cache.close();
});

Deno.test("WatchCache pods: a replaced informer's list rebuilds the index", async () => {
  const clock = new FakeClock(0);
  const first = new FakeInformer([pod("adas", "p1", "lane", "n1")]);
  const second = new FakeInformer([pod("adas", "p2", "lane", "n1")]);
  const cache = new WatchCache({
    namespaces: ["adas"],
    informers: factory({
      nodes: [new FakeInformer([])],
      deployments: [new FakeInformer([])],
      pods: [first, second],
    }),
    clock,
    restartBackoffMs: 10,
    inactivityMs: 0,
  });
  await cache.start(new AbortController().signal);
  assert.deepEqual(cache.pods("adas", { app: "lane" }, "n1").map((p) => p.name), ["p1"]);
  first.fire("error", new Error("watch closed"));
  clock.advance(10);
  await tick();
  assert.deepEqual(cache.pods("adas", { app: "lane" }, "n1").map((p) => p.name), ["p2"]);
  first.upsert(pod("adas", "p9", "lane", "n1")); // the replaced informer is ignored
  assert.deepEqual(cache.pods("adas", { app: "lane" }, "n1").map((p) => p.name), ["p2"]);
  cache.close();
});
