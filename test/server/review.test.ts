import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import {
  DecisionType,
  Outcome,
  ReviewerRole,
  RiskLevel,
  VoteType,
} from "../../src/gen/council/v1/review.js";
import { wireSuggestion, unique } from "../support/fixtures.js";
import { call, eventually, gate, review, startCouncil, type Running } from "../support/server.js";

const ORDER = [
  ReviewerRole.REVIEWER_ROLE_SAFETY,
  ReviewerRole.REVIEWER_ROLE_PERFORMANCE,
  ReviewerRole.REVIEWER_ROLE_ARCHITECTURE,
  ReviewerRole.REVIEWER_ROLE_COMPLIANCE,
  ReviewerRole.REVIEWER_ROLE_QUALITY,
];

describe("ReviewSuggestion over gRPC", () => {
  let c: Running;
  beforeEach(async () => (c = await startCouncil()));
  afterEach(() => c.stop());

  it("streams five votes in reviewer order, then the stored decision, then ends OK", async () => {
    const s = wireSuggestion();
    const { events, error } = await review(c.client, { suggestion: s });
    expect(error).to.equal(undefined);
    expect(events).to.have.length(6);
    const decisionId = events[5]!.decisionId;
    expect(decisionId).to.match(/^dec-[0-9a-f]{24}$/);
    events.forEach((e) => {
      expect(e.decisionId).to.equal(decisionId);
      expect(e.suggestionId).to.equal(s.id);
    });
    const votes = events.slice(0, 5).map((e) => (e.event?.$case === "vote" ? e.event.value : undefined));
    expect(votes.map((v) => v?.reviewerRole)).to.deep.equal(ORDER);
    votes.forEach((v) => expect(v?.castAt).to.be.instanceOf(Date));
    const last = events[5]!.event;
    expect(last?.$case).to.equal("decision");
    if (last?.$case !== "decision") return;
    expect(last.value.id).to.equal(decisionId);
    expect(last.value.decision).to.equal(DecisionType.DECISION_TYPE_AUTO_APPROVE);
    expect(last.value.votes.map((v) => v.reviewerRole)).to.deep.equal(ORDER);
    expect(last.value.suggestion).to.deep.equal(s);
    expect(last.value.policyVersion).to.match(/^default@[0-9a-f]{12}$/);
    const stored = await call(c.client, c.client.getDecision, { id: decisionId });
    expect(stored.decision).to.deep.equal(last.value);
  });

  it("sends each vote before the next reviewer has voted (the stream is live, not buffered)", async () => {
    await c.stop();
    const held = gate();
    let reviewersStarted = 0;
    c = await startCouncil({
      beforeVote: async (_role, index) => {
        reviewersStarted = index + 1;
        if (index === 1) await held.promise; // performance waits until the client has the safety vote
      },
    });
    const stream = c.client.reviewSuggestion({ suggestion: wireSuggestion(), requestId: "", dryRun: false, supersedes: "" });
    const arrivals: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (e) => {
        arrivals.push(e.event!.$case);
        if (arrivals.length === 1) {
          // Only the safety reviewer has voted: the decision cannot have been computed yet.
          expect(reviewersStarted).to.equal(2);
          held.open();
        }
      });
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    await done;
    expect(arrivals).to.deep.equal(["vote", "vote", "vote", "vote", "vote", "decision"]);
  });

  it("replays an idempotent repeat with the same decision and stores nothing new", async () => {
    const s = wireSuggestion();
    const requestId = unique("req");
    const first = await review(c.client, { suggestion: s, requestId });
    const again = await review(c.client, { suggestion: { ...s }, requestId });
    expect(again.error).to.equal(undefined);
    expect(again.events.map((e) => e.decisionId)).to.deep.equal(first.events.map((e) => e.decisionId));
    expect(again.events).to.deep.equal(first.events); // the stored votes, timestamps included
    const summary = await call(c.client, c.client.getSummary, {});
    expect(summary.totalDecisions).to.equal(1);
  });

  it("refuses a request_id reused for a different suggestion with FAILED_PRECONDITION", async () => {
    const s = wireSuggestion();
    const requestId = unique("req");
    await review(c.client, { suggestion: s, requestId });
    const other = await review(c.client, { suggestion: { ...s, title: "Something else" }, requestId });
    expect(other.error?.code).to.equal(status.FAILED_PRECONDITION);
    expect(other.error?.details).to.include(requestId);
    expect(other.events).to.deep.equal([]);
  });

  it("makes one decision for concurrent repeats of one request_id, and every caller gets it", async () => {
    const s = wireSuggestion();
    const requestId = unique("req");
    const results = await Promise.all(Array.from({ length: 8 }, () => review(c.client, { suggestion: s, requestId })));
    const ids = new Set(results.map((r) => r.events.at(-1)?.decisionId));
    expect(ids.size).to.equal(1);
    results.forEach((r) => expect(r.events.at(-1)?.event?.$case).to.equal("decision"));
    expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(1);
  });

  it("dry run streams votes and a decision with an id but stores nothing, and ignores request_id", async () => {
    const s = wireSuggestion();
    const requestId = unique("req");
    const dry = await review(c.client, { suggestion: s, requestId, dryRun: true });
    expect(dry.error).to.equal(undefined);
    expect(dry.events).to.have.length(6);
    const id = dry.events[5]!.decisionId;
    expect(id).to.match(/^dec-/);
    const summary = await call(c.client, c.client.getSummary, {});
    expect(summary.totalDecisions).to.equal(0);
    const missing = await call(c.client, c.client.getDecision, { id }).catch((e) => e);
    expect(missing.code).to.equal(status.NOT_FOUND);
    // The request_id is still free: a real review with it stores a decision.
    const real = await review(c.client, { suggestion: s, requestId });
    expect(real.events[5]!.decisionId).to.not.equal(id);
    expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(1);
  });

  it("finishes and stores a review whose caller cancelled mid-stream, leaving no work behind", async () => {
    await c.stop();
    const held = gate();
    c = await startCouncil({ beforeVote: async (_r, index) => (index === 2 ? held.promise : undefined) });
    const s = wireSuggestion();
    const requestId = unique("req");
    const stream = c.client.reviewSuggestion({ suggestion: s, requestId, dryRun: false, supersedes: "" });
    const cancelled = new Promise<number>((resolve) => {
      stream.on("data", () => stream.cancel());
      stream.on("error", (e: { code: number }) => resolve(e.code));
    });
    expect(await cancelled).to.equal(status.CANCELLED);
    expect(c.council.reviewsInFlight).to.equal(1);
    held.open();
    await eventually(() => c.council.reviewsInFlight === 0, 5000, "the review to finish");
    const summary = await call(c.client, c.client.getSummary, {});
    expect(summary.totalDecisions).to.equal(1);
    // A retry finds the stored review.
    const retry = await review(c.client, { suggestion: s, requestId });
    expect(retry.events).to.have.length(6);
    expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(1);
  });

  it("records outcomes, replacing the last one, and keeps the summary exact", async () => {
    const a = (await review(c.client, { suggestion: wireSuggestion() })).events[5]!.decisionId;
    const b = (await review(c.client, { suggestion: wireSuggestion({ title: "exposes secrets in logs" }) })).events[5]!
      .decisionId;
    const first = await call(c.client, c.client.recordOutcome, {
      decisionId: a,
      outcome: Outcome.OUTCOME_FAILURE,
      notes: "broke staging",
      lessons: "run the integration suite",
      requestId: "",
    });
    expect(first.decision?.outcome).to.equal(Outcome.OUTCOME_FAILURE);
    expect(first.decision?.implementedAt).to.be.instanceOf(Date);
    const second = await call(c.client, c.client.recordOutcome, {
      decisionId: a,
      outcome: Outcome.OUTCOME_SUCCESS,
      notes: "fixed forward",
      lessons: "canary first",
      requestId: "",
    });
    expect(second.decision).to.deep.include({ outcome: Outcome.OUTCOME_SUCCESS, outcomeNotes: "fixed forward", lessonsLearned: "canary first" });
    const summary = await call(c.client, c.client.getSummary, {});
    expect(summary).to.deep.equal({
      totalDecisions: 2,
      byType: { auto_approve: 1, human_approve: 0, defer: 0, reject: 1, escalate: 0 },
      outcomes: { success: 1, failure: 0, partial: 0, pending: 1 },
      autoApproved: 1,
      learningEntries: 2,
      byStatus: { pending: 0, approved: 1, rejected: 1, expired: 0, superseded: 0 },
    });
    const stored = await call(c.client, c.client.getDecision, { id: b });
    expect(stored.decision?.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
    expect(stored.decision?.finalReasoning).to.equal("Vetoed by safety: exposes_secrets");
    const lessons = await call(c.client, c.client.listLessons, { pageSize: 0, pageToken: "" });
    expect(lessons.lessons.map((l) => l.lessons)).to.deep.equal(["canary first", "run the integration suite"]);
    expect(lessons.nextPageToken).to.equal("");
  });

  it("records an outcome once per request_id: a retry returns the decision, a different outcome is refused", async () => {
    const id = (await review(c.client, { suggestion: wireSuggestion() })).events[5]!.decisionId;
    const req = { decisionId: id, outcome: Outcome.OUTCOME_SUCCESS, notes: "shipped", lessons: "fine", requestId: unique("oreq") };
    const first = await call(c.client, c.client.recordOutcome, req);
    const retry = await call(c.client, c.client.recordOutcome, { ...req });
    expect(retry.decision).to.deep.equal(first.decision);
    const summary = await call(c.client, c.client.getSummary, {});
    expect(summary.learningEntries).to.equal(1);
    expect(summary.outcomes.success).to.equal(1);
    const conflict = await call(c.client, c.client.recordOutcome, { ...req, outcome: Outcome.OUTCOME_FAILURE }).catch((e) => e);
    expect(conflict.code).to.equal(status.FAILED_PRECONDITION);
    expect(conflict.details).to.include(req.requestId);
  });

  it("pages through 120 decisions newest first, each exactly once, with filters", async () => {
    const s = wireSuggestion({ risk: RiskLevel.RISK_LEVEL_HIGH });
    const made: string[] = [];
    for (let i = 0; i < 120; i++) {
      const r = await review(c.client, { suggestion: i % 4 === 0 ? s : wireSuggestion() });
      made.push(r.events[5]!.decisionId);
    }
    const seen: string[] = [];
    const times: number[] = [];
    let pageToken = "";
    for (let page = 0; page < 100; page++) {
      const res = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 7, pageToken, status: 0, oldestFirst: false });
      expect(res.decisions.length).to.be.at.most(7);
      seen.push(...res.decisions.map((d) => d.id));
      times.push(...res.decisions.map((d) => d.decidedAt!.getTime()));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    expect(new Set(seen).size).to.equal(seen.length);
    expect([...seen].sort()).to.deep.equal([...made].sort());
    expect(times).to.deep.equal([...times].sort((x, y) => y - x)); // newest first
    const bySuggestion = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: s.id, pageSize: 500, pageToken: "", status: 0, oldestFirst: false });
    expect(bySuggestion.decisions).to.have.length(30);
    expect(bySuggestion.nextPageToken).to.equal("");
    const deferred = await call(c.client, c.client.listDecisions, {
      decisionType: DecisionType.DECISION_TYPE_DEFER,
      suggestionId: "",
      pageSize: 0,
      pageToken: "",
      status: 0,
      oldestFirst: false,
    });
    expect(deferred.decisions.map((d) => d.decision)).to.satisfy((ts: number[]) => ts.every((t) => t === DecisionType.DECISION_TYPE_DEFER));
    const defaultPage = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 0, pageToken: "", status: 0, oldestFirst: false });
    expect(defaultPage.decisions).to.have.length(50);
    const capped = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 100_000, pageToken: "", status: 0, oldestFirst: false });
    expect(capped.decisions).to.have.length(120);
  });

  it("lists the reviewers of the policy in force, in voting order", async () => {
    const res = await call(c.client, c.client.listReviewers, {});
    expect(res.reviewers.map((r) => r.role)).to.deep.equal(ORDER);
    expect(res.reviewers[0]).to.deep.equal({
      role: ReviewerRole.REVIEWER_ROLE_SAFETY,
      expertiseAreas: ["security", "access_control", "data_protection", "audit"],
      riskTolerance: 0.2,
      priorityFocus: ["no_security_regression", "audit_trail", "access_control"],
      vetoConditions: ["removes_security_check", "bypasses_authentication", "exposes_secrets", "disables_audit_logging"],
      external: false,
      timeout: undefined,
      onFailure: 0,
      connected: 0,
    });
    expect(res.policyVersion).to.equal(c.council.policy.version);
  });

  it("votes carry the veto that fired", async () => {
    const r = await review(c.client, { suggestion: wireSuggestion({ reasoning: "this bypasses authentication" }) });
    const safety = r.events[0]!.event;
    expect(safety?.$case === "vote" && safety.value).to.deep.include({
      vote: VoteType.VOTE_TYPE_REJECT,
      veto: "bypasses_authentication",
      reasoning: "Veto condition triggered: bypasses_authentication",
    });
  });
});
