import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { wireSuggestion } from "../support/fixtures.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { nextEvent, waitFor } from "../support/wait.js";

async function scrape(c: Running): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${c.server.metricsPort}/metrics`);
  expect(res.status).to.equal(200);
  expect(res.headers.get("content-type")).to.match(/^text\/plain/);
  return res.text();
}

/** The value of one sample line, e.g. `council_reviews_total{result="stored"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("Prometheus metrics on their own port", () => {
  let c: Running;
  before(async () => (c = await startCouncil({ metricsAddr: "127.0.0.1:0" })));
  after(() => c.stop());

  it("count calls by method and status, reviews by result, decisions by type; report watchers, store and process", async () => {
    await review(c.client, { suggestion: wireSuggestion() });
    await review(c.client, { suggestion: wireSuggestion(), requestId: "m-1" });
    await review(c.client, { suggestion: wireSuggestion({ id: "same" }), requestId: "m-2" });
    await review(c.client, { suggestion: wireSuggestion({ id: "same" }), requestId: "m-2" });
    await review(c.client, { suggestion: wireSuggestion(), dryRun: true });
    const missing = await call(c.client, c.client.getDecision, { id: "dec-none" }).catch((e: ServiceError) => e);
    expect((missing as ServiceError).code).to.equal(status.NOT_FOUND);
    const watch = c.client.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: false, includeUpdates: false });
    watch.on("error", () => undefined);
    await nextEvent(watch, "metadata", { what: "response headers from the watch (it is live)" });

    const text = await scrape(c);
    expect(sample(text, 'council_grpc_calls_total{method="ReviewSuggestion",code="OK"}')).to.equal(5);
    expect(sample(text, 'council_grpc_calls_total{method="GetDecision",code="NOT_FOUND"}')).to.equal(1);
    expect(sample(text, 'council_reviews_total{result="stored"}')).to.equal(3);
    expect(sample(text, 'council_reviews_total{result="replayed"}')).to.equal(1);
    expect(sample(text, 'council_reviews_total{result="dry_run"}')).to.equal(1);
    expect(sample(text, 'council_decisions_total{type="auto_approve"}')).to.equal(3);
    expect(sample(text, 'council_grpc_call_duration_seconds_count{method="ReviewSuggestion"}')).to.equal(5);
    expect(sample(text, "council_watchers")).to.equal(1);
    expect(sample(text, "council_reviews_in_flight")).to.equal(0);
    expect(sample(text, "council_store_up")).to.equal(1);
    expect(text).to.include("council_process_resident_memory_bytes");

    // The server learns of the cancellation a moment later: poll the gauge itself.
    watch.cancel();
    await waitFor(async () => sample(await scrape(c), "council_watchers") === 0, { what: "council_watchers to drop to 0" });
  });

  it("answers 404 off /metrics", async () => {
    const res = await fetch(`http://127.0.0.1:${c.server.metricsPort}/`);
    expect(res.status).to.equal(404);
  });
});
