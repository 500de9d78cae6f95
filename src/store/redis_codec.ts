/**
 * How decisions and lessons are written into Redis values and read back. A decision is a hash:
 * `doc` holds the JSON of the part that never changes (votes, suggestion, reasoning…), and the
 * fields a RecordOutcome replaces are plain hash fields, so that the Lua scripts never parse JSON.
 * Times are milliseconds since the epoch.
 *
 * Who did what (SPEC §8) is in plain fields too: `submitted_by` (which record_outcome.lua checks
 * for an agent), and `outcome_by` with `outcome_by_op`. They were added without a new doc
 * version, so that a replica still running the code before them reads every decision written
 * since (it ignores fields it does not know), and this code reads what that code wrote:
 * - no `submitted_by`: written before principals, when no caller was authenticated, which is
 *   what `anonymous` means (and the request-id derivation of `anonymous` is the one of then);
 * - an outcome whose `outcome_by_op` is not the hash's `op`: recorded by the code before
 *   principals (it sets `op` and knows no `outcome_by`), so by `anonymous`, even if an earlier
 *   outcome was recorded by someone else;
 * - a lesson JSON without `recordedBy`: `anonymous`.
 */
import { ANONYMOUS_NAME } from "../domain/principal.js";
import {
  OUTCOMES,
  type Decision,
  type DecisionType,
  type Lesson,
  type Outcome,
  type Suggestion,
  type Vote,
} from "../domain/model.js";

/** The version of the `doc` JSON, stored in it so that a later layout can still read it. */
const DOC_VERSION = 1;

interface VoteDoc {
  reviewerRole: Vote["reviewerRole"];
  vote: Vote["vote"];
  reasoning: string;
  concerns: string[];
  conditions: string[];
  confidence: number;
  castAt: number;
  veto: string;
}

interface DecisionDoc {
  v: number;
  id: string;
  suggestionId: string;
  decision: DecisionType;
  votes: VoteDoc[];
  finalReasoning: string;
  conditions: string[];
  requiresManualOversight: boolean;
  autoFixApproved: boolean;
  decidedAt: number;
  policyVersion: string;
  suggestion: Omit<Suggestion, "estimatedEffort"> & { estimatedEffort: Suggestion["estimatedEffort"] | null };
  requestId: string;
}

/** The hash fields of a decision, as save_review.lua writes them. */
export interface DecisionFields {
  doc: string;
  submitted_by: string;
  outcome: string;
  notes: string;
  lessons: string;
  implemented_at: string;
  outcome_by: string;
}

export function encodeDecision(d: Decision): DecisionFields {
  const s = d.suggestion;
  const doc: DecisionDoc = {
    v: DOC_VERSION,
    id: d.id,
    suggestionId: d.suggestionId,
    decision: d.decision,
    votes: d.votes.map((v) => ({
      reviewerRole: v.reviewerRole,
      vote: v.vote,
      reasoning: v.reasoning,
      concerns: v.concerns,
      conditions: v.conditions,
      confidence: v.confidence,
      castAt: v.castAt.getTime(),
      veto: v.veto,
    })),
    finalReasoning: d.finalReasoning,
    conditions: d.conditions,
    requiresManualOversight: d.requiresManualOversight,
    autoFixApproved: d.autoFixApproved,
    decidedAt: d.decidedAt.getTime(),
    policyVersion: d.policyVersion,
    suggestion: {
      id: s.id,
      title: s.title,
      description: s.description,
      reasoning: s.reasoning,
      risk: s.risk,
      impact: s.impact,
      autoFixable: s.autoFixable,
      fixSteps: s.fixSteps,
      filesAffected: s.filesAffected,
      estimatedEffort: s.estimatedEffort ?? null,
    },
    requestId: d.requestId,
  };
  return {
    doc: JSON.stringify(doc),
    submitted_by: d.submittedBy,
    outcome: d.outcome ?? "",
    notes: d.outcomeNotes,
    lessons: d.lessonsLearned,
    implemented_at: d.implementedAt ? String(d.implementedAt.getTime()) : "",
    outcome_by: d.outcomeRecordedBy,
  };
}

