import { readFileSync } from "node:fs";
import { expect } from "chai";
import type { Suggestion } from "../../src/domain/model.js";
import { PRESETS } from "../../src/domain/presets.js";
import { castVote, conclude } from "../../src/domain/rules.js";

const here = new URL("../vectors/", import.meta.url);
const lines = (name: string) =>
  readFileSync(new URL(name, here), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));

interface SeedCase {
  id: string;
  title: string;
  description: string;
  reasoning: string;
  risk: Suggestion["risk"];
  impact: Suggestion["impact"];
  auto_fixable: boolean;
  fix_steps: string[];
  files_affected: string[];
  estimated_effort: Suggestion["estimatedEffort"];
}

function toSuggestion(c: SeedCase): Suggestion {
  return {
    id: c.id,
    title: c.title,
    description: c.description,
    reasoning: c.reasoning,
    risk: c.risk,
    impact: c.impact,
    autoFixable: c.auto_fixable,
    fixSteps: c.fix_steps,
    filesAffected: c.files_affected,
    estimatedEffort: c.estimated_effort,
    diff: "",
  };
}

describe("seed policy against the original module's 300 vectors", () => {
  const cases = lines("seed-policy.cases.jsonl") as SeedCase[];
  const expected = lines("seed-policy.expected.jsonl");

  it("has one expectation per case", () => {
    expect(cases).to.have.length(300);
    expect(expected).to.have.length(cases.length);
  });

  cases.forEach((c, i) => {
    it(`${c.id} gets the module's votes and decision`, () => {
      const policy = PRESETS.seed;
      const s = toSuggestion(c);
      const at = new Date(0);
      const votes = policy.reviewers.map((r) => castVote(policy, r, s, at));
      const got = conclude(policy, s, votes);
      const want = expected[i];
      expect(want.suggestion_id).to.equal(c.id);
      expect(
        votes.map((v) => ({
          reviewer_role: v.reviewerRole,
          vote: v.vote,
          reasoning: v.reasoning,
          concerns: v.concerns,
          conditions: v.conditions,
          confidence: v.confidence,
        })),
      ).to.deep.equal(want.votes);
      expect(got.decision).to.equal(want.decision);
      expect(got.finalReasoning).to.equal(want.final_reasoning);
      expect([...got.conditions].sort()).to.deep.equal([...want.conditions].sort());
      expect(got.requiresManualOversight).to.equal(want.requires_manual_oversight);
      expect(got.autoFixApproved).to.equal(want.auto_fix_approved);
    });
  });
});
