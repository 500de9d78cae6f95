/**
 * The two built-in policies. `seed` is SPEC section 3 exactly, as the original Python module
 * behaves; `default` is the same council with the two fixes of SPEC section 4.
 */
import { DEFAULT_VERDICTS } from "./lifecycle.js";
import { parsePolicy, type Policy, type PolicyDocument } from "./policy.js";

const SEED_DOCUMENT: PolicyDocument = {
  reviewers: [
    {
      role: "safety",
      risk_tolerance: 0.2,
      expertise_areas: ["security", "access_control", "data_protection", "audit"],
      priority_focus: ["no_security_regression", "audit_trail", "access_control"],
      veto_conditions: ["removes_security_check", "bypasses_authentication", "exposes_secrets", "disables_audit_logging"],
      checks: [
        {
          if: { short_contains_any: ["credential", "secret", "password", "token", "auth", "access"] },
          concern: "Changes involve security-sensitive components",
          condition: "Must verify no credentials exposed",
        },
        {
          if: { risk_in: ["high", "critical"] },
          concern: "High risk level: {risk}",
          condition: "Requires security review before implementation",
          verdict: { vote: "needs_more_info", confidence: 0.6 },
        },
        { if: { auto_fixable: true, risk_in: ["low"] }, verdict: { vote: "approve", confidence: 0.9 } },
      ],
      otherwise: { vote: "approve", confidence: 0.8 },
    },
    {
      role: "performance",
      risk_tolerance: 0.6,
      expertise_areas: ["latency", "throughput", "resource_usage", "scalability"],
      priority_focus: ["response_time", "memory_usage", "scalability"],
      veto_conditions: ["infinite_loop_risk", "memory_leak", "blocking_operation_in_critical_path"],
      checks: [
        {
          if: { short_contains_any: ["timeout"] },
          concern: "Timeout changes may affect system responsiveness",
          condition: "Test under load before deploying",
        },
        {
          if: { effort_in: ["large", "epic"] },
          concern: "Large change may have performance implications",
          condition: "Benchmark before and after",
        },
      ],
      otherwise: { vote: "approve", confidence: 0.75 },
    },
    {
      role: "architecture",
      risk_tolerance: 0.5,
      expertise_areas: ["design_patterns", "modularity", "maintainability", "coupling"],
      priority_focus: ["clean_design", "separation_of_concerns", "extensibility"],
      veto_conditions: ["circular_dependency", "god_class_creation", "breaks_abstraction"],
      checks: [
        {
          if: { files_affected_more_than: 5 },
          concern: "Affects {files_affected} files - wide blast radius",
          condition: "Consider breaking into smaller changes",
        },
        {
          if: { impact_in: ["transformative"] },
          concern: "Transformative change requires architecture review",
          verdict: { vote: "needs_more_info", confidence: 0.5 },
        },
      ],
      otherwise: { vote: "approve", confidence: 0.8 },
    },
    {
      role: "compliance",
      risk_tolerance: 0.3,
      expertise_areas: ["governance", "policies", "regulations", "standards"],
      priority_focus: ["policy_compliance", "audit_requirements", "documentation"],
      veto_conditions: ["violates_governance_policy", "missing_audit_trail", "unauthorized_tier_access"],
      checks: [
        {
          if: { short_contains_any: ["policy", "tier", "permission", "violation", "audit"] },
          concern: "Changes may affect governance policies",
          condition: "Verify compliance with tier policies",
        },
        {
          if: { short_contains_any: ["revocation", "promotion"] },
          concern: "Affects agent trust system",
          condition: "Must maintain audit trail",
        },
      ],
      otherwise: { vote: "approve", confidence: 0.85 },
    },
    {
      role: "quality",
      risk_tolerance: 0.4,
      expertise_areas: ["testing", "code_quality", "documentation", "reliability"],
      priority_focus: ["test_coverage", "code_quality", "documentation"],
      veto_conditions: ["reduces_test_coverage", "removes_validation", "undocumented_behavior"],
      checks: [
        {
          if: { fix_steps_fewer_than: 2 },
          concern: "Fix steps are not well-defined",
          condition: "Document implementation steps",
        },
        { if: { auto_fixable: true }, condition: "Auto-fix must include verification step" },
      ],
      otherwise: { vote: "approve", confidence: 0.8 },
    },
  ],
  veto_confidence: 0.95,
  cautious_review: { risk_in: ["critical"], tolerance_below: 0.3, concern: "Critical risk requires additional review" },
  decision: {
    veto_rejects: false,
    reject_min: 2,
    defer_min: 2,
    auto_approve: {
      min_approvals: 4,
      risk_in: ["low", "trivial"],
      requires_auto_fixable: true,
      requires_no_needs_more_info: false,
    },
    human_approve_min: 3,
  },
  verdicts: structuredClone(DEFAULT_VERDICTS),
};

const DEFAULT_DOCUMENT: PolicyDocument = {
  ...SEED_DOCUMENT,
  decision: {
    ...SEED_DOCUMENT.decision,
    veto_rejects: true,
    auto_approve: { ...SEED_DOCUMENT.decision.auto_approve, requires_no_needs_more_info: true },
  },
};

/** The built-in policies by name, validated like any policy file. */
export const PRESETS: Readonly<Record<"default" | "seed", Policy>> = {
  default: parsePolicy("default", structuredClone(DEFAULT_DOCUMENT)),
  seed: parsePolicy("seed", structuredClone(SEED_DOCUMENT)),
};

/** The seed policy's document, as a starting point for policy files. */
export function seedPolicyDocument(): PolicyDocument {
  return structuredClone(SEED_DOCUMENT);
}
