/**
 * A suggestion's diff and who cast each vote (issue 13), against a live server at COUNCIL_TEST_ADDR:
 * the diff a caller gives reaches the server and is stored with the decision, and every vote says
 * who cast it (`castBy`; the built-in rules: "rules").
 */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import { connect, ImpactLevel, RiskLevel, suggestionFromToolInput, type CouncilClient, type Vote } from "../src/index.js";

const ADDR = process.env.COUNCIL_TEST_ADDR;
if (!ADDR) throw new Error("set COUNCIL_TEST_ADDR to the host:port of a running Council server");

const DIFF = "--- a/src/retry.ts\n+++ b/src/retry.ts\n@@ -1,3 +1 @@\n-for (;;) { try { return f(); } catch {} }\n+return retry(f, { attempts: 3 });\n";

describe("TypeScript client: a suggestion's diff, and who cast each vote", () => {
  let client: CouncilClient;
  before(() => (client = connect(ADDR)));
  after(() => client.close());

  it("sends the diff with the suggestion, and every vote comes back cast by the rules", async () => {
    const id = `ts-diff-${randomUUID().slice(0, 8)}`;
    const review = client.review({ id, title: "Tidy the retry helper", risk: RiskLevel.RISK_LEVEL_LOW, impact: ImpactLevel.IMPACT_LEVEL_LOW, diff: DIFF });
    const votes: Vote[] = [];
    for await (const vote of review) votes.push(vote);
    const decision = await review.decision;
    expect(votes.map((v) => v.castBy)).to.deep.equal(["rules", "rules", "rules", "rules", "rules"]);
    expect(decision.votes.map((v) => v.castBy)).to.deep.equal(votes.map((v) => v.castBy));
    expect(decision.suggestion?.diff).to.equal(DIFF);
    const stored = await client.getDecision(decision.id);
    expect(stored.suggestion?.diff).to.equal(DIFF);
    expect(stored.votes.map((v) => v.castBy)).to.deep.equal(votes.map((v) => v.castBy));
  });

  it("sends the diff a model gave in its council_review tool call", async () => {
    const suggestion = suggestionFromToolInput({ id: `ts-tool-diff-${randomUUID().slice(0, 8)}`, title: "Tidy", risk: "low", impact: "low", diff: DIFF });
    const decision = await client.review(suggestion, { dryRun: true }).decision;
    expect(decision.suggestion?.diff).to.equal(DIFF);
  });
});
