/**
 * Bearer tokens through gRPC over TLS (SPEC §8, Principals): missing, wrong and malformed tokens
 * are all UNAUTHENTICATED with one message; a token revoked by editing the auth file stops
 * working without a restart; a principal's second token works beside the first (rotation); a bad
 * new file is refused and the last good one stays; under mTLS a token, when sent, decides who
 * the caller is. Every call's log line names its principal.
 *
 * Authentication happens before a handler runs, so no store is reached by a refused call; these
 * run on the in-process store (the role and rate suites run on Redis too).
 */
import { writeFile } from "node:fs/promises";
import { Metadata, status } from "@grpc/grpc-js";
import { expect } from "chai";
import { stringify } from "yaml";
import { UNAUTHENTICATED_MESSAGE } from "../../src/domain/errors.js";
import { wireSuggestion } from "../support/fixtures.js";
import { startCouncil, type ConnectOptions, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { authDocument, authFileIn, callLines, makePki, reviewOutcome, unaryOutcome, writeAuthFile, type Pki, type PrincipalSpec } from "./grpc_helpers.js";
import { captureLog, replaceFile, tempDir, type LogLine } from "./helpers.js";

const AGENT_OLD = "council_agent-old-token";
const AGENT_NEW = "council_agent-new-token";
const ALICE = "council_alice-token";
const OPS = "council_ops-token";

const principals = (agentTokens: string[]): PrincipalSpec[] => [
  { name: "deploy-agent", roles: ["agent"], tokens: agentTokens },
  { name: "alice", roles: ["approver"], tokens: [ALICE] },
  { name: "ops", roles: ["operator"], tokens: [OPS] },
  { name: "ci-bot", roles: ["agent"], certificate: { common_name: "ci-bot" } },
];

describe("bearer tokens through gRPC", function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  let pki: Pki;
  let file: string;
  let c: Running;
  let lines: LogLine[];

  before(async () => {
    ({ dir, remove } = await tempDir());
    pki = await makePki(dir);
  });
  after(() => remove());

  beforeEach(async () => {
    file = authFileIn(dir);
    await writeAuthFile(file, principals([AGENT_OLD]));
    const captured = captureLog();
    lines = captured.lines;
    c = await startCouncil({
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile },
      authFile: file,
      filePollIntervalMs: 200,
      log: captured.log,
      connect: { ca: pki.ca.cert },
    });
  });
  afterEach(() => c.stop());

  const as = (token?: string, extra: ConnectOptions = {}) => c.connect({ ca: pki.ca.cert, ...(token ? { token } : {}), ...extra });
  const summaryAs = (token?: string) => unaryOutcome(as(token), "getSummary", {});
  /** One authorization header as given (grpc-js will not send two; the authenticator's unit tests refuse two). */
  const withHeader = (value: string) => {
    const md = new Metadata();
    md.set("authorization", value);
    return unaryOutcome(c.client, "getSummary", {}, md);
  };

  it("refuses a missing, unknown or malformed token with UNAUTHENTICATED and one message, and logs no token", async () => {
    const refused = [
      await summaryAs(),
      await summaryAs("council_wrong-token"),
      await summaryAs(`${AGENT_OLD}x`),
      await withHeader(`Basic ${Buffer.from("deploy-agent:pw").toString("base64")}`),
      await withHeader(AGENT_OLD),
      await withHeader("Bearer "),
    ];
    for (const r of refused) expect(r, JSON.stringify(r)).to.include({ code: status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE });
    expect((await summaryAs(AGENT_OLD)).code).to.equal(status.OK);
    expect((await withHeader(`bearer   ${AGENT_OLD}`)).code).to.equal(status.OK);

    // The reasons differ, in the debug log only; no token, good or bad, is ever written there.
    await waitFor(() => lines.filter((l) => l.msg === "authentication refused").length === refused.length, { what: "the debug reasons" });
    const text = lines.map((l) => JSON.stringify(l)).join("\n");
    for (const token of [AGENT_OLD, ALICE, "council_wrong-token", Buffer.from("deploy-agent:pw").toString("base64")]) {
      expect(text).to.not.include(token);
    }
  });

  it("stops accepting a token removed from the auth file, without a restart", async () => {
    const agent = as(AGENT_OLD);
    expect((await unaryOutcome(agent, "getSummary", {})).code).to.equal(status.OK);
    // Revoked: deploy-agent is left with no token (the file stays valid).
    await replaceFile(file, authDocument(principals([])));
    await waitFor(async () => (await unaryOutcome(agent, "getSummary", {})).code === status.UNAUTHENTICATED, {
      what: "the revoked token to be refused",
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    const r = await unaryOutcome(agent, "getSummary", {});
    expect(r).to.include({ code: status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE });
    expect((await summaryAs(ALICE)).code).to.equal(status.OK);
  });

  it("takes an edit made in place (no rename) too", async () => {
    await writeFile(file, stringify(authDocument(principals([AGENT_NEW]))));
    await waitFor(async () => (await summaryAs(AGENT_NEW)).code === status.OK, { what: "the new token to work", timeoutMs: 10_000, intervalMs: 50 });
    expect((await summaryAs(AGENT_OLD)).code).to.equal(status.UNAUTHENTICATED);
  });

  it("accepts a principal's second token beside the first, then only the second once the first is removed (rotation)", async () => {
    expect((await summaryAs(AGENT_NEW)).code).to.equal(status.UNAUTHENTICATED);
    await replaceFile(file, authDocument(principals([AGENT_OLD, AGENT_NEW])));
    await waitFor(async () => (await summaryAs(AGENT_NEW)).code === status.OK, { what: "the second token to work", timeoutMs: 10_000, intervalMs: 50 });
    expect((await summaryAs(AGENT_OLD)).code, "the first token still works").to.equal(status.OK);

    // Both tokens name the same principal: a review under either is deploy-agent's.
    for (const token of [AGENT_OLD, AGENT_NEW]) {
      const r = await reviewOutcome(as(token), { suggestion: wireSuggestion(), dryRun: true });
      expect(r.code, r.details).to.equal(status.OK);
    }
    await waitFor(() => callLines(lines, "ReviewSuggestion").length === 2, { what: "two review log lines" });
    expect(callLines(lines, "ReviewSuggestion").map((l) => l.principal)).to.deep.equal(["deploy-agent", "deploy-agent"]);

    await replaceFile(file, authDocument(principals([AGENT_NEW])));
    await waitFor(async () => (await summaryAs(AGENT_OLD)).code === status.UNAUTHENTICATED, {
      what: "the first token to be refused",
      timeoutMs: 10_000,
      intervalMs: 50,
    });
    expect((await summaryAs(AGENT_NEW)).code).to.equal(status.OK);
  });

  it("refuses an invalid new auth file with a logged error and keeps the last good one", async () => {
    const refusals = () => lines.filter((l) => l.msg.startsWith("new auth file refused"));
    await replaceFile(file, "principals:\n  - name: deploy-agent\n    roles: [agent]\n    tokens: [\"not-a-hash\"]\n");
    await waitFor(() => refusals().length > 0, { what: "the refusal of the bad file", timeoutMs: 10_000 });
    expect(refusals()[0]!.err).to.include("principals[0].tokens[0]");
    expect((await summaryAs(AGENT_OLD)).code).to.equal(status.OK);
    expect((await summaryAs(ALICE)).code).to.equal(status.OK);
  });

  it("names the principal on every call's log line, and null when the caller is not authenticated", async () => {
    await summaryAs(ALICE);
    await unaryOutcome(as(OPS), "listReviewers", {});
    await summaryAs("council_nobody");
    await reviewOutcome(as(ALICE), { suggestion: wireSuggestion() });
    await waitFor(() => callLines(lines).length === 4, { what: "four call log lines" });
    expect(callLines(lines).map((l) => [l.method, l.status, l.principal])).to.deep.equal([
      ["GetSummary", "OK", "alice"],
      ["ListReviewers", "OK", "ops"],
      ["GetSummary", "UNAUTHENTICATED", null],
      ["ReviewSuggestion", "PERMISSION_DENIED", "alice"],
    ]);
  });
});

describe("bearer tokens and client certificates together (mTLS with an auth file)", function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  let pki: Pki;
  let c: Running;
  let lines: LogLine[];

  before(async () => {
    ({ dir, remove } = await tempDir());
    pki = await makePki(dir);
    await writeAuthFile(authFileIn(dir), principals([AGENT_OLD]));
    const captured = captureLog();
    lines = captured.lines;
    c = await startCouncil({
      tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: pki.ca.certFile },
      authFile: authFileIn(dir),
      log: captured.log,
    });
  });
  after(async () => {
    await c.stop();
    await remove();
  });

  it("names the caller by its certificate without a token, by the token when one is sent, and refuses a bad token", async () => {
    const bot = await pki.client("both-bot", "ci-bot");
    const stranger = await pki.client("both-stranger", "stranger");
    const tls = { ca: pki.ca.cert, cert: bot.cert, key: bot.key };

    const byCert = await reviewOutcome(c.connect(tls), { suggestion: wireSuggestion(), dryRun: true });
    expect(byCert.code, byCert.details).to.equal(status.OK);
    // alice's token over ci-bot's certificate: the caller is alice, an approver, who may not review.
    const byToken = await reviewOutcome(c.connect({ ...tls, token: ALICE }), { suggestion: wireSuggestion(), dryRun: true });
    expect(byToken).to.include({ code: status.PERMISSION_DENIED, details: "ReviewSuggestion needs the role agent or operator" });
    // A wrong token is not rescued by a good certificate: a caller that sends a token means it.
    const wrong = await unaryOutcome(c.connect({ ...tls, token: "council_wrong" }), "getSummary", {});
    expect(wrong).to.include({ code: status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE });
    // A verified certificate that names no principal is not a caller.
    const unknown = await unaryOutcome(c.connect({ ca: pki.ca.cert, cert: stranger.cert, key: stranger.key }), "getSummary", {});
    expect(unknown).to.include({ code: status.UNAUTHENTICATED, details: UNAUTHENTICATED_MESSAGE });
    await waitFor(() => callLines(lines).length === 4, { what: "four call log lines" });
    expect(callLines(lines).map((l) => l.principal)).to.deep.equal(["ci-bot", "alice", null, null]);
  });
});
