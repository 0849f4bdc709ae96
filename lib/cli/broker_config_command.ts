/**
 * `broker-config`: writes the locked vehicle broker's configuration (see `lib/broker/`) and prints
 * what it wrote and which identity each role connects as.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { OpensslRunner } from "../broker/dev_pki.ts";
import { BrokerConfigError, writeBrokerConfig } from "../broker/broker_config.ts";

/** Options of {@linkcode brokerConfigCommand}. */
export interface BrokerConfigCommandOptions {
  /** The validated config. */
  config: Config;
  /** Its path, for the generated files' header comment. */
  configPath: string;
  /** Output directory. */
  outDir: string;
  /** Also write a development PKI (default false). */
  devPki?: boolean;
  /** Address the listener binds to (default: the URL's host when it is an IP address). */
  bindAddress?: string;
  /** The product version. */
  version: string;
  /** Prints one line of the report (default `console.log`). */
  print?: (line: string) => void;
  /** Prints one line of an error (default `console.error`). */
  printError?: (line: string) => void;
  /** Runs openssl (default: the real one); for tests. */
  openssl?: OpensslRunner;
}

/**
 * Writes the broker configuration and reports it.
 * @returns 0 when written; 2 when the config cannot describe a locked broker (`mqtt.url` not
 *   `mqtts://`, a topic the ACL file cannot express); 1 when openssl or the file system fails.
 *   Never throws.
 */
export async function brokerConfigCommand(opts: BrokerConfigCommandOptions): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const printError = opts.printError ?? ((line: string) => console.error(line));
  let result;
  try {
    result = await writeBrokerConfig({
      config: opts.config,
      configPath: opts.configPath,
      outDir: opts.outDir,
      devPki: opts.devPki,
      bindAddress: opts.bindAddress,
      version: opts.version,
      openssl: opts.openssl,
    });
  } catch (error) {
    printError(`broker-config: ${(error as Error).message}`);
    return error instanceof BrokerConfigError ? 2 : 1;
  }
  const { listener } = result;
  print(`wrote ${result.confFile}`);
  if (result.pair) print(`wrote ${result.pair.confFile} (the second broker of the pair)`);
  print(`wrote ${result.aclFile} (${result.identities.length} identities)`);
  print(
    `listener: MQTT over TLS on ${listener.bindAddress ?? "every interface"} port ${listener.port}`,
  );
  if (result.pair) {
    const l = result.pair.listener;
    print(
      `pair listener: MQTT over TLS on ${l.bindAddress ?? "every interface"} port ${l.port}`,
    );
  }
  if (result.devPki) {
    print(`wrote a development PKI in ${result.outDir}/pki (not for production)`);
  } else {
    print(
      `provide the CA and the broker's certificate and key: ${result.caFile}, ` +
        `${result.serverCertFile}, ${result.serverKeyFile}`,
    );
  }
  print("identities (client certificate CN; the broker uses it as user name and client id):");
  for (const identity of result.identities) {
    const bundle = result.devPki?.clients.get(identity.name);
    print(`  ${identity.name}${bundle ? `  ${bundle.dir}/` : ""}`);
  }
  const tls = opts.config.mqtt.tls;
  if (!tls?.caFile || !tls.certFile || !tls.keyFile) {
    printError(
      "note: the config sets no mqtt.tls.caFile, certFile and keyFile: its roles cannot " +
        "connect to this broker until it does (e.g. ${CREDENTIALS_DIRECTORY}/client.crt)",
    );
  }
  return 0;
}
