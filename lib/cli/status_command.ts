/**
 * `status`: what the supervisor sees, like Pacemaker's `crm_mon` or `bluechictl status`.
 *
 * Two sources:
 * - **the bus** (`--config`): subscribes to the retained `{p}/supervisor/{id}/state` (the snapshot,
 *   `lib/wire/state_message.ts`) and `{p}/supervisor/{id}/status` (`online`/`offline`, the Last
 *   Will) of every supervisor id of the config (both of a pair) and of each `--id`; exact topics,
 *   so the locked bus's `operator` identity suffices;
 * - **HTTP** (`--url`): `GET <url>/status`, the same snapshot as plain JSON.
 *
 * Without `--watch` it prints once: on the bus as soon as every expected id has sent its state and
 * status, at the latest after `timeoutMs`; nothing received is exit 1. With `--watch` it redraws on
 * every new message (bus) or every `intervalMs` (HTTP) until the signal aborts (exit 0).
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import type { MqttClientLike } from "../mqtt/client.ts";
import { openClient } from "../mqtt/session.ts";
import { buildTopology } from "../topology/topology.ts";
import {
  decodeStateMessage,
  parseStatusSnapshot,
  type StatusSnapshot,
} from "../wire/state_message.ts";
import { decodeStatus } from "../wire/wire.ts";
import { renderStatusJson, renderStatusTables, type StatusView } from "./status_table.ts";

/** Exit status: something was shown. */
export const STATUS_OK = 0;
/** Exit status: nothing received (no supervisor state on the bus, HTTP unreachable or malformed). */
export const STATUS_NOTHING = 1;

/** Where the snapshots come from. */
export type StatusSource =
  | {
    kind: "bus";
    /** Validated config: broker URL, TLS and credentials, topic prefix, supervisor ids. */
    config: Config;
    /** Further supervisor ids to read (e.g. one started with `run --id`). */
    ids?: readonly string[];
  }
  | {
    kind: "http";
    /** Base URL of the supervisor's HTTP endpoint, e.g. `http://127.0.0.1:9464`. */
    url: string;
  };

/** Options of {@linkcode statusCommand}. */
export interface StatusCommandOptions {
  source: StatusSource;
  /** `table` (default) or `json` (one line of JSON per draw: `[{id,status,snapshot}]`). */
  output?: "table" | "json";
  /** Redraw until `signal` aborts. */
  watch?: boolean;
  /**
   * Without `watch`: longest wait for the retained messages or the HTTP answer, ms (default 2000).
   * With `watch` over HTTP: the timeout of each request.
   */
  timeoutMs?: number;
  /** With `watch` over HTTP: the period of the requests, ms (default 1000). */
  intervalMs?: number;
  /** Ends `watch` (SIGINT/SIGTERM). */
  signal?: AbortSignal;
  /** Receives the rendered text (default: standard output, unbuffered). */
  out?: (text: string) => void;
  /** Receives error lines (default `console.error`). */
  err?: (line: string) => void;
  /** Clear the screen before each redraw and use colors (default: standard output is a terminal). */
  isTty?: boolean;
  /** Opens the MQTT client (tests); default {@linkcode openClient} (both brokers of a pair) with the config's settings. */
  connect?: (config: Config, clientId: string) => MqttClientLike;
  /** HTTP client (tests); default the global `fetch`. */
  fetch?: typeof fetch;
}

const CLEAR_SCREEN = "\x1b[H\x1b[2J";

/**
 * Runs `status`.
 * @returns {@linkcode STATUS_OK} when something was shown (or `watch` ended by the signal),
 *   {@linkcode STATUS_NOTHING} when nothing was received. Never throws, never calls `Deno.exit`.
 */
export async function statusCommand(opts: StatusCommandOptions): Promise<number> {
  const encoder = new TextEncoder();
  const out = opts.out ?? ((text: string) => Deno.stdout.writeSync(encoder.encode(text)));
  const err = opts.err ?? ((line: string) => console.error(line));
  const isTty = opts.isTty ?? Deno.stdout.isTerminal();
  let draws = 0;
  const draw = (views: StatusView[]) => {
    const text = opts.output === "json"
      ? renderStatusJson(views)
      : renderStatusTables(views, { color: isTty });
    if (opts.watch && isTty) out(CLEAR_SCREEN + text);
    else out(draws > 0 && opts.output !== "json" ? "\n" + text : text);
    draws++;
  };
  try {
    return opts.source.kind === "bus"
      ? await fromBus(opts, opts.source, draw, err)
      : await fromHttp(opts, opts.source.url, draw, err);
  } catch (error) {
    err(`status: ${error instanceof Error ? error.message : String(error)}`);
    return STATUS_NOTHING;
  }
}

