import assert from "node:assert/strict";
import { aclTopicProblem, renderAclFile } from "./acl_file.ts";

Deno.test("renderAclFile: a user block per identity, write/read/readwrite per topic, sorted", () => {
  const text = renderAclFile({
    header: "from test.yaml",
    identities: [
      {
        name: "supervisor:s",
        kind: "supervisor",
        publishes: ["p/supervisor/s/barrier", "p/workload/w/promotion"],
        reads: ["p/node/n/hb", "p/supervisor/s/barrier"],
      },
      { name: "app:w:n", kind: "app", publishes: [], reads: ["p/workload/w/promotion"] },
    ],
  });
  assert.equal(
    text,
    [
      "# from test.yaml",
      "# Only what is listed is allowed: every identity may publish (write) and receive (read)",
      "# exactly these topics. Identities are client certificate CNs (use_identity_as_username).",
      "",
      "user supervisor:s",
      "topic read p/node/n/hb",
      "topic readwrite p/supervisor/s/barrier",
      "topic write p/workload/w/promotion",
      "",
      "user app:w:n",
      "topic read p/workload/w/promotion",
      "",
    ].join("\n"),
  );
  assert.ok(!/^(pattern|topic)/m.test(text.split("\nuser ")[0]), "no rule for anonymous clients");
});

Deno.test("renderAclFile refuses a topic an ACL line cannot express exactly", () => {
  assert.equal(aclTopicProblem("a/b"), undefined);
  assert.match(aclTopicProblem("a b")!, /white space/);
  assert.match(aclTopicProblem("a/+/b")!, /wildcard/);
  assert.throws(
    () =>
      renderAclFile({
        identities: [{ name: "node:n", kind: "node", publishes: ["cam 1/tick"], reads: [] }],
      }),
    /identity node:n: the topic "cam 1\/tick" contains white space/,
  );
});
