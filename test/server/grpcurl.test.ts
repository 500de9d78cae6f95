import { expect } from "chai";
import { grpcurlPath, run } from "../support/tools.js";
import { startCouncil, type Running } from "../support/server.js";

describe("grpcurl (the real binary) with reflection and no proto files", () => {
  let c: Running;
  let grpcurl: string;
  before(async () => {
    grpcurl = grpcurlPath();
    c = await startCouncil();
  });
  after(() => c.stop());

  const g = (...args: string[]) => run(grpcurl, ["-plaintext", ...args], { timeoutMs: 20_000 });

  it("lists every service", async () => {
    const r = await g(c.addr, "list");
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.trim().split("\n").sort()).to.deep.equal([
      "council.v1.CouncilService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
    ]);
  });

  it("describes the service, its messages and map fields, with their comments", async () => {
    const svc = await g(c.addr, "describe", "council.v1.CouncilService");
    expect(svc.code, svc.stderr).to.equal(0);
    expect(svc.stdout).to.include("rpc ReviewSuggestion ( .council.v1.ReviewSuggestionRequest ) returns ( stream .council.v1.ReviewSuggestionResponse )");
    expect(svc.stdout).to.include("// CouncilService lets agents submit suggestions");
    const summary = await g(c.addr, "describe", "council.v1.GetSummaryResponse");
    expect(summary.code, summary.stderr).to.equal(0);
    expect(summary.stdout).to.include("map<string, int64> by_type = 2;");
    const decision = await g(c.addr, "describe", "council.v1.Decision");
    expect(decision.stdout).to.include(".google.protobuf.Timestamp decided_at = 9;");
  });

  it("streams a review, reads it back, and checks health", async () => {
    const request = {
      suggestion: {
        id: "sug-grpcurl",
        title: "Raise the cache timeout",
        description: "Lengthen the cache timeout to 30s.",
        risk: "RISK_LEVEL_MEDIUM",
        impact: "IMPACT_LEVEL_LOW",
        fix_steps: ["Change the setting", "Deploy to staging"],
        estimated_effort: "EFFORT_SMALL",
      },
      request_id: "grpcurl-1",
    };
    const r = await g("-d", JSON.stringify(request), c.addr, "council.v1.CouncilService/ReviewSuggestion");
    expect(r.code, r.stderr).to.equal(0);
    const events = r.stdout
      .split(/\n(?=\{)/)
      .filter((chunk) => chunk.trim())
      .map((chunk) => JSON.parse(chunk));
    expect(events).to.have.length(6);
    expect(events.slice(0, 5).map((e) => e.vote.reviewerRole)).to.deep.equal([
      "REVIEWER_ROLE_SAFETY",
      "REVIEWER_ROLE_PERFORMANCE",
      "REVIEWER_ROLE_ARCHITECTURE",
      "REVIEWER_ROLE_COMPLIANCE",
      "REVIEWER_ROLE_QUALITY",
    ]);
    expect(events[1].vote.concerns).to.deep.equal(["Timeout changes may affect system responsiveness"]);
    expect(events[5].decision.decision).to.equal("DECISION_TYPE_HUMAN_APPROVE");
    const got = await g("-d", JSON.stringify({ id: events[5].decisionId }), c.addr, "council.v1.CouncilService/GetDecision");
    expect(got.code, got.stderr).to.equal(0);
    expect(JSON.parse(got.stdout).decision.id).to.equal(events[5].decisionId);
    const health = await g(c.addr, "grpc.health.v1.Health/Check");
    expect(JSON.parse(health.stdout)).to.deep.equal({ status: "SERVING" });
  });

  it("shows a clear INVALID_ARGUMENT for bad input", async () => {
    const r = await g("-d", JSON.stringify({ suggestion: { id: "x", title: " ", risk: "RISK_LEVEL_LOW", impact: "IMPACT_LEVEL_LOW" } }), c.addr, "council.v1.CouncilService/ReviewSuggestion");
    expect(r.code).to.not.equal(0);
    expect(r.stderr).to.include("Code: InvalidArgument");
    expect(r.stderr).to.include("suggestion.title: must not be empty or blank");
  });
});
