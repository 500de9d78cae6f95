/**
 * The lifecycle of a decision with people (SPEC section 9), as pure functions: where a decision
 * starts, how a verdict moves it, when it expires, and which pending decision a review may
 * supersede. Stores never judge any of this: the app runs these rules on a decision read with its
 * revision and asks the store to write the result only if nothing changed in between, so the rules
 * are written once (not again in Lua).
 */
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from "./errors.js";
import type { Decision, DecisionStatus, DecisionType, Verdict, VerdictType } from "./model.js";
import { ANONYMOUS_NAME } from "./principal.js";

/** One decision type's settings in a policy's `verdicts` section. */
export interface VerdictRule {
  /** How many distinct principals must approve. */
  approvals: number;
  /** How long the decision waits for them: a duration such as `500ms`, `30s`, `15m` or `24h` (canonical form, see formatDuration). */
  expires_after: string;
}

/** A policy's `verdicts` section: the decision types that wait for people. */
export interface VerdictsSection {
  human_approve: VerdictRule;
  defer: VerdictRule;
  escalate: VerdictRule;
}

/** The decision types that wait for people, in the order a policy file lists them. */
export const WAITING_TYPES = ["human_approve", "defer", "escalate"] as const satisfies readonly DecisionType[];

/** SPEC section 9's defaults. */
export const DEFAULT_VERDICTS: VerdictsSection = {
  human_approve: { approvals: 1, expires_after: "24h" },
  defer: { approvals: 1, expires_after: "24h" },
  escalate: { approvals: 2, expires_after: "72h" },
};

/** The lifecycle fields of a decision (everything a verdict, an expiry or a supersede may change, and what they start from). */
export interface Lifecycle {
  status: DecisionStatus;
  verdicts: Verdict[];
  approvalsRequired: number;
  expiresAt: Date | undefined;
  supersededBy: string;
}

/** A change that a store writes by compare-and-set (store.ts LifecycleChange). */
export interface LifecycleChange {
  status: DecisionStatus;
  verdicts: Verdict[];
  supersededBy: string;
}

const UNITS: ReadonlyArray<readonly [string, number]> = [
  ["h", 3_600_000],
  ["m", 60_000],
  ["s", 1_000],
  ["ms", 1],
];

/** The shortest a policy may let a decision wait: expiry is swept every few hundred milliseconds. */
export const MIN_EXPIRY_MS = 100;
/** The longest: a year and a day, far inside what a Date holds. */
export const MAX_EXPIRY_MS = 366 * 24 * 3_600_000;

/** Milliseconds of a duration like `500ms`, `30s`, `15m` or `24h`, or undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,12})(ms|s|m|h)$/.exec(text.trim());
  if (!match) return undefined;
  const unit = UNITS.find(([u]) => u === match[2])!;
  return Number(match[1]) * unit[1];
}

/**
 * The canonical text of a duration: the largest unit that divides it exactly (`1440m` is `24h`,
 * `90s` stays `90s`), so that two spellings of one policy have one version.
 */
