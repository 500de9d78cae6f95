/**
 * A reviewer stream attacked or misused (SPEC section 11): what it must say first, a reviewer that
 * floods votes for tasks it does not hold, one that never reads its tasks, shutdown; and the
 * metrics and ListReviewers counts a stream moves.
 */
import { Metadata, status } from "@grpc/grpc-js";
import { expect } from "chai";
import { LIMITS } from "../../src/domain/limits.js";
import { DecisionType, ReviewerRole, VoteType } from "../../src/gen/council/v1/review.js";
import { wireSuggestion } from "../support/fixtures.js";
import { TestReviewer } from "../support/reviewer.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { nextEvent, waitFor } from "../support/wait.js";
import { decisionOf, externalPolicy } from "./review_cases.js";

describe("reviewer streams under misuse", function () {
  this.timeout(30_000);
  let running: Running;
  const open: TestReviewer[] = [];
  const reviewer = (roles: ReviewerRole[], answer?: ConstructorParameters<typeof TestReviewer>[2]) => {
    const r = new TestReviewer(running.client, roles, answer);
    open.push(r);
    return r;
  };
  afterEach(async () => {
    for (const r of open.splice(0)) r.close();
    await running?.stop();
  });

  it("refuses a stream that does not start with a hello, a second hello, no roles, and a role that is not external", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: {} }), serveReviews: { helloTimeoutMs: 300 } });
    const voteFirst = running.client.serveReviews(new Metadata());
    voteFirst.on("data", () => undefined);
    voteFirst.write({ message: { $case: "vote", value: { taskId: "t", vote: 1, reasoning: "", concerns: [], conditions: [], confidence: 1, veto: "" } } });
    const first = await nextEvent<{ code: number; details: string }>(voteFirst, "error", { what: "the stream to end" });
    expect(first).to.include({ code: status.INVALID_ARGUMENT, details: "hello: must be the first message" });

    const twice = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]);
    await twice.connected();
    twice.call.write({ message: { $case: "hello", value: { roles: [ReviewerRole.REVIEWER_ROLE_SAFETY] } } });
    expect(await twice.whenEnded()).to.include({ code: status.FAILED_PRECONDITION });

    expect(await reviewer([]).whenEnded()).to.include({ code: status.INVALID_ARGUMENT, details: "hello.roles: must name at least one role" });
    const notExternal = await reviewer([ReviewerRole.REVIEWER_ROLE_QUALITY]).whenEnded();
    expect(notExternal?.code).to.equal(status.FAILED_PRECONDITION);
    expect(notExternal?.details).to.match(/role quality is not external in policy ext@\w+ \(external: safety\)/);

    const silent = running.client.serveReviews(new Metadata());
    silent.on("data", () => undefined);
    const timedOut = await nextEvent<{ code: number; details: string }>(silent, "error", { what: "the silent stream to end" });
    expect(timedOut).to.include({ code: status.INVALID_ARGUMENT, details: "hello: must be the first message, within 300 ms" });
  });

  it("ends a stream whose vote passes a suggestion's limits on its bytes; a vote past the vote limits only is invalid", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: { timeout: "10s", on_failure: "abstain" } }) });
    const r = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY], () => ({ vote: VoteType.VOTE_TYPE_APPROVE, confidence: 1, reasoning: "x".repeat(LIMITS.voteReasoningBytes + 1) }));
    await r.connected();
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    expect(decisionOf(events).votes[0]!.reasoning).to.equal(`[SAFETY] No external vote: invalid vote: reasoning is ${LIMITS.voteReasoningBytes + 1} bytes; the limit is ${LIMITS.voteReasoningBytes}`);
    expect(r.ended).to.equal(false);
    r.vote({ taskId: "t", vote: VoteType.VOTE_TYPE_APPROVE, reasoning: "x".repeat(LIMITS.textBytes + 1) });
    const ended = await r.whenEnded();
    expect(ended?.code, ended?.details).to.equal(status.INVALID_ARGUMENT);
    expect(ended?.details).to.match(/reasoning/);
  });

  it("ends a reviewer that floods votes for tasks it does not hold, and the review goes on", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: { timeout: "500ms" } }) });
    const flooder = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY], () => undefined);
    await flooder.connected();
    for (let i = 0; i < 1000 && !flooder.ended; i++) flooder.vote({ taskId: `task-forged-${i}`, vote: VoteType.VOTE_TYPE_APPROVE, confidence: 1 });
    const ended = await flooder.whenEnded();
    expect(ended?.code).to.equal(status.RESOURCE_EXHAUSTED);
    expect(ended?.details).to.match(/votes for tasks this reviewer does not hold/);
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    expect(decisionOf(events).votes[0]!.castBy).to.equal("fallback:needs_more_info");
  });

  it("ends a reviewer that leaves its tasks unread past the bound, and gives its task to another", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: { timeout: "10s" } }), serveReviews: { unreadBytes: 3 * 1024 * 1024 } });
    // A stream whose tasks are never read: no listener, so HTTP/2 flow control stops the server's writes.
    const deaf = running.client.serveReviews(new Metadata());
    const deafEnded = new Promise<{ code: number }>((resolve) => deaf.on("error", resolve));
    const headers = nextEvent(deaf, "metadata", { what: "the deaf reviewer's headers" });
    deaf.write({ message: { $case: "hello", value: { roles: [ReviewerRole.REVIEWER_ROLE_SAFETY] } } });
    await headers;
    const diff = "+x\n".repeat(LIMITS.diffBytes / 3 - 10);
    const reviews = [0, 1, 2, 3].map(() => review(running.client, { suggestion: wireSuggestion({ diff }), dryRun: true }));
    expect((await deafEnded).code).to.equal(status.RESOURCE_EXHAUSTED);
    // A reviewer that reads gets the tasks the deaf one held, and every review ends with its vote.
    const reading = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]);
    await reading.connected();
    for (const { events, error } of await Promise.all(reviews)) {
      expect(error).to.equal(undefined);
      expect(decisionOf(events).votes[0]!.castBy).to.be.oneOf(["anonymous", "fallback:needs_more_info"]);
    }
    deaf.cancel();
  });

  it("ListReviewers and the metrics count connected reviewers and external votes by result", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: { timeout: "300ms" }, quality: {} }), metricsAddr: "127.0.0.1:0" });
    const a = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]);
    const b = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY, ReviewerRole.REVIEWER_ROLE_QUALITY], () => undefined);
    await Promise.all([a.connected(), b.connected()]);
    const listed = await call(running.client, running.client.listReviewers, {});
    expect(listed.reviewers.map((r) => [r.external, r.connected])).to.deep.equal([[true, 2], [false, 0], [false, 0], [false, 0], [true, 1]]);
    expect(listed.reviewers[0]!.timeout).to.deep.equal({ seconds: 0, nanos: 300_000_000 });
    expect(listed.reviewers[4]!.timeout).to.deep.equal({ seconds: 5, nanos: 0 });

    const metrics = async () => (await fetch(`http://127.0.0.1:${running.server.metricsPort}/metrics`)).text();
    expect(await metrics()).to.contain('council_reviewers_connected{role="safety"} 2');
    b.close();
    await waitFor(async () => (await call(running.client, running.client.listReviewers, {})).reviewers[4]!.connected === 0, { what: "quality to count 0" });
    // Safety goes to `a` (the only one left); quality has nobody.
    const { events } = await review(running.client, { suggestion: wireSuggestion() });
    expect(decisionOf(events).decision).to.not.equal(DecisionType.DECISION_TYPE_AUTO_APPROVE);
    // The metrics page is rendered at most once a second (metrics.ts): wait for one rendered since.
    const text = await waitFor(async () => {
      const t = await metrics();
      return /^council_external_votes_total\{/m.test(t) && t;
    }, { what: "a metrics page with the external votes" });
    expect(text).to.contain('council_reviewers_connected{role="safety"} 1');
    expect(text).to.contain('council_external_votes_total{role="safety",result="vote"} 1');
    expect(text).to.contain('council_external_votes_total{role="quality",result="no_reviewer_connected"} 1');
    expect(text).to.match(/council_external_vote_duration_seconds_count\{role="safety"\} 1/);
  });

  it("refuses a reviewer stream past the replica's limit, and takes one again once another has left", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: {} }), serveReviews: { maxReviewers: 2 } });
    const [a, b] = [reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]), reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY])];
    await Promise.all([a.connected(), b.connected()]);
    const third = await reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]).whenEnded();
    expect(third).to.include({ code: status.RESOURCE_EXHAUSTED });
    expect(third?.details).to.match(/already has 2 reviewer streams open, its limit/);
    a.close();
    await a.whenEnded();
    await waitFor(async () => (await call(running.client, running.client.listReviewers, {})).reviewers[0]!.connected === 1, { what: "one reviewer left" });
    await reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]).connected();
  });

  it("ends reviewer streams UNAVAILABLE at shutdown", async () => {
    running = await startCouncil({ policy: externalPolicy({ safety: {} }) });
    const r = reviewer([ReviewerRole.REVIEWER_ROLE_SAFETY]);
    await r.connected();
    const stopping = running.stop();
    expect((await r.whenEnded())?.code).to.equal(status.UNAVAILABLE);
    await stopping;
    running = undefined as never;
  });
});