/** A flat `[field, value, …]` reply (HGETALL, a stream entry) as a record. */
export function fieldMap(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/** Reads a decision hash (or event entry); undefined when it has no `doc` (no such decision). */
export function decodeDecision(fields: Record<string, string>): Decision | undefined {
  if (fields.doc === undefined) return undefined;
  const doc = JSON.parse(fields.doc) as DecisionDoc;
  if (doc.v !== DOC_VERSION) throw new Error(`decision doc version ${doc.v} is not readable by this version of Council`);
  const s = doc.suggestion;
  return {
    id: doc.id,
    suggestionId: doc.suggestionId,
    decision: doc.decision,
    votes: doc.votes.map((v) => ({
      reviewerRole: v.reviewerRole,
      vote: v.vote,
      reasoning: v.reasoning,
      concerns: v.concerns,
      conditions: v.conditions,
      confidence: v.confidence,
      castAt: new Date(v.castAt),
      veto: v.veto,
    })),
    finalReasoning: doc.finalReasoning,
    conditions: doc.conditions,
    requiresManualOversight: doc.requiresManualOversight,
    autoFixApproved: doc.autoFixApproved,
    decidedAt: new Date(doc.decidedAt),
    implementedAt: fields.implemented_at ? new Date(Number(fields.implemented_at)) : undefined,
    outcome: fields.outcome ? outcomeOf(fields.outcome) : undefined,
    outcomeRecordedBy: outcomeRecordedBy(fields),
    outcomeNotes: fields.notes ?? "",
    lessonsLearned: fields.lessons ?? "",
    policyVersion: doc.policyVersion,
    suggestion: {
      id: s.id,
      title: s.title,
      description: s.description,
      reasoning: s.reasoning,
      risk: s.risk,
      impact: s.impact,
      autoFixable: s.autoFixable,
      fixSteps: s.fixSteps,
      filesAffected: s.filesAffected,
      estimatedEffort: s.estimatedEffort ?? undefined,
    },
    requestId: doc.requestId,
    submittedBy: fields.submitted_by ?? ANONYMOUS_NAME,
  };
}

/**
 * Who recorded the decision's outcome: "" while it has none; `outcome_by` when the call that
 * recorded it wrote it (its `outcome_by_op` is the hash's `op`: both are absent on a decision
 * saved with its outcome, both the call's id after record_outcome.lua); else `anonymous`.
 */
function outcomeRecordedBy(fields: Record<string, string>): string {
  if (!fields.outcome) return "";
  if (fields.outcome_by !== undefined && fields.outcome_by_op === fields.op) return fields.outcome_by;
  return ANONYMOUS_NAME;
}

function outcomeOf(word: string): Outcome {
  if (!(OUTCOMES as readonly string[]).includes(word)) throw new Error(`stored outcome ${JSON.stringify(word)} is unknown`);
  return word as Outcome;
}

export function encodeLesson(l: Lesson): string {
  return JSON.stringify({
    decisionId: l.decisionId,
    outcome: l.outcome,
    lessons: l.lessons,
    notes: l.notes,
    recordedAt: l.recordedAt.getTime(),
    recordedBy: l.recordedBy,
  });
}

export function decodeLesson(json: string): Lesson {
  const l = JSON.parse(json) as { decisionId: string; outcome: string; lessons: string; notes: string; recordedAt: number; recordedBy?: string };
  return {
    decisionId: l.decisionId,
    outcome: outcomeOf(l.outcome),
    lessons: l.lessons,
    notes: l.notes,
    recordedAt: new Date(l.recordedAt),
    recordedBy: l.recordedBy ?? ANONYMOUS_NAME,
  };
}
