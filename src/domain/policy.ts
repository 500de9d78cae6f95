/**
 * A policy is the council's rules as data: the reviewers, what each one checks, and how votes
 * become a decision. `parsePolicy` validates a policy document (the JSON/YAML shape, snake_case)
 * and names the first problem it finds by its path, e.g. `reviewers[1].checks[0].if.risk_in[0]`.
 */
import { createHash } from "node:crypto";
import { parse as parseYaml } from "yaml";
import {
  EFFORTS,
  FAILURE_POLICIES,
  IMPACT_LEVELS,
  REVIEWER_ROLES,
  RISK_LEVELS,
  VOTE_TYPES,
  type Effort,
  type ExternalSettings,
  type FailurePolicy,
  type ImpactLevel,
  type ReviewerProfile,
  type ReviewerRole,
  type RiskLevel,
  type VoteType,
} from "./model.js";
import {
  DEFAULT_VERDICTS,
  formatDuration,
  MAX_EXPIRY_MS,
  MIN_EXPIRY_MS,
  parseDuration,
  WAITING_TYPES,
  type VerdictRule,
  type VerdictsSection,
} from "./lifecycle.js";
import { DocumentReader } from "./document_reader.js";

/** A condition on a suggestion; every predicate given must hold (an empty one always holds). */
export interface Predicate {
  /** `title + " " + description` contains one of these, ignoring case. */
  short_contains_any?: string[];
  /** `title + " " + description + " " + reasoning` contains one of these, ignoring case. */
  full_contains_any?: string[];
  risk_in?: RiskLevel[];
  impact_in?: ImpactLevel[];
  effort_in?: Effort[];
  auto_fixable?: boolean;
  files_affected_more_than?: number;
  fix_steps_fewer_than?: number;
}

export interface Verdict {
  vote: VoteType;
  confidence: number;
}

/**
 * One step of a reviewer's evaluation. When `if` holds, `concern` and `condition` are appended
 * (placeholders such as `{risk}` filled in) and, if a `verdict` is given, the evaluation stops there.
 */
export interface Check {
  if: Predicate;
  concern?: string;
  condition?: string;
  verdict?: Verdict;
}

export interface ReviewerRules {
  role: ReviewerRole;
  risk_tolerance: number;
  expertise_areas: string[];
  priority_focus: string[];
  veto_conditions: string[];
  checks: Check[];
  /** The verdict when no check gave one. */
  otherwise: Verdict;
  /**
   * Set when reviewer agents cast this role's vote over ServeReviews (SPEC section 11); the rules
   * above then give only the vote of the failure policy `rules`.
   */
  external?: { timeout: string; on_failure: FailurePolicy };
}

/** How long a review may wait for an external vote, at least and at most. */
export const MIN_EXTERNAL_TIMEOUT_MS = 10;
export const MAX_EXTERNAL_TIMEOUT_MS = 60_000;
export const DEFAULT_EXTERNAL = { timeout: "5s", on_failure: "needs_more_info" } as const;

/** After the checks (never after a veto): cautious reviewers turn an approval of a risky change into a request for more information. */
export interface CautiousReview {
  risk_in: RiskLevel[];
  tolerance_below: number;
  concern: string;
}

export interface DecisionRules {
  /** Rule 0 of the `default` policy: any veto rejects. */
  veto_rejects: boolean;
  reject_min: number;
  defer_min: number;
  auto_approve: {
    min_approvals: number;
    risk_in: RiskLevel[];
    requires_auto_fixable: boolean;
    /** The `default` policy's second fix: no reviewer may have asked for more information. */
    requires_no_needs_more_info: boolean;
  };
  human_approve_min: number;
}

export interface PolicyDocument {
  reviewers: ReviewerRules[];
  veto_confidence: number;
  cautious_review: CautiousReview;
  decision: DecisionRules;
  /**
   * What the decisions that wait for people need (SPEC section 9): approvals and expiry per
   * waiting decision type. Part of the canonical document, so part of the version.
   */
  verdicts: VerdictsSection;
}

export interface Policy extends PolicyDocument {
  name: string;
  /** `<name>@<first 12 hex digits of the sha256 of the canonical document>`. */
  version: string;
}

/** The placeholders a concern or condition may use. */
export const PLACEHOLDERS = ["risk", "impact", "effort", "title", "files_affected", "fix_steps"] as const;

export class PolicyError extends Error {
  override name = "PolicyError";
}

