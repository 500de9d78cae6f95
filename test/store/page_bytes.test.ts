/**
 * A page's byte budget (PageRequest.maxBytes) on both stores: the page ends before the item that
 * would pass it, holds at least one, and `next` continues from the last item it holds, so that
 * walking the pages returns every item once, in order.
 */
import { expect } from "chai";
import { decisionBytes, lessonBytes } from "../../src/domain/limits.js";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import type { Page, Store } from "../../src/store/store.js";
import { suggestionAtLimits } from "../support/at_limits.js";
import { decision, suggestion, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";

async function walk<T>(read: (cursor: string | undefined) => Promise<Page<T>>): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 50; i++) {
    const page = await read(cursor);
    pages.push(page.items);
    cursor = page.next;
    if (cursor === undefined) return pages;
  }
  throw new Error("more than 50 pages");
}

function pageBytesSuite(name: string, open: () => Promise<Store>) {
  describe(`page byte budget: ${name}`, function () {
    this.timeout(30_000);
    let store: Store;
    beforeEach(async () => (store = await open()));
    afterEach(() => store.close());

    it("ends decision pages before the budget, at least one item each, and continues from the last", async () => {
      const sug = suggestion({ id: unique("sug") });
      const big = { ...suggestionAtLimits(), id: sug.id };
      // Oldest first: small, big, small, small, big, small.
      const made = [];
      for (const s of [sug, big, sug, sug, big, sug]) {
        const d = decision({ suggestion: s });
        await store.saveReview(d, "fp");
        made.push(d);
      }
      const budget = decisionBytes(made[1]!) + 3 * decisionBytes(made[0]!);
      const pages = await walk((cursor) => store.listDecisions({ suggestionId: sug.id }, { limit: 500, cursor, maxBytes: budget }));
      expect(pages.flat().map((d) => d.id)).to.deep.equal(made.map((d) => d.id).reverse());
      for (const page of pages) {
        expect(page.length).to.be.at.least(1);
        if (page.length > 1) expect(page.reduce((n, d) => n + decisionBytes(d), 0)).to.be.at.most(budget);
      }
      // Newest first: [small, big, small, small] fit; then [big, small].
      expect(pages.map((p) => p.length)).to.deep.equal([4, 2]);
      // A budget smaller than any one decision still makes progress, one decision a page.
      const tiny = await walk((cursor) => store.listDecisions({ suggestionId: sug.id }, { limit: 500, cursor, maxBytes: 1 }));
      expect(tiny.map((p) => p.length)).to.deep.equal([1, 1, 1, 1, 1, 1]);
    });

    it("ends lesson pages before the budget, and continues from the last", async () => {
      const d = decision();
      await store.saveReview(d, "fp");
      const text = "n".repeat(65_536);
      for (let i = 0; i < 7; i++) {
        await store.recordOutcome(d.id, { outcome: "success", notes: text, lessons: `${i}`, at: new Date(), requestId: "", fingerprint: `f${i}`, recordedBy: "anonymous" });
      }
      const one = lessonBytes({ decisionId: d.id, outcome: "success", notes: text, lessons: "0", recordedAt: new Date(), recordedBy: "anonymous" });
      const pages = await walk((cursor) => store.listLessons({ limit: 500, cursor, maxBytes: 3 * one }));
      expect(pages.map((p) => p.length)).to.deep.equal([3, 3, 1]);
      expect(pages.flat().map((l) => l.lessons)).to.deep.equal(["6", "5", "4", "3", "2", "1", "0"]);
    });
  });
}

pageBytesSuite("in-process", async () => new MemoryStore());

describe("on Redis", function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(async () => server?.destroy());
  pageBytesSuite("redis", () => RedisStore.open({ url: server.url, prefix: `${unique("t")}:`, log: createLogger("silent") }));
});
