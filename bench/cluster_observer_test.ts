import assert from "node:assert/strict";
import { leaseIntervals, type LeaseRenewal } from "./cluster_observer.ts";

Deno.test("lease cadence: intervals between renewals of one holder only", () => {
  const r = (s: number, holder: string): LeaseRenewal => ({ renewMs: s * 1000, wallMs: 0, holder });
  const leases = new Map<string, LeaseRenewal[]>([
    ["worker-node1", [r(0, "a"), r(10.1, "a"), r(20.3, "a")]],
    // killed after 10.2 s, restarted with a new holder 60 s later: not a renewal interval
    ["worker-node2", [r(0, "b"), r(10.2, "b"), r(70, "c"), r(80.1, "c")]],
  ]);
  const got = leaseIntervals(leases);
  assert.deepEqual(got["worker-node1"].map((x) => x.toFixed(1)), ["10.1", "10.2"]);
  assert.deepEqual(got["worker-node2"].map((x) => x.toFixed(1)), ["10.2", "10.1"]);
  assert.deepEqual(Object.keys(leaseIntervals(leases, ["worker-node1"])), ["worker-node1"]);
});
