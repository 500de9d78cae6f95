/**
 * The example secret scanner (examples/secret_scanner.ts): its scan on its own (planted
 * credentials of each kind found on added lines, with file and line; removed and context lines,
 * placeholders and short or plain values not flagged; the credential never in the vote), then the
 * example itself run as its header says, as a reviewer of the external-reviewer server
 * (COUNCIL_TEST_EXTERNAL_ADDR, the reviewer token), vetoing a change that adds an AWS key.
 *
 * The credentials below are made up, and put together at run time so that no file of this
 * repository holds one whole (secret scanners of the repository's host would flag it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { expect } from "chai";
import { entropy, looksSecret, scanDiff, secretScannerVote } from "../examples/secret_scanner.js";
import { connect, DecisionType, ImpactLevel, ReviewerRole, RiskLevel, VoteType, type CouncilClient, type Suggestion, type Vote } from "../src/index.js";

const AWS_KEY = ["AKIA", "Q3EXAMPLEZ7TKN4W"].join("");
const GITHUB_TOKEN = ["gh", "p_", "x7Kq9Zr2Lm4Np8Vt1Wy5Bc3Df6Gh0Jk2Mn4Pq"].join("");
const SLACK_TOKEN = ["xo", "xb-", "1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"].join("");
const PEM_HEADER = ["-----BEGIN ", "RSA PRIVATE", " KEY-----"].join("");
const OPENSSH_HEADER = ["-----BEGIN ", "OPENSSH PRIVATE", " KEY-----"].join("");
const RANDOM_VALUE = ["9fQ2xL7", "vB4mK8zR1tW6yN3c"].join("");

/** A one-file diff adding `added` lines after two context lines, at line 10 of the new file. */
const diffAdding = (file: string, added: string[], removed: string[] = []) =>
  [
    `diff --git a/${file} b/${file}`,
    `--- a/${file}`,
    `+++ b/${file}`,
    `@@ -10,${2 + removed.length} +10,${2 + added.length} @@`,
    " first context line",
    " second context line",
    ...removed.map((l) => `-${l}`),
    ...added.map((l) => `+${l}`),
    "",
  ].join("\n");

const task = (diff: string) => ({ suggestion: { diff } as Suggestion });

/** Every text of a vote a person may see. */
const voteText = (v: { reasoning?: string; concerns?: string[]; conditions?: string[] }) => [v.reasoning ?? "", ...(v.concerns ?? []), ...(v.conditions ?? [])].join("\n");

