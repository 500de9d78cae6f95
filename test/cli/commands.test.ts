/**
 * Every `council` command, run as a subprocess against a live server (in-process store), in both
 * output formats: `-o json` parsed and compared field by field with what the server stores (the
 * proto JSON mapping, as ts-proto's toJSON writes it), the table for people checked for what an
 * approver needs. Exit codes: 0 approved, 3 rejected and superseded, 4 pending, 5 expired (a
 * policy whose DEFER decisions expire after a second), 1 errors, 2 usage.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { parsePolicy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { GetSummaryResponse, ListReviewersResponse } from "../../src/gen/council/v1/council_service.js";
import { Decision, Lesson } from "../../src/gen/council/v1/review.js";
import { tempDir } from "../auth/helpers.js";
import { unique } from "../support/fixtures.js";
import { call, startCouncil, type Running } from "../support/server.js";
import { buildCli, council, expectExit, expectFits, report, startCouncilCli, type LiveCouncil } from "./helpers.js";

/** `default`, with DEFER expiring after a second so that a test sees EXPIRED without waiting long. */
const POLICY = parsePolicy(
  "cli-test",
  { verdicts: { human_approve: { approvals: 1, expires_after: "1h" }, defer: { approvals: 1, expires_after: "1s" } } },
  PRESETS.default,
);

/** Flags that the policy decides each way (SPEC sections 3 and 4). */
const AUTO = ["--risk", "low", "--impact", "low", "--auto-fixable"];
const HUMAN = ["--risk", "medium", "--impact", "low"];
const DEFER = ["--risk", "high", "--impact", "transformative"];
const VETO = ["--title", "Log the request", "--description", "This exposes secrets in the logs.", "--risk", "low", "--impact", "low"];

type Json = Record<string, unknown>;

