/** Decision ids and suggestion fingerprints. */
import { createHash, randomBytes } from "node:crypto";
import type { Suggestion } from "./model.js";
import { canonicalJson } from "./policy.js";

/**
 * A fresh decision id: `dec-` then 24 hex digits, random, so unique across replicas. A review
 * with a request_id gets an id derived from it instead, so that every replica and every retry
 * names the same decision (see `decisionIdForRequest`).
 */
export function newDecisionId(): string {
  return `dec-${randomBytes(12).toString("hex")}`;
}

/** The decision id that a request_id always maps to. */
export function decisionIdForRequest(requestId: string): string {
  return `dec-${createHash("sha256").update(`request:${requestId}`).digest("hex").slice(0, 24)}`;
}

/** A digest of every field of a suggestion: equal suggestions, field by field, have equal fingerprints. */
export function suggestionFingerprint(s: Suggestion): string {
  return createHash("sha256")
    .update(
      canonicalJson({
        id: s.id,
        title: s.title,
        description: s.description,
        reasoning: s.reasoning,
        risk: s.risk,
        impact: s.impact,
        auto_fixable: s.autoFixable,
        fix_steps: s.fixSteps,
        files_affected: s.filesAffected,
        estimated_effort: s.estimatedEffort ?? null,
      }),
    )
    .digest("hex");
}

/** A digest of what a RecordOutcome call records, to tell a repeat of it from a conflicting call. */
export function outcomeFingerprint(outcome: string, notes: string, lessons: string): string {
  return createHash("sha256").update(canonicalJson({ outcome, notes, lessons })).digest("hex");
}
