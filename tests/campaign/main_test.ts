import assert from "node:assert/strict";
import { parseLongDurationMs } from "./main.ts";

Deno.test("campaign --soak takes minutes and hours as written in the docs, and still ms and s", () => {
  assert.equal(parseLongDurationMs("60m"), 3_600_000);
  assert.equal(parseLongDurationMs("1h"), 3_600_000);
  assert.equal(parseLongDurationMs("90min"), 5_400_000);
  assert.equal(parseLongDurationMs("1.5s"), 1500);
  assert.equal(parseLongDurationMs("1500"), 1500);
  for (const bad of ["", "m", "60 minutes", "-5m", "1d"]) {
    assert.throws(() => parseLongDurationMs(bad), Error, bad);
  }
});
