/**
 * The protos and the code generated from them: buf lint and format are clean, nothing breaks
 * against main, and `buf generate` (into a scratch directory) reproduces every committed file.
 */
import { mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { expect } from "chai";
import { parse } from "yaml";
import { run } from "./support/tools.js";

const ROOT = new URL("..", import.meta.url).pathname;
const BUF = join(ROOT, "node_modules/.bin/buf");

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

  it("make no breaking change against main", async function () {
    const hasMain = await run("git", ["rev-parse", "--verify", "--quiet", "main:proto/council/v1"], { cwd: ROOT });
    if (hasMain.code !== 0) this.skip(); // no committed protos on main yet: nothing to break
    const r = await run(BUF, ["breaking", "--against", ".git#branch=main"], { cwd: ROOT });
    expect(r.code, r.stdout + r.stderr).to.equal(0);
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
