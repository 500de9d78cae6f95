import { expect } from "chai";
import { createHmac } from "node:crypto";
import { mkdir, rename, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { base64url, exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { UnauthenticatedError, UnavailableError, UNAUTHENTICATED_MESSAGE } from "../../src/domain/errors.js";
import type { Principal } from "../../src/domain/principal.js";
import { AuthFileError, Authenticator, type AuthenticatorOptions } from "../../src/server/auth/authenticator.js";
import type { Credentials } from "../../src/server/auth/peer.js";
import { tokenHash } from "../../src/server/auth/tokens.js";
import { toGrpcError } from "../../src/server/status.js";
import { captureLog, eventually, rejection, replaceFile, tempDir, type LogLine } from "./helpers.js";

const bearer = (token: string): Credentials => ({ authorization: `Bearer ${token}` });

/** What authenticate() threw, checked to be the one refusal every bad credential gets. */
async function refusal(a: Authenticator, c: Credentials): Promise<Error> {
  const err = await a.authenticate(c).then(
    (p) => new Error(`expected a refusal, got principal ${p.name}`),
    (e: unknown) => e as Error,
  );
  expect(err, err.message).to.be.instanceOf(UnauthenticatedError);
  expect(err.message).to.equal(UNAUTHENTICATED_MESSAGE);
  expect(toGrpcError(err)).to.include({ code: status.UNAUTHENTICATED, details: "missing or invalid credentials" });
  return err;
}

const roles = (p: Principal) => [...p.roles].sort();

describe("authenticator", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let file: string;
  let lines: LogLine[];
  let opened: Authenticator[];
  let options: AuthenticatorOptions;

  beforeEach(async () => {
    ({ dir, remove } = await tempDir());
    file = join(dir, "auth.yaml");
    const captured = captureLog();
    lines = captured.lines;
    opened = [];
    options = { authFile: file, log: captured.log, mtls: false };
  });

  afterEach(async () => {
    for (const a of opened) a.close();
    await remove();
  });

  async function open(extra: Partial<AuthenticatorOptions> = {}): Promise<Authenticator> {
    const a = await Authenticator.open({ ...options, ...extra });
    opened.push(a);
    return a;
  }

  const debugReasons = () => lines.filter((l) => l.msg === "authentication refused").map((l) => l.reason as string);

  describe("with no auth file", () => {
    it("makes every caller anonymous with every role, whatever it sends, when there is no mTLS either", async () => {
      const a = await open({ authFile: undefined });
      expect(a.mode).to.equal("anonymous");
      expect(a.requiresCredentials).to.equal(false);
      for (const c of [{}, bearer("anything"), { authorization: "garbage" }]) {
        const p = await a.authenticate(c);
        expect(p).to.include({ name: "anonymous", anonymous: true });
        expect(roles(p)).to.deep.equal(["agent", "approver", "operator", "reviewer"]);
      }
    });

    it("under mTLS names the caller by its certificate's common name, with every role", async () => {
      const a = await open({ authFile: undefined, mtls: true });
      expect(a.mode).to.equal("certificate");
      expect(a.requiresCredentials).to.equal(true);
      const p = await a.authenticate({ peer: { commonName: "ci-bot", uriSans: [] } });
      expect(p).to.include({ name: "ci-bot", anonymous: false });
      expect(roles(p)).to.deep.equal(["agent", "approver", "operator", "reviewer"]);
      await refusal(a, {});
      await refusal(a, { peer: { uriSans: ["spiffe://x"] } });
      await refusal(a, { peer: { commonName: "anonymous", uriSans: [] } });
      // A token cannot be checked without an auth file; a caller that sends one means it.
      await refusal(a, { ...bearer("t"), peer: { commonName: "ci-bot", uriSans: [] } });
      expect(debugReasons()).to.have.length(4);
    });
  });

  describe("tokens", () => {
    beforeEach(async () => {
      await writeFile(
        file,
        `principals:
  - name: deploy-agent
    roles: [agent]
    tokens: ["${tokenHash("old-token")}", "${tokenHash("new-token")}"]
  - name: alice
    roles: [approver, operator]
    tokens: ["${tokenHash("alice-token")}"]
    certificate: { common_name: alice }
`,
      );
    });

    it("names the principal whose hash matches, with its roles", async () => {
      const a = await open();
      expect(a.mode).to.equal("file");
      const p = await a.authenticate(bearer("alice-token"));
      expect(p).to.include({ name: "alice", anonymous: false });
      expect(roles(p)).to.deep.equal(["approver", "operator"]);
      expect((await a.authenticate({ authorization: "bearer   alice-token" })).name).to.equal("alice");
    });

    it("accepts either of a principal's two tokens (rotation without downtime)", async () => {
      const a = await open();
      expect((await a.authenticate(bearer("old-token"))).name).to.equal("deploy-agent");
      expect((await a.authenticate(bearer("new-token"))).name).to.equal("deploy-agent");
    });

    it("refuses a missing, wrong or malformed credential with one message, the reason in the debug log only", async () => {
      const a = await open();
      const errs = [
        await refusal(a, {}),
        await refusal(a, bearer("wrong-token")),
        await refusal(a, bearer("alice-token extra")),
        await refusal(a, { authorization: "Basic YWxpY2U6cHc=" }),
        await refusal(a, { authorization: "Bearer" }),
        await refusal(a, { authorization: ["Bearer alice-token", "Bearer old-token"] }),
        await refusal(a, bearer("x".repeat(20_000))),
      ];
      expect(new Set(errs.map((e) => e.message)).size).to.equal(1);
      const reasons = debugReasons();
      expect(reasons).to.have.length(7);
      expect(reasons[0]).to.equal("no bearer token and no client certificate");
      expect(reasons[1]).to.equal("unknown token");
      expect(reasons[5]).to.equal("2 authorization headers");
      // The debug log never holds a token.
      expect(JSON.stringify(lines)).to.not.contain("wrong-token");
    });

    it("lets a token, when sent, decide over a client certificate", async () => {
      const a = await open({ mtls: true });
      const alicesCert = { peer: { commonName: "alice", uriSans: [] } };
      expect((await a.authenticate({ ...bearer("old-token"), ...alicesCert })).name).to.equal("deploy-agent");
      await refusal(a, { ...bearer("wrong-token"), ...alicesCert });
      expect((await a.authenticate(alicesCert)).name).to.equal("alice");
    });

    it("revokes a token when the file is edited, on reload", async () => {
      const a = await open();
      await replaceFile(file, { principals: [{ name: "deploy-agent", roles: ["agent"], tokens: [tokenHash("new-token")] }] });
      expect(await a.reload()).to.equal(true);
      await refusal(a, bearer("old-token"));
      await refusal(a, bearer("alice-token"));
      expect((await a.authenticate(bearer("new-token"))).name).to.equal("deploy-agent");
      expect(lines.some((l) => l.msg === "auth file reloaded" && l.principals === 1)).to.equal(true);
    });

    it("refuses a bad new file with a logged error naming the problem, and keeps the last good one", async () => {
      const a = await open();
      await replaceFile(file, { principals: [{ name: "deploy-agent", roles: [], tokens: [tokenHash("new-token")] }] });
      expect(await a.reload()).to.equal(false);
      const error = lines.find((l) => l.level === 50);
      expect(error?.msg).to.equal("new auth file refused; the last good one stays in force");
      expect(error?.err).to.equal(`auth file ${file}: principals[0].roles: must name at least one role (agent, operator, approver, reviewer)`);
      expect((await a.authenticate(bearer("old-token"))).name).to.equal("deploy-agent");
      expect((await a.authenticate(bearer("alice-token"))).name).to.equal("alice");

      // A half-written (empty) file, and a file that is gone, are refused the same way.
      await writeFile(file, "");
      expect(await a.reload()).to.equal(false);
      await replaceFile(file, "principals: []\n");
      expect(await a.reload()).to.equal(false);
      expect((await a.authenticate(bearer("alice-token"))).name).to.equal("alice");

      // Fixed again: in force at once.
      await replaceFile(file, { principals: [{ name: "bob", roles: ["agent"], tokens: [tokenHash("bob-token")] }] });
      expect(await a.reload()).to.equal(true);
      expect((await a.authenticate(bearer("bob-token"))).name).to.equal("bob");
      await refusal(a, bearer("alice-token"));
    });

    it("picks up a file replaced by a rename without being asked (directory watch)", async () => {
      const a = await open({ pollIntervalMs: 3_600_000 });
      await replaceFile(file, { principals: [{ name: "bob", roles: ["agent"], tokens: [tokenHash("bob-token")] }] });
      await eventually(async () => (await a.authenticate(bearer("bob-token")).catch(() => undefined))?.name === "bob", "the watch to load the new file");
      await refusal(a, bearer("alice-token"));
    });

    it("picks up a change by the periodic check alone when watching reports nothing", async () => {
      const a = await open({ watch: false, pollIntervalMs: 50 });
      await writeFile(file, JSON.stringify({ principals: [{ name: "bob", roles: ["agent"], tokens: [tokenHash("bob-token")] }] }));
      await eventually(async () => (await a.authenticate(bearer("bob-token")).catch(() => undefined))?.name === "bob", "the periodic check to load the new file");
    });

    it("logs a bad file found by the periodic check once, not at every check", async () => {
      const a = await open({ watch: false, pollIntervalMs: 20 });
      await replaceFile(file, "principals: [{ name: x }]\n");
      await eventually(() => lines.some((l) => l.level === 50), "the refusal to be logged");
      const checked = a.checks;
      await eventually(() => a.checks >= checked + 5, "five more periodic checks");
      expect(lines.filter((l) => l.level === 50)).to.have.length(1);
      expect((await a.authenticate(bearer("alice-token"))).name).to.equal("alice");
    });

    it("follows a Kubernetes-style configmap, where a symlinked directory is swapped", async () => {
      const v1 = join(dir, "..v1");
      const v2 = join(dir, "..v2");
      await mkdir(v1);
      await mkdir(v2);
      await writeFile(join(v1, "auth.yaml"), JSON.stringify({ principals: [{ name: "alice", roles: ["agent"], tokens: [tokenHash("alice-token")] }] }));
      await writeFile(join(v2, "auth.yaml"), JSON.stringify({ principals: [{ name: "bob", roles: ["agent"], tokens: [tokenHash("bob-token")] }] }));
      await symlink("..v1", join(dir, "..data"));
      const linked = join(dir, "linked.yaml");
      await symlink("..data/auth.yaml", linked);
      const a = await open({ authFile: linked, pollIntervalMs: 3_600_000 });
      expect((await a.authenticate(bearer("alice-token"))).name).to.equal("alice");
      await symlink("..v2", join(dir, "..data_tmp"));
      await rename(join(dir, "..data_tmp"), join(dir, "..data"));
      await eventually(async () => (await a.authenticate(bearer("bob-token")).catch(() => undefined))?.name === "bob", "the swapped configmap to load");
    });

    it("refuses to start on an invalid file, naming it", async () => {
      await writeFile(file, "principals:\n  - name: a\n    roles: [root]\n");
      const err = await rejection(Authenticator.open(options));
      expect(err).to.be.instanceOf(AuthFileError);
      expect(err.message).to.equal(`auth file ${file}: principals[0].roles[0]: "root" is not one of agent, operator, approver, reviewer`);
      const missing = await rejection(Authenticator.open({ ...options, authFile: join(dir, "nope.yaml") }));
      expect(missing).to.be.instanceOf(AuthFileError);
    });
  });

  describe("certificates", () => {
    beforeEach(async () => {
      await writeFile(
        file,
        JSON.stringify({
          principals: [
            { name: "ci-bot", roles: ["agent"], certificate: { common_name: "ci-bot" } },
            { name: "mesh-reviewer", roles: ["reviewer"], certificate: { uri_san: "spiffe://example.org/ns/ci/sa/reviewer" } },
          ],
        }),
      );
    });

    it("names the principal by common name or by URI SAN", async () => {
      const a = await open({ mtls: true });
      expect((await a.authenticate({ peer: { commonName: "ci-bot", uriSans: [] } })).name).to.equal("ci-bot");
      const p = await a.authenticate({ peer: { commonName: "workload-7", uriSans: ["spiffe://example.org/ns/ci/sa/reviewer"] } });
      expect(p.name).to.equal("mesh-reviewer");
      expect(roles(p)).to.deep.equal(["reviewer"]);
    });

    it("refuses a certificate that names no principal, or two", async () => {
      const a = await open({ mtls: true });
      await refusal(a, { peer: { commonName: "stranger", uriSans: ["spiffe://example.org/other"] } });
      await refusal(a, { peer: { commonName: "ci-bot", uriSans: ["spiffe://example.org/ns/ci/sa/reviewer"] } });
      expect(debugReasons()[1]).to.equal("client certificate names 2 principals: mesh-reviewer, ci-bot");
    });
  });

  describe("JWT", () => {
    const issuer = "https://issuer.example";
    const audience = "council";
    let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
    let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
    let jwks: { keys: JWK[] };

    before(async () => {
      rsa = await generateKeyPair("RS256", { extractable: true });
      ec = await generateKeyPair("ES256");
      jwks = {
        keys: [
          { ...(await exportJWK(rsa.publicKey)), kid: "rsa-1", alg: "RS256", use: "sig" },
          { ...(await exportJWK(ec.publicKey)), kid: "ec-1" },
        ],
      };
    });

    const sign = (claims: Record<string, unknown>, header: { alg: string; kid?: string } = { alg: "RS256", kid: "rsa-1" }, key?: CryptoKey) => {
      const jwt = new SignJWT({ council_roles: ["agent"], ...claims }).setProtectedHeader(header).setIssuedAt();
      if (!("iss" in claims)) jwt.setIssuer(issuer);
      if (!("aud" in claims)) jwt.setAudience(audience);
      if (!("sub" in claims)) jwt.setSubject("system:serviceaccount:ci:deployer");
      if (!("exp" in claims)) jwt.setExpirationTime("5m");
      return jwt.sign(key ?? (header.alg === "ES256" ? ec.privateKey : rsa.privateKey));
    };
    const now = () => Math.floor(Date.now() / 1000);

    async function withJwksFile(extra: object = {}, keySet: { keys: JWK[] } = jwks): Promise<Authenticator> {
      await writeFile(join(dir, "jwks.json"), JSON.stringify(keySet));
      await writeFile(
        file,
        JSON.stringify({
          principals: [{ name: "alice", roles: ["approver"], tokens: [tokenHash("alice-token")] }],
          jwt: { jwks_file: "jwks.json", issuer, audience, ...extra },
        }),
      );
      return open();
    }

    it("names the caller by its subject, with the Council roles of its roles claim", async () => {
      const a = await withJwksFile();
      const p = await a.authenticate(bearer(await sign({ council_roles: ["agent", "operator", "admin"] })));
      expect(p).to.include({ name: "system:serviceaccount:ci:deployer", anonymous: false });
      expect(roles(p)).to.deep.equal(["agent", "operator"]);
      const q = await a.authenticate(bearer(await sign({ council_roles: "reviewer approver", sub: "svc" }, { alg: "ES256", kid: "ec-1" })));
      expect(q.name).to.equal("svc");
      expect(roles(q)).to.deep.equal(["approver", "reviewer"]);
      // No Council role: authenticated, and then denied each call by the roles table.
      expect(roles(await a.authenticate(bearer(await sign({ council_roles: undefined }))))).to.deep.equal([]);
      // Token hashes still work beside JWTs.
      expect((await a.authenticate(bearer("alice-token"))).name).to.equal("alice");
    });

    it("reads the name and roles from the claims the file names", async () => {
      const a = await withJwksFile({ name_claim: "email", roles_claim: "https://council.example/roles" });
      const p = await a.authenticate(bearer(await sign({ email: "dev@example.org", "https://council.example/roles": ["operator"] })));
      expect(p.name).to.equal("dev@example.org");
      expect(roles(p)).to.deep.equal(["operator"]);
    });

    it("allows a little clock skew on exp", async () => {
      const a = await withJwksFile();
      expect((await a.authenticate(bearer(await sign({ exp: now() - 5 })))).name).to.equal("system:serviceaccount:ci:deployer");
    });

    it("refuses every bad token with the same message: expired, not yet valid, no exp, wrong audience or issuer, unknown kid, bad name", async () => {
      const a = await withJwksFile();
      const other = await generateKeyPair("RS256");
      const bad = [
        await sign({ exp: now() - 600 }),
        await sign({ nbf: now() + 600 }),
        await sign({ exp: undefined }).then(async () =>
          new SignJWT({ council_roles: ["agent"] }).setProtectedHeader({ alg: "RS256", kid: "rsa-1" }).setIssuer(issuer).setAudience(audience).setSubject("s").sign(rsa.privateKey),
        ),
        await sign({ aud: "another-service" }),
        await sign({ iss: "https://evil.example" }),
        await sign({}, { alg: "RS256", kid: "rsa-9" }),
        await sign({}, { alg: "RS256", kid: "rsa-1" }, other.privateKey),
        await sign({ sub: "anonymous" }),
        await sign({ sub: 42 }),
      ];
      for (const token of bad) await refusal(a, bearer(token));
      const reasons = debugReasons();
      expect(reasons).to.have.length(bad.length);
      expect(reasons[0]).to.contain("ERR_JWT_EXPIRED");
      expect(reasons[1]).to.contain("ERR_JWT_CLAIM_VALIDATION_FAILED");
      expect(reasons[2]).to.contain('missing required "exp" claim');
      expect(reasons[3]).to.contain('"aud"');
      expect(reasons[4]).to.contain('"iss"');
      expect(reasons[5]).to.contain("ERR_JWKS_NO_MATCHING_KEY");
      expect(reasons[6]).to.contain("ERR_JWS_SIGNATURE_VERIFICATION_FAILED");
      expect(reasons[7]).to.contain("reserved");
      expect(reasons[8]).to.contain("is not a string");
    });

    it("refuses alg none, and HS256 signed with the public key's bytes (algorithm confusion)", async () => {
      const a = await withJwksFile();
      const claims = { iss: issuer, aud: audience, sub: "mallory", exp: now() + 300, council_roles: ["operator"] };
      const part = (o: object) => base64url.encode(JSON.stringify(o));
      const body = part(claims);
      const none = `${part({ alg: "none", typ: "JWT", kid: "rsa-1" })}.${body}.`;
      await refusal(a, bearer(none));
      for (const pem of [await exportSPKI(rsa.publicKey), JSON.stringify(jwks.keys[0])]) {
        const signingInput = `${part({ alg: "HS256", typ: "JWT", kid: "rsa-1" })}.${body}`;
        const forged = `${signingInput}.${createHmac("sha256", pem).update(signingInput).digest("base64url")}`;
        await refusal(a, bearer(forged));
      }
      for (const reason of debugReasons()) expect(reason).to.contain("ERR_JOSE_ALG_NOT_ALLOWED");
    });

    it("refuses an algorithm the file does not list", async () => {
      const a = await withJwksFile({ algorithms: ["RS256"] });
      await refusal(a, bearer(await sign({}, { alg: "ES256", kid: "ec-1" })));
      expect(debugReasons()[0]).to.contain("ERR_JOSE_ALG_NOT_ALLOWED");
    });

    it("tries each key when a token has no kid and the set has several", async () => {
      const second = await generateKeyPair("RS256");
      const a = await withJwksFile({}, { keys: [{ ...(await exportJWK(second.publicKey)) }, { ...(await exportJWK(rsa.publicKey)) }] });
      expect((await a.authenticate(bearer(await sign({ sub: "no-kid" }, { alg: "RS256" })))).name).to.equal("no-kid");
      await refusal(a, bearer(await sign({ sub: "no-kid" }, { alg: "RS256" }, (await generateKeyPair("RS256")).privateKey)));
    });

    it("takes a new key set when the JWKS file is replaced (key rotation)", async () => {
      const a = await withJwksFile();
      const next = await generateKeyPair("ES256");
      await replaceFile(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...(await exportJWK(next.publicKey)), kid: "ec-2" }] }));
      expect(await a.reload()).to.equal(true);
      expect((await a.authenticate(bearer(await sign({ sub: "rotated" }, { alg: "ES256", kid: "ec-2" }, next.privateKey)))).name).to.equal("rotated");
      await refusal(a, bearer(await sign({})));
    });

    it("treats an opaque token that matches no hash as unknown, not as a JWT", async () => {
      const a = await withJwksFile();
      await refusal(a, bearer("council_notavalidtoken"));
      expect(debugReasons()).to.deep.equal(["unknown token, and not a JWT"]);
    });

    describe("from a URL", () => {
      let server: Server;
      let url: string;
      let fetches: number;
      let down: boolean;

      beforeEach(async () => {
        fetches = 0;
        down = false;
        server = createServer((_req, res) => {
          fetches++;
          if (down) {
            res.writeHead(503).end();
            return;
          }
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(jwks));
        });
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
      });

      afterEach(async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      });

      async function withJwksUrl(timings: AuthenticatorOptions["remoteKeySet"] = {}): Promise<Authenticator> {
        await writeFile(file, JSON.stringify({ jwt: { jwks_url: url, issuer, audience } }));
        return open({ remoteKeySet: timings });
      }

      it("verifies against the fetched set, and refetches for unknown kids at most once per cooldown", async () => {
        const a = await withJwksUrl({ cooldownMs: 3_600_000 });
        expect((await a.authenticate(bearer(await sign({})))).name).to.equal("system:serviceaccount:ci:deployer");
        expect(fetches).to.equal(1);
        for (let i = 0; i < 20; i++) await refusal(a, bearer(await sign({}, { alg: "RS256", kid: `random-${i}` })));
        expect(fetches).to.equal(1);
      });

      it("keeps verifying with the last set fetched while the issuer is down", async () => {
        const a = await withJwksUrl({ maxAgeMs: 0, cooldownMs: 0 });
        expect((await a.authenticate(bearer(await sign({})))).name).to.equal("system:serviceaccount:ci:deployer");
        down = true;
        expect((await a.authenticate(bearer(await sign({})))).name).to.equal("system:serviceaccount:ci:deployer");
        await refusal(a, bearer(await sign({}, { alg: "RS256", kid: "rsa-9" })));
        expect(lines.some((l) => l.msg.startsWith("JWT key set cannot be fetched"))).to.equal(true);
      });

      it("answers UNAVAILABLE, not UNAUTHENTICATED, when no key set could ever be fetched", async () => {
        down = true;
        const a = await withJwksUrl();
        const err = await rejection(a.authenticate(bearer(await sign({}))));
        expect(err).to.be.instanceOf(UnavailableError);
        expect(toGrpcError(err).code).to.equal(status.UNAVAILABLE);
        expect(err.message).to.equal("credentials cannot be verified now; retry later");
      });
    });
  });
});
