/**
 * Builds `npm:mqtt` client options from the validated config: TLS files, credentials from the
 * environment or a file (never inline), Last Will, timeouts.
 *
 * @module
 */
import type { IClientOptions } from "mqtt";
import type { MqttConfig } from "../config/schema.ts";
import { resolveCredentialPath } from "../config/credentials.ts";

/** What to publish as Last Will when the connection drops without DISCONNECT. */
export interface WillOptions {
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: boolean;
}

/** Options for {@linkcode buildMqttOptions}. */
export interface MqttOptionsInput {
  /** Client id; defaults to the config's `clientId`, else a random one. */
  clientId?: string;
  will?: WillOptions;
  /** Reconnect automatically (default true). */
  reconnect?: boolean;
  /** Reads a file (injected for tests); default `Deno.readTextFileSync`. */
  readFile?: (path: string) => string;
  /** Reads an environment variable (injected for tests); default `Deno.env.get`. */
  getEnv?: (name: string) => string | undefined;
}

/**
 * Translates {@linkcode MqttConfig} into `IClientOptions`. File paths may start with
 * `${CREDENTIALS_DIRECTORY}/` (systemd credentials, see `lib/config/credentials.ts`).
 * @throws Error when a credential or TLS file cannot be read or a named variable is unset.
 */
export function buildMqttOptions(config: MqttConfig, input: MqttOptionsInput = {}): IClientOptions {
  const getEnv = input.getEnv ?? ((n: string) => Deno.env.get(n));
  const readText = input.readFile ?? ((p: string) => Deno.readTextFileSync(p));
  const readFile = (path: string) => readText(resolveCredentialPath(path, getEnv));
  const options: IClientOptions = {
    clientId: input.clientId ?? config.clientId ??
      `sdv-${crypto.randomUUID().slice(0, 8)}`,
    keepalive: config.keepaliveS,
    connectTimeout: config.connectTimeoutMs,
    reconnectPeriod: input.reconnect === false ? 0 : config.reconnectPeriodMs,
    clean: true,
    protocolVersion: 4,
  };
  const env = (name: string): string => {
    const value = getEnv(name);
    if (value === undefined) throw new Error(`environment variable ${name} is not set`);
    return value;
  };
  if (config.usernameEnv) options.username = env(config.usernameEnv);
  else if (config.username) options.username = config.username;
  if (config.passwordEnv) options.password = env(config.passwordEnv);
  else if (config.passwordFile) options.password = readFile(config.passwordFile).trim();
  if (config.tls) {
    if (config.tls.caFile) options.ca = readFile(config.tls.caFile);
    if (config.tls.certFile) options.cert = readFile(config.tls.certFile);
    if (config.tls.keyFile) options.key = readFile(config.tls.keyFile);
    options.rejectUnauthorized = config.tls.rejectUnauthorized;
  }
  if (input.will) {
    options.will = {
      topic: input.will.topic,
      payload: new TextEncoder().encode(input.will.payload) as unknown as Buffer,
      qos: input.will.qos,
      retain: input.will.retain,
    };
  }
  return options;
}
