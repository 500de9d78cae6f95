/**
 * The store's estimate of the Redis server's clock, which reads use to show a pending decision
 * past its expiry as expired: it must never run ahead of the server's TIME, which the scripts
 * judge by. Otherwise a replica shows a decision expired while a verdict given right after that
 * read is still applied to it. A replica whose commands reach Redis late while it measures the
 * clock (a congested path, a busy client) is where a midpoint estimate runs ahead.
 */
import { expect } from "chai";
import { RedisStore } from "../../src/store/redis.js";
import { pendingDecision, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp_proxy.js";
import { waitFor } from "../support/wait.js";
import { silent } from "./helpers.js";

/** A proxy in front of Redis that holds what the client sends for `delayMs` (replies pass at once). */
async function slowRequests(redisPort: number): Promise<TcpProxy & { delayMs: number }> {
  const proxy = Object.assign(
    await startTcpProxy(redisPort, (client, upstream) => {
      client.on("data", (chunk: Buffer) => {
        if (proxy.delayMs === 0) upstream.write(chunk);
        else setTimeout(() => upstream.write(chunk), proxy.delayMs);
      });
      upstream.on("data", (chunk: Buffer) => client.write(chunk));
    }),
    { delayMs: 0 },
  );
  return proxy;
}

describe("Redis store: the server's clock as a replica estimates it", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let proxy: TcpProxy & { delayMs: number };
  const stores: RedisStore[] = [];

  before(async () => {
    redis = await RedisServer.start();
    proxy = await slowRequests(redis.port);
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await proxy?.close();
    await redis?.destroy();
  });

  it("is never ahead of TIME: once a replica reads a decision expired, a verdict written after that read expires it instead", async () => {
    const prefix = `${unique("clock")}:`;
    // The reader measures the clock (at open) while its commands take 300 ms to reach Redis; then
    // the path is quick again. Neither store sweeps during the test.
    proxy.delayMs = 300;
    const reader = await RedisStore.open({ url: `redis://127.0.0.1:${proxy.port}`, prefix, log: silent, sweepMs: 600_000, operationTimeoutMs: 5000 });
    stores.push(reader);
    proxy.delayMs = 0;
    const writer = await RedisStore.open({ url: redis.url, prefix, log: silent, sweepMs: 600_000 });
    stores.push(writer);

    const d = pendingDecision({}, 1500);
    await writer.saveReview(d, "fp");
    const read = await writer.getDecisionForUpdate(d.id);
    expect(read?.decision.status).to.equal("pending");
    await waitFor(async () => (await reader.getDecision(d.id))?.status === "expired", { what: "the reader to show it expired", intervalMs: 2 });
    const result = await writer.updateLifecycle(d.id, read!.revision, {
      status: "approved",
      verdicts: [{ by: "alice", verdict: "approve", comment: "", givenAt: new Date(), requestId: "" }],
      supersededBy: "",
    });
    expect(result.kind, "the verdict was applied to a decision a replica already showed expired").to.equal("expired");
    expect((await writer.getDecision(d.id))?.status).to.equal("expired");
  });
});
