/**
 * A development PKI for a locked bus, made with the `openssl` command line tool (Debian package
 * `openssl`, OpenSSL 3): a CA, the broker's server certificate and one client certificate per bus
 * identity (CN = the identity, which mosquitto's `use_identity_as_username` turns into the user
 * name the ACL file names). For tests and demonstrations only: the CA key lies next to the
 * certificates, and running it again makes a new CA, so every certificate must be replaced.
 *
 * Keys are EC P-256 in PKCS#8 PEM, mode 0600; certificates are X.509 v3 with the extensions strict
 * verifiers (rustls/webpki in Deno's TLS, OpenSSL in mosquitto) require: the CA with
 * `basicConstraints CA:TRUE` and `keyCertSign`; leaves with `CA:FALSE`, `digitalSignature` and
 * `serverAuth` (broker, with subjectAltNames) or `clientAuth` (clients).
 *
 * Layout under `dir`: `ca.crt`, `ca.key`, `server.crt`, `server.key`, and per identity a bundle
 * `clients/<identity with ":" as "_">/` (see `identityFileStem`) holding `ca.crt` (a copy),
 * `client.crt` and `client.key`: exactly the files a role needs, under the names the packaged
 * systemd units load as credentials (`LoadCredential=client.crt:…`), so a bundle directory can
 * stand in for `$CREDENTIALS_DIRECTORY`.
 *
 * @module
 */
import { identityFileStem } from "./identities.ts";

/** Runs `openssl` with `args` in `cwd`; rejects with its stderr when it fails. */
export type OpensslRunner = (args: readonly string[], cwd: string) => Promise<void>;

/** The real `openssl` from `PATH`. */
export const runOpenssl: OpensslRunner = async (args, cwd) => {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", {
      args: [...args],
      cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error("openssl not found; install it (Debian: apt-get install -y openssl)");
    }
    throw error;
  }
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr).trim();
    throw new Error(`openssl ${args[0]} failed (exit ${output.code}): ${stderr}`);
  }
};

/** Files of the development PKI (absolute or relative as `dir` was given). */
export interface DevPki {
  caCertFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** Per identity: its bundle directory and the files in it. */
  clients: Map<string, ClientBundle>;
}

