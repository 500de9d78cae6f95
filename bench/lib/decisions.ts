/**
 * Realistic decisions for the history bench, made by the real domain exactly as Council makes a
 * review (src/app/council.ts runReview): every reviewer of the default policy votes (castVote), the
 * votes are concluded (conclude), and the decision starts its lifecycle (initialLifecycle). The
 * suggestions vary (risk, impact, effort, auto-fixable, words that trip checks and vetoes), so the
 * stored decisions spread over every decision type and status, and listings filtered by type or by
 * status have real work to do. Each decision has its own suggestion id and request id.
 */
import { randomUUID } from "node:crypto";
import { decisionIdForRequest, suggestionFingerprint } from "../../src/domain/identity.js";
import { initialLifecycle } from "../../src/domain/lifecycle.js";
import type { Decision, DecisionType, Effort, ImpactLevel, RiskLevel, Suggestion, Vote } from "../../src/domain/model.js";
import { PRESETS } from "../../src/domain/presets.js";
import { ANONYMOUS_NAME } from "../../src/domain/principal.js";
import { castVote, conclude } from "../../src/domain/rules.js";

const policy = PRESETS.default;

/** Titles and descriptions of the kind agents send; some words trip reviewers' checks or vetoes. */
const TOPICS: readonly [title: string, description: string][] = [
  ["Tidy the retry helper", "Replace the hand-rolled loop with the shared helper."],
  ["Raise the HTTP client timeout", "Requests to the billing API time out under load; raise the timeout to 30 s."],
  ["Rotate the access token cache", "Refresh the auth token cache every hour instead of every day."],
  ["Add an index on orders.customer_id", "The customer page scans the orders table; an index makes it a lookup."],
  ["Split the god class ReportService", "ReportService has grown to 4,000 lines; split it by report kind."],
  ["Update the audit policy for tier changes", "Tier promotion and revocation must be logged with the approver."],
  ["Remove the legacy password check", "The old password check removes security check paths no longer used."],
  ["Cache the rendered templates", "Templates are parsed on every request; parse them once at start-up."],
  ["Inline the config loader", "The loader is called from one place; inline it to remove an abstraction."],
  ["Batch the notification writes", "Write notifications in batches of 100 to cut round trips."],
  ["Drop the unused feature flag", "The flag has been on for every customer for six months."],
  ["Upgrade the JSON parser", "The new version fixes a quadratic case on deeply nested input."],
];

const RISKS: readonly RiskLevel[] = ["trivial", "low", "low", "medium", "medium", "high", "critical"];
const IMPACTS: readonly ImpactLevel[] = ["minimal", "low", "medium", "high", "transformative"];
const EFFORTS: readonly Effort[] = ["small", "medium", "large", "epic"];

/** A varied suggestion: `n` picks the mix (so a run is reproducible apart from the ids). */
export function variedSuggestion(n: number): Suggestion {
  const [title, description] = TOPICS[n % TOPICS.length]!;
  const files = 1 + ((n >> 3) % 6);
  return {
    id: `sug-${randomUUID()}`,
    diff: "",
    title,
    description,
    reasoning: "Seen in production traces last week; the change is small and covered by tests.",
    risk: RISKS[(n >> 2) % RISKS.length]!,
    impact: IMPACTS[(n >> 1) % IMPACTS.length]!,
    autoFixable: n % 3 !== 0,
    fixSteps: ["Apply the patch", "Run the unit tests", "Deploy to staging"].slice(0, 1 + (n % 3)),
    filesAffected: Array.from({ length: files }, (_, i) => `src/module_${(n + i) % 17}/file_${i}.ts`),
    estimatedEffort: EFFORTS[(n >> 4) % EFFORTS.length]!,
  };
}

/** The votes and conclusion of the default policy for a suggestion, at `at`. */
function judge(s: Suggestion, at: Date): { votes: Vote[]; concluded: ReturnType<typeof conclude> } {
  const votes = policy.reviewers.map((r) => castVote(policy, r, s, at));
  return { votes, concluded: conclude(policy, s, votes) };
}

/** A decision as Council stores it for review number `n`, with its suggestion fingerprint. */
export function benchDecision(n: number, at = new Date()): { decision: Decision; fingerprint: string } {
  const suggestion = variedSuggestion(n);
  const { votes, concluded } = judge(suggestion, at);
  const requestId = `bench-${randomUUID()}`;
  const decision: Decision = {
    id: decisionIdForRequest(ANONYMOUS_NAME, requestId),
    suggestionId: suggestion.id,
    ...concluded,
    votes,
    decidedAt: at,
    implementedAt: undefined,
    outcome: undefined,
    outcomeNotes: "",
    lessonsLearned: "",
    policyVersion: policy.version,
    suggestion,
    requestId,
    submittedBy: ANONYMOUS_NAME,
    outcomeRecordedBy: "",
    ...initialLifecycle(policy.verdicts, concluded.decision, at),
    supersedes: "",
  };
  return { decision, fingerprint: suggestionFingerprint(suggestion) };
}

/** The first `n` (by variedSuggestion's mix) whose decision under the default policy is of `type`. */
export function mixIndexesOf(type: DecisionType, limit = 1000): number[] {
  const found: number[] = [];
  for (let n = 0; n < limit; n++) if (judge(variedSuggestion(n), new Date()).concluded.decision === type) found.push(n);
  return found;
}

/** How the first `count` decisions of the mix spread over the decision types. */
export function mixTypes(count: number): Record<string, number> {
  const by: Record<string, number> = {};
  for (let n = 0; n < count; n++) {
    const t = judge(variedSuggestion(n), new Date()).concluded.decision;
    by[t] = (by[t] ?? 0) + 1;
  }
  return by;
}
