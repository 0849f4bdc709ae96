import assert from "node:assert/strict";
import { resolveCredentialPath } from "./credentials.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("resolveCredentialPath replaces only a leading ${CREDENTIALS_DIRECTORY}/", () => {
  const getEnv = env({ CREDENTIALS_DIRECTORY: "/run/credentials/x.service/" });
  assert.equal(
    resolveCredentialPath("${CREDENTIALS_DIRECTORY}/client.key", getEnv),
    "/run/credentials/x.service/client.key",
  );
  assert.equal(resolveCredentialPath("/etc/sdv/client.key", getEnv), "/etc/sdv/client.key");
  assert.equal(
    resolveCredentialPath("/etc/${CREDENTIALS_DIRECTORY}/k", getEnv),
    "/etc/${CREDENTIALS_DIRECTORY}/k",
  );
  assert.equal(
    resolveCredentialPath("$CREDENTIALS_DIRECTORY/k", getEnv),
    "$CREDENTIALS_DIRECTORY/k",
  );
});

Deno.test("resolveCredentialPath throws when the variable is unset or empty", () => {
  assert.throws(
    () => resolveCredentialPath("${CREDENTIALS_DIRECTORY}/k", env({})),
    /CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with LoadCredential=/,
  );
  assert.throws(
    () => resolveCredentialPath("${CREDENTIALS_DIRECTORY}/k", env({ CREDENTIALS_DIRECTORY: "" })),
    /is empty/,
  );
});
