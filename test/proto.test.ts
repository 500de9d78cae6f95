/**
 * The protos and the code generated from them: buf lint and format are clean, nothing breaks
 * against the committed API baseline, and `buf generate` (into a scratch directory) reproduces
 * every committed file.
 *
 * The baseline, proto/baseline.tar.gz, is the protos (and buf.yaml) of the last released API, kept
 * as a buf input so that each module is checked with its own breaking rules. It changes only on
 * purpose, at a release:
 *   git archive --format=tar.gz -o proto/baseline.tar.gz HEAD buf.yaml proto ':(exclude)proto/baseline.tar.gz'
 * Comparing with a branch instead would compare main with itself on main, which cannot fail.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { expect } from "chai";
import { parse } from "yaml";
import { run } from "./support/tools.js";

const ROOT = new URL("..", import.meta.url).pathname;
const BUF = join(ROOT, "node_modules/.bin/buf");
const BASELINE = join(ROOT, "proto/baseline.tar.gz");

function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

describe("protos and generated code", function () {
  this.timeout(300_000);

  it("pass buf lint (STANDARD)", async () => {
    const r = await run(BUF, ["lint"], { cwd: ROOT });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
  });

  it("are formatted as buf format writes them", async () => {
    const r = await run(BUF, ["format", "--diff", "--exit-code"], { cwd: ROOT });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
  });

  it("make no breaking change against the released API (proto/baseline.tar.gz)", async () => {
    const r = await run(BUF, ["breaking", "--against", BASELINE], { cwd: ROOT });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
  });

  it("the breaking check fails when a field is renumbered (in a scratch copy)", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "council-breaking-"));
    cpSync(join(ROOT, "buf.yaml"), join(scratch, "buf.yaml"));
    cpSync(join(ROOT, "proto"), join(scratch, "proto"), { recursive: true });
    const file = join(scratch, "proto/council/v1/review.proto");
    const before = readFileSync(file, "utf8");
    const after = before.replace(/(message Suggestion \{[^}]*?string title = )2;/, "$120;");
    expect(after, "the scratch copy has Suggestion.title = 2 to renumber").to.not.equal(before);
    writeFileSync(file, after);
    const r = await run(BUF, ["breaking", "--against", BASELINE], { cwd: scratch });
    expect(r.code, r.stdout + r.stderr).to.not.equal(0);
    expect(r.stdout).to.match(/field "2" with name "title" on message "Suggestion" was deleted/);
  });

  it("regenerate to exactly the committed files (run `npm run generate` after changing a proto)", async () => {
    const scratch = mkdtempSync(join(tmpdir(), "council-gen-"));
    const gen = await run(BUF, ["generate", "-o", scratch], { cwd: ROOT, timeoutMs: 280_000 });
    expect(gen.code, gen.stdout + gen.stderr).to.equal(0);
    const template = parse(readFileSync(join(ROOT, "buf.gen.yaml"), "utf8")) as { plugins: { out: string }[] };
    for (const out of new Set(template.plugins.map((p) => p.out))) {
      const want = files(join(scratch, out));
      const have = files(join(ROOT, out));
      for (const [name, content] of want) {
        expect(have.get(name)?.equals(content), `${out}/${name} is stale`).to.equal(true);
      }
      const extra = [...have.keys()].filter((n) => !want.has(n) && !n.endsWith(".binpb"));
      expect(extra, `${out} has files buf no longer generates`).to.deep.equal([]);
    }
    const built = join(scratch, "council.binpb");
    const build = await run(BUF, ["build", "-o", built], { cwd: ROOT });
    expect(build.code, build.stderr).to.equal(0);
    expect(readFileSync(built).equals(readFileSync(join(ROOT, "src/gen/council.binpb"))), "src/gen/council.binpb is stale").to.equal(true);
  });
});
