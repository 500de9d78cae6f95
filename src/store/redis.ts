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
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import { Cluster, type Redis } from "ioredis";
import { DataLossError, InvalidArgumentError, UnavailableError } from "../domain/errors.js";
import { decisionIdForRequest } from "../domain/identity.js";
import { decisionBytes, lessonBytes } from "../domain/limits.js";
import { DECISION_TYPES, emptySummary, OUTCOMES, PENDING, type Decision, type Lesson, type Summary } from "../domain/model.js";
import type { Logger } from "../log.js";
import {
  checkBucketCount,
  clusterSlot,
  DEFAULT_BUCKETS,
  INDEX_MEMBER,
  Keyspace,
  LAYOUT,
  LESSON_MEMBER,
  memberDecisionId,
  metaKey,
} from "./keys.js";
import { decodeDecision, decodeLesson, encodeDecision, encodeLesson, fieldMap, type DecisionFields } from "./redis_codec.js";
import {
  checkPersistence,
  checkReplicas,
  createClient,
  masters,
  parseRedisUrl,
  supportsCommand,
  whenReady,
  type RedisClient,
  type RedisTarget,
} from "./redis_connection.js";
import { classify, isUnreachable, StoreTimeoutError, UNAVAILABLE } from "./redis_errors.js";
import { BlockingSource, EventFeed, PollingSource } from "./redis_watch.js";
import {
  countWithin,
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
  /**
   * COUNCIL_REDIS_MIN_REPLICAS: every write is confirmed by this many replicas (WAIT) before it is
   * acknowledged, else the call fails UNAVAILABLE (see `write`). Default 0: writes do not wait.
   */
  minReplicas?: number;
  /** How long a write waits for its replicas (and for the local fsync, with WAITAOF). Default 400. */
  replicaTimeoutMs?: number;
  /** Watches end with UNAVAILABLE when the event reader could not read Redis for this long. Default 10000. */
  watchStallMs?: number;
}

/** Optional Redis commands found at start-up (COMMAND INFO), never assumed. */
export interface RedisFeatures {
  /**
   * Every master knows WAITAOF (Redis 7.2+) and ran `appendonly yes` at start, so a write's local
   * fsync can be confirmed (WAITAOF with numlocal 1 is refused without AOF).
   */
  waitaof: boolean;
}

const MAX_CURSOR = 512;

/** The fields of a decision's hash whose lengths add up to about its size (for a page's byte budget). */
const DECISION_SIZE_FIELDS: readonly (keyof DecisionFields)[] = ["doc", "notes", "lessons"];

