import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { wireSuggestion, unique } from "../support/fixtures.js";
import { eventually, review, startCouncil, type Running } from "../support/server.js";

function watch(c: Running, decisionType: DecisionType, includeVotes: boolean) {
  const stream = c.client.watchDecisions({ decisionType, includeVotes });
  const events: WatchDecisionsResponse[] = [];
  let error: ServiceError | undefined;
  stream.on("data", (e: WatchDecisionsResponse) => events.push(e));
  stream.on("error", (e: ServiceError) => (error = e));
  return { stream, events, error: () => error };
}

/** The server sends response headers once the watch is live; from then on nothing is missed. */
async function primed(_c: Running, w: ReturnType<typeof watch>) {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no response headers from the watch")), 5000);
    w.stream.once("metadata", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe("WatchDecisions", () => {
  let c: Running;
  beforeEach(async () => (c = await startCouncil()));
  afterEach(() => c.stop());

  it("streams the votes and decision of each new review, not dry runs or replays", async () => {
    const w = watch(c, DecisionType.DECISION_TYPE_UNSPECIFIED, true);
    await primed(c, w);
    const s = wireSuggestion();
    const requestId = unique("req");
    const made = await review(c.client, { suggestion: s, requestId });
    await review(c.client, { suggestion: s, requestId }); // replay
    await review(c.client, { suggestion: wireSuggestion(), dryRun: true });
    const last = await review(c.client, { suggestion: wireSuggestion() });
    await eventually(() => w.events.length >= 12, 5000, "two reviews");
    await new Promise((r) => setTimeout(r, 100));
    expect(w.events.map((e) => e.event?.$case)).to.deep.equal([...Array(5).fill("vote"), "decision", ...Array(5).fill("vote"), "decision"]);
    expect(w.events.slice(0, 6).map((e) => e.decisionId)).to.deep.equal(made.events.map((e) => e.decisionId));
    expect(w.events[6]!.decisionId).to.equal(last.events[5]!.decisionId);
    const decision = w.events[5]!.event;
    expect(decision?.$case === "decision" && decision.value.votes).to.have.length(5);
    w.stream.cancel();
  });

  it("filters on the decision type and leaves votes out unless asked", async () => {
    const w = watch(c, DecisionType.DECISION_TYPE_REJECT, false);
    const probe = await review(c.client, { suggestion: wireSuggestion({ title: "exposes secrets" }) });
    await eventually(() => w.events.some((e) => e.decisionId === probe.events[5]!.decisionId), 5000, "the probe");
    w.events.length = 0;
    await review(c.client, { suggestion: wireSuggestion() }); // auto-approved: filtered out
    const rejected = await review(c.client, { suggestion: wireSuggestion({ reasoning: "it removes validation" }) });
    await eventually(() => w.events.length >= 1, 5000, "the rejected review");
    await new Promise((r) => setTimeout(r, 100));
    expect(w.events).to.have.length(1);
    expect(w.events[0]!.decisionId).to.equal(rejected.events[5]!.decisionId);
    expect(w.events[0]!.event?.$case).to.equal("decision");
    w.stream.cancel();
  });

  it("ends a watcher that stops reading with RESOURCE_EXHAUSTED instead of buffering without bound", async () => {
    await c.stop();
    c = await startCouncil({ watchBufferMessages: 20 });
    const w = watch(c, DecisionType.DECISION_TYPE_UNSPECIFIED, true);
    await primed(c, w);
    w.stream.pause(); // a slow consumer: reads nothing more
    const big = wireSuggestion({ description: "y".repeat(60_000) });
    for (let i = 0; i < 200 && !w.error(); i++) await review(c.client, { suggestion: { ...big, id: unique("sug") } });
    w.stream.resume();
    await eventually(() => w.error() !== undefined, 10_000, "the watch to end");
    expect(w.error()?.code).to.equal(status.RESOURCE_EXHAUSTED);
  });

  it("ends open watches with UNAVAILABLE at shutdown so that watchers move to another replica", async () => {
    const w = watch(c, DecisionType.DECISION_TYPE_UNSPECIFIED, false);
    await primed(c, w);
    await c.server.shutdown(1000);
    await eventually(() => w.error() !== undefined, 5000, "the watch to end");
    expect(w.error()?.code).to.equal(status.UNAVAILABLE);
  });
});
