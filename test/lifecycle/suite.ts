/**
 * Human verdicts (SPEC section 9) through gRPC, written once for every store: each store's test
 * file calls `lifecycleSuite` with a function that starts two replicas sharing one keyspace (for
 * the in-process store: two servers on one MemoryStore; for Redis: two servers, each with its own
 * connection, on one key prefix). Tests give verdicts on one replica and watch or await on the
 * other, so that a change must travel through the store to be seen.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { resolvePolicy } from "../../src/config.js";
import type { Policy } from "../../src/domain/policy.js";
import type {
  AwaitDecisionResponse,
  CouncilServiceClient,
  GetSummaryResponse,
  ListDecisionsRequest,
  ResolveDecisionRequest,
  ReviewSuggestionRequest,
  WatchDecisionsResponse,
} from "../../src/gen/council/v1/council_service.js";
import {
  DecisionStatus,
  DecisionType,
  ImpactLevel,
  Outcome,
  RiskLevel,
  VerdictType,
  type Decision,
  type Suggestion,
} from "../../src/gen/council/v1/review.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { writePrincipals, type Principals } from "../support/principals.js";
import { call, collect, type Running, type StartOptions } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

/** Two replicas sharing one keyspace (they may be one server, where a store cannot do better). */
export interface Replicas {
  a: Running;
  b: Running;
  /** Stops both servers and closes their stores. */
  stop(): Promise<void>;
}

/** Starts two replicas of a fresh, empty keyspace, each with `options` (never `store`: the factory chooses). */
export type StartReplicas = (options: Omit<StartOptions, "store">) => Promise<Replicas>;

/** Suggestions that the `default` policy decides each way (SPEC sections 3 and 4). */
export const SUGGESTIONS = {
  /** Five approvals, low risk, auto-fixable. */
  autoApprove: (o: Partial<Suggestion> = {}) => wireSuggestion(o),
  /** Five approvals at medium risk: approved for a human. */
  humanApprove: (o: Partial<Suggestion> = {}) => wireSuggestion({ risk: RiskLevel.RISK_LEVEL_MEDIUM, autoFixable: false, ...o }),
  /** Safety (high risk) and architecture (transformative) need more information. */
  defer: (o: Partial<Suggestion> = {}) =>
    wireSuggestion({ risk: RiskLevel.RISK_LEVEL_HIGH, impact: ImpactLevel.IMPACT_LEVEL_TRANSFORMATIVE, autoFixable: false, ...o }),
  /** A safety veto, which rejects under `default`. */
  reject: (o: Partial<Suggestion> = {}) => wireSuggestion({ title: "Log the request", description: "This exposes secrets in the logs.", ...o }),
};

/** Everyone the tests call as: agents submit, approvers give verdicts, `ops` records any outcome. */
const ROLES = {
  "agent-a": ["agent"],
  "agent-b": ["agent"],
  /** An agent that may also approve: it must still not approve its own decisions. */
  "agent-approver": ["agent", "approver"],
  alice: ["approver"],
  bob: ["approver"],
  carol: ["approver"],
  ops: ["operator"],
  ...Object.fromEntries(Array.from({ length: 23 }, (_, i) => [`approver-${String(i + 1).padStart(2, "0")}`, ["approver"]])),
} as const;
type Name = keyof typeof ROLES | `approver-${string}`;

function expectStatus(err: unknown, code: status, details?: RegExp): ServiceError {
  expect(err, `expected a ${status[code]} error`).to.be.instanceOf(Error);
  const e = err as ServiceError;
  expect(status[e.code], e.details).to.equal(status[code]);
  if (details) expect(e.details).to.match(details);
  return e;
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("the call succeeded; it should have failed");
}

/** A stream of states of one decision, read as they arrive. */
function awaitStream(client: CouncilServiceClient, decisionId: string, deadlineMs = 15_000) {
  const stream: ClientReadableStream<AwaitDecisionResponse> = client.awaitDecision({ decisionId }, new Metadata(), {
    deadline: Date.now() + deadlineMs,
  });
  const states: Decision[] = [];
  stream.on("data", (m: AwaitDecisionResponse) => states.push(m.decision!));
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    stream.on("error", (e: ServiceError) => resolve(e));
    stream.on("end", () => resolve(undefined));
  });
  return {
    stream,
    states,
    ended: (timeoutMs = 15_000) => within(ended, { timeoutMs, what: `the await of ${decisionId} to end` }),
    sawStates: (n: number) => waitFor(() => states.length >= n, { what: `${n} state(s) of ${decisionId} on the await` }),
  };
}

