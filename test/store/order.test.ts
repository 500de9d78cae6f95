/**
 * One clock for order (issue 7, item 1): listings and lessons are ordered by the store (a counter in
 * the in-process store; the Redis server's TIME in µs, strictly increasing per bucket, in Redis),
 * never by a replica's clock. Run on both stores, through the Council (where a replica's clock is
 * injected), with real redis-server processes for Redis.
 */
import { expect } from "chai";
import { Redis } from "ioredis";
import { Council } from "../../src/app/council.js";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS } from "../../src/domain/principal.js";
import type { Decision } from "../../src/domain/model.js";
import { PRESETS } from "../../src/domain/presets.js";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { encodeDecision } from "../../src/store/redis_codec.js";
import { RedisStore } from "../../src/store/redis.js";
import type { Store } from "../../src/store/store.js";
import { decision, suggestion, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";

const log = createLogger("silent");
const HOUR = 3_600_000;

/** A replica: a Council with its own clock on a store of the shared keyspace. */
const replica = (store: Store, now?: () => Date) => new Council(store, PRESETS.default, { now });

async function reviewOn(council: Council): Promise<Decision> {
  const result = await council.review({ suggestion: suggestion(), requestId: "", dryRun: false, principal: ANONYMOUS }, async () => undefined);
  expect(result.stored).to.equal(true);
  return result.decision;
}

async function allIds(council: Council, pageSize: number): Promise<string[]> {
  const ids: string[] = [];
  let token = "";
  for (let page = 0; page < 1000; page++) {
    const got = await council.listDecisions({ suggestionId: "" }, pageSize, token);
    ids.push(...got.items.map((d) => d.id));
    if (!got.nextPageToken) return ids;
    token = got.nextPageToken;
  }
  throw new Error("paging did not end");
}

interface Keyspace {
  /** Two stores of one keyspace (two replicas; for the in-process store, the same store twice). */
  stores: [Store, Store];
  close(): Promise<void>;
}

function orderContract(name: string, open: () => Promise<Keyspace>): void {
  describe(`One clock for order: ${name}`, function () {
    this.timeout(30_000);
    let ks: Keyspace;
    beforeEach(async () => {
      ks = await open();
    });
    afterEach(async () => {
      await ks.close();
    });

    it("lists reviews made one after another in exactly the reverse order, even when the clock stands still", async () => {
      // A clock that does not move (a coarse or stalled clock): every decided_at is the same.
      const frozen = new Date("2026-05-01T12:00:00.000Z");
      const council = replica(ks.stores[0], () => frozen);
      const made: string[] = [];
      for (let i = 0; i < 20; i++) made.push((await reviewOn(council)).id);
      const newestFirst = [...made].reverse();
      expect(await allIds(council, 500)).to.deep.equal(newestFirst);
      expect(await allIds(council, 3)).to.deep.equal(newestFirst);
    });

    it("files a review from a replica whose clock is an hour behind as new, not old; lessons too", async () => {
      const onTime = replica(ks.stores[0]);
      const behind = replica(ks.stores[1], () => new Date(Date.now() - HOUR));
      const made: Decision[] = [];
      for (const council of [onTime, behind, onTime, behind]) made.push(await reviewOn(council));
      expect(made[1]!.decidedAt.getTime()).to.be.below(made[0]!.decidedAt.getTime() - HOUR / 2); // decided_at stays the replica's
      const newestFirst = made.map((d) => d.id).reverse();
      expect(await allIds(onTime, 500)).to.deep.equal(newestFirst);
      expect(await allIds(behind, 1)).to.deep.equal(newestFirst);

      // Lessons: recorded on the replica that is on time, then on the one behind.
      await onTime.recordOutcome({ decisionId: made[0]!.id, outcome: "success", notes: "", lessons: "first", requestId: "", principal: ANONYMOUS });
      await behind.recordOutcome({ decisionId: made[1]!.id, outcome: "failure", notes: "", lessons: "second", requestId: "", principal: ANONYMOUS });
      await onTime.recordOutcome({ decisionId: made[2]!.id, outcome: "partial", notes: "", lessons: "third", requestId: "", principal: ANONYMOUS });
      const lessons = await onTime.listLessons(500, "");
      expect(lessons.items.map((l) => l.lessons)).to.deep.equal(["third", "second", "first"]);
      const firstPage = await behind.listLessons(1, "");
      const rest = await behind.listLessons(500, firstPage.nextPageToken);
      expect([...firstPage.items, ...rest.items].map((l) => l.lessons)).to.deep.equal(["third", "second", "first"]);
    });
  });
}

orderContract("in-process", async () => {
  const store = new MemoryStore();
  return { stores: [store, store], close: () => store.close() };
});

describe("One clock for order: redis", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  after(async () => {
    redis?.disconnect();
    await server?.destroy();
  });

  const openReplicas = async (prefix = `${unique("ord")}:`, buckets = 8): Promise<Keyspace & { stores: [RedisStore, RedisStore] }> => {
    const a = await RedisStore.open({ url: server.url, prefix, log, buckets });
    const b = await RedisStore.open({ url: server.url, prefix, log, buckets });
    return { stores: [a, b], close: async () => void (await Promise.all([a.close(), b.close()])) };
  };

  // The same tests, each replica with its own connection to one keyspace of 8 buckets.
  describe("(two replicas)", () => orderContract("redis", () => openReplicas()));

  it("gives the index, the lesson and the event one time from the server, strictly increasing within a bucket", async () => {
    const ks = await openReplicas(undefined, 1);
    try {
      const [store] = ks.stores;
      const k = store.keys;
      // The bucket's last time is 10 s ahead (as after the server's clock stepped back): the next
      // review and lesson still come after it.
      const ahead = (Date.now() + 10_000) * 1000;
      await redis.hset(k.counts(0), "last_us", String(ahead));
      const council = replica(store);
      const d = await reviewOn(council);
      await council.recordOutcome({ decisionId: d.id, outcome: "success", notes: "", lessons: "l", requestId: "", principal: ANONYMOUS });
      const [member] = await redis.zrange(k.index(0, {}), "0", "-1");
      const [lesson] = await redis.zrange(k.lessons(0), "0", "-1");
      const us = (m: string) => {
        const [, ms, frac] = /^(\d{15})\.(\d{3}):/.exec(m)!;
        return Number(ms) * 1000 + Number(frac);
      };
      expect(member).to.match(new RegExp(`^\\d{15}\\.\\d{3}:${d.id}$`));
      expect(us(member!)).to.equal(ahead + 1);
      expect(lesson).to.match(new RegExp(`^\\d{15}\\.\\d{3}:${d.id}:000000000001$`));
      expect(us(lesson!)).to.equal(ahead + 2);
      expect(await redis.hget(k.counts(0), "last_us")).to.equal(String(ahead + 2));
      const events = await redis.xrange(k.events(0), "-", "+");
      expect(events).to.have.length(1);
      const fields = events[0]![1];
      expect(fields[fields.indexOf("us") + 1]).to.equal(String(ahead + 1));
    } finally {
      await ks.close();
    }
  });

  it("reads a keyspace written before (members of replica ms): old and new entries list and page in order", async () => {
    const ks = await openReplicas(undefined, 4);
    try {
      const [store] = ks.stores;
      const k = store.keys;
      // Two decisions and a lesson as the previous version stored them: `<15-digit ms>:<id>`.
      const old = [decision({ decidedAt: new Date(Date.now() - 2000) }), decision({ decidedAt: new Date(Date.now() - 1000) })];
      for (const d of old) {
        const b = k.bucketOfId(d.id);
        const f = encodeDecision(d);
        await redis.hset(k.decision(b, d.id), { ...f });
        const member = `${String(d.decidedAt.getTime()).padStart(15, "0")}:${d.id}`;
        for (const filter of [{}, { decisionType: d.decision }, { suggestionId: d.suggestionId }, { decisionType: d.decision, suggestionId: d.suggestionId }]) {
          await redis.zadd(k.index(b, filter), 0, member);
        }
        await redis.hincrby(k.counts(b), "total", 1);
      }
      const ob = k.bucketOfId(old[0]!.id);
      const oldLesson = `${String(Date.now() - 1500).padStart(15, "0")}:${old[0]!.id}:000000000001`;
      await redis.zadd(k.lessons(ob), 0, oldLesson);
      await redis.hset(k.lessonDocs(ob), oldLesson, JSON.stringify({ decisionId: old[0]!.id, outcome: "success", lessons: "old", notes: "", recordedAt: Date.now() - 1500 }));
      await redis.hincrby(k.counts(ob), "lessons", 1);

      const council = replica(store);
      const fresh = [await reviewOn(council), await reviewOn(council)];
      const newestFirst = [...old, ...fresh].map((d) => d.id).reverse();
      expect(await allIds(council, 1)).to.deep.equal(newestFirst);
      expect(await allIds(council, 500)).to.deep.equal(newestFirst);

      await council.recordOutcome({ decisionId: fresh[0]!.id, outcome: "success", notes: "", lessons: "new", requestId: "", principal: ANONYMOUS });
      const first = await council.listLessons(1, "");
      const rest = await council.listLessons(1, first.nextPageToken);
      expect([...first.items, ...rest.items].map((l) => l.lessons)).to.deep.equal(["new", "old"]);
      expect(rest.nextPageToken).to.equal("");
    } finally {
      await ks.close();
    }
  });

  it("orders a review with a request_id by the store too (its bucket is fixed by the id)", async () => {
    const ks = await openReplicas(undefined, 16);
    try {
      const behind = replica(ks.stores[1], () => new Date(Date.now() - HOUR));
      const onTime = replica(ks.stores[0]);
      const a = await onTime.review({ suggestion: suggestion(), requestId: unique("req"), dryRun: false, principal: ANONYMOUS }, async () => undefined);
      const b = await behind.review({ suggestion: suggestion(), requestId: unique("req"), dryRun: false, principal: ANONYMOUS }, async () => undefined);
      expect(b.decision.id).to.equal(decisionIdForRequest(b.decision.submittedBy, b.decision.requestId));
      expect(await allIds(onTime, 500)).to.deep.equal([b.decision.id, a.decision.id]);
    } finally {
      await ks.close();
    }
  });
});