export function formatDuration(ms: number): string {
  for (const [unit, size] of UNITS) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A waiting type's rule, or undefined for the types that are final at once (auto_approve, reject). */
export function verdictRule(section: VerdictsSection, type: DecisionType): VerdictRule | undefined {
  return type === "human_approve" || type === "defer" || type === "escalate" ? section[type] : undefined;
}

/** The status a council decision starts in: auto_approve is approved, reject is rejected, the rest wait. */
export function initialStatus(type: DecisionType): DecisionStatus {
  return type === "auto_approve" ? "approved" : type === "reject" ? "rejected" : "pending";
}

/** The lifecycle of a decision made now (a dry run shows the same). */
export function initialLifecycle(section: VerdictsSection, type: DecisionType, decidedAt: Date): Lifecycle {
  const rule = verdictRule(section, type);
  if (!rule) return { status: initialStatus(type), verdicts: [], approvalsRequired: 0, expiresAt: undefined, supersededBy: "" };
  const ms = parseDuration(rule.expires_after);
  if (ms === undefined) throw new Error(`policy verdicts.${type}.expires_after ${JSON.stringify(rule.expires_after)} is not a duration`);
  return {
    status: "pending",
    verdicts: [],
    approvalsRequired: rule.approvals,
    expiresAt: new Date(decidedAt.getTime() + ms),
    supersededBy: "",
  };
}

/**
 * How a decision stored before section 9 (no status) reads: as if decided now with no expiry
 * (SPEC section 9): auto_approve approved, reject rejected, the rest pending with the current
 * policy's approvals for its type.
 */
export function legacyLifecycle(type: DecisionType, section: VerdictsSection): Lifecycle {
  const rule = verdictRule(section, type);
  return {
    status: initialStatus(type),
    verdicts: [],
    approvalsRequired: rule?.approvals ?? 0,
    expiresAt: undefined,
    supersededBy: "",
  };
}

/** Whether a decision is pending and its expiry has passed at `now`. */
export function isDue(decision: Pick<Decision, "status" | "expiresAt">, now: Date): boolean {
  return decision.status === "pending" && decision.expiresAt !== undefined && decision.expiresAt.getTime() <= now.getTime();
}

/** The status a decision reads as at `now`: a pending one past its expiry reads expired. */
export function effectiveStatus(decision: Pick<Decision, "status" | "expiresAt">, now: Date): DecisionStatus {
  return isDue(decision, now) ? "expired" : decision.status;
}

/** The decision as it reads at `now` (see effectiveStatus); the same object when nothing changes. */
export function asOf(decision: Decision, now: Date): Decision {
  return isDue(decision, now) ? { ...decision, status: "expired" } : decision;
}

/** The status as SPEC section 9 and the proto name it, for messages: `PENDING`, `EXPIRED`, … */
export function statusName(status: DecisionStatus): string {
  return status.toUpperCase();
}

export interface VerdictInput {
  /** The principal giving it. */
  by: string;
  verdict: VerdictType | undefined;
  comment: string;
  /** Scoped to `by` and the decision; "" for none. */
  requestId: string;
  /** The replica's clock: the verdict's `givenAt`. */
  at: Date;
}

/** Checks what can be checked without the decision: INVALID_ARGUMENT naming the field. */
export function checkVerdictInput(input: Pick<VerdictInput, "verdict" | "comment">): asserts input is { verdict: VerdictType; comment: string } {
  if (input.verdict === undefined) throw new InvalidArgumentError("verdict", "must be set (approve or reject)");
  if (input.verdict === "reject" && input.comment.trim() === "") {
    throw new InvalidArgumentError("comment", "must say why: a rejection needs a comment");
  }
}

/** What a verdict does to a decision. */
export type VerdictEffect =
  /** This principal already gave this verdict: the decision is returned as it is. */
  | { kind: "unchanged" }
  /** Write this change (by compare-and-set). */
  | { kind: "change"; change: LifecycleChange };

/**
 * Applies a verdict to a decision read at `now`, in SPEC section 9's order: a verdict this
 * principal already gave (the same verdict: unchanged, whatever the status now; the other one, or
 * its request_id reused for a different verdict: FAILED_PRECONDITION), then self-approval
 * (PERMISSION_DENIED; `anonymous` may), then the status (anything but pending, a pending decision
 * past its expiry included: FAILED_PRECONDITION naming the status). One rejection rejects;
 * approvals from `approvalsRequired` distinct principals approve.
 */
export function applyVerdict(decision: Decision, input: VerdictInput, now: Date): VerdictEffect {
  checkVerdictInput(input);
  const earlier = decision.verdicts.find((v) => v.by === input.by);
  if (earlier) {
    if (input.requestId !== "" && earlier.requestId === input.requestId && (earlier.verdict !== input.verdict || earlier.comment !== input.comment)) {
      throw new FailedPreconditionError(
        `request_id ${JSON.stringify(input.requestId)} was already used for a different verdict on ${decision.id}; use a new request_id`,
      );
    }
    if (earlier.verdict === input.verdict) return { kind: "unchanged" };
    throw new FailedPreconditionError(
      `${JSON.stringify(input.by)} already gave the verdict ${earlier.verdict.toUpperCase()} on ${decision.id}; a verdict cannot be changed`,
    );
  }
  if (decision.submittedBy === input.by && input.by !== ANONYMOUS_NAME) {
    throw new PermissionDeniedError(
      `${JSON.stringify(input.by)} submitted ${decision.id} and may not give a verdict on it (no self-approval)`,
    );
  }
  const status = effectiveStatus(decision, now);
  if (status !== "pending") {
    throw new FailedPreconditionError(`decision ${decision.id} is ${statusName(status)}; verdicts are taken only while it is PENDING`);
  }
  const verdict: Verdict = { by: input.by, verdict: input.verdict, comment: input.comment, givenAt: input.at, requestId: input.requestId };
  const verdicts = [...decision.verdicts, verdict];
  return { kind: "change", change: { status: statusAfter(verdicts, decision.approvalsRequired), verdicts, supersededBy: decision.supersededBy } };
}

/** The status that a pending decision's verdicts make: one rejection rejects, enough distinct approvers approve. */
export function statusAfter(verdicts: readonly Verdict[], approvalsRequired: number): DecisionStatus {
  if (verdicts.some((v) => v.verdict === "reject")) return "rejected";
  const approvers = new Set(verdicts.filter((v) => v.verdict === "approve").map((v) => v.by));
  return approvers.size >= Math.max(1, approvalsRequired) ? "approved" : "pending";
}

/**
 * Checks that a review by `submittedBy` may supersede `old` (read at `now`): it must exist, be
 * pending and have been submitted by the same principal; anything else is FAILED_PRECONDITION.
 */
export function checkSupersede(oldId: string, old: Decision | undefined, submittedBy: string, now: Date): void {
  if (!old) throw new FailedPreconditionError(`supersedes: decision ${JSON.stringify(oldId)} does not exist`);
  if (old.submittedBy !== submittedBy) {
    throw new FailedPreconditionError(
      `supersedes: decision ${oldId} was submitted by ${JSON.stringify(old.submittedBy)}; a review may supersede only its submitter's own decisions`,
    );
  }
  const status = effectiveStatus(old, now);
  if (status !== "pending") {
    throw new FailedPreconditionError(`supersedes: decision ${oldId} is ${statusName(status)}; only a PENDING decision can be superseded`);
  }
}

/** The change that marks `old` superseded by `byId`. */
export function supersedeChange(old: Decision, byId: string): LifecycleChange {
  return { status: "superseded", verdicts: old.verdicts, supersededBy: byId };
}
