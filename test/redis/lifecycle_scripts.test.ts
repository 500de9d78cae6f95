/**
 * The lifecycle's Lua scripts against a real redis-server (as scripts.test.ts does for the others):
 * each checks everything, then writes. A key that a script would write late, broken (of the wrong
 * type, or a counter that is not an integer), fails the call with INTERNAL and leaves nothing
 * behind: no status moved, no counter, no index entry, no revision, no event. Once the key is
 * fixed, the retry does the whole change once.
 *
 * - update_lifecycle.lua "set" (ResolveDecision, through gRPC),
 * - update_lifecycle.lua "expire" (the sweeper and reads),
 * - record_outcome.lua's update event (RecordOutcome, through gRPC),
 * - save_review.lua's status index, status counter and expiry schedule (ReviewSuggestion).
 * backfill_status.lua is tested with the upgrade it serves (lifecycle_upgrade.test.ts).
 */
import { readFileSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS_NAME } from "../../src/domain/principal.js";
import type { DecisionStatus as DomainStatus, DecisionType as DomainType } from "../../src/domain/model.js";
import type { ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionStatus, Outcome, RiskLevel, VerdictType, type Decision as WireDecision } from "../../src/gen/council/v1/review.js";
import type { Keyspace } from "../../src/store/keys.js";
import { RedisStore } from "../../src/store/redis.js";
import { pendingDecision, unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { silent, startReplica } from "./helpers.js";

const decisionOf = (events: ReviewSuggestionResponse[]): WireDecision => {
  const last = events.at(-1)?.event;
  if (last?.$case !== "decision") throw new Error("the stream did not end with a decision");
  return last.value;
};

/** What a breaker needs to name a decision's keys. */
interface At {
  bucket: number;
  id: string;
  type: DomainType;
  suggestionId: string;
}

/** Breaks one key; returns what puts it back. */
type Breaker = (redis: Redis, keys: Keyspace, at: At) => Promise<() => Promise<unknown>>;

/** Replaces `key` with a string (keeping what it held aside); the fix puts it back. */
const notOfItsType =
  (keyOf: (keys: Keyspace, at: At) => string): Breaker =>
  async (redis, keys, at) => {
    const key = keyOf(keys, at);
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
  (field: string): Breaker =>
  async (redis, keys, at) => {
    const was = await redis.hget(keys.counts(at.bucket), field);
    await redis.hset(keys.counts(at.bucket), field, "many");
    return () => (was === null ? redis.hdel(keys.counts(at.bucket), field) : redis.hset(keys.counts(at.bucket), field, was));
  };

const statusIndex = (status: DomainStatus, which: "all" | "type" | "suggestion" | "both") => (k: Keyspace, at: At) =>
  k.index(at.bucket, {
    status,
    ...(which === "type" || which === "both" ? { decisionType: at.type } : {}),
    ...(which === "suggestion" || which === "both" ? { suggestionId: at.suggestionId } : {}),
  });

/** Everything a lifecycle change touches in a decision's bucket, to compare before and after. */
async function snapshot(redis: Redis, keys: Keyspace, at: At) {
  const b = at.bucket;
  const indexes: Record<string, string[]> = {};
  for (const st of ["pending", "approved", "rejected", "expired"] as const) {
    for (const which of ["all", "type", "suggestion", "both"] as const) {
      const key = statusIndex(st, which)(keys, at);
      indexes[key] = (await redis.type(key)) === "zset" ? await redis.zrange(key, "0", "-1") : [];
    }
  }
  const { sync: _sync, ...counts } = await redis.hgetall(keys.counts(b));
  return {
    decision: await redis.hgetall(keys.decision(b, at.id)),
    counts,
    indexes,
    expiries: (await redis.type(keys.expiries(b))) === "zset" ? await redis.zrange(keys.expiries(b), "0", "-1", "WITHSCORES") : [],
    updates: (await redis.type(keys.updates(b))) === "stream" ? await redis.xlen(keys.updates(b)) : 0,
    lessons: (await redis.type(keys.lessons(b))) === "zset" ? await redis.zcard(keys.lessons(b)) : 0,
  };
}

describe("The lifecycle's Lua scripts check everything before they write", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  let r: Running;
  let keys: Keyspace;

  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    r = await startReplica(server.url, `${unique("lifelua")}:`, { buckets: 4 });
    keys = (r.store as RedisStore).keys;
  });
  after(async () => {
    await r?.stop();
    redis?.disconnect();
    await server?.destroy();
  });

  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => status.OK,
      (e: { code: number }) => e.code,
    );
  const getDecision = (id: string) => call(r.client, r.client.getDecision, { id }).then((x) => x.decision!);
  const resolve = (decisionId: string, verdict: VerdictType, requestId: string) =>
    call(r.client, r.client.resolveDecision, { decisionId, verdict, comment: verdict === VerdictType.VERDICT_TYPE_REJECT ? "no" : "", requestId });
  /** A HUMAN_APPROVE decision (pending) stored through gRPC, with what names its keys. */
  const pendingOne = async (): Promise<At & { wire: WireDecision }> => {
    const s = wireSuggestion({ risk: RiskLevel.RISK_LEVEL_MEDIUM, autoFixable: false });
    const wire = decisionOf((await review(r.client, { suggestion: s, requestId: unique("req") })).events);
    expect(wire.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
    return { wire, bucket: keys.bucketOfId(wire.id), id: wire.id, type: "human_approve", suggestionId: s.id };
  };

  const verdictBreakers: [string, VerdictType, Breaker][] = [
    ["the approved index by type and suggestion is not a sorted set", VerdictType.VERDICT_TYPE_APPROVE, notOfItsType(statusIndex("approved", "both"))],
    ["the rejected index by suggestion is not a sorted set", VerdictType.VERDICT_TYPE_REJECT, notOfItsType(statusIndex("rejected", "suggestion"))],
    ["the pending index by type is not a sorted set", VerdictType.VERDICT_TYPE_APPROVE, notOfItsType(statusIndex("pending", "type"))],
    ["the update stream is not a stream", VerdictType.VERDICT_TYPE_APPROVE, notOfItsType((k, at) => k.updates(at.bucket))],
    ["the expiry schedule is not a sorted set", VerdictType.VERDICT_TYPE_REJECT, notOfItsType((k, at) => k.expiries(at.bucket))],
    ["the counter of the new status is not an integer", VerdictType.VERDICT_TYPE_APPROVE, notAnInteger("status:approved")],
    ["the counter of the old status is not an integer", VerdictType.VERDICT_TYPE_REJECT, notAnInteger("status:pending")],
    ["the update sequence is not an integer", VerdictType.VERDICT_TYPE_APPROVE, notAnInteger("updates")],
    ["the order of the bucket is not an integer", VerdictType.VERDICT_TYPE_REJECT, notAnInteger("last_us")],
  ];

  for (const [name, verdict, breakIt] of verdictBreakers) {
    it(`ResolveDecision when ${name}: INTERNAL, nothing written, and the retry gives the verdict once`, async () => {
      const at = await pendingOne();
      const before = await snapshot(redis, keys, at);
      const requestId = unique("vreq");
      const fix = await breakIt(redis, keys, at);
      try {
        expect(await codeOf(resolve(at.id, verdict, requestId))).to.equal(status.INTERNAL);
      } finally {
        await fix();
      }
      expect(await snapshot(redis, keys, at), "the failed verdict wrote something").to.deep.equal(before);
      expect(await getDecision(at.id)).to.deep.equal(at.wire);

      const done = (await resolve(at.id, verdict, requestId)).decision!;
      const want = verdict === VerdictType.VERDICT_TYPE_APPROVE ? "approved" : "rejected";
      expect(done.status).to.equal(verdict === VerdictType.VERDICT_TYPE_APPROVE ? DecisionStatus.DECISION_STATUS_APPROVED : DecisionStatus.DECISION_STATUS_REJECTED);
      expect(done.verdicts).to.have.length(1);
      const after = await snapshot(redis, keys, at);
      expect(Number(after.counts[`status:${want}`] ?? 0)).to.equal(Number(before.counts[`status:${want}`] ?? 0) + 1);
      expect(Number(after.counts["status:pending"])).to.equal(Number(before.counts["status:pending"]) - 1);
      expect(after.decision.revision).to.equal("2");
      expect(after.updates).to.equal(before.updates + 1);
      expect(after.expiries).to.not.include(at.id);
      for (const which of ["all", "type", "suggestion", "both"] as const) {
        expect(after.indexes[statusIndex("pending", which)(keys, at)]).to.not.include(after.decision.ix);
        expect(after.indexes[statusIndex(want, which)(keys, at)]).to.include(after.decision.ix);
      }
      // The retry with the same request_id is answered from the decision, and writes nothing more.
      expect((await resolve(at.id, verdict, requestId)).decision).to.deep.equal(done);
      expect(await snapshot(redis, keys, at)).to.deep.equal(after);
    });
  }

  const expiryBreakers: [string, Breaker][] = [
    ["the expired index by type and suggestion is not a sorted set", notOfItsType(statusIndex("expired", "both"))],
    ["the update stream is not a stream", notOfItsType((k, at) => k.updates(at.bucket))],
    ["the counter of expired decisions is not an integer", notAnInteger("status:expired")],
  ];

  for (const [name, breakIt] of expiryBreakers) {
    it(`expiry when ${name}: the sweep fails and writes nothing, reads show EXPIRED, and once fixed it expires once`, async () => {
      const store = r.store as RedisStore;
      const d = pendingDecision({}, 400);
      await store.saveReview(d, "fp");
      const at: At = { bucket: keys.bucketOfId(d.id), id: d.id, type: d.decision, suggestionId: d.suggestionId };
      const before = await snapshot(redis, keys, at);
      const fix = await breakIt(redis, keys, at);
      try {
        const broken = await snapshot(redis, keys, at);
        await waitFor(async () => (await getDecision(d.id)).status === DecisionStatus.DECISION_STATUS_EXPIRED, {
          what: "the decision to read EXPIRED",
        });
        const failed = await store.expireDue(100).then(
          () => undefined,
          (e: Error) => e,
        );
        expect(failed?.name).to.equal("InternalError");
        // Reads that count or list by status expire what is due first: they fail too, rather than
        // show counts that disagree with what the decision reads.
        expect(await codeOf(call(r.client, r.client.getSummary, {}))).to.equal(status.INTERNAL);
        expect(await snapshot(redis, keys, at), "the failed expiry wrote something").to.deep.equal(broken);
        expect(await redis.hget(keys.decision(at.bucket, d.id), "status")).to.equal("pending");
      } finally {
        await fix();
      }
      // The store's own sweeper finds it now.
      await waitFor(async () => (await redis.hget(keys.decision(at.bucket, d.id), "status")) === "expired", {
        what: "the sweeper to expire the decision",
        timeoutMs: 10_000,
      });
      expect(await store.expireDue(100)).to.equal(0);
      const after = await snapshot(redis, keys, at);
      expect(Number(after.counts["status:expired"] ?? 0)).to.equal(Number(before.counts["status:expired"] ?? 0) + 1);
      expect(Number(after.counts["status:pending"])).to.equal(Number(before.counts["status:pending"]) - 1);
      expect(after.updates).to.equal(before.updates + 1);
      expect(after.expiries).to.not.include(d.id);
      expect(after.decision.revision).to.equal("2");
    });
  }

  it("RecordOutcome when the update stream is not a stream: INTERNAL, nothing written, and the retry records it once", async () => {
    const s = wireSuggestion();
    const wire = decisionOf((await review(r.client, { suggestion: s, requestId: unique("req") })).events);
    expect(wire.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
    const at: At = { bucket: keys.bucketOfId(wire.id), id: wire.id, type: "auto_approve", suggestionId: s.id };
    const before = await snapshot(redis, keys, at);
    const requestId = unique("oreq");
    const record = () => call(r.client, r.client.recordOutcome, { decisionId: wire.id, outcome: Outcome.OUTCOME_SUCCESS, notes: "n", lessons: "l", requestId });
    const fix = await notOfItsType((k, a) => k.updates(a.bucket))(redis, keys, at);
    try {
      expect(await codeOf(record())).to.equal(status.INTERNAL);
    } finally {
      await fix();
    }
    expect(await snapshot(redis, keys, at)).to.deep.equal(before);
    expect(await redis.exists(keys.outcomeRequest(at.bucket, wire.id, ANONYMOUS_NAME, requestId)), "the request id was taken").to.equal(0);
    expect((await record()).decision!.outcome).to.equal(Outcome.OUTCOME_SUCCESS);
    const after = await snapshot(redis, keys, at);
    expect(after.lessons).to.equal(before.lessons + 1);
    expect(after.updates).to.equal(before.updates + 1);
    expect(after.decision.revision).to.equal("2");
  });

  const saveBreakers: [string, Breaker][] = [
    ["the pending index by type is not a sorted set", notOfItsType(statusIndex("pending", "type"))],
    ["the pending index by type and suggestion is not a sorted set", notOfItsType(statusIndex("pending", "both"))],
    ["the expiry schedule is not a sorted set", notOfItsType((k, at) => k.expiries(at.bucket))],
    ["the counter of pending decisions is not an integer", notAnInteger("status:pending")],
  ];

  for (const [name, breakIt] of saveBreakers) {
    it(`ReviewSuggestion of a pending decision when ${name}: INTERNAL, nothing written, and the retry stores it`, async () => {
      const s = wireSuggestion({ risk: RiskLevel.RISK_LEVEL_MEDIUM, autoFixable: false });
      const requestId = unique("req");
      const id = decisionIdForRequest(ANONYMOUS_NAME, requestId);
      const at: At = { bucket: keys.bucketOfId(id), id, type: "human_approve", suggestionId: s.id };
      const before = await snapshot(redis, keys, at);
      const fix = await breakIt(redis, keys, at);
      try {
        const failed = await review(r.client, { suggestion: s, requestId });
        expect(failed.error?.code, failed.error?.details).to.equal(status.INTERNAL);
        expect(await redis.exists(keys.request(at.bucket, ANONYMOUS_NAME, requestId)), "the request id was taken").to.equal(0);
      } finally {
        await fix();
      }
      expect(await snapshot(redis, keys, at), "the failed review wrote something").to.deep.equal(before);
      const retry = decisionOf((await review(r.client, { suggestion: s, requestId })).events);
      expect(retry).to.deep.include({ id, status: DecisionStatus.DECISION_STATUS_PENDING });
      const after = await snapshot(redis, keys, at);
      expect(Number(after.counts["status:pending"])).to.equal(Number(before.counts["status:pending"] ?? 0) + 1);
      expect(after.expiries).to.include(id);
      for (const which of ["all", "type", "suggestion", "both"] as const) {
        expect(after.indexes[statusIndex("pending", which)(keys, at)]).to.include(after.decision.ix);
      }
    });
  }
});

