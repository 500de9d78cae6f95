/**
 * SPEC section 4: every section and field a policy file leaves out takes the `default` policy's
 * value, reviewers' fields included (from the `default` reviewer of the same role).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { resolvePolicy } from "../../src/config.js";
import { PRESETS } from "../../src/domain/presets.js";

function policyFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "council-policy-")), name);
  writeFileSync(file, text);
  return file;
}

const defaults = PRESETS.default;
const reviewer = (role: string) => defaults.reviewers.find((r) => r.role === role)!;

describe("policy files take what they leave out from the default policy", () => {
  it("a reviewer's fields left out are the default reviewer's of the same role", () => {
    const p = resolvePolicy(policyFile("lenient.yaml", "reviewers:\n  - role: safety\n    risk_tolerance: 0.5\n  - role: quality\n    risk_tolerance: 0.4\n    checks: []\n"));
    expect(p.name).to.equal("lenient");
    const [safety, quality] = p.reviewers;
    expect(safety).to.deep.equal({ ...reviewer("safety"), risk_tolerance: 0.5 });
    expect(quality).to.deep.equal({ ...reviewer("quality"), risk_tolerance: 0.4, checks: [] });
  });

  it("sections and fields left out are the default policy's: both fixes stay on", () => {
    const p = resolvePolicy(policyFile("tiny.json", JSON.stringify({ reviewers: [{ role: "safety", risk_tolerance: 0.2 }], decision: { reject_min: 3 } })));
    expect(p.decision).to.deep.equal({ ...defaults.decision, reject_min: 3 });
    expect(p.decision.veto_rejects).to.equal(true);
    expect(p.decision.auto_approve.requires_no_needs_more_info).to.equal(true);
    expect(p.cautious_review).to.deep.equal(defaults.cautious_review);
    expect(p.veto_confidence).to.equal(defaults.veto_confidence);
    expect(p.reviewers).to.deep.equal([reviewer("safety")]);
  });

  it("reviewers left out are the default policy's", () => {
    const p = resolvePolicy(policyFile("strict.yaml", "decision:\n  human_approve_min: 4\n"));
    expect(p.reviewers).to.deep.equal(defaults.reviewers);
    expect(p.decision.human_approve_min).to.equal(4);
  });

  it("an empty document is the default policy's content under the file's name", () => {
    const p = resolvePolicy(policyFile("same.json", "{}"));
    const { name: _n, version, ...content } = p;
    const { name: _dn, version: defaultVersion, ...defaultContent } = defaults;
    expect(content).to.deep.equal(defaultContent);
    expect(version.split("@")[1]).to.equal(defaultVersion.split("@")[1]);
  });
});
