/**
 * `review` and `watch` print each vote the moment it arrives: the server holds a review after its
 * first vote (CouncilOptions.beforeVote) until the test has read that vote from the CLI's stdout,
 * so a CLI that buffered its output until the decision would fail. `watch` is run until it is
 * live on the server (the server counts its live watches), then sees reviews and the changes
 * people make, in both output formats.
 */
import { expect } from "chai";
import { MemoryStore } from "../../src/store/memory.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { gate, review, startCouncil, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { buildCli, council, expectExit, expectFits, startCouncilCli, type LiveCouncil } from "./helpers.js";
import { RiskLevel } from "../../src/gen/council/v1/review.js";

type Json = Record<string, unknown>;

describe("council CLI: streams print each event as it arrives", function () {
  this.timeout(120_000);
  let c: Running;
  let addr: string[];
  let liveWatches: () => number;
  /** While set, every review waits before its second vote until it is opened. */
  let hold: ReturnType<typeof gate> | undefined;
  const live: LiveCouncil[] = [];

  before(async () => {
    await buildCli();
    const store = new MemoryStore();
    c = await startCouncil({ store, beforeVote: async (_role, index) => (index === 1 ? hold?.promise : undefined) });
    liveWatches = () => c.server.watchesLive;
    addr = ["--addr", c.addr];
  });
  afterEach(() => {
    hold?.open();
    hold = undefined;
    for (const l of live.splice(0)) l.kill("SIGKILL");
  });
  after(async () => c?.stop());

  for (const format of ["table", "json"] as const) {
    it(`review -o ${format}: the first vote is printed while the second is not cast yet`, async () => {
      hold = gate();
      const cli = startCouncilCli(["review", "--title", "Tidy the retry helper", "--risk", "low", "--impact", "low", "--auto-fixable", "-o", format, ...addr]);
      live.push(cli);
      // Table: the "Reviewing" line, then the first vote; JSON: the first vote.
      const lines = await cli.lines(format === "table" ? 2 : 1);
      const first = lines.at(-1)!;
      if (format === "json") expect((JSON.parse(first) as { vote: Json }).vote.reviewerRole).to.equal("REVIEWER_ROLE_SAFETY");
      else expect(first).to.match(/^ {2}SAFETY +APPROVE /);
      expect(cli.child.exitCode, "the review is held, so the CLI is still running").to.equal(null);
      hold.open();
      const r = await cli.exited();
      expectExit(r, 0);
      // Table: Reviewing, five votes, the decision, its reasoning and conditions.
      expect(r.lines).to.have.length(format === "table" ? 9 : 6);
    });
  }

  it("watch -o json: votes, the decision, then each change people make; exit 130 on Ctrl-C, 0 at --timeout, 143 on SIGTERM", async () => {
    const before = liveWatches();
    const watching = startCouncilCli(["watch", "--timeout", "60s", "-o", "json", ...addr]);
    live.push(watching);
    await waitFor(() => liveWatches() > before, { what: "the CLI's watch to be live", timeoutMs: 20_000 });

    const suggestionId = unique("sug");
    const reviewed = await review(c.client, { suggestion: wireSuggestion({ id: suggestionId, risk: RiskLevel.RISK_LEVEL_MEDIUM, autoFixable: false }) });
    const decisionId = reviewed.events.at(-1)!.decisionId;
    const lines = await watching.lines(6);
    const events = lines.map((l) => JSON.parse(l) as Json);
    events.slice(0, 5).forEach((e) => {
      expect(Object.keys(e).sort()).to.deep.equal(["decisionId", "suggestionId", "vote"]);
      expect(e).to.include({ decisionId, suggestionId });
    });
    expect(events[5]).to.include({ decisionId, suggestionId });
    expect((events[5]!.decision as Json).status).to.equal("DECISION_STATUS_PENDING");

    await council(["approve", decisionId, "--comment", "ok", ...addr]);
    const update = JSON.parse((await watching.lines(7))[6]!) as { decision: Json; decisionId: string };
    expect(update.decisionId).to.equal(decisionId);
    expect(update.decision.status).to.equal("DECISION_STATUS_APPROVED");
    expect((update.decision.verdicts as Json[])[0]).to.include({ by: "anonymous", comment: "ok" });

    watching.kill("SIGINT");
    const r = await watching.exited();
    expectExit(r, 130);
    expect(r.stderr).to.equal("");

    const timed = await council(["watch", "--timeout", "300ms", ...addr]);
    expectExit(timed, 0);

    const liveBefore = liveWatches();
    const terminated = startCouncilCli(["watch", ...addr]);
    live.push(terminated);
    await waitFor(() => liveWatches() > liveBefore, { what: "the watch to be live", timeoutMs: 20_000 });
    terminated.kill("SIGTERM");
    expectExit(await terminated.exited(), 143);
  });

  it("watch for people: one line per vote and per decision, --no-votes leaves the votes out", async () => {
    const before = liveWatches();
    const all = startCouncilCli(["watch", ...addr]);
    const decisionsOnly = startCouncilCli(["watch", "--no-votes", "--type", "reject", ...addr]);
    live.push(all, decisionsOnly);
    await waitFor(() => liveWatches() >= before + 2, { what: "both watches to be live", timeoutMs: 20_000 });

    await review(c.client, { suggestion: wireSuggestion({ title: "Tidy the retry helper" }) });
    const rejected = await review(c.client, { suggestion: wireSuggestion({ title: "Log the request", description: "This exposes secrets in the logs." }) });
    const rejectedId = rejected.events.at(-1)!.decisionId;
    const lines = await all.lines(12);
    const time = "\\d\\d:\\d\\d:\\d\\d";
    expect(lines[0]).to.match(new RegExp(`^${time} {2}dec-[0-9a-f]{24} {2}SAFETY +APPROVE +0\\.\\d\\d +\\[SAFETY\\]`));
    expect(lines[5]).to.match(new RegExp(`^${time} {2}dec-[0-9a-f]{24} {2}AUTO_APPROVE {2}APPROVED {2}Tidy the retry helper$`));
    expect(lines[6]).to.match(new RegExp(`^${time} {2}${rejectedId} {2}SAFETY +REJECT +0\\.\\d\\d +VETO exposes_secrets`));
    expect(lines[11]).to.match(new RegExp(`^${time} {2}${rejectedId} {2}REJECT {2}REJECTED {2}Log the request$`));
    expectFits(lines.join("\n"));

    const only = await decisionsOnly.lines(1);
    expect(only[0]).to.match(new RegExp(`^${time} {2}${rejectedId} {2}REJECT {2}REJECTED`));
    all.kill("SIGINT");
    decisionsOnly.kill("SIGINT");
    expect((await decisionsOnly.exited()).lines, "one decision, no votes, no other type").to.have.length(1);
    await all.exited();
  });
});
