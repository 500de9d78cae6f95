import { expect } from "chai";
import { status } from "@grpc/grpc-js";
import { ResourceExhaustedError } from "../../src/domain/errors.js";
import { principal } from "../../src/domain/principal.js";
import { ReviewRateLimiter } from "../../src/server/auth/rate_limit.js";
import { toGrpcError } from "../../src/server/status.js";

/** A clock the test moves by hand, so that no test depends on how fast the machine is. */
function clock() {
  let t = 1_000_000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("review rate limit", () => {
  it("allows a burst of twice the rate, then the rate", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 5, now: c.now });
    expect(limiter.burst).to.equal(10);
    const allowed = () => Array.from({ length: 30 }, () => limiter.take("bot")).filter(Boolean).length;
    expect(allowed()).to.equal(10);
    c.advance(1000);
    expect(allowed()).to.equal(5);
    c.advance(200);
    expect(allowed()).to.equal(1);
    c.advance(60_000);
    expect(allowed()).to.equal(10);
  });

  it("keeps one bucket per principal", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 1, now: c.now });
    expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).to.deep.equal([true, true, false]);
    expect([limiter.take("b"), limiter.take("b"), limiter.take("b")]).to.deep.equal([true, true, false]);
  });

  it("allows at least one review in a burst when the rate is below one per second", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 0.2, now: c.now });
    expect([limiter.take("a"), limiter.take("a")]).to.deep.equal([true, false]);
    c.advance(4_999);
    expect(limiter.take("a")).to.equal(false);
    c.advance(1);
    expect(limiter.take("a")).to.equal(true);
  });

  it("answers RESOURCE_EXHAUSTED beyond the rate, saying when the next review is allowed", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 2, now: c.now });
    const bot = principal("deploy-agent", ["agent"]);
    for (let i = 0; i < 4; i++) limiter.check(bot);
    let err: unknown;
    try {
      limiter.check(bot);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ResourceExhaustedError);
    expect(toGrpcError(err).code).to.equal(status.RESOURCE_EXHAUSTED);
    expect((err as Error).message).to.equal(
      "review rate limit reached for deploy-agent: at most 2 per second (burst 4); the next one is allowed in about 500 ms",
    );
  });

  it("refuses a rate that is not a positive number", () => {
    for (const perSecond of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new ReviewRateLimiter({ perSecond })).to.throw(RangeError);
    }
  });

  it("never keeps more buckets than its cap, however many principals call", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 1, maxPrincipals: 100, now: c.now });
    for (let i = 0; i < 10_000; i++) {
      limiter.take(`jwt-subject-${i}`);
      expect(limiter.size).to.be.at.most(100);
    }
  });

  it("evicts full buckets first, so busy principals keep their state", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 1, maxPrincipals: 10, now: c.now });
    for (let i = 0; i < 9; i++) limiter.take(`idle-${i}`);
    c.advance(10_000); // every idle bucket has refilled: dropping it changes nothing
    limiter.take("busy");
    limiter.take("busy");
    expect(limiter.take("busy")).to.equal(false);
    limiter.take("newcomer"); // at the cap: the sweep removes the nine full buckets
    expect(limiter.size).to.equal(2);
    expect(limiter.take("busy")).to.equal(false);
  });

  it("evicts the least recently used when no bucket is full", () => {
    const c = clock();
    const limiter = new ReviewRateLimiter({ perSecond: 1, maxPrincipals: 10, now: c.now });
    for (let i = 0; i < 10; i++) limiter.take(`p-${i}`);
    limiter.take("p-0"); // p-0 is now the most recently used
    limiter.take("p-10"); // at the cap, nothing full: the oldest go, down to 90%
    expect(limiter.size).to.be.at.most(10);
    expect(limiter.take("p-0")).to.equal(false); // kept: its bucket is empty, as it should be
    expect(limiter.take("p-1")).to.equal(true); // evicted: a fresh bucket
  });
});