describe("TypeScript client: the example secret scanner's scan", () => {
  it("finds each kind of planted credential on an added line, with its file and line in the new file", () => {
    const cases: [string, string][] = [
      [`aws_access_key_id = ${AWS_KEY}`, "AWS access key id"],
      [PEM_HEADER, "private key"],
      [OPENSSH_HEADER, "private key"],
      [`const token = process.env.GH ?? "${GITHUB_TOKEN}";`, "GitHub token"],
      [`SLACK_WEBHOOK_TOKEN: ${SLACK_TOKEN}`, "Slack token"],
      [`db_password = "${RANDOM_VALUE}"`, "password assigned in clear"],
      [`"clientSecret": "${RANDOM_VALUE}",`, "secret assigned in clear"],
      [`API_KEY='${RANDOM_VALUE}'`, "secret assigned in clear"],
    ];
    for (const [line, kind] of cases) {
      const findings = scanDiff(diffAdding("config/prod.env", ["harmless = 1", line]));
      expect(findings, line).to.deep.equal([{ file: "config/prod.env", line: 13, kind }]);
    }
  });

  it("looks only at added lines: removed and context lines, and file headers, are not flagged", () => {
    expect(scanDiff(diffAdding("config/prod.env", ["aws_access_key_id = ${AWS_ACCESS_KEY_ID}"], [`aws_access_key_id = ${AWS_KEY}`]))).to.deep.equal([]);
    const context = [`--- a/keys.txt`, `+++ b/keys.txt`, `@@ -1,2 +1,3 @@`, ` ${AWS_KEY}`, `+fine`, ` ${PEM_HEADER}`, ""].join("\n");
    expect(scanDiff(context)).to.deep.equal([]);
    // An added line that starts with "++" is a line, not a header; the counts of the hunk say so.
    const plusPlus = [`--- a/a.txt`, `+++ b/a.txt`, `@@ -0,0 +1,2 @@`, `+++ ${AWS_KEY}`, `+ok`, ""].join("\n");
    expect(scanDiff(plusPlus)).to.deep.equal([{ file: "a.txt", line: 1, kind: "AWS access key id" }]);
    // Two files and two hunks: each finding names its own file and line.
    const two = [
      diffAdding("a.yaml", ["x: 1"]),
      `--- a/b.yaml`,
      `+++ b/b.yaml`,
      `@@ -1,1 +1,1 @@`,
      `-old: 1`,
      `+new: 1`,
      `@@ -40,1 +40,2 @@`,
      ` same`,
      `+key: ${AWS_KEY}`,
      "",
    ].join("\n");
    expect(scanDiff(two)).to.deep.equal([{ file: "b.yaml", line: 41, kind: "AWS access key id" }]);
  });

  it("does not flag placeholders, environment lookups, short or plain values", () => {
    const lines = [
      'password = "changeme"',
      'password = "${DB_PASSWORD}"',
      'api_key: "{{ .Values.apiKey }}"',
      'secret = "<your secret here>"',
      'token = "your-token-goes-here-please"',
      'password = "xxxxxxxxxxxxxxxxxxxx"',
      'api_key = "aaaaaaaaaaaaaaaaaaaaaaaa"',
      'password = "short1A"',
      'token = process.env.TOKEN',
      'secret_name = "production_database_credentials"',
      "passwordField = document.querySelector('#password')",
    ];
    expect(scanDiff(diffAdding("app.ts", lines))).to.deep.equal([]);
    expect(looksSecret(RANDOM_VALUE)).to.equal(true);
    expect(entropy("aaaa")).to.equal(0);
    expect(entropy("abcd")).to.equal(2);
  });

  it("vetoes with credential_in_diff, naming file:line and never the credential; approves the rest with a low confidence", () => {
    const vote = secretScannerVote(task(diffAdding("deploy/env.sh", [`export AWS_ACCESS_KEY_ID=${AWS_KEY}`, `export GH=${GITHUB_TOKEN}`])));
    expect(vote.vote).to.equal("reject");
    expect(vote.veto).to.equal("credential_in_diff");
    expect(vote.concerns).to.deep.equal(["deploy/env.sh:12: AWS access key id", "deploy/env.sh:13: GitHub token"]);
    expect(voteText(vote)).to.not.include(AWS_KEY).and.not.include(GITHUB_TOKEN).and.not.include(AWS_KEY.slice(4));
    const clean = secretScannerVote(task(diffAdding("src/retry.ts", ["const tries = 4;"])));
    expect(clean.vote).to.equal("approve");
    expect(clean.veto).to.equal(undefined);
    expect(clean.confidence).to.be.at.most(0.5);
    expect(clean.reasoning).to.match(/Only credentials were looked for/);
    expect(secretScannerVote(task("")).vote).to.equal("approve");
  });
});

const ADDR = process.env.COUNCIL_TEST_EXTERNAL_ADDR;
const REVIEWER_TOKEN = process.env.COUNCIL_TEST_REVIEWER_TOKEN;
const REVIEWER = process.env.COUNCIL_TEST_REVIEWER_PRINCIPAL;
const AGENT_TOKEN = process.env.COUNCIL_TEST_AGENT_TOKEN;

