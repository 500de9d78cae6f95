/**
 * Configuration from environment variables and flags (a flag wins over its variable), validated
 * at start-up: a bad value stops the server with a message naming it.
 */
import { readFileSync } from "node:fs";
import { basename, extname } from "node:path";
import { PolicyError, parsePolicyText, type Policy } from "./domain/policy.js";
import { PRESETS } from "./domain/presets.js";
import { LOG_LEVELS, type LogLevel } from "./log.js";
import { DEFAULT_BUCKETS, MAX_BUCKETS } from "./store/keys.js";
import { DEFAULTS } from "./server/server.js";
import { parseRedisUrl } from "./store/redis_connection.js";

export interface Config {
  addr: string;
  /** `default`, `seed`, or a path to a policy file. */
  policy: string;
  /** Unset: the in-process store. */
  redisUrl: string | undefined;
  redisPrefix: string;
  /** Buckets of a Redis keyspace created by this server; an existing keyspace keeps its own. */
  redisBuckets: number;
  /** Replicas that must confirm each Redis write before it is acknowledged (WAIT); 0: none. */
  redisMinReplicas: number;
  logLevel: LogLevel;
  shutdownGraceMs: number;
  /** host:port for Prometheus metrics; undefined: not served. */
  metricsAddr: string | undefined;
  /** WatchDecisions streams open at once on this replica; beyond: RESOURCE_EXHAUSTED. */
  maxWatchers: number;
  /** Bytes of events a watcher may fall behind before it is ended with RESOURCE_EXHAUSTED. */
  watchBufferBytes: number;
  /** Connections open at once per listening socket; beyond, new ones are closed as they come. */
  maxConnections: number;
  /** Bytes calls may hold at once (requests, responses waiting to be sent); beyond: RESOURCE_EXHAUSTED. */
  callMemoryBytes: number;
  /** How long a call's request may take to arrive in full; beyond: DEADLINE_EXCEEDED. */
  requestReceiveTimeoutMs: number;
  /** How long a response may wait for its caller to read it; beyond, the call's stream is reset. */
  streamWriteTimeoutMs: number;
  /** PEM files of the server's certificate and key: TLS on the gRPC port; both or neither. */
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** PEM file of the CA client certificates must chain to: mTLS (needs tlsCert and tlsKey). */
  tlsClientCa: string | undefined;
  /** Principals, roles, token hashes, JWT settings (SPEC §8); unset: no principals. */
  authFile: string | undefined;
  /** Serve a non-loopback address with no authentication (every caller `anonymous`). */
  allowUnauthenticated: boolean;
  /** Reviews per second per principal, per replica; undefined: unlimited. */
  reviewRate: number | undefined;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

interface Setting {
  flag: string;
  env: string;
  default: string | undefined;
  help: string;
}

/** At most this many replicas can be asked to confirm a write; more is a typo, not a topology. */
const MAX_MIN_REPLICAS = 16;
/** How long a write waits for its replicas (RedisStore's default `replicaTimeoutMs`). */
const REPLICA_WAIT_MS = 400;

/** A review rate above this is a typo, not a limit. */
const MAX_REVIEW_RATE = 1_000_000;

/** Bounds of the watch settings: a typo must not lift a limit that keeps memory bounded. */
const MAX_WATCHERS = 1_000_000;
const MIN_WATCH_BUFFER_BYTES = 16 * 1024;
const MAX_WATCH_BUFFER_BYTES = 1024 * 1024 * 1024;

/**
 * Bounds of the call settings. The call memory must hold at least a few requests at their limits
 * (2.6 MB each with a 1 MiB diff, and an answer as large): 16 MiB holds three such calls.
 */
const MAX_CONNECTIONS = 1_000_000;
const MIN_CALL_MEMORY_BYTES = 16 * 1024 * 1024;
const MAX_CALL_MEMORY_BYTES = 64 * 1024 * 1024 * 1024;
const MIN_CALL_TIMEOUT_MS = 100;
const MAX_CALL_TIMEOUT_MS = 600_000;

const SETTINGS = {
  addr: { flag: "--addr", env: "COUNCIL_ADDR", default: "127.0.0.1:50051", help: "host:port to listen on" },
  policy: { flag: "--policy", env: "COUNCIL_POLICY", default: "default", help: "default, seed, or a policy file (JSON or YAML)" },
  redisUrl: {
    flag: "--redis-url",
    env: "REDIS_URL",
    default: undefined,
    help: "redis://[:password@]host:port[/db], rediss://..., or redis+cluster://host:port,host:port; unset: in-process store",
  },
  redisPrefix: { flag: "--redis-prefix", env: "COUNCIL_REDIS_PREFIX", default: "council:", help: "prefix of every Redis key" },
  redisBuckets: {
    flag: "--redis-buckets",
    env: "COUNCIL_REDIS_BUCKETS",
    default: String(DEFAULT_BUCKETS),
    help: `buckets of a new Redis keyspace (1-${MAX_BUCKETS}; an existing keyspace keeps its count)`,
  },
  redisMinReplicas: {
    flag: "--redis-min-replicas",
    env: "COUNCIL_REDIS_MIN_REPLICAS",
    default: "0",
    help: `replicas that confirm each Redis write (WAIT, ${REPLICA_WAIT_MS} ms) before it is acknowledged, else UNAVAILABLE (0-${MAX_MIN_REPLICAS})`,
  },
  logLevel: { flag: "--log-level", env: "COUNCIL_LOG_LEVEL", default: "info", help: LOG_LEVELS.join(", ") },
  metricsAddr: {
    flag: "--metrics-addr",
    env: "COUNCIL_METRICS_ADDR",
    default: undefined,
    help: "host:port to serve Prometheus metrics on (GET /metrics); unset: not served",
  },
  shutdownGraceMs: {
    flag: "--shutdown-grace-ms",
    env: "COUNCIL_SHUTDOWN_GRACE_MS",
    default: "10000",
    help: "how long calls in flight may take to finish at shutdown",
  },
  maxWatchers: {
    flag: "--max-watchers",
    env: "COUNCIL_MAX_WATCHERS",
    default: String(DEFAULTS.maxWatchers),
    help: `WatchDecisions streams open at once on this replica, beyond which a watch is RESOURCE_EXHAUSTED (1-${MAX_WATCHERS})`,
  },
  watchBufferBytes: {
    flag: "--watch-buffer-bytes",
    env: "COUNCIL_WATCH_BUFFER_BYTES",
    default: String(DEFAULTS.watchBufferBytes),
    help: `bytes of events a watcher may fall behind before it is ended with RESOURCE_EXHAUSTED (${MIN_WATCH_BUFFER_BYTES}-${MAX_WATCH_BUFFER_BYTES})`,
  },
  maxConnections: {
    flag: "--max-connections",
    env: "COUNCIL_MAX_CONNECTIONS",
    default: String(DEFAULTS.maxConnections),
    help: `connections open at once on each listening socket, beyond which new ones are closed as they come (1-${MAX_CONNECTIONS})`,
  },
  callMemoryBytes: {
    flag: "--call-memory-bytes",
    env: "COUNCIL_CALL_MEMORY_BYTES",
    default: String(DEFAULTS.callMemoryBytes),
    help: `bytes calls may hold at once (requests, responses waiting to be sent), beyond which a call is RESOURCE_EXHAUSTED (${MIN_CALL_MEMORY_BYTES}-${MAX_CALL_MEMORY_BYTES})`,
  },
  requestReceiveTimeoutMs: {
    flag: "--request-receive-timeout-ms",
    env: "COUNCIL_REQUEST_RECEIVE_TIMEOUT_MS",
    default: String(DEFAULTS.requestReceiveTimeoutMs),
    help: `how long a call's request may take to arrive in full, beyond which it is DEADLINE_EXCEEDED (${MIN_CALL_TIMEOUT_MS}-${MAX_CALL_TIMEOUT_MS})`,
  },
  streamWriteTimeoutMs: {
    flag: "--stream-write-timeout-ms",
    env: "COUNCIL_STREAM_WRITE_TIMEOUT_MS",
    default: String(DEFAULTS.streamWriteTimeoutMs),
    help: `how long a response may wait for its caller to read it, beyond which the call is reset (${MIN_CALL_TIMEOUT_MS}-${MAX_CALL_TIMEOUT_MS})`,
  },
  tlsCert: { flag: "--tls-cert", env: "COUNCIL_TLS_CERT", default: undefined, help: "PEM certificate (chain) of the server: TLS on the gRPC port; with --tls-key" },
  tlsKey: { flag: "--tls-key", env: "COUNCIL_TLS_KEY", default: undefined, help: "PEM private key of that certificate" },
  tlsClientCa: {
    flag: "--tls-client-ca",
    env: "COUNCIL_TLS_CLIENT_CA",
    default: undefined,
    help: "PEM CA that client certificates must chain to: mTLS (client certificate required)",
  },
  authFile: { flag: "--auth-file", env: "COUNCIL_AUTH_FILE", default: undefined, help: "principals, roles, token hashes, JWT (YAML or JSON); re-read when it changes" },
  allowUnauthenticated: {
    flag: "--allow-unauthenticated",
    env: "COUNCIL_ALLOW_UNAUTHENTICATED",
    default: "false",
    help: "true: serve a non-loopback address with no auth file and no mTLS (every caller is anonymous, with every role)",
  },
  reviewRate: {
    flag: "--review-rate",
    env: "COUNCIL_REVIEW_RATE",
    default: undefined,
    help: "reviews per second per principal on this replica (burst twice that), beyond which RESOURCE_EXHAUSTED; unset: unlimited",
  },
} satisfies Record<keyof Config, Setting>;

export function usage(): string {
  const lines = Object.values(SETTINGS).map(
    (s: Setting) => `  ${s.flag.padEnd(24)} ${s.env.padEnd(30)} ${s.help}${s.default ? ` (default ${s.default})` : ""}`,
  );
  return `usage: npm start -- [flags]\n\n  ${"flag".padEnd(24)} variable\n${lines.join("\n")}\n`;
}

/** Reads flags (`--name value` or `--name=value`) over environment variables over defaults. */
export function loadConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): Config {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg : arg.slice(0, eq);
    if (!Object.values(SETTINGS).some((s) => s.flag === name)) {
      throw new ConfigError(`unknown argument ${JSON.stringify(arg)}\n\n${usage()}`);
    }
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new ConfigError(`${name} needs a value`);
    flags.set(name, value);
  }
  const raw = (key: keyof Config): { value: string | undefined; source: string } => {
    const s: Setting = SETTINGS[key];
    if (flags.has(s.flag)) return { value: flags.get(s.flag), source: s.flag };
    if (env[s.env] !== undefined && env[s.env] !== "") return { value: env[s.env], source: s.env };
    return { value: s.default, source: s.env };
  };

  const addr = raw("addr");
  checkAddr(addr.source, addr.value!);
  const policy = raw("policy");
  if (!policy.value) throw new ConfigError(`${policy.source} must not be empty`);
  const redisUrl = raw("redisUrl");
  if (redisUrl.value !== undefined) checkRedisUrl(redisUrl.source, redisUrl.value);
  const prefix = raw("redisPrefix");
  if (!prefix.value || /[\s{}]/.test(prefix.value) || prefix.value.length > 64) {
    throw new ConfigError(`${prefix.source} must be 1-64 characters without spaces or braces, got ${JSON.stringify(prefix.value)}`);
  }
  const buckets = raw("redisBuckets");
  const bucketCount = Number(buckets.value);
  if (!Number.isInteger(bucketCount) || bucketCount < 1 || bucketCount > MAX_BUCKETS) {
    throw new ConfigError(`${buckets.source} must be a whole number from 1 to ${MAX_BUCKETS}, got ${JSON.stringify(buckets.value)}`);
  }
  const minReplicas = raw("redisMinReplicas");
  const minReplicaCount = Number(minReplicas.value);
  if (!/^\d+$/.test(minReplicas.value!) || minReplicaCount > MAX_MIN_REPLICAS) {
    throw new ConfigError(
      `${minReplicas.source} must be a whole number from 0 to ${MAX_MIN_REPLICAS}, got ${JSON.stringify(minReplicas.value)}`,
    );
  }
  const level = raw("logLevel");
  if (!(LOG_LEVELS as readonly string[]).includes(level.value!)) {
    throw new ConfigError(`${level.source} must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level.value)}`);
  }
  const grace = raw("shutdownGraceMs");
  const graceMs = Number(grace.value);
  if (!Number.isInteger(graceMs) || graceMs < 0 || graceMs > 600_000) {
    throw new ConfigError(`${grace.source} must be a whole number of milliseconds from 0 to 600000, got ${JSON.stringify(grace.value)}`);
  }
  const metrics = raw("metricsAddr");
  if (metrics.value !== undefined) checkAddr(metrics.source, metrics.value);
  const maxWatchers = wholeNumber(raw("maxWatchers"), 1, MAX_WATCHERS);
  const watchBufferBytes = wholeNumber(raw("watchBufferBytes"), MIN_WATCH_BUFFER_BYTES, MAX_WATCH_BUFFER_BYTES);
  const maxConnections = wholeNumber(raw("maxConnections"), 1, MAX_CONNECTIONS);
  const callMemoryBytes = wholeNumber(raw("callMemoryBytes"), MIN_CALL_MEMORY_BYTES, MAX_CALL_MEMORY_BYTES);
  const requestReceiveTimeoutMs = wholeNumber(raw("requestReceiveTimeoutMs"), MIN_CALL_TIMEOUT_MS, MAX_CALL_TIMEOUT_MS);
  const streamWriteTimeoutMs = wholeNumber(raw("streamWriteTimeoutMs"), MIN_CALL_TIMEOUT_MS, MAX_CALL_TIMEOUT_MS);

  const tlsCert = path(raw("tlsCert"));
  const tlsKey = path(raw("tlsKey"));
  const tlsClientCa = path(raw("tlsClientCa"));
  if ((tlsCert.value === undefined) !== (tlsKey.value === undefined)) {
    const [given, missing] = tlsCert.value === undefined ? [tlsKey, tlsCert] : [tlsCert, tlsKey];
    throw new ConfigError(`${given.source} is set but ${missing.source} is not: TLS needs both the certificate and its key`);
  }
  if (tlsClientCa.value !== undefined && tlsCert.value === undefined) {
    throw new ConfigError(
      `${tlsClientCa.source} is set but COUNCIL_TLS_CERT and COUNCIL_TLS_KEY are not: mTLS is TLS that also requires client certificates`,
    );
  }
  const authFile = path(raw("authFile"));
  const allow = raw("allowUnauthenticated");
  if (allow.value !== "true" && allow.value !== "false") {
    throw new ConfigError(`${allow.source} must be true or false, got ${JSON.stringify(allow.value)}`);
  }
  const allowUnauthenticated = allow.value === "true";
  const rate = raw("reviewRate");
  let reviewRate: number | undefined;
  if (rate.value !== undefined) {
    reviewRate = Number(rate.value);
    if (!/^\d+(\.\d+)?$/.test(rate.value) || !(reviewRate > 0) || reviewRate > MAX_REVIEW_RATE) {
      throw new ConfigError(
        `${rate.source} must be a positive number of reviews per second (e.g. 5 or 0.5, at most ${MAX_REVIEW_RATE}), got ${JSON.stringify(rate.value)}`,
      );
    }
  }
  // The safe default (SPEC §8): with nobody authenticated, only this machine may call.
  const host = addr.value!.slice(0, addr.value!.lastIndexOf(":"));
  if (authFile.value === undefined && tlsClientCa.value === undefined && !isLoopback(host) && !allowUnauthenticated) {
    throw new ConfigError(
      `${addr.source} ${addr.value} is not a loopback address, and no authentication is configured ` +
        "(neither COUNCIL_AUTH_FILE nor COUNCIL_TLS_CLIENT_CA): every caller would be \"anonymous\", with every role. " +
        "Configure one, or set COUNCIL_ALLOW_UNAUTHENTICATED=true to serve anyone who can reach the port",
    );
  }
  return {
    addr: addr.value!,
    policy: policy.value,
    redisUrl: redisUrl.value,
    redisPrefix: prefix.value,
    redisBuckets: bucketCount,
    redisMinReplicas: minReplicaCount,
    logLevel: level.value as LogLevel,
    shutdownGraceMs: graceMs,
    metricsAddr: metrics.value,
    maxWatchers,
    watchBufferBytes,
    maxConnections,
    callMemoryBytes,
    requestReceiveTimeoutMs,
    streamWriteTimeoutMs,
    tlsCert: tlsCert.value,
    tlsKey: tlsKey.value,
    tlsClientCa: tlsClientCa.value,
    authFile: authFile.value,
    allowUnauthenticated,
    reviewRate,
  };
}

