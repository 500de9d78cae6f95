/**
 * External reviewers' votes (SPEC section 11): how a vote sent over ServeReviews is checked, how it
 * becomes a council vote, and the vote a role's failure policy casts when no valid one arrives.
 * Pure functions: the caller supplies the clock.
 */
import { LIMITS, utf8Bytes } from "./limits.js";
import { VOTE_TYPES, type ExternalSettings, type ReviewerRole, type Suggestion, type Vote, type VoteType } from "./model.js";
import type { Policy, ReviewerRules } from "./policy.js";
import { castVote } from "./rules.js";

/** A reviewer agent's vote on a task, as it arrives (the vote type undefined when the wire value is unknown). */
export interface TaskVoteInput {
  vote: VoteType | undefined;
  reasoning: string;
  concerns: string[];
  conditions: string[];
  confidence: number;
  veto: string;
}

/** A vote that passed `checkTaskVote`. */
export interface ExternalVote extends TaskVoteInput {
  vote: VoteType;
}

/** The veto condition the `reject` failure policy casts. */
export const NO_EXTERNAL_VOTE = "no_external_vote";

/** Why no external vote counted; the fallback vote's reasoning says it. */
export type FailureCause = "timed out" | "no reviewer connected" | "reviewer disconnected" | `invalid vote: ${string}`;

/** The metric label of a failure cause (the invalid vote's detail left out). */
export function causeLabel(why: FailureCause): string {
  return why.startsWith("invalid vote") ? "invalid_vote" : why.replaceAll(" ", "_");
}

function checkText(field: string, value: string, maxBytes: number): string | undefined {
  const size = utf8Bytes(value);
  return size > maxBytes ? `${field} is ${size} bytes; the limit is ${maxBytes}` : undefined;
}

function checkItems(field: string, values: string[]): string | undefined {
  if (values.length > LIMITS.voteItems) return `${field} has ${values.length} items; the limit is ${LIMITS.voteItems}`;
  for (const [i, v] of values.entries()) {
    const problem = checkText(`${field}[${i}]`, v, LIMITS.voteItemBytes);
    if (problem) return problem;
  }
  return undefined;
}

/** The vote if it is valid, else what is wrong with it (the fallback vote's reasoning names it). */
export function checkTaskVote(input: TaskVoteInput): ExternalVote | { invalid: string } {
  if (input.vote === undefined || !VOTE_TYPES.includes(input.vote)) return { invalid: "vote must be APPROVE, REJECT, ABSTAIN or NEEDS_MORE_INFO" };
  if (!(input.confidence >= 0 && input.confidence <= 1)) return { invalid: `confidence ${input.confidence} is outside [0, 1]` };
  if (input.veto !== "") {
    if (input.vote !== "reject") return { invalid: "a veto may only come with a REJECT" };
    if (!/^[a-z0-9_]+$/.test(input.veto) || input.veto.length > LIMITS.vetoChars) {
      return { invalid: `veto must be 1-${LIMITS.vetoChars} characters of a-z, 0-9 and _` };
    }
  }
  const problem =
    checkText("reasoning", input.reasoning, LIMITS.voteReasoningBytes) ??
    checkItems("concerns", input.concerns) ??
    checkItems("conditions", input.conditions);
  return problem ? { invalid: problem } : { ...input, vote: input.vote };
}

/** A valid external vote as the council records it. */
export function externalVote(role: ReviewerRole, v: ExternalVote, castBy: string, castAt: Date): Vote {
  return {
    reviewerRole: role,
    vote: v.vote,
    reasoning: v.reasoning,
    concerns: v.concerns,
    conditions: v.conditions,
    confidence: v.confidence,
    castAt,
    veto: v.veto,
    castBy,
  };
}

/**
 * The vote `settings.onFailure` casts for `reviewer` when no valid external vote counts: the
 * built-in rules' vote (`rules`), or an abstention, a request for more information or a vetoing
 * rejection with confidence 0 and the reasoning `[ROLE] No external vote: <why>`.
 */
export function fallbackVote(
  policy: Policy,
  reviewer: ReviewerRules,
  settings: ExternalSettings,
  suggestion: Suggestion,
  why: FailureCause,
  castAt: Date,
): Vote {
  const castBy = `fallback:${settings.onFailure}`;
  if (settings.onFailure === "rules") return { ...castVote(policy, reviewer, suggestion, castAt), castBy };
  return {
    reviewerRole: reviewer.role,
    vote: settings.onFailure,
    reasoning: `[${reviewer.role.toUpperCase()}] No external vote: ${why}`,
    concerns: [],
    conditions: [],
    confidence: 0,
    castAt,
    veto: settings.onFailure === "reject" ? NO_EXTERNAL_VOTE : "",
    castBy,
  };
}
