/**
 * The approver's round trip through the CLI on Redis, where a verdict must travel through the
 * store: two replicas on one key prefix of a real redis-server; reviews go to replica A, and the
 * CLI reads the queue, awaits, watches and approves on replica B (and the other way round). Also
 * an expiry on Redis (exit 5) and a Redis that is gone (exit 1, one line).
 */
import { expect } from "chai";
import { parsePolicy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import type { Running } from "../support/server.js";
import { waitFor } from "../support/wait.js";
import { startReplica } from "../redis/helpers.js";
import { buildCli, council, expectExit, startCouncilCli, type LiveCouncil } from "./helpers.js";

const POLICY = parsePolicy(
  "cli-redis",
  { verdicts: { human_approve: { approvals: 1, expires_after: "1h" }, defer: { approvals: 1, expires_after: "1s" } } },
  PRESETS.default,
);
const HUMAN = ["--risk", "medium", "--impact", "low"];
const DEFER = ["--risk", "high", "--impact", "transformative"];

type Json = Record<string, unknown>;

describe("council CLI on Redis: two replicas", function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let a: Running;
  let b: Running;
  let onA: string[];
  let onB: string[];
  let liveOnB: () => number;
  const live: LiveCouncil[] = [];

  before(async () => {
    await buildCli();
    redis = await RedisServer.start();
    const prefix = `${unique("cli")}:`;
    a = await startReplica(redis.url, prefix, { policy: POLICY, buckets: 4 });
    b = await startReplica(redis.url, prefix, { policy: POLICY, buckets: 4 });
    liveOnB = () => b.server.watchesLive;
    onA = ["--addr", a.addr];
    onB = ["--addr", b.addr];
  });
  afterEach(() => {
    for (const l of live.splice(0)) l.kill("SIGKILL");
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await redis?.destroy();
  });

  async function submit(on: string[], flags: string[], title: string): Promise<string> {
    const r = await council(["review", "--title", title, ...flags, "-o", "json", ...on]);
    return (r.json().at(-1) as { decisionId: string }).decisionId;
  }

  it("pending → get → approve on one replica, await and watch on the other, then outcome and lessons", async () => {
    const first = await submit(onA, HUMAN, "First in the queue");
    const second = await submit(onA, HUMAN, "Second in the queue");

    const queue = await council(["pending", "-o", "json", ...onB]);
    expectExit(queue, 0);
    expect(queue.json().map((d) => d.id)).to.deep.equal([first, second]);
    const table = await council(["pending", ...onB]);
    expect(table.lines.slice(1).map((l) => l.split(/\s+/)[0])).to.deep.equal([first, second]);

    const shown = await council(["get", first, ...onB]);
    expectExit(shown, 0);
    expect(shown.lines[0]).to.match(new RegExp(`^${first} {2}HUMAN_APPROVE {2}PENDING {2}0 of 1 approvals`));

    const watchesBefore = liveOnB();
    const awaiting = startCouncilCli(["await", first, "-o", "json", ...onB]);
    const watching = startCouncilCli(["watch", "--no-votes", "-o", "json", ...onB]);
    live.push(awaiting, watching);
    await awaiting.lines(1);
    await waitFor(() => liveOnB() > watchesBefore, { what: "the CLI's watch on B to be live", timeoutMs: 20_000 });

    const approved = await council(["approve", first, "--comment", "Checked", ...onA]);
    expectExit(approved, 0);
    const done = await awaiting.exited();
    expectExit(done, 0);
    const states = done.json<{ decision: Json }>().map((s) => s.decision.status);
    expect(states).to.deep.equal(["DECISION_STATUS_PENDING", "DECISION_STATUS_APPROVED"]);

    // The watch on B sees the approval given through A (an update), and a new review made on A.
    const third = await submit(onA, HUMAN, "Third");
    const events = () => watching.stdout().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { decisionId: string; decision: Json });
    await waitFor(() => events().some((e) => e.decisionId === third), { what: "the watch on B to see the review made on A", timeoutMs: 20_000 });
    expect(events().find((e) => e.decisionId === first)?.decision.status, "the approval, as an update").to.equal("DECISION_STATUS_APPROVED");

    const rejected = await council(["reject", second, "--comment", "Not now", ...onB]);
    expectExit(rejected, 0);
    expectExit(await council(["await", second, ...onA]), 3);
    expect((await council(["pending", "-o", "json", ...onA])).json().map((d) => d.id)).to.deep.equal([third]);

    const outcome = await council(["outcome", first, "success", "--lessons", "Canary first", ...onB]);
    expectExit(outcome, 0);
    const lessons = await council(["lessons", "--limit", "1", "-o", "json", ...onA]);
    expect(lessons.json()[0]).to.include({ decisionId: first, outcome: "OUTCOME_SUCCESS", lessons: "Canary first" });
    const summary = await council(["summary", "-o", "json", ...onA]);
    expect(summary.json()[0]!.byStatus).to.include({ pending: 1, approved: 1, rejected: 1 });
  });

  it("a DEFER that nobody answers expires on Redis: review --wait and await exit 5", async () => {
    const r = await council(["review", "--title", "Nobody answers", ...DEFER, "--wait", "-o", "json", ...onA]);
    expectExit(r, 5);
    const last = r.json().at(-1) as { decision: Json };
    expect(last.decision.status).to.equal("DECISION_STATUS_EXPIRED");
    expectExit(await council(["await", last.decision.id as string, ...onB]), 5);
  });

  it("Redis gone: exit 1, one line, fast", async () => {
    const other = await RedisServer.start();
    const lone = await startReplica(other.url, `${unique("gone")}:`, { policy: POLICY });
    try {
      await other.destroy();
      const started = Date.now();
      const r = await council(["list", "--addr", lone.addr]);
      expectExit(r, 1);
      expect(r.stderr).to.match(/^UNAVAILABLE: .+\n$/);
      expect(Date.now() - started).to.be.lessThan(15_000);
      // The server itself is up, and says it cannot serve: health exits 1.
      await waitFor(async () => (await council(["health", "--addr", lone.addr])).stdout === "NOT_SERVING\n", {
        what: "health to read NOT_SERVING",
        timeoutMs: 20_000,
        intervalMs: 200,
      });
      const health = await council(["health", "--addr", lone.addr]);
      expectExit(health, 1);
    } finally {
      await lone.stop();
    }
  });
});
