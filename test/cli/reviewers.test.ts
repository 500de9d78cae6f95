/**
 * `council reviewers` and `council get` with external reviewers (SPEC sections 10 and 11), run as
 * a subprocess against a live server (in-process store) whose policy makes safety and quality
 * external; a reviewer agent (the TypeScript SDK) serves safety. `reviewers` shows each role as
 * external or built-in, with the timeout, the failure policy and the reviewers connected; `get`
 * shows who cast each vote: the reviewer's principal, `rules`, or `fallback:<policy>`.
 */
import { expect } from "chai";
import { serveReviews, type Reviewer } from "../../clients/typescript/src/index.js";
import { durationJson, durationText } from "../../cli/render.js";
import { ListReviewersResponse } from "../../src/gen/council/v1/council_service.js";
import { parsePolicy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { unique } from "../support/fixtures.js";
import { call, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { buildCli, council, expectExit, expectFits, report } from "./helpers.js";

type Json = Record<string, unknown>;

/** `default` with safety external (2 s, needs_more_info) and quality external (500 ms, failing closed). */
const POLICY = parsePolicy(
  "cli-external",
  {
    reviewers: [
      { role: "safety", external: { timeout: "2s", on_failure: "needs_more_info" } },
      { role: "performance" },
      { role: "architecture" },
      { role: "compliance" },
      { role: "quality", external: { timeout: "500ms", on_failure: "reject" } },
    ],
  },
  PRESETS.default,
);

describe("council CLI: external reviewers (reviewers, and cast_by in review and get)", function () {
  this.timeout(120_000);
  let c: Running;
  let addr: string[];
  let reviewer: Reviewer | undefined;

  before(async () => {
    await buildCli();
    c = await startCouncil({ policy: POLICY });
    addr = ["--addr", c.addr];
  });
  afterEach(async () => {
    await reviewer?.stop();
    reviewer = undefined;
  });
  after(async () => {
    await c?.stop();
  });

  /** Serves safety (anonymous: the server has no auth file) and waits until it is connected. */
  async function serveSafety(): Promise<void> {
    reviewer = serveReviews({
      address: c.addr,
      roles: ["safety"],
      log: () => undefined,
      handler: () => ({ vote: "approve", confidence: 0.9, reasoning: "diff scanned: clean" }),
    });
    await within(reviewer.connected, { what: "the reviewer to connect" });
  }

  /** The data rows of the table under the header line starting `header`, by role. */
  function rows(stdout: string, header: RegExp): Map<string, string[]> {
    const lines = stdout.split("\n");
    const at = lines.findIndex((l) => header.test(l));
    expect(at, `a header ${header} in:\n${stdout}`).to.be.greaterThan(-1);
    const out = new Map<string, string[]>();
    for (const l of lines.slice(at + 1)) {
      if (!/^[A-Z]+ /.test(l)) break;
      const cells = l.split(/ {2,}/).map((c) => c.trim());
      out.set(cells[0]!, cells);
    }
    return out;
  }
  const COUNCIL = /^ROLE +REVIEWER +RISK TOLERANCE +EXPERTISE +VETO CONDITIONS$/;
  const EXTERNAL = /^ROLE +CONNECTED +TIMEOUT +ON FAILURE$/;

  it("reviewers: each role external or built-in; the external ones' timeout, failure policy and connected reviewers", async () => {
    await serveSafety();
    const t = await council(["reviewers", ...addr]);
    expectExit(t, 0);
    expect(t.lines[0]).to.equal(`Policy  ${POLICY.version}`);
    const all = rows(t.stdout, COUNCIL);
    expect([...all.keys()]).to.deep.equal(["SAFETY", "PERFORMANCE", "ARCHITECTURE", "COMPLIANCE", "QUALITY"]);
    expect([...all.values()].map((cells) => cells[1]), report(t)).to.deep.equal(["external", "built-in", "built-in", "built-in", "external"]);
    expect(all.get("SAFETY")![2]).to.equal("0.20");
    expect(t.lines).to.include("External reviewers");
    const external = rows(t.stdout, EXTERNAL);
    expect([...external.values()], report(t)).to.deep.equal([
      ["SAFETY", "1", "2s", "needs_more_info"],
      ["QUALITY", "0", "500ms", "reject"],
    ]);
    // Nobody serves quality: every review gets its fallback vote at once, and the command says so.
    expect(t.lines.at(-1)).to.equal("No reviewer serves QUALITY: every review gets its reject vote at once.");
    expect(t.stdout).to.not.include("No reviewer serves SAFETY");
    expectFits(t.stdout);

    const j = await council(["reviewers", "-o", "json", ...addr]);
    expectExit(j, 0);
    const [got] = j.json();
    // What the server sends, with each timeout as the proto JSON mapping writes a Duration ("2s").
    const want = ListReviewersResponse.toJSON(await call(c.client, c.client.listReviewers, {})) as { reviewers: Json[] };
    want.reviewers[0]!.timeout = "2s";
    want.reviewers[4]!.timeout = "0.500s";
    expect(got).to.deep.equal(want);
    const profiles = got!.reviewers as Json[];
    expect(profiles[0]).to.include({ role: "REVIEWER_ROLE_SAFETY", external: true, timeout: "2s", onFailure: "FAILURE_POLICY_NEEDS_MORE_INFO", connected: 1 });
    expect(profiles[4]).to.include({ role: "REVIEWER_ROLE_QUALITY", external: true, timeout: "0.500s", onFailure: "FAILURE_POLICY_REJECT" });
    expect(profiles[4], "none connected: 0, which the JSON mapping leaves out").to.not.have.property("connected");
    expect(profiles[1], "a built-in role says nothing of external settings").to.not.have.any.keys("external", "timeout", "connected");

    // Once the reviewer stops, nobody is connected.
    await reviewer!.stop();
    await waitFor(async () => rows((await council(["reviewers", ...addr])).stdout, EXTERNAL).get("SAFETY")![1] === "0", {
      what: "council reviewers to show no reviewer connected for safety",
      timeoutMs: 10_000,
    });
  });

  it("reviewers under a policy without external roles: no external table", async () => {
    const plain = await startCouncil({});
    try {
      const t = await council(["reviewers", "--addr", plain.addr]);
      expectExit(t, 0);
      expect([...rows(t.stdout, COUNCIL).values()].map((cells) => cells[1])).to.deep.equal(Array(5).fill("built-in"));
      expect(t.stdout).to.not.include("External reviewers");
      expect(t.stdout).to.not.include("No reviewer serves");
    } finally {
      await plain.stop();
    }
  });

  it("get shows who cast each vote: the reviewer's principal, fallback:<policy>, rules", async () => {
    await serveSafety();
    // As the votes stream in, those not cast by the rules name who cast them.
    const streamed = await council(["review", "--title", unique("Bump lodash"), "--risk", "low", "--impact", "low", ...addr]);
    expect(streamed.code, report(streamed)).to.be.oneOf([0, 3, 4]);
    expect(streamed.stdout).to.match(/^ {2}SAFETY +APPROVE +0\.90 +\[anonymous\] diff scanned: clean$/m);
    expect(streamed.stdout).to.match(/^ {2}QUALITY +REJECT +0\.00 +\[fallback:reject\] VETO no_external_vote:/m);
    expect(streamed.stdout).to.match(/^ {2}PERFORMANCE +APPROVE +\d\.\d\d +\[PERFORMANCE\]/m);
    const made = await council(["review", "--title", unique("Bump lodash"), "--risk", "low", "--impact", "low", "-o", "json", ...addr]);
    expect(made.code, report(made)).to.be.oneOf([0, 3, 4]);
    const id = (made.json().at(-1) as { decision: { id: string } }).decision.id;
    const t = await council(["get", id, ...addr]);
    expectExit(t, 0);
    const votes = t.stdout.slice(t.stdout.indexOf("Votes (5)"), t.stdout.indexOf("Concerns ("));
    // Each vote's lines, then its own "cast by" line, in reviewer order.
    expect(votes.match(/^ {39}cast by \S+$/gm), t.stdout).to.deep.equal(
      ["anonymous", "rules", "rules", "rules", "fallback:reject"].map((who) => `${" ".repeat(39)}cast by ${who}`),
    );
    expect(votes).to.match(/^ {2}SAFETY +APPROVE +0\.90 +diff scanned: clean$/m);
    expect(votes).to.match(/^ {2}QUALITY +REJECT +0\.00 +VETO no_external_vote: \[QUALITY\] No external vote:/m);
    expectFits(t.stdout);
  });
});

describe("council CLI: durations of external roles", () => {
  it("for people as policies write them, and in JSON as the proto JSON mapping does", () => {
    const d = (seconds: number, nanos = 0) => ({ seconds, nanos });
    expect([d(5), d(0, 500_000_000), d(1, 500_000_000), d(60), d(0, 10_000_000)].map(durationText)).to.deep.equal(["5s", "500ms", "1.5s", "60s", "10ms"]);
    expect(durationText(undefined)).to.equal("-");
    expect([d(5), d(0, 500_000_000), d(1, 500_000_000), d(0, 1_500), d(2, 1)].map(durationJson)).to.deep.equal(["5s", "0.500s", "1.500s", "0.000001500s", "2.000000001s"]);
  });
});
