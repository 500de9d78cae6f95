/**
 * The store contract: behaviour every Store implementation must have. Each implementation's test
 * file calls `storeContract` with a factory that gives a fresh, empty store.
 */
import { expect } from "chai";
import type { Decision, Outcome } from "../../src/domain/model.js";
import type { Store } from "../../src/store/store.js";
import { decision, pendingDecision, suggestion, unique } from "../support/fixtures.js";
import { waitFor, within } from "../support/wait.js";

export interface StoreFactory {
  /** A fresh, empty store (for Redis: a new key prefix). */
  open(): Promise<Store>;
}

async function drainPages(store: Store, filter: Parameters<Store["listDecisions"]>[0], limit: number, oldestFirst = false) {
  const seen: Decision[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const got = await store.listDecisions(filter, { limit, cursor, oldestFirst });
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
        byStatus: { pending: 0, approved: 2, rejected: 0, expired: 0, superseded: 0 },
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

    lifecycleContract(() => store);

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

/** A subscription that records the reviews and updates it is told of; `live()` resolves once it is in place. */
function listen(store: Store) {
  const reviews: Decision[] = [];
  const updates: Decision[] = [];
  let failed: Error | undefined;
  let onLive!: () => void;
  const isLive = new Promise<void>((r) => (onLive = r));
  const leave = store.subscribe(
    (d) => reviews.push(d),
    (err) => (failed = err),
    onLive,
    (d) => updates.push(d),
  );
  return { reviews, updates, failed: () => failed, leave, live: () => within(isLive, { what: "the subscription to be live" }) };
}

/** SPEC section 9 in the store: compare-and-set of lifecycle changes, status counters and indexes, expiry, update events. */
function lifecycleContract(current: () => Store): void {
  describe("lifecycle (SPEC section 9)", () => {
    it("writes a lifecycle change only at the revision it was read at, and moves counters, indexes and events", async () => {
      const store = current();
      const d = pendingDecision({ decision: "escalate", approvalsRequired: 2 });
      await store.saveReview(d, "fp");
      const sub = listen(store);
      await sub.live();
      const read = await store.getDecisionForUpdate(d.id);
      expect(read?.decision).to.deep.equal(d);
      const revision = read!.revision;
      const v1 = { by: "alice", verdict: "approve" as const, comment: "", givenAt: new Date("2026-05-01T00:00:00.000Z"), requestId: "r1" };
      const first = await store.updateLifecycle(d.id, revision, { status: "pending", verdicts: [v1], supersededBy: "" });
      expect(first.kind).to.equal("applied");
      expect((first as { decision: Decision }).decision).to.deep.equal({ ...d, verdicts: [v1] });
      // The same revision again: somebody else wrote in between, so nothing is written.
      expect(await store.updateLifecycle(d.id, revision, { status: "rejected", verdicts: [], supersededBy: "" })).to.deep.equal({ kind: "conflict" });
      const again = await store.getDecisionForUpdate(d.id);
      expect(again!.revision).to.not.equal(revision);
      const v2 = { ...v1, by: "bob", requestId: "" };
      const second = await store.updateLifecycle(d.id, again!.revision, { status: "approved", verdicts: [v1, v2], supersededBy: "" });
      expect(second.kind).to.equal("applied");
      const approved = { ...d, status: "approved" as const, verdicts: [v1, v2] };
      expect(await store.getDecision(d.id)).to.deep.equal(approved);
      expect(await store.updateLifecycle("dec-missing", 1, { status: "approved", verdicts: [], supersededBy: "" })).to.deep.equal({ kind: "not_found" });

      const summary = await store.summary();
      expect(summary.byStatus).to.deep.equal({ pending: 0, approved: 1, rejected: 0, expired: 0, superseded: 0 });
      expect(summary.byType.escalate).to.equal(1);
      expect((await store.listDecisions({ status: "pending" }, { limit: 10 })).items).to.deep.equal([]);
      expect((await store.listDecisions({ status: "approved", decisionType: "escalate", suggestionId: d.suggestionId }, { limit: 10 })).items).to.deep.equal([
        approved,
      ]);
      await waitFor(() => sub.updates.length >= 2, { what: "two update events" });
      expect(sub.updates.map((u) => u.id)).to.deep.equal([d.id, d.id]);
      expect(sub.updates[1]).to.deep.equal(approved);
      expect(sub.reviews).to.deep.equal([]);
      expect(sub.failed()).to.equal(undefined);
      sub.leave();
    });

    it("records outcomes only on approved decisions, and announces an outcome as an update", async () => {
      const store = current();
      const pending = pendingDecision();
      const rejected = decision({ decision: "reject", status: "rejected", verdicts: [], approvalsRequired: 0, expiresAt: undefined });
      const approved = decision();
      for (const d of [pending, rejected, approved]) await store.saveReview(d, "fp");
      const sub = listen(store);
      await sub.live();
      const change = { outcome: "success" as const, notes: "", lessons: "", at: new Date(), requestId: "", fingerprint: "f", recordedBy: "anonymous" };
      expect(await store.recordOutcome(pending.id, change)).to.deep.equal({ kind: "not_approved", status: "pending" });
      expect(await store.recordOutcome(rejected.id, change)).to.deep.equal({ kind: "not_approved", status: "rejected" });
      // The submitter is checked first.
      expect(await store.recordOutcome(pending.id, { ...change, onlyIfSubmittedBy: "someone" })).to.deep.equal({
        kind: "other_submitter",
        submittedBy: "anonymous",
      });
      expect((await store.summary()).learningEntries).to.equal(0);
      expect(await store.getDecision(pending.id)).to.deep.equal(pending);
      const recorded = await store.recordOutcome(approved.id, change);
      expect(recorded.kind).to.equal("recorded");
      await waitFor(() => sub.updates.length >= 1, { what: "the outcome's update event" });
      expect(sub.updates.map((u) => [u.id, u.outcome])).to.deep.equal([[approved.id, "success"]]);
      sub.leave();
    });

    it("counts every status and lists by status, newest or oldest first, paged", async () => {
      const store = current();
      const s = suggestion();
      const statuses = ["pending", "approved", "rejected", "pending", "superseded", "pending", "expired", "approved", "pending"] as const;
      const all: Decision[] = [];
      for (const status of statuses) {
        // An expired one as a store may hold it after its sweep (its expiry in the past, status final).
        const d = pendingDecision({ status, suggestion: s, suggestionId: s.id }, status === "expired" ? -1000 : 3_600_000);
        all.push(d);
        await store.saveReview(d, "fp");
      }
      const ids = (ds: Decision[]) => ds.map((d) => d.id);
      expect((await store.summary()).byStatus).to.deep.equal({ pending: 4, approved: 2, rejected: 1, expired: 1, superseded: 1 });
      expect(ids(await drainPages(store, {}, 2, true))).to.deep.equal(ids(all));
      expect(ids(await drainPages(store, {}, 4, true))).to.deep.equal(ids(all));
      const pending = all.filter((d) => d.status === "pending");
      expect(ids(await drainPages(store, { status: "pending" }, 3, true))).to.deep.equal(ids(pending));
      expect(ids(await drainPages(store, { status: "pending" }, 3))).to.deep.equal(ids(pending).reverse());
      expect(ids(await drainPages(store, { status: "pending", suggestionId: s.id }, 1, true))).to.deep.equal(ids(pending));
      expect(ids(await drainPages(store, { status: "approved", decisionType: "human_approve" }, 1, true))).to.deep.equal(
        ids(all.filter((d) => d.status === "approved")),
      );
      expect(await drainPages(store, { status: "pending", decisionType: "reject" }, 5, true)).to.deep.equal([]);
    });

    it("a status change keeps the decision's place in the listing and moves it between status listings", async () => {
      const store = current();
      const ds = [pendingDecision(), pendingDecision(), pendingDecision()];
      for (const d of ds) await store.saveReview(d, "fp");
      const read = await store.getDecisionForUpdate(ds[0]!.id);
      await store.updateLifecycle(ds[0]!.id, read!.revision, { status: "rejected", verdicts: [], supersededBy: "" });
      const ids = (page: { items: Decision[] }) => page.items.map((d) => d.id);
      expect(ids(await store.listDecisions({}, { limit: 10, oldestFirst: true }))).to.deep.equal(ds.map((d) => d.id));
      expect(ids(await store.listDecisions({ status: "pending" }, { limit: 10, oldestFirst: true }))).to.deep.equal([ds[1]!.id, ds[2]!.id]);
      expect(ids(await store.listDecisions({ status: "rejected" }, { limit: 10 }))).to.deep.equal([ds[0]!.id]);
      // A superseding change records who superseded it.
      const r1 = await store.getDecisionForUpdate(ds[1]!.id);
      const sup = await store.updateLifecycle(ds[1]!.id, r1!.revision, { status: "superseded", verdicts: [], supersededBy: ds[2]!.id });
      expect(sup.kind === "applied" && sup.decision.supersededBy).to.equal(ds[2]!.id);
      expect((await store.summary()).byStatus).to.deep.include({ pending: 1, rejected: 1, superseded: 1 });
    });

    it("reads a pending decision past its expiry as expired at once, everywhere", async () => {
      const store = current();
      const d = pendingDecision({}, -1000);
      await store.saveReview(d, "fp");
      expect((await store.getDecision(d.id))?.status).to.equal("expired");
      expect((await store.getDecisionForUpdate(d.id))?.decision.status).to.equal("expired");
      const listed = await store.listDecisions({ suggestionId: d.suggestionId }, { limit: 5 });
      expect(listed.items.map((x) => x.status)).to.deep.equal(["expired"]);
      expect(await store.recordOutcome(d.id, { outcome: "success", notes: "", lessons: "", at: new Date(), requestId: "", fingerprint: "f", recordedBy: "anonymous" })).to.deep.equal({
        kind: "not_approved",
        status: "expired",
      });
    });

    it("expires a pending decision by itself, exactly once, with one update event", async () => {
      const store = current();
      const sub = listen(store);
      await sub.live();
      const d = pendingDecision({}, 300);
      const keep = pendingDecision({}, 3_600_000);
      await store.saveReview(d, "fp");
      await store.saveReview(keep, "fp");
      // Nobody reads it: the store's own sweep must find it.
      await waitFor(() => sub.updates.some((u) => u.id === d.id), { what: "the expiry's update event", timeoutMs: 10_000 });
      expect(await store.expireDue(100)).to.equal(0);
      const expired = { ...d, status: "expired" as const };
      expect(await store.getDecision(d.id)).to.deep.equal(expired);
      // One event, as the decision reads once expired; a sweep or a read after it adds none.
      const marker = decision();
      await store.saveReview(marker, "fp");
      await waitFor(() => sub.reviews.some((r) => r.id === marker.id), { what: "the marker review" });
      expect(sub.updates).to.deep.equal([expired]);
      expect((await store.summary()).byStatus).to.deep.include({ pending: 1, expired: 1 });
      expect((await store.listDecisions({ status: "expired" }, { limit: 5 })).items.map((x) => x.id)).to.deep.equal([d.id]);
      expect((await store.listDecisions({ status: "pending" }, { limit: 5 })).items.map((x) => x.id)).to.deep.equal([keep.id]);
      // A change read before the expiry cannot be written after it.
      const late = await store.updateLifecycle(d.id, 1, { status: "approved", verdicts: [], supersededBy: "" });
      expect(late.kind).to.be.oneOf(["conflict", "expired"]);
      expect((await store.getDecision(d.id))?.status).to.equal("expired");
      sub.leave();
    });

    it("a change to a decision that is due expires it instead (once), whoever swept first", async () => {
      const store = current();
      const d = pendingDecision({}, 200);
      await store.saveReview(d, "fp");
      const read = await store.getDecisionForUpdate(d.id);
      expect(read?.decision.status).to.equal("pending");
      const sub = listen(store);
      await sub.live();
      await waitFor(async () => (await store.getDecision(d.id))?.status === "expired", { what: "the decision to read expired" });
      const result = await store.updateLifecycle(d.id, read!.revision, {
        status: "approved",
        verdicts: [{ by: "alice", verdict: "approve", comment: "", givenAt: new Date(), requestId: "" }],
        supersededBy: "",
      });
      expect(result.kind).to.be.oneOf(["conflict", "expired"]);
      if (result.kind === "expired") expect(result.decision.status).to.equal("expired");
      expect(await store.getDecision(d.id)).to.deep.equal({ ...d, status: "expired" });
      const marker = decision();
      await store.saveReview(marker, "fp");
      await waitFor(() => sub.reviews.some((r) => r.id === marker.id), { what: "the marker review" });
      expect(sub.updates.map((u) => [u.id, u.status])).to.deep.equal([[d.id, "expired"]]);
      expect((await store.summary()).byStatus).to.deep.include({ pending: 0, expired: 1, approved: 1 });
      sub.leave();
    });
  });
}
