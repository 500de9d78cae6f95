/**
 * What the guard answers an agent (SPEC section 9): may it act, and why. Pure functions over a
 * decision, so that the rule "allowed means APPROVED" and the wording of the reason live in one
 * place; client.ts does the calls.
 */
import { DecisionStatus, DecisionType, VerdictType, type Decision, type Verdict } from "./gen/council/v1/review.js";

/**
 * How a guarded decision ended: its final status in lower case, or `timed_out` when the guard's
 * deadline passed while people had not decided yet (the decision is still pending then, and may
 * still be approved: it is not a rejection).
 */
export type GuardOutcome = "approved" | "rejected" | "expired" | "superseded" | "timed_out";

/** The answer of `CouncilClient.guard`: whether the agent may act, and why. */
export interface GuardVerdict {
  /** True only when the decision ended APPROVED (auto-approved by the council, or by enough people). */
  allowed: boolean;
  outcome: GuardOutcome;
  /** True when the guard stopped waiting at its deadline while the decision was still pending. */
  timedOut: boolean;
  /**
   * One sentence for a log or a person: who decided and why, e.g. `auto-approved by the council:
   * …`, `approved by alice ("ship it"), bob (2 of 2 approvals)`, `rejected by alice: "not on a
   * Friday"`, `expired at … with 0 of 1 approvals`, `timed out after 5000 ms: … still pending`.
   */
  reason: string;
  /** The decision as last seen: the council's decision, with the verdicts and status people gave it. */
  decision: Decision;
  decisionId: string;
  /** The council's decision type (AUTO_APPROVE, HUMAN_APPROVE, DEFER, REJECT, ESCALATE). */
  decisionType: DecisionType;
  status: DecisionStatus;
  /** The principals that approved, in the order their verdicts were counted. */
  approvedBy: string[];
  /** The principals that rejected (a rejection always has a comment: see `verdicts`). */
  rejectedBy: string[];
  /** Every verdict people gave: who, approve or reject, the comment, when. */
  verdicts: Verdict[];
  /** The council's conditions: what the agent must respect if it acts. */
  conditions: string[];
}

/**
 * The decision's status. A server older than SPEC section 9 sends none: then AUTO_APPROVE reads
 * approved, REJECT rejected, and the rest pending, as the server itself reads such decisions.
 */
export function statusOf(decision: Decision): DecisionStatus {
  if (decision.status !== DecisionStatus.DECISION_STATUS_UNSPECIFIED) return decision.status;
  if (decision.decision === DecisionType.DECISION_TYPE_AUTO_APPROVE) return DecisionStatus.DECISION_STATUS_APPROVED;
  if (decision.decision === DecisionType.DECISION_TYPE_REJECT) return DecisionStatus.DECISION_STATUS_REJECTED;
  return DecisionStatus.DECISION_STATUS_PENDING;
}

/** True once the decision left PENDING: APPROVED, REJECTED, EXPIRED or SUPERSEDED. */
export function isFinal(decision: Decision): boolean {
  return statusOf(decision) !== DecisionStatus.DECISION_STATUS_PENDING;
}

/** Whether `b` says anything `a` did not: another status, verdict, outcome or successor. */
export function changed(a: Decision, b: Decision): boolean {
  return (
    statusOf(a) !== statusOf(b) ||
    a.verdicts.length !== b.verdicts.length ||
    a.outcome !== b.outcome ||
    a.supersededBy !== b.supersededBy
  );
}

const OUTCOME_OF: Partial<Record<DecisionStatus, GuardOutcome>> = {
  [DecisionStatus.DECISION_STATUS_APPROVED]: "approved",
  [DecisionStatus.DECISION_STATUS_REJECTED]: "rejected",
  [DecisionStatus.DECISION_STATUS_EXPIRED]: "expired",
  [DecisionStatus.DECISION_STATUS_SUPERSEDED]: "superseded",
};

/**
 * The guard's answer for `decision`: final, or (with `waitedMs`) still pending when the guard's
 * deadline passed.
 */
export function guardVerdict(decision: Decision, waitedMs?: number): GuardVerdict {
  const status = statusOf(decision);
  const outcome = OUTCOME_OF[status] ?? "timed_out";
  const by = (v: VerdictType) => decision.verdicts.filter((x) => x.verdict === v).map((x) => x.by);
  return {
    allowed: status === DecisionStatus.DECISION_STATUS_APPROVED,
    outcome,
    timedOut: outcome === "timed_out",
    reason: reasonOf(decision, status, waitedMs),
    decision,
    decisionId: decision.id,
    decisionType: decision.decision,
    status,
    approvedBy: by(VerdictType.VERDICT_TYPE_APPROVE),
    rejectedBy: by(VerdictType.VERDICT_TYPE_REJECT),
    verdicts: [...decision.verdicts],
    conditions: [...decision.conditions],
  };
}

function reasonOf(d: Decision, status: DecisionStatus, waitedMs: number | undefined): string {
  const approvals = d.verdicts.filter((v) => v.verdict === VerdictType.VERDICT_TYPE_APPROVE);
  const tally = `${approvals.length} of ${d.approvalsRequired} approvals`;
  const people = (verdicts: Verdict[]) => verdicts.map((v) => (v.comment ? `${v.by} (${JSON.stringify(v.comment)})` : v.by)).join(", ");
  const expires = d.expiresAt ? `, expires at ${d.expiresAt.toISOString()}` : "";
  switch (status) {
    case DecisionStatus.DECISION_STATUS_APPROVED:
      return approvals.length === 0 ? `auto-approved by the council: ${d.finalReasoning}` : `approved by ${people(approvals)} (${tally})`;
    case DecisionStatus.DECISION_STATUS_REJECTED: {
      const rejections = d.verdicts.filter((v) => v.verdict === VerdictType.VERDICT_TYPE_REJECT);
      if (rejections.length === 0) return `rejected by the council: ${d.finalReasoning}`;
      return `rejected by ${rejections.map((v) => `${v.by}: ${JSON.stringify(v.comment)}`).join("; ")}`;
    }
    case DecisionStatus.DECISION_STATUS_EXPIRED:
      return `expired at ${d.expiresAt?.toISOString() ?? "its deadline"} with ${tally}`;
    case DecisionStatus.DECISION_STATUS_SUPERSEDED:
      return `superseded by ${d.supersededBy || "a later review"}`;
    default:
      return `timed out after ${waitedMs ?? 0} ms: decision ${d.id} (${DecisionType[d.decision]}) is still pending (${tally}${expires})`;
  }
}
