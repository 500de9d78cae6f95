/**
 * A review's event on the replica that stored it is sent from the decision it stored, without
 * reading it back from Redis (issue 12, fan-out): the watchers of that replica get exactly what
 * the watchers of another replica, which read it from Redis, get.
 */
import { expect } from "chai";
import { DEFAULT_VERDICTS, initialLifecycle } from "../../src/domain/lifecycle.js";
import type { Decision } from "../../src/domain/model.js";
import { suggestionFingerprint } from "../../src/domain/identity.js";
import { RedisStore } from "../../src/store/redis.js";
import { decision, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { within } from "../support/wait.js";
import { silent } from "./helpers.js";

describe("Redis watch: reviews stored by this replica", function () {
  this.timeout(60_000);
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => {
    await server?.destroy();
  });

  it("sends the stored decision itself, equal to what another replica reads back", async () => {
    const prefix = `${unique("here")}:`;
    const a = await RedisStore.open({ url: server.url, prefix, log: silent });
    const b = await RedisStore.open({ url: server.url, prefix, log: silent });
    try {
      const seen = { a: [] as Decision[], b: [] as Decision[] };
      const live = (store: RedisStore, into: Decision[]) =>
        new Promise<() => void>((resolve, reject) => {
          const stop = store.subscribe((d) => into.push(d), reject, () => resolve(stop));
        });
      const stops = await Promise.all([live(a, seen.a), live(b, seen.b)]);
      // As the council stores a review: the lifecycle its type starts with (a review event carries
      // no verdicts; they come later, in update events).
      const types = ["auto_approve", "human_approve", "reject", "escalate", "defer"] as const;
      const made = Array.from({ length: 20 }, (_, i) => {
        const d = decision({ decision: types[i % types.length]!, ...(i % 2 === 0 ? { requestId: unique("req") } : {}) });
        return { ...d, ...initialLifecycle(DEFAULT_VERDICTS, d.decision, d.decidedAt) };
      });
      for (const d of made) expect((await a.saveReview(d, suggestionFingerprint(d.suggestion))).kind).to.equal("stored");
      await within(
        (async () => {
          while (seen.a.length < made.length || seen.b.length < made.length) await new Promise((r) => setImmediate(r));
        })(),
        { what: "both replicas' watchers to get every review", timeoutMs: 20_000 },
      );
      for (const s of stops) s();
      expect(seen.a.map((d) => d.id)).to.deep.equal(made.map((d) => d.id));
      // The replica that stored them sends the objects it stored (no read back) ...
      expect(seen.a.every((d, i) => d === made[i])).to.equal(true);
      // ... which are what the other replica reads from Redis, field for field.
      expect(seen.b).to.deep.equal(seen.a);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
