/** The TypeScript client against a live Council server at COUNCIL_TEST_ADDR (host:port). */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { connect, CouncilError, DecisionType, ImpactLevel, Outcome, ReviewerRole, RiskLevel, status, type CouncilClient, type Vote, type WatchEvent } from "../src/index.js";
import { flakyProxy as flakyToServer } from "./proxy.js";

const ADDR = process.env.COUNCIL_TEST_ADDR;
if (!ADDR) throw new Error("set COUNCIL_TEST_ADDR to the host:port of a running Council server");
const flakyProxy = (cutAfterBytes: number) => flakyToServer(ADDR, cutAfterBytes);

const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
const suggestion = (extra: Record<string, unknown> = {}) => ({
  id: uid("ts-sug"),
  title: "Tidy the retry helper",
  risk: RiskLevel.RISK_LEVEL_LOW,
  impact: ImpactLevel.IMPACT_LEVEL_LOW,
  autoFixable: true,
  fixSteps: ["Apply the patch", "Run the tests"],
  ...extra,
});

describe("TypeScript client", () => {
  let client: CouncilClient;
  before(() => (client = connect(ADDR)));
  after(() => client.close());

  it("yields each vote as it arrives, in reviewer order, then the decision", async () => {
    const review = client.review(suggestion());
    const arrived: string[] = [];
    const roles: ReviewerRole[] = [];
    void review.decision.then(() => arrived.push("decision"));
    for await (const vote of review) {
      arrived.push("vote");
      roles.push(vote.reviewerRole);
    }
    const decision = await review.decision;
    expect(arrived.slice(0, 5)).to.deep.equal(["vote", "vote", "vote", "vote", "vote"]);
    expect(roles).to.deep.equal([1, 2, 3, 4, 5].map((n) => n as ReviewerRole));
    expect(decision.id).to.equal(review.decisionId);
    expect(decision.decision).to.equal(DecisionType.DECISION_TYPE_AUTO_APPROVE);
    expect(review.requestId).to.match(/^[0-9a-f-]{36}$/);
    expect((await client.getDecision(decision.id)).id).to.equal(decision.id);
  });

  it("replays the same decision for the same request_id", async () => {
    const s = suggestion();
    const requestId = uid("req");
    const first = await client.review(s, { requestId }).decision;
    const again = await client.review(s, { requestId }).decision;
    expect(again.id).to.equal(first.id);
    expect(again.requestId).to.equal(requestId);
  });

  it("retries a review whose reply was lost with the same request_id: one decision, every vote once", async () => {
    const proxy = await flakyProxy(400);
    const flaky = connect(proxy.addr, { retry: { attempts: 5, initialBackoffMs: 50, maxBackoffMs: 200 } });
    try {
      const s = suggestion();
      const review = flaky.review(s);
      const votes: Vote[] = [];
      for await (const v of review) votes.push(v);
      const decision = await review.decision;
      expect(proxy.cuts()).to.equal(1);
      expect(votes.map((v) => v.reviewerRole)).to.deep.equal([1, 2, 3, 4, 5]);
      const stored: string[] = [];
      for await (const d of client.listDecisions({ suggestionId: s.id })) stored.push(d.id);
      expect(stored).to.deep.equal([decision.id]);
    } finally {
      flaky.close();
      proxy.close();
    }
  });

  it("dry run streams a decision that is not stored", async () => {
    const review = client.review(suggestion(), { dryRun: true });
    const decision = await review.decision;
    expect(review.requestId).to.equal("");
    const err = await client.getDecision(decision.id).catch((e: CouncilError) => e);
    expect((err as CouncilError).code).to.equal(status.NOT_FOUND);
  });

  it("walks every page of a listing, each decision exactly once", async () => {
    const id = uid("ts-paging");
    const made = new Set<string>();
    for (let i = 0; i < 120; i++) made.add((await client.review(suggestion({ id })).decision).id);
    const seen: string[] = [];
    for await (const d of client.listDecisions({ suggestionId: id, pageSize: 25 })) seen.push(d.id);
    expect(seen).to.have.length(120);
    expect(new Set(seen)).to.deep.equal(made);
  });

  it("surfaces a validation error as a CouncilError with its gRPC status", async () => {
    const err = await client.review(suggestion({ title: "  " })).decision.catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CouncilError);
    expect((err as CouncilError).code).to.equal(status.INVALID_ARGUMENT);
    expect((err as CouncilError).details).to.match(/^suggestion\.title:/);
    const iterated = await (async () => {
      for await (const _ of client.review(suggestion({ risk: 0 }))) void _;
    })().catch((e: unknown) => e);
    expect((iterated as CouncilError).code).to.equal(status.INVALID_ARGUMENT);
  });

  it("watches new reviews until aborted", async () => {
    const controller = new AbortController();
    const events: WatchEvent[] = [];
    const watching = (async () => {
      for await (const e of client.watch({ includeVotes: true, signal: controller.signal })) events.push(e);
    })();
    let target = "";
    const deadline = Date.now() + 10_000;
    // The watch starts when the server has the call: keep reviewing until one shows up.
    while (Date.now() < deadline) {
      target = (await client.review(suggestion()).decision).id;
      await new Promise((r) => setTimeout(r, 100));
      if (events.some((e) => e.kind === "decision" && e.decision.id === target)) break;
    }
    controller.abort();
    await watching;
    const mine = events.filter((e) => (e.kind === "vote" ? e.decisionId : e.decision.id) === target);
    expect(mine.map((e) => e.kind)).to.deep.equal(["vote", "vote", "vote", "vote", "vote", "decision"]);
  });

  it("retries an outcome whose reply was lost with the same request_id: one lesson", async () => {
    const decision = await client.review(suggestion()).decision;
    // The HTTP/2 handshake is under 200 bytes and the reply, a whole decision, well over: the first
    // connection dies while the reply comes back, after the server has recorded the outcome.
    const proxy = await flakyProxy(200);
    const flaky = connect(proxy.addr, { retry: { attempts: 5, initialBackoffMs: 50, maxBackoffMs: 200 } });
    try {
      const before = await client.summary();
      const lessons = uid("lesson");
      const updated = await flaky.recordOutcome(decision.id, Outcome.OUTCOME_SUCCESS, { lessons });
      expect(updated.lessonsLearned).to.equal(lessons);
      expect(proxy.cuts()).to.equal(1);
      const after = await client.summary();
      expect(after.learningEntries - before.learningEntries).to.equal(1);
    } finally {
      flaky.close();
      proxy.close();
    }
  });

  it("records outcomes, reads the summary, lessons and reviewers", async () => {
    const decision = await client.review(suggestion()).decision;
    const before = await client.summary();
    const updated = await client.recordOutcome(decision.id, Outcome.OUTCOME_PARTIAL, { notes: "half", lessons: uid("lesson") });
    expect(updated.outcome).to.equal(Outcome.OUTCOME_PARTIAL);
    const after = await client.summary();
    expect(after.learningEntries).to.equal(before.learningEntries + 1);
    expect(after.outcomes.partial).to.equal((before.outcomes.partial ?? 0) + 1);
    let found = false;
    for await (const l of client.lessons({ pageSize: 50 })) {
      if (l.lessons === updated.lessonsLearned) {
        found = true;
        break;
      }
    }
    expect(found).to.equal(true);
    const { reviewers, policyVersion } = await client.reviewers();
    expect(reviewers).to.have.length(5);
    expect(policyVersion).to.match(/@[0-9a-f]{12}$/);
  });
});
