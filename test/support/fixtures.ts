/** Builders for test data, in domain and wire form. */
import { randomUUID } from "node:crypto";
import type { Decision, Suggestion } from "../../src/domain/model.js";
import { decisionIdForRequest, newDecisionId } from "../../src/domain/identity.js";
import { ANONYMOUS_NAME } from "../../src/domain/principal.js";
import { ImpactLevel, RiskLevel, Effort, type Suggestion as WireSuggestion } from "../../src/gen/council/v1/review.js";

/** A unique string for ids, so that tests sharing a store do not see each other's data. */
export const unique = (prefix = "t") => `${prefix}-${randomUUID().slice(0, 8)}`;

export function suggestion(overrides: Partial<Suggestion> = {}): Suggestion {
  return {
    id: unique("sug"),
    title: "Tidy the retry helper",
    description: "Replace the hand-rolled loop with the shared helper.",
    reasoning: "Fewer code paths.",
    risk: "low",
    impact: "low",
    autoFixable: true,
    fixSteps: ["Apply the patch", "Run the unit tests"],
    filesAffected: ["src/retry.ts"],
    estimatedEffort: "small",
    diff: "",
    ...overrides,
  };
}

export function wireSuggestion(overrides: Partial<WireSuggestion> = {}): WireSuggestion {
  return {
    id: unique("sug"),
    title: "Tidy the retry helper",
    description: "Replace the hand-rolled loop with the shared helper.",
    reasoning: "Fewer code paths.",
    risk: RiskLevel.RISK_LEVEL_LOW,
    impact: ImpactLevel.IMPACT_LEVEL_LOW,
    autoFixable: true,
    fixSteps: ["Apply the patch", "Run the unit tests"],
    filesAffected: ["src/retry.ts"],
    estimatedEffort: Effort.EFFORT_SMALL,
    diff: "",
    ...overrides,
  };
}

/**
 * A complete decision as a store receives it. As the council makes them, a decision with a
 * request_id has the id derived from it (the Store contract relies on that), others a random id.
 */
export function decision(overrides: Partial<Decision> = {}): Decision {
  const s = overrides.suggestion ?? suggestion();
  const decidedAt = overrides.decidedAt ?? new Date();
  return {
    id: overrides.requestId ? decisionIdForRequest(overrides.submittedBy ?? ANONYMOUS_NAME, overrides.requestId) : newDecisionId(),
    suggestionId: s.id,
    decision: "human_approve",
    votes: [
      {
        reviewerRole: "safety",
        vote: "approve",
        reasoning: "[SAFETY] Approved: x. Risk level (low) is acceptable.",
        concerns: ["c1"],
        conditions: ["k1"],
        confidence: 0.8,
        castAt: new Date("2026-01-02T03:04:05.678Z"),
        veto: "",
        castBy: "rules",
      },
    ],
    finalReasoning: "Approved for human implementation (3/5 votes).",
    conditions: ["k1"],
    requiresManualOversight: true,
    autoFixApproved: false,
    decidedAt,
    implementedAt: undefined,
    outcome: undefined,
    outcomeNotes: "",
    lessonsLearned: "",
    policyVersion: "default@000000000000",
    suggestion: s,
    requestId: "",
    submittedBy: ANONYMOUS_NAME,
    outcomeRecordedBy: "",
    // A human_approve decision that a person has approved (so outcomes may be recorded on it);
    // tests of the lifecycle override these.
    status: "approved",
    verdicts: [{ by: "alice", verdict: "approve", comment: "Looks right.", givenAt: new Date("2026-01-02T04:00:00.000Z"), requestId: "" }],
    approvalsRequired: 1,
    expiresAt: new Date(decidedAt.getTime() + 24 * 3_600_000),
    supersedes: "",
    supersededBy: "",
    ...overrides,
  };
}

/** A decision waiting for people: pending, no verdicts, expiring after `expiresInMs`. */
export function pendingDecision(overrides: Partial<Decision> = {}, expiresInMs = 24 * 3_600_000): Decision {
  const decidedAt = overrides.decidedAt ?? new Date();
  return decision({ status: "pending", verdicts: [], expiresAt: new Date(decidedAt.getTime() + expiresInMs), decidedAt, ...overrides });
}
