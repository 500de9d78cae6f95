/**
 * Human verdicts (SPEC section 9) through the TypeScript client: resolve, awaitDecision and the
 * guard, against the lifecycle server that the repository's test/clients.test.ts starts:
 *
 * - COUNCIL_TEST_LIFECYCLE_ADDR: plaintext, with the auth file of principals and tokens, and a
 *   policy where HUMAN_APPROVE needs 2 approvals within 10 minutes and DEFER 1 within 1 second;
 * - COUNCIL_TEST_AGENT_TOKEN / _PRINCIPAL: role agent (submits reviews);
 * - COUNCIL_TEST_APPROVER_TOKEN / _PRINCIPAL and COUNCIL_TEST_APPROVER2_TOKEN / _PRINCIPAL: two
 *   principals with the role approver.
 *
 * Nothing here sleeps for a fixed time: each step waits for the event it needs (a state of the
 * decision, a callback), bounded by a deadline.
 */
import { randomUUID } from "node:crypto";
import { expect } from "chai";
import {
  CancelledError,
  connect,
  DeadlineExceededError,
  DecisionStatus,
  DecisionType,
  FailedPreconditionError,
  ImpactLevel,
  InvalidArgumentError,
  Outcome,
  PermissionDeniedError,
  RiskLevel,
  VerdictType,
  type CouncilClient,
  type Decision,
  type SuggestionInput,
  type Vote,
} from "../src/index.js";
import { flakyProxy } from "./proxy.js";

const NAMES = [
  "COUNCIL_TEST_LIFECYCLE_ADDR",
  "COUNCIL_TEST_AGENT_TOKEN",
  "COUNCIL_TEST_AGENT_PRINCIPAL",
  "COUNCIL_TEST_APPROVER_TOKEN",
  "COUNCIL_TEST_APPROVER_PRINCIPAL",
  "COUNCIL_TEST_APPROVER2_TOKEN",
  "COUNCIL_TEST_APPROVER2_PRINCIPAL",
] as const;

function lifecycleEnv(): Record<(typeof NAMES)[number], string> {
  const missing = NAMES.filter((n) => !process.env[n]);
  if (missing.length) {
    throw new Error(`set ${missing.join(", ")}: these tests need the lifecycle server that the repository's test/clients.test.ts starts`);
  }
  return Object.fromEntries(NAMES.map((n) => [n, process.env[n]!])) as Record<(typeof NAMES)[number], string>;
}

const uid = (p: string) => `${p}-${randomUUID().slice(0, 8)}`;

