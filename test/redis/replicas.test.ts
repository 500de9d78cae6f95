/**
 * Two replicas (two servers in-process) on one Redis keyspace, on a single redis-server and on a
 * 3-master cluster: one request_id raced on both gives one decision that both callers get, and a
 * watcher on one replica sees the reviews made on the other.
 */
import { type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { ReviewSuggestionResponse, WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisCluster, RedisServer } from "../support/redis.js";
import { call, review, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { startReplica } from "./helpers.js";

const decisionOf = (events: ReviewSuggestionResponse[]) => {
  const last = events[events.length - 1]?.event;
  return last?.$case === "decision" ? last.value : undefined;
};

function watch(r: Running, includeVotes: boolean) {
  const stream = r.client.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes, includeUpdates: false });
  // The server sends response headers once the watch is live: every review stored from then on is sent.
  const live = new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  const events: WatchDecisionsResponse[] = [];
  let error: ServiceError | undefined;
  stream.on("data", (e: WatchDecisionsResponse) => events.push(e));
  stream.on("error", (e: ServiceError) => (error = e));
  return {
    stream,
    events,
    error: () => error,
    live: () => within(live, { timeoutMs: 10_000, what: "response headers from the watch (it is live)" }),
  };
}

for (const topology of ["one redis-server", "a 3-master cluster"] as const) {
  describe(`Two replicas on ${topology}`, function () {
    this.timeout(60_000);
    let url: string;
    let destroy: () => Promise<void>;
    let a: Running;
    let b: Running;
    /** Holds every review before its first vote until `release` (to make two calls race). */
    let arrived = 0;
    let waiters: (() => void)[] = [];
    let holding = false;
    const beforeVote = async (_role: string, index: number) => {
      if (!holding || index !== 0) return;
      arrived++;
      await new Promise<void>((resolve) => waiters.push(resolve));
    };
    const release = () => {
      for (const w of waiters) w();
      waiters = [];
    };

    before(async function () {
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
    beforeEach(async () => {
      const prefix = `${unique("rep")}:`;
      a = await startReplica(url, prefix, { beforeVote });
      b = await startReplica(url, prefix, { beforeVote });
    });
    afterEach(async () => {
      holding = false;
      release();
      await Promise.all([a?.stop(), b?.stop()]);
    });
    after(async () => {
      await destroy?.();
    });

    it("racing one request_id on both replicas stores one decision, and both callers get it", async () => {
      const rounds = 10;
      for (let i = 0; i < rounds; i++) {
        const s = wireSuggestion();
        const requestId = unique("req");
        holding = true;
        arrived = 0;
        const both = Promise.all([review(a.client, { suggestion: s, requestId }), review(b.client, { suggestion: s, requestId })]);
        // Both have looked the request_id up and found nothing; now both store.
        await waitFor(() => arrived === 2, { what: "both reviews to start" });
        holding = false;
        release();
        const [ra, rb] = await both;
        expect(ra.error).to.equal(undefined);
        expect(rb.error).to.equal(undefined);
        const da = decisionOf(ra.events)!;
        const db = decisionOf(rb.events)!;
        expect(da.id).to.equal(db.id);
        expect(da).to.deep.equal(db);
        expect(ra.events.every((e) => e.decisionId === da.id) && rb.events.every((e) => e.decisionId === da.id)).to.equal(true);
      }
      // Without holding: many repeats at once, spread over both replicas.
      const s = wireSuggestion();
      const requestId = unique("req");
      const all = await Promise.all(Array.from({ length: 12 }, (_, i) => review((i % 2 ? a : b).client, { suggestion: s, requestId })));
      expect(new Set(all.map((r) => decisionOf(r.events)?.id)).size).to.equal(1);

      for (const r of [a, b]) {
        const summary = await call(r.client, r.client.getSummary, {});
        expect(summary.totalDecisions).to.equal(rounds + 1);
      }
    });

    it("a watcher on one replica sees the reviews made on the other: votes, then the decision; no dry runs or replays", async () => {
      const w = watch(a, true);
      await w.live();

      const s = wireSuggestion();
      const requestId = unique("req");
      const first = await review(b.client, { suggestion: s, requestId });
      await review(b.client, { suggestion: s, requestId }); // a replay: not a new review
      await review(a.client, { suggestion: s, requestId }); // a replay on the other replica
      await review(b.client, { suggestion: wireSuggestion(), dryRun: true }); // stores nothing
      const second = await review(b.client, { suggestion: wireSuggestion({ title: "it exposes secrets" }) });
      const third = await review(a.client, { suggestion: wireSuggestion() }); // made on the watcher's own replica
      // Events arrive in the order the reviews were stored: had a replay or the dry run been sent,
      // it would be on the watch before the third review's decision.
      const lastId = decisionOf(third.events)!.id;
      await waitFor(() => w.events.some((e) => e.event?.$case === "decision" && e.decisionId === lastId), {
        timeoutMs: 10_000,
        what: "the third review's decision on the watch",
      });

      const expected = [first, second, third].map((r) => r.events);
      expect(w.events.map((e) => e.event?.$case)).to.deep.equal(Array(3).fill([...Array(5).fill("vote"), "decision"]).flat());
      expected.forEach((events, i) => {
        const got = w.events.slice(i * 6, i * 6 + 6);
        expect(got.map((e) => e.decisionId)).to.deep.equal(events.map((e) => e.decisionId));
        // The stored votes and decision, exactly as the caller got them.
        expect(got.map((e) => e.event)).to.deep.equal(events.map((e) => e.event));
      });
      expect(w.error()).to.equal(undefined);
      w.stream.cancel();
    });
  });
}
