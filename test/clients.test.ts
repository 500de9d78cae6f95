/**
 * Each language client's own test suite, run against live Council servers (in-process store) with
 * its type checks: tsc for TypeScript, mypy --strict for Python, go vet for Go.
 *
 * Besides the plaintext server of the quick start (COUNCIL_TEST_ADDR), three servers with identity
 * and access (SPEC §8) share one CA, one server certificate and one auth file: TLS
 * (COUNCIL_TEST_TLS_ADDR), mTLS (COUNCIL_TEST_MTLS_ADDR), and TLS with a review rate so low that
 * each principal gets one review, then RESOURCE_EXHAUSTED (COUNCIL_TEST_LIMITED_ADDR). Each
 * language gets principals of its own (`<lang>-agent`, `<lang>-approver`), so that one suite's
 * review does not spend another's rate. Certificates and keys are made here, in a temporary
 * directory removed at the end; tokens are made here too, and the auth file holds their hashes.
 * After each suite, the language's example agent runs over TLS with a token and over mTLS, with
 * the variables its README gives (COUNCIL_TOKEN, COUNCIL_CA_FILE, COUNCIL_CERT_FILE, …).
 *
 * For external reviewers (SPEC §11), one plaintext server per language with the same auth file and
 * CLIENTS_EXTERNAL_POLICY (COUNCIL_TEST_EXTERNAL_ADDR), and a principal `<lang>-reviewer` with the
 * role reviewer (COUNCIL_TEST_REVIEWER_TOKEN, COUNCIL_TEST_REVIEWER_PRINCIPAL).
 *
 * For human verdicts (SPEC §9: resolve, await, the guard), a plaintext server with the same auth
 * file and the policy CLIENTS_LIFECYCLE_POLICY (COUNCIL_TEST_LIFECYCLE_ADDR): HUMAN_APPROVE needs
 * two approvals and waits ten minutes, DEFER needs one and expires after a second, so that the
 * suites can approve with two approvers (`<lang>-approver`, `<lang>-approver2`) and see an expiry
 * without waiting long.
 *
 * A plaintext server whose reviews pause for HELD_MS before their second vote, with its metrics
 * served (COUNCIL_TEST_HELD_ADDR, COUNCIL_TEST_HELD_METRICS_URL): a suite cancels a review there
 * mid-stream and reads council_grpc_calls_total to see that the server saw CANCELLED.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { parsePolicy } from "../src/domain/policy.js";
import { PRESETS } from "../src/domain/presets.js";
import { newToken, tokenHash } from "../src/server/auth/tokens.js";
import { makeCa, makeCert } from "./auth/certs.js";
import { startCouncil, type Running } from "./support/server.js";
import { run, type RunResult } from "./support/tools.js";

const ROOT = new URL("..", import.meta.url).pathname;
const BIN = join(ROOT, "node_modules/.bin");

function report(r: RunResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout.slice(-20_000)}\n--- stderr ---\n${r.stderr.slice(-20_000)}`;
}

const LANGUAGES = ["ts", "py", "go"] as const;
type Language = (typeof LANGUAGES)[number];

/** The principal every suite's client certificate names (role agent); the mTLS server has no rate. */
const CLIENT_PRINCIPAL = "client-bot";

/** How long the held server's reviews pause before their second vote (COUNCIL_TEST_HELD_ADDR). */
const HELD_MS = 3000;

/** The lifecycle server's policy: `default` with verdict settings that tests can reach quickly. */
const CLIENTS_LIFECYCLE_POLICY = parsePolicy(
  "clients-lifecycle",
  { verdicts: { human_approve: { approvals: 2, expires_after: "10m" }, defer: { approvals: 1, expires_after: "1s" } } },
  PRESETS.default,
);

/**
 * The external-reviewer servers' policy (COUNCIL_TEST_EXTERNAL_ADDR, one server per language so that
 * one suite's reviewers never take another's tasks): safety and quality are external, safety
 * falling back to NEEDS_MORE_INFO and quality failing closed (REJECT with a veto), 3 s each.
 */
const CLIENTS_EXTERNAL_POLICY = parsePolicy(
  "clients-external",
  {
    reviewers: [
      { role: "safety", external: { timeout: "3s", on_failure: "needs_more_info" } },
      { role: "performance" },
      { role: "architecture" },
      { role: "compliance" },
      { role: "quality", external: { timeout: "3s", on_failure: "reject" } },
    ],
  },
  PRESETS.default,
);

