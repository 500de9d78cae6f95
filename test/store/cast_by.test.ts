/**
 * Who cast each vote (`Vote.castBy`) and the suggestion's diff (issue 13), in both stores: kept
 * field for field, and, in Redis, read from decisions that earlier versions stored without them (a
 * vote then was always cast by the built-in rules, and no suggestion had a diff).
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { Decision, Vote } from "../../src/domain/model.js";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import type { Store } from "../../src/store/store.js";
import { decision, suggestion, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { waitFor, within } from "../support/wait.js";

const log = createLogger("silent");

interface Dumped {
  key: string;
  type: "hash" | "zset" | "stream";
  value: Record<string, string> | string[] | [string, string[]][];
}

const fixture = (name: string) =>
  (JSON.parse(readFileSync(new URL(`../redis/fixtures/${name}.keyspace.json`, import.meta.url), "utf8")) as { keys: Dumped[] }).keys;

/** Writes a dumped keyspace under `prefix`, as the version that wrote it left it. */
async function load(redis: Redis, keys: Dumped[], prefix: string): Promise<void> {
  for (const { key, type, value } of keys) {
    const name = prefix + key;
    if (type === "hash") await redis.hset(name, value as Record<string, string>);
    else if (type === "zset") for (const member of value as string[]) await redis.zadd(name, 0, member);
    else for (const [id, fields] of value as [string, string[]][]) await redis.xadd(name, id, ...fields);
  }
}

const vote = (role: Vote["reviewerRole"], castBy: string, extra: Partial<Vote> = {}): Vote => ({
  reviewerRole: role,
  vote: "approve",
  reasoning: `[${role.toUpperCase()}] Approved.`,
  concerns: [],
  conditions: [],
  confidence: 0.8,
  castAt: new Date("2026-03-04T05:06:07.890Z"),
  veto: "",
  castBy,
  ...extra,
});

/** A diff with what JSON escapes (newlines, quotes, backslashes, a tab, a NUL) and characters outside ASCII. */
const DIFF = '--- a/src/app.ts\n+++ b/src/app.ts\n@@ -1 +1 @@\n-const key = "";\n+const key = "naïve \\" ✓ 😀\t\u0000";\n';

function castBySuite(name: string, open: () => Promise<Store>) {
  describe(`who cast each vote, and the diff: ${name}`, function () {
    this.timeout(30_000);
    let store: Store;
    beforeEach(async () => (store = await open()));
    afterEach(() => store.close());

    it("keeps every vote's castBy and the suggestion's diff, field for field, wherever a decision is read", async () => {
      const d = decision({
        requestId: unique("req"),
        suggestion: suggestion({ diff: DIFF }),
        votes: [
          vote("safety", "secret-scanner", { vote: "reject", veto: "credential_in_diff", concerns: ["credential_in_diff"] }),
          vote("performance", "rules"),
          vote("architecture", "fallback:needs_more_info", { vote: "needs_more_info", confidence: 0 }),
          vote("compliance", "fallback:reject", { vote: "reject", veto: "no_external_vote", confidence: 0 }),
          vote("quality", "fallback:rules"),
        ],
      });
      const seen: Decision[] = [];
      let live!: () => void;
      const isLive = new Promise<void>((resolve) => (live = resolve));
      const leave = store.subscribe((r) => seen.push(r), () => {}, live);
      try {
        await within(isLive, { what: "the subscription to be live" });
        expect((await store.saveReview(d, "fp")).kind).to.equal("stored");
        expect(await store.getDecision(d.id)).to.deep.equal(d);
        expect((await store.findByRequestId(d.submittedBy, d.requestId))?.decision).to.deep.equal(d);
        const page = await store.listDecisions({ suggestionId: d.suggestionId }, { limit: 10 });
        expect(page.items).to.deep.equal([d]);
        // A review event carries the decision as it was stored (Redis leaves the lifecycle out of it).
        const event = await waitFor(() => seen[0], { what: "the review event" });
        expect(event.votes).to.deep.equal(d.votes);
        expect(event.suggestion).to.deep.equal(d.suggestion);
      } finally {
        leave();
      }
    });

    it("keeps an empty diff empty", async () => {
      const d = decision();
      expect(d.suggestion.diff).to.equal("");
      await store.saveReview(d, "fp");
      expect((await store.getDecision(d.id))!.suggestion.diff).to.equal("");
    });
  });
}

castBySuite("in-process", async () => new MemoryStore());

describe("on Redis", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
  });
  after(async () => {
    redis?.disconnect();
    await server?.destroy();
  });

  castBySuite("redis", () => RedisStore.open({ url: server.url, prefix: `${unique("t")}:`, log }));

  for (const name of ["pre-principals", "pre-verdicts"]) {
    it(`reads the votes of a keyspace an earlier version wrote (${name}) as cast by the rules, and its suggestions with no diff`, async () => {
      const keys = fixture(name);
      const docs = keys.filter((k) => k.key.includes(":d:")).map((k) => JSON.parse((k.value as Record<string, string>).doc!));
      // What the earlier version wrote has neither key, so this reads what it left, not what this version writes.
      expect(docs.length).to.be.at.least(3);
      for (const doc of docs) {
        expect(doc.suggestion).to.not.have.property("diff");
        for (const v of doc.votes) expect(v).to.not.have.property("castBy");
      }
      const prefix = `${unique("old")}:`;
      await load(redis, keys, prefix);
      const store = await RedisStore.open({ url: server.url, prefix, log });
      try {
        for (const doc of docs) {
          const d = (await store.getDecision(doc.id))!;
          expect(d.votes).to.have.length(doc.votes.length);
          expect(d.votes.map((v) => v.castBy)).to.deep.equal(doc.votes.map(() => "rules"));
          expect(d.suggestion.diff).to.equal("");
        }
      } finally {
        await store.close();
      }
    });
  }

  it("writes a suggestion without a diff as the versions before diff did (no key), and every vote's castBy", async () => {
    const prefix = `${unique("t")}:`;
    const store = await RedisStore.open({ url: server.url, prefix, log });
    try {
      const plain = decision();
      const withDiff = decision({ suggestion: suggestion({ diff: DIFF }) });
      for (const d of [plain, withDiff]) await store.saveReview(d, "fp");
      const docOf = async (d: Decision) => {
        const key = store.keys.decision(store.keys.bucketOfId(d.id), d.id);
        return JSON.parse((await redis.hget(key, "doc"))!);
      };
      const plainDoc = await docOf(plain);
      expect(plainDoc.suggestion).to.not.have.property("diff");
      expect(plainDoc.votes.map((v: { castBy: string }) => v.castBy)).to.deep.equal(["rules"]);
      expect((await docOf(withDiff)).suggestion.diff).to.equal(DIFF);
    } finally {
      await store.close();
    }
  });
});
