/**
 * The Redis store (ioredis): shared by stateless replicas, on one Redis or a Redis Cluster.
 *
 * The keyspace is split into a fixed number of buckets, each with its own hash tag (keys.ts). A
 * review's writes — decision, indexes, counters, idempotency key and event — land in its bucket in
 * one Lua script (lua/save_review.lua); RecordOutcome is another (lua/record_outcome.lua), and so
 * is every change to a decision's lifecycle (lua/update_lifecycle.lua: a verdict, a supersede, an
 * expiry). Reads that span everything merge the buckets: the summary adds their counters, listings
 * merge their sorted indexes behind one cursor, the watch reads all their event and update
 * streams (redis_watch.ts). Their cost grows with the number of buckets, never with history.
 *
 * Expiry (SPEC §9): each bucket schedules its pending decisions in a sorted set by expires_at, and
 * every replica sweeps every bucket every `sweepMs` to 2×`sweepMs` (a bounded batch each time);
 * the script decides by the Redis server's TIME and expires a decision only while it is pending, so
 * replicas racing on one expire it once, with one update event. Reads present a pending decision
 * past its expiry as expired at once (by the server's clock, as this process last measured it), and
 * a summary or a listing by status first expires what is due, so that counters and indexes agree
 * with what reads show.
 *
 * Every call is bounded: a Redis that is down or silent makes it fail with UnavailableError
 * within `operationTimeoutMs`, and the client reconnects on its own when Redis is back.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { ConnectionOptions } from "node:tls";
import { Cluster, type Redis } from "ioredis";
import { DataLossError, InternalError, InvalidArgumentError, UnavailableError } from "../domain/errors.js";
import { decisionIdForRequest } from "../domain/identity.js";
import { asOf, DEFAULT_VERDICTS, legacyLifecycle, type VerdictsSection } from "../domain/lifecycle.js";
import { decisionBytes, lessonBytes } from "../domain/limits.js";
import {
  DECISION_STATUSES,
  DECISION_TYPES,
  emptySummary,
  OUTCOMES,
  PENDING,
  type Decision,
  type DecisionStatus,
  type DecisionType,
  type Lesson,
  type Summary,
} from "../domain/model.js";
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
  READABLE_LAYOUTS,
  UNRECORDED_LAYOUT,
} from "./keys.js";
import {
  DECISION_READ_FIELDS,
  DECISION_SIZED_FIELDS,
  decodeDecision,
  decodeLesson,
  encodeDecision,
  encodeLesson,
  encodeVerdicts,
  fieldMap,
  readFieldMap,
  revisionOf,
  statusOf,
  type DecisionReadFields,
} from "./redis_codec.js";
import {
  checkPersistence,
  checkReplicas,
  createClient,
  masters,
  parseRedisUrl,
  supportsCommand,
  lua,
  whenReady,
  type RedisClient,
  type RedisTarget,
} from "./redis_connection.js";
import { classify, isUnreachable, UNAVAILABLE, withTimeout } from "./redis_errors.js";
import { BlockingSource, EventFeed, PollingSource } from "./redis_watch.js";
import {
  countWithin,
  type DecisionFilter,
  type LifecycleChange,
  type LifecycleResult,
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
  /**
   * The policy's `verdicts` section: decisions stored before SPEC §9 read with its approvals (and
   * the status backfill writes them). Default: SPEC §9's defaults.
   */
  verdicts?: VerdictsSection;
  /** Every replica sweeps the expiry schedule every `sweepMs` to 2×`sweepMs` (random). Default 250. */
  sweepMs?: number;
  /** Decisions one sweep expires at most (the next sweep follows at once when it had more). Default 200. */
  sweepBatch?: number;
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

/** Decisions one read_decisions.lua call reads at most, so that no call holds Redis for long (a page of 500 takes 8, in one round trip). */
const READ_CHUNK = 64;

/** Index members the status backfill reads per round of a bucket. */
const BACKFILL_CHUNK = 200;
/** Decisions read or written at once by the backfill and the sweeper (bounds memory: a doc may be 2.6 MB). */
const PARALLEL = 16;
/** A due decision met by a summary or a listing by status is expired first, up to this many per call. */
const REPAIR_LIMIT = 100;
/** The sweeper looks for decisions stored without a status (by replicas of layout 1) every this many sweeps. */
const CATCH_UP_EVERY = 8;

/** The custom commands defined from the Lua files. */
interface Scripts {
  councilOpenKeyspace(...args: string[]): Promise<[number, string | null, string | null, string | null]>;
  councilSetLayout(...args: string[]): Promise<string | null>;
  councilSaveReview(...args: string[]): Promise<string[]>;
  councilRecordOutcome(...args: string[]): Promise<(string | string[])[] | null>;
  councilUpdateLifecycle(...args: string[]): Promise<(string | string[])[] | null>;
  councilBackfillStatus(...args: string[]): Promise<string[]>;
}

