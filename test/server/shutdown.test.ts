/**
 * Shutdown takes at most one grace period, and a caller that stops reading holds neither it nor
 * the status its call ends with.
 */
import { connect } from "node:net";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { wireSuggestion } from "../support/fixtures.js";
import { HealthCheckRequest } from "../../src/gen/grpc/health/v1/health.js";
import { rawCall, silentSession, silentWatch } from "../support/raw_grpc.js";
import { gate, review, startCouncil } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

describe("shutdown", function () {
  this.timeout(30_000);

  it("takes one grace period in all, even when a review outlasts it", async () => {
    const held = gate();
    const c = await startCouncil({ beforeVote: (_role, index) => (index === 1 ? held.promise : Promise.resolve()) });
    try {
      const pending = review(c.client, { suggestion: wireSuggestion() });
      await waitFor(() => c.council.reviewsInFlight === 1, { what: "the review to start" });
      const graceMs = 1500;
      const started = performance.now();
      await c.server.shutdown(graceMs);
      const took = performance.now() - started;
      // Waiting for calls and then for reviews, each up to the grace period, took twice as long.
      expect(took).to.be.at.least(graceMs - 50);
      expect(took).to.be.below(graceMs * 1.4);
      held.open();
      await pending;
    } finally {
      held.open();
      await c.stop();
    }
  });

  it("is not held by a watcher that stops reading, which still reads UNAVAILABLE", async () => {
    const c = await startCouncil();
    const session = silentSession(c.addr);
    try {
      const silent = await silentWatch(session);
      // The review's first event goes to the silent watcher and stays stuck in its stream.
      await review(c.client, { suggestion: wireSuggestion() });
      const graceMs = 10_000;
      const started = performance.now();
      await c.server.shutdown(graceMs);
      expect(performance.now() - started).to.be.below(3000);
      const end = await within(silent.ended, { what: "the silent watch to end" });
      // Its trailers cannot pass the message stuck before them: the stream is reset with the code
      // gRPC clients read as UNAVAILABLE (watch again, on another replica), not CANCELLED.
      expect(end).to.deep.include({ code: status.UNAVAILABLE, reset: true });
    } finally {
      session.destroy();
      await c.stop();
    }
  });

  it("is not held by a metrics client that sends half a request", async () => {
    const c = await startCouncil({ metricsAddr: "127.0.0.1:0" });
    const socket = connect({ port: c.server.metricsPort!, host: "127.0.0.1" });
    try {
      await within(new Promise((resolve) => socket.once("connect", resolve)), { what: "a connection to the metrics port" });
      socket.write("GET /metr");
      const started = performance.now();
      await c.server.shutdown(2000);
      expect(performance.now() - started).to.be.below(2000);
    } finally {
      socket.destroy();
      await c.stop();
    }
  });

  it("is not held by a health watcher that stops reading", async () => {
    const c = await startCouncil();
    const session = silentSession(c.addr);
    try {
      // Its first status message is stuck in the stream, so its end (trailers) cannot leave.
      const silent = rawCall(session, "/grpc.health.v1.Health/Watch", HealthCheckRequest.encode({ service: "" }).finish());
      await within(silent.headers, { what: "the health watch's response headers" });
      const started = performance.now();
      await c.server.shutdown(10_000);
      expect(performance.now() - started).to.be.below(4000);
      expect((await within(silent.ended, { what: "the silent health watch to end" })).code).to.equal(status.UNAVAILABLE);
    } finally {
      session.destroy();
      await c.stop();
    }
  });
});
