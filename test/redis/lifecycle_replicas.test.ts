/**
 * Human verdicts on Redis across replicas, where only Redis can make them agree (the suite in
 * test/lifecycle runs the rest on two replicas too: lifecycle.test.ts):
 *
 * - expiry exactly once while several replicas sweep (and read, which expires what is due) at once,
 *   on one redis-server and on a 3-master cluster: one EXPIRED per decision, one update event each,
 *   counters, indexes and the expiry schedule exact;
 * - supersede across buckets (the new decision and the old one in different hash slots);
 * - COUNCIL_REDIS_MIN_REPLICAS: a verdict is acknowledged only once a replica has it, and its retry
 *   after a shortfall returns the verdict stored the first time.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import type { Decision } from "../../src/domain/model.js";
import type { AwaitDecisionResponse, CouncilServiceClient, ReviewSuggestionRequest } from "../../src/gen/council/v1/council_service.js";
import { DecisionStatus, ImpactLevel, RiskLevel, VerdictType, type Decision as WireDecision } from "../../src/gen/council/v1/review.js";
import { Keyspace } from "../../src/store/keys.js";
import { RedisStore } from "../../src/store/redis.js";
import { UNAVAILABLE } from "../../src/store/redis_errors.js";
import { decision, pendingDecision, unique, wireSuggestion } from "../support/fixtures.js";
import { writePrincipals, type Principals } from "../support/principals.js";
import { RedisCluster, RedisServer } from "../support/redis.js";
import { call, collect, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { silent, startReplica } from "./helpers.js";

for (const topology of ["one redis-server", "a 3-master cluster"] as const) {
  describe(`Expiry with replicas sweeping at once, on ${topology}`, function () {
    this.timeout(90_000);
    let url = "";
    let destroy: (() => Promise<void>) | undefined;
    let redis: Redis | undefined;
    before(async () => {
      if (topology === "one redis-server") {
        const server = await RedisServer.start();
        url = server.url;
        destroy = () => server.destroy();
        redis = new Redis(server.port, "127.0.0.1");
      } else {
        const cluster = await RedisCluster.start(3);
        url = cluster.url;
        destroy = () => cluster.destroy();
      }
    });
    after(async () => {
      redis?.disconnect();
      await destroy?.();
    });

    it("expires each due decision once: one EXPIRED and one update event each, counters and indexes exact", async () => {
      const prefix = `${unique("sweep")}:`;
      // Three replicas sweeping often, each also expiring on demand as reads do; a fourth only listens.
      const sweepers = await Promise.all([1, 2, 3].map(() => RedisStore.open({ url, prefix, log: silent, buckets: 8, sweepMs: 20, sweepBatch: 7 })));
      const listener = await RedisStore.open({ url, prefix, log: silent, buckets: 8, sweepMs: 60_000 });
      const updates: Decision[] = [];
      const reviews: string[] = [];
      let failed: Error | undefined;
      let live!: () => void;
      const isLive = new Promise<void>((r) => (live = r));
      const leave = listener.subscribe((d) => reviews.push(d.id), (e) => (failed = e), live, (d) => updates.push(d));
      try {
        await within(isLive, { what: "the listener to be live" });
        const n = 60;
        const due = Array.from({ length: n }, (_, i) => pendingDecision({}, 300 + (i % 5) * 40));
        const kept = pendingDecision({}, 3_600_000);
        for (const [i, d] of [...due, kept].entries()) await sweepers[i % 3]!.saveReview(d, "fp");
        let byHand = 0;
        let stop = false;
        // Reads and explicit sweeps race the sweepers' own timers.
        const racing = sweepers.map(async (s) => {
          for (let i = 0; i < 10_000 && !stop; i++) {
            byHand += await s.expireDue(5);
            await s.summary();
          }
        });
        await waitFor(async () => (await listener.summary()).byStatus.expired === n, {
          what: `all ${n} decisions to expire`,
          timeoutMs: 30_000,
          intervalMs: 50,
        });
        stop = true;
        await Promise.all(racing);
        const marker = decision();
        await sweepers[0]!.saveReview(marker, "fp");
        await waitFor(() => reviews.includes(marker.id), { what: "the marker review on the listener", timeoutMs: 10_000 });
        expect(failed).to.equal(undefined);
        expect(updates).to.have.length(n);
        expect(new Set(updates.map((u) => u.id))).to.deep.equal(new Set(due.map((d) => d.id)));
        for (const u of updates) expect(u.status).to.equal("expired");
        expect(byHand).to.be.at.most(n);
        const summary = await listener.summary();
        expect(summary.byStatus).to.deep.equal({ pending: 1, approved: 1, rejected: 0, expired: n, superseded: 0 });
        const keys: Keyspace = listener.keys;
        let expiredListed = 0;
        let cursor: string | undefined;
        for (let i = 0; i < 100; i++) {
          const page = await listener.listDecisions({ status: "expired" }, { limit: 25, cursor, oldestFirst: true });
          expiredListed += page.items.length;
          for (const d of page.items) expect(d.status).to.equal("expired");
          if (!page.next) break;
          cursor = page.next;
        }
        expect(expiredListed).to.equal(n);
        expect((await listener.listDecisions({ status: "pending" }, { limit: 10 })).items.map((d) => d.id)).to.deep.equal([kept.id]);
        if (redis) {
          // One update per expiry in the bucket's sequence, and only the one that is not due left scheduled.
          let sequenced = 0;
          let scheduled = 0;
          for (const b of keys.all()) {
            sequenced += Number((await redis.hget(keys.counts(b), "updates")) ?? 0);
            scheduled += await redis.zcard(keys.expiries(b));
          }
          expect(sequenced).to.equal(n);
          expect(scheduled).to.equal(1);
        }
      } finally {
        leave();
        await Promise.all([...sweepers, listener].map((s) => s.close()));
      }
    });
  });
}

describe("Supersede across buckets, on two replicas", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let principals: Principals;
  let a: Running | undefined;
  let b: Running | undefined;
  before(async () => {
    server = await RedisServer.start();
    principals = await writePrincipals({ "agent-a": ["agent"], ops: ["operator"] });
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await principals?.remove();
    await server?.destroy();
  });

  it("marks the old decision SUPERSEDED in its own bucket once the new one is stored in another, seen by an await on the other replica", async () => {
    const prefix = `${unique("sup")}:`;
    a = await startReplica(server.url, prefix, { buckets: 8, authFile: principals.authFile });
    b = await startReplica(server.url, prefix, { buckets: 8, authFile: principals.authFile });
    const keys = (a.store as RedisStore).keys;
    // Request ids whose decisions land in different buckets (so different hash slots on a cluster).
    const oldRequest = unique("req");
    let newRequest = unique("req");
    const bucketOf = (rid: string) => keys.bucketOfId(decisionIdForRequest("agent-a", rid));
    for (let i = 0; i < 100 && bucketOf(newRequest) === bucketOf(oldRequest); i++) newRequest = unique("req");
    expect(bucketOf(newRequest)).to.not.equal(bucketOf(oldRequest));

    const agentA = a.connect({ token: principals.tokens["agent-a"] });
    const agentB = b.connect({ token: principals.tokens["agent-a"] });
    const ops = b.connect({ token: principals.tokens.ops });
    const submit = async (client: CouncilServiceClient, req: Partial<ReviewSuggestionRequest>): Promise<WireDecision> => {
      const got = await collect(client.reviewSuggestion({ suggestion: undefined, requestId: "", dryRun: false, supersedes: "", ...req }));
      if (got.error) throw got.error;
      const last = got.events.at(-1)!.event;
      if (last?.$case !== "decision") throw new Error("no decision");
      return last.value;
    };
    const deferred = wireSuggestion({ risk: RiskLevel.RISK_LEVEL_HIGH, impact: ImpactLevel.IMPACT_LEVEL_TRANSFORMATIVE, autoFixable: false });
    const old = await submit(agentA, { suggestion: deferred, requestId: oldRequest });
    expect(old.status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);

    const states: WireDecision[] = [];
    const awaiting = agentA.awaitDecision({ decisionId: old.id }, new Metadata(), { deadline: Date.now() + 15_000 });
    awaiting.on("data", (m: AwaitDecisionResponse) => states.push(m.decision!));
    const ended = new Promise<ServiceError | undefined>((resolve) => {
      awaiting.on("error", resolve);
      awaiting.on("end", () => resolve(undefined));
    });
    await waitFor(() => states.length >= 1, { what: "the await's first state" });

    const followUp = await submit(agentB, { suggestion: { ...deferred, description: `${deferred.description} More detail.` }, requestId: newRequest, supersedes: old.id });
    expect(followUp).to.deep.include({ supersedes: old.id, id: decisionIdForRequest("agent-a", newRequest) });
    expect(await within(ended, { what: "the await of the old decision to end" })).to.equal(undefined);
    expect(states.at(-1)).to.deep.include({ status: DecisionStatus.DECISION_STATUS_SUPERSEDED, supersededBy: followUp.id });
    const got = (await call(ops, ops.getDecision, { id: old.id })).decision!;
    expect(got).to.deep.include({ status: DecisionStatus.DECISION_STATUS_SUPERSEDED, supersededBy: followUp.id, expiresAt: old.expiresAt });
    const summary = await call(ops, ops.getSummary, {});
    expect(summary.byStatus).to.deep.equal({ pending: 1, approved: 0, rejected: 0, expired: 0, superseded: 1 });
    const listed = await call(ops, ops.listDecisions, {
      decisionType: 0,
      suggestionId: "",
      pageSize: 10,
      pageToken: "",
      status: DecisionStatus.DECISION_STATUS_SUPERSEDED,
      oldestFirst: false,
    });
    expect(listed.decisions.map((d) => d.id)).to.deep.equal([old.id]);
    // Superseding it again (a replay of the same review is a replay; another review is refused).
    const again = await submit(agentA, { suggestion: deferred, requestId: unique("req"), supersedes: old.id }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(again?.code).to.equal(status.FAILED_PRECONDITION);
  });
});

/** A redis-server replicating `master`, once its link is up. */
async function startReplicaOf(master: RedisServer): Promise<RedisServer> {
  const replica = await RedisServer.start({ extraArgs: ["--replicaof", "127.0.0.1", String(master.port)] });
  await waitFor(() => replica.cli("info", "replication").includes("master_link_status:up"), {
    timeoutMs: 15_000,
    what: "the replica's link to its master to be up",
  });
  return replica;
}

