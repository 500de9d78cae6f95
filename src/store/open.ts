/**
 * Opens the store a config names: Redis when REDIS_URL is set, else the in-process store; and the
 * reviewer hub that goes with it.
 */
import type { ReviewerHub } from "../app/reviewer_hub.js";
import { MemoryReviewerHub } from "../app/reviewer_hub_memory.js";
import { resolvePolicy, type Config } from "../config.js";
import type { Policy } from "../domain/policy.js";
import type { Logger } from "../log.js";
import { MemoryStore } from "./memory.js";
import { RedisStore } from "./redis.js";
import { RedisReviewerHub } from "./redis_reviewers.js";
import type { Store } from "./store.js";

/**
 * `policy` is the one the server runs (default: the one the config names): decisions stored before
 * SPEC §9 take their approvals from its `verdicts` section.
 */
export async function openStore(config: Config, log: Logger, policy?: Policy): Promise<Store> {
  if (config.redisUrl === undefined) {
    log.warn("no REDIS_URL: using the in-process store; decisions are lost when the process exits");
    return new MemoryStore();
  }
  return RedisStore.open({
    url: config.redisUrl,
    prefix: config.redisPrefix,
    log,
    buckets: config.redisBuckets,
    minReplicas: config.redisMinReplicas,
    verdicts: (policy ?? resolvePolicy(config.policy)).verdicts,
  });
}

/**
 * The reviewer hub for a store that `openStore` opened (SPEC section 11): on Redis, reviewers
 * connected to any replica of the keyspace serve reviews submitted to any (redis_reviewers.ts, on
 * connections of its own); in-process, this process's reviewers only. A policy without external
 * reviewers needs no hub across replicas (no reviewer agent can connect, and no review asks one).
 */
export async function openReviewerHub(config: Config, log: Logger, store: Store, policy: Policy): Promise<ReviewerHub> {
  if (config.redisUrl === undefined || !(store instanceof RedisStore) || !policy.reviewers.some((r) => r.external)) return new MemoryReviewerHub();
  return RedisReviewerHub.open({ url: config.redisUrl, keys: store.keys, log });
}