describe("language clients against a live server", function () {
  this.timeout(900_000);
  const servers: Running[] = [];
  let dir = "";
  let envOf: (lang: Language) => NodeJS.ProcessEnv;
  /** The environment of the example agents: TLS with a token, and mTLS with the client certificate. */
  let examplesOf: (lang: Language) => { how: string; addr: string; env: NodeJS.ProcessEnv }[];
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "council-clients-"));
    const ca = await makeCa(dir);
    const server = await makeCert(dir, "server", ca, {
      subject: "/CN=localhost",
      altNames: ["IP.1 = 127.0.0.1", "DNS.1 = localhost"],
    });
    const client = await makeCert(dir, "client", ca, { subject: `/CN=${CLIENT_PRINCIPAL}`, usage: "clientAuth" });

    const tokens = new Map(LANGUAGES.map((lang) => [lang, { agent: newToken(), approver: newToken(), approver2: newToken(), reviewer: newToken() }]));
    const principals = [
      { name: CLIENT_PRINCIPAL, roles: ["agent"], certificate: { common_name: CLIENT_PRINCIPAL } },
      ...LANGUAGES.flatMap((lang) => [
        { name: `${lang}-agent`, roles: ["agent"], tokens: [tokenHash(tokens.get(lang)!.agent)] },
        { name: `${lang}-approver`, roles: ["approver"], tokens: [tokenHash(tokens.get(lang)!.approver)] },
        { name: `${lang}-approver2`, roles: ["approver"], tokens: [tokenHash(tokens.get(lang)!.approver2)] },
        { name: `${lang}-reviewer`, roles: ["reviewer"], tokens: [tokenHash(tokens.get(lang)!.reviewer)] },
      ]),
    ];
    const authFile = join(dir, "auth.json");
    await writeFile(authFile, JSON.stringify({ principals }, null, 2));

    const tls = { certFile: server.certFile, keyFile: server.keyFile };
    // One at a time, each kept as soon as it runs, so that `after` stops it even if a later one fails.
    const start = async (options: Parameters<typeof startCouncil>[0]) => {
      const s = await startCouncil(options);
      servers.push(s);
      return s;
    };
    const plain = await start({});
    const tlsServer = await start({ tls, authFile });
    const mtls = await start({ tls: { ...tls, clientCaFile: ca.certFile }, authFile });
    // Burst max(1, 2 × rate) = 1, refilled in 1000 s: one review per principal, then the limit.
    const limited = await start({ tls, authFile, reviewRate: 0.001 });
    const lifecycle = await start({ authFile, policy: CLIENTS_LIFECYCLE_POLICY });
    // Reviews pause before their second vote, so that a client can cancel one mid-stream and then
    // read from the metrics that the server saw CANCELLED (the review still runs to its decision).
    const held = await start({
      metricsAddr: "127.0.0.1:0",
      beforeVote: (_role, index) => (index === 1 ? new Promise<void>((r) => setTimeout(r, HELD_MS)) : Promise.resolve()),
    });
    const external = new Map<Language, Running>();
    for (const lang of LANGUAGES) external.set(lang, await start({ authFile, policy: CLIENTS_EXTERNAL_POLICY }));
    envOf = (lang) => ({
      ...process.env,
      COUNCIL_TEST_EXTERNAL_ADDR: external.get(lang)!.addr,
      COUNCIL_TEST_REVIEWER_TOKEN: tokens.get(lang)!.reviewer,
      COUNCIL_TEST_REVIEWER_PRINCIPAL: `${lang}-reviewer`,
      COUNCIL_TEST_ADDR: plain.addr,
      COUNCIL_TEST_TLS_ADDR: tlsServer.addr,
      COUNCIL_TEST_MTLS_ADDR: mtls.addr,
      COUNCIL_TEST_LIMITED_ADDR: limited.addr,
      COUNCIL_TEST_LIFECYCLE_ADDR: lifecycle.addr,
      COUNCIL_TEST_HELD_ADDR: held.addr,
      COUNCIL_TEST_HELD_METRICS_URL: `http://127.0.0.1:${held.server.metricsPort}/metrics`,
      COUNCIL_TEST_HELD_MS: String(HELD_MS),
      COUNCIL_TEST_CA_FILE: ca.certFile,
      COUNCIL_TEST_CLIENT_CERT_FILE: client.certFile,
      COUNCIL_TEST_CLIENT_KEY_FILE: client.keyFile,
      COUNCIL_TEST_CLIENT_PRINCIPAL: CLIENT_PRINCIPAL,
      COUNCIL_TEST_AGENT_TOKEN: tokens.get(lang)!.agent,
      COUNCIL_TEST_AGENT_PRINCIPAL: `${lang}-agent`,
      COUNCIL_TEST_APPROVER_TOKEN: tokens.get(lang)!.approver,
      COUNCIL_TEST_APPROVER_PRINCIPAL: `${lang}-approver`,
      COUNCIL_TEST_APPROVER2_TOKEN: tokens.get(lang)!.approver2,
      COUNCIL_TEST_APPROVER2_PRINCIPAL: `${lang}-approver2`,
    });
    // Every variable set (empty means unset), so that none leaks in from the caller's environment.
    const exampleEnv = (vars: Record<string, string>) => ({
      ...process.env,
      COUNCIL_TOKEN: "",
      COUNCIL_CERT_FILE: "",
      COUNCIL_KEY_FILE: "",
      COUNCIL_CA_FILE: ca.certFile,
      ...vars,
    });
    examplesOf = (lang) => [
      { how: "TLS and a token", addr: tlsServer.addr, env: exampleEnv({ COUNCIL_TOKEN: tokens.get(lang)!.agent }) },
      { how: "mTLS", addr: mtls.addr, env: exampleEnv({ COUNCIL_CERT_FILE: client.certFile, COUNCIL_KEY_FILE: client.keyFile }) },
    ];
  });

  /** Runs a language's example agent as its README says, over TLS with a token and over mTLS. */
  async function runExamples(lang: Language, cmd: string, args: string[], cwd: string): Promise<void> {
    for (const { how, addr, env } of examplesOf(lang)) {
      const r = await run(cmd, [...args, addr], { cwd, env, timeoutMs: 120_000 });
      expect(r.code, `example agent over ${how}: ${report(r)}`).to.equal(0);
      expect(r.stdout, `example agent over ${how}`).to.match(/outcome/i);
    }
  }
  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("TypeScript: tsc --noEmit, then its mocha suite", async () => {
    const cwd = join(ROOT, "clients/typescript");
    const env = envOf("ts");
    const tsc = await run(join(BIN, "tsc"), ["--noEmit", "-p", "tsconfig.test.json"], { cwd, env, timeoutMs: 120_000 });
    expect(tsc.code, report(tsc)).to.equal(0);
    const suite = await run(join(BIN, "mocha"), [], { cwd, env, timeoutMs: 300_000 });
    expect(suite.code, report(suite)).to.equal(0);
    expect(suite.stdout).to.match(/\d+ passing/);
    expect(suite.stdout, "the TLS/mTLS/token tests ran").to.match(/TLS, mTLS, tokens and typed auth errors/);
    expect(suite.stdout, "the human verdict tests ran").to.match(/human verdicts \(resolve, awaitDecision, guard\)/);
    expect(suite.stdout, "the deadline and cancelling tests ran").to.match(/deadlines, retries and cancelling/);
    expect(suite.stdout, "the tests of cancelling on the held server ran").to.match(/cancelling mid-stream reaches the server/);
    expect(suite.stdout, "the tool tests ran").to.match(/the council_review tool/);
    expect(suite.stdout, "the reviewer SDK tests ran").to.match(/serving a reviewer role \(serveReviews\)/);
    expect(suite.stdout, "the secret scanner ran against the server").to.match(/the example secret scanner through gRPC/);
    await runExamples("ts", join(BIN, "tsx"), ["examples/agent.ts"], cwd);
  });

  it("Python: mypy --strict, then its pytest suite (in a virtualenv the script creates)", async () => {
    const r = await run("bash", [join(ROOT, "clients/python/run-tests.sh")], { env: envOf("py"), timeoutMs: 600_000 });
    expect(r.code, report(r)).to.equal(0);
    expect(r.stdout).to.match(/\d+ passed/);
    expect(r.stdout, "the TLS/mTLS/token tests ran").to.match(/tests\/test_secure\.py \.+/);
    expect(r.stdout, "the human verdict tests ran").to.match(/tests\/test_verdicts\.py \.+/);
    expect(r.stdout, "the asyncio tests ran").to.match(/tests\/test_aio\.py \.+/);
    expect(r.stdout, "the tests of cancelling on the held server ran").to.match(/tests\/test_cancel\.py \.+/);
    expect(r.stdout, "the install test ran").to.match(/tests\/test_install\.py \./);
    expect(r.stdout, "the reviewer SDK tests ran").to.match(/tests\/test_reviewer\.py \.+/);
    expect(r.stdout, "the asyncio reviewer SDK tests ran").to.match(/tests\/test_aio_reviewer\.py \.+/);
    expect(r.stdout, "the example reviewer ran against the server").to.match(/tests\/test_reviewer_example\.py \.+/);
    const cwd = join(ROOT, "clients/python");
    await runExamples("py", join(cwd, ".venv/bin/python"), ["examples/agent.py"], cwd);
  });

  it("Go: go vet, then go test", async () => {
    const r = await run("bash", [join(ROOT, "clients/go/run-tests.sh")], { env: envOf("go"), timeoutMs: 600_000 });
    expect(r.code, report(r)).to.equal(0);
    expect(r.stdout).to.match(/^ok\s/m);
    await runExamples("go", "go", ["run", "./examples/agent"], join(ROOT, "clients/go"));
  });
});