type Json = unknown;

/** Reads a policy document; every refusal is a PolicyError naming the path of the problem. */
const policyReader = () => new DocumentReader("", (message) => new PolicyError(message), "policy");

/** A concern or condition template: a non-empty string whose placeholders are all known. */
function readTemplate(r: DocumentReader, value: Json): string {
  const text = r.string(value, { nonEmpty: true });
  for (const match of text.matchAll(/\{([^{}]*)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(match[1]!)) {
      r.fail(`unknown placeholder {${match[1]}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")})`);
    }
  }
  return text;
}

function words(r: DocumentReader, v: Json): string[] {
  return r.list(v, (ri, w) => ri.string(w, { nonEmpty: true }));
}

function readPredicate(r: DocumentReader, value: Json): Predicate {
  const o = r.object(value, [
    "short_contains_any",
    "full_contains_any",
    "risk_in",
    "impact_in",
    "effort_in",
    "auto_fixable",
    "files_affected_more_than",
    "fix_steps_fewer_than",
  ]);
  const p: Predicate = {};
  if (o.short_contains_any !== undefined) p.short_contains_any = words(r.at("short_contains_any"), o.short_contains_any);
  if (o.full_contains_any !== undefined) p.full_contains_any = words(r.at("full_contains_any"), o.full_contains_any);
  if (o.risk_in !== undefined) p.risk_in = r.at("risk_in").list(o.risk_in, (ri, v) => ri.oneOf(v, RISK_LEVELS));
  if (o.impact_in !== undefined) p.impact_in = r.at("impact_in").list(o.impact_in, (ri, v) => ri.oneOf(v, IMPACT_LEVELS));
  if (o.effort_in !== undefined) p.effort_in = r.at("effort_in").list(o.effort_in, (ri, v) => ri.oneOf(v, EFFORTS));
  if (o.auto_fixable !== undefined) p.auto_fixable = r.at("auto_fixable").boolean(o.auto_fixable);
  if (o.files_affected_more_than !== undefined) {
    p.files_affected_more_than = r.at("files_affected_more_than").integer(o.files_affected_more_than, 0, 1_000_000);
  }
  if (o.fix_steps_fewer_than !== undefined) {
    p.fix_steps_fewer_than = r.at("fix_steps_fewer_than").integer(o.fix_steps_fewer_than, 0, 1_000_000);
  }
  return p;
}

function readVerdict(r: DocumentReader, value: Json): Verdict {
  const o = r.object(value, ["vote", "confidence"]);
  return { vote: r.at("vote").oneOf(o.vote, VOTE_TYPES), confidence: r.at("confidence").number(o.confidence, 0, 1) };
}

function readCheck(r: DocumentReader, value: Json): Check {
  const o = r.object(value, ["if", "concern", "condition", "verdict"]);
  const check: Check = { if: o.if === undefined ? {} : readPredicate(r.at("if"), o.if) };
  if (o.concern !== undefined) check.concern = readTemplate(r.at("concern"), o.concern);
  if (o.condition !== undefined) check.condition = readTemplate(r.at("condition"), o.condition);
  if (o.verdict !== undefined) check.verdict = readVerdict(r.at("verdict"), o.verdict);
  return check;
}

/** A reviewer's rules: every field left out takes the value of `base`'s reviewer of the same role. */
function readReviewer(r: DocumentReader, value: Json, base: PolicyDocument | undefined): ReviewerRules {
  const o = r.object(value, [
    "role",
    "risk_tolerance",
    "expertise_areas",
    "priority_focus",
    "veto_conditions",
    "checks",
    "otherwise",
    "external",
  ]);
  const role = r.at("role").oneOf(o.role, REVIEWER_ROLES);
  const b = base?.reviewers.find((rev) => rev.role === role);
  const rules: ReviewerRules = {
    role,
    risk_tolerance: r.at("risk_tolerance").number(o.risk_tolerance ?? b?.risk_tolerance, 0, 1),
    expertise_areas: words(r.at("expertise_areas"), o.expertise_areas ?? b?.expertise_areas ?? []),
    priority_focus: words(r.at("priority_focus"), o.priority_focus ?? b?.priority_focus ?? []),
    veto_conditions: r.at("veto_conditions").list(o.veto_conditions ?? b?.veto_conditions ?? [], (ri, v) => {
      const condition = ri.string(v, { nonEmpty: true });
      if (!/^[^\s_]+(_[^\s_]+)*$/.test(condition)) ri.fail("must be words joined by single underscores");
      return condition;
    }),
    checks: r.at("checks").list(o.checks ?? b?.checks ?? [], readCheck),
    otherwise: readVerdict(r.at("otherwise"), o.otherwise ?? b?.otherwise ?? { vote: "approve", confidence: 0.8 }),
  };
  if (o.external !== undefined) rules.external = readExternal(r.at("external"), o.external);
  return rules;
}

/** `external: { timeout, on_failure }` (both optional; `external: {}` takes the defaults). */
function readExternal(r: DocumentReader, value: Json): NonNullable<ReviewerRules["external"]> {
  const o = r.object(value ?? {}, ["timeout", "on_failure"]);
  const t = r.at("timeout");
  const text = t.string(o.timeout ?? DEFAULT_EXTERNAL.timeout, { nonEmpty: true });
  const ms = parseDuration(text) ?? t.fail(`${JSON.stringify(text)} is not a duration (a whole number and ms, s or m, e.g. 500ms, 5s)`);
  if (ms < MIN_EXTERNAL_TIMEOUT_MS || ms > MAX_EXTERNAL_TIMEOUT_MS) {
    t.fail(`must be between ${formatDuration(MIN_EXTERNAL_TIMEOUT_MS)} and ${formatDuration(MAX_EXTERNAL_TIMEOUT_MS)}`);
  }
  return { timeout: formatDuration(ms), on_failure: r.at("on_failure").oneOf(o.on_failure ?? DEFAULT_EXTERNAL.on_failure, FAILURE_POLICIES) };
}

/** A reviewer's external settings in the units the council works in, or undefined for a built-in reviewer. */
export function externalSettings(reviewer: ReviewerRules): ExternalSettings | undefined {
  const e = reviewer.external;
  return e && { timeoutMs: parseDuration(e.timeout)!, onFailure: e.on_failure };
}

/** The decision rules: every field left out takes `base`'s value (or, with no base, the seed's). */
function readDecisionRules(r: DocumentReader, value: Json, base: DecisionRules | undefined): DecisionRules {
  const o = r.object(value, ["veto_rejects", "reject_min", "defer_min", "auto_approve", "human_approve_min"]);
  const a = r.at("auto_approve");
  const ao = a.object(o.auto_approve ?? {}, [
    "min_approvals",
    "risk_in",
    "requires_auto_fixable",
    "requires_no_needs_more_info",
  ]);
  const ba = base?.auto_approve;
  return {
    veto_rejects: r.at("veto_rejects").boolean(o.veto_rejects ?? base?.veto_rejects ?? false),
    reject_min: r.at("reject_min").integer(o.reject_min ?? base?.reject_min ?? 2, 1, 1000),
    defer_min: r.at("defer_min").integer(o.defer_min ?? base?.defer_min ?? 2, 1, 1000),
    auto_approve: {
      min_approvals: a.at("min_approvals").integer(ao.min_approvals ?? ba?.min_approvals ?? 4, 1, 1000),
      risk_in: a.at("risk_in").list(ao.risk_in ?? ba?.risk_in ?? ["trivial", "low"], (ri, v) => ri.oneOf(v, RISK_LEVELS)),
      requires_auto_fixable: a.at("requires_auto_fixable").boolean(ao.requires_auto_fixable ?? ba?.requires_auto_fixable ?? true),
      requires_no_needs_more_info: a
        .at("requires_no_needs_more_info")
        .boolean(ao.requires_no_needs_more_info ?? ba?.requires_no_needs_more_info ?? false),
    },
    human_approve_min: r.at("human_approve_min").integer(o.human_approve_min ?? base?.human_approve_min ?? 3, 1, 1000),
  };
}

/** The `verdicts` section: every type and field left out takes `base`'s value (or SPEC section 9's default). */
function readVerdicts(r: DocumentReader, value: Json, base: VerdictsSection | undefined): VerdictsSection {
  const o = r.object(value, WAITING_TYPES);
  const read = (type: (typeof WAITING_TYPES)[number]): VerdictRule => {
    const t = r.at(type);
    const to = t.object(o[type] ?? {}, ["approvals", "expires_after"]);
    const b = base?.[type] ?? DEFAULT_VERDICTS[type];
    const approvals = t.at("approvals").integer(to.approvals ?? b.approvals, 1, 100);
    const e = t.at("expires_after");
    const text = e.string(to.expires_after ?? b.expires_after, { nonEmpty: true });
    const ms =
      parseDuration(text) ??
      e.fail(`${JSON.stringify(text)} is not a duration (a whole number and ms, s, m or h, e.g. 500ms, 30s, 15m, 24h)`);
    if (ms < MIN_EXPIRY_MS || ms > MAX_EXPIRY_MS) e.fail(`must be between ${formatDuration(MIN_EXPIRY_MS)} and ${formatDuration(MAX_EXPIRY_MS)}`);
    return { approvals, expires_after: formatDuration(ms) };
  };
  return { human_approve: read("human_approve"), defer: read("defer"), escalate: read("escalate") };
}

/**
 * Validates a policy document, fills in what it leaves out and computes its version. With `base`
 * (policy files get the `default` policy, SPEC section 4), every section and field left out takes
 * `base`'s value, a reviewer's fields included (from `base`'s reviewer of the same role); a list
 * that is given (`checks`, `reviewers`) replaces `base`'s whole. Without `base`, the document must
 * name its reviewers and the rest falls back to the seed's values.
 */
export function parsePolicy(name: string, document: Json, base?: PolicyDocument): Policy {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new PolicyError(`policy name ${JSON.stringify(name)} must be 1-64 letters, digits, '.', '_' or '-'`);
  }
  const r = policyReader();
  const o = r.object(document, ["reviewers", "veto_confidence", "cautious_review", "decision", "verdicts"]);
  const reviewers = r.at("reviewers").list(o.reviewers ?? base?.reviewers, (ri, v) => readReviewer(ri, v, base));
  if (reviewers.length === 0) r.at("reviewers").fail("must name at least one reviewer");
  const seen = new Set<string>();
  reviewers.forEach((rev, i) => {
    if (seen.has(rev.role)) r.at("reviewers").at(i).at("role").fail(`${rev.role} appears twice`);
    seen.add(rev.role);
  });
  const c = r.at("cautious_review");
  const co = c.object(o.cautious_review ?? {}, ["risk_in", "tolerance_below", "concern"]);
  const bc = base?.cautious_review;
  const parsed: PolicyDocument = {
    reviewers,
    veto_confidence: r.at("veto_confidence").number(o.veto_confidence ?? base?.veto_confidence ?? 0.95, 0, 1),
    cautious_review: {
      risk_in: c.at("risk_in").list(co.risk_in ?? bc?.risk_in ?? ["critical"], (ri, v) => ri.oneOf(v, RISK_LEVELS)),
      tolerance_below: c.at("tolerance_below").number(co.tolerance_below ?? bc?.tolerance_below ?? 0.3, 0, 1),
      concern: readTemplate(c.at("concern"), co.concern ?? bc?.concern ?? "Critical risk requires additional review"),
    },
    decision: readDecisionRules(r.at("decision"), o.decision ?? {}, base?.decision),
    verdicts: readVerdicts(r.at("verdicts"), o.verdicts ?? {}, base?.verdicts),
  };
  return { ...parsed, name, version: `${name}@${policyDigest(parsed).slice(0, 12)}` };
}

/** JSON with object keys sorted at every level: the canonical form that policy versions hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function policyDigest(document: PolicyDocument): string {
  return createHash("sha256").update(canonicalJson(document)).digest("hex");
}

/** The reviewers' public profiles, in voting order, with how many agents serve each external role. */
export function reviewerProfiles(policy: Policy, connected: Partial<Record<ReviewerRole, number>> = {}): ReviewerProfile[] {
  return policy.reviewers.map((r) => {
    const external = externalSettings(r);
    return {
      role: r.role,
      expertiseAreas: [...r.expertise_areas],
      riskTolerance: r.risk_tolerance,
      priorityFocus: [...r.priority_focus],
      vetoConditions: [...r.veto_conditions],
      external,
      connected: external ? (connected[r.role] ?? 0) : 0,
    };
  });
}

/**
 * Parses a policy file's text (JSON, or YAML, which includes JSON) and validates it; what it leaves
 * out comes from `base` (see parsePolicy: config.ts passes the `default` policy).
 */
export function parsePolicyText(name: string, text: string, base?: PolicyDocument): Policy {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true, strict: true });
  } catch (err) {
    throw new PolicyError(`not valid JSON or YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  return parsePolicy(name, document, base);
}
