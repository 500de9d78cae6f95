/**
 * Installing the TypeScript client as a new user does (issue 11): on a clean clone, with no
 * `npm ci` at its root, in a scratch project outside the repository,
 *
 * - `npm install <clone>/clients/typescript`, the one line the README gives. npm links the
 *   directory and runs its `prepare` (scripts/prepare.mjs), which installs the package's own
 *   locked dependencies and builds dist/. The client must then load the @grpc/grpc-js in
 *   clients/typescript/node_modules, never the checkout's: the clone's root gets a node_modules
 *   whose @grpc/grpc-js throws when loaded, as a developer's checkout has one of its own;
 * - `npm pack` in <clone>/clients/typescript, then `npm install <tarball>`: the client and its
 *   dependencies land in the scratch project's node_modules.
 *
 * Each time a script in the scratch project imports the client, reviews a suggestion against a
 * live server, and says which files it loaded; the project's TypeScript checks a consumer against
 * the installed types. The clone is of the committed repository, with the working tree's
 * clients/typescript and clients/tool copied over it (so that the test checks what is about to be
 * committed). It uses the npm registry (through npm's cache); every step is bounded in time.
 */
import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { existsSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { expect } from "chai";
import { startCouncil, type Running } from "./support/server.js";

const ROOT = new URL("..", import.meta.url).pathname;
const TSC = join(ROOT, "node_modules/.bin/tsc");
const NPM_STEP_MS = 300_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment of the commands: this process's, without what npm (`npx mocha`) put in it for
 * the repository's own project: npm_config_local_prefix and the like would point a scratch
 * install at the checkout, and node_modules/.bin on the PATH would lend the package the
 * checkout's tsc. Only the npm settings a user's own npm would read as well are kept.
 */
function userEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile|ca)$/i;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) || keep.test(k)));
  env.PATH = (process.env.PATH ?? "")
    .split(":")
    .filter((d) => d && !/node_modules[/\\]\.bin[/\\]?$/.test(d))
    .join(":");
  return env;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Result> {
  return new Promise((resolve) =>
    execFile(cmd, args, { cwd, env: userEnv(), timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr: err && code === 1 && !stderr ? String(err) : stderr });
    }),
  );
}

const report = (what: string, r: Result) => `${what}: exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-8000)}\n--- stderr ---\n${r.stderr.slice(-8000)}`;

async function ok(what: string, cmd: string, args: string[], cwd: string, timeoutMs = NPM_STEP_MS): Promise<Result> {
  const r = await run(cmd, args, cwd, timeoutMs);
  expect(r.code, report(what, r)).to.equal(0);
  return r;
}

/**
 * A clean clone of the committed repository with the working tree's TypeScript client and tool
 * definition over it (their installed and built files left out), and, at its root, a
 * node_modules whose @grpc/grpc-js and @bufbuild/protobuf throw when loaded.
 */
async function freshClone(dir: string): Promise<string> {
  const clone = join(dir, "council");
  await mkdir(dir, { recursive: true });
  await ok("git clone", "git", ["clone", "--quiet", ROOT, clone], dir, 120_000);
  for (const path of ["clients/typescript", "clients/tool"]) {
    if (!existsSync(join(ROOT, path))) continue;
    await rm(join(clone, path), { recursive: true, force: true });
    await cp(join(ROOT, path), join(clone, path), {
      recursive: true,
      filter: (src) => !/[/\\](node_modules|dist)([/\\]|$)|\.tgz$/.test(src.slice(ROOT.length)),
    });
  }
  for (const name of ["@grpc/grpc-js", "@bufbuild/protobuf"]) {
    const decoy = join(clone, "node_modules", name);
    await mkdir(decoy, { recursive: true });
    await writeFile(join(decoy, "package.json"), JSON.stringify({ name, version: "0.0.0-checkout", main: "index.js", exports: "./index.js" }));
    await writeFile(join(decoy, "index.js"), `throw new Error("the checkout's ${name} was loaded");\n`);
  }
  return clone;
}

