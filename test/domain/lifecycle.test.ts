/**
 * SPEC section 9's rules as pure functions (src/domain/lifecycle.ts), table-driven: where a decision
 * starts, what a verdict does (in the SPEC's order of checks), expiry, supersede, legacy decisions,
 * and the policy's `verdicts` section.
 */
import { expect } from "chai";
import { FailedPreconditionError, InvalidArgumentError, PermissionDeniedError } from "../../src/domain/errors.js";
import {
  applyVerdict,
  checkSupersede,
  DEFAULT_VERDICTS,
  effectiveStatus,
  formatDuration,
  initialLifecycle,
  legacyLifecycle,
  parseDuration,
  type VerdictInput,
} from "../../src/domain/lifecycle.js";
import type { Decision, DecisionType, Verdict } from "../../src/domain/model.js";
import { parsePolicy, parsePolicyText, PolicyError } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { decision, pendingDecision } from "../support/fixtures.js";

const NOW = new Date("2026-06-01T12:00:00.000Z");
const at = new Date("2026-06-01T11:00:00.000Z");
const verdict = (by: string, v: Verdict["verdict"], requestId = "", comment = v === "reject" ? "no" : ""): Verdict => ({
  by,
  verdict: v,
  comment,
  givenAt: at,
  requestId,
});
const input = (by: string, v: VerdictInput["verdict"], extra: Partial<VerdictInput> = {}): VerdictInput => ({
  by,
  verdict: v,
  comment: v === "reject" ? "no" : "",
  requestId: "",
  at: NOW,
  ...extra,
});

describe("lifecycle: at decision time", () => {
  const rows: [DecisionType, string, number, number | undefined][] = [
    ["auto_approve", "approved", 0, undefined],
    ["reject", "rejected", 0, undefined],
    ["human_approve", "pending", 1, 24 * 3_600_000],
    ["defer", "pending", 1, 24 * 3_600_000],
    ["escalate", "pending", 2, 72 * 3_600_000],
  ];
  for (const [type, status, approvals, ms] of rows) {
    it(`${type}: ${status}, ${approvals} approvals, ${ms === undefined ? "no expiry" : `expires after ${formatDuration(ms)}`}`, () => {
      const l = initialLifecycle(DEFAULT_VERDICTS, type, NOW);
      expect(l).to.deep.equal({
        status,
        verdicts: [],
        approvalsRequired: approvals,
        expiresAt: ms === undefined ? undefined : new Date(NOW.getTime() + ms),
        supersededBy: "",
      });
    });
  }

  it("reads decisions stored before statuses as decided now with no expiry, approvals from the current policy", () => {
    const section = { ...DEFAULT_VERDICTS, escalate: { approvals: 5, expires_after: "1h" } };
    expect(legacyLifecycle("auto_approve", section)).to.deep.include({ status: "approved", approvalsRequired: 0, expiresAt: undefined });
    expect(legacyLifecycle("reject", section)).to.deep.include({ status: "rejected", expiresAt: undefined });
    expect(legacyLifecycle("escalate", section)).to.deep.include({ status: "pending", approvalsRequired: 5, expiresAt: undefined });
    expect(legacyLifecycle("defer", section)).to.deep.include({ status: "pending", approvalsRequired: 1, expiresAt: undefined });
  });

  it("a pending decision past its expiry reads expired; at any other time, or in another status, as it is", () => {
    const d = pendingDecision({ decidedAt: at }, 3_600_000); // expires exactly at NOW
    expect(effectiveStatus(d, new Date(NOW.getTime() - 1))).to.equal("pending");
    expect(effectiveStatus(d, NOW)).to.equal("expired");
    expect(effectiveStatus({ ...d, status: "approved" }, new Date(NOW.getTime() + 1))).to.equal("approved");
    expect(effectiveStatus({ ...d, expiresAt: undefined }, new Date(NOW.getTime() + 1e12))).to.equal("pending");
  });
});

