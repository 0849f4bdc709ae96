/**
 * `sdv-failover`: the one binary flashed onto every Jetson image.
 *
 * - `run --config FILE [--id NAME] [--dry-run] [--http-listen ADDR]` the supervisor (watchdog +
 *   failover reconciler), server node; `--id` names this instance (a supervisor pair runs two)
 * - `agent --config FILE --node NAME [--drain-timeout D] [--http-listen ADDR]` the node agent
 *   (heartbeat, node status), every node
 * - both serve `/metrics`, `/healthz`, `/readyz`, `/status` on `http.listen` / `http.agentListen`
 *   (`--http-listen` overrides it, `""` disables it)
 * - `check --config FILE [--supervisor]` validate a config, print the FTTI budget per workload
 * - `unfence --config FILE --node NAME [--kubeconfig PATH]`  ask the supervisor to lift its fence
 * - `status (--config FILE | --url URL) [-o json] [--watch]` what the supervisor(s) see: nodes,
 *   sensors, apps, workloads (from the retained state on the bus, or the HTTP `/status`)
 * - `publish --config FILE [--fault SPEC]... [--duration D]`  test publisher with fault injection
 * - `broker-config --config FILE --out DIR [--dev-pki] [--bind ADDR]` the locked vehicle broker's
 *   mosquitto.conf and ACL file (and a development PKI)
 * - `cluster-identity --kubeconfig ADMIN --out FILE [--namespace NS] [--name SA] [--duration D]`
 *   the supervisor's own kubeconfig (a ServiceAccount token), made with an admin kubeconfig
 * - `report --journal FILE [--incident ID | --last] [--svg OUT.svg] [-o table|json]` the failover
 *   journal's incidents: list, one incident's steps and budget check, its timeline as SVG
 * - `demo`                            self-contained demo: in-process broker, dry-run reconciler
 * - `version`
 *
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or config error. SIGINT/SIGTERM start an ordered
 * shutdown; for `agent`, SIGHUP too (a planned stop, like SIGTERM). Only this file calls
 * `Deno.exit`.
 *
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import denoJson from "./deno.json" with { type: "json" };
import type { Config } from "./lib/config/schema.ts";
import type { ConfigNeeds } from "./lib/config/environment.ts";
import { createLogger, type Logger, type LogLevel } from "./lib/log/log.ts";

/** The product version, from deno.json. */
export const VERSION: string = denoJson.version;

const EXIT_OK = 0;
const EXIT_USAGE = 2;

interface CommonOptions {
  config: string;
  logFormat: "text" | "json";
  logLevel: LogLevel;
}

function loggerFor(opts: { logFormat: "text" | "json"; logLevel: LogLevel }, role: string): Logger {
  return createLogger({ format: opts.logFormat, level: opts.logLevel }, { role });
}

/**
 * Loads and validates the config, and checks the files and variables it names (plus what `needs`
 * asks for); on error prints every issue and returns undefined (the caller exits 2).
 */
async function loadOrReport(path: string, needs: ConfigNeeds = {}): Promise<Config | undefined> {
  const { loadConfig, ConfigError } = await import("./lib/config/load.ts");
  try {
    return await loadConfig(path, { needs });
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return undefined;
    }
    throw error;
  }
}

/**
 * An AbortSignal that fires on SIGINT or SIGTERM (the ordered-shutdown trigger), or on one of
 * `extra`; its reason is the signal's name.
 */
function shutdownSignal(extra: readonly Deno.Signal[] = []): AbortSignal {
  const controller = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM", ...extra] as const) {
    try {
      Deno.addSignalListener(sig, () => controller.abort(sig));
    } catch {
      // signal not supported on this platform
    }
  }
  return controller.signal;
}

/**
 * `--http-listen ADDR`: the role's HTTP endpoint address, overriding the config (`""` disables it;
 * port 0: any free port).
 */
const httpListenOption = (cmd: Command, configKey: string) =>
  cmd.option(
    "--http-listen <addr>",
    `HTTP endpoint (/metrics, /healthz, /readyz, /status) as HOST:PORT, overriding ${configKey}; ` +
      `"" disables it`,
  );

/** The `--http-listen` value's problem (a usage error), or undefined. */
async function httpListenProblem(value: string | undefined): Promise<string | undefined> {
  if (value === undefined) return undefined;
  const { listenAddressProblem } = await import("./lib/config/listen_address.ts");
  const problem = listenAddressProblem(value);
  return problem === undefined ? undefined : `--http-listen: ${problem}`;
}

const logOptions = (cmd: Command) =>
  cmd
    .addOption(
      new Option("--log-format <format>", "log line format").choices(["text", "json"]).default(
        "text",
      ),
    )
    .addOption(
      new Option("--log-level <level>", "lowest level logged").choices([
        "debug",
        "info",
        "warn",
        "error",
      ])
        .default("info"),
    );

