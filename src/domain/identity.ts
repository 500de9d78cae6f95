/** Decision ids and suggestion fingerprints. */
import { createHash, randomBytes } from "node:crypto";
import type { Suggestion } from "./model.js";
import { canonicalJson } from "./policy.js";
import { ANONYMOUS_NAME } from "./principal.js";

/**
 * A fresh decision id: `dec-` then 24 hex digits, random, so unique across replicas. A review
 * with a request_id gets an id derived from it instead, so that every replica and every retry
 * names the same decision (see `decisionIdForRequest`).
 */
export function newDecisionId(): string {
  return `dec-${randomBytes(12).toString("hex")}`;
}

/**
 * The decision id that a principal's request_id always maps to. A request_id is scoped to its
 * principal (SPEC §8): the same id from two principals names two decisions.
 *
 * For `anonymous` the id is what it was before principals existed, sha256 of `request:<id>`, so
 * that keyspaces written then keep working: a replay of a stored request finds its decision.
 * Every other principal hashes `principal-request:` and the JSON of [name, request id]: JSON
 * makes the pair unambiguous (no name and id can be glued into another's), and the different
 * first word keeps it apart from every anonymous input.
 */
export function decisionIdForRequest(submittedBy: string, requestId: string): string {
  const input =
    submittedBy === ANONYMOUS_NAME ? `request:${requestId}` : `principal-request:${JSON.stringify([submittedBy, requestId])}`;
  return `dec-${createHash("sha256").update(input).digest("hex").slice(0, 24)}`;
}

/**
 * A digest of every field of a suggestion: equal suggestions, field by field, have equal fingerprints.
 * It hashes the canonical JSON of the suggestion (keys sorted, as `canonicalJson` writes them), built
 * here with its keys already in that order: the same bytes, without sorting on every review
 * (test/domain/fingerprint.test.ts holds the two equal).
 *
 * Fingerprints are stored with request ids, and a replay is compared with the stored one. `diff`
 * came later, so it is part of the digest only when it is not empty: a suggestion without a diff
 * keeps the fingerprint the versions before `diff` stored for it, and replays of requests stored
 * then still match (a `diff` key in every digest, even empty, would change them all).
 */
export function suggestionFingerprint(s: Suggestion): string {
  const canonical = JSON.stringify({
    auto_fixable: s.autoFixable,
    description: s.description,
    // JSON.stringify leaves out an undefined value, key and all, as canonicalJson does.
    diff: s.diff === "" ? undefined : s.diff,
    estimated_effort: s.estimatedEffort ?? null,
    files_affected: s.filesAffected,
    fix_steps: s.fixSteps,
    id: s.id,
    impact: s.impact,
    reasoning: s.reasoning,
    risk: s.risk,
    title: s.title,
  });
  return createHash("sha256").update(canonical).digest("hex");
}

/** A digest of what a RecordOutcome call records, to tell a repeat of it from a conflicting call. */
export function outcomeFingerprint(outcome: string, notes: string, lessons: string): string {
  return createHash("sha256").update(canonicalJson({ outcome, notes, lessons })).digest("hex");
}
