/** Opens the store a config names: Redis when REDIS_URL is set, else the in-process store. */
import { resolvePolicy, type Config } from "../config.js";
import type { Policy } from "../domain/policy.js";
import type { Logger } from "../log.js";
import { MemoryStore } from "./memory.js";
import { RedisStore } from "./redis.js";
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
