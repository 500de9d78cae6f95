/**
 * `Vote.cast_by` (SPEC section 11, issue 13): every vote says who cast it. Today the built-in rules
 * cast every vote: `rules`, on each vote as it streams, in the stored decision, in a replay and on a
 * watch, on both stores, and for votes that an earlier version stored before votes said so.
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { Redis } from "ioredis";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS_NAME } from "../../src/domain/principal.js";
import type { ReviewSuggestionResponse, WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType, type Vote as WireVote } from "../../src/gen/council/v1/review.js";
import { createLogger } from "../../src/log.js";
import { suggestionToWire } from "../../src/server/convert.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import { decodeDecision } from "../../src/store/redis_codec.js";
import type { Store } from "../../src/store/store.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

const log = createLogger("silent");

const votesOf = (events: ReviewSuggestionResponse[]): WireVote[] => events.flatMap((e) => (e.event?.$case === "vote" ? [e.event.value] : []));
const decisionOf = (events: ReviewSuggestionResponse[]) => {
  const last = events.at(-1)?.event;
  if (last?.$case !== "decision") throw new Error("the review did not end with its decision");
  return last.value;
};

function castBySuite(name: string, open: () => Promise<Store>) {
  describe(`Vote.cast_by over gRPC: ${name}`, function () {
    this.timeout(30_000);
    let c: Running;
    beforeEach(async () => (c = await startCouncil({ store: await open() })));
    afterEach(() => c.stop());

    it("is `rules` on every vote: streamed, stored, read, replayed and dry run", async () => {
      const requestId = unique("req");
      const suggestion = wireSuggestion({ diff: "+return retry(fn);\n" });
      const made = await review(c.client, { suggestion, requestId });
      expect(made.error).to.equal(undefined);
      const streamed = votesOf(made.events);
      expect(streamed).to.have.length(5);
      expect(streamed.map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));
      const stored = decisionOf(made.events);
      expect(stored.votes).to.deep.equal(streamed);
      const read = (await call(c.client, c.client.getDecision, { id: stored.id })).decision!;
      expect(read.votes.map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));

      const again = await review(c.client, { suggestion, requestId });
      expect(votesOf(again.events)).to.deep.equal(streamed);
      expect(decisionOf(again.events).votes.map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));

      const dry = await review(c.client, { suggestion: wireSuggestion(), dryRun: true });
      expect(votesOf(dry.events).map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));
    });

    it("is `rules` on the votes a watch sends", async () => {
      const watch = c.client.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false });
      const seen: WatchDecisionsResponse[] = [];
      watch.on("data", (e: WatchDecisionsResponse) => seen.push(e));
      watch.on("error", () => {});
      try {
        // The server sends the headers once the watch is live.
        await within(new Promise((resolve) => watch.once("metadata", resolve)), { what: "the watch to go live" });
        const id = decisionOf((await review(c.client, { suggestion: wireSuggestion() })).events).id;
        await waitFor(() => seen.some((e) => e.decisionId === id && e.event?.$case === "decision"), { what: "the review on the watch" });
        const votes = seen.filter((e) => e.decisionId === id).flatMap((e) => (e.event?.$case === "vote" ? [e.event.value] : []));
        expect(votes.map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));
      } finally {
        watch.cancel();
      }
    });
  });
}

castBySuite("in-process", async () => new MemoryStore());

interface Dumped {
  key: string;
  type: "hash" | "zset" | "stream";
  value: Record<string, string> | string[] | [string, string[]][];
}

describe("on Redis", function () {
  this.timeout(60_000);
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(() => server?.destroy());

  castBySuite("redis", () => RedisStore.open({ url: server.url, prefix: `${unique("t")}:`, log }));

  // fixtures/pre-principals.keyspace.json: what Council at commit b1601be wrote (make_pre_principals.ts).
  it("shows the votes an earlier version stored as cast by `rules`, and replays them so, with the suggestion's empty diff", async () => {
    const keys = (JSON.parse(readFileSync(new URL("../redis/fixtures/pre-principals.keyspace.json", import.meta.url), "utf8")) as { keys: Dumped[] }).keys;
    const redis = new Redis(server.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    const prefix = `${unique("old")}:`;
    try {
      for (const { key, type, value } of keys) {
        const name = prefix + key;
        if (type === "hash") await redis.hset(name, value as Record<string, string>);
        else if (type === "zset") for (const member of value as string[]) await redis.zadd(name, 0, member);
        else for (const [id, fields] of value as [string, string[]][]) await redis.xadd(name, id, ...fields);
      }
    } finally {
      redis.disconnect();
    }
    const c = await startCouncil({ store: await RedisStore.open({ url: server.url, prefix, log }) });
    try {
      const listed = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 10, pageToken: "", status: 0, oldestFirst: false });
      expect(listed.decisions).to.have.length(3);
      for (const d of listed.decisions) {
        expect(d.votes.map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));
        expect(d.suggestion!.diff).to.equal("");
      }
      // A replay of a request stored then: the stored votes, each cast by the rules.
      const first = decisionIdForRequest(ANONYMOUS_NAME, "old-req-1");
      const doc = keys.find((k) => k.key.endsWith(`:d:${first}`))!.value as Record<string, string>;
      const again = await review(c.client, { suggestion: suggestionToWire(decodeDecision(doc)!.suggestion), requestId: "old-req-1" });
      expect(again.error).to.equal(undefined);
      expect(decisionOf(again.events).id).to.equal(first);
      expect(votesOf(again.events).map((v) => v.castBy)).to.deep.equal(Array(5).fill("rules"));
    } finally {
      await c.stop();
    }
  });
});
