/**
 * The human-verdicts suite (test/lifecycle/suite.ts) on Redis: two replicas — two Council servers,
 * each with its own RedisStore (its own connections, event reader and expiry sweeper) — on one key
 * prefix, on one redis-server and on a 3-master cluster. A verdict given on one replica reaches the
 * other only through Redis: its update stream, its counters and indexes.
 */
import { RedisStore } from "../../src/store/redis.js";
import { unique } from "../support/fixtures.js";
import { RedisCluster, RedisServer } from "../support/redis.js";
import { startCouncil, type Running } from "../support/server.js";
import { lifecycleSuite } from "../lifecycle/suite.js";
import { silent } from "./helpers.js";

for (const topology of ["one redis-server", "a 3-master cluster"] as const) {
  describe(`Redis: ${topology}`, function () {
    this.timeout(120_000);
    let url = "";
    let destroy: (() => Promise<void>) | undefined;

    before(async () => {
      if (topology === "one redis-server") {
        const server = await RedisServer.start();
        url = server.url;
        destroy = () => server.destroy();
      } else {
        const cluster = await RedisCluster.start(3);
        url = cluster.url;
        destroy = () => cluster.destroy();
      }
    });
    after(async () => destroy?.());

    lifecycleSuite(`two replicas on ${topology}`, async (options) => {
      const prefix = `${unique("life")}:`;
      // Each replica opens its own store, as separate processes would; the policy's verdicts
      // section is what decisions stored before SPEC §9 read with.
      const replica = async (): Promise<Running> => {
        const store = await RedisStore.open({ url, prefix, log: silent, buckets: 8, verdicts: options.policy?.verdicts });
        return startCouncil({ ...options, store });
      };
      const a = await replica();
      const b = await replica().catch(async (err: unknown) => {
        await a.stop();
        throw err;
      });
      return {
        a,
        b,
        async stop() {
          await Promise.all([a.stop(), b.stop()]);
        },
      };
    });
  });
}
