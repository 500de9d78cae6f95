/**
 * Update events on Redis carry only ids and a few markers, and the reader fetches the decision when
 * it delivers one. Changes made faster than it reads (here: four, in one MULTI, so that the reader
 * can only see them after all four) are still each sent once, as the decision was right after that
 * change: the verdicts it had then, its status then, the outcome recorded then (from the lesson that
 * kept it, when another outcome replaced it since).
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { Decision, Verdict } from "../../src/domain/model.js";
import { encodeLesson, encodeVerdicts } from "../../src/store/redis_codec.js";
import { RedisStore } from "../../src/store/redis.js";
import { pendingDecision, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { waitFor, within } from "../support/wait.js";
import { silent } from "./helpers.js";

const lua = (name: string) => readFileSync(new URL(`../../src/store/lua/${name}.lua`, import.meta.url), "utf8");

describe("Update events of changes made faster than the reader reads", function () {
  this.timeout(30_000);
  let server: RedisServer;
  before(async () => {
    server = await RedisServer.start();
  });
  after(async () => server?.destroy());

  it("sends each change once, as the decision was right after it", async () => {
    const store = await RedisStore.open({ url: server.url, prefix: `${unique("upd")}:`, log: silent, buckets: 2 });
    const redis = new Redis(server.port, "127.0.0.1");
    const updates: Decision[] = [];
    let failed: Error | undefined;
    let live!: () => void;
    const isLive = new Promise<void>((r) => (live = r));
    const leave = store.subscribe(() => undefined, (e) => (failed = e), live, (d) => updates.push(d));
    try {
      await within(isLive, { what: "the subscription to be live" });
      const d = pendingDecision({ decision: "escalate", approvalsRequired: 2 });
      await store.saveReview(d, "fp");
      const k = store.keys;
      const b = k.bucketOfId(d.id);
      const v1: Verdict = { by: "alice", verdict: "approve", comment: "", givenAt: new Date(1_800_000_000_000), requestId: "" };
      const v2: Verdict = { ...v1, by: "bob", comment: "fine" };
      const change = (revision: number, from: string, to: string, verdicts: Verdict[]) => [
        "EVAL",
        lua("update_lifecycle"),
        "20",
        k.decision(b, d.id),
        k.counts(b),
        k.updates(b),
        k.expiries(b),
        ...k.statusIndexes(b, "pending", d.decision, d.suggestionId),
        ...k.statusIndexes(b, "expired", d.decision, d.suggestionId),
        ...k.statusIndexes(b, from as "pending", d.decision, d.suggestionId),
        ...k.statusIndexes(b, to as "pending", d.decision, d.suggestionId),
        "set",
        d.id,
        String(revision),
        from,
        to,
        encodeVerdicts(verdicts),
        "",
        "verdict",
        randomUUID(),
        "1000",
        String(verdicts.length),
      ];
      const at = (n: number) => new Date(1_800_000_100_000 + n);
      const outcome = (o: "success" | "failure", lessons: string, n: number) => [
        "EVAL",
        lua("record_outcome"),
        "6",
        k.decision(b, d.id),
        k.counts(b),
        k.lessons(b),
        k.lessonDocs(b),
        k.outcomeRequest(b, d.id, "ops", ""),
        k.updates(b),
        o,
        "",
        lessons,
        String(at(n).getTime()),
        d.id,
        encodeLesson({ decisionId: d.id, outcome: o, lessons, notes: "", recordedAt: at(n), recordedBy: "ops" }),
        randomUUID(),
        "",
        "",
        "ops",
        "any",
        "",
        "1000",
      ];
      const multi = redis.multi();
      for (const command of [change(1, "pending", "pending", [v1]), change(2, "pending", "approved", [v1, v2]), outcome("success", "first", 1), outcome("failure", "second", 2)]) {
        multi.call(command[0]!, ...command.slice(1));
      }
      const replies = (await multi.exec())!;
      for (const [err] of replies) expect(err).to.equal(null);

      await waitFor(() => updates.length >= 4, { what: "four update events" });
      expect(failed).to.equal(undefined);
      const none = { outcome: undefined, outcomeNotes: "", lessonsLearned: "", implementedAt: undefined, outcomeRecordedBy: "" };
      expect(updates).to.deep.equal([
        { ...d, ...none, status: "pending", verdicts: [v1] },
        { ...d, ...none, status: "approved", verdicts: [v1, v2] },
        { ...d, status: "approved", verdicts: [v1, v2], outcome: "success", outcomeNotes: "", lessonsLearned: "first", implementedAt: at(1), outcomeRecordedBy: "ops" },
        { ...d, status: "approved", verdicts: [v1, v2], outcome: "failure", outcomeNotes: "", lessonsLearned: "second", implementedAt: at(2), outcomeRecordedBy: "ops" },
      ]);
    } finally {
      leave();
      redis.disconnect();
      await store.close();
    }
  });
});
