import { expect } from "chai";
import { stringify } from "yaml";
import { canonicalJson, parsePolicy, parsePolicyText, PolicyError } from "../../src/domain/policy.js";
import { PRESETS, seedPolicyDocument } from "../../src/domain/presets.js";

const problem = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(PolicyError);
    return (err as Error).message;
  }
  throw new Error("expected a PolicyError");
};

describe("policies as data", () => {
  it("versions a policy as <name>@<12 hex of the sha256 of its canonical content>", () => {
    expect(PRESETS.seed.version).to.match(/^seed@[0-9a-f]{12}$/);
    expect(PRESETS.default.version).to.match(/^default@[0-9a-f]{12}$/);
    expect(PRESETS.seed.version.split("@")[1]).to.not.equal(PRESETS.default.version.split("@")[1]);
  });

  it("gives the same version to the same content, whatever its key order or format", () => {
    const doc = seedPolicyDocument();
    const reordered = JSON.parse(canonicalJson(doc));
    const fromJson = parsePolicyText("mine", JSON.stringify(reordered, null, 2));
    const fromYaml = parsePolicyText("mine", stringify(doc));
    expect(fromJson.version).to.equal(fromYaml.version);
    expect(fromJson.version.split("@")[1]).to.equal(PRESETS.seed.version.split("@")[1]);
  });

  it("fills defaults, so a minimal file is a complete policy", () => {
    const p = parsePolicyText("tiny", "reviewers:\n  - role: safety\n    risk_tolerance: 0.5\n");
    expect(p.decision.reject_min).to.equal(2);
    expect(p.reviewers[0]!.otherwise).to.deep.equal({ vote: "approve", confidence: 0.8 });
  });

  const broken: [string, unknown, string][] = [
    ["no reviewers", { reviewers: [] }, "reviewers: must name at least one reviewer"],
    ["unknown role", { reviewers: [{ role: "legal", risk_tolerance: 0.5 }] }, 'reviewers[0].role: "legal" is not one of'],
    ["duplicate role", { reviewers: [{ role: "safety", risk_tolerance: 0.1 }, { role: "safety", risk_tolerance: 0.2 }] }, "reviewers[1].role: safety appears twice"],
    ["tolerance out of range", { reviewers: [{ role: "safety", risk_tolerance: 2 }] }, "reviewers[0].risk_tolerance: must be between 0 and 1"],
    [
      "misspelled risk in a check",
      { reviewers: [{ role: "safety", risk_tolerance: 0.2, checks: [{ if: { risk_in: ["hgih"] } }] }] },
      'reviewers[0].checks[0].if.risk_in[0]: "hgih" is not one of',
    ],
    ["unknown field", { reviewers: [{ role: "safety", risk_tolerance: 0.2, vetos: [] }] }, "reviewers[0].vetos: unknown field"],
    [
      "unknown placeholder",
      { reviewers: [{ role: "safety", risk_tolerance: 0.2, checks: [{ concern: "Risk {level}" }] }] },
      "reviewers[0].checks[0].concern: unknown placeholder {level}",
    ],
    [
      "bad veto condition",
      { reviewers: [{ role: "safety", risk_tolerance: 0.2, veto_conditions: ["two  words"] }] },
      "reviewers[0].veto_conditions[0]: must be words joined by single underscores",
    ],
    ["bad threshold", { reviewers: [{ role: "safety", risk_tolerance: 0.2 }], decision: { reject_min: 0 } }, "decision.reject_min: must be between 1 and 1000"],
  ];
  for (const [name, doc, message] of broken) {
    it(`names the problem: ${name}`, () => {
      expect(problem(() => parsePolicy("p", doc))).to.include(message);
    });
  }

  it("names a syntax error in the file", () => {
    expect(problem(() => parsePolicyText("p", "reviewers: [\n"))).to.match(/^not valid JSON or YAML/);
    expect(problem(() => parsePolicyText("p", "reviewers: []\nreviewers: []\n"))).to.match(/^not valid JSON or YAML/);
  });
});
