/**
 * Errors classified at the store boundary, through gRPC on a real redis-server: stored data the
 * code cannot read is DATA_LOSS or INTERNAL (never UNAVAILABLE, which every client retries), and
 * whatever the cause, the client reads a fixed message with no Redis text in it — no reply, no key,
 * no script sha. The details stay in the error the server logs. Redis refusing writes for lack of
 * memory is UNAVAILABLE, with a fixed message too.
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { DataLossError, InternalError, UnavailableError } from "../../src/domain/errors.js";
import type { Keyspace } from "../../src/store/keys.js";
import type { RedisStore } from "../../src/store/redis.js";
import { UNAVAILABLE } from "../../src/store/redis_errors.js";
import { DATA_LOSS_MESSAGE, INTERNAL_MESSAGE } from "../../src/server/status.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, type Running } from "../support/server.js";
import { startReplica } from "./helpers.js";

/** Text that would betray Redis to a client: reply codes, script names and hashes, key names. */
const REDIS_TEXT = /OOM|WRONGTYPE|\bERR\b|[0-9a-f]{40}|:|\{|maxmemory|[Ss]cript|JSON|version/;

function expectFixed(err: ServiceError | undefined, code: status, details: string): void {
  expect(err, "the call should fail").to.not.equal(undefined);
  expect(err!.code, err!.details).to.equal(code);
  expect(err!.details).to.equal(details);
  expect(err!.details).to.not.match(REDIS_TEXT);
}

/**
 * The same for the error that ends a ReviewSuggestion stream. A stream whose last vote is still on
 * its way when the error comes may be reset instead of sent trailers (src/server/calls.ts
 * endWithStatus): the code is the same, the details are then the transport's own words.
 */
function expectStreamFixed(err: ServiceError | undefined, code: status, details: string): void {
  expect(err, "the stream should fail").to.not.equal(undefined);
  expect(err!.code, err!.details).to.equal(code);
  if (err!.details !== details) expect(err!.details).to.match(/^(Received RST_STREAM with code \d+|Stream refused by server)/);
  expect(err!.details.replace(/^Received RST_STREAM with code \d+ \(Internal server error\)$/, "")).to.not.match(REDIS_TEXT);
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: ServiceError) => e,
  );

