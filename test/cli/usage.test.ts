/**
 * The command line itself: help for every command (with an example), bad flags and arguments
 * (exit 2, the problem and the usage on stderr, nothing on stdout), an unreachable server (exit 1,
 * one line, fast), and how the command is installed: the package's `bin` found by `npx`, and a
 * clear message when the CLI has not been built.
 */
import { copyFile, mkdir } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { COMMANDS } from "../../cli/commands.js";
import { tempDir } from "../auth/helpers.js";
import { freePort } from "../support/redis.js";
import { run } from "../support/tools.js";
import { BIN, buildCli, cleanEnv, council, expectExit, expectFits, report, ROOT } from "./helpers.js";

describe("council CLI: usage, help and installation", function () {
  this.timeout(120_000);
  before(() => buildCli());

  it("council --help lists every command of SPEC section 10, the global flags and the exit codes", async () => {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      const r = await council(args);
      expectExit(r, 0);
      expect(r.stderr).to.equal("");
      for (const name of ["review", "get", "list", "pending", "approve", "reject", "await", "outcome", "lessons", "summary", "watch", "reviewers", "health"]) {
        expect(r.stdout).to.match(new RegExp(`^ {2}${name} +\\S`, "m"));
      }
      for (const flag of ["--addr", "--token", "--tls", "--ca", "--cert", "--key", "-o, --output", "--timeout"]) expect(r.stdout).to.include(flag);
      for (const env of ["COUNCIL_ADDR", "COUNCIL_TOKEN"]) expect(r.stdout).to.include(env);
      expect(r.stdout).to.include("0 approved, 3 rejected or superseded, 4 pending, 5 expired");
      expectFits(r.stdout);
    }
  });

  it("each command has --help with its usage, flags and an example", async () => {
    for (const command of COMMANDS) {
      for (const args of [[command.name, "--help"], ["help", command.name]]) {
        const r = await council(args);
        expectExit(r, 0);
        expect(r.stdout).to.include(`Usage: council ${command.name}`);
        expect(r.stdout).to.match(new RegExp(`Example:\\n {2}council ${command.name}`));
        expectFits(r.stdout);
      }
    }
    const review = await council(["review", "--help"]);
    for (const flag of ["--title", "--risk", "--impact", "--wait", "--dry-run", "--request-id", "--supersedes"]) expect(review.stdout).to.include(flag);
    const list = await council(["list", "--help"]);
    for (const flag of ["--type", "--status", "--suggestion", "--limit"]) expect(list.stdout).to.include(flag);
  });

  it("bad flags and arguments: exit 2, the problem and the usage on stderr, nothing on stdout", async () => {
    const cases: [string[], RegExp][] = [
      [[], /^no command given\n/],
      [["frobnicate"], /^unknown command "frobnicate"\n/],
      [["list", "--bogus"], /^unknown flag --bogus\n\nUsage: council list \[flags\]\nRun `council list --help`/],
      [["list", "--addr"], /^--addr needs a value\n/],
      [["list", "-o", "yaml"], /^-o: "yaml" is not table or json\n/],
      [["list", "--timeout", "soon"], /^--timeout: "soon" is not a duration/],
      [["list", "extra"], /^unexpected argument: extra\n/],
      [["get"], /^council get needs ID\n\nUsage: council get ID\n/],
      [["get", "a", "b"], /^unexpected argument: b\n/],
      [["approve"], /^council approve needs ID\n/],
      [["reject", "dec-1"], /^reject needs --comment: say why\n/],
      [["outcome", "dec-1"], /^council outcome needs ID success\|failure\|partial\n/],
      [["outcome", "dec-1", "fine"], /^outcome: "fine" is not one of success, failure, partial\n/],
      [["list", "--status", "done"], /^--status: "done" is not one of pending, approved, rejected, expired, superseded\n/],
      [["list", "--type", "maybe"], /^--type: "maybe" is not one of auto_approve, human_approve, defer, reject, escalate\n/],
      [["review", "--title", "x"], /^the suggestion needs risk, impact/],
      [["review", "--title", "x", "--risk", "hgh", "--impact", "low"], /^--risk: "hgh" is not one of trivial, low, medium, high, critical\n/],
      [["list", "--cert", "c.pem"], /^--cert and --key go together/],
      [["await", "dec-1", "--wait"], /^unknown flag --wait\n/],
    ];
    for (const [args, message] of cases) {
      const r = await council(args, { env: { COUNCIL_ADDR: "127.0.0.1:1" } });
      expect(r.code, `council ${args.join(" ")}\n${report(r)}`).to.equal(2);
      expect(r.stderr, `council ${args.join(" ")}`).to.match(message);
      expect(r.stderr, `council ${args.join(" ")} shows a usage`).to.match(/Usage: council/);
      expect(r.stdout, `council ${args.join(" ")}`).to.equal("");
    }
  });

  it("an unreachable server: exit 1 within seconds, one line naming the address", async () => {
    const port = await freePort();
    for (const command of [["list"], ["get", "dec-1"], ["health"], ["review", "--title", "x", "--risk", "low", "--impact", "low"], ["watch"], ["await", "dec-1"]]) {
      const started = Date.now();
      const r = await council([...command, "--addr", `127.0.0.1:${port}`]);
      const took = Date.now() - started;
      expect(r.code, `${command[0]}: ${report(r)}`).to.equal(1);
      expect(r.stderr, command[0]).to.equal(`cannot reach 127.0.0.1:${port}: connection refused\n`);
      expect(took, `${command[0]} took ${took} ms`).to.be.lessThan(10_000);
    }
    const env = await council(["list"], { env: { COUNCIL_ADDR: `127.0.0.1:${port}` } });
    expect(env.stderr, "COUNCIL_ADDR").to.equal(`cannot reach 127.0.0.1:${port}: connection refused\n`);
    const flagWins = await council(["list", "--addr", `127.0.0.1:${port}`], { env: { COUNCIL_ADDR: "127.0.0.1:1" } });
    expect(flagWins.stderr, "--addr wins over COUNCIL_ADDR").to.include(`127.0.0.1:${port}`);
    const unknownHost = await council(["list", "--addr", "no-such-host.invalid:50051"]);
    expectExit(unknownHost, 1);
    expect(unknownHost.stderr).to.equal("cannot reach no-such-host.invalid:50051: unknown host\n");
  });

  it("a CA file or a suggestion file that cannot be read: exit 1, naming it", async () => {
    const r = await council(["list", "--ca", "/no/such/ca.crt", "--addr", "127.0.0.1:1"]);
    expectExit(r, 1);
    expect(r.stderr).to.equal("cannot read the CA file /no/such/ca.crt: no such file\n");
    const s = await council(["review", "/no/such/suggestion.yaml", "--addr", "127.0.0.1:1"]);
    expectExit(s, 1);
    expect(s.stderr).to.equal("cannot read /no/such/suggestion.yaml: no such file\n");
  });

  it("the package's bin is `council`, found by npx in the repository", async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string>; scripts: Record<string, string> };
    expect(pkg.bin).to.deep.equal({ council: "bin/council.js" });
    expect(pkg.scripts.prepare, "npm ci builds the CLI").to.include("build:cli");
    expect(pkg.scripts["build:cli"]).to.equal("tsc -p cli/tsconfig.json");
    expect(pkg.scripts.build, "npm run build builds it too").to.include("build:cli");
    const npx = await run("npx", ["--no-install", "council", "--help"], { cwd: ROOT, env: cleanEnv(), timeoutMs: 60_000 });
    expect(npx.code, report(npx)).to.equal(0);
    expect(npx.stdout).to.match(/^council: /);
  });

  it("before the CLI is built, the command says how to build it", async () => {
    const { dir, remove } = await tempDir();
    try {
      await mkdir(join(dir, "bin"));
      await copyFile(BIN, join(dir, "bin/council.js"));
      const r = await run(process.execPath, [join(dir, "bin/council.js"), "--help"], { env: cleanEnv() });
      expect(r.code).to.equal(1);
      expect(r.stderr).to.equal(`council is not built: run \`npm ci\` (or \`npm run build\`) in ${dir}/\n`);
    } finally {
      await remove();
    }
  });
});