/** A watch with include_updates (and no votes), live once its response headers arrive. */
function watchUpdates(client: CouncilServiceClient, includeUpdates = true) {
  const stream = client.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: false, includeUpdates });
  const decisions: Decision[] = [];
  const live = new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  stream.on("data", (e: WatchDecisionsResponse) => {
    if (e.event?.$case === "decision") decisions.push(e.event.value);
  });
  stream.on("error", () => {});
  return {
    decisions,
    live: () => within(live, { what: "the watch to be live" }),
    saw: (pred: (d: Decision) => boolean, what: string) => waitFor(() => decisions.some(pred), { what, timeoutMs: 10_000 }),
    cancel: () => stream.cancel(),
  };
}

/** Writes a policy file (YAML) and loads it as the server does (COUNCIL_POLICY=<path>). */
async function policyFile(name: string, yaml: string): Promise<Policy> {
  const dir = await mkdtemp(join(tmpdir(), "council-policy-"));
  try {
    const path = join(dir, `${name}.yaml`);
    await writeFile(path, yaml);
    return resolvePolicy(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function lifecycleSuite(name: string, startReplicas: StartReplicas): void {
  describe(`Human verdicts (SPEC section 9), through gRPC: ${name}`, function () {
    this.timeout(60_000);
    let principals: Principals;
    let running: Replicas[] = [];

    before(async () => {
      principals = await writePrincipals(ROLES as unknown as Record<string, ("agent" | "approver" | "operator")[]>);
    });
    after(async () => principals.remove());
    afterEach(async () => {
      const stopping = running;
      running = [];
      for (const r of stopping) await r.stop();
    });

    /** Starts two replicas with the auth file (unless `anonymous`); clients per principal and replica. */
    async function start(options: { policy?: Policy; anonymous?: boolean } = {}) {
      const r = await startReplicas({ policy: options.policy, authFile: options.anonymous ? undefined : principals.authFile });
      running.push(r);
      const clients = new Map<string, CouncilServiceClient>();
      const as = (who: Name, replica: "a" | "b" = "a"): CouncilServiceClient => {
        const key = `${who}@${replica}`;
        let c = clients.get(key);
        if (!c) {
          c = r[replica].connect({ token: principals.tokens[who] });
          clients.set(key, c);
        }
        return c;
      };
      return { ...r, as };
    }

    type Env = Awaited<ReturnType<typeof start>>;

    /** Submits a review and returns its decision. */
    async function submit(client: CouncilServiceClient, suggestion: Suggestion, extra: Partial<ReviewSuggestionRequest> = {}): Promise<Decision> {
      const got = await collect(client.reviewSuggestion({ suggestion, requestId: "", dryRun: false, supersedes: "", ...extra }));
      if (got.error) throw got.error;
      const last = got.events[got.events.length - 1]!.event;
      if (last?.$case !== "decision") throw new Error("the review did not end with a decision");
      return last.value;
    }

    function resolve(client: CouncilServiceClient, req: Partial<ResolveDecisionRequest>): Promise<Decision> {
      return call(client, client.resolveDecision, { decisionId: "", verdict: 0, comment: "", requestId: "", ...req }).then((r) => r.decision!);
    }
    const approve = (client: CouncilServiceClient, decisionId: string, extra: Partial<ResolveDecisionRequest> = {}) =>
      resolve(client, { decisionId, verdict: VerdictType.VERDICT_TYPE_APPROVE, ...extra });
    const reject = (client: CouncilServiceClient, decisionId: string, comment: string, extra: Partial<ResolveDecisionRequest> = {}) =>
      resolve(client, { decisionId, verdict: VerdictType.VERDICT_TYPE_REJECT, comment, ...extra });
    const get = (client: CouncilServiceClient, id: string) => call(client, client.getDecision, { id }).then((r) => r.decision!);
    const summary = (client: CouncilServiceClient): Promise<GetSummaryResponse> => call(client, client.getSummary, {});
    function list(client: CouncilServiceClient, req: Partial<ListDecisionsRequest>) {
      return call(client, client.listDecisions, {
        decisionType: 0,
        suggestionId: "",
        pageSize: 0,
        pageToken: "",
        status: 0,
        oldestFirst: false,
        ...req,
      });
    }
    async function listAll(client: CouncilServiceClient, req: Partial<ListDecisionsRequest>): Promise<Decision[]> {
      const all: Decision[] = [];
      let pageToken = "";
      for (let page = 0; page < 1000; page++) {
        const got = await list(client, { ...req, pageToken });
        all.push(...got.decisions);
        if (!got.nextPageToken) return all;
        pageToken = got.nextPageToken;
      }
      throw new Error("paging did not end");
    }

    describe("lifecycle at decision time", () => {
      it("approves AUTO_APPROVE, rejects REJECT, and leaves the rest pending with the policy's settings", async () => {
        const env = await start();
        const agent = env.as("agent-a");
        const auto = await submit(agent, SUGGESTIONS.autoApprove());
        const rejected = await submit(agent, SUGGESTIONS.reject());
        const human = await submit(agent, SUGGESTIONS.humanApprove());
        const deferred = await submit(agent, SUGGESTIONS.defer());
        expect([auto.decision, rejected.decision, human.decision, deferred.decision]).to.deep.equal([
          DecisionType.DECISION_TYPE_AUTO_APPROVE,
          DecisionType.DECISION_TYPE_REJECT,
          DecisionType.DECISION_TYPE_HUMAN_APPROVE,
          DecisionType.DECISION_TYPE_DEFER,
        ]);
        expect(auto).to.deep.include({ status: DecisionStatus.DECISION_STATUS_APPROVED, approvalsRequired: 0, expiresAt: undefined, verdicts: [] });
        expect(rejected).to.deep.include({ status: DecisionStatus.DECISION_STATUS_REJECTED, approvalsRequired: 0, expiresAt: undefined });
        for (const d of [human, deferred]) {
          expect(d).to.deep.include({ status: DecisionStatus.DECISION_STATUS_PENDING, approvalsRequired: 1, submittedBy: "agent-a", supersedes: "" });
          expect(d.expiresAt!.getTime() - d.decidedAt!.getTime()).to.equal(24 * 3_600_000);
        }
        // Read back from the other replica: the same.
        expect(await get(env.as("alice", "b"), human.id)).to.deep.equal(human);
      });

      it("shows the lifecycle on a dry run and stores nothing", async () => {
        const env = await start();
        const dry = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove(), { dryRun: true });
        expect(dry).to.deep.include({ status: DecisionStatus.DECISION_STATUS_PENDING, approvalsRequired: 1 });
        expect(dry.expiresAt).to.be.instanceOf(Date);
        expectStatus(await failure(get(env.as("alice"), dry.id)), status.NOT_FOUND);
        expect((await summary(env.as("alice"))).totalDecisions).to.equal(0);
      });

      it("takes approvals and expiry per decision type from the policy file's verdicts section", async () => {
        const policy = await policyFile("quorum", "verdicts:\n  human_approve: { approvals: 3, expires_after: 90m }\n  defer: { expires_after: 30s }\n");
        expect(policy.verdicts).to.deep.equal({
          human_approve: { approvals: 3, expires_after: "90m" },
          defer: { approvals: 1, expires_after: "30s" },
          escalate: { approvals: 2, expires_after: "72h" },
        });
        const env = await start({ policy });
        const human = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove());
        const deferred = await submit(env.as("agent-a"), SUGGESTIONS.defer());
        expect(human.approvalsRequired).to.equal(3);
        expect(human.expiresAt!.getTime() - human.decidedAt!.getTime()).to.equal(90 * 60_000);
        expect(human.policyVersion).to.equal(policy.version);
        expect(deferred.approvalsRequired).to.equal(1);
        expect(deferred.expiresAt!.getTime() - deferred.decidedAt!.getTime()).to.equal(30_000);
      });
    });

    describe("ResolveDecision", () => {
      let env: Env;
      let pending: Decision;
      beforeEach(async () => {
        env = await start({ policy: await policyFile("two", "verdicts:\n  human_approve: { approvals: 2 }\n") });
        pending = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove());
        expect(pending.approvalsRequired).to.equal(2);
      });

      it("refuses an unknown decision (NOT_FOUND), an UNSPECIFIED verdict, and a rejection without a comment (INVALID_ARGUMENT)", async () => {
        expectStatus(await failure(approve(env.as("alice"), "dec-nope")), status.NOT_FOUND);
        expectStatus(await failure(resolve(env.as("alice"), { decisionId: pending.id })), status.INVALID_ARGUMENT, /verdict/);
        expectStatus(await failure(resolve(env.as("alice"), { decisionId: pending.id, verdict: 7 as VerdictType })), status.INVALID_ARGUMENT, /verdict/);
        expectStatus(await failure(reject(env.as("alice"), pending.id, "")), status.INVALID_ARGUMENT, /^comment/);
        expectStatus(await failure(reject(env.as("alice"), pending.id, "   ")), status.INVALID_ARGUMENT, /^comment/);
        expectStatus(await failure(approve(env.as("alice"), "")), status.INVALID_ARGUMENT, /decision_id/);
        // Nothing was counted.
        expect((await get(env.as("alice"), pending.id)).verdicts).to.deep.equal([]);
      });

      it("needs the role approver", async () => {
        expectStatus(await failure(approve(env.as("agent-b"), pending.id)), status.PERMISSION_DENIED, /approver/);
        expectStatus(await failure(approve(env.as("ops"), pending.id)), status.PERMISSION_DENIED, /approver/);
      });

      it("refuses a verdict by the submitter (no self-approval), even one holding the role approver", async () => {
        const own = await submit(env.as("agent-approver"), SUGGESTIONS.humanApprove());
        expectStatus(await failure(approve(env.as("agent-approver"), own.id)), status.PERMISSION_DENIED, /submitted/);
        expectStatus(await failure(reject(env.as("agent-approver", "b"), own.id, "no")), status.PERMISSION_DENIED, /submitted/);
        // On someone else's decision it may.
        const approved = await approve(env.as("agent-approver"), pending.id);
        expect(approved.verdicts.map((v) => v.by)).to.deep.equal(["agent-approver"]);
      });

      it("counts distinct approvers up to approvals_required, then approves; records who and when", async () => {
        const before = Date.now();
        const one = await approve(env.as("alice"), pending.id, { comment: "fine by me" });
        expect(one.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
        expect(one.verdicts).to.have.length(1);
        expect(one.verdicts[0]).to.deep.include({ by: "alice", verdict: VerdictType.VERDICT_TYPE_APPROVE, comment: "fine by me" });
        expect(one.verdicts[0]!.givenAt!.getTime()).to.be.within(before - 5000, Date.now() + 5000);
        const two = await approve(env.as("bob", "b"), pending.id);
        expect(two.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
        expect(two.verdicts.map((v) => v.by)).to.deep.equal(["alice", "bob"]);
        // expires_at stays after the decision leaves pending.
        expect(two.expiresAt).to.deep.equal(pending.expiresAt);
        expect(await get(env.as("carol"), pending.id)).to.deep.equal(two);
      });

      it("the same verdict again returns the decision unchanged, whatever its status now; the other verdict is refused", async () => {
        const once = await approve(env.as("alice"), pending.id);
        expect(await approve(env.as("alice", "b"), pending.id)).to.deep.equal(once);
        expectStatus(await failure(reject(env.as("alice"), pending.id, "changed my mind")), status.FAILED_PRECONDITION, /APPROVE/);
        const approved = await approve(env.as("bob"), pending.id);
        expect(approved.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
        // Now approved: alice's repeat still returns it (checked before the status).
        expect(await approve(env.as("alice"), pending.id)).to.deep.equal(approved);
        expectStatus(await failure(reject(env.as("alice"), pending.id, "no")), status.FAILED_PRECONDITION);
      });

      it("one rejection rejects, with its comment", async () => {
        await approve(env.as("alice"), pending.id);
        const rejected = await reject(env.as("bob", "b"), pending.id, "breaks the nightly export");
        expect(rejected.status).to.equal(DecisionStatus.DECISION_STATUS_REJECTED);
        expect(rejected.verdicts.map((v) => [v.by, v.verdict, v.comment])).to.deep.equal([
          ["alice", VerdictType.VERDICT_TYPE_APPROVE, ""],
          ["bob", VerdictType.VERDICT_TYPE_REJECT, "breaks the nightly export"],
        ]);
      });

      it("refuses a decision that is not pending, naming its status (FAILED_PRECONDITION)", async () => {
        const auto = await submit(env.as("agent-a"), SUGGESTIONS.autoApprove());
        const rejected = await submit(env.as("agent-a"), SUGGESTIONS.reject());
        expectStatus(await failure(approve(env.as("alice"), auto.id)), status.FAILED_PRECONDITION, /APPROVED/);
        expectStatus(await failure(reject(env.as("alice"), rejected.id, "no")), status.FAILED_PRECONDITION, /REJECTED/);
        await reject(env.as("alice"), pending.id, "no");
        expectStatus(await failure(approve(env.as("bob"), pending.id)), status.FAILED_PRECONDITION, /REJECTED/);
      });

      it("a request_id makes a retry return the same answer; reused for another verdict it is refused", async () => {
        const requestId = unique("vreq");
        const first = await approve(env.as("alice"), pending.id, { requestId, comment: "ok" });
        const retry = await approve(env.as("alice", "b"), pending.id, { requestId, comment: "ok" });
        expect(retry).to.deep.equal(first);
        expectStatus(await failure(reject(env.as("alice"), pending.id, "no", { requestId })), status.FAILED_PRECONDITION, /request_id/);
        expectStatus(await failure(approve(env.as("alice"), pending.id, { requestId, comment: "other words" })), status.FAILED_PRECONDITION, /request_id/);
        // Another principal's request with the same id is its own verdict.
        const second = await approve(env.as("bob"), pending.id, { requestId });
        expect(second.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
        expect(await approve(env.as("bob"), pending.id, { requestId })).to.deep.equal(second);
      });

      it("with authentication off, anonymous may approve what it submitted", async () => {
        const anon = await start({ anonymous: true });
        const d = await submit(anon.a.client, SUGGESTIONS.humanApprove());
        expect(d.submittedBy).to.equal("anonymous");
        const approved = await approve(anon.b.client, d.id);
        expect(approved.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
        expect(approved.verdicts.map((v) => v.by)).to.deep.equal(["anonymous"]);
      });
    });

    it("counts exactly approvals_required of many concurrent approvers on two replicas, and keeps the counters exact", async () => {
      const policy = await policyFile("twenty", "verdicts:\n  human_approve: { approvals: 20 }\n");
      const env = await start({ policy });
      const d = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove());
      expect(d.approvalsRequired).to.equal(20);
      const before = await summary(env.as("alice"));
      expect(before.byStatus).to.deep.include({ pending: 1, approved: 0 });
      // 23 approvers at once, alternating replicas: 20 are counted, the 3 that come after the
      // approval find it APPROVED. Each counted one got an answer that holds its own verdict.
      const names = Array.from({ length: 23 }, (_, i) => `approver-${String(i + 1).padStart(2, "0")}` as Name);
      const answers = await Promise.allSettled(names.map((n, i) => approve(env.as(n, i % 2 ? "b" : "a"), d.id)));
      const ok = answers.flatMap((a, i) => (a.status === "fulfilled" ? [{ who: names[i]!, decision: a.value }] : []));
      const refused = answers.flatMap((a) => (a.status === "rejected" ? [a.reason as unknown] : []));
      expect(ok).to.have.length(20);
      for (const r of refused) expectStatus(r, status.FAILED_PRECONDITION, /APPROVED/);
      for (const { who, decision } of ok) expect(decision.verdicts.map((v) => v.by)).to.include(who);
      const final = await get(env.as("alice", "b"), d.id);
      expect(final.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
      expect(final.verdicts).to.have.length(20);
      expect(new Set(final.verdicts.map((v) => v.by))).to.deep.equal(new Set(ok.map((o) => o.who)));
      // Exactly one answer saw the approval happen (the 20th verdict).
      expect(ok.filter((o) => o.decision.status === DecisionStatus.DECISION_STATUS_APPROVED && o.decision.verdicts.length === 20)).to.have.length(1);
      const after = await summary(env.as("alice", "b"));
      expect(after.byStatus).to.deep.equal({ pending: 0, approved: 1, rejected: 0, expired: 0, superseded: 0 });
      expect(after.totalDecisions).to.equal(1);
    });

    describe("AwaitDecision", () => {
      it("sends the state at once, then each change made on the other replica, and ends OK after a final status", async () => {
        const env = await start({ policy: await policyFile("two", "verdicts:\n  human_approve: { approvals: 2 }\n") });
        const d = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove());
        const w = awaitStream(env.as("agent-a", "a"), d.id);
        await w.sawStates(1);
        expect(w.states[0]).to.deep.equal(d);
        await approve(env.as("alice", "b"), d.id);
        await w.sawStates(2);
        expect(w.states[1]!.verdicts.map((v) => v.by)).to.deep.equal(["alice"]);
        await approve(env.as("bob", "b"), d.id);
        expect(await w.ended()).to.equal(undefined);
        expect(w.states.map((s) => s.status)).to.deep.equal([
          DecisionStatus.DECISION_STATUS_PENDING,
          DecisionStatus.DECISION_STATUS_PENDING,
          DecisionStatus.DECISION_STATUS_APPROVED,
        ]);
        expect(w.states[2]).to.deep.equal(await get(env.as("alice"), d.id));
      });

      it("ends after a rejection", async () => {
        const env = await start();
        const d = await submit(env.as("agent-a"), SUGGESTIONS.defer());
        const w = awaitStream(env.as("agent-a", "b"), d.id);
        await w.sawStates(1);
        await reject(env.as("carol", "a"), d.id, "needs a rollback plan");
        expect(await w.ended()).to.equal(undefined);
        expect(w.states.map((s) => s.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_PENDING, DecisionStatus.DECISION_STATUS_REJECTED]);
      });

      it("sends a decision that is already final once and ends; an unknown one is NOT_FOUND", async () => {
        const env = await start();
        const auto = await submit(env.as("agent-a"), SUGGESTIONS.autoApprove());
        const w = awaitStream(env.as("agent-a"), auto.id);
        expect(await w.ended()).to.equal(undefined);
        expect(w.states).to.deep.equal([auto]);
        const missing = awaitStream(env.as("agent-a"), "dec-missing");
        expectStatus(await missing.ended(), status.NOT_FOUND);
        expect(missing.states).to.deep.equal([]);
      });

      it("is bounded by the caller's deadline, and calling again resumes", async () => {
        const env = await start();
        const d = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove());
        const w = awaitStream(env.as("agent-a"), d.id, 500);
        expectStatus(await w.ended(), status.DEADLINE_EXCEEDED);
        expect(w.states).to.deep.equal([d]);
        await approve(env.as("alice", "b"), d.id);
        const again = awaitStream(env.as("agent-a"), d.id);
        expect(await again.ended()).to.equal(undefined);
        expect(again.states.map((s) => s.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_APPROVED]);
      });
    });

    it("expires a pending decision once: seen by await and watch on both replicas exactly once, and by every read", async () => {
      const policy = await policyFile("short", "verdicts:\n  human_approve: { expires_after: 500ms }\n");
      const env = await start({ policy });
      const watchA = watchUpdates(env.as("ops", "a"));
      const watchB = watchUpdates(env.as("ops", "b"));
      await Promise.all([watchA.live(), watchB.live()]);
      const d = await submit(env.as("agent-a", "a"), SUGGESTIONS.humanApprove());
      expect(d.expiresAt!.getTime() - d.decidedAt!.getTime()).to.equal(500);
      const awaitA = awaitStream(env.as("agent-a", "a"), d.id);
      const awaitB = awaitStream(env.as("agent-b", "b"), d.id);
      // Nobody reads the decision: the expiry must come by itself.
      expect(await awaitA.ended()).to.equal(undefined);
      expect(await awaitB.ended()).to.equal(undefined);
      for (const w of [awaitA, awaitB]) {
        expect(w.states.at(-1)!.status).to.equal(DecisionStatus.DECISION_STATUS_EXPIRED);
        expect(w.states.filter((s) => s.status === DecisionStatus.DECISION_STATUS_EXPIRED)).to.have.length(1);
      }
      // A later review reaches both watches after the expiry did: had the expiry been sent twice,
      // the second would be there by then too.
      const marker = await submit(env.as("agent-a", "b"), SUGGESTIONS.autoApprove());
      for (const w of [watchA, watchB]) {
        await w.saw((x) => x.id === marker.id, "the marker review on the watch");
        const seen = w.decisions.filter((x) => x.id === d.id);
        expect(seen.map((x) => x.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_PENDING, DecisionStatus.DECISION_STATUS_EXPIRED]);
        w.cancel();
      }
      const expired = await get(env.as("alice", "b"), d.id);
      expect(expired).to.deep.include({ status: DecisionStatus.DECISION_STATUS_EXPIRED, expiresAt: d.expiresAt });
      expectStatus(await failure(approve(env.as("alice"), d.id)), status.FAILED_PRECONDITION, /EXPIRED/);
      expect((await summary(env.as("alice"))).byStatus).to.deep.include({ pending: 0, expired: 1, approved: 1 });
      expect((await list(env.as("alice"), { status: DecisionStatus.DECISION_STATUS_EXPIRED })).decisions.map((x) => x.id)).to.deep.equal([d.id]);
    });

    describe("supersede", () => {
      it("a follow-up review supersedes the submitter's pending decision once it is stored", async () => {
        const env = await start();
        const old = await submit(env.as("agent-a"), SUGGESTIONS.defer());
        const w = awaitStream(env.as("agent-a", "b"), old.id);
        await w.sawStates(1);
        const followUp = await submit(env.as("agent-a", "b"), SUGGESTIONS.humanApprove({ id: old.suggestionId }), { supersedes: old.id });
        expect(followUp).to.deep.include({ supersedes: old.id, status: DecisionStatus.DECISION_STATUS_PENDING });
        expect(await w.ended()).to.equal(undefined);
        const superseded = w.states.at(-1)!;
        expect(superseded).to.deep.include({ status: DecisionStatus.DECISION_STATUS_SUPERSEDED, supersededBy: followUp.id, expiresAt: old.expiresAt });
        expect(await get(env.as("alice"), old.id)).to.deep.equal(superseded);
        expectStatus(await failure(approve(env.as("alice"), old.id)), status.FAILED_PRECONDITION, /SUPERSEDED/);
        expect((await summary(env.as("alice"))).byStatus).to.deep.include({ pending: 1, superseded: 1 });
      });

      it("refuses anything but a pending decision of the same submitter, and stores nothing then", async () => {
        const env = await start();
        const mine = await submit(env.as("agent-a"), SUGGESTIONS.defer());
        const theirs = await submit(env.as("agent-b"), SUGGESTIONS.defer());
        const auto = await submit(env.as("agent-a"), SUGGESTIONS.autoApprove());
        const approved = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove());
        await approve(env.as("alice"), approved.id);
        const total = (await summary(env.as("alice"))).totalDecisions;
        const refusals: [string, RegExp][] = [
          ["dec-does-not-exist", /does not exist/],
          [theirs.id, /agent-b/],
          [auto.id, /APPROVED/],
          [approved.id, /APPROVED/],
        ];
        for (const [supersedes, why] of refusals) {
          const err = await failure(submit(env.as("agent-a"), SUGGESTIONS.humanApprove(), { supersedes }));
          expectStatus(err, status.FAILED_PRECONDITION, why);
        }
        // A dry run checks the same and marks nothing.
        const dry = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove(), { supersedes: mine.id, dryRun: true });
        expect(dry.supersedes).to.equal(mine.id);
        expect((await get(env.as("alice"), mine.id)).status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
        // Once superseded, it cannot be superseded again.
        const first = await submit(env.as("agent-a"), SUGGESTIONS.humanApprove(), { supersedes: mine.id });
        expectStatus(await failure(submit(env.as("agent-a"), SUGGESTIONS.humanApprove(), { supersedes: mine.id })), status.FAILED_PRECONDITION, /SUPERSEDED/);
        expect((await summary(env.as("alice"))).totalDecisions).to.equal(total + 1);
        expect((await get(env.as("alice"), mine.id)).supersededBy).to.equal(first.id);
      });

      it("an idempotent replay of a superseding review returns it; another supersedes under the same request_id is refused", async () => {
        const env = await start();
        const old = await submit(env.as("agent-a"), SUGGESTIONS.defer());
        const requestId = unique("sreq");
        const s = SUGGESTIONS.humanApprove();
        const first = await submit(env.as("agent-a"), s, { supersedes: old.id, requestId });
        const replay = await submit(env.as("agent-a", "b"), s, { supersedes: old.id, requestId });
        expect(replay).to.deep.equal(first);
        const other = await submit(env.as("agent-a"), SUGGESTIONS.defer());
        expectStatus(await failure(submit(env.as("agent-a"), s, { supersedes: other.id, requestId })), status.FAILED_PRECONDITION, /request_id/);
      });
    });

    it("records outcomes only on approved decisions (FAILED_PRECONDITION naming the status)", async () => {
      const env = await start();
      const agent = env.as("agent-a");
      const pending = await submit(agent, SUGGESTIONS.humanApprove());
      const rejected = await submit(agent, SUGGESTIONS.reject());
      const outcome = (client: CouncilServiceClient, decisionId: string) =>
        call(client, client.recordOutcome, { decisionId, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "", requestId: "" });
      expectStatus(await failure(outcome(agent, pending.id)), status.FAILED_PRECONDITION, /PENDING/);
      expectStatus(await failure(outcome(env.as("ops"), rejected.id)), status.FAILED_PRECONDITION, /REJECTED/);
      expect((await summary(agent)).learningEntries).to.equal(0);
      await approve(env.as("alice", "b"), pending.id);
      const recorded = await outcome(agent, pending.id);
      expect(recorded.decision).to.deep.include({ outcome: Outcome.OUTCOME_SUCCESS, status: DecisionStatus.DECISION_STATUS_APPROVED });
    });

    it("WatchDecisions with include_updates sends a decision again on each change, and only then", async () => {
      const env = await start();
      const withUpdates = watchUpdates(env.as("ops", "b"));
      const without = watchUpdates(env.as("ops", "b"), false);
      await Promise.all([withUpdates.live(), without.live()]);
      const d = await submit(env.as("agent-a", "a"), SUGGESTIONS.humanApprove());
      await approve(env.as("alice", "a"), d.id);
      await call(env.as("agent-a"), env.as("agent-a").recordOutcome, {
        decisionId: d.id,
        outcome: Outcome.OUTCOME_PARTIAL,
        notes: "",
        lessons: "",
        requestId: "",
      });
      const marker = await submit(env.as("agent-a", "a"), SUGGESTIONS.autoApprove());
      await withUpdates.saw((x) => x.id === marker.id, "the marker on the watch with updates");
      await without.saw((x) => x.id === marker.id, "the marker on the watch without updates");
      expect(withUpdates.decisions.filter((x) => x.id === d.id).map((x) => [x.status, x.verdicts.length, x.outcome])).to.deep.equal([
        [DecisionStatus.DECISION_STATUS_PENDING, 0, Outcome.OUTCOME_UNSPECIFIED],
        [DecisionStatus.DECISION_STATUS_APPROVED, 1, Outcome.OUTCOME_UNSPECIFIED],
        [DecisionStatus.DECISION_STATUS_APPROVED, 1, Outcome.OUTCOME_PARTIAL],
      ]);
      expect(without.decisions.map((x) => x.id)).to.deep.equal([d.id, marker.id]);
      withUpdates.cancel();
      without.cancel();
    });

    it("GetSummary by_status equals counting ListDecisions by status after a mixed load", async () => {
      const policy = await policyFile("mixed", "verdicts:\n  defer: { expires_after: 300ms }\n");
      const env = await start({ policy });
      const agents: Name[] = ["agent-a", "agent-b"];
      const made: Decision[] = [];
      for (let i = 0; i < 16; i++) {
        const kinds = [SUGGESTIONS.autoApprove, SUGGESTIONS.reject, SUGGESTIONS.humanApprove, SUGGESTIONS.defer] as const;
        made.push(await submit(env.as(agents[i % 2]!, i % 3 ? "a" : "b"), kinds[i % 4]!()));
      }
      const human = made.filter((d) => d.decision === DecisionType.DECISION_TYPE_HUMAN_APPROVE);
      await Promise.all([
        approve(env.as("alice", "a"), human[0]!.id),
        reject(env.as("bob", "b"), human[1]!.id, "no"),
        // A follow-up of the third: superseded.
        submit(env.as(human[2]!.submittedBy as Name, "b"), SUGGESTIONS.humanApprove(), { supersedes: human[2]!.id }),
      ]);
      // Every defer expires by itself.
      const deferred = made.filter((d) => d.decision === DecisionType.DECISION_TYPE_DEFER);
      for (const d of deferred) {
        const w = awaitStream(env.as("alice"), d.id);
        expect(await w.ended()).to.equal(undefined);
      }
      const got = await summary(env.as("alice", "b"));
      const statuses = {
        pending: DecisionStatus.DECISION_STATUS_PENDING,
        approved: DecisionStatus.DECISION_STATUS_APPROVED,
        rejected: DecisionStatus.DECISION_STATUS_REJECTED,
        expired: DecisionStatus.DECISION_STATUS_EXPIRED,
        superseded: DecisionStatus.DECISION_STATUS_SUPERSEDED,
      };
      const counted: Record<string, number> = {};
      for (const [key, value] of Object.entries(statuses)) {
        const listed = await listAll(env.as("alice", key.length % 2 ? "a" : "b"), { status: value, pageSize: 3 });
        for (const d of listed) expect(d.status).to.equal(value);
        counted[key] = listed.length;
      }
      expect(got.byStatus).to.deep.equal(counted);
      // 16 reviews (4 of each kind) and one follow-up: the 4 defers expired; of the 4 human ones, one
      // was approved, one rejected, one superseded; the follow-up waits.
      expect(got.byStatus).to.deep.equal({ pending: 2, approved: 5, rejected: 5, expired: 4, superseded: 1 });
      expect(Object.values(got.byStatus).reduce((a, b) => a + Number(b), 0)).to.equal(Number(got.totalDecisions));
    });

    it("ListDecisions pages the approvers' queue oldest first, and a token keeps its direction", async () => {
      const env = await start();
      const queue: Decision[] = [];
      for (let i = 0; i < 7; i++) {
        queue.push(await submit(env.as("agent-a", i % 2 ? "a" : "b"), SUGGESTIONS.humanApprove()));
        await submit(env.as("agent-a"), SUGGESTIONS.autoApprove());
      }
      await approve(env.as("alice"), queue[2]!.id);
      const waiting = queue.filter((_, i) => i !== 2).map((d) => d.id);
      const pages: string[][] = [];
      let pageToken = "";
      for (let i = 0; i < 10; i++) {
        const got = await list(env.as("alice", i % 2 ? "a" : "b"), { status: DecisionStatus.DECISION_STATUS_PENDING, oldestFirst: true, pageSize: 4, pageToken });
        pages.push(got.decisions.map((d) => d.id));
        if (!got.nextPageToken) break;
        pageToken = got.nextPageToken;
        // The same token in the other direction, or under another filter, belongs to another listing.
        expectStatus(await failure(list(env.as("alice"), { status: DecisionStatus.DECISION_STATUS_PENDING, pageSize: 4, pageToken })), status.INVALID_ARGUMENT, /page_token/);
        expectStatus(await failure(list(env.as("alice"), { oldestFirst: true, pageSize: 4, pageToken })), status.INVALID_ARGUMENT, /page_token/);
      }
      expect(pages).to.deep.equal([waiting.slice(0, 4), waiting.slice(4)]);
      const newest = await listAll(env.as("alice"), { status: DecisionStatus.DECISION_STATUS_PENDING, pageSize: 2 });
      expect(newest.map((d) => d.id)).to.deep.equal([...waiting].reverse());
      const everything = await listAll(env.as("alice"), { oldestFirst: true, pageSize: 5 });
      expect(everything).to.have.length(14);
      expect(everything[0]!.id).to.equal(queue[0]!.id);
      expectStatus(await failure(list(env.as("alice"), { status: 9 as DecisionStatus })), status.INVALID_ARGUMENT, /status/);
    });
  });
}
