/**
 * The store contract: behaviour every Store implementation must have. Each implementation's test
 * file calls `storeContract` with a factory that gives a fresh, empty store.
 */
import { expect } from "chai";
import type { Decision, Outcome } from "../../src/domain/model.js";
import type { Store } from "../../src/store/store.js";
import { decision, suggestion, unique } from "../support/fixtures.js";
import { waitFor, within } from "../support/wait.js";

export interface StoreFactory {
  /** A fresh, empty store (for Redis: a new key prefix). */
  open(): Promise<Store>;
}

async function drainPages(store: Store, filter: Parameters<Store["listDecisions"]>[0], limit: number) {
  const seen: Decision[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const got = await store.listDecisions(filter, { limit, cursor });
    expect(got.items.length).to.be.at.most(limit);
    seen.push(...got.items);
    if (got.next === undefined) return seen;
    cursor = got.next;
  }
  throw new Error("paging did not end");
}

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await factory.open();
    });
    afterEach(async () => {
      await store.close();
    });

    it("stores a review and reads it back field for field", async () => {
      const d = decision({ requestId: unique("req") });
      const saved = await store.saveReview(d, "fp1");
      expect(saved.kind).to.equal("stored");
      expect(await store.getDecision(d.id)).to.deep.equal(d);
      expect(await store.getDecision("dec-missing")).to.equal(undefined);
    });

    it("keeps unicode and empty fields intact", async () => {
      const s = suggestion({ title: "Ünïcødé ✓ 𝔘", description: "", fixSteps: [], filesAffected: [], estimatedEffort: undefined });
      const d = decision({ suggestion: s, suggestionId: s.id, votes: [], conditions: [] });
      await store.saveReview(d, "fp");
      expect(await store.getDecision(d.id)).to.deep.equal(d);
    });

    it("stores a request_id once: a second save reports the first review and writes nothing", async () => {
      const requestId = unique("req");
      const first = decision({ requestId });
      await store.saveReview(first, "fp-a");
      const second = decision({ requestId, decision: "reject" });
      const again = await store.saveReview(second, "fp-b");
      expect(again.kind).to.equal("exists");
      if (again.kind === "exists") {
        expect(again.decision).to.deep.equal(first);
        expect(again.fingerprint).to.equal("fp-a");
      }
      expect((await store.summary()).totalDecisions).to.equal(1);
      expect(await store.findByRequestId("anonymous", requestId)).to.deep.equal({ decision: first, fingerprint: "fp-a" });
      expect(await store.findByRequestId("anonymous", unique("req"))).to.equal(undefined);
    });

    it("saves concurrent repeats of one request_id exactly once", async () => {
      const requestId = unique("req");
      const first = decision({ requestId });
      const results = await Promise.all(
        Array.from({ length: 10 }, () => store.saveReview({ ...first, decidedAt: new Date() }, "fp")),
      );
      expect(results.filter((r) => r.kind === "stored")).to.have.length(1);
      expect((await store.summary()).totalDecisions).to.equal(1);
    });

    it("lists newest first, pages without gaps or repeats, and filters by type and suggestion", async () => {
      const s = suggestion();
      const base = Date.now() - 1_000_000;
      const all: Decision[] = [];
      for (let i = 0; i < 23; i++) {
        const d = decision({
          decidedAt: new Date(base + Math.floor(i / 2) * 1000), // pairs share a millisecond
          decision: i % 3 === 0 ? "reject" : "human_approve",
          ...(i % 2 === 0 ? { suggestion: s, suggestionId: s.id } : {}),
        });
        all.push(d);
        await store.saveReview(d, "fp");
      }
      // Stored one after the other: listed in exactly the reverse order (decided_at does not order).
      const newestFirst = [...all].reverse();
      const ids = (ds: Decision[]) => ds.map((d) => d.id);

      expect(ids(await drainPages(store, {}, 5))).to.deep.equal(ids(newestFirst));
      expect(ids(await drainPages(store, {}, 23))).to.deep.equal(ids(newestFirst));
      expect(ids(await drainPages(store, { decisionType: "reject" }, 3))).to.deep.equal(
        ids(newestFirst.filter((d) => d.decision === "reject")),
      );
      expect(ids(await drainPages(store, { suggestionId: s.id }, 4))).to.deep.equal(
        ids(newestFirst.filter((d) => d.suggestionId === s.id)),
      );
      expect(ids(await drainPages(store, { suggestionId: s.id, decisionType: "reject" }, 2))).to.deep.equal(
        ids(newestFirst.filter((d) => d.suggestionId === s.id && d.decision === "reject")),
      );
      expect((await store.listDecisions({ suggestionId: "nobody" }, { limit: 5 })).items).to.deep.equal([]);
    });

    it("a decision stored while paging does not shift later pages", async () => {
      for (let i = 0; i < 6; i++) await store.saveReview(decision({ decidedAt: new Date(Date.now() - 10_000 + i) }), "fp");
      const first = await store.listDecisions({}, { limit: 3 });
      await store.saveReview(decision(), "fp");
      const second = await store.listDecisions({}, { limit: 3, cursor: first.next });
      const seen = new Set([...first.items, ...second.items].map((d) => d.id));
      expect(seen.size).to.equal(6);
    });

    it("records outcomes: replaces the fields, appends lessons, keeps the summary exact", async () => {
      const a = decision({ decision: "auto_approve", autoFixApproved: true, requiresManualOversight: false });
      const b = decision({ decision: "reject" });
      await store.saveReview(a, "fp");
      await store.saveReview(b, "fp");
      const t1 = new Date("2026-03-01T00:00:00.000Z");
      const t2 = new Date("2026-03-02T00:00:00.000Z");
      const change = (outcome: Outcome, notes: string, lessons: string, at: Date, requestId = "") => ({
        outcome,
        notes,
        lessons,
        at,
        requestId,
        fingerprint: `${outcome}/${notes}/${lessons}`,
        recordedBy: "anonymous",
      });
      const r1 = await store.recordOutcome(a.id, change("failure", "rolled back", "test first", t1));
      expect(r1.kind).to.equal("recorded");
      const d1 = (r1 as { decision: Decision }).decision;
      expect(d1).to.deep.include({ outcome: "failure", outcomeNotes: "rolled back", lessonsLearned: "test first" });
      expect(d1.implementedAt).to.deep.equal(t1);
      const r2 = await store.recordOutcome(a.id, change("success", "fixed", "second try", t2));
      const d2 = (r2 as { decision: Decision }).decision;
      expect(d2).to.deep.include({ outcome: "success", outcomeNotes: "fixed", lessonsLearned: "second try" });
      expect(await store.getDecision(a.id)).to.deep.equal(d2);
      expect(await store.recordOutcome("dec-missing", change("success", "", "", t2))).to.deep.equal({ kind: "not_found" });

      const summary = await store.summary();
      expect(summary).to.deep.equal({
        totalDecisions: 2,
        byType: { auto_approve: 1, human_approve: 0, defer: 0, reject: 1, escalate: 0 },
        outcomes: { success: 1, failure: 0, partial: 0, pending: 1 },
        autoApproved: 1,
        learningEntries: 2,
      });

      const lessons = await store.listLessons({ limit: 1 });
      expect(lessons.items).to.deep.equal([
        { decisionId: a.id, outcome: "success", lessons: "second try", notes: "fixed", recordedAt: t2, recordedBy: "anonymous" },
      ]);
      const rest = await store.listLessons({ limit: 5, cursor: lessons.next });
      expect(rest.items.map((l) => l.lessons)).to.deep.equal(["test first"]);
      expect(rest.next).to.equal(undefined);
    });

    it("records an outcome once per request_id and decision, and reports the first on a repeat", async () => {
      const a = decision();
      const b = decision();
      await store.saveReview(a, "fp");
      await store.saveReview(b, "fp");
      const requestId = unique("oreq");
      const at = new Date("2026-04-01T00:00:00.000Z");
      const recordedBy = "anonymous";
      const first = await store.recordOutcome(a.id, { outcome: "partial", notes: "n", lessons: "l", at, requestId, fingerprint: "fp-1", recordedBy });
      expect(first.kind).to.equal("recorded");
      const again = await store.recordOutcome(a.id, {
        outcome: "success",
        notes: "other",
        lessons: "other",
        at: new Date(),
        requestId,
        fingerprint: "fp-2",
        recordedBy,
      });
      expect(again).to.deep.equal({ kind: "exists", decision: (first as { decision: Decision }).decision, fingerprint: "fp-1" });
      // The same request_id on another decision is another call.
      expect((await store.recordOutcome(b.id, { outcome: "success", notes: "", lessons: "", at, requestId, fingerprint: "fp-1", recordedBy })).kind).to.equal(
        "recorded",
      );
      const summary = await store.summary();
      expect(summary.learningEntries).to.equal(2);
      expect(summary.outcomes).to.deep.equal({ success: 1, failure: 0, partial: 1, pending: 0 });
    });

    it("tells subscribers about every review stored after they subscribed, and stops when they leave", async () => {
      /** A subscription that records what it is told, live once `live()` resolves. */
      const subscriber = () => {
        const got: string[] = [];
        let failed: Error | undefined;
        let onLive!: () => void;
        const isLive = new Promise<void>((r) => (onLive = r));
        const leave = store.subscribe((d) => got.push(d.id), (err) => (failed = err), onLive);
        return { got, failed: () => failed, leave, live: () => within(isLive, { what: "the subscription to be live" }) };
      };
      const before = decision();
      await store.saveReview(before, "fp");
      const sub = subscriber();
      await sub.live();
      const after = [decision(), decision(), decision()];
      for (const d of after) await store.saveReview(d, "fp");
      const requestId = unique("req");
      const withRequest = decision({ requestId });
      await store.saveReview(withRequest, "fp");
      await store.saveReview({ ...withRequest, decidedAt: new Date() }, "fp"); // a repeat: not a new review
      // Reviews reach a subscriber in the order they were stored: had the repeat been announced,
      // it would come before this one.
      const marker = decision();
      await store.saveReview(marker, "fp");
      await waitFor(() => sub.got.includes(marker.id), { what: "the marker review to reach the subscriber" });
      expect(sub.failed()).to.equal(undefined);
      expect(sub.got).to.deep.equal([...after.map((d) => d.id), withRequest.id, marker.id]);

      // After leaving, nothing more: a subscriber that stays is told about the next review, and
      // by then the one that left would have been too.
      const stays = subscriber();
      await stays.live();
      sub.leave();
      const afterLeaving = decision();
      await store.saveReview(afterLeaving, "fp");
      await waitFor(() => stays.got.includes(afterLeaving.id), { what: "the review to reach the subscriber that stayed" });
      expect(sub.got).to.deep.equal([...after.map((d) => d.id), withRequest.id, marker.id]);
      stays.leave();
    });

    it("rejects a malformed cursor as invalid input", async () => {
      let error: unknown;
      try {
        await store.listLessons({ limit: 5, cursor: "not-a-cursor" });
      } catch (err) {
        error = err;
      }
      expect((error as Error | undefined)?.name).to.equal("InvalidArgumentError");
    });
  });
}