describe("Lifecycle writes through a RedisStore opened on its own", function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => server?.destroy());

  it("a lifecycle change whose reply is lost and that is sent again is answered as applied, and written once", async () => {
    // The operation id kept with the change (`lc_op`) tells a re-sent copy from a conflicting write.
    const store = await RedisStore.open({ url: server.url, prefix: `${unique("resend")}:`, log: silent, buckets: 2 });
    const redis = new Redis(server.port, "127.0.0.1");
    try {
      const d = pendingDecision();
      await store.saveReview(d, "fp");
      const keys = store.keys;
      const b = keys.bucketOfId(d.id);
      const args = [
        keys.decision(b, d.id),
        keys.counts(b),
        keys.updates(b),
        keys.expiries(b),
        ...keys.statusIndexes(b, "pending", d.decision, d.suggestionId),
        ...keys.statusIndexes(b, "expired", d.decision, d.suggestionId),
        ...keys.statusIndexes(b, "pending", d.decision, d.suggestionId),
        ...keys.statusIndexes(b, "rejected", d.decision, d.suggestionId),
        "set",
        d.id,
        "1",
        "pending",
        "rejected",
        "[]",
        "",
        "verdict",
        "the-same-call",
        "100",
        "0",
      ];
      const send = () => (redis as unknown as { call(...a: string[]): Promise<unknown> }).call("EVAL", updateLifecycleLua(), "20", ...args);
      const first = (await send()) as [string, string[]];
      const again = (await send()) as [string, string[]];
      expect(first[0]).to.equal("applied");
      expect(again[0]).to.equal("applied");
      expect(again[1]).to.deep.equal(first[1]);
      expect(await redis.hget(keys.counts(b), "status:rejected")).to.equal("1");
      expect(await redis.hget(keys.counts(b), "updates")).to.equal("1");
      expect(await redis.xlen(keys.updates(b))).to.equal(1);
    } finally {
      redis.disconnect();
      await store.close();
    }
  });
});

describe("The expiry schedule and data that was lost", function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => server?.destroy());

  it("a scheduled decision that is gone is dropped from the schedule once, not met by every sweep", async () => {
    const store = await RedisStore.open({ url: server.url, prefix: `${unique("lost")}:`, log: silent, buckets: 2, sweepMs: 60_000 });
    const redis = new Redis(server.port, "127.0.0.1");
    try {
      const d = pendingDecision({}, -1000);
      await store.saveReview(d, "fp");
      const b = store.keys.bucketOfId(d.id);
      await redis.del(store.keys.decision(b, d.id));
      expect(await store.expireDue(10)).to.equal(0);
      expect(await redis.zscore(store.keys.expiries(b), d.id)).to.equal(null);
      expect(await redis.hget(store.keys.counts(b), "updates")).to.equal(null);
    } finally {
      redis.disconnect();
      await store.close();
    }
  });
});

function updateLifecycleLua(): string {
  return readFileSync(new URL("../../src/store/lua/update_lifecycle.lua", import.meta.url), "utf8");
}
