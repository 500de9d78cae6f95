/**
 * The Redis store (ioredis): shared by stateless replicas, on one Redis or a Redis Cluster.
 *
 * The keyspace is split into a fixed number of buckets, each with its own hash tag (keys.ts). A
 * review's writes — decision, indexes, counters, idempotency key and event — land in its bucket in
 * one Lua script (lua/save_review.lua); RecordOutcome is another (lua/record_outcome.lua). Reads
 * that span everything merge the buckets: the summary adds their counters, listings merge their
 * sorted indexes behind one cursor, the watch reads all their event streams (redis_watch.ts).
 * Their cost grows with the number of buckets, never with history.
 *
 * Every call is bounded: a Redis that is down or silent makes it fail with UnavailableError
 * within `operationTimeoutMs`, and the client reconnects on its own when Redis is back.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Cluster, type Redis } from "ioredis";
import { CouncilError, InvalidArgumentError, UnavailableError } from "../domain/errors.js";
import { decisionIdForRequest } from "../domain/identity.js";
import { DECISION_TYPES, emptySummary, OUTCOMES, PENDING, type Decision, type Lesson, type Summary } from "../domain/model.js";
import type { Logger } from "../log.js";
import { checkBucketCount, clusterSlot, DEFAULT_BUCKETS, Keyspace, metaKey } from "./keys.js";
import { decodeDecision, decodeLesson, encodeDecision, encodeLesson, fieldMap } from "./redis_codec.js";
import {
  checkPersistence,
  createClient,
  masters,
  parseRedisUrl,
  supportsCommand,
  whenReady,
  type RedisClient,
  type RedisTarget,
} from "./redis_connection.js";
import { BlockingSource, EventFeed, PollingSource } from "./redis_watch.js";
import {
  decisionSortKey,
  type DecisionFilter,
  type OutcomeChange,
  type OutcomeResult,
  type Page,
  type PageRequest,
  type SaveResult,
  type Store,
  type Unsubscribe,
} from "./store.js";

export interface RedisStoreOptions {
  /** redis://…, rediss://… or redis+cluster://host:port,host:port (see redis_connection.ts). */
  url: string;
  /** Prefix of every key, e.g. `council:`. */
  prefix: string;
  log: Logger;
  /** Buckets of a keyspace created by this store; an existing keyspace keeps its own. Default 16. */
  buckets?: number;
  /** Each Redis command fails after this long. Default 1000. */
  commandTimeoutMs?: number;
  /** Each store call (possibly several commands) fails with UnavailableError after this long. Default 1500. */
  operationTimeoutMs?: number;
  /** How long start-up waits for Redis. Default 10000. */
  startTimeoutMs?: number;
  /** Approximate length each bucket's event stream is capped at (XADD MAXLEN ~). Default 1000. */
  eventStreamLength?: number;
  /** How often health is checked with a PING. Default 1000. */
  healthIntervalMs?: number;
  /** How often the cluster watch polls the event streams. Default 100. */
  pollMs?: number;
  /** More TLS options for rediss:// (e.g. `ca`); a private CA can also come from NODE_EXTRA_CA_CERTS. */
  tls?: ConnectionOptions;
}

/** Optional Redis commands found at start-up (COMMAND INFO), never assumed. */
export interface RedisFeatures {
  waitaof: boolean;
}

const SORT_KEY = /^\d{15}:\S{1,300}$/;
const LESSON_KEY = /^\d{15}:\S{1,300}:\d{12}$/;
const MAX_CURSOR = 512;

/** The custom commands defined from the Lua files. */
interface Scripts {
  councilSaveReview(...args: string[]): Promise<string[]>;
  councilRecordOutcome(...args: string[]): Promise<(string | string[])[] | null>;
}

const lua = (name: string) => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");

export class RedisStore implements Store {
  readonly description: string;
  private healthy = false;
  private readonly healthListeners: ((healthy: boolean) => void)[] = [];
  private healthTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private closed = false;
  private readonly feed: EventFeed;
  /** The cluster slot of each bucket. */
  private readonly bucketSlots: number[];

  private constructor(
    private readonly client: RedisClient,
    readonly keys: Keyspace,
    readonly features: RedisFeatures,
    target: RedisTarget,
    private readonly log: Logger,
    private readonly o: Required<Omit<RedisStoreOptions, "url" | "prefix" | "log" | "buckets" | "tls">>,
  ) {
    const scheme = target.cluster ? "redis cluster" : target.tls ? "rediss" : "redis";
    this.description = `${scheme} ${target.where} (prefix ${keys.prefix}, ${keys.buckets} buckets)`;
    this.bucketSlots = keys.all().map((b) => clusterSlot(keys.counts(b)));
    const streams = keys.all().map((b) => keys.events(b));
    const source =
      client instanceof Cluster
        ? new PollingSource(client, streams, o.pollMs)
        : new BlockingSource(client, streams, 1000, o.commandTimeoutMs);
    this.feed = new EventFeed(client, streams, source, log);
  }

