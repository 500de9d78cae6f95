/**
 * The suggestion every bench review sends, in domain form (for the bare server's canned answers)
 * and as ghz request JSON (proto field names in JSON form). Both describe the same suggestion, so
 * the bare baseline answers with exactly what Council would decide for it.
 */
import { randomUUID } from "node:crypto";
import type { Suggestion } from "../../src/domain/model.js";

const BODY = {
  title: "Tidy the retry helper",
  description: "Replace the hand-rolled loop with the shared helper.",
  reasoning: "Fewer code paths.",
  autoFixable: true,
  fixSteps: ["Apply the patch", "Run the unit tests"],
  filesAffected: ["src/retry.ts"],
};

export function benchSuggestion(id: string = `sug-${randomUUID()}`): Suggestion {
  return { id, ...BODY, risk: "low", impact: "low", estimatedEffort: "small", diff: "" };
}

/**
 * A ReviewSuggestion request for ghz: a fresh suggestion id and request_id on every call ({{.UUID}}
 * is expanded per call), so that each call is a new review, never an idempotent replay.
 */
export function reviewRequestJson(): object {
  return {
    suggestion: {
      id: "sug-{{.UUID}}",
      ...BODY,
      risk: "RISK_LEVEL_LOW",
      impact: "IMPACT_LEVEL_LOW",
      estimatedEffort: "EFFORT_SMALL",
    },
    requestId: "{{.UUID}}",
    dryRun: false,
  };
}
