/**
 * Acknowledged means stored: reviews run through the real council process on a Redis with
 * appendonly yes and appendfsync always; both are killed with SIGKILL mid-load; after both restart,
 * every decision a client received reads back with GetDecision, and the counters match the
 * stored decisions (nothing half-written).
 */
import { expect } from "chai";
import type { CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import type { Decision as WireDecision } from "../../src/gen/council/v1/review.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { listAll, ServiceProcess } from "./helpers.js";

describe("Redis durability through gRPC", function () {
  this.timeout(90_000);
  let redis: RedisServer;
  let service: ServiceProcess | undefined;
  let client: CouncilServiceClient | undefined;

  before(async () => {
    redis = await RedisServer.start({ appendfsync: "always" });
  });
  after(async () => {
    client?.close();
    await service?.kill();
    await redis?.destroy();
  });

  it("a decision the client received survives kill -9 of the service and of Redis", async () => {
    const prefix = `${unique("dur")}:`;
    ({ service, client } = await ServiceProcess.start(redis.url, prefix));
    expect(service.log).to.include("appendonly yes, appendfsync always");

    const received = new Map<string, WireDecision>();
    let stop = false;
    const loop = async (c: CouncilServiceClient) => {
      while (!stop) {
        const r = await review(c, { suggestion: wireSuggestion(), requestId: unique("req") });
        const last = r.events[r.events.length - 1]?.event;
        if (last?.$case === "decision") received.set(last.value.id, last.value);
        if (r.error) return;
      }
    };
    const c = client;
    let loopsEnded = false;
    const loops = Promise.all(Array.from({ length: 6 }, () => loop(c))).finally(() => (loopsEnded = true));
    await waitFor(
      () => {
        if (loopsEnded) throw new Error(`the reviews stopped after ${received.size} decisions:\n${service!.log}`);
        return received.size >= 150;
      },
      { timeoutMs: 60_000, what: "150 decisions to be received" },
    );
    // Both die at once, with reviews in flight.
    await Promise.all([service.kill(), redis.kill()]);
    stop = true;
    await loops;
    client.close();
    expect(received.size).to.be.at.least(150);

    await redis.restart();
    ({ service, client } = await ServiceProcess.start(redis.url, prefix));
    for (const [id, decision] of received) {
      const got = await call(client, client.getDecision, { id });
      expect(got.decision, id).to.deep.equal(decision);
    }
    // Nothing half-written: the counters agree with what is stored and indexed.
    const summary = await call(client, client.getSummary, {});
    const { decisions } = await listAll(client, 500);
    expect(decisions.length).to.equal(summary.totalDecisions);
    expect(decisions.length).to.be.at.least(received.size);
    expect(Object.values(summary.byType).reduce((a, b) => a + b, 0)).to.equal(summary.totalDecisions);
    expect(summary.outcomes.pending).to.equal(summary.totalDecisions);
  });
});
