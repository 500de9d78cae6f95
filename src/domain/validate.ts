/** Checks of client input against SPEC section 2 and the size limits; each failure names its field. */
import { InvalidArgumentError } from "./errors.js";
import { LIMITS, utf8Bytes } from "./limits.js";
import type { Suggestion } from "./model.js";

/** Rejects a string over `maxBytes` UTF-8 bytes; with `required`, also an empty or blank one. */
export function checkString(field: string, value: string, maxBytes: number, required = false): void {
  if (required && value.trim() === "") throw new InvalidArgumentError(field, "must not be empty or blank");
  const size = utf8Bytes(value);
  if (size > maxBytes) throw new InvalidArgumentError(field, `is ${size} bytes; the limit is ${maxBytes}`);
}

function checkList(field: string, values: string[], maxItems: number, maxItemBytes: number): void {
  if (values.length > maxItems) {
    throw new InvalidArgumentError(field, `has ${values.length} items; the limit is ${maxItems}`);
  }
  values.forEach((v, i) => checkString(`${field}[${i}]`, v, maxItemBytes));
}

/** Validates a suggestion's strings and lists (enums are checked where the wire values are read). */
export function validateSuggestion(s: Suggestion, field = "suggestion"): void {
  checkString(`${field}.id`, s.id, LIMITS.idBytes, true);
  checkString(`${field}.title`, s.title, LIMITS.titleBytes, true);
  checkString(`${field}.description`, s.description, LIMITS.textBytes);
  checkString(`${field}.reasoning`, s.reasoning, LIMITS.textBytes);
  checkList(`${field}.fix_steps`, s.fixSteps, LIMITS.fixSteps, LIMITS.fixStepBytes);
  checkList(`${field}.files_affected`, s.filesAffected, LIMITS.filesAffected, LIMITS.fileBytes);
  checkString(`${field}.diff`, s.diff, LIMITS.diffBytes);
}

/** Resolves a requested page size: 0 means the default, larger than the maximum is capped. */
export function pageSize(field: string, requested: number): number {
  if (!Number.isInteger(requested) || requested < 0) throw new InvalidArgumentError(field, "must not be negative");
  if (requested === 0) return LIMITS.defaultPageSize;
  return Math.min(requested, LIMITS.maxPageSize);
}
