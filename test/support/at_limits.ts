/** Suggestions as large as the documented limits allow (src/domain/limits.ts): about 2.6 MB each. */
import { LIMITS } from "../../src/domain/limits.js";
import type { Suggestion } from "../../src/domain/model.js";
import { ImpactLevel, RiskLevel, Effort, type Suggestion as WireSuggestion } from "../../src/gen/council/v1/review.js";
import { unique } from "./fixtures.js";

/** `text` repeated to exactly `bytes` UTF-8 bytes (`text` is ASCII). */
const fill = (text: string, bytes: number) => text.repeat(Math.ceil(bytes / text.length)).slice(0, bytes);

export function suggestionAtLimits(): Suggestion {
  const id = unique("sug");
  return {
    id: id + fill("i", LIMITS.idBytes - id.length),
    title: fill("Tidy the retry helper ", LIMITS.titleBytes),
    description: fill("Replace the hand-rolled loop. ", LIMITS.textBytes),
    reasoning: fill("Fewer code paths. ", LIMITS.textBytes),
    risk: "low",
    impact: "low",
    autoFixable: true,
    fixSteps: Array.from({ length: LIMITS.fixSteps }, (_, i) => fill(`step ${i} `, LIMITS.fixStepBytes)),
    filesAffected: Array.from({ length: LIMITS.filesAffected }, (_, i) => fill(`src/file${i}/`, LIMITS.fileBytes)),
    estimatedEffort: "small",
    // No character that JSON escapes (like the fields above), so that the Redis store's size
    // estimate from stored lengths is exact, which the page budget tests count on.
    diff: fill("+ retry(fn); ", LIMITS.diffBytes),
  };
}

export function wireSuggestionAtLimits(): WireSuggestion {
  const s = suggestionAtLimits();
  return {
    ...s,
    risk: RiskLevel.RISK_LEVEL_LOW,
    impact: ImpactLevel.IMPACT_LEVEL_LOW,
    estimatedEffort: Effort.EFFORT_SMALL,
  };
}
