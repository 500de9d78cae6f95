/**
 * Wire enums map by name: every domain word goes on the wire as the proto value of the same name,
 * whatever the position of the word in its domain list.
 */
import { expect } from "chai";
import {
  DECISION_TYPES,
  EFFORTS,
  IMPACT_LEVELS,
  OUTCOMES,
  REVIEWER_ROLES,
  RISK_LEVELS,
  VOTE_TYPES,
} from "../../src/domain/model.js";
import * as wire from "../../src/gen/council/v1/review.js";
import { decisionToWire, ENUMS, enumNames, suggestionFromWire } from "../../src/server/convert.js";
import { decision, wireSuggestion } from "../support/fixtures.js";

type Json = (value: number) => string;
type FromJson = (name: string) => number;

const TABLE: [keyof typeof ENUMS, string, readonly string[], Record<string, string | number>, FromJson, Json][] = [
  ["risk", "RISK_LEVEL", RISK_LEVELS, wire.RiskLevel, wire.riskLevelFromJSON, wire.riskLevelToJSON],
  ["impact", "IMPACT_LEVEL", IMPACT_LEVELS, wire.ImpactLevel, wire.impactLevelFromJSON, wire.impactLevelToJSON],
  ["effort", "EFFORT", EFFORTS, wire.Effort, wire.effortFromJSON, wire.effortToJSON],
  ["role", "REVIEWER_ROLE", REVIEWER_ROLES, wire.ReviewerRole, wire.reviewerRoleFromJSON, wire.reviewerRoleToJSON],
  ["vote", "VOTE_TYPE", VOTE_TYPES, wire.VoteType, wire.voteTypeFromJSON, wire.voteTypeToJSON],
  ["decision", "DECISION_TYPE", DECISION_TYPES, wire.DecisionType, wire.decisionTypeFromJSON, wire.decisionTypeToJSON],
  ["outcome", "OUTCOME", OUTCOMES, wire.Outcome, wire.outcomeFromJSON, wire.outcomeToJSON],
];

describe("wire enums map by name", () => {
  for (const [key, prefix, words, wireEnum, fromJson, toJson] of TABLE) {
    it(`${prefix}: each word is the wire value of its name, and every wire value has its word`, () => {
      const names = ENUMS[key] as { toWire: ReadonlyMap<string, number>; fromWire: ReadonlyMap<number, string> };
      for (const word of words) {
        const name = `${prefix}_${word.toUpperCase()}`;
        expect(names.toWire.get(word), word).to.equal(wireEnum[name]);
        expect(toJson(names.toWire.get(word)!)).to.equal(name);
      }
      for (const value of Object.values(wireEnum).filter((v): v is number => typeof v === "number" && v > 0)) {
        expect(`${prefix}_${names.fromWire.get(value)!.toUpperCase()}`).to.equal(toJson(value));
      }
      // Reordering the domain list changes nothing on the wire.
      const reversed = enumNames(prefix, [...words].reverse(), fromJson, toJson, Object.values(wireEnum).filter((v): v is number => typeof v === "number"));
      expect([...reversed.toWire.entries()].sort()).to.deep.equal([...names.toWire.entries()].sort());
    });
  }

  it("refuses a domain word the proto does not name, and a proto value with no word, at start-up", () => {
    const values = [0, 1, 2, 3, -1];
    expect(() => enumNames("OUTCOME", ["success", "failure", "partial", "unknown"], wire.outcomeFromJSON, wire.outcomeToJSON, values)).to.throw(
      /OUTCOME_UNKNOWN/,
    );
    expect(() => enumNames("OUTCOME", ["success", "failure"], wire.outcomeFromJSON, wire.outcomeToJSON, values)).to.throw(/OUTCOME_PARTIAL has no domain word/);
  });

  it("converts messages through the names", () => {
    const d = decision({ decision: "defer", outcome: "partial" });
    const w = decisionToWire(d);
    expect(wire.decisionTypeToJSON(w.decision)).to.equal("DECISION_TYPE_DEFER");
    expect(wire.outcomeToJSON(w.outcome)).to.equal("OUTCOME_PARTIAL");
    expect(wire.reviewerRoleToJSON(w.votes[0]!.reviewerRole)).to.equal("REVIEWER_ROLE_SAFETY");
    const s = suggestionFromWire(wireSuggestion({ risk: wire.RiskLevel.RISK_LEVEL_CRITICAL, impact: wire.ImpactLevel.IMPACT_LEVEL_TRANSFORMATIVE, estimatedEffort: wire.Effort.EFFORT_EPIC }));
    expect([s.risk, s.impact, s.estimatedEffort]).to.deep.equal(["critical", "transformative", "epic"]);
  });
});