  /**
   * Connects (waiting up to `startTimeoutMs` for Redis), reads or records the keyspace's bucket
   * count, checks persistence and optional commands, and starts the health checks.
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const o = {
      commandTimeoutMs: options.commandTimeoutMs ?? 1000,
      operationTimeoutMs: options.operationTimeoutMs ?? 1500,
      startTimeoutMs: options.startTimeoutMs ?? 10_000,
      eventStreamLength: options.eventStreamLength ?? 1000,
      healthIntervalMs: options.healthIntervalMs ?? 1000,
      pollMs: options.pollMs ?? 100,
    };
    const log = options.log;
    const target = parseRedisUrl(options.url);
    const client = createClient(target, { commandTimeoutMs: o.commandTimeoutMs, connectionName: "council", tls: options.tls });
    client.on("error", () => undefined); // connection errors surface through calls and health
    client.defineCommand("councilSaveReview", { numberOfKeys: 8, lua: lua("save_review") });
    client.defineCommand("councilRecordOutcome", { numberOfKeys: 5, lua: lua("record_outcome") });
    try {
      await whenReady(client, o.startTimeoutMs);
      const buckets = await RedisStore.bucketCount(client, options.prefix, checkBucketCount(options.buckets ?? DEFAULT_BUCKETS), log);
      await checkPersistence(client, log);
      const features = { waitaof: await supportsCommand(client, "WAITAOF") };
      log.info({ features }, "optional Redis commands");
      const store = new RedisStore(client, new Keyspace(options.prefix, buckets), features, target, log, o);
      store.startHealthChecks();
      return store;
    } catch (err) {
      client.disconnect();
      throw new Error(`cannot open the Redis store at ${target.where}: ${(err as Error).message}`);
    }
  }

  /** The bucket count recorded in `<prefix>meta`; recorded now (as `wanted`) if the keyspace is new. */
  private static async bucketCount(client: RedisClient, prefix: string, wanted: number, log: Logger): Promise<number> {
    const key = metaKey(prefix);
    if (await client.hsetnx(key, "buckets", String(wanted))) {
      await client.hset(key, "layout", "1", "created_at", new Date().toISOString());
      log.info({ prefix, buckets: wanted }, "created a new Council keyspace");
    }
    const recorded = Number(await client.hget(key, "buckets"));
    try {
      checkBucketCount(recorded);
    } catch {
      throw new Error(`${key} records an invalid bucket count ${JSON.stringify(recorded)}`);
    }
    if (recorded !== wanted) log.info({ prefix, buckets: recorded, asked: wanted }, "the keyspace keeps the bucket count it was created with");
    return recorded;
  }

  // ---- writes ----

  async saveReview(decision: Decision, fingerprint: string): Promise<SaveResult> {
    return this.op("saveReview", async () => {
      const k = this.keys;
      if (decision.requestId && decision.id !== decisionIdForRequest(decision.requestId)) {
        throw new Error(`decision ${decision.id} has request_id ${decision.requestId} but not the id derived from it`);
      }
      const b = k.bucketOfId(decision.id);
      const f = encodeDecision(decision);
      const keys = [
        k.decision(b, decision.id),
        k.request(b, decision.requestId),
        k.index(b, {}),
        k.index(b, { decisionType: decision.decision }),
        k.index(b, { suggestionId: decision.suggestionId }),
        k.index(b, { decisionType: decision.decision, suggestionId: decision.suggestionId }),
        k.counts(b),
        k.events(b),
      ];
      const argv = [
        decision.requestId,
        fingerprint,
        f.doc,
        f.outcome,
        f.notes,
        f.lessons,
        f.implemented_at,
        decisionSortKey(decision),
        decision.decision,
        decision.outcome ?? PENDING,
        decision.autoFixApproved ? "1" : "0",
        String(this.o.eventStreamLength),
        decision.id,
      ];
      const reply = await this.scripts.councilSaveReview(...keys, ...argv);
      if (reply[0] === "stored") return { kind: "stored", decision: structuredClone(decision) };
      const [, id, storedFingerprint] = reply;
      const existing = decodeDecision(await this.client.hgetall(k.decision(b, id!)));
      if (!existing) throw new Error(`request ${decision.requestId} names decision ${id}, which is missing`);
      return { kind: "exists", decision: existing, fingerprint: storedFingerprint ?? "" };
    });
  }