/** Low risk, auto-fixable, two fix steps: AUTO_APPROVE. */
const autoApproved = (): SuggestionInput => ({
  id: uid("ts-auto"),
  title: "Tidy the retry helper",
  risk: RiskLevel.RISK_LEVEL_LOW,
  impact: ImpactLevel.IMPACT_LEVEL_LOW,
  autoFixable: true,
  fixSteps: ["Apply the patch", "Run the tests"],
});
/** Medium risk, five approvals, not auto-fixable: HUMAN_APPROVE (2 approvals, 10 minutes here). */
const needsPeople = (): SuggestionInput => ({
  id: uid("ts-human"),
  title: "Reindex the orders table",
  description: "Rebuild the index on created_at.",
  risk: RiskLevel.RISK_LEVEL_MEDIUM,
  impact: ImpactLevel.IMPACT_LEVEL_LOW,
  fixSteps: ["Build the new index concurrently", "Drop the old one"],
});
/** High risk and transformative: two reviewers need more information, DEFER (expires in 1 s here). */
const deferred = (): SuggestionInput => ({
  id: uid("ts-defer"),
  title: "Rewrite the storage engine",
  risk: RiskLevel.RISK_LEVEL_HIGH,
  impact: ImpactLevel.IMPACT_LEVEL_TRANSFORMATIVE,
  fixSteps: ["Write it", "Migrate"],
});
/** A safety veto: REJECT by the council. */
const vetoed = (): SuggestionInput => ({
  id: uid("ts-veto"),
  title: "Temporarily bypasses authentication",
  risk: RiskLevel.RISK_LEVEL_MEDIUM,
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

/** The states something reports, and a way to wait (bounded) for one that matches. */
class States {
  readonly seen: Decision[] = [];
  private waiters: { match: (d: Decision) => boolean; resolve: (d: Decision) => void }[] = [];

  readonly push = (d: Decision): void => {
    this.seen.push(d);
    for (const w of this.waiters.filter((w) => w.match(d))) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(d);
    }
  };

  until(match: (d: Decision) => boolean, what: string, timeoutMs = 10_000): Promise<Decision> {
    const found = this.seen.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no state ${what} within ${timeoutMs} ms; seen: ${this.describe()}`)), timeoutMs);
      this.waiters.push({ match, resolve: (d) => (clearTimeout(timer), resolve(d)) });
    });
  }

  describe(): string {
    return JSON.stringify(this.seen.map((d) => [DecisionStatus[d.status], d.verdicts.length]));
  }
}

const pending = (verdicts: number) => (d: Decision) => d.status === DecisionStatus.DECISION_STATUS_PENDING && d.verdicts.length === verdicts;

describe("TypeScript client: human verdicts (resolve, awaitDecision, guard)", () => {
  const env = lifecycleEnv();
  const ADDR = env.COUNCIL_TEST_LIFECYCLE_ADDR;
  const clients: CouncilClient[] = [];
  const open = (token: string, addr = ADDR) => {
    const c = connect(addr, { token, timeoutMs: 10_000, reviewTimeoutMs: 15_000 });
    clients.push(c);
    return c;
  };
  let agent: CouncilClient;
  let alice: CouncilClient;
  let bob: CouncilClient;
  const ALICE = env.COUNCIL_TEST_APPROVER_PRINCIPAL;
  const BOB = env.COUNCIL_TEST_APPROVER2_PRINCIPAL;
  before(() => {
    agent = open(env.COUNCIL_TEST_AGENT_TOKEN);
    alice = open(env.COUNCIL_TEST_APPROVER_TOKEN);
    bob = open(env.COUNCIL_TEST_APPROVER2_TOKEN);
  });
  after(() => clients.splice(0).forEach((c) => c.close()));

  describe("resolve", () => {
    it("approvals from two distinct approvers approve; a repeat changes nothing; the agent may not judge", async () => {
      const decision = await agent.review(needsPeople()).decision;
      expect(decision.decision).to.equal(DecisionType.DECISION_TYPE_HUMAN_APPROVE);
      expect(decision.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
      expect(decision.approvalsRequired).to.equal(2);
      expect(decision.expiresAt).to.be.instanceOf(Date);
      expect(decision.submittedBy).to.equal(env.COUNCIL_TEST_AGENT_PRINCIPAL);

      const first = await alice.resolve(decision.id, "approve", { comment: "index looks right" });
      expect(first.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
      expect(first.verdicts.map((v) => [v.by, v.verdict, v.comment])).to.deep.equal([[ALICE, VerdictType.VERDICT_TYPE_APPROVE, "index looks right"]]);
      // The same verdict again (another request id): the decision as it is, not a second approval.
      const again = await alice.resolve(decision.id, VerdictType.VERDICT_TYPE_APPROVE);
      expect(again.verdicts).to.have.length(1);
      // The other verdict from the same principal is refused.
      expect(await failure(alice.resolve(decision.id, "reject", { comment: "changed my mind" }))).to.be.instanceOf(FailedPreconditionError);
      // The agent holds no approver role.
      const denied = await failure(agent.resolve(decision.id, "approve"));
      expect(denied).to.be.instanceOf(PermissionDeniedError);

      const approved = await bob.resolve(decision.id, "approve");
      expect(approved.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
      expect(approved.verdicts.map((v) => v.by)).to.deep.equal([ALICE, BOB]);
      expect((await agent.getDecision(decision.id)).status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
      // Approved: an outcome is taken now.
      expect((await agent.recordOutcome(decision.id, Outcome.OUTCOME_SUCCESS)).outcome).to.equal(Outcome.OUTCOME_SUCCESS);
    });

    it("a rejection needs a comment, rejects at once, and closes the decision to verdicts and outcomes", async () => {
      const decision = await agent.review(needsPeople()).decision;
      const noComment = await failure(alice.resolve(decision.id, "reject"));
      expect(noComment).to.be.instanceOf(InvalidArgumentError);
      expect((noComment as InvalidArgumentError).field).to.equal("comment");
      expect(await failure(agent.recordOutcome(decision.id, Outcome.OUTCOME_SUCCESS)), "no outcome while pending").to.be.instanceOf(
        FailedPreconditionError,
      );

      const rejected = await alice.resolve(decision.id, "reject", { comment: "not during the sale" });
      expect(rejected.status).to.equal(DecisionStatus.DECISION_STATUS_REJECTED);
      expect(rejected.verdicts.map((v) => [v.by, v.verdict, v.comment])).to.deep.equal([[ALICE, VerdictType.VERDICT_TYPE_REJECT, "not during the sale"]]);
      const late = await failure(bob.resolve(decision.id, "approve"));
      expect(late).to.be.instanceOf(FailedPreconditionError);
      expect((late as FailedPreconditionError).details).to.match(/rejected/i);
      expect(await failure(agent.recordOutcome(decision.id, Outcome.OUTCOME_SUCCESS))).to.be.instanceOf(FailedPreconditionError);
      expect(() => alice.resolve(decision.id, "maybe" as "approve")).to.throw(TypeError, /verdict/);
    });

    it("a verdict whose reply was lost is retried (UNAVAILABLE) with the same request_id and counted once", async () => {
      const decision = await agent.review(needsPeople()).decision;
      // The HTTP/2 handshake is under 200 bytes and the reply, a whole decision, well over.
      const proxy = await flakyProxy(ADDR, 200);
      const flaky = connect(proxy.addr, { token: env.COUNCIL_TEST_APPROVER_TOKEN, retry: { attempts: 5, initialBackoffMs: 50, maxBackoffMs: 200 } });
      try {
        const requestId = uid("verdict");
        const resolved = await flaky.resolve(decision.id, "approve", { comment: "once", requestId });
        expect(proxy.cuts()).to.equal(1);
        expect(resolved.verdicts.map((v) => v.by)).to.deep.equal([ALICE]);
        expect((await agent.getDecision(decision.id)).verdicts).to.have.length(1);
      } finally {
        flaky.close();
        proxy.close();
      }
    });

    it("the approvers' queue: pending decisions, oldest first; the summary counts by status", async () => {
      const older = await agent.review(needsPeople()).decision;
      const newer = await agent.review(needsPeople()).decision;
      const queue: string[] = [];
      for await (const d of alice.listDecisions({ status: DecisionStatus.DECISION_STATUS_PENDING, oldestFirst: true, pageSize: 200 })) {
        expect(d.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
        queue.push(d.id);
      }
      expect(queue).to.include.members([older.id, newer.id]);
      expect(queue.indexOf(older.id)).to.be.lessThan(queue.indexOf(newer.id));
      const summary = await alice.summary();
      expect(summary.byStatus.pending).to.be.at.least(2);
    });
  });

  describe("awaitDecision", () => {
    it("sends the state at once, then each verdict another principal gives, and ends after the final status", async () => {
      const decision = await agent.review(needsPeople()).decision;
      const states = new States();
      const waiting = (async () => {
        for await (const d of agent.awaitDecision(decision.id, { timeoutMs: 30_000 })) states.push(d);
      })();
      await states.until(pending(0), "pending with no verdict");
      await alice.resolve(decision.id, "approve");
      await states.until(pending(1), "pending with alice's approval");
      await bob.resolve(decision.id, "approve", { comment: "go" });
      await waiting; // ends by itself after the final status
      expect(states.seen.map((d) => [d.status, d.verdicts.length])).to.deep.equal([
        [DecisionStatus.DECISION_STATUS_PENDING, 0],
        [DecisionStatus.DECISION_STATUS_PENDING, 1],
        [DecisionStatus.DECISION_STATUS_APPROVED, 2],
      ]);
      expect(states.seen.at(-1)!.verdicts.map((v) => v.by)).to.deep.equal([ALICE, BOB]);
    });

    it("an await cut by the network is awaited again (UNAVAILABLE retried) and still ends after the verdicts", async () => {
      const decision = await agent.review(needsPeople()).decision;
      // Cut once 200 bytes came back: past the HTTP/2 handshake, within the first state.
      const proxy = await flakyProxy(ADDR, 200);
      const flaky = connect(proxy.addr, { token: env.COUNCIL_TEST_AGENT_TOKEN, retry: { attempts: 5, initialBackoffMs: 50, maxBackoffMs: 200 } });
      try {
        const states = new States();
        const waiting = (async () => {
          for await (const d of flaky.awaitDecision(decision.id, { timeoutMs: 30_000 })) states.push(d);
        })();
        await states.until(pending(0), "the current state, after the retry");
        expect(proxy.cuts()).to.equal(1);
        await alice.resolve(decision.id, "approve");
        await bob.resolve(decision.id, "approve");
        await waiting;
        expect(states.seen.at(-1)!.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
        expect(new Set(states.seen.map((d) => d.verdicts.length)).size, "no state twice").to.equal(states.seen.length);
      } finally {
        flaky.close();
        proxy.close();
      }
    });

    it("a final decision is sent once and the await ends", async () => {
      const decision = await agent.review(autoApproved()).decision;
      const seen: Decision[] = [];
      for await (const d of agent.awaitDecision(decision.id, { timeoutMs: 10_000 })) seen.push(d);
      expect(seen.map((d) => d.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_APPROVED]);
    });

    it("timeoutMs ends a wait nobody answers with a DeadlineExceededError, after the current state", async () => {
      const decision = await agent.review(needsPeople()).decision;
      const seen: Decision[] = [];
      const started = Date.now();
      const err = await failure(
        (async () => {
          for await (const d of agent.awaitDecision(decision.id, { timeoutMs: 500 })) seen.push(d);
        })(),
      );
      expect(err).to.be.instanceOf(DeadlineExceededError);
      expect(Date.now() - started).to.be.lessThan(8_000);
      expect(seen.map((d) => d.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_PENDING]);
    });

    it("aborting the signal ends the wait without an error", async () => {
      const decision = await agent.review(needsPeople()).decision;
      const controller = new AbortController();
      const states = new States();
      const waiting = (async () => {
        for await (const d of agent.awaitDecision(decision.id, { signal: controller.signal })) states.push(d);
      })();
      await states.until(pending(0), "the current state");
      controller.abort();
      await waiting;
      expect(states.seen).to.have.length(1);
    });

    it("an unknown decision is a NotFoundError", async () => {
      const err = await failure((async () => {
        for await (const _ of agent.awaitDecision("dec-does-not-exist", { timeoutMs: 5_000 })) void _;
      })());
      expect((err as { name: string }).name).to.equal("NotFoundError");
    });
  });

  describe("guard", () => {
    it("allows an auto-approved change at once, after streaming every vote", async () => {
      const votes: Vote[] = [];
      const states = new States();
      const verdict = await agent.guard(autoApproved(), { onVote: (v) => votes.push(v), onDecision: states.push, timeoutMs: 15_000 });
      expect(verdict.allowed).to.equal(true);
      expect(verdict.outcome).to.equal("approved");
      expect(verdict.timedOut).to.equal(false);
      expect(verdict.decisionType).to.equal(DecisionType.DECISION_TYPE_AUTO_APPROVE);
      expect(verdict.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
      expect(verdict.reason).to.match(/^auto-approved by the council: /);
      expect(verdict.approvedBy).to.deep.equal([]);
      expect(verdict.conditions).to.deep.equal(verdict.decision.conditions);
      expect(votes).to.have.length(5);
      expect(states.seen.map((d) => d.id)).to.deep.equal([verdict.decisionId]);
    });

    it("waits for people when the decision is pending, and allows once both approvers approved", async () => {
      const states = new States();
      const votes: Vote[] = [];
      const guarding = agent.guard(needsPeople(), { onVote: (v) => votes.push(v), onDecision: states.push, timeoutMs: 30_000 });
      // The approvers act on what the agent shows them: the pending decision's id.
      const shown = await states.until(pending(0), "pending (the council's decision)");
      expect(votes, "every vote came before the decision").to.have.length(5);
      await alice.resolve(shown.id, "approve", { comment: "ship it" });
      await states.until(pending(1), "alice's approval");
      await bob.resolve(shown.id, "approve");
      const verdict = await guarding;
      expect(verdict.allowed).to.equal(true);
      expect(verdict.outcome).to.equal("approved");
      expect(verdict.decisionType).to.equal(DecisionType.DECISION_TYPE_HUMAN_APPROVE);
      expect(verdict.approvedBy).to.deep.equal([ALICE, BOB]);
      expect(verdict.rejectedBy).to.deep.equal([]);
      expect(verdict.verdicts.map((v) => v.comment)).to.deep.equal(["ship it", ""]);
      expect(verdict.reason).to.equal(`approved by ${ALICE} ("ship it"), ${BOB} (2 of 2 approvals)`);
      expect(states.seen.map((d) => [d.status, d.verdicts.length])).to.deep.equal([
        [DecisionStatus.DECISION_STATUS_PENDING, 0],
        [DecisionStatus.DECISION_STATUS_PENDING, 1],
        [DecisionStatus.DECISION_STATUS_APPROVED, 2],
      ]);
    });

    it("does not allow what an approver rejected, and says who and why", async () => {
      const states = new States();
      const guarding = agent.guard(needsPeople(), { onDecision: states.push, timeoutMs: 30_000 });
      const shown = await states.until(pending(0), "pending");
      await alice.resolve(shown.id, "reject", { comment: "not during the sale" });
      const verdict = await guarding;
      expect(verdict.allowed).to.equal(false);
      expect(verdict.outcome).to.equal("rejected");
      expect(verdict.timedOut).to.equal(false);
      expect(verdict.status).to.equal(DecisionStatus.DECISION_STATUS_REJECTED);
      expect(verdict.rejectedBy).to.deep.equal([ALICE]);
      expect(verdict.verdicts[0]!.comment).to.equal("not during the sale");
      expect(verdict.reason).to.equal(`rejected by ${ALICE}: "not during the sale"`);
    });

    it("does not allow what the council rejected, without waiting", async () => {
      const verdict = await agent.guard(vetoed(), { timeoutMs: 15_000 });
      expect(verdict.allowed).to.equal(false);
      expect(verdict.outcome).to.equal("rejected");
      expect(verdict.decisionType).to.equal(DecisionType.DECISION_TYPE_REJECT);
      expect(verdict.reason).to.match(/^rejected by the council: Vetoed by safety: bypasses_authentication/);
    });

    it("does not allow a decision that expired while nobody approved it", async () => {
      const states = new States();
      const verdict = await agent.guard(deferred(), { onDecision: states.push, timeoutMs: 30_000 });
      expect(verdict.allowed).to.equal(false);
      expect(verdict.outcome).to.equal("expired");
      expect(verdict.timedOut).to.equal(false);
      expect(verdict.decisionType).to.equal(DecisionType.DECISION_TYPE_DEFER);
      expect(verdict.status).to.equal(DecisionStatus.DECISION_STATUS_EXPIRED);
      expect(verdict.reason).to.match(/^expired at \S+ with 0 of 1 approvals$/);
      expect(states.seen.map((d) => d.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_PENDING, DecisionStatus.DECISION_STATUS_EXPIRED]);
    });

    it("at its deadline says it timed out (not a rejection), and the decision stays pending", async () => {
      const started = Date.now();
      const verdict = await agent.guard(needsPeople(), { timeoutMs: 1_500 });
      expect(verdict.allowed).to.equal(false);
      expect(verdict.outcome).to.equal("timed_out");
      expect(verdict.timedOut).to.equal(true);
      expect(verdict.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
      expect(verdict.rejectedBy).to.deep.equal([]);
      expect(verdict.reason).to.match(new RegExp(`^timed out after \\d+ ms: decision ${verdict.decisionId} \\(DECISION_TYPE_HUMAN_APPROVE\\) is still pending \\(0 of 2 approvals`));
      expect(Date.now() - started).to.be.lessThan(10_000);
      expect((await agent.getDecision(verdict.decisionId)).status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
    });

    it("aborting the signal while it waits rejects with a CancelledError", async () => {
      const controller = new AbortController();
      const states = new States();
      const guarding = agent.guard(needsPeople(), { onDecision: states.push, signal: controller.signal });
      await states.until(pending(0), "pending");
      controller.abort();
      expect(await failure(guarding)).to.be.instanceOf(CancelledError);
    });

    it("a follow-up review supersedes the pending decision: its guard ends not allowed", async () => {
      const states = new States();
      const first = agent.guard(needsPeople(), { onDecision: states.push, timeoutMs: 30_000 });
      const shown = await states.until(pending(0), "pending");
      const followUp = await agent.review(needsPeople(), { supersedes: shown.id }).decision;
      expect(followUp.supersedes).to.equal(shown.id);
      const verdict = await first;
      expect(verdict.allowed).to.equal(false);
      expect(verdict.outcome).to.equal("superseded");
      expect(verdict.reason).to.equal(`superseded by ${followUp.id}`);
    });
  });
});
