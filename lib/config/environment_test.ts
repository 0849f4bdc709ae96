import assert from "node:assert/strict";
import {
  type EnvironmentAccess,
  environmentIssues,
  type FileStat,
  SERVICE_ACCOUNT_TOKEN_FILE,
} from "./environment.ts";
import { ConfigError, type ConfigIssue, loadConfig } from "./load.ts";

/** A fake environment: `files` by path (`"dir"`, `"fifo"`, `"unreadable"` or a regular file). */
function fake(
  files: Record<string, "file" | "dir" | "fifo" | "unreadable">,
  env: Record<string, string> = {},
): EnvironmentAccess & { opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    stat(path: string): Promise<FileStat> {
      const kind = files[path];
      if (kind === undefined) return Promise.reject(new Deno.errors.NotFound(`stat '${path}'`));
      return Promise.resolve({
        isFile: kind === "file" || kind === "unreadable",
        isDirectory: kind === "dir",
      });
    },
    openForReading(path: string): Promise<void> {
      opened.push(path);
      if (files[path] === "unreadable") {
        return Promise.reject(new Deno.errors.PermissionDenied(`open '${path}'`));
      }
      return Promise.resolve();
    },
    getEnv: (name: string) => env[name],
  };
}

const RAW = {
  mqtt: {
    usernameEnv: "MQTT_USER",
    passwordFile: "/etc/sdv/password",
    tls: { caFile: "/etc/sdv/ca.pem", certFile: "/etc/sdv/dir", keyFile: "/etc/sdv/fifo" },
  },
  cluster: { kubeconfig: "/etc/rancher/k3s/k3s.yaml" },
};

Deno.test("environment: files must be readable regular files, variables set", async () => {
  const access = fake({
    "/etc/sdv/password": "unreadable",
    "/etc/sdv/dir": "dir",
    "/etc/sdv/fifo": "fifo",
  });
  const issues = await environmentIssues(RAW, {}, access);
  assert.deepEqual(issues, [
    {
      path: "mqtt.passwordFile",
      message: 'the MQTT password file "/etc/sdv/password" cannot be read: permission denied',
    },
    {
      path: "mqtt.tls.caFile",
      message:
        `the broker's CA certificate file "/etc/sdv/ca.pem" cannot be used: it does not exist`,
    },
    {
      path: "mqtt.tls.certFile",
      message: 'the client certificate file "/etc/sdv/dir" is not a regular file (a directory)',
    },
    {
      path: "mqtt.tls.keyFile",
      message:
        'the client key file "/etc/sdv/fifo" is not a regular file (a device, FIFO or socket)',
    },
    { path: "mqtt.usernameEnv", message: "the environment variable MQTT_USER is not set" },
  ]);
  // A FIFO or a directory is never opened (opening a FIFO blocks until a writer appears).
  assert.deepEqual(access.opened, ["/etc/sdv/password"]);
});

Deno.test("environment: all present is no issue; an empty variable is one", async () => {
  const files = {
    "/etc/sdv/password": "file",
    "/etc/sdv/ca.pem": "file",
    "/etc/sdv/dir": "file",
    "/etc/sdv/fifo": "file",
  } as const;
  assert.deepEqual(await environmentIssues(RAW, {}, fake(files, { MQTT_USER: "u" })), []);
  assert.deepEqual(await environmentIssues(RAW, {}, fake(files, { MQTT_USER: "" })), [
    { path: "mqtt.usernameEnv", message: "the environment variable MQTT_USER is empty" },
  ]);
});

