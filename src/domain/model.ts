/**
 * The council's vocabulary as plain data. Enumerations are the seed module's lower-case words, so
 * that policies and test vectors read naturally; the transport maps them to and from proto enums.
 */

export const RISK_LEVELS = ["trivial", "low", "medium", "high", "critical"] as const;
export type RiskLevel = (typeof RISK_LEVELS)[number];

export const IMPACT_LEVELS = ["minimal", "low", "medium", "high", "transformative"] as const;
export type ImpactLevel = (typeof IMPACT_LEVELS)[number];

export const EFFORTS = ["small", "medium", "large", "epic"] as const;
export type Effort = (typeof EFFORTS)[number];

/** Reviewer roles, in the order the built-in council votes. */
export const REVIEWER_ROLES = ["safety", "performance", "architecture", "compliance", "quality"] as const;
export type ReviewerRole = (typeof REVIEWER_ROLES)[number];

export const VOTE_TYPES = ["approve", "reject", "abstain", "needs_more_info"] as const;
export type VoteType = (typeof VOTE_TYPES)[number];

export const DECISION_TYPES = ["auto_approve", "human_approve", "defer", "reject", "escalate"] as const;
export type DecisionType = (typeof DECISION_TYPES)[number];

export const OUTCOMES = ["success", "failure", "partial"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** The summary's name for decisions that have no outcome yet. */
export const PENDING = "pending";

/**
 * Where a decision stands with people (SPEC section 9), beside its immutable council decision:
 * `pending` waits for verdicts; the other four are final and never change again.
 */
export const DECISION_STATUSES = ["pending", "approved", "rejected", "expired", "superseded"] as const;
export type DecisionStatus = (typeof DECISION_STATUSES)[number];

/** The statuses a decision never leaves. */
export const FINAL_STATUSES: readonly DecisionStatus[] = ["approved", "rejected", "expired", "superseded"];

export function isFinal(status: DecisionStatus): boolean {
  return status !== "pending";
}

/** What a person can say about a pending decision. */
export const VERDICT_TYPES = ["approve", "reject"] as const;
export type VerdictType = (typeof VERDICT_TYPES)[number];

/** One person's verdict on a decision. A principal gives at most one verdict per decision. */
export interface Verdict {
  /** The principal that gave it. */
  by: string;
  verdict: VerdictType;
  /** Why; required for a rejection, optional for an approval. */
  comment: string;
  /** The replica's clock when it was given. */
  givenAt: Date;
  /**
   * The ResolveDecision request_id it was given with, or "" (scoped to `by` and the decision). Stored
   * so that a retry can be told from a conflicting reuse of the id; never sent on the wire.
   */
  requestId: string;
}

export interface Suggestion {
  id: string;
  title: string;
  description: string;
  reasoning: string;
  risk: RiskLevel;
  impact: ImpactLevel;
  autoFixable: boolean;
  fixSteps: string[];
  filesAffected: string[];
  /** Undefined when the submitter gave no estimate. */
  estimatedEffort: Effort | undefined;
  /**
   * The change itself, as a unified diff (at most LIMITS.diffBytes), or "" when the submitter sent
   * none. For reviewers that read the change; the built-in rules do not read it.
   */
  diff: string;
}

/** `Vote.castBy` of a vote cast by the built-in rules. */
export const CAST_BY_RULES = "rules";

export interface Vote {
  reviewerRole: ReviewerRole;
  vote: VoteType;
  reasoning: string;
  concerns: string[];
  conditions: string[];
  confidence: number;
  castAt: Date;
  /** The veto condition that fired, or "" when none did. */
  veto: string;
  /**
   * Who cast the vote (SPEC section 11): `rules` for a built-in reviewer (every vote stored before
   * votes said who cast them was), an external reviewer's principal, or `fallback:<on_failure>`.
   */
  castBy: string;
}

export interface Decision {
  id: string;
  suggestionId: string;
  decision: DecisionType;
  votes: Vote[];
  finalReasoning: string;
  conditions: string[];
  requiresManualOversight: boolean;
  autoFixApproved: boolean;
  decidedAt: Date;
  implementedAt: Date | undefined;
  outcome: Outcome | undefined;
  outcomeNotes: string;
  lessonsLearned: string;
  policyVersion: string;
  suggestion: Suggestion;
  /** The idempotency key the review was submitted with, or "" (scoped to `submittedBy`). */
  requestId: string;
  /**
   * The principal that submitted the review. Decisions stored before Council knew principals
   * read as `anonymous`: no caller was authenticated then, which is what `anonymous` means.
   */
  submittedBy: string;
  /** The principal that recorded the last outcome; "" while no outcome is recorded. */
  outcomeRecordedBy: string;
  /** Where the decision stands with people (SPEC section 9). */
  status: DecisionStatus;
  /** The verdicts given, in the order they were counted. */
  verdicts: Verdict[];
  /** How many distinct principals must approve; 0 for a decision that was final when it was made. */
  approvalsRequired: number;
  /**
   * When a pending decision expires (the policy's `expires_after` after `decidedAt`); undefined for
   * a decision that was final when it was made, and for old decisions (no expiry). It stays set after
   * the decision leaves pending.
   */
  expiresAt: Date | undefined;
  /** The pending decision this review follows up (ReviewSuggestionRequest.supersedes), or "". */
  supersedes: string;
  /** The decision that superseded this one (set with status `superseded`), or "". */
  supersededBy: string;
}

export interface Lesson {
  decisionId: string;
  outcome: Outcome;
  lessons: string;
  notes: string;
  recordedAt: Date;
  /** The principal that recorded the outcome (`anonymous` for lessons recorded before principals). */
  recordedBy: string;
}

/**
 * What counts when an external role gets no valid vote in time (SPEC section 11): the built-in
 * rules' vote, an abstention, a request for more information (the default), or a vetoing rejection.
 */
export const FAILURE_POLICIES = ["rules", "abstain", "needs_more_info", "reject"] as const;
export type FailurePolicy = (typeof FAILURE_POLICIES)[number];

/** How an external role is served: how long a review waits for its vote, and what counts instead. */
export interface ExternalSettings {
  timeoutMs: number;
  onFailure: FailurePolicy;
}

export interface ReviewerProfile {
  role: ReviewerRole;
  expertiseAreas: string[];
  riskTolerance: number;
  priorityFocus: string[];
  vetoConditions: string[];
  /** Set when reviewer agents cast this role's vote (ServeReviews). */
  external: ExternalSettings | undefined;
  /** Reviewer agents serving this role now, across all replicas (0 for a built-in role). */
  connected: number;
}

/** Exact counts over every stored decision, read from counters. */
export interface Summary {
  totalDecisions: number;
  byType: Record<DecisionType, number>;
  outcomes: Record<Outcome | typeof PENDING, number>;
  autoApproved: number;
  learningEntries: number;
  /** How many decisions are in each status now (a status change moves one count). */
  byStatus: Record<DecisionStatus, number>;
}

/** A summary of nothing: every type and outcome present, at zero. */
export function emptySummary(): Summary {
  return {
    totalDecisions: 0,
    byType: Object.fromEntries(DECISION_TYPES.map((t) => [t, 0])) as Summary["byType"],
    outcomes: Object.fromEntries([...OUTCOMES, PENDING].map((o) => [o, 0])) as Summary["outcomes"],
    autoApproved: 0,
    learningEntries: 0,
    byStatus: Object.fromEntries(DECISION_STATUSES.map((s) => [s, 0])) as Summary["byStatus"],
  };
}
