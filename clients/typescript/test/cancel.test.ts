/**
 * Cancelling mid-stream reaches the server: against the held server that the repository's
 * test/clients.test.ts starts (COUNCIL_TEST_HELD_ADDR: each review pauses before its second
 * vote), a review left after its first vote, by `break` or by aborting its signal, is counted
 * CANCELLED in the server's metrics (COUNCIL_TEST_HELD_METRICS_URL, council_grpc_calls_total);
 * so are a watch and an await left by `break`. The review itself still runs to its stored
 * decision (the server finishes what it started), which a replay with the same request_id returns.
 */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import {
  CancelledError,
  connect,
  DecisionStatus,
  ImpactLevel,
  NotFoundError,
  RiskLevel,
  type CouncilClient,
  type Decision,
  type Review,
  type Vote,
} from "../src/index.js";

const HELD_ADDR = process.env.COUNCIL_TEST_HELD_ADDR;
const METRICS_URL = process.env.COUNCIL_TEST_HELD_METRICS_URL;
if (!HELD_ADDR || !METRICS_URL) {
  throw new Error("set COUNCIL_TEST_HELD_ADDR and COUNCIL_TEST_HELD_METRICS_URL: the held server of the repository's test/clients.test.ts");
}
/** How long the held server pauses a review; every wait below is bounded by it and a margin. */
const HELD_MS = Number(process.env.COUNCIL_TEST_HELD_MS ?? 3000);
const WAIT_MS = HELD_MS + 15_000;

const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
const lowRisk = () => ({ id: uid("ts-cancel"), title: "Tidy the retry helper", risk: RiskLevel.RISK_LEVEL_LOW, impact: ImpactLevel.IMPACT_LEVEL_LOW });
/** Medium risk, low impact: HUMAN_APPROVE under the default policy, pending until people decide. */
const needsPeople = () => ({ id: uid("ts-cancel-human"), title: "Reindex the orders table", risk: RiskLevel.RISK_LEVEL_MEDIUM, impact: ImpactLevel.IMPACT_LEVEL_LOW });

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** council_grpc_calls_total for `method` and `code`, as the held server counts it now. */
async function calls(method: string, code: string): Promise<number> {
  const text = await (await fetch(METRICS_URL!)).text();
  for (const line of text.split("\n")) {
    if (!line.startsWith("council_grpc_calls_total{")) continue;
    if (line.includes(`method="${method}"`) && line.includes(`code="${code}"`)) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

/** Polls `condition` every 50 ms until it holds; fails after WAIT_MS naming `what`. */
async function waitUntil(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`);
    await pause(50);
  }
}

describe("TypeScript client: cancelling mid-stream reaches the server", function () {
  this.timeout(WAIT_MS * 2);
  let client: CouncilClient;
  before(() => (client = connect(HELD_ADDR)));
  after(() => client.close());

  /** The decision a review cancelled mid-stream still made, once the server has stored it. */
  async function stored(review: Review): Promise<Decision> {
    let decision: Decision | undefined;
    await waitUntil(async () => {
      decision = await client.getDecision(review.decisionId!).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      return decision !== undefined;
    }, "the cancelled review to be stored");
    return decision!;
  }

  async function expectCancelledReview(review: Review, votes: Vote[], before: number, suggestion: ReturnType<typeof lowRisk>) {
    expect(votes.map((v) => v.reviewerRole)).to.deep.equal([1]);
    const failure = await review.decision.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).to.be.instanceOf(CancelledError);
    await waitUntil(async () => (await calls("ReviewSuggestion", "CANCELLED")) === before + 1, "the server to count the review CANCELLED");
    const decision = await stored(review);
    expect(decision.votes).to.have.length(5);
    // The same request_id replays it, whole.
    expect((await client.review(suggestion, { requestId: review.requestId }).decision).id).to.equal(decision.id);
  }

  it("a break out of the votes cancels the review: the server sees CANCELLED", async () => {
    const before = await calls("ReviewSuggestion", "CANCELLED");
    const suggestion = lowRisk();
    const review = client.review(suggestion);
    const votes: Vote[] = [];
    const started = Date.now();
    for await (const vote of review) {
      votes.push(vote);
      break; // the server now pauses before the second vote: the review is mid-stream
    }
    expect(Date.now() - started, "the first vote came before the pause").to.be.below(HELD_MS);
    await expectCancelledReview(review, votes, before, suggestion);
  });

  it("aborting the signal cancels the review: the iteration ends quietly, the server sees CANCELLED", async () => {
    const before = await calls("ReviewSuggestion", "CANCELLED");
    const suggestion = lowRisk();
    const controller = new AbortController();
    const review = client.review(suggestion, { signal: controller.signal });
    const votes: Vote[] = [];
    const started = Date.now();
    for await (const vote of review) {
      votes.push(vote);
      controller.abort();
    }
    expect(Date.now() - started, "the iteration ended at the abort, not after the pause").to.be.below(HELD_MS);
    await expectCancelledReview(review, votes, before, suggestion);
  });

  it("a break out of a watch cancels it: the server sees CANCELLED", async () => {
    const before = await calls("WatchDecisions", "CANCELLED");
    const watch = client.watch();
    await watch.ready;
    const review = client.review(lowRisk());
    for await (const event of watch) {
      if (event.kind === "decision" && event.decision.id === review.decisionId) break;
    }
    await review.decision;
    await waitUntil(async () => (await calls("WatchDecisions", "CANCELLED")) === before + 1, "the server to count the watch CANCELLED");
  });

  it("a break out of an await cancels it: the server sees CANCELLED", async () => {
    const decision = await client.review(needsPeople()).decision;
    expect(decision.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
    const before = await calls("AwaitDecision", "CANCELLED");
    for await (const state of client.awaitDecision(decision.id)) {
      expect(state.id).to.equal(decision.id);
      break;
    }
    await waitUntil(async () => (await calls("AwaitDecision", "CANCELLED")) === before + 1, "the server to count the await CANCELLED");
  });
});
