/**
 * A watch never hangs silently, through gRPC on real redis-servers: every way the event reader can
 * lose track ends the watch with UNAVAILABLE within a bound — entries really trimmed from the
 * stream behind a reader that was stopped (SIGSTOP of the council process), including when the
 * stream was empty when the watch began; a stream really reset (FLUSHALL; a restart of Redis
 * without persistence); and Redis hung or gone for longer than the reader waits. Nothing here
 * injects an entry: reviews are stored by a real replica, and Redis itself trims and forgets.
 */
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { CouncilServiceClient, WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import type { RedisStore } from "../../src/store/redis.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { review, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { ServiceProcess, startReplica } from "./helpers.js";

function watch(client: CouncilServiceClient) {
  const stream = client.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: false, includeUpdates: false });
  // The server sends response headers once the watch is live: every review stored from then on is sent.
  const live = new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  const ended = new Promise<ServiceError>((resolve) => stream.once("error", resolve));
  const decisions: string[] = [];
  stream.on("data", (e: WatchDecisionsResponse) => {
    if (e.event?.$case === "decision") decisions.push(e.decisionId);
  });
  stream.on("error", () => undefined);
  return {
    stream,
    decisions,
    live: () => within(live, { timeoutMs: 10_000, what: "response headers from the watch (it is live)" }),
    ended: (timeoutMs: number, what: string) => within(ended, { timeoutMs, what }),
  };
}

async function stored(c: CouncilServiceClient): Promise<string> {
  const r = await review(c, { suggestion: wireSuggestion(), requestId: unique("req") });
  expect(r.error).to.equal(undefined);
  return r.events[0]!.decisionId;
}

describe("A watch never hangs silently (Redis, through gRPC)", function () {
  this.timeout(90_000);

  describe("entries trimmed behind a stopped reader", () => {
    let redis: RedisServer;
    let writer: Running | undefined;
    let service: ServiceProcess | undefined;
    let client: CouncilServiceClient | undefined;
    let direct: Redis;

    before(async () => {
      redis = await RedisServer.start();
      direct = new Redis({ port: redis.port, lazyConnect: true });
      await direct.connect();
    });
    afterEach(async () => {
      client?.close();
      service?.resume();
      await service?.kill();
      await writer?.stop();
      service = writer = client = undefined;
    });
    after(async () => {
      direct?.disconnect();
      await redis?.destroy();
    });

    /**
     * A council process (one bucket) whose watch is live on an empty stream, stopped with SIGSTOP
     * once its reader has no read waiting in Redis; then three reviews stored by another replica.
     */
    async function stoppedReaderBehindThreeReviews() {
      const prefix = `${unique("trim")}:`;
      writer = await startReplica(redis.url, prefix, { buckets: 1 }); // creates the keyspace: one bucket
      ({ service, client } = await ServiceProcess.start(redis.url, prefix));
      const w = watch(client);
      await w.live();
      service.pause();
      // Its blocking XREAD times out within a second and its reply waits in the stopped process.
      await waitFor(
        async () => {
          const clients = (await direct.client("LIST")) as string;
          return !clients.split("\n").some((l) => l.includes("name=council-watch") && /flags=\S*b/.test(l));
        },
        { timeoutMs: 5000, intervalMs: 50, what: "the stopped process's event reader to have no read waiting in Redis" },
      );
      const ids = [await stored(writer.client), await stored(writer.client), await stored(writer.client)];
      const stream = (writer.store as RedisStore).keys.events(0);
      return { w, ids, stream };
    }

    it("an empty stream at start, then all but the last entry trimmed unread: UNAVAILABLE, not the last review alone", async () => {
      const { w, ids, stream } = await stoppedReaderBehindThreeReviews();
      const entries = (await direct.xrange(stream, "-", "+")) as [string, string[]][];
      expect(entries).to.have.length(3);
      expect(await direct.xtrim(stream, "MINID", entries[2]![0])).to.equal(2);
      service!.resume();
      const err = await w.ended(8000, "the watch to end after entries were trimmed before it read them");
      expect(err.code, err.details).to.equal(status.UNAVAILABLE);
      expect(w.decisions).to.not.include(ids[2]);
    });

    it("every entry trimmed unread (XTRIM MAXLEN 0): UNAVAILABLE, although no entry ever arrives", async () => {
      const { w, stream } = await stoppedReaderBehindThreeReviews();
      expect(await direct.xtrim(stream, "MAXLEN", 0)).to.equal(3);
      service!.resume();
      const err = await w.ended(8000, "the watch to end after every entry was trimmed before it read them");
      expect(err.code, err.details).to.equal(status.UNAVAILABLE);
      expect(w.decisions).to.deep.equal([]);
    });
  });

  describe("a stream reset and a Redis that is gone", () => {
    let redis: RedisServer;
    let council: Running | undefined;

    beforeEach(async () => {
      redis = await RedisServer.start(); // no persistence: a restart forgets everything
    });
    afterEach(async () => {
      redis?.resume();
      await council?.stop();
      council = undefined;
      await redis?.destroy();
    });

    it("FLUSHALL, then a review: its sequence starts again at 1, and the watch ends UNAVAILABLE", async () => {
      council = await startReplica(redis.url, `${unique("reset")}:`, { buckets: 1 });
      const w = watch(council.client);
      await w.live();
      const first = await stored(council.client);
      await waitFor(() => w.decisions.includes(first), { what: "the first review on the watch" });
      redis.cli("FLUSHALL");
      const err = await Promise.all([stored(council.client), w.ended(5000, "the watch to end after FLUSHALL")]).then(([, e]) => e);
      expect(err.code, err.details).to.equal(status.UNAVAILABLE);
      expect(w.decisions).to.deep.equal([first]);
    });

    it("Redis restarted without persistence and nothing stored since: the watch ends UNAVAILABLE", async () => {
      council = await startReplica(redis.url, `${unique("reset")}:`);
      const w = watch(council.client);
      await w.live();
      const first = await stored(council.client);
      await waitFor(() => w.decisions.includes(first), { what: "the first review on the watch" });
      await redis.kill();
      await redis.restart();
      const err = await w.ended(10_000, "the watch to end after Redis came back empty");
      expect(err.code, err.details).to.equal(status.UNAVAILABLE);
    });

    for (const how of ["hangs (SIGSTOP)", "is killed"] as const) {
      it(`Redis ${how} for longer than the reader waits (watchStallMs 2000): the watch ends UNAVAILABLE within the bound`, async () => {
        council = await startReplica(redis.url, `${unique("stall")}:`, { watchStallMs: 2000 });
        const w = watch(council.client);
        await w.live();
        const first = await stored(council.client);
        await waitFor(() => w.decisions.includes(first), { what: "the first review on the watch" });
        const started = Date.now();
        if (how === "is killed") await redis.kill();
        else redis.pause();
        const err = await w.ended(8000, `the watch to end while Redis ${how}`);
        expect(err.code, err.details).to.equal(status.UNAVAILABLE);
        expect(Date.now() - started).to.be.within(1500, 4000);
      });
    }
  });
});
