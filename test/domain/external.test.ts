/** External votes (SPEC section 11): which are valid, and the vote each failure policy casts. */
import { expect } from "chai";
import { checkTaskVote, fallbackVote, type TaskVoteInput } from "../../src/domain/external.js";
import { PRESETS } from "../../src/domain/presets.js";
import { castVote } from "../../src/domain/rules.js";
import { suggestion } from "../support/fixtures.js";

const ok: TaskVoteInput = { vote: "approve", reasoning: "fine", concerns: [], conditions: [], confidence: 0.5, veto: "" };
const invalid = (v: Partial<TaskVoteInput>) => {
  const r = checkTaskVote({ ...ok, ...v });
  return "invalid" in r ? r.invalid : undefined;
};

describe("external votes", () => {
  it("takes a well-formed vote, a REJECT with a snake_case veto included", () => {
    expect(invalid({})).to.equal(undefined);
    expect(invalid({ vote: "reject", veto: "credential_in_diff", confidence: 1 })).to.equal(undefined);
    expect(invalid({ confidence: 0 })).to.equal(undefined);
    expect(invalid({ reasoning: "x".repeat(16 * 1024), concerns: Array(16).fill("y".repeat(1024)) })).to.equal(undefined);
  });

  it("names what makes a vote invalid", () => {
    expect(invalid({ vote: undefined })).to.match(/vote must be/);
    expect(invalid({ confidence: 1.01 })).to.equal("confidence 1.01 is outside [0, 1]");
    expect(invalid({ confidence: Number.NaN })).to.equal("confidence NaN is outside [0, 1]");
    expect(invalid({ confidence: -0.1 })).to.equal("confidence -0.1 is outside [0, 1]");
    expect(invalid({ veto: "credential_in_diff" })).to.equal("a veto may only come with a REJECT");
    expect(invalid({ vote: "reject", veto: "Credential" })).to.match(/veto must be 1-64 characters/);
    expect(invalid({ vote: "reject", veto: "a".repeat(65) })).to.match(/veto must be 1-64 characters/);
    expect(invalid({ reasoning: "x".repeat(16 * 1024 + 1) })).to.equal("reasoning is 16385 bytes; the limit is 16384");
    expect(invalid({ concerns: Array(17).fill("c") })).to.equal("concerns has 17 items; the limit is 16");
    expect(invalid({ conditions: ["ok", "é".repeat(513)] })).to.equal("conditions[1] is 1026 bytes; the limit is 1024");
  });

  it("casts each failure policy's vote with cast_by fallback:<policy>", () => {
    const policy = PRESETS.default;
    const safety = policy.reviewers[0]!;
    const s = suggestion({ reasoning: "this bypasses authentication" });
    const at = new Date(0);
    const settings = (onFailure: "rules" | "abstain" | "needs_more_info" | "reject") => ({ timeoutMs: 1000, onFailure });
    // `rules`: the built-in rules' vote for that role, as the rules make it (here, their veto).
    expect(fallbackVote(policy, safety, settings("rules"), s, "timed out", at)).to.deep.equal({ ...castVote(policy, safety, s, at), castBy: "fallback:rules" });
    for (const onFailure of ["abstain", "needs_more_info"] as const) {
      expect(fallbackVote(policy, safety, settings(onFailure), s, "no reviewer connected", at)).to.deep.equal({
        reviewerRole: "safety",
        vote: onFailure,
        reasoning: "[SAFETY] No external vote: no reviewer connected",
        concerns: [],
        conditions: [],
        confidence: 0,
        castAt: at,
        veto: "",
        castBy: `fallback:${onFailure}`,
      });
    }
    expect(fallbackVote(policy, safety, settings("reject"), s, "invalid vote: confidence 2 is outside [0, 1]", at)).to.deep.include({
      vote: "reject",
      veto: "no_external_vote",
      reasoning: "[SAFETY] No external vote: invalid vote: confidence 2 is outside [0, 1]",
      castBy: "fallback:reject",
    });
  });
});
