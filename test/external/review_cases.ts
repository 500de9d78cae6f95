/**
 * How a review treats its external reviewers, through gRPC (SPEC section 11): each failure policy,
 * ESCALATE reached through `abstain`, a replay that asks nobody, a dry run, repeats arriving
 * together, a caller's deadline shorter than the timeout. `externalReviewCases` runs them on a
 * server made by `start` (the in-process store here; test/redis runs them on Redis).
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { parsePolicy, type Policy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import type { CouncilServiceClient, ReviewSuggestionRequest, ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType, ReviewerRole, RiskLevel, VoteType, type Decision } from "../../src/gen/council/v1/review.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { TestReviewer } from "../support/reviewer.js";
import { collect, eventually, review, type Running, type StartOptions } from "../support/server.js";

/** The default council with the roles named external (the others built in), in voting order. */
export function externalPolicy(externals: Record<string, { timeout?: string; on_failure?: string }>, name = "ext"): Policy {
  const reviewers = PRESETS.default.reviewers.map((r) => (externals[r.role] ? { role: r.role, external: externals[r.role] } : { role: r.role }));
  return parsePolicy(name, { reviewers }, PRESETS.default);
}

export const votesOf = (events: ReviewSuggestionResponse[]) => events.flatMap((e) => (e.event?.$case === "vote" ? [e.event.value] : []));

export function decisionOf(events: ReviewSuggestionResponse[]): Decision {
  const last = events.at(-1)?.event;
  if (last?.$case !== "decision") throw new Error(`the review did not end with a decision: ${JSON.stringify(events.map((e) => e.event?.$case))}`);
  return last.value;
}

export type Start = (options: StartOptions & { policy: Policy }) => Promise<Running>;