/** Builds the CLI; `exit` receives the command's exit code. */
export function buildCli(exit: (code: number) => void): Command {
  const program = new Command("sdv-failover")
    .description(
      "Failover orchestrator for safety-relevant vehicle workloads on K3s (Jetson nodes)",
    )
    .version(VERSION, "-V, --version")
    .showHelpAfterError()
    .exitOverride();

  logOptions(httpListenOption(
    program.command("run")
      .description(
        "run the supervisor: MQTT heartbeats → watchdog → failover through the Kubernetes API",
      )
      .requiredOption("-c, --config <file>", "config file (YAML)")
      .option(
        "--id <name>",
        "this instance's supervisor id (overrides supervisor.id; each instance of a supervisor " +
          "pair needs its own)",
      )
      .option("--dry-run", "print the failover plans, call no Kubernetes API", false),
    "http.listen",
  )).action(async (opts: CommonOptions & { dryRun: boolean; id?: string; httpListen?: string }) => {
    const httpProblem = await httpListenProblem(opts.httpListen);
    if (httpProblem) {
      console.error(httpProblem);
      return exit(EXIT_USAGE);
    }
    const loaded = await loadOrReport(opts.config, { kubeconfig: !opts.dryRun });
    if (!loaded) return exit(EXIT_USAGE);
    const { runCommand, runFailure, withSupervisorId } = await import(
      "./lib/cli/run_command.ts"
    );
    const withId = withSupervisorId(loaded, opts.id);
    if ("error" in withId) {
      console.error(withId.error);
      return exit(EXIT_USAGE);
    }
    try {
      exit(
        await runCommand({
          config: withId.config,
          dryRun: opts.dryRun,
          signal: shutdownSignal(),
          log: loggerFor(opts, "supervisor"),
          httpListen: opts.httpListen,
        }),
      );
    } catch (error) {
      const failure = runFailure(error);
      console.error(failure.message);
      exit(failure.code);
    }
  });

  logOptions(httpListenOption(
    program.command("agent")
      .description(
        "run the node agent: publish this node's heartbeat and status (online, degraded:SENSORS); " +
          "SIGTERM/SIGHUP drain the node first",
      )
      .requiredOption("-c, --config <file>", "config file (YAML)")
      .requiredOption("-n, --node <name>", "this node's name, as in the config")
      .option(
        "--drain-timeout <time>",
        "planned stop: longest wait for the workloads to move away (e.g. 3s, 1500ms)",
        "3s",
      ),
    "http.agentListen",
  )).action(async (
    opts: CommonOptions & { node: string; drainTimeout: string; httpListen?: string },
  ) => {
    const httpProblem = await httpListenProblem(opts.httpListen);
    if (httpProblem) {
      console.error(httpProblem);
      return exit(EXIT_USAGE);
    }
    const config = await loadOrReport(opts.config);
    if (!config) return exit(EXIT_USAGE);
    const [{ agentCommand }, { parseDurationMs }] = await Promise.all([
      import("./lib/cli/agent_command.ts"),
      import("./lib/publisher/faults.ts"),
    ]);
    let drainTimeoutMs: number;
    try {
      drainTimeoutMs = parseDurationMs(opts.drainTimeout);
    } catch (error) {
      console.error(`--drain-timeout: ${(error as Error).message}`);
      return exit(EXIT_USAGE);
    }
    exit(
      await agentCommand({
        config,
        nodeName: opts.node,
        drainTimeoutMs,
        signal: shutdownSignal(["SIGHUP"]),
        log: loggerFor(opts, "agent"),
        httpListen: opts.httpListen,
      }),
    );
  });

  program.command("check")
    .description(
      "validate a config (every problem with line:column) and print the FTTI budget per workload",
    )
    .requiredOption("-c, --config <file>", "config file (YAML)")
    .option(
      "--supervisor",
      "also check what `run` (without --dry-run) needs: a readable cluster.kubeconfig, or the " +
        "pod's service account with cluster.inCluster",
      false,
    )
    .action(async (opts: { config: string; supervisor: boolean }) => {
      const { checkCommand } = await import("./lib/cli/check_command.ts");
      exit(
        await checkCommand({
          configPath: opts.config,
          needs: { kubeconfig: opts.supervisor },
        }),
      );
    });

  program.command("unfence")
    .description(
      "ask the supervisor to lift its fence (our cordon and taint) from a node: writes the Node " +
        "annotation sdv-failover.io/unfence-requested",
    )
    .requiredOption("-c, --config <file>", "config file (YAML)")
    .requiredOption("-n, --node <name>", "the node's name, as in the config")
    .option("--kubeconfig <path>", "your kubeconfig (default: the config's cluster.kubeconfig)")
    .action(async (opts: { config: string; node: string; kubeconfig?: string }) => {
      const config = await loadOrReport(opts.config);
      if (!config) return exit(EXIT_USAGE);
      const { unfenceCommand } = await import("./lib/cli/unfence_command.ts");
      exit(
        await unfenceCommand({
          config,
          nodeName: opts.node,
          kubeconfigPath: opts.kubeconfig,
          signal: shutdownSignal(),
        }),
      );
    });

  program.command("status")
    .description(
      "show what the supervisor(s) see — nodes, sensors, apps (state, heartbeat age, fence) and " +
        "workloads (active node, epoch, why) — from their retained state on the bus or over HTTP",
    )
    .option("-c, --config <file>", "config file (YAML): broker URL, TLS, topic prefix, ids")
    .option("--url <url>", "read GET <url>/status of a supervisor's HTTP endpoint instead")
    .option(
      "--id <name>",
      "also read this supervisor id (repeatable; the config's ids are always read)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .addOption(
      new Option("-o, --output <format>", "output format").choices(["table", "json"]).default(
        "table",
      ),
    )
    .option("-w, --watch", "redraw on every change (bus) or every --interval (HTTP)", false)
    .option("--timeout <time>", "how long to wait for the state (e.g. 2s, 500ms)", "2s")
    .option("--interval <time>", "--watch with --url: time between requests", "1s")
    .action(
      async (
        opts: {
          config?: string;
          url?: string;
          id: string[];
          output: "table" | "json";
          watch: boolean;
          timeout: string;
          interval: string;
        },
      ) => {
        if ((opts.config === undefined) === (opts.url === undefined)) {
          console.error("status: give exactly one of --config FILE or --url URL");
          return exit(EXIT_USAGE);
        }
        const { parseDurationMs } = await import("./lib/publisher/faults.ts");
        let timeoutMs: number, intervalMs: number;
        try {
          timeoutMs = parseDurationMs(opts.timeout);
          intervalMs = parseDurationMs(opts.interval);
        } catch (error) {
          console.error(`status: ${(error as Error).message}`);
          return exit(EXIT_USAGE);
        }
        let config: Config | undefined;
        if (opts.config !== undefined) {
          config = await loadOrReport(opts.config);
          if (!config) return exit(EXIT_USAGE);
        }
        const { statusCommand } = await import("./lib/cli/status_command.ts");
        exit(
          await statusCommand({
            source: config
              ? { kind: "bus", config, ids: opts.id }
              : { kind: "http", url: opts.url! },
            output: opts.output,
            watch: opts.watch,
            timeoutMs,
            intervalMs,
            signal: shutdownSignal(),
          }),
        );
      },
    );

  logOptions(
    program.command("publish")
      .description("simulate every node agent, sensor and app heartbeat of a config, with faults")
      .requiredOption("-c, --config <file>", "config file (YAML)")
      .option(
        "-f, --fault <spec>",
        "fault to inject (repeatable): node-crash:NODE@T, node-hang:NODE@T, sensor-loss:SENSOR@T, " +
          "app-hang:WORKLOAD@T, jitter:NODE:MS, partition:NODE@T+DUR, planned-stop:NODE@T",
        (value: string, previous: string[]) => [...previous, value],
        [] as string[],
      )
      .option("-d, --duration <time>", "stop after this long (e.g. 10s, 1500ms)", "10s"),
  ).action(async (opts: CommonOptions & { fault: string[]; duration: string }) => {
    const config = await loadOrReport(opts.config);
    if (!config) return exit(EXIT_USAGE);
    const [{ publishCommand }, { parseDurationMs }] = await Promise.all([
      import("./lib/cli/publish_command.ts"),
      import("./lib/publisher/faults.ts"),
    ]);
    let durationMs: number;
    try {
      durationMs = parseDurationMs(opts.duration);
    } catch (error) {
      console.error(`--duration: ${(error as Error).message}`);
      return exit(EXIT_USAGE);
    }
    exit(
      await publishCommand({
        config,
        faults: opts.fault,
        durationMs,
        signal: shutdownSignal(),
        log: loggerFor(opts, "publisher"),
      }),
    );
  });

  program.command("broker-config")
    .description(
      "write the vehicle broker's mosquitto.conf: a TLS listener requiring client certificates, " +
        "an ACL file of who may publish and read what (generated from the config), a payload " +
        "size limit; --dev-pki also writes a development CA and certificates",
    )
    .requiredOption("-c, --config <file>", "config file (YAML)")
    .requiredOption("-o, --out <dir>", "output directory")
    .option(
      "--dev-pki",
      "also write a development CA, the broker's and one client certificate " +
        "per identity (openssl; for tests and demos only)",
      false,
    )
    .option(
      "--bind <address>",
      "address the listener binds to (default: the host of mqtt.url " +
        "when it is an IP address, else every interface)",
    )
    .action(async (opts: { config: string; out: string; devPki: boolean; bind?: string }) => {
      // The roles' key files live on the vehicle's hosts, not where the broker config is made.
      const config = await loadOrReport(opts.config, { mqttCredentials: false });
      if (!config) return exit(EXIT_USAGE);
      const { brokerConfigCommand } = await import("./lib/cli/broker_config_command.ts");
      exit(
        await brokerConfigCommand({
          config,
          configPath: opts.config,
          outDir: opts.out,
          devPki: opts.devPki,
          bindAddress: opts.bind,
          version: VERSION,
        }),
      );
    });

  program.command("cluster-identity")
    .description(
      "write the supervisor's own kubeconfig: a token of the ServiceAccount bound by " +
        "config/k3s/rbac.yaml (TokenRequest API, bounded lifetime), never the admin's",
    )
    .requiredOption(
      "--kubeconfig <path>",
      "an admin kubeconfig (reads the RBAC objects, requests the token)",
    )
    .requiredOption(
      "-o, --out <file>",
      "where the supervisor's kubeconfig is written (mode 0600); - : standard output (the " +
        "packaged program may not write files), only into a pipe or a file only you can read",
    )
    .option("--namespace <namespace>", "the ServiceAccount's namespace", "kube-system")
    .option("--name <name>", "the ServiceAccount's name", "sdv-failover")
    .option("--duration <time>", "token lifetime: s, m, h or d (at least 10m)", "8760h")
    .action(
      async (
        opts: {
          kubeconfig: string;
          out: string;
          namespace: string;
          name: string;
          duration: string;
        },
      ) => {
        const { clusterIdentityCommand } = await import("./lib/cli/cluster_identity_command.ts");
        exit(
          await clusterIdentityCommand({
            adminKubeconfigPath: opts.kubeconfig,
            outPath: opts.out,
            namespace: opts.namespace,
            name: opts.name,
            duration: opts.duration,
          }),
        );
      },
    );

  program.command("report")
    .description(
      "the failover journal's incidents: without --incident/--last a list; with one, its steps " +
        "(ms since the last heartbeat), the FTTI budget check and, with --svg, its timeline",
    )
    .requiredOption("-j, --journal <file>", "the journal (supervisor's journal.path)")
    .option("-i, --incident <id>", "the incident's id (see the list)")
    .option("--last", "the newest incident", false)
    .option("--svg <file>", "write the incident's timeline as SVG")
    .addOption(
      new Option("-o, --output <format>", "output").choices(["table", "json"]).default(
        "table",
      ),
    )
    .action(
      async (
        opts: {
          journal: string;
          incident?: string;
          last: boolean;
          svg?: string;
          output: "table" | "json";
        },
      ) => {
        const { reportCommand } = await import("./lib/cli/report_command.ts");
        exit(
          await reportCommand({
            journalPath: opts.journal,
            incident: opts.incident,
            last: opts.last,
            svgPath: opts.svg,
            output: opts.output,
          }),
        );
      },
    );

  program.command("demo")
    .description(
      "self-contained demo: in-process broker, simulated nodes, a node crash, dry-run failover",
    )
    .option(
      "-c, --config <file>",
      "config to simulate (default: config/example.yaml, embedded in the program)",
    )
    .option("-f, --fault <spec>", "fault to inject instead of node-crash:worker-node2@2s")
    .option("--verbose", "also print the supervisor's log", false)
    .action(async (opts: { config?: string; fault?: string; verbose: boolean }) => {
      let config: Config | undefined;
      if (opts.config) {
        config = await loadOrReport(opts.config);
        if (!config) return exit(EXIT_USAGE);
      }
      const { demoCommand } = await import("./lib/demo/demo.ts");
      exit(
        await demoCommand({
          config,
          configFile: opts.config,
          fault: opts.fault,
          verbose: opts.verbose,
          signal: shutdownSignal(),
        }),
      );
    });

  program.command("version")
    .description("print the version")
    .action(() => {
      console.log(`sdv-failover ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.target})`);
      exit(EXIT_OK);
    });

  return program;
}

if (import.meta.main) {
  let code: number | undefined;
  const program = buildCli((c) => (code = c));
  try {
    await program.parseAsync(Deno.args, { from: "user" });
    if (code === undefined) {
      program.outputHelp();
      code = Deno.args.length === 0 ? EXIT_USAGE : EXIT_OK;
    }
  } catch (error) {
    if (error instanceof CommanderError) {
      const ok = error.code === "commander.helpDisplayed" || error.code === "commander.version" ||
        error.code === "commander.help";
      code = ok ? EXIT_OK : EXIT_USAGE;
    } else {
      console.error(`fatal: ${error instanceof Error ? error.stack : String(error)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