Deno.test("environment: the kubeconfig only when the caller needs it", async () => {
  const raw = { cluster: { kubeconfig: "/etc/rancher/k3s/k3s.yaml" } };
  assert.deepEqual(await environmentIssues(raw, {}, fake({})), []);
  assert.deepEqual(await environmentIssues(raw, { kubeconfig: false }, fake({})), []);
  const issues = await environmentIssues(raw, { kubeconfig: true }, fake({}));
  assert.equal(issues.length, 1);
  assert.equal(issues[0].path, "cluster.kubeconfig");
  assert.match(
    issues[0].message,
    /^the kubeconfig "\/etc\/rancher\/k3s\/k3s\.yaml" cannot be used: it does not exist;/,
  );
  // The default is checked too, and said to be the default.
  const byDefault = await environmentIssues({}, { kubeconfig: true }, fake({}));
  assert.match(byDefault[0].message, /k3s\.yaml" \(the default\) cannot be used/);
  assert.deepEqual(
    await environmentIssues(
      raw,
      { kubeconfig: true },
      fake({ "/etc/rancher/k3s/k3s.yaml": "file" }),
    ),
    [],
  );
});

Deno.test("environment: inCluster needs the service account and the service variables", async () => {
  const raw = { cluster: { inCluster: true, kubeconfig: "/nowhere" } };
  const issues = await environmentIssues(raw, { kubeconfig: true }, fake({}));
  assert.deepEqual(issues.map((i) => i.path), [
    "cluster.inCluster",
    "cluster.inCluster",
    "cluster.inCluster",
  ]);
  assert.match(issues[0].message, /KUBERNETES_SERVICE_HOST is not set/);
  const inPod = fake({ [SERVICE_ACCOUNT_TOKEN_FILE]: "file" }, {
    KUBERNETES_SERVICE_HOST: "10.43.0.1",
    KUBERNETES_SERVICE_PORT: "443",
  });
  assert.deepEqual(await environmentIssues(raw, { kubeconfig: true }, inPod), []);
});

Deno.test("environment: invalid values are left to the schema, nothing throws", async () => {
  for (const raw of [null, 1, [], { mqtt: { passwordFile: 3, usernameEnv: "no way" } }]) {
    assert.deepEqual(await environmentIssues(raw, { kubeconfig: false }, fake({})), []);
  }
  const throwing: EnvironmentAccess = {
    stat: () => Promise.reject(new Deno.errors.NotCapable("no --allow-read")),
    openForReading: () => Promise.resolve(),
    getEnv: () => {
      throw new Deno.errors.NotCapable("no --allow-env");
    },
  };
  const issues = await environmentIssues(RAW, {}, throwing);
  assert.equal(issues.length, 5);
  assert.match(issues[0].message, /no Deno permission for it/);
});

Deno.test("loadConfig reports environment problems at their line:column; exit-2 class", async () => {
  const path = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(
      path,
      `nodes:
  - name: n1
    heartbeatPeriodMs: 10
    heartbeatTimeoutMs: 30
mqtt:
  usernameEnv: SDV_TEST_USER
  passwordFile: /run/secrets/mqtt
cluster:
  kubeconfig: /etc/k.yaml
`,
    );
    const where = (i: ConfigIssue) => `${i.line}:${i.column} ${i.path}`;
    const load = async (needs: { kubeconfig?: boolean }) => {
      try {
        await loadConfig(path, { needs, environment: fake({}) });
      } catch (error) {
        if (error instanceof ConfigError) return error.issues.map(where);
        throw error;
      }
      return [];
    };
    assert.deepEqual(await load({}), ["6:16 mqtt.usernameEnv", "7:17 mqtt.passwordFile"]);
    assert.deepEqual(await load({ kubeconfig: true }), [
      "6:16 mqtt.usernameEnv",
      "7:17 mqtt.passwordFile",
      "9:15 cluster.kubeconfig",
    ]);
    const ok = await loadConfig(path, {
      needs: { kubeconfig: true },
      environment: fake({ "/run/secrets/mqtt": "file", "/etc/k.yaml": "file" }, {
        SDV_TEST_USER: "u",
      }),
    });
    assert.equal(ok.mqtt.usernameEnv, "SDV_TEST_USER");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("environment: ${CREDENTIALS_DIRECTORY}/ paths resolve against systemd's credentials directory", async () => {
  const raw = {
    mqtt: {
      url: "mqtts://broker:8883",
      tls: {
        caFile: "${CREDENTIALS_DIRECTORY}/ca.crt",
        certFile: "${CREDENTIALS_DIRECTORY}/client.crt",
        keyFile: "${CREDENTIALS_DIRECTORY}/client.key",
      },
    },
  };
  const files = {
    "/run/credentials/sdv-failover-agent.service/ca.crt": "file",
    "/run/credentials/sdv-failover-agent.service/client.crt": "file",
  } as const;
  const access = fake(files, {
    CREDENTIALS_DIRECTORY: "/run/credentials/sdv-failover-agent.service",
  });
  assert.deepEqual(await environmentIssues(raw, {}, access), [{
    path: "mqtt.tls.keyFile",
    message: 'the client key file "${CREDENTIALS_DIRECTORY}/client.key" ' +
      "(/run/credentials/sdv-failover-agent.service/client.key) cannot be used: it does not exist",
  }]);
  const unset = await environmentIssues(raw, {}, fake(files));
  assert.equal(unset.length, 3);
  assert.match(
    unset[0].message,
    /CREDENTIALS_DIRECTORY is not set; systemd sets it for a unit with LoadCredential=/,
  );
});

Deno.test("environment: a ${CREDENTIALS_DIRECTORY}/ kubeconfig (the unit's LoadCredential=kubeconfig)", async () => {
  const raw = { cluster: { kubeconfig: "${CREDENTIALS_DIRECTORY}/kubeconfig" } };
  const dir = "/run/credentials/sdv-failover-supervisor.service";
  const env = { CREDENTIALS_DIRECTORY: dir };
  const present = fake({ [`${dir}/kubeconfig`]: "file" }, env);
  assert.deepEqual(await environmentIssues(raw, { kubeconfig: true }, present), []);
  assert.deepEqual(await environmentIssues(raw, { kubeconfig: true }, fake({}, env)), [{
    path: "cluster.kubeconfig",
    message: `the kubeconfig "\${CREDENTIALS_DIRECTORY}/kubeconfig" (${dir}/kubeconfig) cannot ` +
      "be used: it does not exist; the supervisor needs it to reach the Kubernetes API " +
      "(run --dry-run does not)",
  }]);
  const unset = await environmentIssues(raw, { kubeconfig: true }, fake({}));
  assert.equal(unset.length, 1);
  assert.equal(unset[0].path, "cluster.kubeconfig");
  assert.match(unset[0].message, /CREDENTIALS_DIRECTORY is not set; systemd sets it/);
  // Not needed (agent, dry run): not checked.
  assert.deepEqual(await environmentIssues(raw, { kubeconfig: false }, fake({})), []);
});

Deno.test("environment: mqttCredentials false skips the MQTT files and variables (broker-config)", async () => {
  assert.deepEqual(await environmentIssues(RAW, { mqttCredentials: false }, fake({})), []);
});
