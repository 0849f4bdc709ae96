import assert from "node:assert/strict";
import { parseActions } from "./ours.ts";

Deno.test("parseActions reads the done line's action list", () => {
  assert.deepEqual(
    parseActions("markActive:done@54.6,event:FailoverFenced:done@73.0,deletePods:unchanged@130.4"),
    [["markActive", 54.6], ["event:FailoverFenced", 73], ["deletePods", 130.4]],
  );
  assert.deepEqual(parseActions(""), []);
  assert.deepEqual(parseActions(undefined), []);
  assert.deepEqual(parseActions("garbage"), []);
});
