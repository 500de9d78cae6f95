/**
 * The Lua scripts against a real redis-server (issue 7, items 3 and 10):
 *
 * - Each script checks everything, then writes: a key the script writes late that has the wrong
 *   type (or a counter that is not an integer) fails the call with INTERNAL and leaves nothing
 *   behind, so that the retry with the same request_id, once the key is fixed, really stores or
 *   records (before, the request id was taken first, and the retry was told "done").
 * - A save whose reply is lost, re-sent by ioredis on the new connection, is "stored", not
 *   "replayed": each call carries its own operation id, kept with the request id.
 */
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS, ANONYMOUS_NAME } from "../../src/domain/principal.js";
import type { DecisionType as DomainDecisionType } from "../../src/domain/model.js";
import type { ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType, Outcome } from "../../src/gen/council/v1/review.js";
import type { Keyspace } from "../../src/store/keys.js";
import { RedisStore } from "../../src/store/redis.js";
import { suggestion, unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp_proxy.js";
import { call, review, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { silent, startReplica } from "./helpers.js";
import { Council } from "../../src/app/council.js";
import { PRESETS } from "../../src/domain/presets.js";

/** The decision a ReviewSuggestion stream ended with. */
const decisionOf = (events: ReviewSuggestionResponse[]) => {
  const last = events.at(-1)?.event;
  if (last?.$case !== "decision") throw new Error("the stream did not end with a decision");
  return last.value;
};

const domainType = (t: DecisionType): DomainDecisionType =>
  DecisionType[t]!.replace(/^DECISION_TYPE_/, "").toLowerCase() as DomainDecisionType;

/** Breaks one key in a bucket; returns what puts it back. */
type Breaker = (redis: Redis, keys: Keyspace, bucket: number, at: { suggestionId: string; type: DomainDecisionType }) => Promise<() => Promise<unknown>>;

/** Replaces `key` with a string (keeping what it held aside); the fix puts it back. */
const notOfItsType =
  (keyOf: (keys: Keyspace, bucket: number, at: { suggestionId: string; type: DomainDecisionType }) => string): Breaker =>
  async (redis, keys, bucket, at) => {
    const key = keyOf(keys, bucket, at);
    const aside = `${key}:aside`;
    const held = (await redis.exists(key)) === 1;
    if (held) await redis.rename(key, aside);
    await redis.set(key, "not what a script expects");
    return async () => {
      await redis.del(key);
      if (held) await redis.rename(aside, key);
    };
  };

/** Makes one field of the bucket's counters hash a word instead of an integer. */
const notAnInteger =
  (fieldOf: (at: { type: DomainDecisionType }) => string): Breaker =>
  async (redis, keys, bucket, at) => {
    const field = fieldOf(at);
    const was = await redis.hget(keys.counts(bucket), field);
    await redis.hset(keys.counts(bucket), field, "many");
    return () => (was === null ? redis.hdel(keys.counts(bucket), field) : redis.hset(keys.counts(bucket), field, was));
  };

const saveBreakers: [string, Breaker][] = [
  ["the index by suggestion is not a sorted set", notOfItsType((k, b, at) => k.index(b, { suggestionId: at.suggestionId }))],
  ["the index by type and suggestion is not a sorted set", notOfItsType((k, b, at) => k.index(b, { decisionType: at.type, suggestionId: at.suggestionId }))],
  ["the counter of its type is not an integer", notAnInteger((at) => `type:${at.type}`)],
  ["the order of the bucket is not an integer", notAnInteger(() => "last_us")],
  ["the event stream is not a stream", notOfItsType((k, b) => k.events(b))],
];

const outcomeBreakers: [string, Breaker][] = [
  ["the lessons index is not a sorted set", notOfItsType((k, b) => k.lessons(b))],
  ["the lesson documents are not a hash", notOfItsType((k, b) => k.lessonDocs(b))],
  ["the counter of the new outcome is not an integer", notAnInteger(() => "outcome:success")],
  ["the lessons counter is not an integer", notAnInteger(() => "lessons")],
];

describe("Lua scripts check everything before they write", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  let r: Running;
  let keys: Keyspace;

  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    r = await startReplica(server.url, `${unique("lua")}:`, { buckets: 4 });
    keys = (r.store as RedisStore).keys;
  });
  after(async () => {
    await r?.stop();
    redis?.disconnect();
    await server?.destroy();
  });

  const summary = () => call(r.client, r.client.getSummary, {});
  const getDecision = (id: string) => call(r.client, r.client.getDecision, { id });
  const listed = async (filter: { suggestionId?: string; decisionType?: DecisionType }) =>
    (await call(r.client, r.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 500, pageToken: "", status: 0, oldestFirst: false, ...filter })).decisions.map((d) => d.id);

  for (const [name, breakIt] of saveBreakers) {
    it(`ReviewSuggestion when ${name}: INTERNAL, nothing written, and the retry stores it`, async () => {
      const s = wireSuggestion();
      const requestId = unique("req");
      const id = decisionIdForRequest(ANONYMOUS_NAME, requestId);
      const dry = await review(r.client, { suggestion: s, dryRun: true });
      const wireType = decisionOf(dry.events).decision;
      const bucket = keys.bucketOfId(id);
      const before = await summary();
      const fix = await breakIt(redis, keys, bucket, { suggestionId: s.id, type: domainType(wireType) });

      try {
        const failed = await review(r.client, { suggestion: s, requestId });
        expect(failed.error?.code, failed.error?.details).to.equal(status.INTERNAL);
        const missing = await getDecision(id).catch((e: { code: number }) => e.code);
        expect(missing, "a decision was written").to.equal(status.NOT_FOUND);
        expect(await redis.exists(keys.request(bucket, ANONYMOUS_NAME, requestId)), "the request id was taken").to.equal(0);
      } finally {
        await fix();
      }
      expect(await summary()).to.deep.equal(before);
      const retry = await review(r.client, { suggestion: s, requestId });
      expect(retry.error).to.equal(undefined);
      expect(decisionOf(retry.events).id).to.equal(id);
      expect((await getDecision(id)).decision!.id).to.equal(id);
      expect(await listed({ suggestionId: s.id })).to.deep.equal([id]);
      expect(await listed({ suggestionId: s.id, decisionType: wireType })).to.deep.equal([id]);
      expect(await listed({})).to.include(id);
      const after = await summary();
      expect(after.totalDecisions).to.equal(before.totalDecisions + 1);
      expect(after.byType[domainType(wireType)]).to.equal((before.byType[domainType(wireType)] ?? 0) + 1);
    });
  }

  for (const [name, breakIt] of outcomeBreakers) {
    it(`RecordOutcome when ${name}: INTERNAL, nothing written, and the retry records it`, async () => {
      const s = wireSuggestion();
      const stored = await review(r.client, { suggestion: s, requestId: unique("req") });
      const id = decisionOf(stored.events).id;
      const type = domainType(decisionOf(stored.events).decision);
      const bucket = keys.bucketOfId(id);
      const before = await summary();
      const lessonsBefore = await redis.zcard(keys.lessons(bucket)).catch(() => 0);
      const fix = await breakIt(redis, keys, bucket, { suggestionId: s.id, type });
      const requestId = unique("oreq");
      const record = () => call(r.client, r.client.recordOutcome, { decisionId: id, outcome: Outcome.OUTCOME_SUCCESS, notes: "n", lessons: "learnt", requestId });

      try {
        const code = await record().then(
          () => status.OK,
          (e: { code: number }) => e.code,
        );
        expect(code).to.equal(status.INTERNAL);
        expect((await getDecision(id)).decision!.outcome).to.equal(Outcome.OUTCOME_UNSPECIFIED);
        expect(await redis.exists(keys.outcomeRequest(bucket, id, ANONYMOUS_NAME, requestId)), "the request id was taken").to.equal(0);
      } finally {
        await fix();
      }
      expect(await summary()).to.deep.equal(before);
      expect(await redis.zcard(keys.lessons(bucket))).to.equal(lessonsBefore);

      const retry = await record();
      expect(retry.decision!.outcome).to.equal(Outcome.OUTCOME_SUCCESS);
      expect((await getDecision(id)).decision!.outcome).to.equal(Outcome.OUTCOME_SUCCESS);
      const lessons = await call(r.client, r.client.listLessons, { pageSize: 1, pageToken: "" });
      expect(lessons.lessons[0]).to.deep.include({ decisionId: id, lessons: "learnt" });
      const after = await summary();
      expect(after.learningEntries).to.equal(before.learningEntries + 1);
      expect(after.outcomes.success).to.equal((before.outcomes.success ?? 0) + 1);
      expect(after.outcomes.pending).to.equal((before.outcomes.pending ?? 0) - 1);
    });
  }
});

