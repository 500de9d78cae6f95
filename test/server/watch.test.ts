import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { wireSuggestion, unique } from "../support/fixtures.js";
import { review, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

function watch(c: Running, decisionType: DecisionType, includeVotes: boolean) {
  const stream = c.client.watchDecisions({ decisionType, includeVotes, includeUpdates: false });
  const events: WatchDecisionsResponse[] = [];
  // The server sends response headers once the watch is live; from then on nothing is missed.
  const live = new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  let error: ServiceError | undefined;
  const ended = new Promise<ServiceError>((resolve) => stream.once("error", resolve));
  stream.on("error", (e: ServiceError) => (error = e));
  stream.on("data", (e: WatchDecisionsResponse) => events.push(e));
  return {
    stream,
    events,
    error: () => error,
    live: () => within(live, { what: "response headers from the watch (it is live)" }),
    ended: (timeoutMs = 5000) => within(ended, { timeoutMs, what: "the watch to end" }),
    /** Waits until the decision `id` has arrived on the watch. */
    sawDecision: (id: string) =>
      waitFor(() => events.some((e) => e.event?.$case === "decision" && e.decisionId === id), { what: `decision ${id} on the watch` }),
  };
}

describe("WatchDecisions", () => {
  let c: Running;
  beforeEach(async () => (c = await startCouncil()));
  afterEach(() => c.stop());

  it("streams the votes and decision of each new review, not dry runs or replays", async () => {
    const w = watch(c, DecisionType.DECISION_TYPE_UNSPECIFIED, true);
    await w.live();
    const s = wireSuggestion();
    const requestId = unique("req");
    const made = await review(c.client, { suggestion: s, requestId });
    await review(c.client, { suggestion: s, requestId }); // replay
    await review(c.client, { suggestion: wireSuggestion(), dryRun: true });
    const last = await review(c.client, { suggestion: wireSuggestion() });
    // Events arrive in the order reviews were stored: had the replay or the dry run been sent,
    // it would be on the watch before the last review's decision.
    await w.sawDecision(last.events[5]!.decisionId);
    expect(w.events.map((e) => e.event?.$case)).to.deep.equal([...Array(5).fill("vote"), "decision", ...Array(5).fill("vote"), "decision"]);
    expect(w.events.slice(0, 6).map((e) => e.decisionId)).to.deep.equal(made.events.map((e) => e.decisionId));
    expect(w.events[6]!.decisionId).to.equal(last.events[5]!.decisionId);
    const decision = w.events[5]!.event;
    expect(decision?.$case === "decision" && decision.value.votes).to.have.length(5);
    w.stream.cancel();
  });

  it("filters on the decision type and leaves votes out unless asked", async () => {
    const w = watch(c, DecisionType.DECISION_TYPE_REJECT, false);
    await w.live();
    await review(c.client, { suggestion: wireSuggestion() }); // auto-approved: filtered out
    const rejected = await review(c.client, { suggestion: wireSuggestion({ reasoning: "it removes validation" }) });
    // Had the auto-approved review (or any vote) been sent, it would have come first.
    await w.sawDecision(rejected.events[5]!.decisionId);
    expect(w.events).to.have.length(1);
    expect(w.events[0]!.decisionId).to.equal(rejected.events[5]!.decisionId);
    expect(w.events[0]!.event?.$case).to.equal("decision");
    w.stream.cancel();
  });

  it("ends a watcher that stops reading with RESOURCE_EXHAUSTED instead of buffering without bound", async () => {
    await c.stop();
    c = await startCouncil({ watchBufferBytes: 256 * 1024 });
    const w = watch(c, DecisionType.DECISION_TYPE_UNSPECIFIED, true);
    await w.live();
    w.stream.pause(); // a slow consumer: reads nothing more
    const big = wireSuggestion({ description: "y".repeat(60_000) });
    for (let i = 0; i < 200 && !w.error(); i++) await review(c.client, { suggestion: { ...big, id: unique("sug") } });
    w.stream.resume();
    expect((await w.ended(10_000)).code).to.equal(status.RESOURCE_EXHAUSTED);
  });

  it("ends open watches with UNAVAILABLE at shutdown so that watchers move to another replica", async () => {
    const w = watch(c, DecisionType.DECISION_TYPE_UNSPECIFIED, false);
    await w.live();
    await c.server.shutdown(1000);
    expect((await w.ended()).code).to.equal(status.UNAVAILABLE);
  });
});