/** The custom commands defined from the Lua files. */
interface Scripts {
  councilOpenKeyspace(...args: string[]): Promise<[number, string | null, string | null, string | null]>;
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
    /** From `<prefix>meta`: every replica of the keyspace signs page tokens with it. */
    readonly pageTokenKey: Buffer,
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
    this.feed = new EventFeed(client, keys, source, log, { stallMs: o.watchStallMs });
  }

  /**
   * Connects (waiting up to `startTimeoutMs` for Redis), reads or records the keyspace's meta (its
   * bucket count, layout and page-token key; a layout this code does not know stops here), checks
   * persistence and optional commands, and starts the health checks.
   */
  static async open(options: RedisStoreOptions): Promise<RedisStore> {
    const o = {
      commandTimeoutMs: options.commandTimeoutMs ?? 1000,
      operationTimeoutMs: options.operationTimeoutMs ?? 1500,
      startTimeoutMs: options.startTimeoutMs ?? 10_000,
      eventStreamLength: options.eventStreamLength ?? 1000,
      healthIntervalMs: options.healthIntervalMs ?? 1000,
      pollMs: options.pollMs ?? 100,
      minReplicas: options.minReplicas ?? 0,
      replicaTimeoutMs: options.replicaTimeoutMs ?? 400,
      watchStallMs: options.watchStallMs ?? 10_000,
    };
    const log = options.log;
    const target = parseRedisUrl(options.url);
    const client = createClient(target, { commandTimeoutMs: o.commandTimeoutMs, connectionName: "council", tls: options.tls });
    client.on("error", () => undefined); // connection errors surface through calls and health
    client.defineCommand("councilOpenKeyspace", { numberOfKeys: 1, lua: lua("open_keyspace") });
    client.defineCommand("councilSaveReview", { numberOfKeys: 8, lua: lua("save_review") });
    client.defineCommand("councilRecordOutcome", { numberOfKeys: 5, lua: lua("record_outcome") });
    try {
      await whenReady(client, o.startTimeoutMs);
      const { buckets, tokenKey } = await RedisStore.openKeyspace(client, options.prefix, checkBucketCount(options.buckets ?? DEFAULT_BUCKETS), log);
      const appendonly = await checkPersistence(client, log);
      const features = { waitaof: appendonly && (await supportsCommand(client, "WAITAOF")) };
      if (o.minReplicas > 0) await checkReplicas(client, o.minReplicas, log);
      log.info({ features }, "optional Redis commands");
      const store = new RedisStore(client, new Keyspace(options.prefix, buckets), tokenKey, features, target, log, o);
      store.startHealthChecks();
      return store;
    } catch (err) {
      client.disconnect();
      throw new Error(`cannot open the Redis store at ${target.where}: ${(err as Error).message}`);
    }
  }

  /**
   * Reads `<prefix>meta`, creating it (with `wanted` buckets) if the keyspace is new, in one script
   * so that replicas starting together agree. Refuses a layout this code does not know: reading or
   * writing a keyspace laid out differently would damage it, and no retry fixes that.
   */
  private static async openKeyspace(
    client: RedisClient,
    prefix: string,
    wanted: number,
    log: Logger,
  ): Promise<{ buckets: number; tokenKey: Buffer }> {
    const key = metaKey(prefix);
    const scripts = client as unknown as Scripts;
    const [created, buckets, layout, token] = await scripts.councilOpenKeyspace(
      key,
      String(wanted),
      LAYOUT,
      new Date().toISOString(),
      randomBytes(32).toString("base64"),
    );
    if (layout !== LAYOUT) {
      throw new Error(
        `${key} records layout ${JSON.stringify(layout)}, which this version of Council cannot read (it knows layout ${LAYOUT}); ` +
          "run the Council version that wrote it, or use another COUNCIL_REDIS_PREFIX",
      );
    }
    const recorded = Number(buckets);
    try {
      checkBucketCount(recorded);
    } catch {
      throw new Error(`${key} records an invalid bucket count ${JSON.stringify(buckets)}`);
    }
    const tokenKey = Buffer.from(token ?? "", "base64");
    if (tokenKey.length < 32) throw new Error(`${key} records an invalid token_key`);
    if (created) log.info({ prefix, buckets: recorded }, "created a new Council keyspace");
    else if (recorded !== wanted) log.info({ prefix, buckets: recorded, asked: wanted }, "the keyspace keeps the bucket count it was created with");
    return { buckets: recorded, tokenKey };
  }

  // ---- writes ----

  async saveReview(decision: Decision, fingerprint: string): Promise<SaveResult> {
    return this.op("saveReview", async () => {
      const k = this.keys;
      if (decision.requestId && decision.id !== decisionIdForRequest(decision.submittedBy, decision.requestId)) {
        throw new Error(`decision ${decision.id} has request_id ${decision.requestId} but not the id derived from it`);
      }
      const b = k.bucketOfId(decision.id);
      const f = encodeDecision(decision);
      const keys = [
        k.decision(b, decision.id),
        k.request(b, decision.submittedBy, decision.requestId),
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
        // Unique per call, kept with the request id: if this reply is lost and ioredis sends the
        // call again, the copy finds its own id and answers "stored", not "exists".
        randomUUID(),
        decision.decision,
        decision.outcome ?? PENDING,
        decision.autoFixApproved ? "1" : "0",
        String(this.o.eventStreamLength),
        decision.id,
        f.submitted_by,
        f.outcome_by,
      ];
      const reply = await this.write<string[]>(b, "councilSaveReview", [...keys, ...argv]);
      if (reply[0] === "stored") return { kind: "stored", decision: structuredClone(decision) };
      const [, id, storedFingerprint] = reply;
      const existing = decodeDecision(await this.client.hgetall(k.decision(b, id!)));
      if (!existing) throw new DataLossError(`saveReview: request ${decision.requestId} names decision ${id}, which is missing`);
      return { kind: "exists", decision: existing, fingerprint: storedFingerprint ?? "" };
    });
  }

  async recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult> {
    return this.op("recordOutcome", async () => {
      const k = this.keys;
      const { outcome, notes, lessons, at, recordedBy, onlyIfSubmittedBy } = change;
      const lesson = encodeLesson({ decisionId: id, outcome, lessons, notes, recordedAt: at, recordedBy });
      const b = k.bucketOfId(id);
      const reply = await this.write<(string | string[])[] | null>(b, "councilRecordOutcome", [
        k.decision(b, id),
        k.counts(b),
        k.lessons(b),
        k.lessonDocs(b),
        k.outcomeRequest(b, id, recordedBy, change.requestId),
        outcome,
        notes,
        lessons,
        String(at.getTime()),
        id,
        lesson,
        randomUUID(),
        change.requestId,
        change.fingerprint,
        recordedBy,
        onlyIfSubmittedBy === undefined ? "any" : "own",
        onlyIfSubmittedBy ?? "",
      ]);
      if (reply === null) return { kind: "not_found" };
      if (reply[0] === "other_submitter") return { kind: "other_submitter", submittedBy: reply[1] as string };
      const decision = decodeDecision(fieldMap(reply[reply.length - 1] as string[]));
      if (!decision) throw new Error(`decision ${id} cannot be read back`);
      if (reply[0] === "exists") return { kind: "exists", decision, fingerprint: reply[1] as string };
      return { kind: "recorded", decision };
    });
  }

  // ---- reads ----

  async findByRequestId(submittedBy: string, requestId: string): Promise<{ decision: Decision; fingerprint: string } | undefined> {
    return this.op("findByRequestId", async () => {
      const k = this.keys;
      const id = decisionIdForRequest(submittedBy, requestId);
      const b = k.bucketOfId(id);
      const [[, fingerprint], doc] = await Promise.all([
        this.client.hmget(k.request(b, submittedBy, requestId), "id", "fp"),
        this.client.hgetall(k.decision(b, id)),
      ]);
      if (fingerprint === null || fingerprint === undefined) return undefined;
      const decision = decodeDecision(doc);
      if (!decision) throw new DataLossError(`findByRequestId: request ${requestId} names decision ${id}, which is missing`);
      // A replay acknowledges the decision as much as the first reply would have: with
      // minReplicas, not before the replicas have it (the first call may have failed waiting).
      await this.confirm(b);
      return { decision, fingerprint };
    });
  }

  async getDecision(id: string): Promise<Decision | undefined> {
    return this.op("getDecision", async () =>
      decodeDecision(await this.client.hgetall(this.keys.decision(this.keys.bucketOfId(id), id))),
    );
  }

  async listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>> {
    const cursor = checkCursor(page.cursor, INDEX_MEMBER);
    return this.op("listDecisions", async () => {
      const k = this.keys;
      const { top, more } = await this.mergePages((b) => k.index(b, filter), page.limit, cursor);
      const key = (i: number) => k.decision(top[i]!.bucket, memberDecisionId(top[i]!.member));
      const read = await this.toRead(top.length, page.maxBytes, (i) =>
        Promise.all(DECISION_SIZE_FIELDS.map((f) => this.client.hstrlen(key(i), f))).then((lengths) => lengths.reduce((a, b) => a + b, 0)),
      );
      const hashes = await Promise.all(top.slice(0, read).map((_, i) => this.client.hgetall(key(i))));
      const items: Decision[] = [];
      hashes.forEach((h, i) => {
        const d = decodeDecision(h);
        // Council deletes nothing: an index entry without its decision means stored data was lost.
        if (!d) throw new DataLossError(`listDecisions: index entry ${top[i]!.member} of bucket ${top[i]!.bucket} names a decision that is missing`);
        items.push(d);
      });
      const n = countWithin(items, decisionBytes, page.maxBytes);
      return { items: items.slice(0, n), next: more || n < top.length ? top[n - 1]!.member : undefined };
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
    const cursor = checkCursor(page.cursor, LESSON_MEMBER);
    return this.op("listLessons", async () => {
      const k = this.keys;
      const { top, more } = await this.mergePages((b) => k.lessons(b), page.limit, cursor);
      const read = await this.toRead(top.length, page.maxBytes, (i) => this.client.hstrlen(k.lessonDocs(top[i]!.bucket), top[i]!.member));
      const docs = await Promise.all(top.slice(0, read).map(({ bucket, member }) => this.client.hget(k.lessonDocs(bucket), member)));
      const found = docs.flatMap((json, i) => (json === null ? [] : [{ lesson: decodeLesson(json), member: top[i]!.member }]));
      const n = countWithin(found, (f) => lessonBytes(f.lesson), page.maxBytes);
      const last = n < found.length ? found[n - 1]?.member : more || read < top.length ? top[read - 1]?.member : undefined;
      return { items: found.slice(0, n).map((f) => f.lesson), next: last };
    });
  }

  /**
   * How many of a page's first `count` items to read so that it stays within `maxBytes`, judged
   * from their stored lengths (`length(i)`, e.g. HSTRLEN), so that a page of large items is never
   * read whole. One more than the lengths suggest is read: the caller counts exactly
   * (countWithin) on what it read, and the page ends there.
   */
  private async toRead(count: number, maxBytes: number | undefined, length: (i: number) => Promise<number>): Promise<number> {
    if (maxBytes === undefined || count <= 1) return count;
    const lengths = await Promise.all(Array.from({ length: count }, (_, i) => length(i)));
    return Math.min(count, countWithin(lengths, (n) => n, maxBytes) + 1);
  }

  /**
   * The `limit` greatest members below `cursor` across every bucket's lex-sorted set `keyOf(b)`,
   * greatest first. Members are globally unique and globally ordered (they start with the time the
   * store gave them, strictly increasing per bucket), so one cursor (the last member returned)
   * serves every bucket.
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
   * Runs a write script. With `minReplicas`, the script goes in one pipeline (so to the bucket's
   * master, on the same connection) with a write that replicates (HSET of the bucket's counters
   * field `sync`, so that the WAIT also covers data an earlier call wrote, as for a replay or a
   * re-sent script that found its work done) and `WAIT minReplicas replicaTimeoutMs`; and, when
   * the server has WAITAOF and its masters run `appendonly yes`, `WAITAOF 1 0 replicaTimeoutMs`,
   * the local fsync. Fewer acknowledgements than asked: UnavailableError. The write may then
   * stand on the master alone; the client retries with the same request_id, and the retry waits
   * again before it acknowledges the stored decision.
   */
  private async write<T>(bucket: number, script: keyof Scripts, args: string[]): Promise<T> {
    if (this.o.minReplicas === 0) return (await (this.scripts[script] as (...a: string[]) => Promise<unknown>)(...args)) as T;
    // EVALSHA, and EVAL if Redis does not have the script: not ioredis's custom command, which
    // would send the EVAL outside the pipeline, after the WAIT that must follow it.
    const defined = (this.client as unknown as { scriptsSet: Record<string, { lua: string; sha: string; numberOfKeys: number }> }).scriptsSet;
    const { lua, sha, numberOfKeys } = defined[script]!;
    for (const body of [undefined, lua]) {
      const pipeline = this.client.pipeline();
      if (body === undefined) pipeline.evalsha(sha, numberOfKeys, ...args);
      else pipeline.eval(body, numberOfKeys, ...args);
      try {
        const [reply] = await this.confirmed(pipeline, bucket);
        return reply as T;
      } catch (err) {
        if (body !== undefined || !(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      }
    }
    throw new Error("unreachable");
  }

  /** With `minReplicas`: waits until the replicas have everything written in `bucket` so far (see `write`). */
  private async confirm(bucket: number): Promise<void> {
    if (this.o.minReplicas > 0) await this.confirmed(this.client.pipeline(), bucket);
  }

  /** Adds the touch, WAIT and WAITAOF to `pipeline`, runs it, checks them, and returns the replies before them. */
  private async confirmed(pipeline: ReturnType<RedisClient["pipeline"]>, bucket: number): Promise<unknown[]> {
    const { minReplicas, replicaTimeoutMs } = this.o;
    const before = pipeline.length;
    pipeline.hset(this.keys.counts(bucket), "sync", "1");
    pipeline.wait(minReplicas, replicaTimeoutMs);
    const aof = this.features.waitaof;
    if (aof) pipeline.call("WAITAOF", "1", "0", String(replicaTimeoutMs));
    const replies = await pipeline.exec();
    if (!replies) throw new Error("Connection is closed.");
    const values = replies.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
    const replicas = Number(values[before + 1]);
    const fsynced = aof ? Number((values[before + 2] as number[])[0]) : 1;
    if (replicas < minReplicas || fsynced < 1) {
      this.log.warn(
        { bucket, replicas, wanted: minReplicas, fsynced: aof ? fsynced : undefined, timeoutMs: replicaTimeoutMs },
        "a write was not confirmed by enough replicas in time",
      );
      throw new UnavailableError(UNAVAILABLE.replicas);
    }
    return values.slice(0, before);
  }

  /**
   * Runs one store call within `operationTimeoutMs`, and classifies what it throws where it
   * enters (redis_errors.ts): Redis unreachable, slow, loading, failing over, busy or out of
   * memory is UnavailableError (UNAVAILABLE, retryable); damaged data is DataLossError, anything
   * else InternalError. Each carries a fixed message for the client; Redis's own text goes to the
   * log only.
   */
  private async op<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new UnavailableError(UNAVAILABLE.closed);
    try {
      return await withTimeout(fn(), this.o.operationTimeoutMs);
    } catch (err) {
      const e = classify(name, err);
      // Errors this store raised itself (a shortfall of replicas, say) were logged where they arose.
      if (e instanceof UnavailableError && e !== err) {
        const unreachable = isUnreachable(e);
        if (unreachable) void this.checkHealth();
        // Down or slow is also seen by health; a reply such as OOM or READONLY is for the operator.
        this.log[unreachable ? "debug" : "warn"]({ op: name, err: err instanceof Error ? err.message : String(err) }, "redis call failed");
      }
      throw e;
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(`timed out after ${ms} ms`)), ms);
  });
  work.catch(() => undefined); // it may settle after the timeout; nobody is waiting any more
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

function checkCursor(cursor: string | undefined, shape: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  if (cursor.length > MAX_CURSOR || !shape.test(cursor)) throw new InvalidArgumentError("page_token", "is malformed");
  return cursor;
}
