/**
 * The review rules (SPEC section 3), driven by a policy: how one reviewer votes on a suggestion,
 * and how the votes become a decision. Pure functions: the caller supplies the clock.
 */
import { CAST_BY_RULES, type DecisionType, type Suggestion, type Vote, type VoteType } from "./model.js";
import type { Check, Policy, Predicate, ReviewerRules } from "./policy.js";

/** What the council concludes from a set of votes, before ids and timestamps are attached. */
export interface Conclusion {
  decision: DecisionType;
  finalReasoning: string;
  conditions: string[];
  requiresManualOversight: boolean;
  autoFixApproved: boolean;
}

/**
 * The lower-cased form of each policy word and the words of each veto condition, worked out once:
 * they come from the policy (a bounded set), and every review asks for them five times over.
 */
const lowered = new Map<string, string>();
const vetoWords = new Map<string, string[]>();

/** Case-insensitive substring test, as the seed module does it (Unicode-aware lower-casing). */
function contains(haystackLower: string, needle: string): boolean {
  let lower = lowered.get(needle);
  if (lower === undefined) lowered.set(needle, (lower = needle.toLowerCase()));
  return haystackLower.includes(lower);
}

function wordsOf(condition: string): string[] {
  let words = vetoWords.get(condition);
  if (words === undefined) vetoWords.set(condition, (words = condition.split("_").filter((w) => w !== "")));
  return words;
}

interface Texts {
  short: string;
  full: string;
}

/** Each suggestion's texts, lower-cased once for all its reviewers (suggestions are never changed). */
const textsOf = new WeakMap<Suggestion, Texts>();

function texts(s: Suggestion): Texts {
  let t = textsOf.get(s);
  if (t === undefined) {
    t = { short: `${s.title} ${s.description}`.toLowerCase(), full: `${s.title} ${s.description} ${s.reasoning}`.toLowerCase() };
    textsOf.set(s, t);
  }
  return t;
}

function holds(p: Predicate, s: Suggestion, t: Texts): boolean {
  if (p.short_contains_any && !p.short_contains_any.some((w) => contains(t.short, w))) return false;
  if (p.full_contains_any && !p.full_contains_any.some((w) => contains(t.full, w))) return false;
  if (p.risk_in && !p.risk_in.includes(s.risk)) return false;
  if (p.impact_in && !p.impact_in.includes(s.impact)) return false;
  if (p.effort_in && (s.estimatedEffort === undefined || !p.effort_in.includes(s.estimatedEffort))) return false;
  if (p.auto_fixable !== undefined && p.auto_fixable !== s.autoFixable) return false;
  if (p.files_affected_more_than !== undefined && !(s.filesAffected.length > p.files_affected_more_than)) return false;
  if (p.fix_steps_fewer_than !== undefined && !(s.fixSteps.length < p.fix_steps_fewer_than)) return false;
  return true;
}

function fill(template: string, s: Suggestion): string {
  return template.replace(/\{([a-z_]+)\}/g, (_, key: string) => {
    switch (key) {
      case "risk":
        return s.risk;
      case "impact":
        return s.impact;
      case "effort":
        return s.estimatedEffort ?? "unspecified";
      case "title":
        return s.title;
      case "files_affected":
        return String(s.filesAffected.length);
      case "fix_steps":
        return String(s.fixSteps.length);
      default:
        return `{${key}}`;
    }
  });
}

/** The first of the reviewer's veto conditions whose every word appears in the full text. */
export function firedVeto(reviewer: ReviewerRules, s: Suggestion, t: Texts = texts(s)): string | undefined {
  return reviewer.veto_conditions.find((condition) => wordsOf(condition).every((w) => contains(t.full, w)));
}

function reasoningFor(role: string, vote: VoteType, s: Suggestion, concerns: string[]): string {
  const tag = `[${role.toUpperCase()}]`;
  switch (vote) {
    case "approve":
      return `${tag} Approved: ${s.title}. Risk level (${s.risk}) is acceptable.`;
    case "needs_more_info":
      return `${tag} Needs review: ${s.title}. Additional information required.`;
    case "reject":
      return `${tag} Rejected: ${s.title}. Concerns: ${concerns.length ? concerns.join("; ") : "See details"}`;
    case "abstain":
      return `${tag} Abstained: Outside expertise area.`;
  }
}

