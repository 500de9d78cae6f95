/**
 * The reviewer SDK (SPEC section 11, `serveReviews`) against the external-reviewer server that the
 * repository's test/clients.test.ts starts for this suite alone:
 *
 * - COUNCIL_TEST_EXTERNAL_ADDR: plaintext, with the auth file, and a policy where safety is external
 *   (3 s, on_failure needs_more_info) and quality is external (3 s, on_failure reject);
 * - COUNCIL_TEST_REVIEWER_TOKEN / _PRINCIPAL: role reviewer (serves);
 * - COUNCIL_TEST_AGENT_TOKEN: role agent (submits the reviews).
 *
 * Every reviewer a test starts is stopped (and its stream seen ended) before the next test, so
 * that no task of one test goes to another's reviewer. Nothing sleeps for a fixed time: each step
 * waits for its event (a callback, a promise), bounded.
 */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import {
  connect,
  CouncilError,
  DecisionType,
  FailedPreconditionError,
  ImpactLevel,
  PermissionDeniedError,
  reconnectable,
  reconnectDelay,
  ReviewerRole,
  RiskLevel,
  serveReviews,
  status,
  taskVote,
  UnauthenticatedError,
  UnavailableError,
  VoteType,
  type CouncilClient,
  type Reviewer,
  type ReviewerTask,
  type ServeReviewsOptions,
  type SuggestionInput,
  type Vote,
} from "../src/index.js";
import { cuttableProxy } from "./proxy.js";

const NAMES = ["COUNCIL_TEST_EXTERNAL_ADDR", "COUNCIL_TEST_REVIEWER_TOKEN", "COUNCIL_TEST_REVIEWER_PRINCIPAL", "COUNCIL_TEST_AGENT_TOKEN"] as const;
const env = Object.fromEntries(NAMES.map((n) => [n, process.env[n]])) as Record<(typeof NAMES)[number], string | undefined>;
const missing = NAMES.filter((n) => !env[n]);
if (missing.length) throw new Error(`set ${missing.join(", ")} (test/clients.test.ts in the repository does)`);
const ADDR = env.COUNCIL_TEST_EXTERNAL_ADDR!;
const REVIEWER_TOKEN = env.COUNCIL_TEST_REVIEWER_TOKEN!;
const REVIEWER = env.COUNCIL_TEST_REVIEWER_PRINCIPAL!;
const AGENT_TOKEN = env.COUNCIL_TEST_AGENT_TOKEN!;

/** The external roles' timeout in the server's policy. */
const TIMEOUT_MS = 3000;

const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;
const suggestion = (extra: Partial<SuggestionInput> = {}): SuggestionInput => ({
  id: uid("ts-reviewer"),
  title: "Tidy the retry helper",
  risk: RiskLevel.RISK_LEVEL_LOW,
  impact: ImpactLevel.IMPACT_LEVEL_LOW,
  autoFixable: true,
  fixSteps: ["Apply the patch"],
  diff: "--- a/retry.ts\n+++ b/retry.ts\n@@ -1 +1 @@\n-const tries = 3;\n+const tries = 4;\n",
  ...extra,
});

