/**
 * Paging over 10,000 stored decisions through ListDecisions: every decision exactly once, newest
 * first, with and without filters; the decisions are seeded through the store (pipelined), then
 * read through gRPC. The store orders them as it stores them (not by decided_at), so within one
 * batch of concurrent saves any order is right, but a later batch comes first, and every page size
 * and filter must see one and the same order.
 */
import { expect } from "chai";
import { DECISION_TYPES, type Decision } from "../../src/domain/model.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
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
  /** The batch each decision was saved in, by decision id. */
  const batchOf = new Map<string, number>();
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
      const batch = shuffled.slice(i, i + 500);
      for (const d of batch) batchOf.set(d.id, i / 500);
      const results = await Promise.all(batch.map((d) => replica.store.saveReview(d, "fp")));
      expect(results.every((r) => r.kind === "stored")).to.equal(true);
    }
  });
  after(async () => {
    await replica?.stop();
    await redis?.destroy();
  });

  /** The full listing, read once with page_size 500: the order every other read must reproduce. */
  let order: Promise<string[]> | undefined;
  const fullOrder = () => (order ??= listAll(replica.client, 500).then(({ decisions }) => decisions.map((d) => d.id)));
  const newestFirst = async (ds: Decision[]) => {
    const want = new Set(ds.map((d) => d.id));
    return (await fullOrder()).filter((id) => want.has(id));
  };

  it("sees each of 10,000 decisions exactly once, newest first (page_size 500, and 333)", async () => {
    const c = replica.client;
    expect((await call(c, c.getSummary, {})).totalDecisions).to.equal(COUNT);
    const all = await fullOrder();
    expect(new Set(all).size).to.equal(COUNT);
    // Newest first: the batches were saved one after the other, so each is listed before the one before it.
    const batches = all.map((id) => batchOf.get(id)!);
    expect(batches).to.deep.equal([...batches].sort((x, y) => y - x));
    for (const size of [500, 333]) {
      const { decisions, pages } = await listAll(c, size);
      expect(decisions.map((d) => d.id)).to.deep.equal(all);
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
      expect(decisions.map((d) => d.id), JSON.stringify(filter)).to.deep.equal(await newestFirst(want));
    }
  });
});