describe("lifecycle: applyVerdict (SPEC section 9, in its order)", () => {
  const pending = (o: Partial<Decision> = {}) => pendingDecision({ submittedBy: "agent-a", approvalsRequired: 2, decidedAt: at, ...o });

  type Expect = { status: string; verdicts: string[] } | "unchanged" | [new (...args: never[]) => Error, RegExp];
  const rows: [string, Decision, VerdictInput, Expect][] = [
    ["an UNSPECIFIED verdict is invalid", pending(), input("alice", undefined), [InvalidArgumentError, /^verdict/]],
    ["a rejection without a comment is invalid, naming comment", pending(), input("alice", "reject", { comment: "  " }), [InvalidArgumentError, /^comment/]],
    ["a first approval of two counts and waits", pending(), input("alice", "approve"), { status: "pending", verdicts: ["alice:approve"] }],
    [
      "the second distinct approval approves",
      pending({ verdicts: [verdict("alice", "approve")] }),
      input("bob", "approve"),
      { status: "approved", verdicts: ["alice:approve", "bob:approve"] },
    ],
    [
      "one rejection rejects, whatever approvals came before",
      pending({ verdicts: [verdict("alice", "approve")] }),
      input("bob", "reject"),
      { status: "rejected", verdicts: ["alice:approve", "bob:reject"] },
    ],
    ["the same verdict again: unchanged", pending({ verdicts: [verdict("alice", "approve")] }), input("alice", "approve"), "unchanged"],
    [
      "the same verdict again on a decision that is no longer pending: unchanged (checked before the status)",
      pending({ status: "approved", verdicts: [verdict("alice", "approve"), verdict("bob", "approve")] }),
      input("alice", "approve"),
      "unchanged",
    ],
    [
      "the same verdict again after expiry: unchanged",
      pending({ verdicts: [verdict("alice", "approve")], expiresAt: new Date(NOW.getTime() - 1) }),
      input("alice", "approve"),
      "unchanged",
    ],
    [
      "the other verdict is refused",
      pending({ verdicts: [verdict("alice", "approve")] }),
      input("alice", "reject"),
      [FailedPreconditionError, /already gave the verdict APPROVE/],
    ],
    [
      "a request_id reused for another comment is refused",
      pending({ verdicts: [verdict("alice", "approve", "r1", "fine")] }),
      input("alice", "approve", { requestId: "r1", comment: "other" }),
      [FailedPreconditionError, /request_id "r1"/],
    ],
    [
      "a request_id repeated with the same verdict: unchanged",
      pending({ verdicts: [verdict("alice", "approve", "r1", "fine")] }),
      input("alice", "approve", { requestId: "r1", comment: "fine" }),
      "unchanged",
    ],
    ["the submitter may not approve (no self-approval)", pending(), input("agent-a", "approve"), [PermissionDeniedError, /no self-approval/]],
    ["nor reject", pending(), input("agent-a", "reject"), [PermissionDeniedError, /no self-approval/]],
    [
      "self-approval is checked before the status",
      pending({ status: "rejected" }),
      input("agent-a", "approve"),
      [PermissionDeniedError, /no self-approval/],
    ],
    [
      "anonymous may approve what it submitted",
      pending({ submittedBy: "anonymous", approvalsRequired: 1 }),
      input("anonymous", "approve"),
      { status: "approved", verdicts: ["anonymous:approve"] },
    ],
    ["a decision that is not pending is refused, naming its status", pending({ status: "rejected" }), input("alice", "approve"), [FailedPreconditionError, /is REJECTED/]],
    ["a superseded one", pending({ status: "superseded" }), input("alice", "approve"), [FailedPreconditionError, /is SUPERSEDED/]],
    [
      "a pending one past its expiry is refused as EXPIRED",
      pending({ expiresAt: new Date(NOW.getTime() - 1) }),
      input("alice", "approve"),
      [FailedPreconditionError, /is EXPIRED/],
    ],
  ];
  for (const [what, d, i, want] of rows) {
    it(what, () => {
      if (Array.isArray(want)) {
        expect(() => applyVerdict(d, i, NOW)).to.throw(want[0], want[1]);
        return;
      }
      const effect = applyVerdict(d, i, NOW);
      if (want === "unchanged") {
        expect(effect).to.deep.equal({ kind: "unchanged" });
        return;
      }
      expect(effect.kind).to.equal("change");
      if (effect.kind !== "change") return;
      expect(effect.change.status).to.equal(want.status);
      expect(effect.change.verdicts.map((v) => `${v.by}:${v.verdict}`)).to.deep.equal(want.verdicts);
      expect(effect.change.verdicts.at(-1)).to.deep.equal({ by: i.by, verdict: i.verdict, comment: i.comment, givenAt: NOW, requestId: i.requestId });
    });
  }
});

