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
 *
 * Issue 13 added two keys to `doc`, also without a new version: a suggestion's `diff` (written
 * only when it is not empty; none reads as "") and a vote's `castBy` (none: the vote was stored
 * before votes said who cast them, when the built-in rules cast every vote, so it reads as `rules`).
 *
 * The lifecycle (SPEC §9) is in plain fields as well, each written by a script that never parses
 * JSON: `status`, `verdicts` (a JSON list the app builds; the scripts store it as it comes),
 * `approvals`, `expires_at` (ms, or "" for none), `supersedes`, `superseded_by`, `revision` (bumped
 * by every change after the review is stored), `ix` (the decision's member in the indexes, so that
 * a script can move it between status indexes), `type` and `sid` (its decision type and suggestion
 * id, so that the expiry sweeper builds a decision's status index keys without reading its `doc`),
 * and `lc_op` (the call that made the last lifecycle change). A decision stored before SPEC §9 has
 * none of them until the status backfill gives it `status`, `approvals`, `ix`, `type` and `sid`
 * (redis.ts); with or without them it reads as `legacyLifecycle` says: auto_approve approved,
 * reject rejected, the rest pending with the policy's approvals, no expiry, revision 0.
 */
import { legacyLifecycle, DEFAULT_VERDICTS, type VerdictsSection } from "../domain/lifecycle.js";
import { ANONYMOUS_NAME } from "../domain/principal.js";
import {
  CAST_BY_RULES,
  DECISION_STATUSES,
  OUTCOMES,
  VERDICT_TYPES,
  type Decision,
  type DecisionStatus,
  type DecisionType,
  type Lesson,
  type Outcome,
  type Suggestion,
  type Verdict,
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
  /** Absent in votes stored before it existed (all cast by the rules). */
  castBy?: string;
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
  /** `diff` is absent when it is empty, and in suggestions stored before it existed. */
  suggestion: Omit<Suggestion, "estimatedEffort" | "diff"> & { estimatedEffort: Suggestion["estimatedEffort"] | null; diff?: string };
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
  status: DecisionStatus;
  verdicts: string;
  approvals: string;
  /** ms, or "" when the decision does not expire. */
  expires_at: string;
  supersedes: string;
  superseded_by: string;
}

interface VerdictDoc {
  by: string;
  verdict: Verdict["verdict"];
  comment: string;
  givenAt: number;
  requestId: string;
}

/** The `verdicts` field: a JSON list (the scripts store it as the store sends it). */
export function encodeVerdicts(verdicts: readonly Verdict[]): string {
  return JSON.stringify(
    verdicts.map((v): VerdictDoc => ({ by: v.by, verdict: v.verdict, comment: v.comment, givenAt: v.givenAt.getTime(), requestId: v.requestId })),
  );
}

function decodeVerdicts(json: string | undefined): Verdict[] {
  if (json === undefined || json === "" || json === "[]") return [];
  const list = JSON.parse(json) as VerdictDoc[];
  if (!Array.isArray(list)) throw new Error("stored verdicts are not a list");
  return list.map((v) => {
    if (!(VERDICT_TYPES as readonly string[]).includes(v.verdict)) throw new Error(`stored verdict ${JSON.stringify(v.verdict)} is unknown`);
    return { by: v.by, verdict: v.verdict, comment: v.comment ?? "", givenAt: new Date(v.givenAt), requestId: v.requestId ?? "" };
  });
}

/** A stored status word, checked. */
export function statusOf(word: string): DecisionStatus {
  if (!(DECISION_STATUSES as readonly string[]).includes(word)) throw new Error(`stored status ${JSON.stringify(word)} is unknown`);
  return word as DecisionStatus;
}

/** The revision of a decision hash: 0 for one stored before revisions (SPEC §9) existed. */
export function revisionOf(fields: Record<string, string>): number {
  const r = fields.revision;
  if (r === undefined || r === "") return 0;
  const n = Number(r);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`stored revision ${JSON.stringify(r)} is not a count`);
  return n;
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
      castBy: v.castBy,
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
      ...(s.diff !== "" ? { diff: s.diff } : {}),
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
    status: d.status,
    verdicts: encodeVerdicts(d.verdicts),
    approvals: String(d.approvalsRequired),
    expires_at: d.expiresAt ? String(d.expiresAt.getTime()) : "",
    supersedes: d.supersedes,
    superseded_by: d.supersededBy,
  };
}

/**
 * The hash fields of a decision that make it large (the page byte budget reads their lengths
 * before it reads a decision whole), first among the fields a read fetches.
 */
export const DECISION_SIZED_FIELDS = ["doc", "notes", "lessons", "verdicts"] as const;

