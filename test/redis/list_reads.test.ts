/**
 * How the Redis store reads a page of ListDecisions: a range read per bucket for the index (about
 * twice each bucket's share of the page, then more only from a bucket that may hold more of it),
 * and one read_decisions.lua call for the decisions themselves, not an HSTRLEN per sized field and
 * an HGETALL per decision (216 commands for a page of 50). These tests hold what that must keep:
 * the merge is exact however the page falls into buckets, a page of large decisions is not read
 * whole, every stored field reads as GetDecision (HGETALL) reads it, and Redis forgetting its
 * scripts costs nothing. GetSummary reads every bucket's counters and whether anything is due to
 * expire in one call, and a listing by status checks for due decisions alongside its index read:
 * on one Redis and on a cluster (one call per bucket there), what is due is still expired before
 * it is counted or listed by status.
 */
import { expect } from "chai";
import { Redis } from "ioredis";
import { newDecisionId } from "../../src/domain/identity.js";
import { LIMITS } from "../../src/domain/limits.js";
import type { Decision } from "../../src/domain/model.js";
import { Keyspace } from "../../src/store/keys.js";
import { RedisStore } from "../../src/store/redis.js";
import { suggestionAtLimits } from "../support/at_limits.js";
import { decision, pendingDecision, suggestion, unique } from "../support/fixtures.js";
import { RedisCluster, RedisServer } from "../support/redis.js";
import { waitFor } from "../support/wait.js";
import { silent } from "./helpers.js";