/** What a script needs to know of a stored decision to build its status index keys. */
interface IndexFacts {
  id: string;
  status: DecisionStatus;
  type: DecisionType;
  suggestionId: string;
}


/**
 * A read-only script whose number of keys varies, run as EVALSHA (EVAL when Redis does not have
 * it): not as an ioredis custom command, whose auto-pipelining would route it on a cluster by its
 * first argument (the number of keys) rather than by its first key.
 */
class ReadScript {
  private readonly body: string;
  private readonly sha: string;

  constructor(name: string) {
    this.body = lua(name);
    this.sha = createHash("sha1").update(this.body).digest("hex");
  }

  async run<T>(client: RedisClient, keys: readonly string[], args: readonly string[]): Promise<T> {
    try {
      return (await client.evalsha(this.sha, keys.length, ...keys, ...args)) as T;
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
      return (await client.eval(this.body, keys.length, ...keys, ...args)) as T;
    }
  }
}

/** lua/read_decisions.lua: the decisions of one page in one bucket (see `readPage`). */
const READ_DECISIONS = new ReadScript("read_decisions");
/** lua/read_counts.lua: the counters of a group of buckets, and whether anything is due (see `readCounts`). */
const READ_COUNTS = new ReadScript("read_counts");
/** lua/any_due.lua: whether a group of buckets has anything due (see `anyDue`). */
const ANY_DUE = new ReadScript("any_due");

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
  /** The Redis server's clock minus this process's, in ms, as last measured (`refreshClock`). */
  private clockOffsetMs = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private sweeps = 0;

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
    const streams = EventFeed.streams(keys);
    const source =
      client instanceof Cluster
        ? new PollingSource(client, streams, o.pollMs)
        : new BlockingSource(client, streams, 1000, o.commandTimeoutMs);
    this.feed = new EventFeed(client, keys, source, log, { stallMs: o.watchStallMs, verdicts: o.verdicts });
  }

  /**
   * Connects (waiting up to `startTimeoutMs` for Redis), reads or records the keyspace's meta (its
   * bucket count, layout and page-token key; a layout this code does not know stops here), checks
   * persistence and optional commands, brings a keyspace of layout 1 to layout 2 (the status
   * backfill: keys.ts LAYOUT), and starts the health checks and the expiry sweeper.
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
      verdicts: options.verdicts ?? DEFAULT_VERDICTS,
      sweepMs: options.sweepMs ?? 250,
      sweepBatch: options.sweepBatch ?? 200,
    };
    const log = options.log;
    const target = parseRedisUrl(options.url);
    const client = createClient(target, { commandTimeoutMs: o.commandTimeoutMs, connectionName: "council", tls: options.tls });
    client.on("error", () => undefined); // connection errors surface through calls and health
    client.defineCommand("councilOpenKeyspace", { numberOfKeys: 1, lua: lua("open_keyspace") });
    client.defineCommand("councilSetLayout", { numberOfKeys: 1, lua: lua("set_layout") });
    client.defineCommand("councilSaveReview", { numberOfKeys: 13, lua: lua("save_review") });
    client.defineCommand("councilRecordOutcome", { numberOfKeys: 6, lua: lua("record_outcome") });
    client.defineCommand("councilUpdateLifecycle", { numberOfKeys: 20, lua: lua("update_lifecycle") });
    client.defineCommand("councilBackfillStatus", { numberOfKeys: 6, lua: lua("backfill_status") });
    try {
      await whenReady(client, o.startTimeoutMs);
      const { buckets, tokenKey, layout } = await RedisStore.openKeyspace(
        client,
        options.prefix,
        checkBucketCount(options.buckets ?? DEFAULT_BUCKETS),
        log,
      );
      const appendonly = await checkPersistence(client, log);
      const features = { waitaof: appendonly && (await supportsCommand(client, "WAITAOF")) };
      if (o.minReplicas > 0) await checkReplicas(client, o.minReplicas, log);
      log.info({ features }, "optional Redis commands");
      const store = new RedisStore(client, new Keyspace(options.prefix, buckets), tokenKey, features, target, log, o);
      await store.refreshClock();
      await store.upgrade(layout);
      store.startHealthChecks();
      store.startSweeper();
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
  ): Promise<{ buckets: number; tokenKey: Buffer; layout: string }> {
    const key = metaKey(prefix);
    const scripts = client as unknown as Scripts;
    const [created, buckets, layout, token] = await scripts.councilOpenKeyspace(
      key,
      String(wanted),
      LAYOUT,
      new Date().toISOString(),
      randomBytes(32).toString("base64"),
      UNRECORDED_LAYOUT,
      ...READABLE_LAYOUTS,
    );
    if (layout === null || !READABLE_LAYOUTS.includes(layout)) {
      throw new Error(
        `${key} records layout ${JSON.stringify(layout)}, which this version of Council cannot read (it knows layouts ${READABLE_LAYOUTS.join(" and ")}); ` +
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
    return { buckets: recorded, tokenKey, layout };
  }

  /**
   * Brings a keyspace of layout 1 to layout 2: every decision stored before SPEC §9 gets its
   * status, status index entries and status count (backfillStatus, bucket by bucket, chunk by
   * chunk), then meta records layout 2. Idempotent and safe to run on several replicas at once (a
   * replica that dies half-way leaves a keyspace of layout 1 that the next start finishes). On a
   * keyspace of layout 2, it does the same for buckets whose counters say that decisions lack a
   * status (stored by a replica of layout 1 since), which is usually none.
   */
  private async upgrade(layout: string): Promise<void> {
    const started = Date.now();
    const gaps = await this.statusGaps();
    const todo = this.keys.all().filter((b) => layout !== LAYOUT || gaps[b]! > 0);
    if (todo.length === 0) return;
    if (layout !== LAYOUT) this.log.info({ layout, to: LAYOUT, buckets: todo.length }, "upgrading the keyspace: indexing stored decisions by status");
    let indexed = 0;
    for (let i = 0; i < todo.length; i += 4) {
      const counts = await Promise.all(todo.slice(i, i + 4).map((b) => this.backfillStatus(b, Infinity)));
      indexed += counts.reduce((a, c) => a + c, 0);
    }
    const left = (await this.statusGaps()).reduce((a, g) => a + Math.max(0, g), 0);
    if (left > 0) this.log.warn({ decisions: left }, "some decisions counted in the keyspace have no status after the backfill (their index entries name no decision, or name them out of order)");
    if (layout !== LAYOUT) {
      const now = await this.scripts.councilSetLayout(metaKey(this.keys.prefix), layout, LAYOUT);
      this.log.info({ layout: now, indexed, ms: Date.now() - started }, "upgraded the keyspace");
    } else {
      this.log.info({ indexed, ms: Date.now() - started }, "indexed decisions stored without a status");
    }
  }

  /** Per bucket: decisions counted in `total` minus decisions counted in a status (those stored without one). */
  private async statusGaps(): Promise<number[]> {
    const all = await Promise.all(
      this.keys.all().map((b) => this.client.hmget(this.keys.counts(b), "total", ...DECISION_STATUSES.map((st) => `status:${st}`))),
    );
    return all.map(([total, ...counted]) => Number(total ?? 0) - counted.reduce((a, c) => a + Number(c ?? 0), 0));
  }

  /**
   * Gives the decisions of bucket `b` stored without a status (before SPEC §9, or since by a
   * replica of layout 1) their status, index entries and count (lua/backfill_status.lua), reading
   * the bucket's index of all decisions from where the last backfill stopped (`st_cursor` in its
   * counters), at most `rounds` chunks. Answers how many it indexed.
   */
  private async backfillStatus(b: number, rounds: number): Promise<number> {
    const k = this.keys;
    let indexed = 0;
    for (let round = 0; round < rounds; round++) {
      const cursor = await this.client.hget(k.counts(b), "st_cursor");
      const members = await this.client.zrangebylex(k.index(b, {}), cursor ? `(${cursor}` : "-", "+", "LIMIT", 0, BACKFILL_CHUNK);
      if (members.length === 0) break;
      const states = await Promise.all(members.map((m) => this.client.hexists(k.decision(b, memberDecisionId(m)), "status")));
      // The decisions without a status, and the last member in any case (it moves the cursor; the
      // script leaves a decision that has a status as it is, whatever keys it is given).
      const todo = members.filter((m, i) => states[i] === 0 || i === members.length - 1);
      await inParallel(todo, PARALLEL, async (member) => {
        const id = memberDecisionId(member);
        let type: DecisionType = "auto_approve";
        let suggestionId = "";
        if (states[members.indexOf(member)] === 0) {
          const doc = await this.client.hget(k.decision(b, id), "doc");
          const d = doc === null ? undefined : decodeDecision({ doc }, this.o.verdicts);
          if (d) ({ decision: type, suggestionId } = d);
        }
        const legacy = legacyLifecycle(type, this.o.verdicts);
        const [answer] = await this.write<string[]>(b, "councilBackfillStatus", [
          k.decision(b, id),
          k.counts(b),
          ...k.statusIndexes(b, legacy.status, type, suggestionId),
          member,
          legacy.status,
          String(legacy.approvalsRequired),
          type,
          suggestionId,
        ]);
        if (answer === "indexed") indexed++;
        if (answer === "missing") this.log.warn({ bucket: b, member }, "status backfill: an index entry names a decision that is missing");
      });
    }
    return indexed;
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
      const op = randomUUID();
      const keys = [
        k.decision(b, decision.id),
        k.request(b, decision.submittedBy, decision.requestId),
        k.index(b, {}),
        k.index(b, { decisionType: decision.decision }),
        k.index(b, { suggestionId: decision.suggestionId }),
        k.index(b, { decisionType: decision.decision, suggestionId: decision.suggestionId }),
        k.counts(b),
        k.events(b),
        ...k.statusIndexes(b, decision.status, decision.decision, decision.suggestionId),
        k.expiries(b),
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
        // call again, the copy finds its own id and answers "stored", not "exists". Also written
        // into the review's event, by which this replica's feed knows the decision it stored.
        op,
        decision.decision,
        decision.outcome ?? PENDING,
        decision.autoFixApproved ? "1" : "0",
        String(this.o.eventStreamLength),
        decision.id,
        f.submitted_by,
        f.outcome_by,
        f.status,
        f.approvals,
        f.expires_at,
        f.verdicts,
        f.supersedes,
        decision.suggestionId,
        String(decision.verdicts.length),
      ];
      this.feed.storing(op, decision);
      let reply: string[];
      try {
        reply = await this.write<string[]>(b, "councilSaveReview", [...keys, ...argv]);
      } catch (err) {
        this.feed.notStored(op);
        throw err;
      }
      if (reply[0] !== "stored") this.feed.notStored(op);
      if (reply[0] === "stored") return { kind: "stored", decision };
      const [, id, storedFingerprint] = reply;
      const existing = this.decode(await this.client.hgetall(k.decision(b, id!)));
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
      const args = [
        k.decision(b, id),
        k.counts(b),
        k.lessons(b),
        k.lessonDocs(b),
        k.outcomeRequest(b, id, recordedBy, change.requestId),
        k.updates(b),
        outcome,
        notes,
        lessons,
        String(at.getTime()),
        id,
        lesson,
        // One operation id for both attempts below: the second is the same call.
        randomUUID(),
        change.requestId,
        change.fingerprint,
        recordedBy,
        onlyIfSubmittedBy === undefined ? "any" : "own",
        onlyIfSubmittedBy ?? "",
        String(this.o.eventStreamLength),
      ];
      let reply = await this.write<(string | string[])[] | null>(b, "councilRecordOutcome", args);
      if (reply?.[0] === "unindexed") {
        // Stored by a replica of layout 1 since the backfill: index it, then record.
        await this.backfillStatus(b, Infinity);
        reply = await this.write<(string | string[])[] | null>(b, "councilRecordOutcome", args);
        if (reply?.[0] === "unindexed") throw new InternalError(`recordOutcome: decision ${id} has no status after the status backfill`);
      }
      if (reply === null) return { kind: "not_found" };
      if (reply[0] === "other_submitter") return { kind: "other_submitter", submittedBy: reply[1] as string };
      if (reply[0] === "not_approved") return { kind: "not_approved", status: statusOf(reply[1] as string) };
      const decision = this.decode(fieldMap(reply[reply.length - 1] as string[]));
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
      const decision = this.decode(doc);
      if (!decision) throw new DataLossError(`findByRequestId: request ${requestId} names decision ${id}, which is missing`);
      // A replay acknowledges the decision as much as the first reply would have: with
      // minReplicas, not before the replicas have it (the first call may have failed waiting).
      await this.confirm(b);
      return { decision, fingerprint };
    });
  }

  async getDecision(id: string): Promise<Decision | undefined> {
    return this.op("getDecision", async () => this.decode(await this.client.hgetall(this.keys.decision(this.keys.bucketOfId(id), id))));
  }

  async getDecisionForUpdate(id: string): Promise<{ decision: Decision; revision: number } | undefined> {
    return this.op("getDecisionForUpdate", async () => {
      const b = this.keys.bucketOfId(id);
      const fields = await this.client.hgetall(this.keys.decision(b, id));
      const decision = this.decode(fields);
      // The app may answer from this read without writing (a verdict given before, say, by a
      // retry whose first call failed waiting for replicas): with minReplicas, not before the
      // replicas have what it read.
      if (decision) await this.confirm(b);
      return decision && { decision, revision: revisionOf(fields) };
    });
  }

  async listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>> {
    const cursor = checkCursor(page.cursor, INDEX_MEMBER);
    return this.op("listDecisions", async () => {
      const k = this.keys;
      const merge = () => this.mergePages((b) => k.index(b, filter), page.limit, cursor, page.oldestFirst === true);
      // A listing by status shows each decision in the index of its status as it reads now: what
      // is due is expired first. Nothing is due almost always, so the check goes with the read,
      // and the read is made again after an expiry.
      const byStatus = filter.status === "pending" || filter.status === "expired";
      const [due, merged] = await Promise.all([byStatus && this.anyDue(), merge()]);
      const { top, more } = due ? await this.expireDueForRead().then(merge) : merged;
      const fields = await this.readPage(top, page.maxBytes);
      const items: Decision[] = [];
      fields.forEach((f, i) => {
        const d = this.decode(f);
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
      // The counts of pending and expired include what is due now: when anything is, it is
      // expired, and the counters read again.
      const read = await this.readCounts();
      const all = read.due ? (await this.expireDueForRead().then(() => this.readCounts())).counts : read.counts;
      const s = emptySummary();
      for (const c of all) {
        const n = (field: string) => Number(c[field] ?? 0);
        s.totalDecisions += n("total");
        for (const t of DECISION_TYPES) s.byType[t] += n(`type:${t}`);
        for (const o of [...OUTCOMES, PENDING] as const) s.outcomes[o] += n(`outcome:${o}`);
        for (const st of DECISION_STATUSES) s.byStatus[st] += n(`status:${st}`);
        s.autoApproved += n("auto_approved");
        s.learningEntries += n("lessons");
      }
      return s;
    });
  }

  // ---- lifecycle ----

  async updateLifecycle(id: string, expectRevision: number, change: LifecycleChange): Promise<LifecycleResult> {
    return this.op("updateLifecycle", async () => {
      const k = this.keys;
      const b = k.bucketOfId(id);
      const op = randomUUID();
      for (let attempt = 0; attempt < 2; attempt++) {
        const facts = await this.indexFacts(b, id);
        if (facts === "missing") return { kind: "not_found" };
        if (facts !== "unindexed") {
          const reply = await this.write<(string | string[])[] | null>(b, "councilUpdateLifecycle", [
            ...this.lifecycleKeys(b, facts, facts.status, change.status),
            "set",
            id,
            String(expectRevision),
            facts.status,
            change.status,
            encodeVerdicts(change.verdicts),
            change.supersededBy,
            change.status === "superseded" ? "superseded" : "verdict",
            op,
            String(this.o.eventStreamLength),
            String(change.verdicts.length),
          ]);
          if (reply === null) return { kind: "not_found" };
          if (reply[0] === "conflict") return { kind: "conflict" };
          if (reply[0] === "applied" || reply[0] === "expired") {
            const decision = this.decode(fieldMap(reply[1] as string[]));
            if (!decision) throw new Error(`decision ${id} cannot be read back`);
            return { kind: reply[0], decision };
          }
          if (reply[0] !== "unindexed") throw new Error(`update_lifecycle answered ${JSON.stringify(reply[0])}`);
        }
        // Stored by a replica of layout 1 since the backfill: index it, then write.
        await this.backfillStatus(b, Infinity);
      }
      throw new InternalError(`updateLifecycle: decision ${id} has no status after the status backfill`);
    });
  }

  async expireDue(limit: number): Promise<number> {
    return this.op("expireDue", () => this.expireDueNow(limit));
  }

  /**
   * Expires up to `limit` due decisions of every bucket's schedule (see update_lifecycle.lua
   * "expire"). Candidates are those due by the server's clock as last measured; the script decides
   * by the server's TIME itself, so a candidate that is not quite due stays for the next sweep.
   */
  private async expireDueNow(limit: number): Promise<number> {
    const k = this.keys;
    const now = this.now().getTime();
    const due = await Promise.all(k.all().map((b) => this.client.zrangebyscore(k.expiries(b), "-inf", now, "LIMIT", 0, limit)));
    const candidates = due.flatMap((ids, b) => ids.map((id) => ({ b, id }))).slice(0, limit);
    let expired = 0;
    await inParallel(candidates, PARALLEL, async ({ b, id }) => {
      const facts = await this.indexFacts(b, id);
      // A schedule entry without its decision: the script removes it (Council deletes nothing, so
      // stored data was lost; the listing that meets the decision's index entry says so).
      const f: IndexFacts = typeof facts === "string" ? { id, status: "pending", type: "human_approve", suggestionId: "" } : facts;
      if (facts === "missing") this.log.warn({ bucket: b, id }, "expiry: a scheduled decision is missing");
      const reply = await this.write<(string | string[])[] | null>(b, "councilUpdateLifecycle", [
        ...this.lifecycleKeys(b, f, "pending", "expired"),
        "expire",
        id,
        "",
        "",
        "",
        "",
        "",
        "",
        randomUUID(),
        String(this.o.eventStreamLength),
        "",
      ]);
      if (reply?.[0] === "expired") expired++;
    });
    return expired;
  }

  /**
   * Before a read that counts or lists by status: expires what is due (a bounded batch), so that
   * what it reads agrees with how each decision reads. A read never fails for want of a write: if
   * Redis refuses it for now (out of memory, say) or cannot confirm it on enough replicas (it then
   * stands on the master), the read goes on, with the counts of the last sweep (each decision
   * still reads EXPIRED when due). Damaged data fails the read, as it would the sweep.
   */
  private async expireDueForRead(): Promise<void> {
    try {
      await this.expireDueNow(REPAIR_LIMIT);
    } catch (err) {
      const e = classify("expireDue", err);
      if (!(e instanceof UnavailableError)) throw e;
      this.log.debug({ err: (err as Error).message }, "expiring due decisions before a read failed; reading on");
    }
  }

  /**
   * What a script needs to know of decision `id` to build its status index keys: its status (as
   * stored), type and suggestion id; "missing" when there is no such decision, "unindexed" when it
   * has no status yet. Read from plain fields, never from the (possibly large) doc, but for a
   * decision that has a status and lacks them, which this code never writes.
   */
  private async indexFacts(b: number, id: string): Promise<IndexFacts | "missing" | "unindexed"> {
    const key = this.keys.decision(b, id);
    const [status, type, sid] = await this.client.hmget(key, "status", "type", "sid");
    if (status === null || status === undefined) return (await this.client.exists(key)) === 1 ? "unindexed" : "missing";
    if (type && sid !== null && sid !== undefined) return { id, status: statusOf(status), type: typeOf(type), suggestionId: sid };
    const doc = await this.client.hget(key, "doc");
    const d = doc === null ? undefined : this.decode({ doc });
    if (!d) return "missing";
    return { id, status: statusOf(status), type: d.decision, suggestionId: d.suggestionId };
  }

  /** The keys update_lifecycle.lua takes for a decision moving from `from` to `to` (see its header). */
  private lifecycleKeys(b: number, f: IndexFacts, from: DecisionStatus, to: DecisionStatus): string[] {
    const k = this.keys;
    return [
      k.decision(b, f.id),
      k.counts(b),
      k.updates(b),
      k.expiries(b),
      ...k.statusIndexes(b, "pending", f.type, f.suggestionId),
      ...k.statusIndexes(b, "expired", f.type, f.suggestionId),
      ...k.statusIndexes(b, from, f.type, f.suggestionId),
      ...k.statusIndexes(b, to, f.type, f.suggestionId),
    ];
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
   * The buckets in the groups that one read script call takes together: all of them on one Redis,
   * each alone on a cluster (the keys of a script must share a slot there).
   */
  private bucketGroups(): number[][] {
    const all = this.keys.all();
    return this.client instanceof Cluster ? all.map((b) => [b]) : [all];
  }

  /** Whether a pending decision is due to expire by the server's clock as last measured, in any bucket. */
  private async anyDue(): Promise<boolean> {
    const now = String(this.now().getTime());
    const replies = await Promise.all(this.bucketGroups().map((g) => ANY_DUE.run<number>(this.client, g.map((b) => this.keys.expiries(b)), [now])));
    return replies.some((due) => due === 1);
  }

  /**
   * The buckets' counters, summed per group of `bucketGroups` (one record on one Redis, one per
   * bucket on a cluster), and whether a pending decision is due to expire in any (`anyDue`).
   */
  private async readCounts(): Promise<{ due: boolean; counts: Record<string, string>[] }> {
    const k = this.keys;
    const now = String(this.now().getTime());
    const replies = await Promise.all(
      this.bucketGroups().map((g) => READ_COUNTS.run<[number, ...string[]]>(this.client, [...g.map((b) => k.counts(b)), ...g.map((b) => k.expiries(b))], [now])),
    );
    return { due: replies.some((r) => r[0] === 1), counts: replies.map((r) => fieldMap(r.slice(1) as string[])) };
  }

  /**
   * The stored fields of the decisions a page's index entries name, in their order: as many of
   * them as fit `maxBytes` by their stored sizes, plus one (the caller counts exactly on what was
   * read, and the page ends there), so that a page of large decisions is never read whole.
   *
   * One read_decisions.lua call per 64 decisions (on a cluster, per bucket too: a script's keys
   * must share a slot), all in one round trip, returns each decision's fields, or only its size when that is more than
   * `maxBytes / entries` (so that round trip carries at most about `maxBytes`); the large decisions
   * that still fit are read in a second round trip.
   */
  private async readPage(top: readonly { bucket: number; member: string }[], maxBytes: number | undefined): Promise<DecisionReadFields[]> {
    if (top.length === 0) return [];
    const k = this.keys;
    const key = (i: number) => k.decision(top[i]!.bucket, memberDecisionId(top[i]!.member));
    // The entries by group of one script call: one group on one Redis, a group per bucket on a
    // cluster; at most READ_CHUNK entries each, so that no call holds Redis for long.
    const byGroup = new Map<number, number[][]>();
    const cluster = this.client instanceof Cluster;
    top.forEach(({ bucket }, i) => {
      const group = cluster ? bucket : 0;
      let chunks = byGroup.get(group);
      if (!chunks) byGroup.set(group, (chunks = [[]]));
      let chunk = chunks[chunks.length - 1]!;
      if (chunk.length === READ_CHUNK) chunks.push((chunk = []));
      chunk.push(i);
    });
    const each = maxBytes === undefined ? Number.MAX_SAFE_INTEGER : Math.floor(maxBytes / top.length);
    type Reply = number | [string | null, string];
    const read = (indexes: readonly number[], limit: number) =>
      READ_DECISIONS.run<Reply[]>(this.client, indexes.map(key), [String(limit), String(DECISION_SIZED_FIELDS.length), ...DECISION_READ_FIELDS]);
    const got: (number | DecisionReadFields)[] = new Array(top.length);
    const decoded = (reply: Reply) => (typeof reply === "number" ? reply : readFieldMap(reply[0], reply[1]));
    const calls = [...byGroup.values()].flat();
    const replies = await Promise.all(calls.map((indexes) => read(indexes, each)));
    calls.forEach((indexes, c) => indexes.forEach((i, j) => (got[i] = decoded(replies[c]![j]!))));
    // Stored sizes, in bytes for a decision returned only by its size, in UTF-16 units for one
    // returned whole (close enough for a budget that the caller then counts exactly).
    const sizes = got.map((v) => (typeof v === "number" ? v : sizedLength(v)));
    const count = maxBytes === undefined ? top.length : Math.min(top.length, countWithin(sizes, (n) => n, maxBytes) + 1);
    const large = got.slice(0, count).flatMap((v, i) => (typeof v === "number" ? [i] : []));
    if (large.length > 0) {
      const whole = await Promise.all(large.map((i) => read([i], Number.MAX_SAFE_INTEGER)));
      large.forEach((i, j) => (got[i] = decoded(whole[j]![0]!)));
    }
    return got.slice(0, count) as DecisionReadFields[];
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
   * greatest first; or, `ascending`, the `limit` least members above it, least first. Members are
   * globally unique and globally ordered (they start with the time the store gave them, strictly
   * increasing per bucket), so one cursor (the last member returned) serves every bucket.
   *
   * Each bucket is first asked for about twice its share of the page (decisions fall into buckets
   * by a hash of their id, so a page spreads evenly), not for a whole page each: 16 buckets
   * returned 16 pages of members for one page. A bucket that gave all it was asked for and whose
   * last member still falls within the page may hold more that belong in it: it alone is asked
   * again, for a whole page past its last member, after which every bucket either has no more or
   * has its last member past the page, so the merge is exact. Two round trips at most.
   */
  private async mergePages(keyOf: (bucket: number) => string, limit: number, cursor: string | undefined, ascending = false) {
    const want = limit + 1;
    const buckets = this.keys.all();
    const range = (b: number, after: string | undefined, count: number) =>
      ascending
        ? this.client.zrangebylex(keyOf(b), after === undefined ? "-" : `(${after}`, "+", "LIMIT", 0, count)
        : this.client.zrevrangebylex(keyOf(b), after === undefined ? "+" : `(${after}`, "-", "LIMIT", 0, count);
    const share = Math.min(want, 2 * Math.ceil(want / buckets.length) + 1);
    const lists = await Promise.all(buckets.map((b) => range(b, cursor, share)));
    // Whether a bucket may hold members past its list (it gave all it was asked for).
    const open = lists.map((members) => members.length === share && share < want);
    const order = ascending ? 1 : -1;
    const compare = (a: { member: string }, b: { member: string }) => (a.member < b.member ? -order : a.member > b.member ? order : 0);
    const merge = () =>
      lists
        .flatMap((members, bucket) => members.map((member) => ({ bucket, member })))
        .sort(compare)
        .slice(0, want);
    let merged = merge();
    const last = (bucket: number) => lists[bucket]![lists[bucket]!.length - 1]!;
    const inPage = new Set(merged.map((m) => m.member));
    const again = buckets.filter((b) => open[b] && inPage.has(last(b)));
    if (again.length > 0) {
      const more = await Promise.all(again.map((b) => range(b, last(b), want)));
      again.forEach((b, i) => lists[b]!.push(...more[i]!));
      merged = merge();
    }
    return { top: merged.slice(0, limit), more: merged.length > limit };
  }

  // ---- watch ----

  subscribe(
    onReview: (decision: Decision) => void,
    onError: (err: Error) => void,
    onLive?: () => void,
    onUpdate?: (decision: Decision) => void,
  ): Unsubscribe {
    if (this.closed) {
      queueMicrotask(() => onError(new UnavailableError("the store is closed")));
      return () => undefined;
    }
    return this.feed.subscribe(onReview, onError, onLive, onUpdate);
  }

  // ---- the store's clock and the sweeper ----

  /** The Redis server's clock, as last measured: what "expired" is judged by when reading. */
  private now(): Date {
    return new Date(Date.now() + this.clockOffsetMs);
  }

  /**
   * Measures the Redis server's clock (TIME) against this process's, as of the reply's arrival:
   * TIME was read at some moment of the round trip, so this estimate is never ahead of the server.
   * A read then shows a decision expired only once the scripts' TIME finds it due too, and a change
   * written after that read cannot be applied to it (a midpoint estimate could be ahead by half a
   * slow round trip).
   */
  private async refreshClock(): Promise<void> {
    const [seconds, micros] = (await this.client.call("TIME")) as [string, string];
    this.clockOffsetMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - Date.now();
  }

  /** A stored decision as it reads now: a pending one past its expiry by the server's clock reads expired. */
  private decode(fields: DecisionReadFields): Decision | undefined {
    const d = decodeDecision(fields, this.o.verdicts);
    return d && asOf(d, this.now());
  }

  /**
   * Every replica sweeps, every `sweepMs` to 2×`sweepMs` (random, so that replicas do not sweep in
   * step): it measures the server's clock, expires a batch of due decisions (at once again when the
   * batch was full), and every few sweeps indexes decisions that a replica of layout 1 stored
   * without a status. Failures (Redis away) are left to the next sweep; health reports them.
   */
  private startSweeper(): void {
    const schedule = (ms: number) => {
      if (this.closed) return;
      this.sweepTimer = setTimeout(() => {
        this.sweeping = this.sweep().then(schedule);
      }, ms);
      this.sweepTimer.unref();
    };
    schedule(this.sweepDelay());
  }

  private sweepDelay(): number {
    return this.o.sweepMs * (1 + Math.random());
  }

  /** One sweep; answers how long to wait before the next. */
  private async sweep(): Promise<number> {
    if (this.closed) return 0;
    let full = false;
    try {
      await this.op("sweep", async () => {
        await this.refreshClock();
        full = (await this.expireDueNow(this.o.sweepBatch)) >= this.o.sweepBatch;
      });
      if (++this.sweeps % CATCH_UP_EVERY === 0) {
        await this.op("catchUp", async () => {
          const gaps = await this.statusGaps();
          for (const b of this.keys.all()) if (gaps[b]! > 0) await this.backfillStatus(b, 2);
        });
      }
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "expiry sweep failed; the next one retries");
    }
    return full ? 0 : this.sweepDelay();
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
    clearTimeout(this.sweepTimer);
    // A sweep under way finishes (each of its calls is bounded) before the connection goes.
    await this.sweeping?.catch(() => undefined);
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


function typeOf(word: string): DecisionType {
  if (!(DECISION_TYPES as readonly string[]).includes(word)) throw new Error(`stored decision type ${JSON.stringify(word)} is unknown`);
  return word as DecisionType;
}

/** Runs `fn` on every item, at most `limit` at a time; fails with the first failure. */
async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The length of a decision's sized fields. */
function sizedLength(fields: DecisionReadFields): number {
  let n = 0;
  for (const f of DECISION_SIZED_FIELDS) n += fields[f]?.length ?? 0;
  return n;
}

function checkCursor(cursor: string | undefined, shape: RegExp): string | undefined {
  if (cursor === undefined) return undefined;
  if (cursor.length > MAX_CURSOR || !shape.test(cursor)) throw new InvalidArgumentError("page_token", "is malformed");
  return cursor;
}
