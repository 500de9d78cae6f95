/** External roles in a policy (SPEC section 11): defaults, validation, inheritance, the version. */
import { expect } from "chai";
import { externalSettings, parsePolicy, parsePolicyText, PolicyError } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";

const fail = (doc: unknown): string => {
  try {
    parsePolicy("p", doc, PRESETS.default);
  } catch (err) {
    expect(err).to.be.instanceOf(PolicyError);
    return (err as Error).message;
  }
  throw new Error("expected a PolicyError");
};

const COUNCIL = ["safety", "performance", "architecture", "compliance", "quality"];

describe("external roles in a policy", () => {
  it("an entry naming only its role and `external` keeps the default policy's rules for that role", () => {
    const p = parsePolicyText("ext", `reviewers:\n${COUNCIL.map((r) => `  - role: ${r}${r === "safety" ? "\n    external: {}" : ""}`).join("\n")}\n`, PRESETS.default);
    const safety = p.reviewers[0]!;
    const builtIn = PRESETS.default.reviewers[0]!;
    expect({ ...safety, external: undefined }).to.deep.equal({ ...builtIn, external: undefined });
    // Defaults: 5 s, needs_more_info (a missing reviewer sends the change to people).
    expect(externalSettings(safety)).to.deep.equal({ timeoutMs: 5000, onFailure: "needs_more_info" });
    expect(externalSettings(p.reviewers[1]!)).to.equal(undefined);
  });

  it("is part of the version: the same council with one role external, or another timeout, is another policy", () => {
    const doc = (external?: object) => ({ reviewers: COUNCIL.map((role) => (role === "quality" && external ? { role, external } : { role })) });
    const builtIn = parsePolicy("v", doc(), PRESETS.default);
    const ext = parsePolicy("v", doc({ timeout: "5s" }), PRESETS.default);
    const slower = parsePolicy("v", doc({ timeout: "6s" }), PRESETS.default);
    const sameAsExt = parsePolicy("v", doc({ timeout: "5000ms", on_failure: "needs_more_info" }), PRESETS.default);
    expect(new Set([builtIn.version, ext.version, slower.version]).size).to.equal(3);
    expect(sameAsExt.version).to.equal(ext.version);
  });

  it("reads every failure policy and timeout in ms or s", () => {
    for (const onFailure of ["rules", "abstain", "needs_more_info", "reject"]) {
      const p = parsePolicy("p", { reviewers: [{ role: "safety", external: { timeout: "250ms", on_failure: onFailure } }] }, PRESETS.default);
      expect(externalSettings(p.reviewers[0]!)).to.deep.equal({ timeoutMs: 250, onFailure });
    }
  });

  const broken: [string, unknown, string][] = [
    ["unknown failure policy", { reviewers: [{ role: "safety", external: { on_failure: "ignore" } }] }, 'reviewers[0].external.on_failure: "ignore" is not one of'],
    ["timeout not a duration", { reviewers: [{ role: "safety", external: { timeout: "soon" } }] }, 'reviewers[0].external.timeout: "soon" is not a duration'],
    ["timeout too long", { reviewers: [{ role: "safety", external: { timeout: "2m" } }] }, "reviewers[0].external.timeout: must be between 10ms and 1m"],
    ["timeout too short", { reviewers: [{ role: "safety", external: { timeout: "1ms" } }] }, "reviewers[0].external.timeout: must be between 10ms and 1m"],
    ["unknown field", { reviewers: [{ role: "safety", external: { deadline: "5s" } }] }, "reviewers[0].external.deadline: unknown field"],
    ["not an object", { reviewers: [{ role: "safety", external: "yes" }] }, "reviewers[0].external: must be an object"],
  ];
  for (const [name, doc, message] of broken) {
    it(`names the problem: ${name}`, () => {
      expect(fail(doc)).to.include(message);
    });
  }
});
