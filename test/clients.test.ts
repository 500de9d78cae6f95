/**
 * Each language client's own test suite, run against a live Council server (in-process store) with
 * its type checks: tsc for TypeScript, mypy --strict for Python, go vet for Go.
 */
import { join } from "node:path";
import { expect } from "chai";
import { startCouncil, type Running } from "./support/server.js";
import { run, type RunResult } from "./support/tools.js";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "node_modules/.bin");

function report(r: RunResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-20_000)}\n--- stderr ---\n${r.stderr.slice(-20_000)}`;
}

describe("language clients against a live server", function () {
  this.timeout(900_000);
  let c: Running;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    c = await startCouncil();
    env = { ...process.env, COUNCIL_TEST_ADDR: c.addr };
  });
  after(() => c.stop());

  it("TypeScript: tsc --noEmit, then its mocha suite", async () => {
    const cwd = join(ROOT, "clients/typescript");
    const tsc = await run(join(BIN, "tsc"), ["--noEmit", "-p", "tsconfig.test.json"], { cwd, env, timeoutMs: 120_000 });
    expect(tsc.code, report(tsc)).to.equal(0);
    const suite = await run(join(BIN, "mocha"), [], { cwd, env, timeoutMs: 300_000 });
    expect(suite.code, report(suite)).to.equal(0);
    expect(suite.stdout).to.match(/\d+ passing/);
  });

  it("Python: mypy --strict, then its pytest suite (in a virtualenv the script creates)", async () => {
    const r = await run("bash", [join(ROOT, "clients/python/run-tests.sh")], { env, timeoutMs: 600_000 });
    expect(r.code, report(r)).to.equal(0);
    expect(r.stdout).to.match(/\d+ passed/);
  });

  it("Go: go vet, then go test", async () => {
    const r = await run("bash", [join(ROOT, "clients/go/run-tests.sh")], { env, timeoutMs: 600_000 });
    expect(r.code, report(r)).to.equal(0);
    expect(r.stdout).to.match(/^ok\s/m);
  });
});