  async recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult> {
    return this.op("recordOutcome", async () => {
      const k = this.keys;
      const { outcome, notes, lessons, at } = change;
      const member = `${String(at.getTime()).padStart(15, "0")}:${id}:`;
      const lesson = encodeLesson({ decisionId: id, outcome, lessons, notes, recordedAt: at });
      const b = k.bucketOfId(id);
      const reply = await this.scripts.councilRecordOutcome(
        k.decision(b, id),
        k.counts(b),
        k.lessons(b),
        k.lessonDocs(b),
        k.outcomeRequest(b, id, change.requestId),
        outcome,
        notes,
        lessons,
        String(at.getTime()),
        member,
        lesson,
        randomUUID(),
        change.requestId,
        change.fingerprint,
      );
      if (reply === null) return { kind: "not_found" };
      const decision = decodeDecision(fieldMap(reply[reply.length - 1] as string[]));
      if (!decision) throw new Error(`decision ${id} cannot be read back`);
      if (reply[0] === "exists") return { kind: "exists", decision, fingerprint: reply[1] as string };
      return { kind: "recorded", decision };
    });
  }

  // ---- reads ----

  async findByRequestId(requestId: string): Promise<{ decision: Decision; fingerprint: string } | undefined> {
    return this.op("findByRequestId", async () => {
      const k = this.keys;
      const id = decisionIdForRequest(requestId);
      const b = k.bucketOfId(id);
      const [[, fingerprint], doc] = await Promise.all([
        this.client.hmget(k.request(b, requestId), "id", "fp"),
        this.client.hgetall(k.decision(b, id)),
      ]);
      if (fingerprint === null || fingerprint === undefined) return undefined;
      const decision = decodeDecision(doc);
      if (!decision) throw new Error(`request ${requestId} names decision ${id}, which is missing`);
      return { decision, fingerprint };
    });
  }

  async getDecision(id: string): Promise<Decision | undefined> {
    return this.op("getDecision", async () =>
      decodeDecision(await this.client.hgetall(this.keys.decision(this.keys.bucketOfId(id), id))),
    );
  }

  async listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>> {
    const cursor = checkCursor(page.cursor, SORT_KEY);
    return this.op("listDecisions", async () => {
      const k = this.keys;
      const { top, more } = await this.mergePages((b) => k.index(b, filter), page.limit, cursor);
      const hashes = await Promise.all(top.map(({ bucket, member }) => this.client.hgetall(k.decision(bucket, member.slice(16)))));
      const items: Decision[] = [];
      hashes.forEach((h, i) => {
        const d = decodeDecision(h);
        if (d) items.push(d);
        else this.log.error({ member: top[i]!.member, bucket: top[i]!.bucket }, "an index names a decision that is missing");
      });
      return { items, next: more ? top[top.length - 1]!.member : undefined };
    });
  }

  async summary(): Promise<Summary> {
    return this.op("summary", async () => {
      const all = await Promise.all(this.keys.all().map((b) => this.client.hgetall(this.keys.counts(b))));
      const s = emptySummary();
      for (const c of all) {
        const n = (field: string) => Number(c[field] ?? 0);
        s.totalDecisions += n("total");
        for (const t of DECISION_TYPES) s.byType[t] += n(`type:${t}`);
        for (const o of [...OUTCOMES, PENDING] as const) s.outcomes[o] += n(`outcome:${o}`);
        s.autoApproved += n("auto_approved");
        s.learningEntries += n("lessons");
      }
      return s;
    });
  }

  async listLessons(page: PageRequest): Promise<Page<Lesson>> {
    const cursor = checkCursor(page.cursor, LESSON_KEY);
    return this.op("listLessons", async () => {
      const k = this.keys;
      const { top, more } = await this.mergePages((b) => k.lessons(b), page.limit, cursor);
      const docs = await Promise.all(top.map(({ bucket, member }) => this.client.hget(k.lessonDocs(bucket), member)));
      const items = docs.flatMap((json) => (json === null ? [] : [decodeLesson(json)]));
      return { items, next: more ? top[top.length - 1]!.member : undefined };
    });
  }

  /**
   * The `limit` greatest members below `cursor` across every bucket's lex-sorted set `keyOf(b)`,
   * greatest first. Members are globally unique and globally ordered, so one cursor (the last
   * member returned) serves every bucket.
   */
  private async mergePages(keyOf: (bucket: number) => string, limit: number, cursor: string | undefined) {
    const max = cursor === undefined ? "+" : `(${cursor}`;
    const perBucket = await Promise.all(
      this.keys.all().map((b) => this.client.zrevrangebylex(keyOf(b), max, "-", "LIMIT", 0, limit + 1)),
    );
    const merged = perBucket.flatMap((members, bucket) => members.map((member) => ({ bucket, member })));
    merged.sort((a, b) => (a.member < b.member ? 1 : a.member > b.member ? -1 : 0));
    return { top: merged.slice(0, limit), more: merged.length > limit };
  }