describe("COUNCIL_REDIS_MIN_REPLICAS and verdicts", function () {
  this.timeout(60_000);
  let master: RedisServer;
  let replica: RedisServer;
  let council: Running | undefined;
  before(async () => {
    master = await RedisServer.start();
    replica = await startReplicaOf(master);
  });
  after(async () => {
    replica?.resume();
    await council?.stop();
    await replica?.destroy();
    await master?.destroy();
  });

  it("acknowledges a verdict once the replica has it; short of that UNAVAILABLE, and the retry returns the verdict stored", async () => {
    council = await startCouncil({ store: await RedisStore.open({ url: master.url, prefix: `${unique("mr")}:`, log: silent, minReplicas: 1 }) });
    const c = council.client;
    const keys = (council.store as RedisStore).keys;
    const resolve = (decisionId: string, requestId: string) =>
      call(c, c.resolveDecision, { decisionId, verdict: VerdictType.VERDICT_TYPE_APPROVE, comment: "", requestId });
    const pending = async () => {
      const got = await collect(
        c.reviewSuggestion({ suggestion: wireSuggestion({ risk: RiskLevel.RISK_LEVEL_MEDIUM, autoFixable: false }), requestId: unique("req"), dryRun: false, supersedes: "" }),
      );
      const last = got.events.at(-1)!.event;
      if (last?.$case !== "decision") throw new Error("no decision");
      return last.value;
    };
    const onReplica = (id: string) => replica.cli("HGET", keys.decision(keys.bucketOfId(id), id), "status").trim();

    const first = await pending();
    expect((await resolve(first.id, unique("v"))).decision!.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
    expect(onReplica(first.id)).to.equal("approved");

    const second = await pending();
    const requestId = unique("v");
    replica.pause();
    try {
      const failed = await resolve(second.id, requestId).then(
        () => undefined,
        (e: ServiceError) => e,
      );
      expect(failed?.code).to.equal(status.UNAVAILABLE);
      expect(failed?.details).to.equal(UNAVAILABLE.replicas);
      // The retry while the replica still cannot confirm is not acknowledged either.
      expect((await resolve(second.id, requestId).catch((e: ServiceError) => e)) as ServiceError).to.have.property("code", status.UNAVAILABLE);
    } finally {
      replica.resume();
    }
    const retried = await waitFor(() => resolve(second.id, requestId).catch(() => undefined), {
      what: "the retry to be acknowledged",
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    expect(retried.decision!.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
    expect(retried.decision!.verdicts).to.have.length(1);
    expect(onReplica(second.id)).to.equal("approved");
    const summary = await call(c, c.getSummary, {});
    expect(summary.byStatus).to.deep.include({ pending: 0, approved: 2 });
  });
});