/** One identity's files (see the module documentation). */
export interface ClientBundle {
  /** The directory holding the three files. */
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Options of {@linkcode writeDevPki}. */
export interface DevPkiOptions {
  /** Directory to write into (created if missing; existing files of the layout are replaced). */
  dir: string;
  /** Identities to issue client certificates for (their names become the CNs). */
  identities: readonly string[];
  /**
   * Host names and IP addresses the broker is reached at (its certificate's subjectAltNames);
   * `localhost` and `127.0.0.1` are always added.
   */
  serverHosts: readonly string[];
  /** Validity of every certificate, days (default 825, the longest Apple platforms accept). */
  validityDays?: number;
  /** Runs openssl (default {@linkcode runOpenssl}); injected in tests. */
  openssl?: OpensslRunner;
}

const CA_EXTENSIONS = [
  "basicConstraints = critical, CA:TRUE",
  "keyUsage = critical, keyCertSign, cRLSign",
  "subjectKeyIdentifier = hash",
];

function leafExtensions(usage: "serverAuth" | "clientAuth", altNames: string[] = []): string[] {
  return [
    "basicConstraints = critical, CA:FALSE",
    "keyUsage = critical, digitalSignature",
    `extendedKeyUsage = ${usage}`,
    "subjectKeyIdentifier = hash",
    "authorityKeyIdentifier = keyid",
    ...(altNames.length > 0 ? [`subjectAltName = ${altNames.join(", ")}`] : []),
  ];
}

/** An openssl config with an empty DN section (the subject comes from `-subj`) and `[ext]`. */
function opensslConfig(extensions: string[]): string {
  return ["[req]", "distinguished_name = dn", "[dn]", "[ext]", ...extensions, ""].join("\n");
}

/** `-subj` value for a CN; `/`, `+`, `=` and `\` would be structure there, so they are escaped. */
function subject(cn: string): string {
  return `/CN=${cn.replace(/[\\/+=]/g, (c) => `\\${c}`)}`;
}

/** A random positive 127-bit serial number, hex (RFC 5280 §4.1.2.2: at most 20 octets). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  return "0x" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** `IP:` for an IPv4/IPv6 address, else `DNS:`. */
function altName(host: string): string {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(":") ? `IP:${host}` : `DNS:${host}`;
}

/**
 * Writes the development PKI (see the module documentation for the layout and profiles).
 * @throws Error when openssl is missing or fails (its stderr in the message), or a file cannot be
 *   written.
 */
export async function writeDevPki(options: DevPkiOptions): Promise<DevPki> {
  const openssl = options.openssl ?? runOpenssl;
  const days = String(options.validityDays ?? 825);
  const dir = options.dir;
  await Deno.mkdir(`${dir}/clients`, { recursive: true, mode: 0o700 });
  const work = await Deno.makeTempDir({ dir, prefix: ".openssl-" });
  try {
    const caCnf = `${work}/ca.cnf`;
    await Deno.writeTextFile(caCnf, opensslConfig(CA_EXTENSIONS));
    const pki: DevPki = {
      caCertFile: `${dir}/ca.crt`,
      caKeyFile: `${dir}/ca.key`,
      serverCertFile: `${dir}/server.crt`,
      serverKeyFile: `${dir}/server.key`,
      clients: new Map(),
    };
    await newKey(openssl, pki.caKeyFile, work);
    await openssl([
      "req",
      "-x509",
      "-new",
      "-config",
      caCnf,
      "-extensions",
      "ext",
      "-key",
      pki.caKeyFile,
      "-subj",
      subject("sdv-failover development CA"),
      "-sha256",
      "-days",
      days,
      "-out",
      pki.caCertFile,
    ], work);

    const issue = async (cn: string, certFile: string, keyFile: string, ext: string[]) => {
      const stem = `${work}/${crypto.randomUUID()}`;
      await Deno.writeTextFile(`${stem}.cnf`, opensslConfig(ext));
      await newKey(openssl, keyFile, work);
      await openssl([
        "req",
        "-new",
        "-config",
        `${stem}.cnf`,
        "-key",
        keyFile,
        "-subj",
        subject(cn),
        "-out",
        `${stem}.csr`,
      ], work);
      await openssl([
        "x509",
        "-req",
        "-in",
        `${stem}.csr`,
        "-CA",
        pki.caCertFile,
        "-CAkey",
        pki.caKeyFile,
        "-set_serial",
        randomSerial(),
        "-sha256",
        "-days",
        days,
        "-extfile",
        `${stem}.cnf`,
        "-extensions",
        "ext",
        "-out",
        certFile,
      ], work);
    };

    const hosts = [...new Set([...options.serverHosts, "localhost", "127.0.0.1"])];
    await issue(
      "sdv-failover broker",
      pki.serverCertFile,
      pki.serverKeyFile,
      leafExtensions("serverAuth", hosts.map(altName)),
    );
    for (const identity of options.identities) {
      const bundleDir = `${dir}/clients/${identityFileStem(identity)}`;
      await Deno.mkdir(bundleDir, { recursive: true, mode: 0o700 });
      const bundle: ClientBundle = {
        dir: bundleDir,
        caFile: `${bundleDir}/ca.crt`,
        certFile: `${bundleDir}/client.crt`,
        keyFile: `${bundleDir}/client.key`,
      };
      await issue(identity, bundle.certFile, bundle.keyFile, leafExtensions("clientAuth"));
      await Deno.copyFile(pki.caCertFile, bundle.caFile);
      pki.clients.set(identity, bundle);
    }
    return pki;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** An EC P-256 private key (PKCS#8 PEM) at `file`, mode 0600. */
async function newKey(openssl: OpensslRunner, file: string, cwd: string): Promise<void> {
  await openssl([
    "genpkey",
    "-algorithm",
    "EC",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-out",
    file,
  ], cwd);
  await Deno.chmod(file, 0o600);
}
