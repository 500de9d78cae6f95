/**
 * AwaitDecision as a server resource: awaits count with watches against COUNCIL_MAX_WATCHERS (each
 * holds a store subscription), end when their caller cancels (freeing their place), and end with
 * UNAVAILABLE at shutdown so that the caller awaits again on another replica.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { AwaitDecisionResponse, CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import { startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { SUGGESTIONS } from "./suite.js";

async function pendingDecision(c: Running): Promise<string> {
  const stream = c.client.reviewSuggestion({ suggestion: SUGGESTIONS.humanApprove(), requestId: "", dryRun: false, supersedes: "" });
  let id = "";
  stream.on("data", (e: { decisionId: string }) => (id = e.decisionId));
  await within(new Promise((resolve) => stream.on("end", resolve)), { what: "the review to end" });
  return id;
}

function awaitOn(client: CouncilServiceClient, decisionId: string) {
  const stream = client.awaitDecision({ decisionId }, new Metadata(), { deadline: Date.now() + 20_000 });
  const states: AwaitDecisionResponse[] = [];
  stream.on("data", (m: AwaitDecisionResponse) => states.push(m));
  const ended = new Promise<ServiceError | undefined>((resolve) => {
    stream.on("error", resolve);
    stream.on("end", () => resolve(undefined));
  });
  return {
    stream,
    states,
    ended: () => within(ended, { what: "the await to end" }),
    first: () => waitFor(() => states.length > 0, { what: "the await's first state" }),
  };
}

describe("AwaitDecision bounds", function () {
  this.timeout(30_000);

  it("counts awaits with watches against COUNCIL_MAX_WATCHERS, and frees the place when the caller cancels", async () => {
    const c = await startCouncil({ maxWatchers: 1 });
    try {
      const id = await pendingDecision(c);
      const first = awaitOn(c.client, id);
      await first.first();
      const second = awaitOn(c.client, id);
      const refused = await second.ended();
      expect(refused?.code).to.equal(status.RESOURCE_EXHAUSTED);
      expect(refused?.details).to.match(/watches and awaits/);
      const watch = c.client.watchDecisions({ decisionType: 0, includeVotes: false, includeUpdates: false });
      const watchEnded = await within(new Promise<ServiceError>((resolve) => watch.on("error", resolve)), { what: "the watch to be refused" });
      expect(watchEnded.code).to.equal(status.RESOURCE_EXHAUSTED);
      first.stream.cancel();
      expect((await first.ended())?.code).to.equal(status.CANCELLED);
      // The place is free again once the server has seen the cancel.
      await waitFor(
        async () => {
          const again = awaitOn(c.client, id);
          const done = await Promise.race([again.first().then(() => "open"), again.ended().then((e) => (e ? "refused" : "ended"))]);
          again.stream.cancel();
          return done === "open";
        },
        { what: "an await to be admitted again" },
      );
    } finally {
      await c.stop();
    }
  });

  it("ends open awaits with UNAVAILABLE at shutdown", async () => {
    const c = await startCouncil();
    try {
      const id = await pendingDecision(c);
      const w = awaitOn(c.client, id);
      await w.first();
      const shutdown = c.server.shutdown(5000);
      const err = await w.ended();
      expect(err?.code).to.equal(status.UNAVAILABLE);
      await shutdown;
    } finally {
      // A second shutdown finds nothing left to do; stop() also closes the clients and the store.
      await c.stop();
    }
  });
});
