import { expect } from "chai";
import { status } from "@grpc/grpc-js";
import { PermissionDeniedError } from "../../src/domain/errors.js";
import { ANONYMOUS, mayRecordOutcome, mayResolve, principal, ROLES, type Role } from "../../src/domain/principal.js";
import { CouncilServiceService } from "../../src/gen/council/v1/council_service.js";
import { authorize, METHOD_ROLES, rolesFor } from "../../src/server/auth/roles.js";
import { toGrpcError } from "../../src/server/status.js";

/** SPEC §8's table, written out again here so that a change to either one is noticed. */
const SPEC_TABLE: [string, Role[]][] = [
  ["ReviewSuggestion", ["agent", "operator"]],
  ["RecordOutcome", ["agent", "operator"]],
  ["ResolveDecision", ["approver"]],
  ["ServeReviews", ["reviewer"]],
  ["GetDecision", [...ROLES]],
  ["ListDecisions", [...ROLES]],
  ["AwaitDecision", [...ROLES]],
  ["GetSummary", [...ROLES]],
  ["ListLessons", [...ROLES]],
  ["ListReviewers", [...ROLES]],
  ["WatchDecisions", [...ROLES]],
];

function denial(f: () => void): string {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(PermissionDeniedError);
    expect(toGrpcError(err).code).to.equal(status.PERMISSION_DENIED);
    return (err as Error).message;
  }
  throw new Error("expected PermissionDeniedError");
}

describe("roles table", () => {
  it("is SPEC §8's table, no more and no less", () => {
    expect(Object.keys(METHOD_ROLES).sort()).to.deep.equal(SPEC_TABLE.map(([m]) => m).sort());
    for (const [method, roles] of SPEC_TABLE) expect([...rolesFor(method)!].sort(), method).to.deep.equal([...roles].sort());
  });

  it("covers every RPC the service defines", () => {
    for (const def of Object.values(CouncilServiceService)) {
      const method = def.path.split("/").pop()!;
      expect(rolesFor(method), `${method} is missing from METHOD_ROLES`).to.not.equal(undefined);
    }
  });

  for (const [method, allowed] of SPEC_TABLE) {
    for (const role of ROLES) {
      const ok = allowed.includes(role);
      it(`${ok ? "lets" : "refuses"} a principal holding only ${role} call ${method}`, () => {
        const p = principal("someone", [role]);
        if (ok) expect(() => authorize(p, method)).to.not.throw();
        else expect(denial(() => authorize(p, method))).to.match(new RegExp(`^${method} needs the role `));
      });
    }
  }

  it("names the role or roles needed", () => {
    const reviewer = principal("r", ["reviewer"]);
    const agent = principal("a", ["agent"]);
    expect(denial(() => authorize(reviewer, "ReviewSuggestion"))).to.equal("ReviewSuggestion needs the role agent or operator");
    expect(denial(() => authorize(agent, "ResolveDecision"))).to.equal("ResolveDecision needs the role approver");
    expect(denial(() => authorize(principal("none", []), "GetSummary"))).to.equal("GetSummary needs the role agent, operator, approver or reviewer");
  });

  it("lets anonymous (auth off) call everything, and a principal with several roles use any of them", () => {
    for (const [method] of SPEC_TABLE) expect(() => authorize(ANONYMOUS, method)).to.not.throw();
    const both = principal("b", ["approver", "agent"]);
    expect(() => authorize(both, "ReviewSuggestion")).to.not.throw();
    expect(() => authorize(both, "ResolveDecision")).to.not.throw();
  });

  it("denies a method it does not know, even to anonymous, and ignores inherited names", () => {
    expect(denial(() => authorize(ANONYMOUS, "DeleteEverything"))).to.equal("DeleteEverything is not open to any role");
    expect(denial(() => authorize(ANONYMOUS, "toString"))).to.equal("toString is not open to any role");
    expect(denial(() => authorize(ANONYMOUS, "__proto__"))).to.equal("__proto__ is not open to any role");
  });

  it("lets an agent record outcomes only on its own decisions, an operator on any", () => {
    expect(mayRecordOutcome(principal("bot", ["agent"]), "bot")).to.equal(true);
    expect(mayRecordOutcome(principal("bot", ["agent"]), "other-bot")).to.equal(false);
    expect(mayRecordOutcome(principal("ops", ["operator"]), "other-bot")).to.equal(true);
    expect(mayRecordOutcome(principal("alice", ["approver"]), "alice")).to.equal(false);
    expect(mayRecordOutcome(ANONYMOUS, "anonymous")).to.equal(true);
  });

  it("never lets an approver resolve its own decision, except anonymous with auth off", () => {
    expect(mayResolve(principal("alice", ["approver"]), "bot")).to.equal(true);
    expect(mayResolve(principal("alice", ["approver", "agent"]), "alice")).to.equal(false);
    expect(mayResolve(principal("bot", ["agent"]), "other")).to.equal(false);
    expect(mayResolve(ANONYMOUS, "anonymous")).to.equal(true);
  });
});
