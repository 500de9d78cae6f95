/**
 * The TypeScript client against Council servers that speak TLS, require client certificates, and
 * know principals from an auth file (SPEC §8). The root's test/clients.test.ts starts them and
 * passes, in the environment:
 *
 * - COUNCIL_TEST_TLS_ADDR: TLS, with an auth file of principals and tokens;
 * - COUNCIL_TEST_MTLS_ADDR: the same, and a client certificate is required (mTLS);
 * - COUNCIL_TEST_LIMITED_ADDR: like the TLS one, with a review rate so low that each principal
 *   gets one review (burst 1) and then RESOURCE_EXHAUSTED;
 * - COUNCIL_TEST_CA_FILE: the CA (PEM) that signed the servers' and the client's certificates;
 * - COUNCIL_TEST_CLIENT_CERT_FILE, COUNCIL_TEST_CLIENT_KEY_FILE: a client certificate (PEM) whose
 *   common name the auth file names (principal COUNCIL_TEST_CLIENT_PRINCIPAL, role agent);
 * - COUNCIL_TEST_AGENT_TOKEN: a token of principal COUNCIL_TEST_AGENT_PRINCIPAL, role agent;
 * - COUNCIL_TEST_APPROVER_TOKEN: a token of a principal with the role approver only.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { expect } from "chai";
import {
  connect,
  CouncilError,
  ImpactLevel,
  PermissionDeniedError,
  ResourceExhaustedError,
  RiskLevel,
  status,
  UnauthenticatedError,
  UnavailableError,
  type ConnectOptions,
  type CouncilClient,
} from "../src/index.js";

const NAMES = [
  "COUNCIL_TEST_TLS_ADDR",
  "COUNCIL_TEST_MTLS_ADDR",
  "COUNCIL_TEST_LIMITED_ADDR",
  "COUNCIL_TEST_CA_FILE",
  "COUNCIL_TEST_CLIENT_CERT_FILE",
  "COUNCIL_TEST_CLIENT_KEY_FILE",
  "COUNCIL_TEST_CLIENT_PRINCIPAL",
  "COUNCIL_TEST_AGENT_TOKEN",
  "COUNCIL_TEST_AGENT_PRINCIPAL",
  "COUNCIL_TEST_APPROVER_TOKEN",
] as const;

function secureEnv(): Record<(typeof NAMES)[number], string> {
  const missing = NAMES.filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(
      `set ${missing.join(", ")}: these tests need the TLS, mTLS and rate-limited servers that the ` +
        "repository's test/clients.test.ts starts (npx mocha test/clients.test.ts)",
    );
  }
  return Object.fromEntries(NAMES.map((n) => [n, process.env[n]!])) as Record<(typeof NAMES)[number], string>;
}

const suggestion = () => ({
  id: `ts-secure-${randomUUID().slice(0, 8)}`,
  title: "Tidy the retry helper",
  risk: RiskLevel.RISK_LEVEL_LOW,
  impact: ImpactLevel.IMPACT_LEVEL_LOW,
});

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("the call succeeded; it should have failed");
}

describe("TypeScript client: TLS, mTLS, tokens and typed auth errors", () => {
  const env = secureEnv();
  const ca = readFileSync(env.COUNCIL_TEST_CA_FILE);
  const cert = readFileSync(env.COUNCIL_TEST_CLIENT_CERT_FILE);
  const key = readFileSync(env.COUNCIL_TEST_CLIENT_KEY_FILE);
  const clients: CouncilClient[] = [];
  const open = (addr: string, options: ConnectOptions) => {
    const c = connect(addr, { timeoutMs: 10_000, reviewTimeoutMs: 15_000, ...options });
    clients.push(c);
    return c;
  };
  afterEach(() => clients.splice(0).forEach((c) => c.close()));

  it("connects over TLS trusting a private CA, and a token makes the call the principal's", async () => {
    const c = open(env.COUNCIL_TEST_TLS_ADDR, { tls: { rootCerts: ca }, token: env.COUNCIL_TEST_AGENT_TOKEN });
    const decision = await c.review(suggestion()).decision;
    expect(decision.id).to.match(/^dec-/);
    expect(decision.submittedBy).to.equal(env.COUNCIL_TEST_AGENT_PRINCIPAL);
    expect((await c.getDecision(decision.id)).id).to.equal(decision.id);
    // PEM as a string works as well as a Buffer.
    const fromString = open(env.COUNCIL_TEST_TLS_ADDR, { tls: { rootCerts: ca.toString() }, token: env.COUNCIL_TEST_AGENT_TOKEN });
    expect((await fromString.reviewers()).reviewers).to.have.length(5);
    // The certificate is checked against serverName when one is given: it names localhost, not
    // another host.
    const named = open(env.COUNCIL_TEST_TLS_ADDR, { tls: { rootCerts: ca, serverName: "localhost" }, token: env.COUNCIL_TEST_AGENT_TOKEN });
    expect((await named.summary()).totalDecisions).to.be.greaterThan(0);
    const misnamed = open(env.COUNCIL_TEST_TLS_ADDR, {
      tls: { rootCerts: ca, serverName: "elsewhere.example" },
      token: env.COUNCIL_TEST_AGENT_TOKEN,
      retry: { attempts: 1 },
    });
    expect(await failure(misnamed.summary())).to.be.instanceOf(UnavailableError);
  });

  it("a plaintext client, or one that trusts only the system roots, cannot talk to the TLS server", async () => {
    const plain = open(env.COUNCIL_TEST_TLS_ADDR, { token: env.COUNCIL_TEST_AGENT_TOKEN, retry: { attempts: 1 } });
    const err = await failure(plain.summary());
    expect(err).to.be.instanceOf(UnavailableError);
    const systemRoots = open(env.COUNCIL_TEST_TLS_ADDR, { tls: true, token: env.COUNCIL_TEST_AGENT_TOKEN, retry: { attempts: 1 } });
    expect(await failure(systemRoots.summary())).to.be.instanceOf(UnavailableError);
  });

  it("connects with a client certificate (mTLS), which names the principal when no token is sent", async () => {
    const c = open(env.COUNCIL_TEST_MTLS_ADDR, { tls: { rootCerts: ca, certChain: cert, privateKey: key } });
    const decision = await c.review(suggestion()).decision;
    expect(decision.submittedBy).to.equal(env.COUNCIL_TEST_CLIENT_PRINCIPAL);
    // Without a client certificate the handshake is refused.
    const noCert = open(env.COUNCIL_TEST_MTLS_ADDR, { tls: { rootCerts: ca }, token: env.COUNCIL_TEST_AGENT_TOKEN, retry: { attempts: 1 } });
    expect(await failure(noCert.summary())).to.be.instanceOf(UnavailableError);
  });

  it("refuses a client certificate without its key, before connecting", () => {
    expect(() => connect(env.COUNCIL_TEST_MTLS_ADDR, { tls: { rootCerts: ca, certChain: cert } })).to.throw(TypeError, /privateKey/);
  });

  it("a missing or wrong token is an UnauthenticatedError, not retried", async () => {
    for (const token of [undefined, "council_not-a-token-the-server-knows", `${env.COUNCIL_TEST_AGENT_TOKEN}x`]) {
      const c = open(env.COUNCIL_TEST_TLS_ADDR, { tls: { rootCerts: ca }, token, retry: { attempts: 5, initialBackoffMs: 10, maxBackoffMs: 20 } });
      const err = await failure(c.summary());
      expect(err, String(token)).to.be.instanceOf(UnauthenticatedError);
      expect(err).to.be.instanceOf(CouncilError);
      expect((err as CouncilError).code).to.equal(status.UNAUTHENTICATED);
      expect((err as CouncilError).retryable).to.equal(false);
      const review = c.review(suggestion());
      expect(await failure(review.decision)).to.be.instanceOf(UnauthenticatedError);
      expect(review.attempts).to.equal(1);
    }
  });

  it("a principal without the role gets a PermissionDeniedError naming the role", async () => {
    const c = open(env.COUNCIL_TEST_TLS_ADDR, { tls: { rootCerts: ca }, token: env.COUNCIL_TEST_APPROVER_TOKEN });
    // Reads are open to every role: the token is good.
    expect((await c.summary()).totalDecisions).to.be.a("number");
    const review = c.review(suggestion());
    const err = await failure(review.decision);
    expect(err).to.be.instanceOf(PermissionDeniedError);
    expect((err as CouncilError).code).to.equal(status.PERMISSION_DENIED);
    expect((err as CouncilError).details).to.match(/agent/);
    expect(review.attempts).to.equal(1);
    // The iteration reports it too.
    const iterated = await failure(
      (async () => {
        for await (const _ of c.review(suggestion())) void _;
      })(),
    );
    expect(iterated).to.be.instanceOf(PermissionDeniedError);
  });

  it("past the review rate: a ResourceExhaustedError after exactly one attempt (not retried like UNAVAILABLE)", async () => {
    const c = open(env.COUNCIL_TEST_LIMITED_ADDR, {
      tls: { rootCerts: ca },
      token: env.COUNCIL_TEST_AGENT_TOKEN,
      retry: { attempts: 5, initialBackoffMs: 10, maxBackoffMs: 20 },
    });
    const first = c.review(suggestion());
    expect((await first.decision).id).to.match(/^dec-/);
    const second = c.review(suggestion());
    const err = await failure(second.decision);
    expect(err).to.be.instanceOf(ResourceExhaustedError);
    expect((err as CouncilError).retryable).to.equal(false);
    expect((err as CouncilError).details).to.match(/rate/);
    expect(second.attempts).to.equal(1);
  });
});
