/**
 * The shape every call shares (README "Deadlines, retries and cancelling"), against a live server
 * at COUNCIL_TEST_ADDR: `{ signal, timeoutMs }` on every call, one deadline per call including
 * its retries (through a proxy that cuts every connection), the defaults, cancelling a review,
 * and a watch that says when it is live. That the server sees a cancelled call as CANCELLED is
 * tested in the repository's test/clients_typescript_cancel.test.ts, which can read its log.
 */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import {
  CancelledError,
  connect,
  CouncilError,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_GUARD_TIMEOUT_MS,
  DEFAULT_RETRY_POLICY,
  DEFAULT_REVIEW_TIMEOUT_MS,
  DeadlineExceededError,
  ImpactLevel,
  Outcome,
  RiskLevel,
  UnavailableError,
  type CouncilClient,
  type Vote,
  type WatchEvent,
} from "../src/index.js";
import { droppingProxy } from "./proxy.js";

const ADDR = process.env.COUNCIL_TEST_ADDR;
if (!ADDR) throw new Error("set COUNCIL_TEST_ADDR to the host:port of a running Council server");

const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
const suggestion = () => ({
  id: uid("ts-calls"),
  title: "Tidy the retry helper",
  risk: RiskLevel.RISK_LEVEL_LOW,
  impact: ImpactLevel.IMPACT_LEVEL_LOW,
  autoFixable: true,
  fixSteps: ["Apply the patch"],
});

/** What a promise settled with: its value, or the error it rejected with. */
const settled = <T>(p: Promise<T>) => p.then((value) => ({ value, error: undefined as unknown }), (error: unknown) => ({ value: undefined, error }));

/** Everything an iteration yields, and the error it ended with, if any. */
async function drain<T>(items: AsyncIterable<T>): Promise<{ items: T[]; error: unknown }> {
  const out: T[] = [];
  try {
    for await (const item of items) out.push(item);
    return { items: out, error: undefined };
  } catch (error) {
    return { items: out, error };
  }
}

