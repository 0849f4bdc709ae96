import assert from "node:assert/strict";
import { createLogger } from "../log/log.ts";
import { HttpListenError, startHttpEndpoint } from "./http_endpoint.ts";
import type { Readiness } from "./readiness.ts";

/** An endpoint on a free loopback port with switchable answers. */
function serve(opts: { status?: () => unknown } = {}) {
  const state = {
    healthy: true,
    readiness: { ready: false, reasons: ["watchdog not armed"] } as Readiness,
    metricsFail: false,
  };
  const logged: string[] = [];
  const abort = new AbortController();
  const endpoint = startHttpEndpoint({
    listen: { hostname: "127.0.0.1", port: 0 },
    signal: abort.signal,
    metrics: () =>
      state.metricsFail
        ? Promise.reject(new Error("boom"))
        : Promise.resolve("# TYPE x gauge\nx 1\n"),
    metricsContentType: "text/plain; version=0.0.4; charset=utf-8",
    health: () => ({ ok: state.healthy, eventLoopLagMs: state.healthy ? 0.2 : 1500 }),
    ready: () => state.readiness,
    status: opts.status,
    log: createLogger({ format: "json", write: (l) => logged.push(l) }),
  });
  const url = (path: string) => `http://127.0.0.1:${endpoint.address.port}${path}`;
  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(url(path), init);
    return {
      status: response.status,
      type: response.headers.get("content-type"),
      body: await response.text(),
    };
  };
  const close = async () => {
    abort.abort();
    await endpoint.finished;
  };
  return { state, endpoint, get, close, logged };
}

Deno.test("endpoint: /healthz and /readyz answer 200/503 with JSON bodies in each state", async () => {
  const s = serve();
  try {
    assert.notEqual(s.endpoint.address.port, 0, "the real port of :0");
    let r = await s.get("/healthz");
    assert.equal(r.status, 200);
    assert.match(r.type!, /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), { status: "ok", eventLoopLagMs: 0.2 });
    s.state.healthy = false;
    r = await s.get("/healthz");
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { status: "unhealthy", eventLoopLagMs: 1500 });

    r = await s.get("/readyz");
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { ready: false, reasons: ["watchdog not armed"] });
    s.state.readiness = { ready: true, reasons: [] };
    r = await s.get("/readyz");
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { ready: true, reasons: [] });
  } finally {
    await s.close();
  }
});

Deno.test("endpoint: /metrics in the exposition format; 404, 405, HEAD; a failing callback is 500", async () => {
  const s = serve();
  try {
    let r = await s.get("/metrics");
    assert.equal(r.status, 200);
    assert.equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(r.body, "# TYPE x gauge\nx 1\n");
    r = await s.get("/metrics", { method: "HEAD" });
    assert.equal(r.status, 200);
    assert.equal(r.body, "");
    r = await s.get("/status");
    assert.equal(r.status, 404, "no status callback");
    assert.match(JSON.parse(r.body).error, /no status/);
    assert.equal((await s.get("/nope")).status, 404);
    r = await s.get("/metrics", { method: "POST", body: "x" });
    assert.equal(r.status, 405);
    s.state.metricsFail = true;
    r = await s.get("/metrics");
    assert.equal(r.status, 500);
    assert.ok(s.logged.some((l) => /http-handler-failed.*boom/.test(l)), "logged");
  } finally {
    await s.close();
  }
});

Deno.test("endpoint: /status answers the injected callback's JSON", async () => {
  let calls = 0;
  const s = serve({ status: () => ({ targets: 3, calls: ++calls }) });
  try {
    const r = await s.get("/status");
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { targets: 3, calls: 1 });
  } finally {
    await s.close();
  }
});

Deno.test("endpoint: an address in use is an HttpListenError naming it", async () => {
  const s = serve();
  try {
    const port = s.endpoint.address.port;
    assert.throws(
      () =>
        startHttpEndpoint({
          listen: { hostname: "127.0.0.1", port },
          signal: new AbortController().signal,
          metrics: () => Promise.resolve(""),
          metricsContentType: "text/plain",
          health: () => ({ ok: true }),
          ready: () => ({ ready: true, reasons: [] }),
          log: createLogger({ write: () => {} }),
        }),
      (error: unknown) =>
        error instanceof HttpListenError &&
        error.message ===
          `HTTP endpoint cannot listen on 127.0.0.1:${port}: address already in use (another ` +
            "process listens there: stop it or change http.listen)",
    );
  } finally {
    await s.close();
  }
});
