/** One row per rule of SPEC section 3 and per fix of section 4, with the input and the expected vote or decision. */
import { expect } from "chai";
import type { DecisionType, ReviewerRole, Suggestion, Vote, VoteType } from "../../src/domain/model.js";
import { parsePolicy, type Policy } from "../../src/domain/policy.js";
import { PRESETS, seedPolicyDocument } from "../../src/domain/presets.js";
import { castVote, conclude } from "../../src/domain/rules.js";
import { suggestion } from "../support/fixtures.js";

const AT = new Date(0);
const plain = (o: Partial<Suggestion> = {}) =>
  suggestion({
    title: "Tidy module",
    description: "Small change",
    reasoning: "Cleaner",
    risk: "medium",
    impact: "low",
    autoFixable: false,
    fixSteps: ["a", "b"],
    filesAffected: ["x.ts"],
    estimatedEffort: "small",
    ...o,
  });

function voteOf(role: ReviewerRole, s: Suggestion, policy: Policy = PRESETS.seed): Vote {
  const reviewer = policy.reviewers.find((r) => r.role === role)!;
  return castVote(policy, reviewer, s, AT);
}

interface VoteRow {
  rule: string;
  role: ReviewerRole;
  input: Partial<Suggestion>;
  vote: VoteType;
  confidence: number;
  concerns: string[];
  conditions: string[];
  reasoning?: string;
  veto?: string;
}

const voteRows: VoteRow[] = [
  {
    rule: "veto: every word of a condition in the full text (reasoning included), case-insensitive",
    role: "safety",
    input: { reasoning: "It EXPOSES our Secrets" },
    vote: "reject",
    confidence: 0.95,
    concerns: ["exposes_secrets"],
    conditions: [],
    reasoning: "Veto condition triggered: exposes_secrets",
    veto: "exposes_secrets",
  },
  {
    rule: "veto: words are substrings, in any order",
    role: "performance",
    input: { description: "a leaky memory pool" },
    vote: "reject",
    confidence: 0.95,
    concerns: ["memory_leak"],
    conditions: [],
    veto: "memory_leak",
  },
  {
    rule: "veto: the first matching condition wins, nothing else is evaluated",
    role: "safety",
    input: { title: "removes security check and bypasses authentication token", risk: "critical" },
    vote: "reject",
    confidence: 0.95,
    concerns: ["removes_security_check"],
    conditions: [],
    veto: "removes_security_check",
  },
  {
    rule: "safety: security words in title+description add a concern and condition",
    role: "safety",
    input: { description: "rotate the Password store" },
    vote: "approve",
    confidence: 0.8,
    concerns: ["Changes involve security-sensitive components"],
    conditions: ["Must verify no credentials exposed"],
    reasoning: "[SAFETY] Approved: Tidy module. Risk level (medium) is acceptable.",
  },
  {
    rule: "safety: security words only in reasoning do not count",
    role: "safety",
    input: { reasoning: "password" },
    vote: "approve",
    confidence: 0.8,
    concerns: [],
    conditions: [],
  },
  {
    rule: "safety: high or critical risk needs more info at 0.6",
    role: "safety",
    input: { risk: "high", title: "auth tweak" },
    vote: "needs_more_info",
    confidence: 0.6,
    concerns: ["Changes involve security-sensitive components", "High risk level: high"],
    conditions: ["Must verify no credentials exposed", "Requires security review before implementation"],
    reasoning: "[SAFETY] Needs review: auth tweak. Additional information required.",
  },
  {
    rule: "safety: auto-fixable at low risk approves at 0.9",
    role: "safety",
    input: { risk: "low", autoFixable: true },
    vote: "approve",
    confidence: 0.9,
    concerns: [],
    conditions: [],
  },
  {
    rule: "safety: auto-fixable at trivial risk approves at 0.8 (only low gets 0.9)",
    role: "safety",
    input: { risk: "trivial", autoFixable: true },
    vote: "approve",
    confidence: 0.8,
    concerns: [],
    conditions: [],
  },
  {
    rule: "performance: timeout and large effort",
    role: "performance",
    input: { title: "Raise TIMEOUT", estimatedEffort: "epic" },
    vote: "approve",
    confidence: 0.75,
    concerns: ["Timeout changes may affect system responsiveness", "Large change may have performance implications"],
    conditions: ["Test under load before deploying", "Benchmark before and after"],
  },
  {
    rule: "performance: no effort estimate is not large",
    role: "performance",
    input: { estimatedEffort: undefined },
    vote: "approve",
    confidence: 0.75,
    concerns: [],
    conditions: [],
  },
  {
    rule: "architecture: more than 5 files",
    role: "architecture",
    input: { filesAffected: ["1", "2", "3", "4", "5", "6"] },
    vote: "approve",
    confidence: 0.8,
    concerns: ["Affects 6 files - wide blast radius"],
    conditions: ["Consider breaking into smaller changes"],
  },
  {
    rule: "architecture: exactly 5 files is fine",
    role: "architecture",
    input: { filesAffected: ["1", "2", "3", "4", "5"] },
    vote: "approve",
    confidence: 0.8,
    concerns: [],
    conditions: [],
  },
  {
    rule: "architecture: transformative impact needs more info at 0.5",
    role: "architecture",
    input: { impact: "transformative" },
    vote: "needs_more_info",
    confidence: 0.5,
    concerns: ["Transformative change requires architecture review"],
    conditions: [],
  },
  {
    rule: "compliance: governance words, then trust-system words",
    role: "compliance",
    input: { title: "Tier promotion", description: "audit it" },
    vote: "approve",
    confidence: 0.85,
    concerns: ["Changes may affect governance policies", "Affects agent trust system"],
    conditions: ["Verify compliance with tier policies", "Must maintain audit trail"],
  },
  {
    rule: "quality: fewer than 2 fix steps, auto-fixable",
    role: "quality",
    input: { fixSteps: ["one"], autoFixable: true },
    vote: "approve",
    confidence: 0.8,
    concerns: ["Fix steps are not well-defined"],
    conditions: ["Document implementation steps", "Auto-fix must include verification step"],
  },
];