/** One reviewer's vote on a suggestion under a policy. */
export function castVote(policy: Policy, reviewer: ReviewerRules, s: Suggestion, castAt: Date): Vote {
  const t = texts(s);
  const veto = firedVeto(reviewer, s, t);
  if (veto !== undefined) {
    return {
      reviewerRole: reviewer.role,
      vote: "reject",
      reasoning: `Veto condition triggered: ${veto}`,
      concerns: [veto],
      conditions: [],
      confidence: policy.veto_confidence,
      castAt,
      veto,
      castBy: CAST_BY_RULES,
    };
  }
  const concerns: string[] = [];
  const conditions: string[] = [];
  let verdict = reviewer.otherwise;
  for (const check of reviewer.checks as Check[]) {
    if (!holds(check.if, s, t)) continue;
    if (check.concern !== undefined) concerns.push(fill(check.concern, s));
    if (check.condition !== undefined) conditions.push(fill(check.condition, s));
    if (check.verdict) {
      verdict = check.verdict;
      break;
    }
  }
  let vote = verdict.vote;
  const cautious = policy.cautious_review;
  if (cautious.risk_in.includes(s.risk) && reviewer.risk_tolerance < cautious.tolerance_below && vote === "approve") {
    vote = "needs_more_info";
    concerns.push(fill(cautious.concern, s));
  }
  return {
    reviewerRole: reviewer.role,
    vote,
    reasoning: reasoningFor(reviewer.role, vote, s, concerns),
    concerns,
    conditions,
    confidence: verdict.confidence,
    castAt,
    veto: "",
    castBy: CAST_BY_RULES,
  };
}

/** The decision rules (SPEC section 3, with the policy's section-4 fixes) applied to the votes. */
export function conclude(policy: Policy, s: Suggestion, votes: readonly Vote[]): Conclusion {
  const rules = policy.decision;
  const count = (type: VoteType) => votes.filter((v) => v.vote === type).length;
  const approvals = count("approve");
  const rejections = count("reject");
  const needsInfo = count("needs_more_info");
  const concerns = votes.flatMap((v) => v.concerns);
  const conditions = [...new Set(votes.flatMap((v) => v.conditions))];
  const vetoes = votes.filter((v) => v.veto !== "");

  const verdict = (decision: DecisionType, finalReasoning: string): Conclusion => ({
    decision,
    finalReasoning,
    conditions,
    requiresManualOversight: decision !== "auto_approve",
    autoFixApproved: decision === "auto_approve",
  });

  if (rules.veto_rejects && vetoes.length > 0) {
    return verdict("reject", vetoes.map((v) => `Vetoed by ${v.reviewerRole}: ${v.veto}`).join("; "));
  }
  if (rejections >= rules.reject_min) {
    return verdict("reject", `Rejected by ${rejections} reviewers. Concerns: ${concerns.slice(0, 3).join("; ")}`);
  }
  if (needsInfo >= rules.defer_min) {
    return verdict("defer", `Deferred - ${needsInfo} reviewers need more information.`);
  }
  const auto = rules.auto_approve;
  if (
    approvals >= auto.min_approvals &&
    (!auto.requires_auto_fixable || s.autoFixable) &&
    auto.risk_in.includes(s.risk) &&
    (!auto.requires_no_needs_more_info || needsInfo === 0)
  ) {
    return verdict("auto_approve", `Auto-approved by council (${approvals}/${votes.length} votes). Low risk, auto-fixable.`);
  }
  if (approvals >= rules.human_approve_min) {
    return verdict("human_approve", `Approved for human implementation (${approvals}/${votes.length} votes).`);
  }
  return verdict(
    "escalate",
    `No consensus reached. Votes: ${approvals} approve, ${rejections} reject, ${needsInfo} need info.`,
  );
}
