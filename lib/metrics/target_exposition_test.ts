import assert from "node:assert/strict";
import { escapeLabelValue, TargetExposition } from "./target_exposition.ts";

Deno.test("TargetExposition: one-hot states and ages per target, labels escaped, no age before the first heartbeat", () => {
  const exposition = new TargetExposition(
    [{ label: "node/a", kind: "node" }, { label: 'sensor/"b"\\', kind: "sensor" }],
    ["INIT", "OK", "EXPIRED"],
  );
  const text = exposition.text(
    (i) => i === 0 ? { state: "OK", lastHeartbeatAtMs: 1000 } : { state: "INIT" },
    1250,
  );
  assert.equal(
    text,
    [
      "# HELP sdv_failover_target_state Watchdog state of each supervised target, one-hot: 1 for " +
      "the current state.",
      "# TYPE sdv_failover_target_state gauge",
      'sdv_failover_target_state{target="node/a",kind="node",state="INIT"} 0',
      'sdv_failover_target_state{target="node/a",kind="node",state="OK"} 1',
      'sdv_failover_target_state{target="node/a",kind="node",state="EXPIRED"} 0',
      'sdv_failover_target_state{target="sensor/\\"b\\"\\\\",kind="sensor",state="INIT"} 1',
      'sdv_failover_target_state{target="sensor/\\"b\\"\\\\",kind="sensor",state="OK"} 0',
      'sdv_failover_target_state{target="sensor/\\"b\\"\\\\",kind="sensor",state="EXPIRED"} 0',
      "",
      "# HELP sdv_failover_heartbeat_age_seconds Time since the last heartbeat (tick) of each " +
      "target was received; absent before the first.",
      "# TYPE sdv_failover_heartbeat_age_seconds gauge",
      'sdv_failover_heartbeat_age_seconds{target="node/a",kind="node"} 0.25',
      "",
    ].join("\n"),
  );
  assert.equal(escapeLabelValue("a\nb"), "a\\nb");
});