/** Resolves as `promise` does, or fails after `ms` naming `what`. */
function within<T>(promise: Promise<T>, what: string, ms = 8000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Polls `condition` (where there is no event to wait for) until it holds, for at most `ms`. */
async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What a promise settled with. */
const settled = <T>(p: Promise<T>) => p.then((value) => ({ value, error: undefined as unknown }), (error: unknown) => ({ value: undefined, error }));

const voteOf = (votes: Vote[], role: ReviewerRole) => {
  const v = votes.find((x) => x.reviewerRole === role);
  if (!v) throw new Error(`no ${ReviewerRole[role]} vote among ${votes.length}`);
  return v;
};

describe("TypeScript client: serving a reviewer role (serveReviews)", function () {
  this.timeout(20_000);
  let agent: CouncilClient;
  /** Reviewers started by the running test, stopped after it. */
  let started: Reviewer[] = [];
  /** What the reviewers of the running test logged. */
  let logs: string[] = [];

  /** A reviewer with the reviewer token, its log kept in `logs`, stopped after the test. */
  function reviewer(options: Partial<ServeReviewsOptions> & Pick<ServeReviewsOptions, "handler">): Reviewer {
    const r = serveReviews({
      address: ADDR,
      token: REVIEWER_TOKEN,
      roles: ["safety", "quality"],
      log: (m) => logs.push(m),
      ...options,
    });
    started.push(r);
    return r;
  }

  before(() => (agent = connect(ADDR, { token: AGENT_TOKEN })));
  after(() => agent.close());
  beforeEach(() => {
    started = [];
    logs = [];
  });
  afterEach(async () => {
    await Promise.all(started.map((r) => within(settled(r.stop()), "a reviewer to stop")));
  });

  it("a review by the agent gets the reviewer's votes, cast by the reviewer principal, with the task it was given", async () => {
    const tasks: ReviewerTask[] = [];
    const r = reviewer({
      handler: (task) => {
        tasks.push(task);
        return { vote: "approve", confidence: 0.8, reasoning: `checked by the ts reviewer as ${ReviewerRole[task.role]}`, conditions: ["run the tests"] };
      },
    });
    await within(r.connected, "the reviewer to connect");
    expect(r.isConnected).to.equal(true);

    const s = suggestion();
    const before = Date.now();
    const review = agent.review(s);
    const streamed: Vote[] = [];
    for await (const v of review) streamed.push(v);
    const decision = await review.decision;

    for (const role of [ReviewerRole.REVIEWER_ROLE_SAFETY, ReviewerRole.REVIEWER_ROLE_QUALITY]) {
      const v = voteOf(decision.votes, role);
      expect(v.castBy, ReviewerRole[role]).to.equal(REVIEWER);
      expect(v.vote).to.equal(VoteType.VOTE_TYPE_APPROVE);
      expect(v.confidence).to.equal(0.8);
      expect(v.reasoning).to.include(`checked by the ts reviewer as ${ReviewerRole[role]}`);
      expect(v.conditions).to.include("run the tests");
      expect(voteOf(streamed, role).castBy, "the streamed vote").to.equal(REVIEWER);
    }
    expect(voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_PERFORMANCE).castBy).to.equal("rules");
    expect(decision.decision).to.not.equal(DecisionType.DECISION_TYPE_REJECT);

    expect(tasks.map((t) => t.role).sort()).to.deep.equal([ReviewerRole.REVIEWER_ROLE_SAFETY, ReviewerRole.REVIEWER_ROLE_QUALITY].sort());
    for (const t of tasks) {
      expect(t.decisionId).to.equal(decision.id);
      expect(t.suggestion.id).to.equal(s.id);
      expect(t.suggestion.diff).to.equal(s.diff);
      expect(t.dryRun).to.equal(false);
      expect(t.deadline.getTime()).to.be.greaterThan(before).and.at.most(Date.now() + TIMEOUT_MS);
      expect(t.signal.aborted, "the task's signal aborts once its vote is sent").to.equal(true);
    }

    const dry = await agent.review(suggestion(), { dryRun: true }).decision;
    expect(voteOf(dry.votes, ReviewerRole.REVIEWER_ROLE_SAFETY).castBy).to.equal(REVIEWER);
    expect(tasks.at(-1)!.dryRun, "a dry run's task says so").to.equal(true);
    expect(logs, "nothing went wrong").to.deep.equal([]);
  });

  it("a reviewer's veto rejects the change, whatever the other votes say", async () => {
    const r = reviewer({
      handler: (task) =>
        task.role === ReviewerRole.REVIEWER_ROLE_SAFETY
          ? { vote: "reject", confidence: 1, reasoning: "a key in the diff", veto: "credential_in_diff", concerns: ["retry.ts:1"] }
          : { vote: VoteType.VOTE_TYPE_APPROVE, confidence: 0.9, reasoning: "fine" },
    });
    await within(r.connected, "the reviewer to connect");
    const decision = await agent.review(suggestion()).decision;
    const safety = voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_SAFETY);
    expect(safety.vote).to.equal(VoteType.VOTE_TYPE_REJECT);
    expect(safety.veto).to.equal("credential_in_diff");
    expect(safety.castBy).to.equal(REVIEWER);
    expect(voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_QUALITY).vote).to.equal(VoteType.VOTE_TYPE_APPROVE);
    expect(decision.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
  });

  it("a handler that throws sends no vote, and a vote ready after the deadline is dropped: the failure policies count", async () => {
    const r = reviewer({
      handler: async (task) => {
        if (task.role === ReviewerRole.REVIEWER_ROLE_SAFETY) throw new Error("the model is down");
        // Quality answers only once its deadline has passed (the signal says so).
        await new Promise((resolve) => task.signal.addEventListener("abort", resolve, { once: true }));
        return { vote: "approve", confidence: 1, reasoning: "too late" };
      },
    });
    await within(r.connected, "the reviewer to connect");
    const decision = await within(agent.review(suggestion()).decision, "the decision");
    const safety = voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_SAFETY);
    expect(safety.castBy).to.equal("fallback:needs_more_info");
    expect(safety.vote).to.equal(VoteType.VOTE_TYPE_NEEDS_MORE_INFO);
    expect(safety.reasoning).to.include("timed out");
    const quality = voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_QUALITY);
    expect(quality.castBy).to.equal("fallback:reject");
    expect(quality.veto).to.equal("no_external_vote");
    await until(() => logs.some((l) => /after the deadline; dropped/.test(l)), "the late vote to be dropped");
    expect(logs.find((l) => l.startsWith("safety task"))).to.match(/the handler failed, no vote: the model is down/);
    expect(logs.find((l) => l.startsWith("quality task"))).to.match(/quality task \S+ \(decision [^)]+\): the vote came after the deadline; dropped/);
    expect(r.isConnected, "a handler's failure does not end the stream").to.equal(true);
  });

  it("a vote is late once the task's deadline has fired, even when the wall clock says otherwise (stepped back)", async () => {
    const realNow = Date.now;
    const r = reviewer({
      handler: async (task) => {
        if (task.role === ReviewerRole.REVIEWER_ROLE_SAFETY) return { vote: "approve", confidence: 1, reasoning: "fine" };
        await new Promise((resolve) => task.signal.addEventListener("abort", resolve, { once: true }));
        // The wall clock steps back a second while the vote is handed over (undone once the SDK has
        // looked at it, after the current microtasks).
        Date.now = () => realNow() - 1000;
        setImmediate(() => (Date.now = realNow));
        return { vote: "approve", confidence: 1, reasoning: "too late" };
      },
    });
    try {
      await within(r.connected, "the reviewer to connect");
      const decision = await within(agent.review(suggestion()).decision, "the decision");
      expect(voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_SAFETY).castBy).to.equal(REVIEWER);
      const quality = voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_QUALITY);
      expect(quality.castBy, "the late vote was sent and counted").to.equal("fallback:reject");
      await until(() => logs.some((l) => /quality task .*after the deadline; dropped/.test(l)), "the late vote to be dropped");
    } finally {
      Date.now = realNow;
    }
  });

  it("opens the stream again after the connection is cut, and serves again", async () => {
    const proxy = await cuttableProxy(ADDR);
    try {
      const disconnects: (CouncilError | undefined)[] = [];
      let connects = 0;
      const r = reviewer({
        address: proxy.addr,
        backoff: { initialMs: 50 },
        onConnected: () => (connects += 1),
        onDisconnected: (err) => disconnects.push(err),
        handler: () => ({ vote: "approve", confidence: 0.7, reasoning: "after the cut" }),
      });
      await within(r.connected, "the reviewer to connect");
      proxy.cut();
      await until(() => r.connections === 2 && r.isConnected, "the reviewer to connect again", 8000);
      expect(connects).to.equal(2);
      expect(disconnects).to.have.length(1);
      expect(disconnects[0]).to.be.instanceOf(UnavailableError);
      expect(logs.join("\n")).to.match(/the stream ended \(UNAVAILABLE: .*\); opening it again in \d+ ms/);
      const decision = await agent.review(suggestion()).decision;
      expect(voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_SAFETY).castBy).to.equal(REVIEWER);
      expect(voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_SAFETY).reasoning).to.include("after the cut");
    } finally {
      await Promise.all(started.map((r) => within(settled(r.stop()), "the reviewer to stop")));
      proxy.close();
    }
  });

  it("gives up at once on errors of configuration: a token without the role reviewer, a wrong token, a role that is not external", async () => {
    const cases: [Partial<ServeReviewsOptions>, new (...a: never[]) => CouncilError][] = [
      [{ token: AGENT_TOKEN }, PermissionDeniedError],
      [{ token: "council_not-a-token" }, UnauthenticatedError],
      [{ roles: ["performance"] }, FailedPreconditionError],
    ];
    for (const [options, expected] of cases) {
      let disconnects = 0;
      const r = reviewer({ ...options, onDisconnected: () => (disconnects += 1), handler: () => undefined });
      const done = await within(settled(r.done), "the reviewer to give up");
      expect(done.error, JSON.stringify(options)).to.be.instanceOf(expected);
      expect((await settled(r.connected)).error, "connected rejects with the same error").to.equal(done.error);
      expect(disconnects, "no second attempt").to.equal(0);
      expect(r.connections).to.equal(0);
      expect(logs.at(-1)).to.match(/^giving up: /);
    }
    expect(() => reviewer({ roles: [], handler: () => undefined })).to.throw(TypeError, /at least one role/);
    expect(() => reviewer({ roles: ["security" as "safety"], handler: () => undefined })).to.throw(TypeError, /unknown role "security"/);
    expect(() => reviewer({ concurrency: 0, handler: () => undefined })).to.throw(TypeError, /concurrency/);
  });

  it("stop() (or the signal) ends the stream: the handlers' signals abort, the server counts the reviewer gone and gives its task up at once", async () => {
    let taken!: () => void;
    const taskTaken = new Promise<void>((resolve) => (taken = resolve));
    let aborted = false;
    const r = reviewer({
      roles: ["safety"],
      handler: async (task) => {
        taken();
        await new Promise((resolve) => task.signal.addEventListener("abort", resolve, { once: true }));
        aborted = true;
        return { vote: "approve", confidence: 1, reasoning: "after the stop" };
      },
    });
    await within(r.connected, "the reviewer to connect");
    const connectedOf = async (role: ReviewerRole) => (await agent.reviewers()).reviewers.find((p) => p.role === role)!.connected;
    expect(await connectedOf(ReviewerRole.REVIEWER_ROLE_SAFETY)).to.equal(1);

    const started = Date.now();
    const review = agent.review(suggestion());
    await within(taskTaken, "the task to reach the handler");
    await within(r.stop(), "the reviewer to stop");
    expect(aborted, "the handler's signal aborted").to.equal(true);
    expect(r.isConnected).to.equal(false);
    const decision = await review.decision;
    const safety = voteOf(decision.votes, ReviewerRole.REVIEWER_ROLE_SAFETY);
    expect(safety.castBy).to.equal("fallback:needs_more_info");
    expect(safety.reasoning).to.include("reviewer disconnected");
    expect(Date.now() - started, "the review did not wait for the timeout").to.be.lessThan(TIMEOUT_MS);
    expect(await connectedOf(ReviewerRole.REVIEWER_ROLE_SAFETY)).to.equal(0);

    const controller = new AbortController();
    const other = reviewer({ signal: controller.signal, handler: () => undefined });
    await within(other.connected, "the second reviewer to connect");
    controller.abort();
    await within(other.done, "the aborted reviewer to end");
    expect(other.isConnected).to.equal(false);
  });

  it("handles the tasks of a stream concurrently, at most `concurrency` at once, the others waiting their turn", async () => {
    let running = 0;
    let most = 0;
    let full = false;
    const r: Reviewer = reviewer({
      roles: ["safety"],
      concurrency: 2,
      handler: async () => {
        running += 1;
        most = Math.max(most, running);
        // The first two are held until they run and the third waits for a slot (without the bound,
        // all three would run and this never holds: they then answer late, and the test fails).
        await until(() => (full ||= r.inFlight === 2 && r.waiting === 1), "two tasks running and one waiting", 2500).catch(() => undefined);
        running -= 1;
        return { vote: "approve", confidence: 0.6, reasoning: "in turn" };
      },
    });
    await within(r.connected, "the reviewer to connect");
    const decisions = await Promise.all([1, 2, 3].map(() => agent.review(suggestion()).decision));
    expect(full, "two ran while the third waited").to.equal(true);
    expect(most).to.equal(2);
    for (const d of decisions) expect(voteOf(d.votes, ReviewerRole.REVIEWER_ROLE_SAFETY).castBy).to.equal(REVIEWER);
  });
});