/**
 * Every hash field `decodeDecision` reads, and no other: a listing fetches these alone
 * (lua/read_decisions.lua: no field names on the wire, none of the fields kept for the scripts).
 * `decodeDecision` takes only these names, so that reading a new field without listing it here
 * does not compile.
 */
export const DECISION_READ_FIELDS = [
  ...DECISION_SIZED_FIELDS,
  "submitted_by",
  "outcome",
  "implemented_at",
  "outcome_by",
  "outcome_by_op",
  "op",
  "status",
  "approvals",
  "expires_at",
  "supersedes",
  "superseded_by",
] as const;

/** The stored fields a decision is decoded from (a whole hash, or the read fields alone). */
export type DecisionReadFields = Readonly<Partial<Record<(typeof DECISION_READ_FIELDS)[number], string>>>;

/**
 * A decision as read_decisions.lua returns it: the doc, and a JSON list of the values of the other
 * DECISION_READ_FIELDS in order, false for a field the decision lacks.
 */
export function readFieldMap(doc: string | null, rest: string): DecisionReadFields {
  const out: Partial<Record<(typeof DECISION_READ_FIELDS)[number], string>> = {};
  if (doc !== null) out.doc = doc;
  const values = JSON.parse(rest) as unknown;
  if (!Array.isArray(values) || values.length !== DECISION_READ_FIELDS.length - 1) throw new Error("stored decision fields are not the list asked for");
  for (let i = 0; i < values.length; i++) {
    const v: unknown = values[i];
    if (typeof v === "string") out[DECISION_READ_FIELDS[i + 1]!] = v;
    else if (v !== false) throw new Error(`stored decision field ${DECISION_READ_FIELDS[i + 1]} is not a string`);
  }
  return out;
}

/** A flat `[field, value, …]` reply (HGETALL, a stream entry) as a record. */
export function fieldMap(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}

/**
 * Reads a decision hash (or event entry); undefined when it has no `doc` (no such decision). It
 * reads what is stored: a pending decision past its expiry is still pending here (the store
 * presents it as expired, by its clock: `asOf`). `verdicts` is the policy section that a decision
 * stored before SPEC §9 takes its approvals from.
 */
export function decodeDecision(fields: DecisionReadFields, verdicts: VerdictsSection = DEFAULT_VERDICTS): Decision | undefined {
  if (fields.doc === undefined) return undefined;
  const doc = JSON.parse(fields.doc) as DecisionDoc;
  if (doc.v !== DOC_VERSION) throw new Error(`decision doc version ${doc.v} is not readable by this version of Council`);
  const s = doc.suggestion;
  const legacy = fields.status && fields.approvals ? undefined : legacyLifecycle(doc.decision, verdicts);
  const approvals = fields.approvals ? Number(fields.approvals) : legacy!.approvalsRequired;
  if (!Number.isSafeInteger(approvals) || approvals < 0) throw new Error(`stored approvals ${JSON.stringify(fields.approvals)} is not a count`);
  // The parsed doc is this call's own: its votes and suggestion become the decision's in place (a
  // page of listings decodes 50 docs, and copying every object of each again was a third of it).
  const votes = doc.votes as unknown as (Omit<VoteDoc, "castAt"> & { castAt: number | Date })[];
  for (const v of votes) {
    v.castAt = new Date(v.castAt as number);
    // Votes stored before `cast_by` were all cast by the built-in rules.
    v.castBy ??= CAST_BY_RULES;
  }
  const suggestion = s as Omit<Suggestion, "estimatedEffort" | "diff"> & { estimatedEffort: Suggestion["estimatedEffort"] | null; diff?: string };
  if (suggestion.estimatedEffort === null) suggestion.estimatedEffort = undefined; // stored as null: JSON has no undefined
  suggestion.diff ??= ""; // stored only when not empty
  return {
    id: doc.id,
    suggestionId: doc.suggestionId,
    decision: doc.decision,
    votes: votes as Vote[],
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
    suggestion: suggestion as Suggestion,
    requestId: doc.requestId,
    submittedBy: fields.submitted_by ?? ANONYMOUS_NAME,
    status: fields.status ? statusOf(fields.status) : legacy!.status,
    verdicts: decodeVerdicts(fields.verdicts),
    approvalsRequired: approvals,
    expiresAt: fields.expires_at ? new Date(Number(fields.expires_at)) : undefined,
    supersedes: fields.supersedes ?? "",
    supersededBy: fields.superseded_by ?? "",
  };
}

/**
 * Who recorded the decision's outcome: "" while it has none; `outcome_by` when the call that
 * recorded it wrote it (its `outcome_by_op` is the hash's `op`: both are absent on a decision
 * saved with its outcome, both the call's id after record_outcome.lua); else `anonymous`.
 */
function outcomeRecordedBy(fields: DecisionReadFields): string {
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
