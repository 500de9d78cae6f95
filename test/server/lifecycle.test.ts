import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { HealthCheckResponse_ServingStatus, HealthClient, type HealthCheckResponse } from "../../src/gen/grpc/health/v1/health.js";
import { wireSuggestion } from "../support/fixtures.js";
import { call, gate, review, startCouncil } from "../support/server.js";
import { nextEvent, within } from "../support/wait.js";

function healthOf(addr: string, service = ""): Promise<HealthCheckResponse_ServingStatus | ServiceError> {
  const client = new HealthClient(addr, credentials.createInsecure());
  return new Promise((resolve) =>
    client.check({ service }, (err, res) => {
      client.close();
      resolve(err ?? res.status);
    }),
  );
}

describe("health and shutdown", () => {
  it("reports SERVING for the server and CouncilService, NOT_FOUND for unknown services", async () => {
    const c = await startCouncil();
    try {
      expect(await healthOf(c.addr)).to.equal(HealthCheckResponse_ServingStatus.SERVING);
      expect(await healthOf(c.addr, "council.v1.CouncilService")).to.equal(HealthCheckResponse_ServingStatus.SERVING);
      expect(((await healthOf(c.addr, "nope")) as ServiceError).code).to.equal(status.NOT_FOUND);
    } finally {
      await c.stop();
    }
  });

  it("finishes a review in flight at shutdown, then refuses new calls", async () => {
    const held = gate();
    const atFourthVote = gate();
    const c = await startCouncil({
      beforeVote: async (_r, i) => {
        if (i !== 3) return;
        atFourthVote.open();
        await held.promise;
      },
    });
    // A health watch opened now reports NOT_SERVING as soon as shutdown begins.
    const healthClient = new HealthClient(c.addr, credentials.createInsecure());
    const healthWatch = healthClient.watch({ service: "" });
    healthWatch.on("error", () => undefined);
    const first = await nextEvent<HealthCheckResponse>(healthWatch, "data", { what: "the health watch's first status" });
    expect(first.status).to.equal(HealthCheckResponse_ServingStatus.SERVING);

    const inFlight = review(c.client, { suggestion: wireSuggestion(), requestId: "" });
    await within(atFourthVote.promise, { what: "the review to reach its fourth vote" });
    expect(c.council.reviewsInFlight).to.equal(1);
    const notServing = nextEvent<HealthCheckResponse>(healthWatch, "data", { what: "NOT_SERVING from the health watch" });
    const stopping = c.server.shutdown(5000);
    expect((await notServing).status).to.equal(HealthCheckResponse_ServingStatus.NOT_SERVING);
    // Shutdown is under way: new calls are refused while the review is still held.
    const refusedWhileHeld = await call(c.client, c.client.getSummary, {}).catch((e: ServiceError) => e);
    expect((refusedWhileHeld as ServiceError).code).to.equal(status.UNAVAILABLE);
    expect(c.council.reviewsInFlight).to.equal(1);
    // Let it finish within the grace period.
    held.open();
    const result = await inFlight;
    expect(result.error).to.equal(undefined);
    expect(result.events.at(-1)?.event?.$case).to.equal("decision");
    await stopping;
    const refused = await call(c.client, c.client.getSummary, {}).catch((e: ServiceError) => e);
    expect((refused as ServiceError).code).to.equal(status.UNAVAILABLE);
    c.client.close();
    healthClient.close();
  });
});
