/**
 * Connecting to Redis: reading REDIS_URL, the ioredis options that make calls fail fast while
 * Redis is away and reconnect on their own when it is back, and the start-up checks.
 */
import type { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import type { ConnectionOptions } from "node:tls";
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Logger } from "../log.js";

export type RedisClient = Redis | Cluster;

/** The text of the Lua script `src/store/lua/<name>.lua` (copied beside the build by `npm run build`). */
export const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");

export interface RedisTarget {
  cluster: boolean;
  tls: boolean;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  db?: number;
  /** host:port list for logs, without credentials. */
  where: string;
}

/**
 * Reads `redis://[user:password@]host:port[/db]`, `rediss://…` (TLS) or
 * `redis+cluster://[user:password@]host:port,host:port,…` (any reachable nodes of a cluster).
 *
 * The URL holds a password, so no error quotes any part of it: each names only what is wrong
 * (`REDIS_URL` is replaced by the flag's name when the flag set it). A URL that can be read two
 * ways is refused rather than guessed: `redis://:s3c@ret@host:6379` (an `@` in the password left
 * unencoded) would otherwise connect to a host named `ret@host` and print that name in logs and
 * errors.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(redis|rediss|redis\+cluster):\/\/(?:([^@/]*)@)?([^/?#]+)(?:\/(\d*))?\/?$/.exec(url);
  if (!m) {
    throw new Error(
      "REDIS_URL must look like redis://host:port[/db], rediss://host:port or redis+cluster://host:port,host:port, " +
        "with [user:password@] after the // (percent-encode special characters of the password, e.g. @ as %40, / as %2F)",
    );
  }
  const [, scheme, userinfo, hostlist, db] = m;
  if (hostlist!.includes("@")) {
    throw new Error("REDIS_URL: ambiguous, it has more than one @ (percent-encode each @ in the user name or password as %40)");
  }
  const cluster = scheme === "redis+cluster";
  const nodes = hostlist!.split(",").map((hp, i) => {
    const hm = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(hp.trim());
    if (!hm) throw new Error(`REDIS_URL: node ${i + 1} is not host:port (a host name, IPv4 address or [IPv6 address], and a port)`);
    const port = hm[2] === undefined ? 6379 : Number(hm[2]);
    if (port < 1 || port > 65535) throw new Error(`REDIS_URL: the port of node ${i + 1} is out of range (1-65535)`);
    return { host: hm[1]!.replace(/^\[(.*)\]$/, "$1"), port };
  });
  if (!cluster && nodes.length !== 1) throw new Error("REDIS_URL: list several nodes only with redis+cluster://");
  if (cluster && db) throw new Error("REDIS_URL: a cluster has no databases; drop the /db");
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined && userinfo !== "") {
    const colon = userinfo.indexOf(":");
    try {
      username = colon === -1 ? undefined : decodeURIComponent(userinfo.slice(0, colon)) || undefined;
      password = decodeURIComponent(colon === -1 ? userinfo : userinfo.slice(colon + 1));
    } catch {
      throw new Error("REDIS_URL: the user name or password has a % that does not start a percent-encoded character; write % as %25");
    }
  }
  return {
    cluster,
    tls: scheme === "rediss",
    nodes,
    username,
    password,
    db: db ? Number(db) : undefined,
    where: nodes.map((n) => (n.host.includes(":") ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(","),
  };
}

/** Reconnect delays: 50 ms doubling to at most 2 s, forever, so the store recovers on its own. */
export const reconnectDelay = (attempt: number): number => Math.min(50 * 2 ** Math.min(attempt, 6), 2000);

export interface ConnectOptions {
  commandTimeoutMs: number;
  connectionName: string;
  /** More TLS options for rediss:// (e.g. a CA). */
  tls?: ConnectionOptions;
}

function nodeOptions(target: RedisTarget, o: ConnectOptions) {
  return {
    username: target.username,
    password: target.password,
    // Every command fails after this long rather than waiting for Redis to come back.
    commandTimeout: o.commandTimeoutMs,
    connectTimeout: Math.max(1000, 2 * o.commandTimeoutMs),
    // A command in flight when the connection drops is retried at most once (writes are idempotent).
    maxRetriesPerRequest: 1,
    // RESP2: the same reply shapes on every Redis-compatible server; Council needs nothing of RESP3.
    protocol: 2 as const,
    connectionName: o.connectionName,
    keepAlive: 10_000,
  };
}

