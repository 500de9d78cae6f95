/**
 * JWTs through gRPC over TLS (SPEC §8: `jwt` in the auth file), verified against a JWKS file the
 * test makes: a valid token names its subject with the Council roles of its roles claim; an
 * expired token, a wrong audience, a wrong issuer, `alg: none`, an unknown key id and a signature
 * by another key are all UNAUTHENTICATED with the one message. A token with no Council role
 * authenticates and is then PERMISSION_DENIED naming the role needed.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { UNAUTHENTICATED_MESSAGE } from "../../src/domain/errors.js";
import { wireSuggestion } from "../support/fixtures.js";
import { startCouncil, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { authFileIn, callLines, makePki, reviewOutcome, unaryOutcome, writeAuthFile } from "./grpc_helpers.js";
import { captureLog, tempDir, type LogLine } from "./helpers.js";

const ISSUER = "https://issuer.test";
const AUDIENCE = "council";

describe("JWT through gRPC", function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  let c: Running;
  let lines: LogLine[];
  let ca: string;
  let key: CryptoKey;
  let other: CryptoKey;

  before(async () => {
    ({ dir, remove } = await tempDir());
    const pki = await makePki(dir);
    ca = pki.ca.cert;
    const pair = await generateKeyPair("ES256", { extractable: true });
    key = pair.privateKey;
    other = (await generateKeyPair("ES256")).privateKey;
    await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" }] }));
    await writeAuthFile(authFileIn(dir), [{ name: "ops", roles: ["operator"], tokens: ["council_ops"] }], {
      jwks_file: "jwks.json",
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const captured = captureLog();
    lines = captured.lines;
    c = await startCouncil({
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile },
      authFile: authFileIn(dir),
      log: captured.log,
    });
  });
  after(async () => {
    await c.stop();
    await remove();
  });

  interface Claims {
    sub?: string;
    iss?: string;
    aud?: string;
    exp?: number;
    council_roles?: unknown;
  }

  const now = () => Math.floor(Date.now() / 1000);
  function sign(claims: Claims = {}, header: { alg: string; kid?: string } = { alg: "ES256", kid: "k1" }, signer = key): Promise<string> {
    const { sub = "workload-7", iss = ISSUER, aud = AUDIENCE, exp = now() + 300, council_roles = ["agent"] } = claims;
    return new SignJWT({ council_roles }).setProtectedHeader(header).setSubject(sub).setIssuer(iss).setAudience(aud).setIssuedAt().setExpirationTime(exp).sign(signer);
  }

  const summaryWith = (token: string) => unaryOutcome(c.connect({ ca, token }), "getSummary", {});

  it("names the caller by the token's subject, with the Council roles of its roles claim", async () => {
    const agent = await reviewOutcome(c.connect({ ca, token: await sign({ sub: "workload-7" }) }), { suggestion: wireSuggestion(), dryRun: true });
    expect(agent.code, agent.details).to.equal(status.OK);
    // Roles that are not Council roles are ignored; a space-separated string works too.
    const reviewer = c.connect({ ca, token: await sign({ sub: "scanner", council_roles: "reviewer billing-admin" }) });
    expect((await unaryOutcome(reviewer, "getSummary", {})).code).to.equal(status.OK);
    const denied = await reviewOutcome(reviewer, { suggestion: wireSuggestion(), dryRun: true });
    expect(denied).to.include({ code: status.PERMISSION_DENIED, details: "ReviewSuggestion needs the role agent or operator" });
    await waitFor(() => callLines(lines).length >= 3, { what: "three call log lines" });
    expect(callLines(lines).slice(0, 3).map((l) => l.principal)).to.deep.equal(["workload-7", "scanner", "scanner"]);
  });

  it("refuses expired, wrong-audience, wrong-issuer, alg none, unknown-kid and wrongly signed tokens, all with one message", async () => {
    const part = (o: object) => base64url.encode(JSON.stringify(o));
    const body = part({ sub: "workload-7", iss: ISSUER, aud: AUDIENCE, exp: now() + 300, council_roles: ["agent"] });
    const cases: Record<string, string> = {
      // Past the 30 s of leeway for clock skew.
      expired: await sign({ exp: now() - 120 }),
      "wrong audience": await sign({ aud: "someone-else" }),
      "wrong issuer": await sign({ iss: "https://evil.test" }),
      "alg none": `${part({ alg: "none", typ: "JWT", kid: "k1" })}.${body}.`,
      "unknown kid": await sign({}, { alg: "ES256", kid: "k9" }, other),
      "another key under the known kid": await sign({}, { alg: "ES256", kid: "k1" }, other),
      "a tampered payload": (await sign()).replace(/\.[^.]+\./, `.${body}.`),
    };
    const before = lines.filter((l) => l.msg === "authentication refused").length;
    for (const [what, token] of Object.entries(cases)) {
      const r = await summaryWith(token);
      expect(r, what).to.include({ code: status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE });
    }
    // Each refusal has its own reason, for the operator, in the debug log.
    await waitFor(() => lines.filter((l) => l.msg === "authentication refused").length === before + Object.keys(cases).length, {
      what: "a debug reason per refusal",
    });
    const reasons = lines.filter((l) => l.msg === "authentication refused").slice(before).map((l) => l.reason as string);
    expect(reasons[0]).to.match(/exp/);
    expect(reasons[1]).to.match(/aud/);
    expect(reasons[2]).to.match(/iss/);
    // A good token still works afterwards.
    expect((await summaryWith(await sign())).code).to.equal(status.OK);
  });

  it("authenticates a token with no Council role and denies it every CouncilService call, naming the role", async () => {
    const nobody = c.connect({ ca, token: await sign({ sub: "nobody", council_roles: ["billing-admin"] }) });
    const r = await unaryOutcome(nobody, "getSummary", {});
    expect(r).to.include({ code: status.PERMISSION_DENIED, details: "GetSummary needs the role agent, operator, approver or reviewer" });
  });

  it("keeps file tokens working beside JWTs", async () => {
    expect((await summaryWith("council_ops")).code).to.equal(status.OK);
  });
});
