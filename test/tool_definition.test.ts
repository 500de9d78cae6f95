/**
 * The tool definition for LLM tool calling (issue 11): one canonical file,
 * clients/tool/council_review.json, copied into each client (a package cannot reach outside its
 * own directory once installed). Every copy must be byte for byte the canonical file, and the
 * canonical file must describe the Suggestion message as the proto has it now: one property per
 * field (snake_case), the enums as the lower-case words of their values, nothing else.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { expect } from "chai";
import { Effort, ImpactLevel, RiskLevel, Suggestion } from "../src/gen/council/v1/review.js";

const ROOT = new URL("..", import.meta.url).pathname;
const CANONICAL = join(ROOT, "clients/tool/council_review.json");
/** Directories that hold installed or built files, not the clients' own. */
const SKIP = new Set(["node_modules", "dist", "build", "__pycache__", ".git"]);

/** Every file named council_review.json under clients/, but the canonical one. */
function copies(dir = join(ROOT, "clients")): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith(".venv")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...copies(path));
    else if (entry.name === "council_review.json" && path !== CANONICAL) found.push(path);
  }
  return found;
}

interface Schema {
  type?: string;
  enum?: string[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean;
}

/** The lower-case words of an enum's values: RISK_LEVEL_LOW is "low"; UNSPECIFIED is left out. */
function words(values: Record<string, string | number>, prefix: string): string[] {
  return Object.keys(values)
    .filter((k) => Number.isNaN(Number(k)) && k !== `${prefix}UNSPECIFIED` && k !== "UNRECOGNIZED")
    .map((k) => k.slice(prefix.length).toLowerCase());
}

describe("the council_review tool definition", () => {
  it("is copied byte for byte into each client", () => {
    const canonical = readFileSync(CANONICAL);
    const found = copies().map((p) => relative(ROOT, p));
    for (const client of ["clients/typescript/", "clients/python/", "clients/go/"]) {
      expect(found.some((p) => p.startsWith(client)), `a copy in ${client}`).to.equal(true);
    }
    for (const path of found) expect(readFileSync(join(ROOT, path)).equals(canonical), `${path} differs from clients/tool/council_review.json`).to.equal(true);
  });

  it("is the Suggestion message as the proto has it: every field, its type, the enums' words", () => {
    const tool = JSON.parse(readFileSync(CANONICAL, "utf8")) as { name: string; description: string; input_schema: Schema };
    expect(Object.keys(tool)).to.deep.equal(["name", "description", "input_schema"]);
    expect(tool.name).to.match(/^[a-z_]{1,64}$/);
    expect(tool.description.length).to.be.within(50, 1024);
    const schema = tool.input_schema;
    expect(schema.type).to.equal("object");
    expect(schema.additionalProperties).to.equal(false);
    const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const properties = schema.properties ?? {};
    expect(Object.keys(properties).map(camel)).to.deep.equal(Object.keys(Suggestion.fromPartial({})));
    // What the server refuses without: SPEC (id and title not empty, risk and impact set).
    expect(schema.required).to.deep.equal(["id", "title", "risk", "impact"]);
    const enums: Record<string, string[]> = {
      risk: words(RiskLevel, "RISK_LEVEL_"),
      impact: words(ImpactLevel, "IMPACT_LEVEL_"),
      estimated_effort: words(Effort, "EFFORT_"),
    };
    const defaults = Suggestion.fromPartial({}) as unknown as Record<string, unknown>;
    for (const [name, property] of Object.entries(properties)) {
      const zero = defaults[camel(name)];
      if (name in enums) expect(property, name).to.deep.include({ type: "string", enum: enums[name] });
      else if (Array.isArray(zero)) expect(property, name).to.deep.include({ type: "array", items: { type: "string" } });
      else expect(property.type, name).to.equal(typeof zero);
    }
  });
});
