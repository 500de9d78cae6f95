/**
 * Runs every command of the README's "Operating Council with grpcurl" section, in order, against
 * fresh live servers, and checks each against the output the README shows after it. The part with
 * TLS runs in a directory where the README's own openssl commands (section "TLS and mTLS") made
 * the certificates, against servers with the auth file the guide shows.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { parse as parseYaml, stringify } from "yaml";
import { newToken, tokenHash } from "../src/server/auth/tokens.js";
import { MemoryStore } from "../src/store/memory.js";
import { tempDir } from "./auth/helpers.js";
import { wireSuggestion } from "./support/fixtures.js";
import { review, startCouncil, type Running } from "./support/server.js";
import { blocksOf, section } from "./support/readme.js";
import { grpcurlPath, run } from "./support/tools.js";
import { waitFor } from "./support/wait.js";

/** The addresses the guide uses: the quick start, the TLS server, the mTLS server. */
const DOC_ADDR = "127.0.0.1:50051";
const DOC_TLS_ADDR = "127.0.0.1:50443";
const DOC_MTLS_ADDR = "127.0.0.1:50444";


interface Step {
  command: string;
  /** The output block right after the command's block, if any. */
  shown?: string;
}

function grpcurlSection(): Step[] {
  // "Serving a reviewer by hand" runs on a server of its own policy, in test/readme_reviewer.test.ts.
  const blocks = blocksOf(section("## Operating Council with grpcurl").replace(section("### Serving a reviewer by hand"), ""));
  const steps: Step[] = [];
  blocks.forEach((b, i) => {
    if (b.lang !== "sh") return;
    const commands = b.body.split("\n").filter((l) => l.startsWith("grpcurl "));
    const next = blocks[i + 1];
    const shown = next && next.lang === "" ? next.body.trim() : undefined;
    commands.forEach((command, j) => steps.push({ command, shown: j === commands.length - 1 ? shown : undefined }));
  });
  return steps;
}

/**
 * Split a shell-quoted grpcurl line into argv as the README writes them: single quotes taken as
 * they are, double quotes with `$NAME` replaced from `vars` (an unknown name fails the test).
 */
function argv(command: string, vars: Record<string, string> = {}): string[] {
  const expand = (text: string) =>
    text.replace(/\$([A-Z_]+)/g, (_, name: string) => {
      if (!(name in vars)) throw new Error(`the README uses $${name}, which the test does not set`);
      return vars[name]!;
    });
  const args: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)) args.push(m[1] ?? (m[2] !== undefined ? expand(m[2]) : m[3]!));
  return args.slice(1);
}

const normalize = (text: string) => text.replace(/"\d{4}-\d\d-\d\dT[\d:.]+Z"/g, '"<time>"');

