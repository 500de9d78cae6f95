/**
 * The CLI's credentials (SPEC sections 8 and 10): TLS with --ca, mTLS with --cert and --key, a
 * bearer token with --token, each also from the environment (COUNCIL_CA_FILE, COUNCIL_CERT_FILE,
 * COUNCIL_KEY_FILE, COUNCIL_TOKEN), against servers with an auth file. Two approvers are needed
 * (the policy asks for two approvals), the agent may not approve, and every refusal is one line
 * on stderr with exit 1.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { parsePolicy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { newToken, tokenHash } from "../../src/server/auth/tokens.js";
import { makeCa, makeCert, type Pem } from "../auth/certs.js";
import { tempDir } from "../auth/helpers.js";
import { startCouncil, type Running } from "../support/server.js";
import { buildCli, council, expectExit } from "./helpers.js";

const POLICY = parsePolicy("cli-auth", { verdicts: { human_approve: { approvals: 2, expires_after: "1h" } } }, PRESETS.default);
const HUMAN = ["--title", "Add retry to payments", "--risk", "medium", "--impact", "low"];
const UNAUTHENTICATED = "UNAUTHENTICATED: missing or invalid credentials\n";

describe("council CLI: TLS, mTLS and tokens", function () {
  this.timeout(120_000);
  let tls: Running;
  let mtls: Running;
  let ca: Pem;
  let client: Pem;
  let remove: () => Promise<void>;
  const tokens = { agent: newToken(), alice: newToken(), bob: newToken() };

  before(async () => {
    await buildCli();
    let dir: string;
    ({ dir, remove } = await tempDir());
    ca = await makeCa(dir);
    const server = await makeCert(dir, "server", ca, {
      subject: "/CN=localhost",
      altNames: ["IP.1 = 127.0.0.1", "DNS.1 = localhost", "DNS.2 = council.internal"],
    });
    client = await makeCert(dir, "ci-bot", ca, { subject: "/CN=ci-bot", usage: "clientAuth" });
    const authFile = join(dir, "auth.json");
    const principals = [
      { name: "agent", roles: ["agent"], tokens: [tokenHash(tokens.agent)] },
      { name: "alice", roles: ["approver"], tokens: [tokenHash(tokens.alice)] },
      { name: "bob", roles: ["approver"], tokens: [tokenHash(tokens.bob)] },
      { name: "ci-bot", roles: ["agent"], certificate: { common_name: "ci-bot" } },
    ];
    await writeFile(authFile, JSON.stringify({ principals }));
    const files = { certFile: server.certFile, keyFile: server.keyFile };
    tls = await startCouncil({ tls: files, authFile, policy: POLICY });
    mtls = await startCouncil({ tls: { ...files, clientCaFile: ca.certFile }, authFile, policy: POLICY });
  });
  after(async () => {
    await tls?.stop();
    await mtls?.stop();
    await remove?.();
  });

  it("TLS and a token, from flags or the environment; two approvers approve, the agent's await exits 0", async () => {
    const asAgent = ["--addr", tls.addr, "--ca", ca.certFile, "--token", tokens.agent];
    const reviewed = await council(["review", ...HUMAN, "-o", "json", ...asAgent]);
    expectExit(reviewed, 4);
    const decision = reviewed.json().at(-1)!.decision as { id: string; submittedBy: string };
    expect(decision.submittedBy).to.equal("agent");

    const denied = await council(["approve", decision.id, ...asAgent]);
    expectExit(denied, 1);
    expect(denied.stderr).to.match(/^PERMISSION_DENIED: .*approver.*\n$/);

    // alice through the environment only.
    const aliceEnv = { COUNCIL_ADDR: tls.addr, COUNCIL_CA_FILE: ca.certFile, COUNCIL_TOKEN: tokens.alice };
    const first = await council(["approve", decision.id, "--comment", "Looks right"], { env: aliceEnv });
    expectExit(first, 0);
    expect(first.lines).to.deep.equal([
      `${decision.id}  HUMAN_APPROVE  PENDING  1 of 2 approvals, expires in 59 min`,
      '  alice  APPROVE  just now  "Looks right"',
    ]);
    const second = await council(["approve", decision.id, "-o", "json", "--addr", tls.addr, "--ca", ca.certFile, "--token", tokens.bob]);
    expectExit(second, 0);
    const approved = second.json()[0] as { status: string; verdicts: { by: string }[] };
    expect(approved.status).to.equal("DECISION_STATUS_APPROVED");
    expect(approved.verdicts.map((v) => v.by)).to.deep.equal(["alice", "bob"]);

    expectExit(await council(["await", decision.id, ...asAgent]), 0);
    const outcome = await council(["outcome", decision.id, "success", "-o", "json", ...asAgent]);
    expectExit(outcome, 0);
    expect(outcome.json()[0]).to.include({ outcomeRecordedBy: "agent" });
  });

  it("no token, a wrong one: UNAUTHENTICATED in one line, exit 1; health needs none", async () => {
    for (const extra of [[], ["--token", "not-a-token"]]) {
      const r = await council(["list", "--addr", tls.addr, "--ca", ca.certFile, ...extra]);
      expectExit(r, 1);
      expect(r.stderr).to.equal(UNAUTHENTICATED);
      expect(r.stdout).to.equal("");
    }
    const health = await council(["health", "--addr", tls.addr, "--ca", ca.certFile]);
    expectExit(health, 0);
    expect(health.stdout).to.equal("SERVING\n");
  });

  it("a TLS server reached without TLS, or with a CA that did not sign it: exit 1, one line", async () => {
    const plain = await council(["list", "--addr", tls.addr, "--token", tokens.agent]);
    expectExit(plain, 1);
    expect(plain.stderr).to.equal(`cannot reach ${tls.addr}: failed to connect (a TLS server? then --tls or --ca)\n`);
    const systemRoots = await council(["list", "--addr", tls.addr, "--tls", "--token", tokens.agent]);
    expectExit(systemRoots, 1);
    expect(systemRoots.stderr).to.equal(
      `cannot reach ${tls.addr}: TLS handshake failed: unable to verify the first certificate (check --ca, --cert, --key, --server-name)\n`,
    );
  });

  it("--server-name checks the name the certificate carries", async () => {
    const base = ["list", "--addr", tls.addr, "--ca", ca.certFile, "--token", tokens.agent];
    expectExit(await council([...base, "--server-name", "council.internal"]), 0);
    const wrong = await council([...base, "--server-name", "elsewhere.example"]);
    expectExit(wrong, 1);
    expect(wrong.stderr).to.match(/^cannot reach .*: TLS handshake failed: Hostname\/IP does not match certificate's altnames: .*\(check --ca, --cert, --key, --server-name\)\n$/);
    const fromEnv = await council(base, { env: { COUNCIL_SERVER_NAME: "elsewhere.example" } });
    expectExit(fromEnv, 1);
  });

  it("mTLS: the client certificate names the caller, from flags or the environment", async () => {
    const flags = ["--addr", mtls.addr, "--ca", ca.certFile, "--cert", client.certFile, "--key", client.keyFile];
    const r = await council(["review", ...HUMAN, "-o", "json", ...flags]);
    expectExit(r, 4);
    expect((r.json().at(-1)!.decision as { submittedBy: string }).submittedBy).to.equal("ci-bot");

    const env = { COUNCIL_ADDR: mtls.addr, COUNCIL_CA_FILE: ca.certFile, COUNCIL_CERT_FILE: client.certFile, COUNCIL_KEY_FILE: client.keyFile };
    const fromEnv = await council(["list", "--limit", "1", "-o", "json"], { env });
    expectExit(fromEnv, 0);
    expect(fromEnv.json()[0]).to.include({ submittedBy: "ci-bot" });

    const noCert = await council(["list", "--addr", mtls.addr, "--ca", ca.certFile, "--token", tokens.agent]);
    expectExit(noCert, 1);
    expect(noCert.stderr).to.equal(`cannot reach ${mtls.addr}: TLS handshake failed: the server requires a client certificate (--cert and --key)\n`);
  });
});