export function externalReviewCases(label: string, start: Start): void {
  describe(`external reviewers in a review (${label})`, function () {
    this.timeout(30_000);
    let running: Running | undefined;
    const reviewers: TestReviewer[] = [];
    const serve = async (client: CouncilServiceClient, roles: ReviewerRole[], answer?: ConstructorParameters<typeof TestReviewer>[2]) => {
      const r = new TestReviewer(client, roles, answer);
      reviewers.push(r);
      await r.connected();
      return r;
    };
    afterEach(async () => {
      for (const r of reviewers.splice(0)) r.close();
      await running?.stop();
      running = undefined;
    });

    it("on_failure rules: the built-in rules' vote for that role, cast_by fallback:rules", async () => {
      running = await start({ policy: externalPolicy({ safety: { on_failure: "rules" } }) });
      const { events } = await review(running.client, { suggestion: wireSuggestion({ reasoning: "this bypasses authentication" }) });
      const safety = decisionOf(events).votes[0]!;
      expect(safety).to.include({ vote: VoteType.VOTE_TYPE_REJECT, veto: "bypasses_authentication", castBy: "fallback:rules" });
      expect(decisionOf(events).decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
    });

    it("on_failure abstain makes ESCALATE reachable: three absent reviewers leave two approvals", async () => {
      running = await start({ policy: externalPolicy({ safety: { on_failure: "abstain" }, performance: { on_failure: "abstain" }, architecture: { on_failure: "abstain" } }) });
      const { events } = await review(running.client, { suggestion: wireSuggestion() });
      const d = decisionOf(events);
      expect(d.votes.map((v) => v.vote)).to.deep.equal([3, 3, 3, 1, 1]);
      expect(d.votes.slice(0, 3).map((v) => v.castBy)).to.deep.equal(["fallback:abstain", "fallback:abstain", "fallback:abstain"]);
      expect(d.decision).to.equal(DecisionType.DECISION_TYPE_ESCALATE);
    });

    it("on_failure needs_more_info (the default) sends a low-risk change to people instead of auto-approving it", async () => {
      running = await start({ policy: externalPolicy({ quality: {} }) });
      const { events } = await review(running.client, { suggestion: wireSuggestion({ risk: RiskLevel.RISK_LEVEL_LOW }) });
      const d = decisionOf(events);
      expect(d.votes[4]).to.include({ vote: VoteType.VOTE_TYPE_NEEDS_MORE_INFO, castBy: "fallback:needs_more_info", confidence: 0 });
      expect(d.decision).to.not.equal(DecisionType.DECISION_TYPE_AUTO_APPROVE);
    });

    it("on_failure reject fails closed: a veto no_external_vote rejects a change the other four approve", async () => {
      running = await start({ policy: externalPolicy({ quality: { on_failure: "reject" } }) });
      const { events } = await review(running.client, { suggestion: wireSuggestion() });
      const d = decisionOf(events);
      expect(d.votes.slice(0, 4).every((v) => v.vote === VoteType.VOTE_TYPE_APPROVE)).to.equal(true);
      expect(d.votes[4]).to.include({ vote: VoteType.VOTE_TYPE_REJECT, veto: "no_external_vote", castBy: "fallback:reject" });
      expect(d.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
      expect(d.finalReasoning).to.equal("Vetoed by quality: no_external_vote");
    });

    it("a replay asks nobody and returns the stored votes; a dry run asks with dry_run set and stores nothing", async () => {
      running = await start({ policy: externalPolicy({ safety: {} }) });
      const r = await serve(running.client, [ReviewerRole.REVIEWER_ROLE_SAFETY]);
      const request = { suggestion: wireSuggestion(), requestId: unique("req") };
      const first = await review(running.client, request);
      const again = await review(running.client, request);
      expect(r.tasks).to.have.length(1);
      expect(r.tasks[0]!.dryRun).to.equal(false);
      expect(votesOf(again.events)).to.deep.equal(decisionOf(first.events).votes);
      expect(decisionOf(again.events)).to.deep.equal(decisionOf(first.events));

      const dry = await review(running.client, { suggestion: wireSuggestion(), dryRun: true });
      expect(r.tasks).to.have.length(2);
      expect(r.tasks[1]!.dryRun).to.equal(true);
      expect(decisionOf(dry.events).votes[0]!.castBy).to.equal("anonymous");
      const stored = await new Promise<ServiceError | null>((resolve) =>
        running!.client.getDecision({ id: decisionOf(dry.events).id }, (err) => resolve(err)),
      );
      expect(stored?.code).to.equal(status.NOT_FOUND);
    });

    it("repeats of one request arriving together ask the reviewers once and get the same decision", async () => {
      running = await start({ policy: externalPolicy({ safety: {} }) });
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const r = await serve(running.client, [ReviewerRole.REVIEWER_ROLE_SAFETY], async () => {
        await held;
        return { vote: VoteType.VOTE_TYPE_APPROVE, confidence: 0.9 };
      });
      const request: Partial<ReviewSuggestionRequest> = { suggestion: wireSuggestion(), requestId: unique("req") };
      const calls = [0, 1, 2].map(() => review(running!.client, request));
      // The first call holds the claim (its task is out); the others wait for its decision.
      await new Promise<void>((resolve) => (r.tasks.length ? resolve() : r.once("task", () => resolve())));
      await eventually(() => running!.council.reviewsInFlight === 3, 5000, "all three calls in flight");
      release();
      const results = await Promise.all(calls);
      expect(r.tasks).to.have.length(1);
      const decisions = results.map(({ events, error }) => {
        expect(error).to.equal(undefined);
        return decisionOf(events);
      });
      expect(new Set(decisions.map((d) => JSON.stringify(d))).size).to.equal(1);
      expect(decisions[0]!.votes[0]!.castBy).to.equal("anonymous");
    });

    it("a caller's deadline shorter than the timeout is honoured, and the review is still stored", async () => {
      running = await start({ policy: externalPolicy({ safety: { timeout: "1s", on_failure: "abstain" } }) });
      await serve(running.client, [ReviewerRole.REVIEWER_ROLE_SAFETY], () => undefined);
      const requestId = unique("req");
      const suggestion = wireSuggestion();
      const short = await collect<ReviewSuggestionResponse>(
        running.client.reviewSuggestion({ suggestion, requestId, dryRun: false, supersedes: "" }, { deadline: Date.now() + 200 }),
      );
      expect(short.error?.code).to.equal(status.DEADLINE_EXCEEDED);
      // The same request later replays what was stored once the timeout passed.
      const later = await review(running.client, { suggestion, requestId });
      expect(later.error).to.equal(undefined);
      expect(decisionOf(later.events).votes[0]).to.include({ castBy: "fallback:abstain" });
    });
  });
}
