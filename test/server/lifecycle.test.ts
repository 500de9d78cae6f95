import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { HealthCheckResponse_ServingStatus, HealthClient } from "../../src/gen/grpc/health/v1/health.js";
import { wireSuggestion } from "../support/fixtures.js";
import { call, gate, review, startCouncil } from "../support/server.js";

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
    const c = await startCouncil({ beforeVote: async (_r, i) => (i === 3 ? held.promise : undefined) });
    const inFlight = review(c.client, { suggestion: wireSuggestion(), requestId: "" });
    await new Promise((r) => setTimeout(r, 100));
    expect(c.council.reviewsInFlight).to.equal(1);
    const stopping = c.server.shutdown(5000);
    setTimeout(held.open, 200);
    const result = await inFlight;
    expect(result.error).to.equal(undefined);
    expect(result.events.at(-1)?.event?.$case).to.equal("decision");
    await stopping;
    const refused = await call(c.client, c.client.getSummary, {}).catch((e: ServiceError) => e);
    expect((refused as ServiceError).code).to.equal(status.UNAVAILABLE);
    c.client.close();
  });
});