/**
 * A proxy in front of Redis that can lose one reply: once armed with a marker, it forwards the
 * command that carries the marker, and when Redis's answer on that connection says `stored`, it
 * drops the answer and cuts the connection, as a network failure would.
 */
class ReplyCutter {
  private marker: string | undefined;
  cuts = 0;

  private constructor(private readonly proxy: TcpProxy) {}

  get port(): number {
    return this.proxy.port;
  }

  static async start(redisPort: number): Promise<ReplyCutter> {
    let self!: ReplyCutter;
    const proxy = await startTcpProxy(redisPort, (client, upstream) => {
      let carried = false;
      client.on("data", (chunk: Buffer) => {
        if (self.marker !== undefined && chunk.includes(self.marker)) carried = true;
        upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        if (carried && self.marker !== undefined && chunk.includes("stored")) {
          self.marker = undefined;
          self.cuts += 1;
          client.destroy();
          upstream.destroy();
          return;
        }
        client.write(chunk);
      });
    });
    self = new ReplyCutter(proxy);
    return self;
  }

  /** Loses the reply to the next command that carries `marker` and is answered "stored". */
  arm(marker: string): void {
    this.marker = marker;
  }

  close(): Promise<void> {
    return this.proxy.close();
  }
}

describe("A save whose reply is lost and that ioredis sends again", function () {
  this.timeout(30_000);
  let server: RedisServer;
  let cutter: ReplyCutter;
  let store: RedisStore;

  before(async () => {
    server = await RedisServer.start();
    cutter = await ReplyCutter.start(server.port);
    store = await RedisStore.open({ url: `redis://127.0.0.1:${cutter.port}`, prefix: `${unique("resend")}:`, log: silent, healthIntervalMs: 60_000 });
  });
  after(async () => {
    await store?.close();
    await cutter?.close();
    await server?.destroy();
  });

  it("is stored once and counted as stored, not replayed", async () => {
    const council = new Council(store, PRESETS.default);
    // One review first, so that the script is loaded and the next call is one EVALSHA.
    await council.review({ suggestion: suggestion(), requestId: unique("req"), dryRun: false, principal: ANONYMOUS }, async () => undefined);
    const before = (await store.summary()).totalDecisions;

    const requestId = unique("req");
    cutter.arm(requestId);
    const result = await council.review({ suggestion: suggestion(), requestId, dryRun: false, principal: ANONYMOUS }, async () => undefined);
    expect(cutter.cuts, "no reply was lost").to.equal(1);
    expect(result).to.deep.include({ stored: true, replayed: false });
    expect(result.decision.id).to.equal(decisionIdForRequest(ANONYMOUS_NAME, requestId));
    await waitFor(() => store.isHealthy(), { what: "the store to be connected again" });
    expect((await store.summary()).totalDecisions).to.equal(before + 1);
    // A later call with the same request id is a repeat: that one is replayed.
    const again = await council.review(
      { suggestion: result.decision.suggestion, requestId, dryRun: false, principal: ANONYMOUS },
      async () => undefined,
    );
    expect(again).to.deep.include({ stored: false, replayed: true });
  });
});