describe("Errors classified at the Redis store boundary, through gRPC", function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let council: Running;
  let direct: Redis;
  let keys: Keyspace;
  let store: RedisStore;

  before(async () => {
    redis = await RedisServer.start();
    council = await startReplica(redis.url, `${unique("err")}:`, { buckets: 1 });
    store = council.store as RedisStore;
    keys = store.keys;
    direct = new Redis({ port: redis.port, lazyConnect: true });
    await direct.connect();
  });
  after(async () => {
    direct?.disconnect();
    await council?.stop();
    await redis?.destroy();
  });

  /** Stores a review and returns its decision id. */
  async function stored(requestId = ""): Promise<string> {
    const r = await review(council.client, { suggestion: wireSuggestion(), requestId });
    expect(r.error).to.equal(undefined);
    return r.events[0]!.decisionId;
  }
  const docKey = (id: string) => keys.decision(keys.bucketOfId(id), id);
  const c = () => council.client;
  const list = () => call(c(), c().listDecisions, { decisionType: 0, suggestionId: "", pageSize: 50, pageToken: "", status: 0, oldestFirst: false });

  it("a decision doc that is not JSON: DATA_LOSS on GetDecision and ListDecisions, details only in the server's error", async () => {
    const id = await stored();
    const good = await direct.hget(docKey(id), "doc");
    await direct.hset(docKey(id), "doc", "{\"v\":1,\"id\":");
    try {
      expectFixed(await failure(call(c(), c().getDecision, { id })), status.DATA_LOSS, DATA_LOSS_MESSAGE);
      expectFixed(await failure(list()), status.DATA_LOSS, DATA_LOSS_MESSAGE);
      const err = await store.getDecision(id).then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(DataLossError);
      expect(err!.message).to.include("not valid JSON");
    } finally {
      await direct.hset(docKey(id), "doc", good!);
    }
  });

  it("a decision doc of a version this code cannot read: INTERNAL, not UNAVAILABLE", async () => {
    const id = await stored();
    const good = (await direct.hget(docKey(id), "doc"))!;
    await direct.hset(docKey(id), "doc", JSON.stringify({ ...JSON.parse(good), v: 2 }));
    try {
      expectFixed(await failure(call(c(), c().getDecision, { id })), status.INTERNAL, INTERNAL_MESSAGE);
      expectFixed(await failure(list()), status.INTERNAL, INTERNAL_MESSAGE);
      const err = await store.getDecision(id).then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(InternalError);
      expect(err!.message).to.include("version 2");
    } finally {
      await direct.hset(docKey(id), "doc", good);
    }
  });

  it("a key of the wrong type: INTERNAL, with Redis's WRONGTYPE reply only in the server's error", async () => {
    const id = await stored();
    const saved = await direct.hgetall(docKey(id));
    await direct.del(docKey(id));
    await direct.set(docKey(id), "not a hash");
    try {
      expectFixed(await failure(call(c(), c().getDecision, { id })), status.INTERNAL, INTERNAL_MESSAGE);
      const err = await store.getDecision(id).then(() => undefined, (e: Error) => e);
      expect(err).to.be.instanceOf(InternalError);
      expect(err!.message).to.include("WRONGTYPE");
    } finally {
      await direct.del(docKey(id));
      await direct.hset(docKey(id), saved);
    }
  });

  it("a script that fails (its bucket's counters are not a hash): INTERNAL, no script sha or line reaches the client", async () => {
    const counts = keys.counts(0);
    const saved = await direct.hgetall(counts);
    await direct.del(counts);
    await direct.set(counts, "not a hash");
    try {
      const r = await review(c(), { suggestion: wireSuggestion(), requestId: unique("req") });
      expectStreamFixed(r.error, status.INTERNAL, INTERNAL_MESSAGE);
      expect(r.events.map((e) => e.event?.$case)).to.not.include("decision");
    } finally {
      await direct.del(counts);
      if (Object.keys(saved).length > 0) await direct.hset(counts, saved);
    }
  });

  it("an index entry or a request id naming a decision that is gone: DATA_LOSS", async () => {
    const requestId = unique("req");
    const suggestion = wireSuggestion();
    const first = await review(c(), { suggestion, requestId });
    const id = first.events[0]!.decisionId;
    const saved = await direct.hgetall(docKey(id));
    await direct.del(docKey(id));
    try {
      expectFixed(await failure(list()), status.DATA_LOSS, DATA_LOSS_MESSAGE);
      const replay = await review(c(), { suggestion, requestId });
      expectStreamFixed(replay.error, status.DATA_LOSS, DATA_LOSS_MESSAGE);
      expect(await failure(call(c(), c().getDecision, { id }))).to.have.property("code", status.NOT_FOUND);
    } finally {
      await direct.hset(docKey(id), saved);
    }
  });

  it("Redis out of memory (maxmemory, noeviction): UNAVAILABLE with a fixed message, no `OOM command not allowed` or script sha", async () => {
    const id = await stored(); // the scripts are loaded: the OOM comes from inside them
    await direct.config("SET", "maxmemory-policy", "noeviction");
    await direct.config("SET", "maxmemory", "1");
    try {
      const r = await review(c(), { suggestion: wireSuggestion(), requestId: unique("req") });
      expectStreamFixed(r.error, status.UNAVAILABLE, UNAVAILABLE.full);
      const o = await failure(call(c(), c().recordOutcome, { decisionId: id, outcome: 1, notes: "n", lessons: "l", requestId: unique("req") }));
      expectFixed(o, status.UNAVAILABLE, UNAVAILABLE.full);
      // Reads still work.
      expect((await list()).decisions.length).to.be.greaterThan(0);
      const err = await store.summary().then(() => undefined, (e: Error) => e);
      expect(err).to.equal(undefined);
    } finally {
      await direct.config("SET", "maxmemory", "0");
    }
    const again = await review(c(), { suggestion: wireSuggestion(), requestId: unique("req") });
    expect(again.error).to.equal(undefined);
  });

  it("the store's own errors keep the details for the log: the typed error names the cause", async () => {
    const copy = { ...(await store.getDecision(await stored()))!, id: `dec-${unique("x")}`, requestId: "" };
    await direct.config("SET", "maxmemory-policy", "noeviction");
    await direct.config("SET", "maxmemory", "1");
    try {
      const err = await store.saveReview(copy, "fp").then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).to.be.instanceOf(UnavailableError);
      expect(err!.message).to.equal(UNAVAILABLE.full);
      expect(String((err as Error & { cause?: Error }).cause?.message)).to.match(/^OOM command not allowed/);
    } finally {
      await direct.config("SET", "maxmemory", "0");
    }
  });
});
