/**
 * The demo's default vehicle: `config/example.yaml` itself (the origin project's setup), embedded
 * in the program as text when it is built (`import … with { type: "text" }`, also in the bundle
 * and the package) and parsed and validated like any config file, so the demo can never drift from
 * the shipped example.
 *
 * @module
 */
import exampleYaml from "../../config/example.yaml" with { type: "text" };
import { parseConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";

/** The name the embedded example config is reported under (in config errors and the header). */
export const DEMO_CONFIG_FILE = "config/example.yaml";

/**
 * `config/example.yaml`, parsed and validated, with its broker URL replaced by `url` (the demo's
 * in-process broker). Every other value is the file's.
 * @throws {ConfigError} when the embedded file does not validate (a build defect).
 */
export function demoConfig(url: string): Config {
  const config = parseConfig(exampleYaml, DEMO_CONFIG_FILE);
  return { ...config, mqtt: { ...config.mqtt, url } };
}
