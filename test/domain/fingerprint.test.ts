/**
 * A suggestion's fingerprint tells a replay of a request from a conflicting one, also against
 * decisions stored by earlier versions: it must stay the sha256 of the suggestion's canonical JSON
 * (sorted keys, as canonicalJson writes them), whatever shortcut builds that JSON. The values
 * themselves are pinned in fingerprint_diff.test.ts, against keyspaces earlier versions wrote.
 */
import { createHash } from "node:crypto";
import { expect } from "chai";
import { suggestionFingerprint } from "../../src/domain/identity.js";
import { canonicalJson } from "../../src/domain/policy.js";
import type { Suggestion } from "../../src/domain/model.js";
import { suggestion } from "../support/fixtures.js";

/** The fingerprint by its definition: canonicalJson of the snake_case fields (diff only when not empty). */
function reference(s: Suggestion): string {
  const fields = {
    id: s.id,
    title: s.title,
    description: s.description,
    reasoning: s.reasoning,
    risk: s.risk,
    impact: s.impact,
    auto_fixable: s.autoFixable,
    fix_steps: s.fixSteps,
    files_affected: s.filesAffected,
    estimated_effort: s.estimatedEffort ?? null,
    diff: s.diff === "" ? undefined : s.diff,
  };
  return createHash("sha256").update(canonicalJson(fields)).digest("hex");
}

describe("suggestion fingerprints", () => {
  it("equals the canonical JSON digest for awkward text, empty lists and no effort", () => {
    const cases: Suggestion[] = [
      suggestion({ title: 'quotes " and \\ backslashes', description: "line\nbreak\ttab \u2028 \u0000", fixSteps: [] }),
      suggestion({ estimatedEffort: undefined, filesAffected: [], reasoning: "émoji 🚀 and 中文" }),
      suggestion({ autoFixable: false, risk: "critical", impact: "high", fixSteps: ["a", "b", "c"] }),
      suggestion({ diff: '--- a/x\n+++ b/x\n@@ -1 +1 @@\n-"old"\n+"new" \u00e9\n' }),
    ];
    for (const s of cases) expect(suggestionFingerprint(s)).to.equal(reference(s));
  });

  it("differs when any one field differs", () => {
    const base = suggestion({ id: "sug-x" });
    const variants: Partial<Suggestion>[] = [
      { id: "sug-y" },
      { title: "other" },
      { description: "other" },
      { reasoning: "other" },
      { risk: "high" },
      { impact: "high" },
      { autoFixable: false },
      { fixSteps: ["other"] },
      { filesAffected: ["other"] },
      { estimatedEffort: "large" },
      { diff: "+ a line" },
    ];
    for (const v of variants) expect(suggestionFingerprint({ ...base, ...v }), JSON.stringify(v)).not.to.equal(suggestionFingerprint(base));
  });
});
