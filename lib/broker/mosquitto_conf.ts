/**
 * Renders the vehicle broker's `mosquitto.conf` (mosquitto 2.0, see mosquitto.conf(5)): one TLS
 * listener that requires a client certificate signed by the vehicle CA, takes the certificate's
 * CN as the user name and the user name as the client id, no anonymous access, the generated ACL
 * file, and a payload size limit from the wire format.
 *
 * @module
 */
import { MAX_BEAT_BYTES, MAX_NODE_STATUS_BYTES, MAX_PROMOTION_BYTES } from "../wire/wire.ts";

/**
 * mosquitto's `message_size_limit`, bytes of payload: the largest payload any receiver of ours
 * accepts (`MAX_BEAT_BYTES`, `MAX_NODE_STATUS_BYTES`, `MAX_PROMOTION_BYTES` in
 * `lib/wire/wire.ts`; today 4096, a promotion or a node status). No margin on top: every receiver
 * drops a larger payload unparsed anyway, so the broker may as well drop it before it is fanned
 * out. mosquitto completes the QoS flow of a dropped QoS 1 message (mosquitto.conf(5)).
 */
export const MESSAGE_SIZE_LIMIT_BYTES: number = Math.max(
  MAX_BEAT_BYTES,
  MAX_NODE_STATUS_BYTES,
  MAX_PROMOTION_BYTES,
);

/** The port mosquitto and MQTT clients use for MQTT over TLS (IANA "secure-mqtt"). */
export const MQTTS_DEFAULT_PORT = 8883;

/** Where the broker listens, from the clients' broker URL. */
export interface BrokerListener {
  /** TCP port. */
  port: number;
  /** Host name or IP address the clients connect to (IPv6 without brackets). */
  host: string;
  /** Address to bind, or `undefined` for every interface. */
  bindAddress: string | undefined;
}

/**
 * The listener of the broker the config's clients connect to: the URL's port (default
 * {@linkcode MQTTS_DEFAULT_PORT}); bound to `bindAddress` when given, else to the URL's host when
 * that is an IP address (the clients reach the broker there), else to every interface.
 * @param url `mqtt.url` of a validated config.
 * @throws Error when the URL does not use MQTT over TLS (`mqtts://` or `ssl://`): the generated
 *   broker has only a TLS listener, so such clients could not connect.
 */
export function brokerListener(url: string, bindAddress?: string): BrokerListener {
  const parsed = new URL(url);
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  if (scheme !== "mqtts" && scheme !== "ssl") {
    throw new Error(
      `mqtt.url uses ${scheme}://, but the generated broker listens only for MQTT over TLS: ` +
        `use mqtts://HOST[:PORT] (and mqtt.tls with the CA, certificate and key files)`,
    );
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":");
  return {
    port: parsed.port === "" ? MQTTS_DEFAULT_PORT : Number(parsed.port),
    host,
    bindAddress: bindAddress ?? (isIp ? host : undefined),
  };
}

/** Options of {@linkcode renderMosquittoConf}. */
export interface MosquittoConfOptions {
  listener: BrokerListener;
  /** Absolute path of the CA certificate that signs client certificates (and the server's). */
  caFile: string;
  /** Absolute path of the broker's certificate. */
  certFile: string;
  /** Absolute path of the broker's private key. */
  keyFile: string;
  /** Absolute path of the ACL file (`renderAclFile`). */
  aclFile: string;
  /** Payload limit, bytes (default {@linkcode MESSAGE_SIZE_LIMIT_BYTES}). */
  messageSizeLimitBytes?: number;
  /** First comment line (e.g. which config it was generated from); default none. */
  header?: string;
}

/**
 * The `mosquitto.conf` text. Global security settings come first (`per_listener_settings false`:
 * one set for the whole broker), then the one listener with its TLS and identity settings.
 * Logging, persistence and the user to run as are left to the installation.
 */
export function renderMosquittoConf(options: MosquittoConfOptions): string {
  const { listener } = options;
  const limit = options.messageSizeLimitBytes ?? MESSAGE_SIZE_LIMIT_BYTES;
  return [
    ...(options.header ? [`# ${options.header}`] : []),
    "per_listener_settings false",
    "# No client without a certificate of the vehicle CA; nothing but what the ACL file grants.",
    "allow_anonymous false",
    `acl_file ${options.aclFile}`,
    "# The largest payload any receiver accepts (lib/wire/wire.ts); larger ones are dropped.",
    `message_size_limit ${limit}`,
    "",
    `listener ${listener.port}${listener.bindAddress ? ` ${listener.bindAddress}` : ""}`,
    `cafile ${options.caFile}`,
    `certfile ${options.certFile}`,
    `keyfile ${options.keyFile}`,
    "require_certificate true",
    "# The certificate's CN is the user name the ACL file names ...",
    "use_identity_as_username true",
    "# ... and the client id, so no client can take over another identity's session.",
    "use_username_as_clientid true",
    "",
  ].join("\n");
}
