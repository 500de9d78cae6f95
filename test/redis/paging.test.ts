/**
 * Paging over 10,000 stored decisions through ListDecisions: every decision exactly once, newest
 * first, with and without filters; the decisions are seeded through the store (pipelined), then
 * read through gRPC.
 */
import { expect } from "chai";
import { DECISION_TYPES, type Decision } from "../../src/domain/model.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { decisionSortKey } from "../../src/store/store.js";
import { decision, suggestion, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, type Running } from "../support/server.js";
import { listAll, startReplica } from "./helpers.js";

const COUNT = 10_000;

describe("Paging over 10,000 decisions in Redis through gRPC", function () {
  this.timeout(120_000);
  let redis: RedisServer;
  let replica: Running;
  const stored: Decision[] = [];
  const shared = suggestion();

  before(async () => {
    redis = await RedisServer.start();
    replica = await startReplica(redis.url, `${unique("page")}:`);
    const base = Date.now() - COUNT * 7;
    for (let i = 0; i < COUNT; i++) {
      stored.push(
        decision({
          decidedAt: new Date(base + Math.floor(i / 3) * 20), // groups of three share a millisecond
          decision: DECISION_TYPES[i % DECISION_TYPES.length]!,
          ...(i % 10 === 0 ? { suggestion: shared, suggestionId: shared.id } : {}),
          ...(i % 4 === 0 ? { requestId: unique("req") } : {}),
        }),
      );
    }
    // In batches of 500 concurrent saves (pipelined by the client), out of order on purpose.
    const shuffled = [...stored].sort(() => Math.random() - 0.5);
    for (let i = 0; i < shuffled.length; i += 500) {
      const results = await Promise.all(shuffled.slice(i, i + 500).map((d) => replica.store.saveReview(d, "fp")));
      expect(results.every((r) => r.kind === "stored")).to.equal(true);
    }
  });
  after(async () => {
    await replica?.stop();
    await redis?.destroy();
  });

  const newestFirst = (ds: Decision[]) => [...ds].sort((x, y) => (decisionSortKey(x) < decisionSortKey(y) ? 1 : -1)).map((d) => d.id);

  it("sees each of 10,000 decisions exactly once, newest first (page_size 500, and 333)", async () => {
    const c = replica.client;
    expect((await call(c, c.getSummary, {})).totalDecisions).to.equal(COUNT);
    const expected = newestFirst(stored);
    for (const size of [500, 333]) {
      const { decisions, pages } = await listAll(c, size);
      const ids = decisions.map((d) => d.id);
      expect(new Set(ids).size).to.equal(COUNT);
      expect(ids).to.deep.equal(expected);
      expect(pages).to.equal(Math.ceil(COUNT / size));
    }
  });

  it("pages through filters exactly once each: by type, by suggestion, by both", async () => {
    const c = replica.client;
    const reject = DecisionType.DECISION_TYPE_REJECT;
    const cases = [
      { filter: { decisionType: reject }, want: stored.filter((d) => d.decision === "reject") },
      { filter: { suggestionId: shared.id }, want: stored.filter((d) => d.suggestionId === shared.id) },
      {
        filter: { decisionType: reject, suggestionId: shared.id },
        want: stored.filter((d) => d.decision === "reject" && d.suggestionId === shared.id),
      },
    ];
    for (const { filter, want } of cases) {
      const { decisions } = await listAll(c, 97, filter);
      expect(decisions.map((d) => d.id), JSON.stringify(filter)).to.deep.equal(newestFirst(want));
    }
  });
});