describe("review rules, one row per rule (SPEC section 3)", () => {
  for (const row of voteRows) {
    it(`${row.role}: ${row.rule}`, () => {
      const v = voteOf(row.role, plain(row.input));
      expect(v.vote).to.equal(row.vote);
      expect(v.confidence).to.equal(row.confidence);
      expect(v.concerns).to.deep.equal(row.concerns);
      expect(v.conditions).to.deep.equal(row.conditions);
      expect(v.veto).to.equal(row.veto ?? "");
      if (row.reasoning) expect(v.reasoning).to.equal(row.reasoning);
    });
  }

  it("cautious reviewers: an approval at critical risk becomes needs-more-info when tolerance < 0.3", () => {
    const doc = seedPolicyDocument();
    doc.reviewers[3]!.risk_tolerance = 0.25; // compliance, which approves at critical risk
    const policy = parsePolicy("cautious", doc);
    const v = voteOf("compliance", plain({ risk: "critical" }), policy);
    expect(v.vote).to.equal("needs_more_info");
    expect(v.concerns).to.deep.equal(["Critical risk requires additional review"]);
    expect(v.confidence).to.equal(0.85);
    expect(v.reasoning).to.equal("[COMPLIANCE] Needs review: Tidy module. Additional information required.");
    // Not after a veto, and not at 0.3 exactly.
    expect(voteOf("compliance", plain({ risk: "critical", title: "missing audit trail" }), policy).vote).to.equal("reject");
    expect(voteOf("compliance", plain({ risk: "critical" })).vote).to.equal("approve");
  });

  it("a non-veto rejection lists its concerns; an abstention says so", () => {
    const doc = seedPolicyDocument();
    doc.reviewers[0]!.checks = [{ if: { risk_in: ["medium"] }, concern: "Medium risk: {risk}", verdict: { vote: "reject", confidence: 0.7 } }];
    doc.reviewers[1]!.otherwise = { vote: "abstain", confidence: 0.1 };
    const policy = parsePolicy("custom", doc);
    expect(voteOf("safety", plain(), policy).reasoning).to.equal("[SAFETY] Rejected: Tidy module. Concerns: Medium risk: medium");
    expect(voteOf("performance", plain(), policy).reasoning).to.equal("[PERFORMANCE] Abstained: Outside expertise area.");
  });
});

const v = (vote: VoteType, extra: Partial<Vote> = {}): Vote => ({
  reviewerRole: "quality",
  vote,
  reasoning: "",
  concerns: [],
  conditions: [],
  confidence: 0.8,
  castAt: AT,
  veto: "",
  castBy: "rules",
  ...extra,
});

interface DecisionRow {
  rule: string;
  policy: "seed" | "default";
  votes: Vote[];
  input?: Partial<Suggestion>;
  decision: DecisionType;
  reasoning: string;
}

const veto = (role: ReviewerRole, condition: string) => v("reject", { reviewerRole: role, veto: condition, concerns: [condition] });

