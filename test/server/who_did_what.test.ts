/**
 * Who did what, through gRPC with real principals (an auth file and bearer tokens), on the
 * in-process store and on a real redis-server (SPEC §8; issue 8, items 5 and 6):
 * - `submitted_by`, `outcome_recorded_by` and `recorded_by` as every read returns them: the review
 *   stream, GetDecision, ListDecisions, ListLessons and a watch;
 * - request ids are per principal: one id from two principals makes two decisions, and the same
 *   principal repeating it gets a replay; RecordOutcome's request ids likewise;
 * - an agent records outcomes only on decisions it submitted (PERMISSION_DENIED, naming why);
 *   an operator on any.
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { CouncilServiceClient, WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType, Outcome, type Decision } from "../../src/gen/council/v1/review.js";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import type { Store } from "../../src/store/store.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { writePrincipals, type Principals } from "../support/principals.js";
import { RedisServer } from "../support/redis.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

const decisionOf = (events: { event?: { $case: string; value: unknown } }[]): Decision => {
  const last = events[events.length - 1]?.event;
  if (last?.$case !== "decision") throw new Error("the stream did not end with a decision");
  return last.value as Decision;
};

async function refusal(promise: Promise<unknown>): Promise<ServiceError> {
  return promise.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: ServiceError) => err,
  );
}

function whoDidWhat(name: string, openStore: () => Promise<Store>) {
  describe(`who did what through gRPC: ${name}`, function () {
    this.timeout(30_000);
    let principals: Principals;
    let r: Running;
    let agentA: CouncilServiceClient;
    let agentB: CouncilServiceClient;
    let ops: CouncilServiceClient;

    before(async () => {
      principals = await writePrincipals({ "agent-a": ["agent"], "agent-b": ["agent"], ops: ["operator"] });
    });
    after(() => principals?.remove());
    beforeEach(async () => {
      r = await startCouncil({ store: await openStore(), authFile: principals.authFile });
      agentA = r.connect({ token: principals.tokens["agent-a"] });
      agentB = r.connect({ token: principals.tokens["agent-b"] });
      ops = r.connect({ token: principals.tokens.ops });
    });
    afterEach(() => r.stop());

    const record = (client: CouncilServiceClient, decisionId: string, outcome: Outcome, requestId = "", lessons = "learnt") =>
      call(client, client.recordOutcome, { decisionId, outcome, notes: "n", lessons, requestId });

    it("every read says who submitted a decision and who recorded its outcome", async () => {
      // A watch as the operator (any role may watch), live before the review is stored.
      const stream = ops.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: false, includeUpdates: false });
      const watched: WatchDecisionsResponse[] = [];
      stream.on("data", (e: WatchDecisionsResponse) => watched.push(e));
      stream.on("error", () => undefined);
      await within(new Promise((resolve) => stream.once("metadata", resolve)), { what: "the watch to be live" });

      const s = wireSuggestion();
      const dry = decisionOf((await review(agentA, { suggestion: s, dryRun: true })).events);
      expect(dry).to.deep.include({ submittedBy: "agent-a", outcomeRecordedBy: "" });
      const made = await review(agentA, { suggestion: s, requestId: unique("req") });
      expect(made.error).to.equal(undefined);
      const d = decisionOf(made.events);
      expect(d).to.deep.include({ submittedBy: "agent-a", outcomeRecordedBy: "" });

      await waitFor(() => watched.find((e) => e.decisionId === d.id), { what: "the decision on the watch" });
      const event = watched.find((e) => e.decisionId === d.id)!.event;
      expect(event?.$case === "decision" && event.value.submittedBy).to.equal("agent-a");
      stream.cancel();

      expect((await call(agentB, agentB.getDecision, { id: d.id })).decision).to.deep.include({ submittedBy: "agent-a" });
      const listed = await call(ops, ops.listDecisions, { decisionType: 0, suggestionId: s.id, pageSize: 10, pageToken: "", status: 0, oldestFirst: false });
      expect(listed.decisions.map((x) => [x.id, x.submittedBy, x.outcomeRecordedBy])).to.deep.equal([[d.id, "agent-a", ""]]);

      const byA = await record(agentA, d.id, Outcome.OUTCOME_SUCCESS, "", "first");
      expect(byA.decision).to.deep.include({ submittedBy: "agent-a", outcomeRecordedBy: "agent-a" });
      const byOps = await record(ops, d.id, Outcome.OUTCOME_PARTIAL, "", "second");
      expect(byOps.decision).to.deep.include({ submittedBy: "agent-a", outcomeRecordedBy: "ops", outcome: Outcome.OUTCOME_PARTIAL });
      expect((await call(agentA, agentA.getDecision, { id: d.id })).decision).to.deep.include({ outcomeRecordedBy: "ops" });
      const relisted = await call(agentA, agentA.listDecisions, { decisionType: 0, suggestionId: s.id, pageSize: 10, pageToken: "", status: 0, oldestFirst: false });
      expect(relisted.decisions[0]).to.deep.include({ submittedBy: "agent-a", outcomeRecordedBy: "ops" });
      const lessons = await call(agentB, agentB.listLessons, { pageSize: 2, pageToken: "" });
      expect(lessons.lessons.map((l) => [l.decisionId, l.lessons, l.recordedBy])).to.deep.equal([
        [d.id, "second", "ops"],
        [d.id, "first", "agent-a"],
      ]);
    });

    it("one request_id from two principals makes two decisions; the same principal repeating it gets a replay", async () => {
      const s = wireSuggestion();
      const requestId = unique("req");
      const before = (await call(ops, ops.getSummary, {})).totalDecisions;
      const ofA = decisionOf((await review(agentA, { suggestion: s, requestId })).events);
      const ofB = decisionOf((await review(agentB, { suggestion: s, requestId })).events);
      expect(ofA.id).to.not.equal(ofB.id);
      expect([ofA.submittedBy, ofB.submittedBy]).to.deep.equal(["agent-a", "agent-b"]);
      expect([ofA.requestId, ofB.requestId]).to.deep.equal([requestId, requestId]);

      const again = await review(agentA, { suggestion: s, requestId });
      expect(again.events.map((e) => e.decisionId)).to.deep.equal(Array(6).fill(ofA.id));
      expect(decisionOf(again.events)).to.deep.equal(ofA);
      expect((await call(ops, ops.getSummary, {})).totalDecisions).to.equal(before + 2);
      // Another suggestion under agent-a's id is a conflict with agent-a's own review only.
      const conflict = await review(agentA, { suggestion: wireSuggestion(), requestId });
      expect(conflict.error?.code).to.equal(status.FAILED_PRECONDITION);
      const opsOwn = await review(ops, { suggestion: wireSuggestion(), requestId });
      expect(opsOwn.error).to.equal(undefined);
      expect(decisionOf(opsOwn.events).submittedBy).to.equal("ops");
      expect((await call(ops, ops.getSummary, {})).totalDecisions).to.equal(before + 3);
    });

    it("an agent may not record an outcome on another agent's decision; the submitter and an operator may", async () => {
      const d = decisionOf((await review(agentA, { suggestion: wireSuggestion(), requestId: unique("req") })).events);
      const before = await call(ops, ops.getSummary, {});

      const denied = await refusal(record(agentB, d.id, Outcome.OUTCOME_FAILURE, unique("oreq")));
      expect(denied.code).to.equal(status.PERMISSION_DENIED);
      expect(denied.details).to.include("an agent may record outcomes only on decisions it submitted");
      expect(denied.details).to.include(`${d.id} was submitted by "agent-a", not "agent-b"`);
      expect(await call(ops, ops.getSummary, {})).to.deep.equal(before);
      expect((await call(ops, ops.getDecision, { id: d.id })).decision).to.deep.include({ outcome: Outcome.OUTCOME_UNSPECIFIED, outcomeRecordedBy: "" });
      // An unknown decision is NOT_FOUND for an agent too.
      expect((await refusal(record(agentB, "dec-nope", Outcome.OUTCOME_SUCCESS))).code).to.equal(status.NOT_FOUND);

      expect((await record(agentA, d.id, Outcome.OUTCOME_SUCCESS)).decision!.outcomeRecordedBy).to.equal("agent-a");
      expect((await record(ops, d.id, Outcome.OUTCOME_FAILURE)).decision!.outcomeRecordedBy).to.equal("ops");
      expect((await call(ops, ops.getSummary, {})).learningEntries).to.equal(before.learningEntries + 2);
    });

    it("RecordOutcome request ids are per principal: another principal's call with the same id records anew", async () => {
      const d = decisionOf((await review(agentA, { suggestion: wireSuggestion() })).events);
      const requestId = unique("oreq");
      const before = (await call(ops, ops.getSummary, {})).learningEntries;
      expect((await record(agentA, d.id, Outcome.OUTCOME_SUCCESS, requestId, "mine")).decision!.outcomeRecordedBy).to.equal("agent-a");
      const byOps = await record(ops, d.id, Outcome.OUTCOME_FAILURE, requestId, "theirs");
      expect(byOps.decision).to.deep.include({ outcome: Outcome.OUTCOME_FAILURE, outcomeRecordedBy: "ops", lessonsLearned: "theirs" });
      // agent-a's retry finds its own call: nothing is recorded again, and the decision is as it is now.
      const retry = await record(agentA, d.id, Outcome.OUTCOME_SUCCESS, requestId, "mine");
      expect(retry.decision).to.deep.include({ outcome: Outcome.OUTCOME_FAILURE, outcomeRecordedBy: "ops" });
      expect((await call(ops, ops.getSummary, {})).learningEntries).to.equal(before + 2);
    });
  });
}

whoDidWhat("in-process", async () => new MemoryStore());

describe("on Redis", function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.destroy());
  whoDidWhat("redis", () => RedisStore.open({ url: server.url, prefix: `${unique("t")}:`, log: createLogger("silent") }));
});

describe("who did what with no auth configured", () => {
  let r: Running;
  beforeEach(async () => (r = await startCouncil()));
  afterEach(() => r.stop());

  it("names every caller anonymous", async () => {
    const d = decisionOf((await review(r.client, { suggestion: wireSuggestion(), requestId: unique("req") })).events);
    expect(d.submittedBy).to.equal("anonymous");
    const recorded = await call(r.client, r.client.recordOutcome, { decisionId: d.id, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "l", requestId: "" });
    expect(recorded.decision).to.deep.include({ submittedBy: "anonymous", outcomeRecordedBy: "anonymous" });
    const lessons = await call(r.client, r.client.listLessons, { pageSize: 1, pageToken: "" });
    expect(lessons.lessons[0]!.recordedBy).to.equal("anonymous");
  });
});
