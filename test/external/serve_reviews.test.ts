/**
 * External reviewers through gRPC on the in-process store (SPEC section 11): a reviewer agent on
 * ServeReviews votes on reviews, its votes stream as cast and count like built-in ones, and each
 * failure (silence, an invalid vote, nobody connected, a reviewer that leaves) casts the role's
 * failure-policy vote, within the timeout.
 */
import { expect } from "chai";
import type { Policy } from "../../src/domain/policy.js";
import type { ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType, FailurePolicy, ReviewerRole, VoteType } from "../../src/gen/council/v1/review.js";
import { wireSuggestion } from "../support/fixtures.js";
import { TestReviewer } from "../support/reviewer.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { externalPolicy } from "./review_cases.js";

const votesOf = (events: ReviewSuggestionResponse[]) => events.flatMap((e) => (e.event?.$case === "vote" ? [e.event.value] : []));
const decisionOf = (events: ReviewSuggestionResponse[]) => events.find((e) => e.event?.$case === "decision")!.event!.value as never as {
  decision: DecisionType;
  votes: ReturnType<typeof votesOf>;
  finalReasoning: string;
};

describe("ServeReviews on the in-process store", function () {
  this.timeout(20_000);
  let running: Running;
  const reviewers: TestReviewer[] = [];
  const start = async (policy: Policy) => {
    running = await startCouncil({ policy });
  };
  const reviewer = async (...args: ConstructorParameters<typeof TestReviewer> extends [unknown, ...infer R] ? R : never) => {
    const r = new TestReviewer(running.client, ...args);
    reviewers.push(r);
    await r.connected();
    return r;
  };
  afterEach(async () => {
    for (const r of reviewers.splice(0)) r.close();
    await running?.stop();
  });

  it("sends the task with the diff, counts the reviewer's vote with cast_by its principal, in reviewer order", async () => {
    await start(externalPolicy({ safety: { timeout: "5s" } }));
    await reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY], () => ({ vote: VoteType.VOTE_TYPE_APPROVE, confidence: 0.7, reasoning: "diff is clean", concerns: ["none"] }));
    const diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";
    const { events, error } = await review(running.client, { suggestion: wireSuggestion({ diff }) });
    expect(error).to.equal(undefined);
    const d = decisionOf(events);
    expect(d.votes.map((v) => v.reviewerRole)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(d.votes[0]).to.include({ vote: VoteType.VOTE_TYPE_APPROVE, reasoning: "diff is clean", confidence: 0.7, castBy: "anonymous" });
    expect(d.votes.slice(1).every((v) => v.castBy === "rules")).to.equal(true);
    // The external vote arrives after the built-in ones (it needs a round trip): arrival order.
    expect(votesOf(events).map((v) => v.castBy)).to.deep.equal(["rules", "rules", "rules", "rules", "anonymous"]);
    expect(reviewers[0]!.tasks[0]!.suggestion!.diff).to.equal(diff);
    expect(reviewers[0]!.tasks[0]!.role).to.equal(ReviewerRole.REVIEWER_ROLE_SAFETY);
  });

  it("a reviewer's veto rejects the change under default whatever the other votes say", async () => {
    await start(externalPolicy({ safety: {} }));
    await reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY], () => ({ vote: VoteType.VOTE_TYPE_REJECT, confidence: 1, reasoning: "key", veto: "credential_in_diff" }));
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    const d = decisionOf(events);
    expect(d.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
    expect(d.finalReasoning).to.contain("credential_in_diff");
  });

  it("no reviewer connected: the failure policy at once, without waiting for the timeout", async () => {
    await start(externalPolicy({ safety: { timeout: "60s", on_failure: "needs_more_info" } }));
    const started = Date.now();
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    expect(Date.now() - started).to.be.below(30_000);
    const safety = decisionOf(events).votes[0]!;
    expect(safety).to.include({ vote: VoteType.VOTE_TYPE_NEEDS_MORE_INFO, confidence: 0, castBy: "fallback:needs_more_info", veto: "" });
    expect(safety.reasoning).to.equal("[SAFETY] No external vote: no reviewer connected");
  });

  it("a silent reviewer: the failure policy at the timeout, and its late vote is not counted", async () => {
    await start(externalPolicy({ safety: { timeout: "300ms", on_failure: "reject" } }));
    const silent = await reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY], () => undefined);
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    const d = decisionOf(events);
    expect(d.votes[0]).to.include({ vote: VoteType.VOTE_TYPE_REJECT, veto: "no_external_vote", castBy: "fallback:reject" });
    expect(d.votes[0]!.reasoning).to.equal("[SAFETY] No external vote: timed out");
    expect(d.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
    // A late answer finds no task; the stream stays open (one late vote per task is fair).
    silent.vote({ taskId: silent.tasks[0]!.taskId, vote: VoteType.VOTE_TYPE_APPROVE, confidence: 1 });
    const profiles = await call(running.client, running.client.listReviewers, {});
    expect(profiles.reviewers[0]).to.include({ external: true, onFailure: FailurePolicy.FAILURE_POLICY_REJECT, connected: 1 });
    expect(silent.ended).to.equal(false);
  });

  it("an invalid vote counts as a failure at once, naming what is wrong", async () => {
    await start(externalPolicy({ safety: { timeout: "60s", on_failure: "abstain" } }));
    await reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY], () => ({ vote: VoteType.VOTE_TYPE_APPROVE, confidence: 1.5 }));
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    const safety = decisionOf(events).votes[0]!;
    expect(safety).to.include({ vote: VoteType.VOTE_TYPE_ABSTAIN, castBy: "fallback:abstain" });
    expect(safety.reasoning).to.equal("[SAFETY] No external vote: invalid vote: confidence 1.5 is outside [0, 1]");
  });

  it("spreads tasks over the reviewers of a role, one after the other", async () => {
    await start(externalPolicy({ quality: {} }));
    const a = await reviewer([ReviewerRole.REVIEWER_ROLE_QUALITY]);
    const b = await reviewer([ReviewerRole.REVIEWER_ROLE_QUALITY]);
    for (let i = 0; i < 6; i++) await review(running.client, { suggestion: wireSuggestion() });
    expect([a.tasks.length, b.tasks.length]).to.deep.equal([3, 3]);
  });

  it("two reviewers of one role share the tasks; one that leaves mid-task has its task given to the other", async () => {
    await start(externalPolicy({ quality: { timeout: "10s" } }));
    const leaving = await reviewer([ReviewerRole.REVIEWER_ROLE_QUALITY], () => undefined);
    const staying = await reviewer([ReviewerRole.REVIEWER_ROLE_QUALITY]);
    const first = review(running.client, { suggestion: wireSuggestion() });
    const second = review(running.client, { suggestion: wireSuggestion() });
    // One task each (spread); the silent one leaves, and its task goes to the other.
    await new Promise<void>((resolve) => (leaving.tasks.length ? resolve() : leaving.once("task", () => resolve())));
    leaving.close();
    const results = await Promise.all([first, second]);
    for (const { events } of results) expect(decisionOf(events).votes[4]!.castBy).to.equal("anonymous");
    expect(staying.tasks).to.have.length(2);
    expect(leaving.tasks).to.have.length(1);
  });
});
