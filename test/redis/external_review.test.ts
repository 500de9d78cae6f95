/** The external-review cases (test/external/review_cases.ts) on Redis, one replica with the Redis reviewer hub. */
import { RedisStore } from "../../src/store/redis.js";
import { RedisReviewerHub } from "../../src/store/redis_reviewers.js";
import { externalReviewCases } from "../external/review_cases.js";
import { unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { startCouncil } from "../support/server.js";
import { silent } from "./helpers.js";

describe("external reviewers on Redis", function () {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(async () => {
    await redis?.destroy();
  });

  externalReviewCases("Redis", async (options) => {
    const store = await RedisStore.open({ url: redis.url, prefix: `${unique("ext")}:`, log: silent });
    const reviewerHub = await RedisReviewerHub.open({ url: redis.url, keys: store.keys, log: silent });
    return startCouncil({ ...options, store, reviewerHub });
  });
});
