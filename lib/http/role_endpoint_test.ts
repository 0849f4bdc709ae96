import assert from "node:assert/strict";
import { PROMETHEUS_CONTENT_TYPE } from "./role_endpoint.ts";
Deno.test("PROMETHEUS_CONTENT_TYPE is prom-client's default registry content type", async () => {
  const { Registry } = await import("prom-client");
  assert.equal(PROMETHEUS_CONTENT_TYPE, new Registry().contentType);
});
