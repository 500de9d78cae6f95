/**
 * The CLI's output for people, without a server: tables cut to the width with `…`, relative
 * times, when colours are on, and how a suggestion file is read.
 */
import { expect } from "chai";
import { RiskLevel, ImpactLevel, Effort } from "../../clients/typescript/src/gen/council/v1/review.js";
import { parseDuration } from "../../cli/context.js";
import { UsageError } from "../../cli/errors.js";
import { colourWanted, cut, outputWidth, painter, relativeTime, table, wrap } from "../../cli/render.js";
import { buildSuggestion, parseSuggestionText } from "../../cli/suggestion.js";

const plain = painter(false);

describe("CLI rendering", () => {
  it("relative times read the way people say them, past and future", () => {
    const now = new Date("2026-03-01T12:00:00Z");
    const at = (s: number) => new Date(now.getTime() + s * 1000);
    const rows: [number, string][] = [
      [0, "just now"],
      [-3, "just now"],
      [-45, "45 s ago"],
      [-180, "3 min ago"],
      [-3599, "59 min ago"],
      [-5 * 3600, "5 h ago"],
      [-47 * 3600, "47 h ago"],
      [-3 * 86_400, "3 d ago"],
      [23 * 3600 + 59 * 60, "in 23 h"],
      [90, "in 1 min"],
      [-90 * 86_400, "2025-12-01"],
    ];
    for (const [s, text] of rows) expect(relativeTime(at(s), now), `${s} s`).to.equal(text);
    expect(relativeTime(undefined, now)).to.equal("-");
  });

  it("cuts long text with … and wraps words to the width", () => {
    expect(cut("abcdef", 6)).to.equal("abcdef");
    expect(cut("abcdefg", 6)).to.equal("abcde…");
    expect(cut("ünïcödé", 4)).to.equal("ünï…");
    expect(wrap("one two three four", 9)).to.deep.equal(["one two", "three", "four"]);
  });

  it("a table fits its width: the flexible column is cut first, ids never", () => {
    const id = "dec-0123456789abcdef01234567";
    const rows = [[id, "HUMAN_APPROVE", "x".repeat(200), "a very long submitter name indeed"]];
    const columns = [
      { header: "ID", min: Infinity },
      { header: "TYPE" },
      { header: "TITLE", flex: true, min: 8 },
      { header: "SUBMITTER", min: 6, max: 16 },
    ];
    for (const width of [100, 80, 60]) {
      const lines = table(columns, rows, width, plain);
      for (const l of lines) expect(l.length, l).to.be.at.most(width);
      expect(lines[1]).to.include(id);
      expect(lines[1]).to.include("…");
    }
    const short = table(columns, [[id, "DEFER", "Tidy", "ops"]], 100, plain);
    expect(short[1]).to.equal(`${id}  DEFER  Tidy   ops`);
  });

  it("colours only on a terminal, never with NO_COLOR, on a pipe with FORCE_COLOR", () => {
    expect(colourWanted(true, {})).to.equal(true);
    expect(colourWanted(false, {})).to.equal(false);
    expect(colourWanted(true, { NO_COLOR: "1" })).to.equal(false);
    expect(colourWanted(true, { NO_COLOR: "" }), "an empty NO_COLOR is not set (no-color.org)").to.equal(true);
    expect(colourWanted(true, { TERM: "dumb" })).to.equal(false);
    expect(colourWanted(false, { FORCE_COLOR: "1" })).to.equal(true);
    expect(colourWanted(false, { FORCE_COLOR: "0" })).to.equal(false);
    expect(colourWanted(true, { FORCE_COLOR: "1", NO_COLOR: "1" }), "NO_COLOR wins").to.equal(false);
    expect(painter(true).red("x")).to.equal("\u001b[31mx\u001b[39m");
    expect(plain.red("x")).to.equal("x");
  });

  it("output is 100 columns wide, or a narrower terminal's width", () => {
    expect(outputWidth(undefined)).to.equal(100);
    expect(outputWidth(200)).to.equal(100);
    expect(outputWidth(72)).to.equal(72);
  });

  it("durations take a unit", () => {
    expect(parseDuration("500ms", "--timeout")).to.equal(500);
    expect(parseDuration("30s", "--timeout")).to.equal(30_000);
    expect(parseDuration("15m", "--timeout")).to.equal(900_000);
    expect(parseDuration("2h", "--timeout")).to.equal(7_200_000);
    for (const bad of ["30", "5x", "-1s", "0s", ""]) expect(() => parseDuration(bad, "--timeout"), bad).to.throw(UsageError);
  });

  it("a suggestion file takes either JSON name of a field and short or full enum names", () => {
    const yaml = [
      "id: s-1",
      "title: Add retry",
      "risk: high",
      "impact: IMPACT_LEVEL_LOW",
      "auto_fixable: true",
      "filesAffected: [a.ts, b.ts]",
      "fix_steps: [patch]",
      "estimated_effort: Medium",
    ].join("\n");
    const s = buildSuggestion(parseSuggestionText(yaml, "s.yaml"), {});
    expect(s).to.deep.include({
      id: "s-1",
      title: "Add retry",
      risk: RiskLevel.RISK_LEVEL_HIGH,
      impact: ImpactLevel.IMPACT_LEVEL_LOW,
      autoFixable: true,
      filesAffected: ["a.ts", "b.ts"],
      fixSteps: ["patch"],
      estimatedEffort: Effort.EFFORT_MEDIUM,
    });
    const json = buildSuggestion(parseSuggestionText('{"title": "x", "risk": "low", "impact": "low"}', "-"), { risk: "critical", file: ["c.ts"] });
    expect(json.risk, "flags win over the file").to.equal(RiskLevel.RISK_LEVEL_CRITICAL);
    expect(json.filesAffected).to.deep.equal(["c.ts"]);
    expect(json.id, "an id is made when none is given").to.match(/^cli-[0-9a-f]{8}$/);
  });

  it("a suggestion file with an unknown field or value is a usage error naming it", () => {
    const bad: [string, RegExp][] = [
      ["title: x\nrisk: low\nimpact: low\nriks: high", /unknown field "riks"/],
      ["title: x\nrisk: hgh\nimpact: low", /risk: "hgh" is not one of trivial, low, medium, high, critical/],
      ["title: x\nrisk: unspecified\nimpact: low", /risk: "unspecified" is not one of/],
      ["title: x\nrisk: low\nimpact: low\nfix_steps: patch", /fix_steps: must be a list of strings/],
      ["- a\n- b", /must hold one suggestion/],
      ["title: [unclosed", /not YAML or JSON/],
    ];
    for (const [text, message] of bad) {
      expect(() => buildSuggestion(parseSuggestionText(text, "s.yaml"), {}), text).to.throw(UsageError, message);
    }
    expect(() => buildSuggestion({}, { title: "x" }), "risk and impact are required").to.throw(UsageError, /needs risk, impact/);
  });
});
