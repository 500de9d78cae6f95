/**
 * Redis at `maxmemory` in the middle of a flood of reviews and outcomes, some of the reviews
 * cancelled by their callers after the first vote: every refusal is UNAVAILABLE with a fixed
 * message (no Redis text), and afterwards the counters still equal the decisions stored.
 */
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { CouncilServiceClient, type GetSummaryResponse, type ListDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { Outcome } from "../../src/gen/council/v1/review.js";
import { wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { waitFor } from "../support/wait.js";
import { spawnCouncil, type Spawned } from "./spawned.js";

describe("attack: Redis out of memory during a flood", function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let server: Spawned;
  let client: CouncilServiceClient;
  let admin: Redis;

  before(async () => {
    redis = await RedisServer.start({ extraArgs: ["--maxmemory-policy", "noeviction"] });
    server = await spawnCouncil({ env: { REDIS_URL: redis.url } });
    client = new CouncilServiceClient(server.addr, credentials.createInsecure());
    admin = new Redis(redis.url, { lazyConnect: false });
  });
  after(async () => {
    client?.close();
    admin?.disconnect();
    await server?.stop();
    await redis?.kill();
  });

  it("answers UNAVAILABLE with a fixed message, and keeps the counters equal to what is stored", async () => {
    const seen = new Map<string, number>();
    const note = (err: ServiceError) => seen.set(`${status[err.code]}: ${err.details}`, (seen.get(`${status[err.code]}: ${err.details}`) ?? 0) + 1);
    const reviewOnce = (i: number, cancel: boolean) =>
      new Promise<string | undefined>((resolve) => {
        const stream = client.reviewSuggestion({
          suggestion: wireSuggestion({ id: `sug-oom-${i}`, description: "d".repeat(8000) }),
          requestId: `oom-${i}`,
          dryRun: false,
          supersedes: "",
        });
        let decisionId: string | undefined;
        stream.on("data", (e: { decisionId: string; event?: { $case: string } }) => {
          if (cancel) stream.cancel();
          if (e.event?.$case === "decision") decisionId = e.decisionId;
        });
        stream.on("error", (err: ServiceError) => {
          if (err.code !== status.CANCELLED) note(err);
          resolve(undefined);
        });
        stream.on("end", () => resolve(decisionId));
      });
    const used = Number(/used_memory:(\d+)/.exec(await admin.info("memory"))![1]);
    await admin.config("SET", "maxmemory", String(used + 2_000_000));
    let stored = 0;
    try {
      await Promise.all(
        Array.from({ length: 8 }, async (_, worker) => {
          for (let i = 0; i < 60; i++) {
            const id = await reviewOnce(worker * 1000 + i, i % 4 === 3);
            if (id) stored++;
            if (id && i % 3 === 0) {
              await new Promise<void>((resolve) =>
                client.recordOutcome({ decisionId: id, outcome: Outcome.OUTCOME_SUCCESS, notes: "n".repeat(4000), lessons: "l", requestId: "" }, (err) => {
                  if (err) note(err);
                  resolve();
                }),
              );
            }
          }
        }),
      );
    } finally {
      await admin.config("SET", "maxmemory", "0");
    }
    expect(stored, "some reviews were stored before Redis filled up").to.be.above(0);
    expect(seen.size, "Redis refused some writes").to.be.above(0);
    for (const key of seen.keys()) expect(key).to.match(/^UNAVAILABLE: /).and.not.match(/OOM|ERR|script|sha|council:|maxmemory/i);

    // A cancelled review still finishes (SPEC §2), so one may land while this reads: poll until two
    // reads of the keys agree with the counters between them (a real mismatch never settles).
    const summaryNow = () => new Promise<GetSummaryResponse>((resolve, reject) => client.getSummary({}, (e, r) => (e ? reject(e) : resolve(r))));
    let keys: string[] = [];
    await waitFor(
      async () => {
        const before = await admin.keys("council:*:d:*");
        const summary = await summaryNow();
        keys = await admin.keys("council:*:d:*");
        const outcomes = Object.values(summary.outcomes).reduce((a, b) => a + Number(b), 0);
        return before.length === keys.length && Number(summary.totalDecisions) === keys.length && outcomes === keys.length;
      },
      { timeoutMs: 15_000, what: "the counters to equal the stored decisions" },
    );
    const listed: string[] = [];
    let pageToken = "";
    for (let page = 0; page < 20; page++) {
      const res = await new Promise<ListDecisionsResponse>((resolve, reject) =>
        client.listDecisions({ decisionType: 0, suggestionId: "", pageSize: 500, pageToken, status: 0, oldestFirst: false }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      listed.push(...res.decisions.map((d) => d.id));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    expect(new Set(listed).size).to.equal(keys.length);
  });
});