describe("TypeScript client: deadlines, retries and cancelling", () => {
  let client: CouncilClient;
  before(() => (client = connect(ADDR)));
  after(() => client.close());

  it("has the defaults every client shares: 30 s per call and 60 s per review, retries included; 4 attempts, 100 ms to 2 s", () => {
    expect(DEFAULT_CALL_TIMEOUT_MS).to.equal(30_000);
    expect(DEFAULT_REVIEW_TIMEOUT_MS).to.equal(60_000);
    expect(DEFAULT_RETRY_POLICY).to.deep.equal({ attempts: 4, initialBackoffMs: 100, maxBackoffMs: 2000 });
    expect(DEFAULT_GUARD_TIMEOUT_MS).to.equal(600_000);
  });

  it("every call takes a signal: aborted, promises reject with a CancelledError and iterations end empty, without an error", async () => {
    const decision = await client.review(suggestion()).decision;
    const signal = AbortSignal.abort();
    const promises = {
      getDecision: client.getDecision(decision.id, { signal }),
      recordOutcome: client.recordOutcome(decision.id, Outcome.OUTCOME_SUCCESS, { signal }),
      summary: client.summary({ signal }),
      reviewers: client.reviewers({ signal }),
      resolve: client.resolve(decision.id, "approve", { signal }),
      guard: client.guard(suggestion(), { signal }),
      "review.decision": client.review(suggestion(), { signal }).decision,
    };
    for (const [name, promise] of Object.entries(promises)) {
      const { error } = await settled(promise as Promise<unknown>);
      expect(error, name).to.be.instanceOf(CancelledError);
    }
    const iterations = {
      review: client.review(suggestion(), { signal }),
      listDecisions: client.listDecisions({ signal }),
      lessons: client.lessons({ signal }),
      awaitDecision: client.awaitDecision(decision.id, { signal }),
      watch: client.watch({ signal }),
    };
    for (const [name, iteration] of Object.entries(iterations)) {
      expect(await drain(iteration as AsyncIterable<unknown>), name).to.deep.equal({ items: [], error: undefined });
    }
    // Nothing was stored by the aborted calls.
    expect((await client.getDecision(decision.id)).outcome).to.equal(Outcome.OUTCOME_UNSPECIFIED);
  });

  it("every call takes a timeoutMs: past it, a DeadlineExceededError", async () => {
    const decision = await client.review(suggestion()).decision;
    const timeoutMs = 0;
    const promises = {
      getDecision: client.getDecision(decision.id, { timeoutMs }),
      recordOutcome: client.recordOutcome(decision.id, Outcome.OUTCOME_SUCCESS, { timeoutMs }),
      summary: client.summary({ timeoutMs }),
      reviewers: client.reviewers({ timeoutMs }),
      resolve: client.resolve(decision.id, "approve", { timeoutMs }),
      "review.decision": client.review(suggestion(), { timeoutMs }).decision,
    };
    for (const [name, promise] of Object.entries(promises)) {
      const { error } = await settled(promise as Promise<unknown>);
      expect(error, name).to.be.instanceOf(DeadlineExceededError);
    }
    const iterations = {
      listDecisions: client.listDecisions({ timeoutMs }),
      lessons: client.lessons({ timeoutMs }),
      awaitDecision: client.awaitDecision(decision.id, { timeoutMs }),
      watch: client.watch({ timeoutMs }),
    };
    for (const [name, iteration] of Object.entries(iterations)) {
      expect((await drain(iteration as AsyncIterable<unknown>)).error, name).to.be.instanceOf(DeadlineExceededError);
    }
    expect((await settled(client.getDecision(decision.id, { timeoutMs: Number.NaN }))).error).to.be.instanceOf(TypeError);
    expect(() => client.review(suggestion(), { timeoutMs: -1 })).to.throw(TypeError, /timeoutMs/);
  });

  it("one deadline for a unary call, retries included: a server that is down is retried until the deadline, not past it", async () => {
    const proxy = await droppingProxy(ADDR, 0);
    // So many attempts that only the deadline can end the call.
    const flaky = connect(proxy.addr, { retry: { attempts: 1000, initialBackoffMs: 50, maxBackoffMs: 200 } });
    try {
      const started = Date.now();
      const { error } = await settled(flaky.summary({ timeoutMs: 3000 }));
      const elapsed = Date.now() - started;
      expect(error).to.be.instanceOf(CouncilError);
      expect([UnavailableError, DeadlineExceededError].some((c) => error instanceof c), String(error)).to.equal(true);
      expect(proxy.connections(), "it retried").to.be.at.least(2);
      // It stops when the next wait (at most 200 ms) would end past the deadline, never later.
      expect(elapsed, "it kept retrying until the deadline was near").to.be.at.least(2700);
      expect(elapsed, "it did not run past the deadline").to.be.below(3000 + 1500);
    } finally {
      flaky.close();
      proxy.close();
    }
  });

  it("one deadline for a review, retries included: a review cut mid-stream every time ends at its timeoutMs", async () => {
    const proxy = await droppingProxy(ADDR, 400);
    const flaky = connect(proxy.addr, { retry: { attempts: 1000, initialBackoffMs: 50, maxBackoffMs: 200 } });
    try {
      const started = Date.now();
      const review = flaky.review(suggestion(), { timeoutMs: 3000 });
      const votes: Vote[] = [];
      const { error } = await drain(review).then((r) => (votes.push(...(r.items as Vote[])), r));
      const elapsed = Date.now() - started;
      expect([UnavailableError, DeadlineExceededError].some((c) => error instanceof c), String(error)).to.equal(true);
      expect(review.attempts, "it retried").to.be.at.least(2);
      expect(elapsed, "it did not run past the deadline").to.be.below(3000 + 1500);
      // Each attempt got some votes before the cut; none is yielded twice.
      expect(new Set(votes.map((v) => v.reviewerRole)).size).to.equal(votes.length);
    } finally {
      flaky.close();
      proxy.close();
    }
  });

  it("the client's reviewTimeoutMs and timeoutMs are the defaults of its calls", async () => {
    const proxy = await droppingProxy(ADDR, 0);
    const flaky = connect(proxy.addr, { timeoutMs: 500, reviewTimeoutMs: 700, retry: { attempts: 1000, initialBackoffMs: 20, maxBackoffMs: 50 } });
    try {
      for (const call of [(): Promise<unknown> => flaky.reviewers(), (): Promise<unknown> => flaky.review(suggestion()).decision]) {
        const started = Date.now();
        const { error } = await settled(call());
        expect(error).to.be.instanceOf(CouncilError);
        expect(Date.now() - started).to.be.below(700 + 1500);
      }
    } finally {
      flaky.close();
      proxy.close();
    }
  });

  it("aborting a review while its votes stream ends the iteration quietly; its decision rejects with a CancelledError", async () => {
    const controller = new AbortController();
    const review = client.review(suggestion(), { signal: controller.signal });
    const votes: Vote[] = [];
    for await (const vote of review) {
      votes.push(vote);
      controller.abort();
    }
    expect(votes).to.have.length(1);
    const { value, error } = await settled(review.decision);
    // The review may have ended before the abort reached it: then the decision is there.
    if (error !== undefined) expect(error).to.be.instanceOf(CancelledError);
    else expect(value?.id).to.equal(review.decisionId);
  });

  it("a watch says when it is live (ready, onLive): a review stored after that is always seen", async () => {
    let onLive = 0;
    const watch = client.watch({ includeVotes: true, onLive: () => (onLive += 1) });
    await watch.ready;
    expect(watch.live).to.equal(true);
    expect(onLive).to.equal(1);
    const decision = await client.review(suggestion()).decision;
    const mine: WatchEvent[] = [];
    for await (const event of watch) {
      if ((event.kind === "vote" ? event.decisionId : event.decision.id) !== decision.id) continue;
      mine.push(event);
      if (event.kind === "decision") break;
    }
    expect(mine.map((e) => e.kind)).to.deep.equal(["vote", "vote", "vote", "vote", "vote", "decision"]);
    expect((await drain(watch)).error, "a watch is iterated once").to.be.instanceOf(TypeError);
  });

  it("a watch that fails or is cancelled before it is live rejects its ready; cancelled, its iteration ends quietly", async () => {
    const failed = client.watch({ timeoutMs: 0 });
    expect((await settled(failed.ready)).error).to.be.instanceOf(DeadlineExceededError);
    expect((await drain(failed)).error).to.be.instanceOf(DeadlineExceededError);

    const controller = new AbortController();
    const cancelled = client.watch({ signal: controller.signal });
    controller.abort();
    expect((await settled(cancelled.ready)).error).to.be.instanceOf(CancelledError);
    expect(await drain(cancelled)).to.deep.equal({ items: [], error: undefined });

    // Live, then aborted while it waits for events: the iteration ends without an error.
    const later = new AbortController();
    const live = client.watch({ signal: later.signal });
    await live.ready;
    const iterating = drain(live);
    later.abort();
    expect(await iterating).to.deep.equal({ items: [], error: undefined });
  });
});
