/**
 * External reviewers across replicas (SPEC section 11, issue 13 item 4): two Council servers on one
 * Redis keyspace, each with the Redis reviewer hub, and reviewer agents on ServeReviews over gRPC.
 * A reviewer connected to one replica serves reviews submitted to the other; the tasks of a role
 * spread over its reviewers on both; a reviewer that leaves mid-task has its task answered by
 * another; repeats of one request sent to both replicas together ask the reviewers once; and
 * ListReviewers counts the reviewers of every replica, until a replica stops without saying so
 * (a child process killed with SIGKILL). On one redis-server and on a 3-master cluster.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { Policy } from "../../src/domain/policy.js";
import type { CouncilServiceClient, ReviewSuggestionResponse, ReviewTask } from "../../src/gen/council/v1/council_service.js";
import { DecisionType, ReviewerRole, VoteType } from "../../src/gen/council/v1/review.js";
import { Keyspace } from "../../src/store/keys.js";
import { RedisStore } from "../../src/store/redis.js";
import { RedisReviewerHub, type RedisReviewerHubOptions } from "../../src/store/redis_reviewers.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { writePrincipals, type Principals } from "../support/principals.js";
import { RedisCluster, RedisServer } from "../support/redis.js";
import { TestReviewer, type Answer } from "../support/reviewer.js";
import { call, collect, connectClient, review, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { externalPolicy } from "../external/review_cases.js";
import { silent } from "./helpers.js";

const SAFETY = ReviewerRole.REVIEWER_ROLE_SAFETY;

const APPROVE: Answer = { vote: VoteType.VOTE_TYPE_APPROVE, confidence: 0.8, reasoning: "looks fine" };

type Decided = { id: string; decision: DecisionType; votes: { reviewerRole: ReviewerRole; castBy: string; reasoning: string; vote: VoteType; veto: string }[] };
const decisionOf = (events: ReviewSuggestionResponse[]): Decided => {
  const last = events[events.length - 1]?.event;
  if (last?.$case !== "decision") throw new Error(`the review ended without a decision: ${JSON.stringify(events.map((e) => e.event?.$case))}`);
  return last.value as never as Decided;
};
const safetyVote = (events: ReviewSuggestionResponse[]) => decisionOf(events).votes.find((v) => v.reviewerRole === SAFETY)!;

/** A reviewer whose answers the test gives by hand: each task waits until `answer(task)` is called for it. */
function manual(client: CouncilServiceClient): TestReviewer & { answerTask(task: ReviewTask, a?: Answer): void } {
  const waiting = new Map<string, (a: Answer) => void>();
  const r = new TestReviewer(client, [SAFETY], (task) => new Promise<Answer>((resolve) => waiting.set(task.taskId, resolve))) as TestReviewer & {
    answerTask(task: ReviewTask, a?: Answer): void;
  };
  r.answerTask = (task, a = APPROVE) => waiting.get(task.taskId)!(a);
  return r;
}

/** The first task a reviewer gets (now or later). */
function firstTask(r: TestReviewer, what: string, timeoutMs = 10_000): Promise<ReviewTask> {
  const got = r.tasks[0] ? Promise.resolve(r.tasks[0]) : new Promise<ReviewTask>((resolve) => r.once("task", resolve));
  return within(got, { timeoutMs, what });
}