const decisionRows: DecisionRow[] = [
  {
    rule: "1. two rejections reject, quoting the first three concerns",
    policy: "seed",
    votes: [v("reject", { concerns: ["a", "b"] }), v("approve", { concerns: ["c"] }), v("reject", { concerns: ["d"] }), v("approve"), v("approve")],
    decision: "reject",
    reasoning: "Rejected by 2 reviewers. Concerns: a; b; c",
  },
  {
    rule: "2. two requests for information defer",
    policy: "seed",
    votes: [v("needs_more_info"), v("needs_more_info"), v("approve"), v("approve"), v("approve")],
    decision: "defer",
    reasoning: "Deferred - 2 reviewers need more information.",
  },
  {
    rule: "3. four approvals, auto-fixable, low risk: auto-approve",
    policy: "seed",
    input: { autoFixable: true, risk: "low" },
    votes: [v("approve"), v("approve"), v("approve"), v("approve"), v("needs_more_info")],
    decision: "auto_approve",
    reasoning: "Auto-approved by council (4/5 votes). Low risk, auto-fixable.",
  },
  {
    rule: "3. not auto-fixable: human approval",
    policy: "seed",
    input: { autoFixable: false, risk: "trivial" },
    votes: [v("approve"), v("approve"), v("approve"), v("approve"), v("approve")],
    decision: "human_approve",
    reasoning: "Approved for human implementation (5/5 votes).",
  },
  {
    rule: "4. three approvals: human approval",
    policy: "seed",
    input: { autoFixable: true, risk: "medium" },
    votes: [v("approve"), v("approve"), v("approve"), v("reject"), v("needs_more_info")],
    decision: "human_approve",
    reasoning: "Approved for human implementation (3/5 votes).",
  },
  {
    rule: "5. otherwise escalate",
    policy: "seed",
    votes: [v("approve"), v("approve"), v("abstain"), v("abstain"), v("reject")],
    decision: "escalate",
    reasoning: "No consensus reached. Votes: 2 approve, 1 reject, 0 need info.",
  },
  {
    rule: "seed: one veto is outvoted (the flaw the default policy fixes)",
    policy: "seed",
    input: { autoFixable: true, risk: "low" },
    votes: [veto("safety", "exposes_secrets"), v("approve"), v("approve"), v("approve"), v("approve")],
    decision: "auto_approve",
    reasoning: "Auto-approved by council (4/5 votes). Low risk, auto-fixable.",
  },
  {
    rule: "fix 1 (default): any veto rejects, one clause per vetoing vote in vote order",
    policy: "default",
    input: { autoFixable: true, risk: "low" },
    votes: [veto("safety", "exposes_secrets"), v("approve"), v("approve"), v("approve"), veto("quality", "removes_validation")],
    decision: "reject",
    reasoning: "Vetoed by safety: exposes_secrets; Vetoed by quality: removes_validation",
  },
  {
    rule: "fix 2 (default): a request for more information blocks auto-approval; rule 4 applies",
    policy: "default",
    input: { autoFixable: true, risk: "low", impact: "transformative" },
    votes: [v("approve"), v("approve"), v("needs_more_info"), v("approve"), v("approve")],
    decision: "human_approve",
    reasoning: "Approved for human implementation (4/5 votes).",
  },
  {
    rule: "seed: a transformative change is auto-approved over a request for information",
    policy: "seed",
    input: { autoFixable: true, risk: "low", impact: "transformative" },
    votes: [v("approve"), v("approve"), v("needs_more_info"), v("approve"), v("approve")],
    decision: "auto_approve",
    reasoning: "Auto-approved by council (4/5 votes). Low risk, auto-fixable.",
  },
];

describe("decision rules, one row per rule (SPEC sections 3 and 4)", () => {
  for (const row of decisionRows) {
    it(`${row.policy}: ${row.rule}`, () => {
      const c = conclude(PRESETS[row.policy], plain(row.input), row.votes);
      expect(c.decision).to.equal(row.decision);
      expect(c.finalReasoning).to.equal(row.reasoning);
      expect(c.autoFixApproved).to.equal(row.decision === "auto_approve");
      expect(c.requiresManualOversight).to.equal(row.decision !== "auto_approve");
    });
  }

  it("gathers conditions without repeats, first occurrence first", () => {
    const c = conclude(PRESETS.seed, plain(), [v("approve", { conditions: ["b", "a"] }), v("approve", { conditions: ["a", "c", "b"] })]);
    expect(c.conditions).to.deep.equal(["b", "a", "c"]);
  });

  it("end to end under default: a suggestion that exposes secrets is rejected, though seed auto-approves it", () => {
    const s = plain({ title: "Log config", reasoning: "exposes secrets for debugging", risk: "low", autoFixable: true });
    const decide = (p: Policy) => conclude(p, s, p.reviewers.map((r) => castVote(p, r, s, AT)));
    expect(decide(PRESETS.seed).decision).to.equal("auto_approve");
    expect(decide(PRESETS.default)).to.deep.include({ decision: "reject", finalReasoning: "Vetoed by safety: exposes_secrets" });
  });
});