/** A scratch project: an ES module package that imports the client, and a TypeScript consumer. */
async function scratchProject(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "scratch", version: "1.0.0", private: true, type: "module" }, null, 2));
  await writeFile(
    join(dir, "check.mjs"),
    `import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { connect, councilReviewTool, status, suggestionFromToolInput } from "@council/client";

const entry = fileURLToPath(import.meta.resolve("@council/client"));
const require = createRequire(entry);
const council = connect(process.argv[2]);
try {
  const review = council.review(suggestionFromToolInput({ id: "install-check", title: "Check the install", risk: "low", impact: "low" }));
  let votes = 0;
  for await (const _ of review) votes += 1;
  const decision = await review.decision;
  console.log(JSON.stringify({
    entry,
    grpc: require.resolve("@grpc/grpc-js"),
    protobuf: require.resolve("@bufbuild/protobuf"),
    // The very module the client loaded: its status enum is the one the client re-exports.
    sameGrpc: require("@grpc/grpc-js").status === status,
    votes,
    decision: decision.id,
    tool: councilReviewTool.name,
  }));
} finally {
  council.close();
}
`,
  );
  await writeFile(
    join(dir, "consumer.ts"),
    `import { connect, DecisionType, RiskLevel, ImpactLevel, UnavailableError, type Decision, type GuardVerdict } from "@council/client";

export async function check(addr: string): Promise<[Decision, GuardVerdict]> {
  const council = connect(addr, { timeoutMs: 5000 });
  const suggestion = { id: "s", title: "t", risk: RiskLevel.RISK_LEVEL_LOW, impact: ImpactLevel.IMPACT_LEVEL_LOW };
  const decision: Decision = await council.review(suggestion, { signal: AbortSignal.timeout(1000) }).decision;
  const type: DecisionType = decision.decision;
  const verdict = await council.guard({ ...suggestion, id: String(type) });
  if (verdict.timedOut) throw new UnavailableError("not in time");
  return [decision, verdict];
}
`,
  );
  await writeFile(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023", "DOM"], types: [], strict: true, skipLibCheck: true, noEmit: true },
      files: ["consumer.ts"],
    }),
  );
  return dir;
}

interface Check {
  entry: string;
  grpc: string;
  protobuf: string;
  sameGrpc: boolean;
  votes: number;
  decision: string;
  tool: string;
}

describe("installing the TypeScript client from a clean clone, outside the repository", function () {
  this.timeout(1_200_000);
  let dir = "";
  let server: Running;
  before(async () => {
    dir = realpathSync(await mkdtemp(join(tmpdir(), "council-install-ts-")));
    server = await startCouncil({});
  });
  after(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Runs the scratch project's check against the live server, and its TypeScript consumer. */
  async function check(project: string): Promise<Check> {
    const r = await ok("the scratch project's check.mjs", process.execPath, ["check.mjs", server.addr], project, 60_000);
    const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Check;
    expect(result.votes).to.equal(5);
    expect(result.decision).to.match(/^dec-/);
    expect(result.tool).to.equal("council_review");
    expect(result.sameGrpc, "the client loaded the @grpc/grpc-js that require.resolve names").to.equal(true);
    await ok("tsc on a consumer of the installed types", TSC, ["-p", "tsconfig.json"], project, 120_000);
    return result;
  }

  it("npm install <clone>/clients/typescript: the one line works, and the client loads its own @grpc/grpc-js, not the checkout's", async () => {
    const clone = await freshClone(join(dir, "link"));
    const project = await scratchProject(join(dir, "link", "scratch"));
    await ok("npm install <clone>/clients/typescript", "npm", ["install", "--no-audit", "--no-fund", join(clone, "clients/typescript")], project);
    const own = join(clone, "clients/typescript") + sep;
    const result = await check(project);
    expect(result.entry).to.equal(join(own, "dist/index.js"));
    expect(result.grpc.startsWith(join(own, "node_modules", "@grpc", "grpc-js") + sep), result.grpc).to.equal(true);
    expect(result.protobuf.startsWith(join(own, "node_modules", "@bufbuild", "protobuf") + sep), result.protobuf).to.equal(true);
  });

  it("npm pack of <clone>/clients/typescript, then npm install <tarball>: the client and its dependencies land in the project", async () => {
    const clone = await freshClone(join(dir, "pack"));
    const project = await scratchProject(join(dir, "pack", "scratch"));
    const packed = await ok("npm pack", "npm", ["pack", "--json", "--pack-destination", dir], join(clone, "clients/typescript"));
    // npm pack prints the prepare script's output before its JSON.
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("[\n"))) as [{ filename: string; files: { path: string }[] }];
    const files = info.files.map((f) => f.path);
    expect(files).to.include.members(["dist/index.js", "dist/index.d.ts", "dist/tool.js", "tool/council_review.json", "package.json", "README.md"]);
    expect(files.filter((f) => /^(node_modules|test|examples)\//.test(f)), "nothing but the package").to.deep.equal([]);
    expect((await readdir(dir)).includes(info.filename)).to.equal(true);
    await ok("npm install <tarball>", "npm", ["install", "--no-audit", "--no-fund", join(dir, info.filename)], project);
    const modules = join(project, "node_modules") + sep;
    const result = await check(project);
    expect(result.entry).to.equal(join(modules, "@council/client/dist/index.js"));
    expect(result.grpc.startsWith(join(modules, "@grpc", "grpc-js") + sep), result.grpc).to.equal(true);
    expect(result.protobuf.startsWith(join(modules, "@bufbuild", "protobuf") + sep), result.protobuf).to.equal(true);
  });
});