describe("lifecycle: supersede", () => {
  const old = pendingDecision({ submittedBy: "agent-a", decidedAt: at });
  it("accepts a pending decision of the same submitter", () => expect(() => checkSupersede(old.id, old, "agent-a", NOW)).to.not.throw());
  const refusals: [string, Decision | undefined, string, RegExp][] = [
    ["an unknown decision", undefined, "agent-a", /does not exist/],
    ["another submitter's", old, "agent-b", /submitted by "agent-a"/],
    ["an approved one", { ...old, status: "approved" }, "agent-a", /is APPROVED/],
    ["a superseded one", { ...old, status: "superseded" }, "agent-a", /is SUPERSEDED/],
    ["an expired one", { ...old, expiresAt: new Date(NOW.getTime() - 1) }, "agent-a", /is EXPIRED/],
    ["an auto-approved one", decision({ decision: "auto_approve", submittedBy: "agent-a" }), "agent-a", /is APPROVED/],
  ];
  for (const [what, d, by, why] of refusals) {
    it(`refuses ${what} (FAILED_PRECONDITION)`, () => expect(() => checkSupersede("dec-x", d, by, NOW)).to.throw(FailedPreconditionError, why));
  }
});

describe("policy: the verdicts section", () => {
  it("defaults to SPEC section 9's settings, and they are part of the version", () => {
    expect(PRESETS.default.verdicts).to.deep.equal(DEFAULT_VERDICTS);
    expect(PRESETS.seed.verdicts).to.deep.equal(DEFAULT_VERDICTS);
    const changed = parsePolicyText("default", "verdicts:\n  escalate: { approvals: 3 }\n", PRESETS.default);
    expect(changed.verdicts.escalate).to.deep.equal({ approvals: 3, expires_after: "72h" });
    expect(changed.version).to.not.equal(PRESETS.default.version);
  });

  it("reads durations and writes them in one canonical form, so that two spellings make one version", () => {
    expect([parseDuration("500ms"), parseDuration("30s"), parseDuration("15m"), parseDuration("24h")]).to.deep.equal([500, 30_000, 900_000, 86_400_000]);
    for (const bad of ["", "24", "1.5h", "-1s", "1d", "h", "10 s"]) expect(parseDuration(bad), bad).to.equal(undefined);
    const a = parsePolicyText("p", "verdicts:\n  defer: { expires_after: 1440m }\n", PRESETS.default);
    const b = parsePolicyText("p", "verdicts:\n  defer: { expires_after: 24h }\n", PRESETS.default);
    expect(a.verdicts.defer.expires_after).to.equal("24h");
    expect(a.version).to.equal(b.version);
    expect(a.version).to.equal(parsePolicy("p", {}, PRESETS.default).version);
  });

  const problems: [string, RegExp][] = [
    ["verdicts: { reject: { approvals: 1 } }", /verdicts\.reject: unknown field/],
    ["verdicts: { defer: { approvals: 0 } }", /verdicts\.defer\.approvals: must be between 1 and 100/],
    ["verdicts: { defer: { approvals: 1.5 } }", /verdicts\.defer\.approvals: must be a whole number/],
    ["verdicts: { defer: { expires_after: 1d } }", /verdicts\.defer\.expires_after: "1d" is not a duration/],
    ["verdicts: { defer: { expires_after: 50ms } }", /verdicts\.defer\.expires_after: must be between 100ms and/],
    ["verdicts: { defer: { expires_after: 9000h } }", /verdicts\.defer\.expires_after: must be between/],
    ["verdicts: { defer: { quorum: 2 } }", /verdicts\.defer\.quorum: unknown field/],
  ];
  for (const [yaml, why] of problems) {
    it(`refuses ${yaml}`, () => expect(() => parsePolicyText("p", yaml, PRESETS.default)).to.throw(PolicyError, why));
  }
});
