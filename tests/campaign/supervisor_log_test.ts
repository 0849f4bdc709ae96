import assert from "node:assert/strict";
import {
  brokersConnectedByLog,
  expiriesSince,
  ingestFaultsSince,
  leadershipPeriods,
  leadsByLog,
  promotionsSent,
  type SupervisorLogLine,
} from "./supervisor_log.ts";

/** Lines as the supervisor writes them, with the fields other log changes may add. */
const line = (wallMs: number, event: string, fields: Record<string, unknown> = {}) =>
  ({
    tMs: wallMs - 100,
    wallMs,
    level: "info",
    event,
    msg: event,
    time: "t",
    ...fields,
  }) as SupervisorLogLine;
const who = { supervisor: "sup-a#1", id: "sup-a" };

Deno.test("supervisor log: leadership periods from elected/stepped-down; an open one ends at the end given", () => {
  const lines = [
    line(10, "armed"),
    line(100, "leader-elected", { identity: "sup-a/x", term: 1 }),
    line(300, "leader-stepped-down", { term: 1, reason: "renew-deadline" }),
    line(350, "leader-stepped-down", { term: 1 }), // no period open: ignored
    line(400, "leader-elected", { identity: "sup-a/x", term: 1 }),
    line(500, "leader-elected", { identity: "sup-a/x", term: 2 }), // a new term closes the last
    line(600, "expired", { target: "node/n1" }),
  ];
  assert.deepEqual(leadershipPeriods(lines, who, 900), [
    { ...who, fromWallMs: 100, toWallMs: 300, term: 1, open: false },
    { ...who, fromWallMs: 400, toWallMs: 500, term: 1, open: false },
    { ...who, fromWallMs: 500, toWallMs: 900, term: 2, open: true },
  ]);
  assert.equal(leadsByLog(lines), true);
  assert.equal(leadsByLog([...lines, line(950, "leader-stepped-down", { term: 2 })]), false);
  assert.equal(leadsByLog([line(1, "armed")]), false);
  assert.deepEqual(leadershipPeriods([line(1, "armed")], who, 5), []);
});

Deno.test("supervisor log: brokers connected by the last broker-up/broker-lost line", () => {
  assert.equal(brokersConnectedByLog([line(1, "armed")]), undefined);
  const lines = [
    line(1, "broker-up", { broker: "a", connected: 1 }),
    line(2, "broker-up", { broker: "b", connected: 2 }),
    line(3, "broker-lost", { broker: "a", connected: 1 }),
  ];
  assert.equal(brokersConnectedByLog(lines), 1);
  assert.equal(
    brokersConnectedByLog([
      ...lines,
      line(4, "ingest-fault"),
      line(5, "broker-up", { connected: 2 }),
    ]),
    2,
  );
});

Deno.test("supervisor log: expiries, ingest faults since a time; promotions decided", () => {
  const lines = [
    line(100, "expired", { target: "node/n1" }),
    line(200, "expired", { target: "sensor/cam2" }),
    line(250, "ingest-fault", { why: "broker connection closed" }),
    line(300, "promotion-sent", { workload: "lane", epoch: 3, activeNode: "n3" }),
  ];
  assert.deepEqual(expiriesSince(lines, "sup-a#1", 150), [
    { supervisor: "sup-a#1", target: "sensor/cam2", wallMs: 200 },
  ]);
  assert.deepEqual(ingestFaultsSince(lines, "sup-a#1", 0), [
    { supervisor: "sup-a#1", why: "broker connection closed", wallMs: 250 },
  ]);
  assert.deepEqual(ingestFaultsSince(lines, "sup-a#1", 260), []);
  assert.deepEqual(promotionsSent(lines, "sup-b#2"), [
    { supervisor: "sup-b#2", workload: "lane", epoch: 3, activeNode: "n3", wallMs: 300 },
  ]);
});

Deno.test("supervisor log: a line naming its event in msg only is read as well", () => {
  const lines = [
    { wallMs: 5, msg: "leader-elected", term: 4 },
    { wallMs: 9, msg: "broker-up", connected: 2 },
  ] as SupervisorLogLine[];
  assert.deepEqual(
    leadershipPeriods(lines, who, 20).map((p) => [p.fromWallMs, p.toWallMs, p.term]),
    [
      [5, 20, 4],
    ],
  );
  assert.equal(leadsByLog(lines), true);
  assert.equal(brokersConnectedByLog(lines), 2);
});