async function fromBus(
  opts: StatusCommandOptions,
  source: Extract<StatusSource, { kind: "bus" }>,
  draw: (views: StatusView[]) => void,
  err: (line: string) => void,
): Promise<number> {
  const { config } = source;
  const topology = buildTopology(config);
  const ids = [...new Set([...topology.supervisorIds, ...(source.ids ?? [])])];
  const views = new Map<string, StatusView>(
    ids.map((id) => [id, { id, status: null, snapshot: null }]),
  );
  const routes = new Map<string, { id: string; kind: "state" | "status" }>();
  for (const id of ids) {
    const topics = topology.supervisorTopics(id);
    routes.set(topics.state, { id, kind: "state" });
    routes.set(topics.status, { id, kind: "status" });
  }
  const clientId = `sdv-failover-status-${crypto.randomUUID().slice(0, 8)}`;
  const client = opts.connect
    ? opts.connect(config, clientId)
    : openClient({ config: config.mqtt, clientId, reconnect: opts.watch === true });
  let malformed = 0;
  let received = 0;
  let changed: () => void = () => {};
  let failed: (error: Error) => void = () => {};
  const seen = () => [...views.values()].filter((v) => v.status !== null || v.snapshot !== null);
  client.on("message", (topic, payload) => {
    const route = routes.get(topic);
    if (!route) return;
    const view = views.get(route.id)!;
    if (route.kind === "state") {
      const snapshot = decodeStateMessage(payload);
      if (!snapshot) {
        malformed++;
        return;
      }
      view.snapshot = snapshot;
    } else {
      const status = decodeStatus(payload);
      if (!status) {
        malformed++;
        return;
      }
      view.status = status;
    }
    received++;
    changed();
  });
  // With a broker pair one broker's error is not the end: the other may still answer.
  let lastError: Error | undefined;
  client.on("error", (e) => {
    lastError = e;
    if (config.mqtt.pairUrl === undefined) failed(e);
  });
  client.on("connect", () => {
    client.subscribeAsync([...routes.keys()], { qos: 1 }).catch((e: Error) => failed(e));
  });
  const report = () => {
    if (malformed > 0) err(`status: ${malformed} malformed state or status message(s) dropped`);
  };
  try {
    if (opts.watch) {
      await new Promise<void>((resolve) => {
        changed = () => draw(seen());
        failed = (e) => err(`status: ${e.message}`);
        if (opts.signal?.aborted) resolve();
        opts.signal?.addEventListener("abort", () => resolve(), { once: true });
      });
      report();
      return STATUS_OK;
    }
    const timeoutMs = opts.timeoutMs ?? 2000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await new Promise<"complete" | "timeout" | Error>((resolve) => {
      const complete = () =>
        [...views.values()].every((v) => v.snapshot !== null && v.status !== null);
      changed = () => {
        if (complete()) resolve("complete");
      };
      failed = (e) => resolve(e);
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
      opts.signal?.addEventListener("abort", () => resolve("timeout"), { once: true });
    });
    clearTimeout(timer);
    report();
    const error = outcome instanceof Error ? outcome : received === 0 ? lastError : undefined;
    if (error && received === 0) {
      err(`status: ${config.mqtt.url}: ${error.message}`);
      return STATUS_NOTHING;
    }
    if (!seen().some((v) => v.snapshot !== null)) {
      const what = received > 0
        ? `only the status (${seen().map((v) => `${v.id} ${v.status}`).join(", ")}), no state`
        : "nothing";
      err(
        `status: ${what} received from ${config.mqtt.url} within ${timeoutMs} ms on ` +
          `${[...routes.keys()].filter((t) => t.endsWith("/state")).join(", ")}; is a supervisor ` +
          "running with this config (and supervisor.stateIntervalMs > 0)?",
      );
      return STATUS_NOTHING;
    }
    draw(seen());
    return STATUS_OK;
  } finally {
    await client.endAsync(true).catch(() => {});
  }
}

async function fromHttp(
  opts: StatusCommandOptions,
  baseUrl: string,
  draw: (views: StatusView[]) => void,
  err: (line: string) => void,
): Promise<number> {
  const fetchFn = opts.fetch ?? fetch;
  const url = `${baseUrl.replace(/\/+$/, "")}/status`;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const once = async (): Promise<StatusSnapshot | string> => {
    const signal = opts.signal
      ? AbortSignal.any([opts.signal, AbortSignal.timeout(timeoutMs)])
      : AbortSignal.timeout(timeoutMs);
    try {
      const response = await fetchFn(url, { signal, headers: { accept: "application/json" } });
      const body = await response.text();
      if (!response.ok) return `${url}: HTTP ${response.status}`;
      return parseStatusSnapshot(body) ?? `${url}: not a status snapshot (version 1)`;
    } catch (error) {
      return `${url}: ${error instanceof Error ? error.message : String(error)}`;
    }
  };
  const view = (snapshot: StatusSnapshot): StatusView => ({
    id: snapshot.supervisor.id,
    status: "online",
    snapshot,
  });
  if (!opts.watch) {
    const result = await once();
    if (typeof result === "string") {
      err(`status: ${result}`);
      return STATUS_NOTHING;
    }
    draw([view(result)]);
    return STATUS_OK;
  }
  const intervalMs = opts.intervalMs ?? 1000;
  while (!opts.signal?.aborted) {
    const result = await once();
    if (opts.signal?.aborted) break;
    if (typeof result === "string") err(`status: ${result}`);
    else draw([view(result)]);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intervalMs);
      opts.signal?.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  }
  return STATUS_OK;
}