/** Calls per command since the last CONFIG RESETSTAT (INFO commandstats). */
async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const info = await redis.info("commandstats");
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([a-z|]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

/** Every page of a listing, with `limit` items a page. */
async function walk(store: RedisStore, limit: number, oldestFirst = false, maxBytes?: number): Promise<Decision[][]> {
  const pages: Decision[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 1000; i++) {
    const page = await store.listDecisions({}, { limit, cursor, oldestFirst, maxBytes });
    pages.push(page.items);
    cursor = page.next;
    if (cursor === undefined) return pages;
  }
  throw new Error("paging did not end");
}

describe("Redis store: how a page of decisions is read", function () {
  this.timeout(120_000);
  let server: RedisServer;
  let redis: Redis;
  // The sweeper waits a minute or more, so that its commands do not mix with those counted here.
  const open = (prefix = `${unique("reads")}:`) => RedisStore.open({ url: server.url, prefix, log: silent, sweepMs: 60_000 });

  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.url);
  });
  after(async () => {
    redis?.disconnect();
    await server?.destroy();
  });

  it("reads a page of 50 with one range read per bucket and one script call, not an HGETALL and HSTRLENs per decision", async () => {
    const store = await open();
    try {
      await Promise.all(Array.from({ length: 400 }, () => store.saveReview(decision(), "fp")));
      await store.listDecisions({}, { limit: 50 }); // loads the script
      await redis.config("RESETSTAT");
      const pages = 10;
      let cursor: string | undefined;
      for (let i = 0; i < pages; i++) {
        const page = await store.listDecisions({}, { limit: 50, cursor, maxBytes: LIMITS.pageBytes });
        expect(page.items).to.have.length(50);
        cursor = page.next;
      }
      // Commandstats counts the commands a script runs too: one HSTRLEN (the doc's length) and one
      // HMGET per decision, all inside one script call per page.
      const calls = await commandCalls(redis);
      expect((calls.evalsha ?? 0) + (calls.eval ?? 0), "script calls").to.equal(pages);
      expect(calls.hgetall ?? 0, "HGETALL").to.equal(0);
      expect(calls.hstrlen ?? 0, "HSTRLEN").to.equal(50 * pages);
      expect(calls.hmget ?? 0, "HMGET").to.equal(50 * pages);
      // 16 buckets; a bucket is read a second time only when the page may hold more of it.
      expect(calls.zrevrangebylex ?? 0, "index range reads").to.be.within(16 * pages, 16 * pages + 4 * pages);
      // A larger page is read 64 decisions a call, so that no call holds Redis for long.
      await redis.config("RESETSTAT");
      expect((await store.listDecisions({}, { limit: 400, maxBytes: LIMITS.pageBytes })).items).to.have.length(400);
      const large = await commandCalls(redis);
      expect((large.evalsha ?? 0) + (large.eval ?? 0), "script calls for 400").to.equal(7);
    } finally {
      await store.close();
    }
  });

  it("merges exactly when the newest decisions all fall into one bucket, newest and oldest first, at every page size", async () => {
    const prefix = `${unique("skew")}:`;
    const store = await open(prefix);
    try {
      const keys = new Keyspace(prefix, 16);
      const inBucket = (b: number) => {
        for (;;) {
          const id = newDecisionId();
          if (keys.bucketOfId(id) === b) return id;
        }
      };
      // One at a time, so that the stored order is the order of this list: 20 spread over the
      // buckets, then 70 in bucket 5, then 10 in bucket 9.
      const ids = [
        ...Array.from({ length: 20 }, () => newDecisionId()),
        ...Array.from({ length: 70 }, () => inBucket(5)),
        ...Array.from({ length: 10 }, () => inBucket(9)),
      ];
      for (const id of ids) await store.saveReview(decision({ id }), "fp");
      for (const limit of [1, 7, 50, 64, 100, 500]) {
        const newest = await walk(store, limit);
        expect(newest.flat().map((d) => d.id), `newest first, ${limit} a page`).to.deep.equal([...ids].reverse());
        expect(newest.slice(0, -1).every((p) => p.length === limit)).to.equal(true);
        const oldest = await walk(store, limit, true);
        expect(oldest.flat().map((d) => d.id), `oldest first, ${limit} a page`).to.deep.equal(ids);
      }
    } finally {
      await store.close();
    }
  });

  it("does not read a page of large decisions whole: it reads about the byte budget, not the page", async () => {
    const store = await open();
    try {
      const big = suggestionAtLimits();
      const large = Array.from({ length: 8 }, () => decision({ suggestion: { ...big, id: unique("sug") } }));
      for (const d of large) await store.saveReview(d, "fp");
      const stored = large.reduce((n, d) => n + JSON.stringify(d).length, 0);
      expect(stored).to.be.above(8 * 1_000_000);
      const sent = async () => Number(/total_net_output_bytes:(\d+)/.exec(await redis.info("stats"))![1]);
      const before = await sent();
      const page = await store.listDecisions({}, { limit: 50, maxBytes: LIMITS.pageBytes });
      const read = (await sent()) - before;
      // One decision at the limits fits the 2 MiB budget, two do not: the page holds one, and the
      // store read two of them (the one more that tells where the page ends), not eight.
      expect(page.items.map((d) => d.id)).to.deep.equal([large[7]!.id]);
      expect(read).to.be.below(3 * (stored / 8));
      expect(page.next).to.be.a("string");
      const all = await walk(store, 50, false, LIMITS.pageBytes);
      expect(all.flat().map((d) => d.id)).to.deep.equal(large.map((d) => d.id).reverse());
    } finally {
      await store.close();
    }
  });

  it("reads every stored field in a listing as GetDecision reads it (outcome, its recorder, verdicts, supersede, expiry)", async () => {
    const store = await open();
    try {
      const s = suggestion();
      const first = decision({ suggestion: s, requestId: unique("req"), submittedBy: "agent-a" });
      const second = decision({ suggestion: s, supersedes: first.id, outcomeNotes: "", lessonsLearned: "" });
      const due = pendingDecision({ suggestion: s }, 1);
      const legacy = decision({ suggestion: s, decision: "auto_approve", status: "approved", verdicts: [], approvalsRequired: 0, expiresAt: undefined });
      for (const d of [first, second, due, legacy]) await store.saveReview(d, "fp");
      const recorded = await store.recordOutcome(first.id, {
        outcome: "partial",
        notes: "notes ✓",
        lessons: "lessons 𝄞",
        at: new Date(),
        requestId: unique("oreq"),
        fingerprint: "ofp",
        recordedBy: "bob",
      });
      expect(recorded.kind).to.equal("recorded");
      // As a decision stored before principals and before SPEC §9 reads: no submitter, no lifecycle fields.
      const b = store.keys.bucketOfId(legacy.id);
      await redis.hdel(store.keys.decision(b, legacy.id), "submitted_by", "status", "approvals", "verdicts", "expires_at", "supersedes", "superseded_by");
      await redis.hset(store.keys.decision(store.keys.bucketOfId(second.id), second.id), "superseded_by", "dec-later");
      const listed = (await store.listDecisions({ suggestionId: s.id }, { limit: 10, maxBytes: LIMITS.pageBytes })).items;
      expect(listed).to.have.length(4);
      for (const d of listed) expect(d, d.id).to.deep.equal(await store.getDecision(d.id));
      const byId = new Map(listed.map((d) => [d.id, d]));
      expect(byId.get(first.id)).to.include({ outcome: "partial", outcomeRecordedBy: "bob", outcomeNotes: "notes ✓", lessonsLearned: "lessons 𝄞", submittedBy: "agent-a" });
      expect(byId.get(first.id)!.implementedAt).to.be.instanceOf(Date);
      expect(byId.get(second.id)).to.include({ supersedes: first.id, supersededBy: "dec-later" });
      expect(byId.get(due.id)!.status).to.equal("expired");
      expect(byId.get(legacy.id)).to.include({ submittedBy: "anonymous", status: "approved", approvalsRequired: 0 });
    } finally {
      await store.close();
    }
  });

  it("reads on when Redis has forgotten its scripts (SCRIPT FLUSH, a restart or a failover)", async () => {
    const store = await open();
    try {
      const made = [decision(), decision(), decision()];
      for (const d of made) await store.saveReview(d, "fp");
      const want = made.map((d) => d.id).reverse();
      expect((await store.listDecisions({}, { limit: 10 })).items.map((d) => d.id)).to.deep.equal(want);
      await redis.script("FLUSH");
      expect((await store.listDecisions({}, { limit: 10 })).items.map((d) => d.id)).to.deep.equal(want);
      expect((await store.listDecisions({}, { limit: 10 })).items.map((d) => d.id)).to.deep.equal(want);
    } finally {
      await store.close();
    }
  });
});

