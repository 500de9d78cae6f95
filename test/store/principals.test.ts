/**
 * Who did what, in both stores: a decision keeps who submitted it and who recorded its outcome, a
 * lesson who recorded it; request ids are scoped to their principal; and an outcome that must come
 * from the decision's submitter is checked in the same step that records it.
 */
import { expect } from "chai";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import type { Decision } from "../../src/domain/model.js";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import type { OutcomeChange, Store } from "../../src/store/store.js";
import { decision, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";

const change = (recordedBy: string, extra: Partial<OutcomeChange> = {}): OutcomeChange => ({
  outcome: "success",
  notes: "n",
  lessons: "l",
  at: new Date("2026-05-01T00:00:00.000Z"),
  requestId: "",
  fingerprint: "fp",
  recordedBy,
  ...extra,
});

function principalsSuite(name: string, open: () => Promise<Store>) {
  describe(`who did what: ${name}`, function () {
    this.timeout(30_000);
    let store: Store;
    beforeEach(async () => (store = await open()));
    afterEach(() => store.close());

    it("keeps submittedBy, and reads a decision back field for field", async () => {
      const requestId = unique("req");
      const d = decision({ submittedBy: "agent-a", requestId, id: decisionIdForRequest("agent-a", requestId) });
      expect((await store.saveReview(d, "fp")).kind).to.equal("stored");
      expect(await store.getDecision(d.id)).to.deep.equal(d);
      expect((await store.listDecisions({}, { limit: 5 })).items).to.deep.equal([d]);
    });

    it("scopes request ids to their submitter: one id, two principals, two decisions", async () => {
      const requestId = unique("req");
      const ofA = decision({ submittedBy: "agent-a", requestId, id: decisionIdForRequest("agent-a", requestId) });
      const ofB = decision({ submittedBy: "agent-b", requestId, id: decisionIdForRequest("agent-b", requestId) });
      const ofAnonymous = decision({ requestId });
      for (const d of [ofA, ofB, ofAnonymous]) expect((await store.saveReview(d, `fp-${d.submittedBy}`)).kind).to.equal("stored");
      expect(new Set([ofA.id, ofB.id, ofAnonymous.id]).size).to.equal(3);
      expect(await store.findByRequestId("agent-a", requestId)).to.deep.equal({ decision: ofA, fingerprint: "fp-agent-a" });
      expect(await store.findByRequestId("agent-b", requestId)).to.deep.equal({ decision: ofB, fingerprint: "fp-agent-b" });
      expect(await store.findByRequestId("anonymous", requestId)).to.deep.equal({ decision: ofAnonymous, fingerprint: "fp-anonymous" });
      expect(await store.findByRequestId("agent-c", requestId)).to.equal(undefined);
      // The same principal again: the first review answers, nothing new is stored.
      const again = await store.saveReview({ ...ofA, decision: "reject" }, "fp-other");
      expect(again).to.deep.equal({ kind: "exists", decision: ofA, fingerprint: "fp-agent-a" });
      expect((await store.summary()).totalDecisions).to.equal(3);
    });

    it("records who recorded an outcome, on the decision and on its lesson", async () => {
      const d = decision({ submittedBy: "agent-a" });
      await store.saveReview(d, "fp");
      const first = await store.recordOutcome(d.id, change("agent-a", { onlyIfSubmittedBy: "agent-a" }));
      expect(first.kind).to.equal("recorded");
      expect((first as { decision: Decision }).decision).to.deep.include({ submittedBy: "agent-a", outcomeRecordedBy: "agent-a" });
      const second = await store.recordOutcome(d.id, change("ops", { outcome: "failure" }));
      expect((second as { decision: Decision }).decision).to.deep.include({ outcome: "failure", outcomeRecordedBy: "ops" });
      expect((await store.getDecision(d.id))!.outcomeRecordedBy).to.equal("ops");
      const lessons = (await store.listLessons({ limit: 5 })).items;
      expect(lessons.map((l) => [l.outcome, l.recordedBy])).to.deep.equal([
        ["failure", "ops"],
        ["success", "agent-a"],
      ]);
    });

    it("refuses an outcome that must come from the submitter when another principal submitted, writing nothing", async () => {
      const d = decision({ submittedBy: "agent-a" });
      const legacy = decision(); // submitted by anonymous
      await store.saveReview(d, "fp");
      await store.saveReview(legacy, "fp");
      const before = await store.summary();
      const requestId = unique("oreq");
      expect(await store.recordOutcome(d.id, change("agent-b", { onlyIfSubmittedBy: "agent-b", requestId }))).to.deep.equal({
        kind: "other_submitter",
        submittedBy: "agent-a",
      });
      expect(await store.recordOutcome(legacy.id, change("agent-b", { onlyIfSubmittedBy: "agent-b" }))).to.deep.equal({
        kind: "other_submitter",
        submittedBy: "anonymous",
      });
      expect(await store.recordOutcome("dec-missing", change("agent-b", { onlyIfSubmittedBy: "agent-b" }))).to.deep.equal({ kind: "not_found" });
      expect(await store.summary()).to.deep.equal(before);
      expect((await store.listLessons({ limit: 5 })).items).to.deep.equal([]);
      expect(await store.getDecision(d.id)).to.deep.equal(d);
      // The refused call did not take its request id: the submitter may use it.
      expect((await store.recordOutcome(d.id, change("agent-a", { onlyIfSubmittedBy: "agent-a", requestId }))).kind).to.equal("recorded");
    });

    it("scopes outcome request ids to their principal: the same id from another principal records anew", async () => {
      const d = decision({ submittedBy: "agent-a" });
      await store.saveReview(d, "fp");
      const requestId = unique("oreq");
      const byA = await store.recordOutcome(d.id, change("agent-a", { requestId, fingerprint: "fp-a", onlyIfSubmittedBy: "agent-a" }));
      expect(byA.kind).to.equal("recorded");
      const byOps = await store.recordOutcome(d.id, change("ops", { requestId, fingerprint: "fp-ops", outcome: "partial" }));
      expect(byOps.kind).to.equal("recorded");
      expect((byOps as { decision: Decision }).decision.outcomeRecordedBy).to.equal("ops");
      // Each principal's repeat finds its own call.
      const repeatA = await store.recordOutcome(d.id, change("agent-a", { requestId, fingerprint: "fp-a", onlyIfSubmittedBy: "agent-a" }));
      expect(repeatA.kind === "exists" && repeatA.fingerprint).to.equal("fp-a");
      const repeatOps = await store.recordOutcome(d.id, change("ops", { requestId, fingerprint: "fp-ops", outcome: "partial" }));
      expect(repeatOps.kind === "exists" && repeatOps.fingerprint).to.equal("fp-ops");
      expect((await store.summary()).learningEntries).to.equal(2);
    });
  });
}

principalsSuite("in-process", async () => new MemoryStore());

describe("on Redis", function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.destroy());
  principalsSuite("redis", () => RedisStore.open({ url: server.url, prefix: `${unique("t")}:`, log: createLogger("silent") }));
});