  // ---- watch ----

  subscribe(onReview: (decision: Decision) => void, onError: (err: Error) => void, onLive?: () => void): Unsubscribe {
    if (this.closed) {
      queueMicrotask(() => onError(new UnavailableError("the store is closed")));
      return () => undefined;
    }
    return this.feed.subscribe(onReview, onError, onLive);
  }

  // ---- health ----

  isHealthy(): boolean {
    return this.healthy;
  }

  onHealthChange(listener: (healthy: boolean) => void): void {
    this.healthListeners.push(listener);
  }

  private setHealthy(healthy: boolean): void {
    if (healthy === this.healthy || this.closed) return;
    this.healthy = healthy;
    this.log.debug({ healthy }, healthy ? "redis reachable" : "redis unreachable");
    for (const l of this.healthListeners) l(healthy);
  }

  private startHealthChecks(): void {
    this.healthy = true;
    const down = () => this.setHealthy(false);
    this.client.on("close", down);
    this.client.on("end", down);
    this.client.on("ready", () => void this.checkHealth());
    if (this.client instanceof Cluster) this.client.on("node error", () => void this.checkHealth());
    this.healthTimer = setInterval(() => void this.checkHealth(), this.o.healthIntervalMs);
    this.healthTimer.unref();
  }

  /**
   * PINGs Redis; healthy when it answers in time. On a cluster: when the master serving each
   * bucket's slot is connected and every master answers.
   */
  private async checkHealth(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      const nodes: Redis[] = masters(this.client);
      let ready = this.client.status === "ready" && nodes.length > 0 && nodes.every((n) => n.status === "ready");
      if (ready && this.client instanceof Cluster) {
        const slots = (this.client as unknown as { slots: (string[] | undefined)[] }).slots;
        const connected = new Set(nodes.map((n) => `${n.options.host}:${n.options.port}`));
        ready = this.bucketSlots.every((slot) => {
          const owner = slots[slot]?.[0];
          return owner !== undefined && connected.has(owner);
        });
      }
      if (!ready) return this.setHealthy(false);
      await withTimeout(Promise.all(nodes.map((n) => n.ping())), this.o.commandTimeoutMs);
      this.setHealthy(true);
    } catch {
      this.setHealthy(false);
    } finally {
      this.checking = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.feed.fail(new UnavailableError("the store is closing"));
    this.closed = true;
    clearInterval(this.healthTimer);
    try {
      await withTimeout(this.client.quit(), this.o.commandTimeoutMs);
    } catch {
      this.client.disconnect();
    }
  }

  // ---- plumbing ----

  private get scripts(): Scripts {
    return this.client as unknown as Scripts;
  }

  /**
   * Runs one store call within `operationTimeoutMs`. Redis being unreachable, slow, loading or
   * failing over becomes UnavailableError (UNAVAILABLE, retryable); a reply that means a bug
   * (wrong type, a failing script) stays an internal error.
   */
  private async op<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new UnavailableError("the store is closed");
    try {
      return await withTimeout(fn(), this.o.operationTimeoutMs);
    } catch (err) {
      if (err instanceof CouncilError) throw err;
      if (isBug(err)) throw err;
      void this.checkHealth();
      const reason = unavailableReason(err);
      this.log.debug({ op: name, err: reason }, "redis call failed");
      throw new UnavailableError(`the store is unavailable (${reason}); retry later`);
    }
  }
}

class TimeoutError extends Error {}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms`)), ms);
  });
  work.catch(() => undefined); // it may settle after the timeout; nobody is waiting any more
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Why a call failed, for the client and the log, in words rather than ioredis internals. */
function unavailableReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof TimeoutError || /timed out/i.test(message)) return "Redis did not answer in time";
  if (/enableOfflineQueue|Connection is closed|isn't ready|ECONNREFUSED|ECONNRESET|EPIPE/.test(message)) return "not connected to Redis";
  return message.slice(0, 200);
}

/**
 * Replies that no retry will fix: a key of the wrong type, a script that fails on its own (not
 * because Redis is out of memory, read-only, loading or failing over).
 */
function isBug(err: unknown): boolean {
  if (!(err instanceof Error) || err.name !== "ReplyError") return false;
  if (/OOM|READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOPERM|NOAUTH/.test(err.message)) return false;
  return /^(WRONGTYPE|ERR .*script)/i.test(err.message);
}

function checkCursor(cursor: string | undefined, shape: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  if (cursor.length > MAX_CURSOR || !shape.test(cursor)) throw new InvalidArgumentError("page_token", "is malformed");
  return cursor;
}
