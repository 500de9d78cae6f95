/**
 * The CLI and issue 13: `council review` sends a diff (`--diff-file PATH`, `--diff-file -` for
 * standard input, or a suggestion file's `diff`), and `council get` shows who cast each vote. Run
 * as a subprocess against a live server (in-process store).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { Decision } from "../../src/gen/council/v1/review.js";
import { tempDir } from "../auth/helpers.js";
import { unique } from "../support/fixtures.js";
import { call, startCouncil, type Running } from "../support/server.js";
import { buildCli, council, expectExit, expectFits, report } from "./helpers.js";

const DIFF = "--- a/package.json\n+++ b/package.json\n@@ -3 +3 @@\n-    \"lodash\": \"4.17.20\"\n+    \"lodash\": \"4.17.21\"\n";
const LOW = ["--risk", "low", "--impact", "low", "--auto-fixable"];

describe("council CLI: a suggestion's diff, and who cast each vote", function () {
  this.timeout(120_000);
  let c: Running;
  let addr: string[];
  let dir: string;
  let remove: () => Promise<void>;

  before(async () => {
    await buildCli();
    c = await startCouncil();
    addr = ["--addr", c.addr];
    ({ dir, remove } = await tempDir());
  });
  after(async () => {
    await c?.stop();
    await remove?.();
  });

  /** The diff the server stored for the review `r` printed as JSON Lines. */
  async function storedDiff(r: Awaited<ReturnType<typeof council>>): Promise<string> {
    expectExit(r, 0);
    const last = r.json().at(-1) as { decisionId?: string };
    const stored = await call(c.client, c.client.getDecision, { id: last.decisionId! });
    return stored.decision!.suggestion!.diff;
  }

  it("review sends the diff of --diff-file PATH, of --diff-file - (standard input), and of a suggestion file", async () => {
    const diffPath = join(dir, "change.diff");
    await writeFile(diffPath, DIFF);
    const fromPath = await council(["review", "--title", "Bump lodash", ...LOW, "--diff-file", diffPath, "-o", "json", ...addr]);
    expect(await storedDiff(fromPath)).to.equal(DIFF);

    const fromStdin = await council(["review", "--title", "Bump lodash", ...LOW, "--diff-file", "-", "-o", "json", ...addr], { input: DIFF });
    expect(await storedDiff(fromStdin)).to.equal(DIFF);

    const file = join(dir, "suggestion.yaml");
    await writeFile(file, `title: Bump lodash\nrisk: low\nimpact: low\nauto_fixable: true\ndiff: |\n${DIFF.replace(/^/gm, "  ").trimEnd()}\n`);
    const fromFile = await council(["review", file, "-o", "json", ...addr]);
    expect(await storedDiff(fromFile)).to.equal(DIFF);
    // The flag wins over the file, as every flag does.
    const other = join(dir, "other.diff");
    await writeFile(other, "+one line\n");
    expect(await storedDiff(await council(["review", file, "--diff-file", other, "-o", "json", ...addr]))).to.equal("+one line\n");
  });

  it("refuses a diff file that is not UTF-8, or over 1 MiB, and the suggestion and the diff both on standard input: exit 2", async () => {
    const binary = join(dir, "binary.diff");
    await writeFile(binary, Buffer.from([0x2b, 0xff, 0xfe, 0x0a]));
    const huge = join(dir, "huge.diff");
    await writeFile(huge, "+".repeat(1024 * 1024 + 1));
    const before = (await call(c.client, c.client.getSummary, {})).totalDecisions;
    const cases: [string[], RegExp][] = [
      [["--diff-file", binary], /--diff-file: .*binary\.diff is not UTF-8 text/],
      [["--diff-file", huge], /--diff-file: .*huge\.diff is 1048577 bytes; a diff may be at most 1048576 \(1 MiB\)/],
      [["-", "--diff-file", "-"], /cannot both be read from standard input/],
    ];
    for (const [args, says] of cases) {
      const r = await council(["review", "--title", "Bump lodash", ...LOW, ...args, ...addr], { input: "title: x\n" });
      expectExit(r, 2);
      expect(r.stderr, report(r)).to.match(says);
      expect(r.stdout).to.equal("");
    }
    expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(before);
  });

  it("get shows who cast each vote, and the diff's size, for people; and both whole in JSON", async () => {
    const made = await council(["review", "--title", unique("Bump lodash"), ...LOW, "--diff-file", "-", "-o", "json", ...addr], { input: DIFF });
    expectExit(made, 0);
    const id = (made.json().at(-1) as { decisionId: string }).decisionId;

    const t = await council(["get", id, ...addr]);
    expectExit(t, 0);
    expect(t.stdout).to.match(new RegExp(`^Diff +5 lines, ${Buffer.byteLength(DIFF)} bytes \\(-o json shows it\\)$`, "m"));
    const votes = t.stdout.slice(t.stdout.indexOf("Votes (5)"), t.stdout.indexOf("Concerns ("));
    expect(votes.match(/^ {39}cast by rules$/gm), t.stdout).to.have.length(5);
    expectFits(t.stdout);

    const j = await council(["get", id, "-o", "json", ...addr]);
    expectExit(j, 0);
    const [got] = j.json<{ votes: { castBy: string }[]; suggestion: { diff: string } }>();
    expect(got!.votes.map((v) => v.castBy)).to.deep.equal(["rules", "rules", "rules", "rules", "rules"]);
    expect(got!.suggestion.diff).to.equal(DIFF);
    expect(got).to.deep.equal(Decision.toJSON((await call(c.client, c.client.getDecision, { id })).decision!));
  });
});
