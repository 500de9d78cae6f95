/**
 * COUNCIL_REDIS_MIN_REPLICAS on a real master with a real replica (`redis-server --replicaof`):
 * a write is acknowledged only once the replica has it, so a failover to the replica cannot lose
 * a decision a client received. A replica that cannot confirm (SIGSTOP) makes the review fail
 * UNAVAILABLE without a decision event; once it can, the retry with the same request_id gets the
 * decision stored the first time (the same votes, cast at the same instants), not a new one.
 */
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { loadConfig } from "../../src/config.js";
import { UnavailableError } from "../../src/domain/errors.js";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS_NAME } from "../../src/domain/principal.js";
import { Keyspace } from "../../src/store/keys.js";
import { openStore } from "../../src/store/open.js";
import { UNAVAILABLE } from "../../src/store/redis_errors.js";
import { decision, unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { silent, startReplica } from "./helpers.js";

/** A redis-server replicating `master`, once its link is up and it has caught up. */
async function startReplicaOf(master: RedisServer): Promise<RedisServer> {
  const replica = await RedisServer.start({ extraArgs: ["--replicaof", "127.0.0.1", String(master.port)] });
  await waitFor(() => replica.cli("info", "replication").includes("master_link_status:up"), {
    timeoutMs: 15_000,
    what: "the replica's link to its master to be up",
  });
  return replica;
}

describe("COUNCIL_REDIS_MIN_REPLICAS on a master and a replica", function () {
  this.timeout(60_000);
  let master: RedisServer;
  let replica: RedisServer;
  let council: Running | undefined;

  before(async () => {
    master = await RedisServer.start({ appendfsync: "always" });
    replica = await startReplicaOf(master);
  });
  after(async () => {
    replica?.resume();
    await council?.stop();
    await replica?.destroy();
    await master?.destroy();
  });

  it("fails a review UNAVAILABLE when the replica cannot confirm it, and the retry returns the stored decision", async () => {
    const prefix = `${unique("rep")}:`;
    council = await startReplica(master.url, prefix, { minReplicas: 1 });
    const c = council.client;
    const keys = (council.store as unknown as { keys: Keyspace }).keys;
    const onReplica = new Redis({ port: replica.port, lazyConnect: true });
    await onReplica.connect();
    try {
      // Confirmed: the decision is on the replica the moment the client has it.
      const first = await review(c, { suggestion: wireSuggestion(), requestId: unique("req") });
      expect(first.error).to.equal(undefined);
      const stored = first.events[first.events.length - 1]!.event;
      expect(stored?.$case).to.equal("decision");
      const id = first.events[0]!.decisionId;
      expect(await onReplica.hget(keys.decision(keys.bucketOfId(id), id), "doc")).to.be.a("string");

      // The replica stops acknowledging: the review is stored on the master, but not acknowledged.
      replica.pause();
      const requestId = unique("req");
      const suggestion = wireSuggestion();
      const started = Date.now();
      const failed = await review(c, { suggestion, requestId });
      expect(failed.error?.code, failed.error?.details).to.equal(status.UNAVAILABLE);
      expect(failed.error?.details).to.equal(UNAVAILABLE.replicas);
      expect(Date.now() - started).to.be.lessThan(2000);
      expect(failed.events.map((e) => e.event?.$case)).to.not.include("decision");
      const votes = failed.events.map((e) => e.event?.$case === "vote" && e.event.value);
      expect(votes).to.have.length(5);

      // A retry while the replica is still stopped is not acknowledged either.
      const again = await review(c, { suggestion, requestId });
      expect(again.error?.code).to.equal(status.UNAVAILABLE);
      expect(again.events.map((e) => e.event?.$case)).to.not.include("decision");

      // The replica is back: the retry replays the decision stored by the first call.
      replica.resume();
      const retry = await waitFor(
        async () => {
          const r = await review(c, { suggestion, requestId });
          return r.error ? undefined : r;
        },
        { timeoutMs: 10_000, intervalMs: 100, what: "the retry to be acknowledged" },
      );
      const last = retry.events[retry.events.length - 1]!.event;
      expect(last?.$case).to.equal("decision");
      const decided = last!.$case === "decision" ? last!.value : undefined;
      expect(decided!.id).to.equal(decisionIdForRequest(ANONYMOUS_NAME, requestId));
      // The same votes, cast at the same instants: the stored review, not a second one.
      expect(retry.events.filter((e) => e.event?.$case === "vote").map((e) => e.event!.value)).to.deep.equal(votes);
      expect(await onReplica.hget(keys.decision(keys.bucketOfId(decided!.id), decided!.id), "doc")).to.be.a("string");
      const got = await call(c, c.getDecision, { id: decided!.id });
      expect(got.decision?.id).to.equal(decided!.id);
    } finally {
      replica.resume();
      onReplica.disconnect();
      await council.stop();
      council = undefined;
    }
  });

  it("a master that lost its scripts (SCRIPT FLUSH) still gets each write confirmed by the replica before it is acknowledged", async () => {
    council = await startReplica(master.url, `${unique("rep")}:`, { minReplicas: 1 });
    const keys = (council.store as unknown as { keys: Keyspace }).keys;
    try {
      await review(council.client, { suggestion: wireSuggestion(), requestId: unique("req") });
      master.cli("SCRIPT", "FLUSH");
      const r = await review(council.client, { suggestion: wireSuggestion(), requestId: unique("req") });
      expect(r.error).to.equal(undefined);
      const id = r.events[0]!.decisionId;
      // Confirmed means the replica had it when the client got the decision.
      expect(replica.cli("HEXISTS", keys.decision(keys.bucketOfId(id), id), "doc").trim()).to.equal("1");
    } finally {
      await council.stop();
      council = undefined;
    }
  });

  it("COUNCIL_REDIS_MIN_REPLICAS reaches the store: more replicas than there are fail every write UNAVAILABLE", async () => {
    const config = loadConfig([], { REDIS_URL: master.url, COUNCIL_REDIS_PREFIX: `${unique("rep")}:`, COUNCIL_REDIS_MIN_REPLICAS: "2" });
    expect(config.redisMinReplicas).to.equal(2);
    const store = await openStore(config, silent);
    try {
      const err = await store.saveReview(decision(), "fp").then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).to.be.instanceOf(UnavailableError);
      expect(err!.message).to.equal(UNAVAILABLE.replicas);
    } finally {
      await store.close();
    }
  });
});