for (const topology of ["one redis-server", "a 3-master cluster"] as const) {
  describe(`External reviewers across replicas on ${topology}`, function () {
    this.timeout(60_000);
    /** The cluster runs every case but the one that kills a replica process (the same code, and 20 s). */
    const single = topology === "one redis-server";
    let redis: { url: string; ports: number[]; destroy(): Promise<void> };
    let principals: Principals;
    let prefix: string;
    const running: Running[] = [];
    const reviewers: TestReviewer[] = [];

    before(async () => {
      if (single) {
        const server = await RedisServer.start();
        redis = { url: server.url, ports: [server.port], destroy: () => server.destroy() };
      } else {
        const cluster = await RedisCluster.start(3);
        redis = { url: cluster.url, ports: cluster.nodes.map((n) => n.port), destroy: () => cluster.destroy() };
      }
      principals = await writePrincipals({ agent: ["agent"], "reviewer-a": ["reviewer"], "reviewer-b": ["reviewer"] });
    });
    after(async () => {
      await redis?.destroy();
      await principals?.remove();
    });
    beforeEach(() => {
      prefix = `${unique("ext")}:`;
    });
    afterEach(async () => {
      for (const r of reviewers.splice(0)) r.close();
      await Promise.all(running.splice(0).map((r) => r.stop()));
    });

    /** A replica on the test's keyspace, with the Redis reviewer hub; its `client` calls as `agent`. */
    async function replica(policy: Policy, hub: Partial<RedisReviewerHubOptions> = {}): Promise<Running> {
      const store = await RedisStore.open({ url: redis.url, prefix, log: silent });
      let reviewerHub: RedisReviewerHub | undefined;
      try {
        reviewerHub = await RedisReviewerHub.open({ url: redis.url, keys: store.keys, log: silent, ...hub });
        const r = await startCouncil({ store, policy, reviewerHub, authFile: principals.authFile, connect: { token: principals.tokens.agent! } });
        running.push(r);
        return r;
      } catch (err) {
        await reviewerHub?.close();
        await store.close();
        throw err;
      }
    }

    /** A reviewer agent connected to `on` as principal `name`, once its stream is accepted. */
    async function reviewer(on: Running, name: string, answer?: (task: ReviewTask) => Answer | Promise<Answer>): Promise<TestReviewer> {
      const r = new TestReviewer(on.connect({ token: principals.tokens[name]! }), [SAFETY], answer);
      reviewers.push(r);
      await r.connected();
      return r;
    }

    /** How many safety reviewers `on` reports connected (ListReviewers). */
    async function connectedOn(on: Running | CouncilServiceClient): Promise<number> {
      const client = "client" in on ? on.client : on;
      const res = await call(client, client.listReviewers, {});
      return res.reviewers.find((p) => p.role === SAFETY)!.connected;
    }

    /** Waits (bounded) until `on` counts `n` safety reviewers: a replica publishes its reviewers as they connect. */
    async function untilConnected(on: Running | CouncilServiceClient, n: number, timeoutMs = 5000): Promise<void> {
      await waitFor(async () => (await connectedOn(on)) === n, { timeoutMs, intervalMs: 50, what: `${n} safety reviewers counted connected` });
    }

    it("a reviewer connected to replica A votes on reviews submitted to replica B, cast_by its principal", async () => {
      const policy = externalPolicy({ safety: { timeout: "10s" } });
      const a = await replica(policy);
      const b = await replica(policy);
      const ra = await reviewer(a, "reviewer-a", () => ({ vote: VoteType.VOTE_TYPE_REJECT, confidence: 1, reasoning: "planted key", veto: "credential_in_diff" }));
      await untilConnected(b, 1);
      const diff = "--- a/k\n+++ b/k\n@@ -0,0 +1 @@\n+AKIA0123456789ABCDEF\n";
      const { events, error } = await review(b.client, { suggestion: wireSuggestion({ diff }), dryRun: true });
      expect(error).to.equal(undefined);
      const d = decisionOf(events);
      expect(safetyVote(events)).to.include({ castBy: "reviewer-a", vote: VoteType.VOTE_TYPE_REJECT, veto: "credential_in_diff" });
      expect(d.decision).to.equal(DecisionType.DECISION_TYPE_REJECT);
      expect(ra.tasks).to.have.length(1);
      // The task carried the change and the dry run across.
      expect(ra.tasks[0]).to.include({ decisionId: d.id, dryRun: true, role: SAFETY });
      expect(ra.tasks[0]!.suggestion!.diff).to.equal(diff);
    });

    it("two reviewers of one role, on A and on B, share the tasks of reviews submitted to one replica", async () => {
      const policy = externalPolicy({ safety: { timeout: "10s" } });
      const a = await replica(policy);
      const b = await replica(policy);
      const ra = await reviewer(a, "reviewer-a");
      const rb = await reviewer(b, "reviewer-b");
      await untilConnected(a, 2);
      await untilConnected(b, 2);
      const results = await Promise.all(Array.from({ length: 6 }, () => review(a.client, { suggestion: wireSuggestion() })));
      const castBy = results.map(({ events }) => safetyVote(events).castBy);
      expect(castBy.filter((c) => c === "reviewer-a")).to.have.length(ra.tasks.length);
      expect(castBy.filter((c) => c === "reviewer-b")).to.have.length(rb.tasks.length);
      // Round the two reviewers: three each.
      expect([ra.tasks.length, rb.tasks.length]).to.deep.equal([3, 3]);
    });

    it("a reviewer killed mid-task: its task goes to the reviewer on the other replica, which answers", async () => {
      const policy = externalPolicy({ safety: { timeout: "20s", on_failure: "reject" } });
      const a = await replica(policy);
      const b = await replica(policy);
      const ra = manual(a.connect({ token: principals.tokens["reviewer-a"]! }));
      const rb = manual(b.connect({ token: principals.tokens["reviewer-b"]! }));
      reviewers.push(ra, rb);
      await Promise.all([ra.connected(), rb.connected()]);
      await untilConnected(b, 2);
      const started = Date.now();
      const pending = review(b.client, { suggestion: wireSuggestion() });
      // Whichever reviewer gets the task first is killed; the other one, on the other replica, gets it.
      const first = await Promise.race([firstTask(ra, "a task on A"), firstTask(rb, "a task on B")]);
      const [killed, other, survivor] = ra.tasks.length > 0 ? [ra, rb, "reviewer-b"] : [rb, ra, "reviewer-a"];
      killed.close();
      const again = await firstTask(other, "the task given again to the other reviewer");
      expect(again.decisionId).to.equal(first.decisionId);
      other.answerTask(again);
      const { events } = await pending;
      expect(safetyVote(events)).to.include({ castBy: survivor, vote: VoteType.VOTE_TYPE_APPROVE });
      expect(Date.now() - started).to.be.below(15_000);
    });

    it("a silent reviewer on A: a review on B gets the failure policy at the timeout, not later, and the late vote counts for nothing", async () => {
      const policy = externalPolicy({ safety: { timeout: "500ms", on_failure: "reject" } });
      const a = await replica(policy);
      const b = await replica(policy);
      const quiet = await reviewer(a, "reviewer-a", () => undefined);
      await untilConnected(b, 1);
      const started = Date.now();
      const { events } = await review(b.client, { suggestion: wireSuggestion() });
      const took = Date.now() - started;
      expect(safetyVote(events)).to.include({ castBy: "fallback:reject", reasoning: "[SAFETY] No external vote: timed out", veto: "no_external_vote" });
      expect(took).to.be.at.least(450);
      expect(took).to.be.below(5000);
      expect(quiet.tasks).to.have.length(1);
      quiet.vote({ taskId: quiet.tasks[0]!.taskId, vote: VoteType.VOTE_TYPE_APPROVE, confidence: 1 });
      // The reviewer stays connected and counted; the decision stays as it was.
      await untilConnected(b, 1);
      expect(quiet.ended).to.equal(false);
    });

    it("an invalid vote from a reviewer on A counts at once as a failure of a review on B, naming what is wrong", async () => {
      const policy = externalPolicy({ safety: { timeout: "60s", on_failure: "abstain" } });
      const a = await replica(policy);
      const b = await replica(policy);
      await reviewer(a, "reviewer-a", () => ({ vote: VoteType.VOTE_TYPE_APPROVE, confidence: 1.5 }));
      await untilConnected(b, 1);
      const started = Date.now();
      const { events } = await review(b.client, { suggestion: wireSuggestion() });
      expect(Date.now() - started).to.be.below(10_000);
      expect(safetyVote(events)).to.include({
        castBy: "fallback:abstain",
        vote: VoteType.VOTE_TYPE_ABSTAIN,
        reasoning: "[SAFETY] No external vote: invalid vote: confidence 1.5 is outside [0, 1]",
      });
    });

    it("no reviewer of the role connected on any replica: the failure policy at once, not at the timeout", async () => {
      const policy = externalPolicy({ safety: { timeout: "60s", on_failure: "needs_more_info" }, quality: { timeout: "60s" } });
      const a = await replica(policy);
      const b = await replica(policy);
      // A reviewer of another role does not count for safety.
      const other = new TestReviewer(a.connect({ token: principals.tokens["reviewer-a"]! }), [ReviewerRole.REVIEWER_ROLE_QUALITY]);
      reviewers.push(other);
      await other.connected();
      const started = Date.now();
      const { events } = await review(b.client, { suggestion: wireSuggestion() });
      expect(Date.now() - started).to.be.below(10_000);
      expect(safetyVote(events)).to.include({ castBy: "fallback:needs_more_info", reasoning: "[SAFETY] No external vote: no reviewer connected" });
    });

    it("repeats of one request_id sent to A and B together ask the reviewers once, and both callers get the same decision", async () => {
      const policy = externalPolicy({ safety: { timeout: "20s" } });
      const a = await replica(policy);
      const b = await replica(policy);
      const r = manual(a.connect({ token: principals.tokens["reviewer-a"]! }));
      reviewers.push(r);
      await r.connected();
      await untilConnected(b, 1);
      const suggestion = wireSuggestion();
      const requestId = unique("req");
      const onA = review(a.client, { suggestion, requestId });
      const onB = review(b.client, { suggestion, requestId });
      // Both reviews are under way (one asks, the other waits for its decision) before the reviewer answers.
      const task = await firstTask(r, "the one task");
      await waitFor(() => a.council.reviewsInFlight === 1 && b.council.reviewsInFlight === 1, { what: "both replicas reviewing the request" });
      r.answerTask(task, { vote: VoteType.VOTE_TYPE_APPROVE, confidence: 0.9, reasoning: "once" });
      const [ea, eb] = await Promise.all([onA, onB]);
      expect(ea.error).to.equal(undefined);
      expect(eb.error).to.equal(undefined);
      expect(decisionOf(ea.events)).to.deep.equal(decisionOf(eb.events));
      expect(safetyVote(ea.events)).to.include({ castBy: "reviewer-a", reasoning: "once" });
      expect(r.tasks).to.have.length(1);
      // A replay later asks nobody either.
      const replay = await review(b.client, { suggestion, requestId });
      expect(decisionOf(replay.events)).to.deep.equal(decisionOf(ea.events));
      expect(r.tasks).to.have.length(1);
    });

    it("a replica that shuts down hands the tasks of its reviewers back, and stops counting at once", async () => {
      const policy = externalPolicy({ safety: { timeout: "20s", on_failure: "reject" } });
      const a = await replica(policy);
      const b = await replica(policy);
      const rb = manual(b.connect({ token: principals.tokens["reviewer-b"]! }));
      reviewers.push(rb);
      await rb.connected();
      await untilConnected(a, 1);
      const pending = review(a.client, { suggestion: wireSuggestion() });
      await firstTask(rb, "the task on B");
      const ra = await reviewer(a, "reviewer-a");
      await untilConnected(a, 2);
      // B shuts down: its reviewer's stream ends, its task goes back to A, and A's reviewer answers it.
      running.splice(running.indexOf(b), 1);
      await b.stop();
      expect(await connectedOn(a)).to.equal(1);
      const { events } = await pending;
      expect(safetyVote(events)).to.include({ castBy: "reviewer-a" });
      expect(ra.tasks).to.have.length(1);
    });

    it("claims: one replica holds a review's claim at a time, a repeat of its own call too; only the holder releases it", async () => {
      const keys = new Keyspace(prefix, 4);
      const hubs = await Promise.all([0, 1].map(() => RedisReviewerHub.open({ url: redis.url, keys, log: silent })));
      try {
        const [a, b] = hubs as [RedisReviewerHub, RedisReviewerHub];
        const id = unique("dec");
        // Three calls at once: one of a's two and b's race for it (on a cluster either may reach the
        // node first); a's second call never holds it while its first does.
        const [a1, a2, b1] = await Promise.all([a.claim(id, 30_000), a.claim(id, 30_000), b.claim(id, 30_000)]);
        expect(a2).to.equal(false);
        expect([a1, b1].filter(Boolean)).to.have.length(1);
        const [holder, other] = a1 ? [a, b] : [b, a];
        await other.release(id); // not the other's: it stays
        expect(await other.claim(id, 30_000)).to.equal(false);
        await holder.release(id);
        expect(await other.claim(id, 30_000)).to.equal(true);
        expect(await holder.claim(id, 30_000)).to.equal(false);
        // A claim lapses on its own.
        const short = unique("dec");
        expect(await a.claim(short, 200)).to.equal(true);
        await waitFor(() => b.claim(short, 30_000), { timeoutMs: 5000, intervalMs: 50, what: "the short claim to lapse" });
      } finally {
        await Promise.all(hubs.map((h) => h.close()));
      }
    });

    it("keeps every key of the hub bounded: each expires on its own", async () => {
      const policy = externalPolicy({ safety: { timeout: "10s" } });
      const a = await replica(policy);
      const b = await replica(policy);
      await reviewer(a, "reviewer-a");
      await untilConnected(b, 1);
      // A task crosses to A and its answer back to B; a claim is taken for a review with a request_id.
      const results = await Promise.all([review(b.client, { suggestion: wireSuggestion(), requestId: unique("req") }), review(b.client, { suggestion: wireSuggestion() })]);
      for (const { events } of results) expect(safetyVote(events).castBy).to.equal("reviewer-a");
      const ttls: Record<string, number> = {};
      for (const port of redis.ports) {
        const node = new Redis({ host: "127.0.0.1", port, lazyConnect: true });
        try {
          await node.connect();
          let cursor = "0";
          for (let round = 0; round < 1000; round++) {
            const [next, keys] = await node.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
            for (const key of keys) if (key.includes("{reviewers}") || key.includes(":claim:")) ttls[key] = await node.pttl(key);
            cursor = next;
            if (cursor === "0") break;
          }
        } finally {
          node.disconnect();
        }
      }
      const names = Object.keys(ttls).map((k) => k.slice(prefix.length).replace(/^\{b[0-9.]+\}:claim:.*/, "claim"));
      expect(names).to.include.members(["{reviewers}:replicas", "{reviewers}:counts", "{reviewers}:turns", "claim"]);
      for (const [key, ttl] of Object.entries(ttls)) expect(ttl, key).to.be.above(0);
    });

    if (single) {
      it("ListReviewers counts the reviewers of every replica, and stops counting a replica's within 15 s once it stops without saying so", async function () {
        this.timeout(90_000);
        const dir = await mkdtemp(join(tmpdir(), "council-ext-"));
        const policyFile = join(dir, "ext.json");
        await writeFile(policyFile, JSON.stringify({ reviewers: [{ role: "safety", external: { timeout: "40s" } }, { role: "performance" }, { role: "architecture" }, { role: "compliance" }, { role: "quality" }] }));
        const policy = externalPolicy({ safety: { timeout: "40s" } }, "ext");
        const child = await startProcess(redis.url, prefix, policyFile, principals.authFile);
        try {
          const a = await replica(policy);
          // A reviewer on the process (C) that never answers gets the task of a review submitted to A.
          const onC = connectClient(child.addr, { token: principals.tokens["reviewer-a"]! });
          const rc = new TestReviewer(onC, [SAFETY], () => undefined);
          reviewers.push(rc);
          await rc.connected(20_000);
          await untilConnected(a, 1);
          // Read for longer than `review` reads: this review waits for C to lapse.
          const pending = collect<ReviewSuggestionResponse>(
            a.client.reviewSuggestion({ suggestion: wireSuggestion(), requestId: "", dryRun: false, supersedes: "" }),
            40_000,
          );
          await firstTask(rc, "the task on the process's reviewer");
          // Another reviewer joins on A: both count.
          await reviewer(a, "reviewer-b");
          await untilConnected(a, 2);
          // C stops without a word (SIGKILL): within 15 s its reviewer no longer counts, and its task
          // goes to the reviewer on A, who answers it.
          const killedAt = Date.now();
          await child.kill();
          await untilConnected(a, 1, 20_000);
          expect(Date.now() - killedAt).to.be.below(20_000);
          const { events } = await pending;
          expect(safetyVote(events)).to.include({ castBy: "reviewer-b" });
          onC.close();
        } finally {
          await child.kill();
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
}

/** src/main.ts as a child process on the test's keyspace (so that it can be killed without a word). */
async function startProcess(redisUrl: string, prefix: string, policyFile: string, authFile: string): Promise<{ addr: string; kill(): Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", "src/main.ts", "--addr", "127.0.0.1:0", "--redis-url", redisUrl, "--redis-prefix", prefix],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COUNCIL_LOG_LEVEL: "info", COUNCIL_POLICY: policyFile, COUNCIL_AUTH_FILE: authFile } },
  );
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString("utf8")));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString("utf8")));
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  };
  try {
    const addr = await waitFor(
      () => {
        const line = output.split("\n").slice(0, -1).find((l) => l.includes("council listening"));
        if (line) return (JSON.parse(line) as { addr: string }).addr;
        if (child.exitCode !== null) throw new Error(`it exited:\n${output}`);
        return undefined;
      },
      { timeoutMs: 30_000, what: "the council process to listen" },
    );
    return { addr, kill };
  } catch (err) {
    await kill();
    throw err;
  }
}
