/**
 * The suggestion of `council review`: read from a YAML or JSON file (or `-`, standard input), with
 * flags on top. Fields take their proto names in either JSON form (`files_affected` or
 * `filesAffected`); enums take the full name (`RISK_LEVEL_HIGH`) or the short one (`high`). An
 * unknown field or value is a usage error naming it, so that a typo never reaches the council as a
 * default.
 */
import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import { parse as parseYaml } from "yaml";
import type { SuggestionInput } from "../clients/typescript/src/client.js";
import { Effort, ImpactLevel, RiskLevel } from "../clients/typescript/src/gen/council/v1/review.js";
import { UsageError } from "./errors.js";

type EnumNames = Record<string, number | string>;

/** An enum's value from `RISK_LEVEL_HIGH`, `high` or `HIGH` (UNSPECIFIED is not a choice). */
export function enumValue(names: EnumNames, prefix: string, field: string, raw: unknown): number {
  const text = String(raw).trim().toUpperCase().replace(/-/g, "_");
  const full = text.startsWith(prefix) ? text : `${prefix}${text}`;
  const value = names[full];
  if (typeof value !== "number" || full.endsWith("_UNSPECIFIED")) {
    throw new UsageError(`${field}: ${JSON.stringify(raw)} is not one of ${enumChoices(names, prefix).join(", ")}`);
  }
  return value;
}

/** The short names of an enum's values, for help and errors: `trivial, low, medium, …`. */
export function enumChoices(names: EnumNames, prefix: string): string[] {
  return Object.keys(names)
    .filter((k) => k.startsWith(prefix) && !k.endsWith("_UNSPECIFIED"))
    .map((k) => k.slice(prefix.length).toLowerCase());
}

/** The suggestion's fields, by every name a file may use, and how each is read. */
const FIELDS: Record<string, { key: keyof SuggestionInput; read: (v: unknown, field: string) => unknown }> = {};
const text = (v: unknown, field: string) => {
  if (typeof v !== "string" && typeof v !== "number") throw new UsageError(`${field}: must be a string`);
  return String(v);
};
const list = (v: unknown, field: string) => {
  if (!Array.isArray(v)) throw new UsageError(`${field}: must be a list of strings`);
  return v.map((x, i) => text(x, `${field}[${i}]`));
};
const bool = (v: unknown, field: string) => {
  if (typeof v !== "boolean") throw new UsageError(`${field}: must be true or false`);
  return v;
};
function field(names: string[], key: keyof SuggestionInput, read: (v: unknown, field: string) => unknown) {
  for (const n of names) FIELDS[n] = { key, read };
}
field(["id"], "id", text);
field(["title"], "title", text);
field(["description"], "description", text);
field(["reasoning"], "reasoning", text);
field(["risk"], "risk", (v, f) => enumValue(RiskLevel, "RISK_LEVEL_", f, v));
field(["impact"], "impact", (v, f) => enumValue(ImpactLevel, "IMPACT_LEVEL_", f, v));
field(["auto_fixable", "autoFixable"], "autoFixable", bool);
field(["fix_steps", "fixSteps"], "fixSteps", list);
field(["files_affected", "filesAffected"], "filesAffected", list);
field(["estimated_effort", "estimatedEffort"], "estimatedEffort", (v, f) => enumValue(Effort, "EFFORT_", f, v));
field(["diff"], "diff", text);

/** A suggestion document (already parsed from YAML or JSON) as the client's input. */
export function suggestionFromDocument(doc: unknown, source: string): Partial<SuggestionInput> {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new UsageError(`${source}: must hold one suggestion (a mapping of its fields)`);
  }
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(doc)) {
    const f = FIELDS[name];
    if (!f) throw new UsageError(`${source}: unknown field ${JSON.stringify(name)} (fields: ${[...new Set(Object.keys(FIELDS))].join(", ")})`);
    if (value === null || value === undefined) continue;
    out[f.key] = f.read(value, `${source}: ${name}`);
  }
  return out as Partial<SuggestionInput>;
}

/** Parses a suggestion file's text (YAML, of which JSON is a subset). */
export function parseSuggestionText(body: string, source: string): Partial<SuggestionInput> {
  let doc: unknown;
  try {
    doc = parseYaml(body);
  } catch (err) {
    throw new UsageError(`${source}: not YAML or JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  return suggestionFromDocument(doc, source);
}

/** The most a suggestion's diff may hold (SPEC section 11): the server refuses a longer one. */
export const DIFF_LIMIT_BYTES = 1024 * 1024;

/**
 * The diff of `--diff-file` from the file's bytes (`source` names it in errors): UTF-8 text of at
 * most 1 MiB, checked here so that a wrong file is a usage error before anything is sent (the
 * server would refuse it too, naming `suggestion.diff`).
 */
export function diffFromBytes(bytes: Uint8Array, source: string): string {
  if (bytes.length > DIFF_LIMIT_BYTES) {
    throw new UsageError(`--diff-file: ${source} is ${bytes.length} bytes; a diff may be at most ${DIFF_LIMIT_BYTES} (1 MiB)`);
  }
  if (!isUtf8(bytes)) throw new UsageError(`--diff-file: ${source} is not UTF-8 text`);
  return Buffer.from(bytes).toString("utf8");
}

/** The review flags that set suggestion fields. */
export interface SuggestionFlags {
  id?: string;
  title?: string;
  description?: string;
  reasoning?: string;
  risk?: string;
  impact?: string;
  "auto-fixable"?: boolean;
  "fix-step"?: string[];
  file?: string[];
  effort?: string;
}

/**
 * The suggestion to review: the file's fields (if any), then the flags on top. Without an id, one
 * is made (`cli-` and 8 hex digits); title, risk and impact are required.
 */
export function buildSuggestion(fromFile: Partial<SuggestionInput>, flags: SuggestionFlags): SuggestionInput {
  const s: Partial<SuggestionInput> = { ...fromFile };
  if (flags.id !== undefined) s.id = flags.id;
  if (flags.title !== undefined) s.title = flags.title;
  if (flags.description !== undefined) s.description = flags.description;
  if (flags.reasoning !== undefined) s.reasoning = flags.reasoning;
  if (flags.risk !== undefined) s.risk = enumValue(RiskLevel, "RISK_LEVEL_", "--risk", flags.risk);
  if (flags.impact !== undefined) s.impact = enumValue(ImpactLevel, "IMPACT_LEVEL_", "--impact", flags.impact);
  if (flags["auto-fixable"] !== undefined) s.autoFixable = flags["auto-fixable"];
  if (flags["fix-step"]?.length) s.fixSteps = flags["fix-step"];
  if (flags.file?.length) s.filesAffected = flags.file;
  if (flags.effort !== undefined) s.estimatedEffort = enumValue(Effort, "EFFORT_", "--effort", flags.effort);
  const missing = (["title", "risk", "impact"] as const).filter((k) => s[k] === undefined || s[k] === "");
  if (missing.length) {
    throw new UsageError(`the suggestion needs ${missing.join(", ")} (from a file, or --${missing.join(", --")})`);
  }
  if (!s.id) s.id = `cli-${randomUUID().slice(0, 8)}`;
  return s as SuggestionInput;
}