describe("README: Operating Council with grpcurl", function () {
  this.timeout(120_000);
  let c: Running;
  let tls: Running;
  let mtls: Running;
  let liveWatches: () => number;
  let dir: string;
  let remove: () => Promise<void>;
  const tokens = { AGENT_TOKEN: newToken(), ALICE_TOKEN: newToken() };
  before(async () => {
    const store = new MemoryStore();
    c = await startCouncil({ store });
    liveWatches = () => c.server.watchesLive;

    // The certificates, made by the README's own commands (bash: they use process substitution).
    ({ dir, remove } = await tempDir());
    const recipe = blocksOf(section("### TLS and mTLS")).find((b) => b.lang === "sh" && b.body.startsWith("openssl "));
    expect(recipe, "an openssl block in TLS and mTLS").to.exist;
    const made = await run("bash", ["-e", "-c", recipe!.body], { cwd: dir, timeoutMs: 60_000 });
    expect(made.code, made.stderr).to.equal(0);

    // The guide's auth file, with the hashes of the tokens this test made.
    const shown = blocksOf(section("### With TLS, mTLS and tokens")).find((b) => b.lang === "yaml");
    const document = parseYaml(shown!.body) as { principals: { name: string; tokens?: string[] }[] };
    const tokenOf: Record<string, string> = { "deploy-agent": tokens.AGENT_TOKEN, alice: tokens.ALICE_TOKEN };
    for (const p of document.principals) {
      if (!p.tokens) continue;
      expect(tokenOf, `a token for ${p.name}`).to.have.property(p.name);
      p.tokens = [tokenHash(tokenOf[p.name]!)];
    }
    await writeFile(join(dir, "auth.yaml"), stringify(document));
    const files = { certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") };
    tls = await startCouncil({ tls: files, authFile: join(dir, "auth.yaml") });
    mtls = await startCouncil({ tls: { ...files, clientCaFile: join(dir, "ca.crt") }, authFile: join(dir, "auth.yaml") });
  });
  after(async () => {
    await c.stop();
    await tls?.stop();
    await mtls?.stop();
    await remove?.();
  });

  it("has a command for every RPC", () => {
    const text = grpcurlSection().map((s) => s.command).join("\n");
    for (const rpc of [
      "ReviewSuggestion",
      "GetDecision",
      "ListDecisions",
      "RecordOutcome",
      "GetSummary",
      "ListLessons",
      "WatchDecisions",
      "ListReviewers",
      "ResolveDecision",
      "AwaitDecision",
    ]) {
      expect(text).to.include(`council.v1.CouncilService/${rpc}`);
    }
    expect(section("## Operating Council with grpcurl")).to.include("council.v1.CouncilService/ServeReviews");
    expect(text).to.include("grpc.health.v1.Health/Check");
    expect(text).to.include(" describe ");
    // TLS with the server's CA, mTLS with a client certificate, and a bearer token.
    for (const flag of ["-cacert ca.crt ", "-cert ci-bot.crt -key ci-bot.key ", `-H "authorization: Bearer $AGENT_TOKEN"`]) {
      expect(text).to.include(flag);
    }
    for (const addr of [DOC_TLS_ADDR, DOC_MTLS_ADDR]) expect(text).to.include(addr);
  });

  it("every command works as shown", async () => {
    const grpcurl = grpcurlPath();
    for (const step of grpcurlSection()) {
      const addrs: Record<string, string> = { [DOC_ADDR]: c.addr, [DOC_TLS_ADDR]: tls.addr, [DOC_MTLS_ADDR]: mtls.addr };
      const args = argv(step.command, tokens).map((a) => addrs[a] ?? a);
      if (step.command.includes("/WatchDecisions")) {
        // grpcurl's watch is live once the server reports one more live watch.
        const before = liveWatches();
        const watching = run(grpcurl, args, { timeoutMs: 30_000, cwd: dir });
        await waitFor(() => liveWatches() > before, { timeoutMs: 20_000, what: `the watch of ${step.command} to be live` });
        await review(c.client, { suggestion: wireSuggestion({ title: "exposes secrets" }) });
        const r = await watching;
        expect(r.stdout, step.command).to.include('"decision": "DECISION_TYPE_REJECT"');
        expect(r.stderr, step.command).to.include("DeadlineExceeded");
        continue;
      }
      const r = await run(grpcurl, args, { timeoutMs: 20_000, cwd: dir });
      const shown = step.shown;
      if (shown?.startsWith("ERROR:")) {
        expect(r.code, step.command).to.not.equal(0);
        expect(r.stderr.trim(), step.command).to.equal(shown);
        continue;
      }
      expect(r.code, `${step.command}\n${r.stderr}`).to.equal(0);
      if (!shown) continue;
      const got = normalize(r.stdout);
      if (!shown.includes("…")) {
        expect(got.trim(), step.command).to.equal(normalize(shown));
        continue;
      }
      // A shortened block: every complete line it shows must be in the real output.
      const squash = (text: string) => text.replace(/\s+/g, " ").replace(/\[ /g, "[").replace(/ \]/g, "]");
      const flat = squash(got);
      for (const line of normalize(shown).split("\n")) {
        const t = line.trim().replace(/,$/, "");
        if (t.includes("…") || /^[[\]{}]*,?$/.test(t)) continue;
        expect(flat, `${step.command}\nshows ${t}`).to.include(squash(t));
      }
    }
  });
});