describe("TypeScript client: the reviewer's backoff and votes (no server)", () => {
  it("waits at random below 100 ms doubling to 10 s between streams that fail, and gives up on errors of configuration only", () => {
    const backoff = { initialMs: 100, maxMs: 10_000 };
    expect([1, 2, 3, 4, 8, 20].map((n) => reconnectDelay(n, backoff, () => 0.999999))).to.satisfy((ws: number[]) =>
      ws.every((w, i) => Math.abs(w - [100, 200, 400, 800, 10_000, 10_000][i]! * 0.999999) < 1e-6),
    );
    expect(reconnectDelay(5, backoff, () => 0)).to.equal(0);
    for (const code of [status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.FAILED_PRECONDITION, status.INVALID_ARGUMENT, status.UNIMPLEMENTED]) {
      expect(reconnectable(code), status[code]).to.equal(false);
    }
    for (const code of [status.UNAVAILABLE, status.OK, status.RESOURCE_EXHAUSTED, status.INTERNAL, status.UNKNOWN, status.CANCELLED]) {
      expect(reconnectable(code), status[code]).to.equal(true);
    }
  });

  it("turns a handler's vote into the wire vote, and says what the server would refuse", () => {
    expect(taskVote("t1", { vote: "needs_more_info", confidence: 0.5 })).to.deep.equal({
      vote: { taskId: "t1", vote: VoteType.VOTE_TYPE_NEEDS_MORE_INFO, reasoning: "", concerns: [], conditions: [], confidence: 0.5, veto: "" },
    });
    expect(taskVote("t1", { vote: "approve", confidence: 1.5 }).problem).to.match(/confidence 1.5 is not in \[0, 1\]/);
    expect(taskVote("t1", { vote: "approve", confidence: 1, veto: "nope" }).problem).to.match(/REJECT only/);
    expect(taskVote("t1", { vote: "reject", confidence: 1, veto: "Bad Veto" }).problem).to.match(/snake_case/);
    expect(taskVote("t1", { vote: "reject", confidence: 1, veto: "credential_in_diff" }).problem).to.equal(undefined);
    expect(() => taskVote("t1", { vote: "maybe" as "approve", confidence: 1 })).to.throw(TypeError, /unknown vote "maybe"/);
  });
});