describe("TypeScript client: the example secret scanner through gRPC", function () {
  this.timeout(60_000);
  let agent: CouncilClient;
  let scanner: ChildProcess | undefined;
  let out = "";
  let err = "";
  let exited: Promise<number | null>;

  before(async () => {
    if (!ADDR || !REVIEWER_TOKEN || !REVIEWER || !AGENT_TOKEN) {
      throw new Error("set COUNCIL_TEST_EXTERNAL_ADDR, COUNCIL_TEST_REVIEWER_TOKEN, COUNCIL_TEST_REVIEWER_PRINCIPAL and COUNCIL_TEST_AGENT_TOKEN");
    }
    agent = connect(ADDR, { token: AGENT_TOKEN });
    // As the example's header says to run it; both external roles, so that quality (which fails
    // closed when no reviewer serves it) does not reject the clean change.
    const cwd = new URL("..", import.meta.url).pathname;
    scanner = spawn(process.execPath, ["--import", "tsx", join(cwd, "examples/secret_scanner.ts")], {
      cwd,
      env: { ...process.env, COUNCIL_ADDR: ADDR, COUNCIL_TOKEN: REVIEWER_TOKEN, COUNCIL_ROLES: "safety,quality", COUNCIL_CA_FILE: "", COUNCIL_CERT_FILE: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    scanner.stdout!.on("data", (c: Buffer) => (out += c.toString()));
    scanner.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    exited = new Promise((resolve) => scanner!.on("exit", (code) => resolve(code)));
    // Waits for the line that says it serves (the event itself), bounded by 30 s.
    const serving = new Promise<void>((resolve, reject) => {
      scanner!.stdout!.on("data", () => out.includes("serving safety, quality at") && resolve());
      scanner!.on("exit", (code) => reject(new Error(`the scanner exited (${code}):\n${out}\n${err}`)));
    });
    if ((await orAfter(serving, 30_000, "timed out")) === "timed out") throw new Error(`the scanner did not say it serves within 30 s:\n${out}\n${err}`);
  });

  after(async () => {
    agent?.close();
    if (scanner && scanner.exitCode === null) {
      scanner.kill("SIGTERM");
      await orAfter(exited, 10_000, "still running");
      if (scanner.exitCode === null) scanner.kill("SIGKILL");
    }
  });

  /** `promise`'s value, or `fallback` once `ms` have passed without it. */
  function orAfter<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve(fallback), ms);
      timer.unref();
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(e);
        },
      );
    });
  }

  const review = (file: string, added: string[]) =>
    agent.review({
      id: `ts-scanner-${randomUUID().slice(0, 8)}`,
      title: "Wire the deploy script to S3",
      risk: RiskLevel.RISK_LEVEL_LOW,
      impact: ImpactLevel.IMPACT_LEVEL_LOW,
      autoFixable: true,
      fixSteps: ["Apply the patch"],
      diff: diffAdding(file, added),
    }).decision;

  const safetyOf = (votes: Vote[]) => votes.find((v) => v.reviewerRole === ReviewerRole.REVIEWER_ROLE_SAFETY)!;

  it("vetoes a diff that adds an AWS key: the decision is REJECT, the veto credential_in_diff, the key in no vote", async () => {
    const decision = await review("deploy/upload.sh", ["set -e", `export AWS_ACCESS_KEY_ID=${AWS_KEY}`]);
    expect(decision.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
    const safety = safetyOf(decision.votes);
    expect(safety.vote).to.equal(VoteType.VOTE_TYPE_REJECT);
    expect(safety.veto).to.equal("credential_in_diff");
    expect(safety.castBy).to.equal(REVIEWER);
    expect(safety.concerns).to.deep.equal(["deploy/upload.sh:13: AWS access key id"]);
    for (const v of decision.votes) expect(voteText(v), `${ReviewerRole[v.reviewerRole]} vote`).to.not.include(AWS_KEY);
    expect(out).to.include(`${decision.id}: reject (veto credential_in_diff)`);
  });

  it("lets a clean diff through: no veto, both external votes approve", async () => {
    const decision = await review("deploy/upload.sh", ["set -e", 'export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID}"']);
    expect(decision.decision).to.not.equal(DecisionType.DECISION_TYPE_REJECT);
    for (const v of decision.votes.filter((x) => x.castBy === REVIEWER)) {
      expect(v.vote).to.equal(VoteType.VOTE_TYPE_APPROVE);
      expect(v.veto).to.equal("");
    }
    expect(decision.votes.filter((x) => x.castBy === REVIEWER)).to.have.length(2);
  });

  it("stops on SIGTERM, ending its stream cleanly (exit 0)", async () => {
    scanner!.kill("SIGTERM");
    const code = await orAfter(exited, 10_000, "still running after 10 s");
    expect(code, `${out}\n${err}`).to.equal(0);
    const safety = (await agent.reviewers()).reviewers.find((p) => p.role === ReviewerRole.REVIEWER_ROLE_SAFETY)!;
    expect(safety.connected).to.equal(0);
  });
});
