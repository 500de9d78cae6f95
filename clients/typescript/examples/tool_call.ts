/**
 * Council as an LLM tool, wired as an agent framework wires a tool call: the agent gives the
 * model the `council_review` tool (with its own tools); when the model calls it to propose a
 * change, the handler turns the call's input into a suggestion, guards it, carries the change out
 * only if Council allows it, and hands the verdict back to the model as the tool's result.
 *
 * No model is called here: its replies are two fixed tool calls, in the shape of Anthropic's
 * Messages API (`tool_use` with an `input` object). With OpenAI's Chat Completions, give
 * `openAiTool()` in `tools`, and pass `tool_call.function.arguments` (JSON text) as the input:
 * `suggestionFromToolInput` takes both.
 *
 * Run: COUNCIL_ADDR=127.0.0.1:50051 npx tsx examples/tool_call.ts (COUNCIL_TOKEN: a bearer token)
 */
import { randomUUID } from "node:crypto";
import {
  connect,
  councilReviewTool,
  InvalidArgumentError,
  Outcome,
  suggestionFromToolInput,
  toolResult,
  type CouncilClient,
  type GuardVerdict,
  type SuggestionInput,
} from "../src/index.js";

/** A tool call as the model sends it, and the result the agent sends back. */
interface ToolUse {
  type: "tool_use";
  id: string;
  name: string;
  input: unknown;
}
interface ToolResultBlock {
  type: "tool_result";
  tool_use_id: string;
  content: string;
  is_error?: boolean;
}

/** The change itself: what the agent does once Council allows it (here, it only says so). */
async function applyChange(suggestion: SuggestionInput, verdict: GuardVerdict): Promise<void> {
  console.log(`applying ${suggestion.id}: ${suggestion.title}`);
  for (const condition of verdict.conditions) console.log(`  within the condition: ${condition}`);
}

/**
 * The guard around the action: the handler of the `council_review` tool. A malformed input goes
 * back to the model as an error it can fix (`risk: must be one of …`); a verdict goes back as the
 * tool's result, and the action runs only when it is allowed.
 */
function guardedTool(council: CouncilClient, act: (s: SuggestionInput, v: GuardVerdict) => Promise<void>) {
  return async (call: ToolUse): Promise<ToolResultBlock> => {
    let suggestion: SuggestionInput;
    try {
      suggestion = suggestionFromToolInput(call.input);
    } catch (err) {
      if (!(err instanceof InvalidArgumentError)) throw err;
      return { type: "tool_result", tool_use_id: call.id, content: `invalid council_review input: ${err.details}`, is_error: true };
    }
    const verdict = await council.guard(suggestion, { timeoutMs: 120_000 });
    console.log(`council: ${verdict.allowed ? "allowed" : "not allowed"} (${verdict.outcome}) - ${verdict.reason}`);
    if (verdict.allowed) {
      await act(suggestion, verdict);
      const done = await council.recordOutcome(verdict.decisionId, Outcome.OUTCOME_SUCCESS, { notes: "Applied by the example agent." });
      console.log(`outcome recorded: ${Outcome[done.outcome]}`);
    }
    return { type: "tool_result", tool_use_id: call.id, content: JSON.stringify(toolResult(verdict)) };
  };
}

const address = process.argv[2] ?? process.env.COUNCIL_ADDR ?? "127.0.0.1:50051";
const council = connect(address, { token: process.env.COUNCIL_TOKEN || undefined });
const handlers: Record<string, (call: ToolUse) => Promise<ToolResultBlock>> = { [councilReviewTool.name]: guardedTool(council, applyChange) };

// The agent sends the model its tools with the prompt (`tools: [councilReviewTool, ...its own]`).
console.log(`offering the model the tool ${councilReviewTool.name}`);

// What the model answered, twice: a malformed proposal first (a risk the schema does not know),
// then, told what was wrong, a good one.
const replies: ToolUse[] = [
  { type: "tool_use", id: "toolu_01", name: "council_review", input: { id: "cache-timeout", title: "Raise the cache timeout", risk: "tiny", impact: "low" } },
  {
    type: "tool_use",
    id: "toolu_02",
    name: "council_review",
    input: {
      id: `cache-timeout-${randomUUID().slice(0, 8)}`,
      title: "Raise the cache timeout to 30s",
      description: "Lengthen the upstream cache timeout from 10s to 30s.",
      reasoning: "Upstream is slow at peak; requests time out.",
      risk: "low",
      impact: "medium",
      auto_fixable: true,
      fix_steps: ["Change the setting", "Deploy to staging"],
      files_affected: ["config/cache.yaml"],
      estimated_effort: "small",
    },
  },
];

try {
  for (const call of replies) {
    const handler = handlers[call.name];
    if (!handler) throw new Error(`the model called an unknown tool: ${call.name}`);
    const result = await handler(call);
    // The agent appends this to the conversation and asks the model again.
    console.log(`tool_result ${JSON.stringify(result)}`);
  }
} finally {
  council.close();
}