describe("council CLI: every command against a live server", function () {
  this.timeout(120_000);
  let c: Running;
  let addr: string[];
  let dir: string;
  let remove: () => Promise<void>;
  const live: LiveCouncil[] = [];

  before(async () => {
    await buildCli();
    c = await startCouncil({ policy: POLICY });
    addr = ["--addr", c.addr];
    ({ dir, remove } = await tempDir());
  });
  afterEach(() => {
    for (const l of live.splice(0)) l.kill("SIGKILL");
  });
  after(async () => {
    await c?.stop();
    await remove?.();
  });

  /** The stored decision, as the server's generated code writes it to JSON. */
  async function stored(id: string): Promise<Json> {
    const r = await call(c.client, c.client.getDecision, { id });
    return Decision.toJSON(r.decision!) as Json;
  }

  /** Reviews with `flags` (JSON output) and returns the decision's id. */
  async function submit(flags: string[], title = unique("title")): Promise<string> {
    const r = await council(["review", "--title", title, ...flags, "-o", "json", ...addr]);
    const last = r.json().at(-1) as { decisionId?: string } | undefined;
    expect(last?.decisionId, report(r)).to.be.a("string");
    return last!.decisionId!;
  }

  it("health: SERVING, exit 0, in both formats", async () => {
    const t = await council(["health", ...addr]);
    expectExit(t, 0);
    expect(t.stdout).to.equal("SERVING\n");
    const j = await council(["health", "-o", "json", ...addr]);
    expectExit(j, 0);
    expect(j.json()).to.deep.equal([{ status: "SERVING" }]);
    const unknown = await council(["health", "--service", "no.such.Service", ...addr]);
    expect(unknown.code, "a service the server does not know is not healthy").to.equal(1);
  });

  it("reviewers: the policy and each reviewer", async () => {
    const j = await council(["reviewers", "-o", "json", ...addr]);
    expectExit(j, 0);
    const [got] = j.json();
    const want = ListReviewersResponse.toJSON(await call(c.client, c.client.listReviewers, {})) as Json;
    expect(got).to.deep.equal(want);
    expect(got!.policyVersion).to.equal(POLICY.version);
    expect((got!.reviewers as Json[]).map((r) => r.role)).to.deep.equal([
      "REVIEWER_ROLE_SAFETY",
      "REVIEWER_ROLE_PERFORMANCE",
      "REVIEWER_ROLE_ARCHITECTURE",
      "REVIEWER_ROLE_COMPLIANCE",
      "REVIEWER_ROLE_QUALITY",
    ]);
    const t = await council(["reviewers", ...addr]);
    expectExit(t, 0);
    expect(t.lines[0]).to.equal(`Policy  ${POLICY.version}`);
    for (const role of ["SAFETY", "PERFORMANCE", "ARCHITECTURE", "COMPLIANCE", "QUALITY"]) expect(t.stdout).to.match(new RegExp(`^${role} `, "m"));
    expectFits(t.stdout);
  });

  it("review -o json: one line per vote, then the decision, each the proto JSON of a ReviewSuggestionResponse", async () => {
    const id = unique("sug");
    const r = await council(["review", "--id", id, "--title", "Tidy the retry helper", ...AUTO, "--file", "src/retry.ts", "--fix-step", "Apply", "-o", "json", ...addr]);
    expectExit(r, 0);
    const events = r.json();
    expect(events).to.have.length(6);
    const decisionId = (events[5]!.decision as Json).id as string;
    expect(decisionId).to.match(/^dec-/);
    const roles = ["SAFETY", "PERFORMANCE", "ARCHITECTURE", "COMPLIANCE", "QUALITY"];
    events.slice(0, 5).forEach((e, i) => {
      expect(Object.keys(e).sort()).to.deep.equal(["decisionId", "suggestionId", "vote"]);
      expect(e.decisionId).to.equal(decisionId);
      expect(e.suggestionId).to.equal(id);
      const vote = e.vote as Json;
      expect(vote.reviewerRole).to.equal(`REVIEWER_ROLE_${roles[i]}`);
      expect(vote.vote).to.equal("VOTE_TYPE_APPROVE");
      expect(vote.confidence).to.be.a("number");
      expect(vote.castAt).to.match(/^\d{4}-\d\d-\d\dT/);
    });
    expect(events[5]!.decisionId).to.equal(decisionId);
    expect(events[5]!.suggestionId).to.equal(id);
    const decision = events[5]!.decision as Json;
    expect(decision).to.deep.equal(await stored(decisionId));
    expect(decision.decision).to.equal("DECISION_TYPE_AUTO_APPROVE");
    expect(decision.status).to.equal("DECISION_STATUS_APPROVED");
    expect(decision.votes).to.deep.equal(events.slice(0, 5).map((e) => e.vote));
    expect(decision.suggestion).to.deep.include({ id, title: "Tidy the retry helper", risk: "RISK_LEVEL_LOW", impact: "IMPACT_LEVEL_LOW", autoFixable: true });
    expect((decision.suggestion as Json).filesAffected).to.deep.equal(["src/retry.ts"]);
    expect((decision.suggestion as Json).fixSteps).to.deep.equal(["Apply"]);
    expect(r.stderr).to.equal("");
  });

  it("review for people: each vote on its own line, then the decision; exit 0, 3, 4 by status", async () => {
    const approved = await council(["review", "--title", "Tidy the retry helper", ...AUTO, ...addr]);
    expectExit(approved, 0);
    expect(approved.lines[0]).to.match(/^Reviewing cli-[0-9a-f]{8}: Tidy the retry helper$/);
    expect(approved.lines.slice(1, 6).map((l) => l.trim().split(/\s+/).slice(0, 2).join(" "))).to.deep.equal([
      "SAFETY APPROVE",
      "PERFORMANCE APPROVE",
      "ARCHITECTURE APPROVE",
      "COMPLIANCE APPROVE",
      "QUALITY APPROVE",
    ]);
    expect(approved.lines[6]).to.match(/^dec-[0-9a-f]{24} {2}AUTO_APPROVE {2}APPROVED {2}auto-approved by the council$/);
    expect(approved.stdout).to.match(/Reasoning +Auto-approved by council/);
    expectFits(approved.stdout);

    const pending = await council(["review", "--title", "Add retry to payments", ...HUMAN, ...addr]);
    expectExit(pending, 4);
    expect(pending.stdout).to.match(/HUMAN_APPROVE {2}PENDING {2}0 of 1 approvals, expires in (59 min|1 h)/);

    const rejected = await council(["review", ...VETO, ...addr]);
    expectExit(rejected, 3);
    expect(rejected.stdout).to.match(/SAFETY +REJECT +0\.\d\d +VETO exposes_secrets/);
    expect(rejected.stdout).to.match(/REJECT {2}REJECTED {2}rejected by the council/);
  });

  it("review reads a YAML file, JSON on stdin, and flags on top; a dry run stores nothing", async () => {
    const file = join(dir, "suggestion.yaml");
    const id = unique("yaml");
    await writeFile(file, [`id: ${id}`, "title: From a file", "risk: medium", "impact: low", "files_affected: [a.ts]", "estimated_effort: small"].join("\n"));
    const fromFile = await council(["review", file, "-o", "json", ...addr]);
    expectExit(fromFile, 4);
    const d1 = fromFile.json().at(-1)!.decision as Json;
    expect(d1.suggestion).to.deep.include({ id, title: "From a file", risk: "RISK_LEVEL_MEDIUM", estimatedEffort: "EFFORT_SMALL" });

    const stdin = JSON.stringify({ id: unique("json"), title: "From stdin", risk: "RISK_LEVEL_LOW", impact: "low", autoFixable: true });
    const fromStdin = await council(["review", "-", "--title", "Flag wins", "-o", "json", ...addr], { input: stdin });
    expectExit(fromStdin, 0);
    expect((fromStdin.json().at(-1)!.decision as Json).suggestion).to.deep.include({ title: "Flag wins", autoFixable: true });

    const dry = await council(["review", "--dry-run", "--title", "Just looking", ...HUMAN, "-o", "json", ...addr]);
    expectExit(dry, 4);
    const dryId = (dry.json().at(-1)!.decision as Json).id as string;
    const gone = await council(["get", dryId, ...addr]);
    expectExit(gone, 1);
    expect(gone.stderr).to.match(/^NOT_FOUND: /);

    const conflict = await council(["review", "--dry-run", "--wait", "--title", "x", ...HUMAN, ...addr]);
    expectExit(conflict, 2);
  });

  it("review with the same --request-id returns the stored decision", async () => {
    const requestId = unique("req");
    const args = ["review", "--id", unique("sug"), "--title", "Once", ...HUMAN, "--request-id", requestId, "-o", "json", ...addr];
    const a = await council(args);
    const b = await council(args);
    expect((a.json().at(-1)!.decision as Json).id).to.equal((b.json().at(-1)!.decision as Json).id);
  });

  it("get: a decision with its votes, concerns, conditions, verdicts and status", async () => {
    const id = await submit(HUMAN, "Add retry to payments");
    await council(["approve", id, "--comment", "Checked the rollout plan", ...addr]);
    const j = await council(["get", id, "-o", "json", ...addr]);
    expectExit(j, 0);
    const [got] = j.json();
    expect(got).to.deep.equal(await stored(id));
    expect(got).to.deep.include({ id, decision: "DECISION_TYPE_HUMAN_APPROVE", status: "DECISION_STATUS_APPROVED", approvalsRequired: 1, submittedBy: "anonymous" });
    expect(got!.verdicts).to.have.length(1);
    expect((got!.verdicts as Json[])[0]).to.deep.include({ by: "anonymous", verdict: "VERDICT_TYPE_APPROVE", comment: "Checked the rollout plan" });

    const t = await council(["get", id, ...addr]);
    expectExit(t, 0);
    expect(t.lines[0]).to.match(new RegExp(`^${id} {2}HUMAN_APPROVE {2}APPROVED {2}approved by anonymous$`));
    expect(t.stdout).to.match(/^Suggestion +cli-[0-9a-f]{8}: Add retry to payments$/m);
    expect(t.stdout).to.match(/^Votes \(5\)$/m);
    expect(t.stdout).to.match(/^ {2}QUALITY +APPROVE +0\.80 +\[QUALITY\] Approved/m);
    expect(t.stdout).to.match(/^Concerns \(1\)\n {2}- QUALITY: Fix steps are not well-defined$/m);
    expect(t.stdout).to.match(/^Conditions \(1\)\n {2}- Document implementation steps$/m);
    expect(t.stdout).to.match(/^Verdicts \(1 of 1 approvals\)\n {2}anonymous {2}APPROVE {2}just now {2}"Checked the rollout plan"$/m);
    expect(t.stdout).to.match(/^Decided +just now \(\d{4}-/m);
    expectFits(t.stdout);

    const missing = await council(["get", "dec-000000000000000000000000", ...addr]);
    expectExit(missing, 1);
    expect(missing.stderr).to.equal('NOT_FOUND: decision "dec-000000000000000000000000" not found\n');
    expect(missing.stdout).to.equal("");
  });

  it("list: newest first, with --type, --status, --suggestion and --limit", async () => {
    const sug = unique("sug");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await council(["review", "--id", sug, "--title", `Attempt ${i}`, ...(i === 1 ? AUTO : HUMAN), "-o", "json", ...addr]);
      ids.push(r.json().at(-1)!.decisionId as string);
    }
    const all = await council(["list", "--suggestion", sug, "-o", "json", ...addr]);
    expectExit(all, 0);
    expect(all.json().map((d) => d.id)).to.deep.equal([...ids].reverse());
    for (const d of all.json()) expect(d).to.deep.equal(await stored(d.id as string));

    const oldest = await council(["list", "--suggestion", sug, "--oldest-first", "-o", "json", ...addr]);
    expect(oldest.json().map((d) => d.id)).to.deep.equal(ids);
    const auto = await council(["list", "--suggestion", sug, "--type", "auto_approve", "-o", "json", ...addr]);
    expect(auto.json().map((d) => d.id)).to.deep.equal([ids[1]]);
    const pendingOnes = await council(["list", "--suggestion", sug, "--status", "PENDING", "-o", "json", ...addr]);
    expect(pendingOnes.json().map((d) => d.id)).to.deep.equal([ids[2], ids[0]]);

    const limited = await council(["list", "--suggestion", sug, "--limit", "2", ...addr]);
    expectExit(limited, 0);
    expect(limited.lines[0]).to.match(/^ID +TYPE +STATUS +DECIDED +SUGGESTION +TITLE$/);
    expect(limited.lines.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal([ids[2], ids[1]]);
    expect(limited.lines[1]).to.match(/HUMAN_APPROVE {2}PENDING +(just now|\d+ s ago) +/);
    expect(limited.stderr).to.equal("(2 shown; more with --limit N, or --limit 0 for all)\n");
    const limitedJson = await council(["list", "--suggestion", sug, "--limit", "2", "-o", "json", ...addr]);
    expect(limitedJson.stderr, "nothing but JSON, and nothing on stderr, with -o json").to.equal("");
    expect(limitedJson.json()).to.have.length(2);

    const none = await council(["list", "--suggestion", unique("none"), ...addr]);
    expectExit(none, 0);
    expect(none.stdout).to.equal("no decisions\n");
    const noneJson = await council(["list", "--suggestion", unique("none"), "-o", "json", ...addr]);
    expect(noneJson.stdout).to.equal("");

    expectExit(await council(["list", "--type", "maybe", ...addr]), 2);
    expectExit(await council(["list", "--limit", "-1", ...addr]), 2);
  });

  it("pending: the approval queue, oldest first", async () => {
    const a = await submit(HUMAN, "First in the queue");
    const b = await submit(HUMAN, "Second in the queue");
    await submit(AUTO, "Not in the queue");
    const j = await council(["pending", "--limit", "0", "-o", "json", ...addr]);
    expectExit(j, 0);
    const queue = j.json();
    for (const d of queue) expect(d.status).to.equal("DECISION_STATUS_PENDING");
    const ids = queue.map((d) => d.id);
    expect(ids).to.include.members([a, b]);
    expect(ids.indexOf(a)).to.be.lessThan(ids.indexOf(b));
    expect(queue.find((d) => d.id === a)).to.deep.equal(await stored(a));

    const t = await council(["pending", "--limit", "0", ...addr]);
    expectExit(t, 0);
    expect(t.lines[0]).to.match(/^ID +TYPE +APPROVED +EXPIRES +SUBMITTER +TITLE$/);
    const row = t.lines.find((l) => l.startsWith(a))!;
    expect(row).to.match(new RegExp(`^${a} {2}HUMAN_APPROVE +0/1 {2}in 59 min {2}anonymous {2}First in the queue$`));
    expectFits(t.stdout);
  });

  it("approve and reject: verdicts, with --comment; reject needs one", async () => {
    const a = await submit(HUMAN);
    const approved = await council(["approve", a, "--comment", "Looks right", "-o", "json", ...addr]);
    expectExit(approved, 0);
    const [d] = approved.json();
    expect(d).to.deep.equal(await stored(a));
    expect(d).to.deep.include({ status: "DECISION_STATUS_APPROVED" });
    expect((d!.verdicts as Json[]).map((v) => [v.by, v.verdict, v.comment])).to.deep.equal([["anonymous", "VERDICT_TYPE_APPROVE", "Looks right"]]);

    const again = await council(["approve", a, "--comment", "Looks right", ...addr]);
    expectExit(again, 0);
    expect(again.lines).to.deep.equal([`${a}  HUMAN_APPROVE  APPROVED  approved by anonymous`, '  anonymous  APPROVE  just now  "Looks right"']);

    const b = await submit(HUMAN);
    const noComment = await council(["reject", b, ...addr]);
    expectExit(noComment, 2);
    expect(noComment.stderr).to.match(/^reject needs --comment: say why\n\nUsage: council reject ID \[flags\]\n/);
    expect((await stored(b)).status, "nothing was sent").to.equal("DECISION_STATUS_PENDING");
    const rejected = await council(["reject", b, "--comment", "Not during the freeze", ...addr]);
    expectExit(rejected, 0);
    expect(rejected.lines).to.deep.equal([`${b}  HUMAN_APPROVE  REJECTED  rejected by anonymous`, '  anonymous  REJECT  just now  "Not during the freeze"']);

    const late = await council(["approve", b, ...addr]);
    expectExit(late, 1);
    expect(late.stderr.trim().split("\n")).to.have.length(1);
    expect(late.stderr).to.match(/^FAILED_PRECONDITION: /);
  });

  it("await: exit 0 approved, 3 rejected, 3 superseded, 5 expired, 4 still pending at --timeout", async () => {
    // Approved while the CLI waits: it prints the pending state, the verdict, then the final state.
    const a = await submit(HUMAN);
    const waiting = startCouncilCli(["await", a, ...addr]);
    live.push(waiting);
    await waiting.lines(2);
    await council(["approve", a, "--comment", "Go", ...addr]);
    const done = await waiting.exited();
    expectExit(done, 0);
    expect(done.lines[0]).to.match(new RegExp(`^${a} {2}HUMAN_APPROVE {2}PENDING {2}0 of 1 approvals`));
    expect(done.lines).to.include('  anonymous  APPROVE  just now  "Go"');
    expect(done.lines.at(-1)).to.equal(`${a}  HUMAN_APPROVE  APPROVED  approved by anonymous`);

    // JSON: one AwaitDecisionResponse per state.
    const r = await submit(HUMAN);
    const json = startCouncilCli(["await", r, "-o", "json", ...addr]);
    live.push(json);
    await json.lines(1);
    await council(["reject", r, "--comment", "No", ...addr]);
    const rejected = await json.exited();
    expectExit(rejected, 3);
    const states = rejected.json<{ decision: Json }>();
    expect(states.map((s) => Object.keys(s))).to.deep.equal([["decision"], ["decision"]]);
    expect(states.map((s) => s.decision.status)).to.deep.equal(["DECISION_STATUS_PENDING", "DECISION_STATUS_REJECTED"]);
    expect(states[1]!.decision).to.deep.equal(await stored(r));

    // Already final: at once.
    expectExit(await council(["await", a, ...addr]), 0);
    expectExit(await council(["await", r, ...addr]), 3);

    // Superseded by a follow-up review.
    const old = await submit(HUMAN);
    const follow = await council(["review", "--title", "With more detail", ...HUMAN, "--supersedes", old, ...addr]);
    expectExit(follow, 4);
    const superseded = await council(["await", old, ...addr]);
    expectExit(superseded, 3);
    expect(superseded.stdout).to.match(/SUPERSEDED {2}superseded by dec-/);

    // Expired: DEFER expires after a second under this policy.
    const d = await submit(DEFER);
    const expired = await council(["await", d, ...addr]);
    expectExit(expired, 5);
    expect(expired.lines.at(-1)).to.match(new RegExp(`^${d} {2}DEFER {2}EXPIRED {2}expired (just now|\\d+ s ago) with 0 of 1 approvals$`));

    // Still pending when --timeout passes.
    const p = await submit(HUMAN);
    const started = Date.now();
    const pending = await council(["await", p, "--timeout", "1s", ...addr]);
    expectExit(pending, 4);
    expect(pending.stderr).to.equal(`${p} is still pending after --timeout 1s\n`);
    expect(Date.now() - started).to.be.lessThan(15_000);

    const unknown = await council(["await", "dec-000000000000000000000000", ...addr]);
    expectExit(unknown, 1);
    expect(unknown.stderr).to.match(/^NOT_FOUND: /);
  });

  it("review --wait: waits for the verdict; exit 0 approved, 5 expired", async () => {
    const id = unique("wait");
    const waiting = startCouncilCli(["review", "--id", id, "--title", "Needs a person", ...HUMAN, "--wait", "-o", "json", ...addr]);
    live.push(waiting);
    const lines = await waiting.lines(6);
    const decisionId = JSON.parse(lines[5]!).decisionId as string;
    await council(["approve", decisionId, ...addr]);
    const done = await waiting.exited();
    expectExit(done, 0);
    const events = done.json();
    expect(events).to.have.length(7);
    expect(events[6]).to.have.keys("decision");
    expect((events[6]!.decision as Json).status).to.equal("DECISION_STATUS_APPROVED");
    expect(events[6]!.decision).to.deep.equal(await stored(decisionId));

    const expired = await council(["review", "--title", "Nobody answers", ...DEFER, "--wait", ...addr]);
    expectExit(expired, 5);
    expect(expired.stdout).to.match(/waiting for people… \(Ctrl-C stops waiting; `council await dec-[0-9a-f]{24}` resumes\)/);
    expect(expired.lines.at(-1)).to.match(/DEFER {2}EXPIRED {2}expired (just now|\d+ s ago) with 0 of 1 approvals$/);

    const timedOut = await council(["review", "--title", "Slow people", ...HUMAN, "--wait", "--timeout", "1s", ...addr]);
    expectExit(timedOut, 4);
    expect(timedOut.stderr).to.match(/^dec-[0-9a-f]{24} is still pending after --timeout 1s\n$/);
  });

  it("Ctrl-C ends a wait with exit 130 and no stack trace", async () => {
    const id = await submit(HUMAN);
    const waiting = startCouncilCli(["await", id, ...addr]);
    live.push(waiting);
    await waiting.lines(2);
    waiting.kill("SIGINT");
    const r = await waiting.exited();
    expectExit(r, 130);
    expect(r.stderr).to.equal("");
  });

  it("outcome, lessons and summary", async () => {
    const id = await submit(AUTO);
    const o = await council(["outcome", id, "success", "--notes", "Rolled out", "--lessons", "Canary first", "-o", "json", ...addr]);
    expectExit(o, 0);
    const [d] = o.json();
    expect(d).to.deep.equal(await stored(id));
    expect(d).to.deep.include({ outcome: "OUTCOME_SUCCESS", outcomeNotes: "Rolled out", lessonsLearned: "Canary first", outcomeRecordedBy: "anonymous" });
    const t = await council(["outcome", id, "partial", "--lessons", "Watch the error rate", ...addr]);
    expectExit(t, 0);
    expect(t.stdout).to.equal(`${id}  outcome PARTIAL recorded by anonymous\n`);

    const notApproved = await council(["outcome", await submit(HUMAN), "success", ...addr]);
    expectExit(notApproved, 1);
    expect(notApproved.stderr).to.match(/^FAILED_PRECONDITION: .*PENDING/);
    expectExit(await council(["outcome", id, "great", ...addr]), 2);
    expectExit(await council(["outcome", id, ...addr]), 2);

    const lessons = await council(["lessons", "--limit", "2", "-o", "json", ...addr]);
    expectExit(lessons, 0);
    const page = await call(c.client, c.client.listLessons, { pageSize: 2, pageToken: "" });
    expect(lessons.json()).to.deep.equal(page.lessons.map((l) => Lesson.toJSON(l)));
    expect(lessons.json()[0]).to.deep.include({ decisionId: id, outcome: "OUTCOME_PARTIAL", lessons: "Watch the error rate", recordedBy: "anonymous" });
    const table = await council(["lessons", "--limit", "2", ...addr]);
    expect(table.lines[0]).to.match(/^RECORDED +DECISION +OUTCOME +BY +LESSONS$/);
    expect(table.lines[1]).to.match(new RegExp(`^just now {2}${id} {2}PARTIAL {2}anonymous {2}Watch the error rate$`));

    const s = await council(["summary", "-o", "json", ...addr]);
    expectExit(s, 0);
    const want = GetSummaryResponse.toJSON(await call(c.client, c.client.getSummary, {})) as Json;
    expect(s.json()).to.deep.equal([want]);
    expect((s.json()[0]!.outcomes as Json).partial).to.be.at.least(1);
    const st = await council(["summary", ...addr]);
    expectExit(st, 0);
    expect(st.lines.map((l) => l.split(/\s{2,}/)[0])).to.deep.equal(["Decisions", "By type", "By status", "Outcomes", "Lessons"]);
    expect(st.stdout).to.match(new RegExp(`^Decisions +${want.totalDecisions} \\(auto-approved ${want.autoApproved}\\)$`, "m"));
    expect(st.stdout).to.match(/^By status +pending \d+ · approved \d+ · rejected \d+ · expired \d+ · superseded \d+$/m);
  });
});