for (const topology of ["one redis-server", "a 3-master cluster"] as const) {
  describe(`Redis store reads on ${topology}: summary and listings by status expire what is due first`, function () {
    this.timeout(120_000);
    let url: string;
    let destroy: () => Promise<void>;

    before(async () => {
      if (topology === "one redis-server") {
        const server = await RedisServer.start();
        url = server.url;
        destroy = () => server.destroy();
      } else {
        const cluster = await RedisCluster.start(3);
        url = cluster.url;
        destroy = () => cluster.destroy();
      }
    });
    after(async () => destroy?.());

    it("counts and lists a decision that fell due before any sweep as expired, and pages on every bucket", async () => {
      // The sweeper waits a minute or more: only the reads can expire the decision here.
      const store = await RedisStore.open({ url, prefix: `${unique("due")}:`, log: silent, sweepMs: 60_000 });
      try {
        const others = Array.from({ length: 60 }, () => decision());
        await Promise.all(others.map((d) => store.saveReview(d, "fp")));
        const keep = pendingDecision({}, 3_600_000);
        // Margins of a second and more between the steps below, for a loaded machine.
        const first = pendingDecision({}, 1500);
        const second = pendingDecision({}, 3000);
        for (const d of [keep, first, second]) await store.saveReview(d, "fp");
        const fallDue = (d: Decision) =>
          waitFor(async () => (await store.getDecision(d.id))?.status === "expired", { what: "the decision to fall due", timeoutMs: 10_000 });
        expect((await store.summary()).byStatus).to.deep.include({ pending: 3, expired: 0, approved: 60 });
        // A listing by status first: it finds the due decision and expires it before it reads.
        await fallDue(first);
        expect((await store.listDecisions({ status: "pending" }, { limit: 5 })).items.map((d) => d.id)).to.deep.equal([second.id, keep.id]);
        expect((await store.listDecisions({ status: "expired" }, { limit: 5 })).items.map((d) => d.id)).to.deep.equal([first.id]);
        // The summary first: likewise.
        await fallDue(second);
        expect((await store.summary()).byStatus).to.deep.include({ pending: 1, expired: 2, approved: 60 });
        expect((await store.listDecisions({ status: "expired" }, { limit: 5 })).items.map((d) => d.id)).to.deep.equal([second.id, first.id]);
        const all = await walk(store, 7);
        expect(new Set(all.flat().map((d) => d.id))).to.deep.equal(new Set([...others, keep, first, second].map((d) => d.id)));
        expect(all.flat()).to.have.length(63);
      } finally {
        await store.close();
      }
    });
  });
}
