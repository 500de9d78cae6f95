/**
 * The tool definition for LLM tool calling and its converter; then the example that wires the
 * guard around an action as an agent framework's tool call, run against a live server
 * (COUNCIL_TEST_ADDR). That this package's tool/council_review.json is byte for byte the
 * repository's clients/tool/council_review.json is tested at the root (test/tool_definition.test.ts).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { expect } from "chai";
import {
  councilReviewTool,
  Effort,
  ImpactLevel,
  InvalidArgumentError,
  openAiTool,
  RiskLevel,
  suggestionFromToolInput,
  toolResult,
  type GuardVerdict,
} from "../src/index.js";

const ADDR = process.env.COUNCIL_TEST_ADDR;
if (!ADDR) throw new Error("set COUNCIL_TEST_ADDR to the host:port of a running Council server");

const full = {
  id: "cache-timeout",
  title: "Raise the cache timeout",
  description: "From 10s to 30s.",
  reasoning: "Upstream is slow at peak.",
  risk: "low",
  impact: "transformative",
  auto_fixable: true,
  fix_steps: ["Change the setting", "Deploy"],
  files_affected: ["config/cache.yaml"],
  estimated_effort: "epic",
  diff: "--- a/config/cache.yaml\n+++ b/config/cache.yaml\n@@ -1 +1 @@\n-timeout: 10s\n+timeout: 30s\n",
};

/** The InvalidArgumentError `suggestionFromToolInput(input)` throws. */
function refusal(input: unknown): InvalidArgumentError {
  try {
    suggestionFromToolInput(input);
  } catch (err) {
    expect(err).to.be.instanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

describe("TypeScript client: the council_review tool", () => {
  it("is the package's copy of the canonical definition: a name, a description, and the JSON Schema of a suggestion", () => {
    const file = JSON.parse(readFileSync(new URL("../tool/council_review.json", import.meta.url), "utf8")) as unknown;
    expect(councilReviewTool).to.deep.equal(file);
    expect(councilReviewTool.name).to.equal("council_review");
    expect(councilReviewTool.input_schema.required).to.deep.equal(["id", "title", "risk", "impact"]);
    expect(openAiTool()).to.deep.equal({
      type: "function",
      function: { name: "council_review", description: councilReviewTool.description, parameters: councilReviewTool.input_schema },
    });
  });

  it("converts a tool input (an object, or its JSON text) to a suggestion", () => {
    const expected = {
      id: "cache-timeout",
      title: "Raise the cache timeout",
      description: "From 10s to 30s.",
      reasoning: "Upstream is slow at peak.",
      risk: RiskLevel.RISK_LEVEL_LOW,
      impact: ImpactLevel.IMPACT_LEVEL_TRANSFORMATIVE,
      autoFixable: true,
      fixSteps: ["Change the setting", "Deploy"],
      filesAffected: ["config/cache.yaml"],
      estimatedEffort: Effort.EFFORT_EPIC,
      diff: "--- a/config/cache.yaml\n+++ b/config/cache.yaml\n@@ -1 +1 @@\n-timeout: 10s\n+timeout: 30s\n",
    };
    expect(suggestionFromToolInput(full)).to.deep.equal(expected);
    expect(suggestionFromToolInput(JSON.stringify(full))).to.deep.equal(expected);
    // Only the required fields: the rest empty, as the proto's defaults.
    expect(suggestionFromToolInput({ id: "a", title: "b", risk: "critical", impact: "minimal" })).to.deep.equal({
      id: "a",
      title: "b",
      description: "",
      reasoning: "",
      risk: RiskLevel.RISK_LEVEL_CRITICAL,
      impact: ImpactLevel.IMPACT_LEVEL_MINIMAL,
      autoFixable: false,
      fixSteps: [],
      filesAffected: [],
      estimatedEffort: Effort.EFFORT_UNSPECIFIED,
      diff: "",
    });
  });

  it("refuses an input the schema does not allow, naming the field, for the model to fix", () => {
    const cases: [unknown, string, RegExp][] = [
      [{ ...full, risk: "tiny" }, "risk", /must be one of "trivial", "low", "medium", "high", "critical", not "tiny"/],
      [{ ...full, risk: "LOW" }, "risk", /must be one of/],
      [{ ...full, impact: undefined }, "impact", /must be one of/],
      [{ ...full, estimated_effort: "huge" }, "estimated_effort", /must be one of "small", "medium", "large", "epic"/],
      [{ ...full, title: "  " }, "title", /must not be empty/],
      [{ ...full, id: undefined }, "id", /is required/],
      [{ ...full, id: 7 }, "id", /must be a string/],
      [{ ...full, fix_steps: "deploy" }, "fix_steps", /must be a list of strings/],
      [{ ...full, auto_fixable: "yes" }, "auto_fixable", /must be true or false/],
      [{ ...full, patch: "--- a" }, "patch", /is not a field of the suggestion/],
      [{ ...full, diff: ["--- a"] }, "diff", /must be a string/],
      ["{not json", "input", /not valid JSON/],
      [[full], "input", /must be a JSON object/],
    ];
    for (const [input, field, message] of cases) {
      const err = refusal(input);
      expect(err.field, JSON.stringify(input)).to.equal(field);
      expect(err.details, JSON.stringify(input)).to.match(message);
    }
  });

  it("answers the model with the verdict: allowed or not, why, and the conditions", () => {
    const verdict = { allowed: false, outcome: "rejected", reason: 'rejected by alice: "not on a Friday"', decisionId: "dec-1", conditions: ["a"] };
    expect(toolResult(verdict as GuardVerdict)).to.deep.equal({
      allowed: false,
      outcome: "rejected",
      reason: 'rejected by alice: "not on a Friday"',
      decision_id: "dec-1",
      conditions: ["a"],
    });
  });

  it("the example wires the guard around the action as a framework's tool call: a bad input goes back to the model, a good one is guarded, applied, and answered", async function () {
    this.timeout(60_000);
    const cwd = new URL("..", import.meta.url).pathname;
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ["--import", "tsx", "examples/tool_call.ts", ADDR], { cwd, timeout: 50_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    expect(code, `${stdout}\n${stderr}`).to.equal(0);
    const results = stdout
      .split("\n")
      .filter((l) => l.startsWith("tool_result "))
      .map((l) => JSON.parse(l.slice("tool_result ".length)) as { tool_use_id: string; content: string; is_error?: boolean });
    expect(results.map((r) => r.tool_use_id)).to.deep.equal(["toolu_01", "toolu_02"]);
    expect(results[0]!.is_error).to.equal(true);
    expect(results[0]!.content).to.match(/^invalid council_review input: risk: must be one of/);
    const answer = JSON.parse(results[1]!.content) as { allowed: boolean; outcome: string; decision_id: string };
    expect(answer).to.include({ allowed: true, outcome: "approved" });
    expect(answer.decision_id).to.match(/^dec-/);
    expect(stdout).to.match(/^applying cache-timeout-/m);
    expect(stdout).to.match(/^outcome recorded: OUTCOME_SUCCESS$/m);
  });
});
