/**
 * Council as a tool an LLM can call: the tool definition (the JSON Schema of a suggestion, the
 * same file in every client: clients/tool/council_review.json, copied byte for byte into this
 * package's tool/), the converter from the model's tool input to a suggestion, and the tool's
 * answer to the model. The agent's loop stays its own: when the model calls `council_review`,
 * convert the input, `guard` it, act only if allowed, and hand `toolResult(verdict)` back.
 */
import { readFileSync } from "node:fs";
import type { SuggestionInput } from "./client.js";
import { InvalidArgumentError } from "./errors.js";
import { Effort, ImpactLevel, RiskLevel } from "./gen/council/v1/review.js";
import type { GuardOutcome, GuardVerdict } from "./guard.js";

/** A JSON Schema, as far as the tool definition uses it. */
export interface JsonSchema {
  type?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  required?: string[];
  enum?: string[];
  minLength?: number;
  additionalProperties?: boolean;
}

/** A tool for LLM tool calling, in the shape Anthropic's Messages API takes (`tools: [tool]`). */
export interface ToolDefinition {
  name: string;
  description: string;
  input_schema: JsonSchema;
}

/** The same tool in the shape OpenAI's Chat Completions API takes (`tools: [tool]`). */
export interface OpenAiTool {
  type: "function";
  function: { name: string; description: string; parameters: JsonSchema };
}

/**
 * The `council_review` tool: its name, what it is for, and the JSON Schema of a suggestion (id,
 * title, description, reasoning, risk, impact, auto_fixable, fix_steps, files_affected,
 * estimated_effort, diff; enums as lower-case words). Read from tool/council_review.json, beside src/
 * and dist/ in this package.
 */
export const councilReviewTool: ToolDefinition = JSON.parse(
  readFileSync(new URL("../tool/council_review.json", import.meta.url), "utf8"),
) as ToolDefinition;

/** `tool` (by default `councilReviewTool`) as OpenAI's function tool: the schema goes in `parameters`. */
export function openAiTool(tool: ToolDefinition = councilReviewTool): OpenAiTool {
  return { type: "function", function: { name: tool.name, description: tool.description, parameters: tool.input_schema } };
}

/** What a tool input's field failed to be: an InvalidArgumentError whose `field` names it, for the model to fix. */
const invalid = (field: string, what: string) => new InvalidArgumentError(`${field}: ${what}`);

function enumValue<E extends Record<string, string | number>>(values: E, prefix: string, field: string, input: unknown, words: string[]): E[keyof E] {
  const value = typeof input === "string" ? values[`${prefix}${input.toUpperCase()}` as keyof E] : undefined;
  if (typeof input !== "string" || !words.includes(input) || typeof value !== "number") {
    throw invalid(field, `must be one of ${words.map((w) => JSON.stringify(w)).join(", ")}, not ${JSON.stringify(input)}`);
  }
  return value;
}

function text(input: Record<string, unknown>, field: string, required: boolean): string | undefined {
  const value = input[field];
  if (value === undefined || (value === null && !required)) {
    if (required) throw invalid(field, "is required");
    return undefined;
  }
  if (typeof value !== "string") throw invalid(field, `must be a string, not ${JSON.stringify(value)}`);
  if (required && !value.trim()) throw invalid(field, "must not be empty");
  return value;
}

function texts(input: Record<string, unknown>, field: string): string[] | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) throw invalid(field, "must be a list of strings");
  return value as string[];
}

/**
 * The suggestion a model's `council_review` tool call describes. `input` is the call's input: an
 * object (Anthropic's `tool_use.input`) or its JSON text (OpenAI's `function.arguments`). Checks
 * it against the schema and throws an InvalidArgumentError whose `field` names the first field at
 * fault (`risk: must be one of "trivial", …`), a message to hand back to the model so that it can
 * call again. The server checks the suggestion again (lengths, limits).
 */
export function suggestionFromToolInput(input: unknown): SuggestionInput {
  let value = input;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      throw invalid("input", "is not valid JSON");
    }
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid("input", "must be a JSON object");
  const fields = value as Record<string, unknown>;
  const schema = councilReviewTool.input_schema.properties ?? {};
  const unknown = Object.keys(fields).filter((k) => !(k in schema));
  if (unknown.length) throw invalid(unknown[0]!, `is not a field of the suggestion (the fields are ${Object.keys(schema).join(", ")})`);
  const words = (field: string) => schema[field]?.enum ?? [];
  const autoFixable = fields.auto_fixable;
  if (autoFixable !== undefined && autoFixable !== null && typeof autoFixable !== "boolean") throw invalid("auto_fixable", "must be true or false");
  const effort = fields.estimated_effort;
  return {
    id: text(fields, "id", true)!,
    title: text(fields, "title", true)!,
    description: text(fields, "description", false) ?? "",
    reasoning: text(fields, "reasoning", false) ?? "",
    risk: enumValue(RiskLevel, "RISK_LEVEL_", "risk", fields.risk, words("risk")),
    impact: enumValue(ImpactLevel, "IMPACT_LEVEL_", "impact", fields.impact, words("impact")),
    autoFixable: autoFixable === true,
    fixSteps: texts(fields, "fix_steps") ?? [],
    filesAffected: texts(fields, "files_affected") ?? [],
    estimatedEffort:
      effort === undefined || effort === null ? Effort.EFFORT_UNSPECIFIED : enumValue(Effort, "EFFORT_", "estimated_effort", effort, words("estimated_effort")),
    diff: text(fields, "diff", false) ?? "",
  };
}

/** The tool's answer to the model: whether it may go ahead, why, and what it must respect. */
export interface ToolResult {
  allowed: boolean;
  outcome: GuardOutcome;
  reason: string;
  decision_id: string;
  conditions: string[];
}

/** The guard's verdict as the tool's result for the model (JSON-ready, snake_case like the input). */
export function toolResult(verdict: GuardVerdict): ToolResult {
  return {
    allowed: verdict.allowed,
    outcome: verdict.outcome,
    reason: verdict.reason,
    decision_id: verdict.decisionId,
    conditions: [...verdict.conditions],
  };
}