/** A file path setting: unset stays unset; set, it must not be empty (a flag given ""). */
function path(setting: { value: string | undefined; source: string }): { value: string | undefined; source: string } {
  if (setting.value !== undefined && setting.value.trim() === "") throw new ConfigError(`${setting.source} must not be empty`);
  return setting;
}

/**
 * Hosts that only this machine can reach: `localhost`, 127.0.0.0/8 and `[::1]`. Anything else,
 * `0.0.0.0` and host names included, may be reachable from elsewhere.
 */
export function isLoopback(host: string): boolean {
  if (host === "localhost" || host === "[::1]") return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m !== null && m.slice(1).every((octet) => Number(octet) <= 255);
}

function wholeNumber(setting: { value: string | undefined; source: string }, min: number, max: number): number {
  const n = Number(setting.value);
  if (!/^\d+$/.test(setting.value ?? "") || n < min || n > max) {
    throw new ConfigError(`${setting.source} must be a whole number from ${min} to ${max}, got ${JSON.stringify(setting.value)}`);
  }
  return n;
}

function checkAddr(source: string, addr: string): void {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(addr);
  if (!m || Number(m[2]) > 65535) throw new ConfigError(`${source} must be host:port (e.g. 127.0.0.1:50051), got ${JSON.stringify(addr)}`);
}

function checkRedisUrl(source: string, url: string): void {
  try {
    parseRedisUrl(url);
  } catch (err) {
    throw new ConfigError(`${source}: ${(err as Error).message.replace(/^REDIS_URL:? ?/, "")}`);
  }
}

/** The policy a config names: a preset, or a policy file whose base name becomes the policy name. */
export function resolvePolicy(spec: string): Policy {
  if (spec === "default" || spec === "seed") return PRESETS[spec];
  let text: string;
  try {
    text = readFileSync(spec, "utf8");
  } catch (err) {
    throw new ConfigError(`COUNCIL_POLICY: cannot read policy file ${spec}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    // Every section and field the file leaves out takes the `default` policy's value (SPEC section 4).
    return parsePolicyText(basename(spec, extname(spec)), text, PRESETS.default);
  } catch (err) {
    if (err instanceof PolicyError) throw new ConfigError(`COUNCIL_POLICY: policy file ${spec}: ${err.message}`);
    throw err;
  }
}
