/**
 * `Suggestion.diff` (issue 13) and the suggestion fingerprint. Fingerprints are stored with request
 * ids, and a replay is compared with the stored one: a suggestion without a diff must keep the
 * fingerprint the versions before `diff` stored, and a diff must count when there is one.
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { suggestionFingerprint } from "../../src/domain/identity.js";
import type { Suggestion } from "../../src/domain/model.js";
import { decodeDecision } from "../../src/store/redis_codec.js";

interface Dumped {
  key: string;
  value: Record<string, string> | unknown;
}

/** Keyspaces that earlier versions of Council wrote (test/redis/fixtures, see their make_*.ts). */
const FIXTURES = ["pre-principals", "pre-verdicts"].map((name) => ({
  name,
  keys: (JSON.parse(readFileSync(new URL(`../redis/fixtures/${name}.keyspace.json`, import.meta.url), "utf8")) as { keys: Dumped[] }).keys,
}));

const fixed: Suggestion = {
  id: "sug-fp",
  title: "Tidy the retry helper",
  description: "Replace the hand-rolled loop with the shared helper.",
  reasoning: "Fewer code paths.",
  risk: "low",
  impact: "low",
  autoFixable: true,
  fixSteps: ["Apply the patch", "Run the unit tests"],
  filesAffected: ["src/retry.ts"],
  estimatedEffort: "small",
  diff: "",
};

const DIFF = "--- a/src/retry.ts\n+++ b/src/retry.ts\n@@ -1,3 +1,1 @@\n-for (let i = 0; i < 3; i++) {\n-  try { return fn(); } catch {}\n-}\n+return retry(fn);\n";

describe("suggestion fingerprints with a diff", () => {
  for (const { name, keys } of FIXTURES) {
    it(`match, for a suggestion without a diff, what an earlier version stored with each request id (${name})`, () => {
      const decisions = keys.filter((k) => k.key.includes(":d:")).map((k) => decodeDecision(k.value as Record<string, string>)!);
      // Request ids are `req` keys before principals, `preq` keys after; each holds its decision's id
      // and fingerprint. (One of pre-verdicts was saved by its script straight into the store with
      // a made-up fingerprint, not by a review: it is not a sha256.)
      const requests = keys
        .filter((k) => /:p?req:/.test(k.key))
        .map((k) => k.value as Record<string, string>)
        .filter((r) => /^[0-9a-f]{64}$/.test(r.fp ?? ""));
      expect(requests.length).to.be.at.least(2);
      for (const stored of requests) {
        const d = decisions.find((x) => x.id === stored.id);
        expect(d, `the decision of ${stored.id}`).to.not.equal(undefined);
        expect(d!.suggestion.diff).to.equal("");
        expect(suggestionFingerprint(d!.suggestion), `request of ${stored.id}`).to.equal(stored.fp);
      }
    });
  }

  it("are pinned: without a diff as every earlier version computed it, with one as this version does", () => {
    // Computed by the code before `diff` existed (commit 4eb9bd5) for `fixed` without its diff key.
    expect(suggestionFingerprint(fixed)).to.equal("1b2d616140ef55e53ff275f0104f585ca1d80e68cb6914933a982597238ea8bc");
    expect(suggestionFingerprint({ ...fixed, diff: DIFF })).to.equal("1c1e0fb7f2c63c7b049955ae0e366ce46a2941b9fa35711cb4ba42e6982beb73");
  });

  it("tell suggestions apart by their diff, and an empty diff from none at all not", () => {
    const without = suggestionFingerprint(fixed);
    const withDiff = suggestionFingerprint({ ...fixed, diff: DIFF });
    expect(withDiff).to.not.equal(without);
    expect(suggestionFingerprint({ ...fixed, diff: `${DIFF} ` })).to.not.equal(withDiff);
    expect(suggestionFingerprint({ ...fixed, diff: DIFF })).to.equal(withDiff);
    // A diff that is only whitespace is still a diff.
    expect(suggestionFingerprint({ ...fixed, diff: "\n" })).to.not.equal(without);
  });
});
