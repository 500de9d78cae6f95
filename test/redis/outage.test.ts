/**
 * Redis going away under load, through gRPC: calls fail UNAVAILABLE within 2 s, the server stays
 * up and reports NOT_SERVING; when Redis is back the same server recovers on its own (SERVING,
 * calls succeed), and nothing was half-written: the counters equal the stored decisions.
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { CouncilServiceClient, WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { Outcome } from "../../src/gen/council/v1/review.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, type Running } from "../support/server.js";
import { nextEvent, waitFor } from "../support/wait.js";
import { health, listAll, Serving, startReplica } from "./helpers.js";

interface Tally {
  ok: number;
  failures: { code: number; ms: number }[];
  acknowledged: string[];
}

/**
 * After a failed call a client pauses this long before the next one. This paces the load while
 * Redis is away (UNAVAILABLE comes back at once, and a client retrying without pause would only
 * burn the CPU the server needs); it stands in for no event.
 */
const PAUSE_AFTER_FAILURE_MS = 20;
const pauseAfterFailure = () => new Promise<void>((resolve) => setTimeout(resolve, PAUSE_AFTER_FAILURE_MS));

/** Keeps `n` clients busy with reviews and outcomes until `stop()`. */
function load(client: CouncilServiceClient, n: number) {
  const tally: Tally = { ok: 0, failures: [], acknowledged: [] };
  let running = true;
  const one = async () => {
    while (running) {
      const started = Date.now();
      const r = await review(client, { suggestion: wireSuggestion(), requestId: unique("req") });
      const last = r.events[r.events.length - 1]?.event;
      if (last?.$case === "decision") {
        tally.acknowledged.push(last.value.id);
        const outcomeStarted = Date.now();
        try {
          await call(client, client.recordOutcome, { decisionId: last.value.id, outcome: Outcome.OUTCOME_SUCCESS, notes: "n", lessons: "l", requestId: "" });
        } catch (err) {
          tally.failures.push({ code: (err as ServiceError).code, ms: Date.now() - outcomeStarted });
          await pauseAfterFailure();
          continue;
        }
      }
      if (r.error) {
        tally.failures.push({ code: r.error.code, ms: Date.now() - started });
        await pauseAfterFailure();
      } else tally.ok++;
    }
  };
  const loops = Array.from({ length: n }, one);
  return {
    tally,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

describe("Redis outage through gRPC", function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let replica: Running;

  before(async () => {
    redis = await RedisServer.start({ appendfsync: "always" });
    replica = await startReplica(redis.url, `${unique("out")}:`);
  });
  after(async () => {
    redis?.resume();
    await replica?.stop();
    await redis?.destroy();
  });

  const expectFastUnavailable = (t: Tally) => {
    expect(t.failures.length).to.be.greaterThan(0);
    for (const f of t.failures) {
      expect(f.code, JSON.stringify(f)).to.equal(status.UNAVAILABLE);
      expect(f.ms, JSON.stringify(f)).to.be.lessThan(2000);
    }
  };

  it("Redis hanging (SIGSTOP) mid-load: UNAVAILABLE within 2 s, NOT_SERVING, then recovery without restart", async () => {
    const c = replica.client;
    const l = load(c, 4);
    await waitFor(() => l.tally.ok >= 20, { timeoutMs: 5000, what: "some load" });
    redis.pause();
    const pausedAt = l.tally.failures.length;
    await waitFor(async () => (await health(replica.addr)) === Serving.NOT_SERVING, { timeoutMs: 4000, what: "NOT_SERVING" });
    await waitFor(() => l.tally.failures.length >= pausedAt + 8, { timeoutMs: 8000, what: "calls to fail" });
    // The server itself is up: a call that needs no store still works.
    expect((await call(c, c.listReviewers, {})).reviewers).to.have.length(5);
    redis.resume();
    await waitFor(async () => (await health(replica.addr)) === Serving.SERVING, { timeoutMs: 5000, what: "SERVING again" });
    const okBefore = l.tally.ok;
    await waitFor(() => l.tally.ok >= okBefore + 20, { timeoutMs: 5000, what: "calls to succeed again" });
    await l.stop();
    expectFastUnavailable(l.tally);
  });

  it("Redis killed mid-load: UNAVAILABLE within 2 s, NOT_SERVING; restarted: SERVING, and no partial records", async () => {
    const c = replica.client;
    // A watch open across the outage keeps going: the reader resumes where it was.
    const watched = new Set<string>();
    let watchError: ServiceError | undefined;
    const watch = c.watchDecisions({ decisionType: 0, includeVotes: false, includeUpdates: false });
    watch.on("data", (e: WatchDecisionsResponse) => watched.add(e.decisionId));
    watch.on("error", (e: ServiceError) => (watchError = e));
    // The server sends response headers once the watch is live.
    await nextEvent(watch, "metadata", { what: "response headers from the watch (it is live)" });

    const l = load(c, 4);
    await waitFor(() => l.tally.ok >= 20, { timeoutMs: 5000, what: "some load" });
    await redis.kill();
    const killedAt = l.tally.failures.length;
    await waitFor(async () => (await health(replica.addr)) === Serving.NOT_SERVING, { timeoutMs: 4000, what: "NOT_SERVING" });
    await waitFor(() => l.tally.failures.length >= killedAt + 20, { timeoutMs: 8000, what: "calls to fail" });
    expect((await call(c, c.listReviewers, {})).reviewers).to.have.length(5);
    const started = Date.now();
    const err = await call(c, c.getSummary, {}).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(err?.code).to.equal(status.UNAVAILABLE);
    expect(Date.now() - started).to.be.lessThan(2000);

    await redis.restart();
    await waitFor(async () => (await health(replica.addr)) === Serving.SERVING, { timeoutMs: 8000, what: "SERVING again" });
    const okBefore = l.tally.ok;
    await waitFor(() => l.tally.ok >= okBefore + 20, { timeoutMs: 8000, what: "calls to succeed again" });
    await l.stop();
    expectFastUnavailable(l.tally);

    const after = await review(c, { suggestion: wireSuggestion() });
    await waitFor(() => watched.has(after.events[after.events.length - 1]!.decisionId), {
      timeoutMs: 5000,
      what: "the watch to see a review made after the outage",
    });
    expect(watchError).to.equal(undefined);
    watch.cancel();

    // Every acknowledged review is stored; counters, indexes and lessons agree with each other.
    for (const id of l.tally.acknowledged) await call(c, c.getDecision, { id });
    const summary = await call(c, c.getSummary, {});
    const { decisions } = await listAll(c, 500);
    expect(decisions.length).to.equal(summary.totalDecisions);
    expect(new Set(decisions.map((d) => d.id)).size).to.equal(decisions.length);
    expect(Object.values(summary.byType).reduce((x, y) => x + y, 0)).to.equal(summary.totalDecisions);
    expect(Object.values(summary.outcomes).reduce((x, y) => x + y, 0)).to.equal(summary.totalDecisions);
    const withOutcome = decisions.filter((d) => d.outcome !== Outcome.OUTCOME_UNSPECIFIED).length;
    expect(summary.outcomes.success).to.equal(withOutcome);
    let lessons = 0;
    let pageToken = "";
    do {
      const page = await call(c, c.listLessons, { pageSize: 500, pageToken });
      lessons += page.lessons.length;
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(summary.learningEntries).to.equal(lessons);
    expect(lessons).to.be.at.least(withOutcome);
  });
});
