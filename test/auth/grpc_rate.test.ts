/**
 * COUNCIL_REVIEW_RATE through gRPC (SPEC §8): each principal has its own budget of reviews; the
 * one that spends it gets RESOURCE_EXHAUSTED while another is unaffected. A rate of 0.01 per
 * second gives a burst of one review and the next token in 100 s, so no test run is slow enough
 * to see a refill: the outcome does not depend on timing.
 */
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { createLogger } from "../../src/log.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import type { Store } from "../../src/store/store.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { startCouncil, type Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { authFileIn, callLines, reviewOutcome, unaryOutcome, writeAuthFile } from "./grpc_helpers.js";
import { captureLog, tempDir, type LogLine } from "./helpers.js";

for (const kind of ["memory", "redis"] as const) {
  describe(`review rate per principal through gRPC (${kind} store)`, function () {
    this.timeout(60_000);
    let redis: RedisServer | undefined;
    let dir: string;
    let remove: () => Promise<void>;
    let c: Running;
    let lines: LogLine[];

    before(async () => {
      ({ dir, remove } = await tempDir());
      if (kind === "redis") redis = await RedisServer.start();
      const store: Store = redis ? await RedisStore.open({ url: redis.url, prefix: `${unique("rate")}:`, log: createLogger("silent") }) : new MemoryStore();
      await writeAuthFile(authFileIn(dir), [
        { name: "busy-agent", roles: ["agent"], tokens: ["council_busy"] },
        { name: "calm-agent", roles: ["agent"], tokens: ["council_calm"] },
        { name: "alice", roles: ["approver"], tokens: ["council_alice"] },
      ]);
      const captured = captureLog();
      lines = captured.lines;
      c = await startCouncil({ store, authFile: authFileIn(dir), reviewRate: 0.01, log: captured.log });
    });
    after(async () => {
      await c.stop();
      await redis?.destroy();
      await remove();
    });

    it("answers RESOURCE_EXHAUSTED to the principal beyond its rate, and not to another", async () => {
      const busy = c.connect({ token: "council_busy" });
      const calm = c.connect({ token: "council_calm" });
      const first = await reviewOutcome(busy, { suggestion: wireSuggestion() });
      expect(first.code, first.details).to.equal(status.OK);
      const stored = (first.response!.at(-1) as { decisionId: string }).decisionId;

      // Every review call counts, a dry run as much as a new review.
      for (const request of [{ suggestion: wireSuggestion(), dryRun: true }, { suggestion: wireSuggestion() }]) {
        const refused = await reviewOutcome(busy, request);
        expect(refused.code, refused.details).to.equal(status.RESOURCE_EXHAUSTED);
        expect(refused.details).to.match(/^review rate limit reached for busy-agent: at most 0.01 per second \(burst 1\)/);
        expect(refused.response).to.deep.equal([]);
      }
      // Nothing was stored by the refused calls.
      const summary = await unaryOutcome(busy, "getSummary", {});
      expect((summary.response as { totalDecisions: number }).totalDecisions).to.equal(1);
      // Other calls of the same principal are not limited.
      expect((await unaryOutcome(busy, "getDecision", { id: stored })).code).to.equal(status.OK);

      const other = await reviewOutcome(calm, { suggestion: wireSuggestion() });
      expect(other.code, other.details).to.equal(status.OK);

      // A caller without the role is told that first; its refusals do not spend anyone's budget.
      const denied = await reviewOutcome(c.connect({ token: "council_alice" }), { suggestion: wireSuggestion(), dryRun: true });
      expect(denied.code).to.equal(status.PERMISSION_DENIED);

      await waitFor(() => callLines(lines, "ReviewSuggestion").length === 5, { what: "five review log lines" });
      expect(callLines(lines, "ReviewSuggestion").map((l) => [l.principal, l.status])).to.deep.equal([
        ["busy-agent", "OK"],
        ["busy-agent", "RESOURCE_EXHAUSTED"],
        ["busy-agent", "RESOURCE_EXHAUSTED"],
        ["calm-agent", "OK"],
        ["alice", "PERMISSION_DENIED"],
      ]);
    });
  });
}