/** A client that connects on `connect()`, fails calls at once while disconnected, and reconnects forever. */
export function createClient(target: RedisTarget, o: ConnectOptions): RedisClient {
  if (!target.cluster) {
    const node = target.nodes[0]!;
    const options: RedisOptions = {
      ...nodeOptions(target, o),
      host: node.host,
      port: node.port,
      db: target.db ?? 0,
      tls: target.tls ? { ...(isIP(node.host) ? {} : { servername: node.host }), ...o.tls } : undefined,
      // No offline queue: while Redis is away a call fails at once (UNAVAILABLE), it does not wait.
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      retryStrategy: reconnectDelay,
      lazyConnect: true,
    };
    return new Redis(options);
  }
  const options: ClusterOptions = {
    redisOptions: nodeOptions(target, o),
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    clusterRetryStrategy: reconnectDelay,
    clusterNodeRetryStrategy: reconnectDelay,
    slotsRefreshTimeout: o.commandTimeoutMs,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    maxRedirections: 8,
    lazyConnect: true,
  };
  return new Cluster(target.nodes, options);
}

/** Resolves once the client is ready; rejects after `timeoutMs` (the client keeps trying). */
export function whenReady(client: RedisClient | Redis, timeoutMs: number): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  const events = client as unknown as EventEmitter;
  return new Promise<void>((resolve, reject) => {
    let lastError: Error | undefined;
    const onError = (err: Error) => (lastError = err);
    const onReady = () => done();
    const done = (err?: Error) => {
      clearTimeout(timer);
      events.off("ready", onReady);
      events.off("error", onError);
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => done(new Error(`Redis was not ready within ${timeoutMs} ms${lastError ? `: ${lastError.message}` : ""}`)),
      timeoutMs,
    );
    events.on("ready", onReady);
    events.on("error", onError);
    if (client.status === "wait") client.connect().catch(() => undefined);
  });
}

/** The master connections to run a per-node command on (one for a single Redis). */
export function masters(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes("master") : [client];
}

/**
 * Logs a warning when Redis's persistence can lose writes that Council already acknowledged:
 * with `appendonly no` a crash loses everything since the last snapshot, with `appendfsync everysec`
 * up to a second. Managed Redis often refuses CONFIG: then it says that it could not check.
 * Returns whether every master runs `appendonly yes` (false when it could not tell).
 */
export async function checkPersistence(client: RedisClient, log: Logger): Promise<boolean> {
  let allAppendOnly = true;
  for (const node of masters(client)) {
    const where = `${node.options.host}:${node.options.port}`;
    let appendonly: string | undefined;
    let appendfsync: string | undefined;
    try {
      const a = (await node.config("GET", "appendonly")) as string[];
      const f = (await node.config("GET", "appendfsync")) as string[];
      appendonly = a[1];
      appendfsync = f[1];
    } catch (err) {
      log.warn(
        { redis: where, err: (err as Error).message },
        "could not check Redis persistence (CONFIG GET refused); make sure it runs with appendonly yes and appendfsync always, or acknowledged decisions can be lost in a crash",
      );
      allAppendOnly = false;
      continue;
    }
    if (appendonly !== "yes") {
      allAppendOnly = false;
      log.warn(
        { redis: where, appendonly, appendfsync },
        "Redis persistence can lose acknowledged decisions: appendonly is not yes (a crash loses everything since the last snapshot); run Redis with appendonly yes and appendfsync always",
      );
    } else if (appendfsync !== "always") {
      log.warn(
        { redis: where, appendonly, appendfsync },
        `Redis persistence can lose acknowledged decisions: appendfsync is ${appendfsync} (a crash can lose the last second of writes); run Redis with appendfsync always`,
      );
    } else {
      log.info({ redis: where, appendonly, appendfsync }, "Redis persistence: appendonly yes, appendfsync always");
    }
  }
  return allAppendOnly;
}

/**
 * Logs a warning for each master that has fewer connected replicas than writes wait for
 * (COUNCIL_REDIS_MIN_REPLICAS): until they connect, every write there fails UNAVAILABLE.
 */
export async function checkReplicas(client: RedisClient, wanted: number, log: Logger): Promise<void> {
  for (const node of masters(client)) {
    const where = `${node.options.host}:${node.options.port}`;
    try {
      const info = await node.info("replication");
      const connected = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
      if (connected < wanted) {
        log.warn(
          { redis: where, connected, wanted },
          "Redis has fewer connected replicas than COUNCIL_REDIS_MIN_REPLICAS: writes fail UNAVAILABLE until enough are connected",
        );
      } else log.info({ redis: where, connected, wanted }, "writes wait for replicas (COUNCIL_REDIS_MIN_REPLICAS)");
    } catch (err) {
      log.warn({ redis: where, err: (err as Error).message }, "could not count Redis replicas (INFO replication refused)");
    }
  }
}

/** Whether every master knows a command (e.g. WAITAOF, Redis 7.2+), asked with COMMAND INFO. */
export async function supportsCommand(client: RedisClient, name: string): Promise<boolean> {
  try {
    const answers = await Promise.all(masters(client).map((n) => n.command("INFO", name) as Promise<unknown[]>));
    return answers.every((a) => Array.isArray(a) && a.length > 0 && a[0] !== null);
  } catch {
    return false;
  }
}
