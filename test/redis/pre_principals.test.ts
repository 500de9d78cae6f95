/**
 * A keyspace written before principals existed (issue 8, item 6) still works: its decisions,
 * outcomes and lessons read as `anonymous`'s (no caller was authenticated then), a replay of a
 * stored request_id by `anonymous` returns the stored decision with the same id, and a principal
 * sending that request_id makes a decision of its own.
 *
 * The keyspace is fixtures/pre-principals.keyspace.json, dumped key by key from what Council at
 * commit b1601be wrote (fixtures/make_pre_principals.ts says how); it is loaded under a fresh
 * prefix on a real redis-server.
 */
import { readFileSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { ANONYMOUS_NAME } from "../../src/domain/principal.js";
import { Outcome, type Decision } from "../../src/gen/council/v1/review.js";
import { suggestionToWire } from "../../src/server/convert.js";
import { decodeDecision } from "../../src/store/redis_codec.js";
import { RedisStore } from "../../src/store/redis.js";
import { unique } from "../support/fixtures.js";
import { writePrincipals, type Principals } from "../support/principals.js";
import { RedisServer } from "../support/redis.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { silent } from "./helpers.js";

interface Dumped {
  key: string;
  type: "hash" | "zset" | "stream";
  value: Record<string, string> | string[] | [string, string[]][];
}

const FIXTURE = JSON.parse(readFileSync(new URL("./fixtures/pre-principals.keyspace.json", import.meta.url), "utf8")) as { keys: Dumped[] };

/** Writes the dumped keyspace under `prefix`, as the old code left it. */
async function load(redis: Redis, prefix: string): Promise<void> {
  for (const { key, type, value } of FIXTURE.keys) {
    const name = prefix + key;
    if (type === "hash") await redis.hset(name, value as Record<string, string>);
    else if (type === "zset") for (const member of value as string[]) await redis.zadd(name, 0, member);
    else for (const [id, fields] of value as [string, string[]][]) await redis.xadd(name, id, ...fields);
  }
}

const hashOf = (suffix: string) => FIXTURE.keys.find((k) => k.key.endsWith(suffix))!.value as Record<string, string>;

describe("a keyspace written before principals", function () {
  this.timeout(30_000);
  let server: RedisServer;
  let redis: Redis;
  let principals: Principals;
  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    principals = await writePrincipals({ "agent-a": ["agent"], ops: ["operator"] });
  });
  after(async () => {
    redis?.disconnect();
    await principals?.remove();
    await server?.destroy();
  });

  // The fixture's three decisions: a request id and an outcome recorded with one; a request id and
  // no outcome; no request id and two outcomes (two lessons).
  const first = hashOf(":req:old-req-1").id!;
  const second = hashOf(":req:old-req-2").id!;
  const docs = FIXTURE.keys.filter((k) => k.key.includes(":d:")).map((k) => decodeDecision(k.value as Record<string, string>)!);
  const third = docs.find((d) => d.requestId === "")!.id;
  const storedSuggestion = (id: string) => suggestionToWire(docs.find((d) => d.id === id)!.suggestion);

  let r: Running;
  const open = async (authFile?: string) => {
    const prefix = `${unique("old")}:`;
    await load(redis, prefix);
    r = await startCouncil({ store: await RedisStore.open({ url: server.url, prefix, log: silent }), authFile });
    return r;
  };
  afterEach(() => r?.stop());

  it("was written with the request-id derivation anonymous keeps", () => {
    expect(first).to.equal(decisionIdForRequest(ANONYMOUS_NAME, "old-req-1"));
    expect(second).to.equal(decisionIdForRequest(ANONYMOUS_NAME, "old-req-2"));
    expect(docs).to.have.length(3);
  });

  it("reads as submitted and recorded by anonymous, everywhere", async () => {
    const { client } = await open();
    const get = async (id: string) => (await call(client, client.getDecision, { id })).decision!;
    expect(await get(first)).to.deep.include({ submittedBy: "anonymous", outcomeRecordedBy: "anonymous", outcome: Outcome.OUTCOME_SUCCESS, requestId: "old-req-1" });
    expect(await get(second)).to.deep.include({ submittedBy: "anonymous", outcomeRecordedBy: "", outcome: Outcome.OUTCOME_UNSPECIFIED });
    expect(await get(third)).to.deep.include({ submittedBy: "anonymous", outcomeRecordedBy: "anonymous", outcome: Outcome.OUTCOME_PARTIAL });
    const listed = await call(client, client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 10, pageToken: "", status: 0, oldestFirst: false });
    expect(listed.decisions.map((d) => [d.id, d.submittedBy, d.outcomeRecordedBy])).to.deep.equal([
      [third, "anonymous", "anonymous"],
      [second, "anonymous", ""],
      [first, "anonymous", "anonymous"],
    ]);
    const lessons = await call(client, client.listLessons, { pageSize: 10, pageToken: "" });
    expect(lessons.lessons.map((l) => [l.decisionId, l.lessons, l.recordedBy])).to.deep.equal([
      [third, "second try", "anonymous"],
      [third, "first try", "anonymous"],
      [first, "old lesson", "anonymous"],
    ]);
    expect(await call(client, client.getSummary, {})).to.deep.include({ totalDecisions: 3, learningEntries: 3 });
  });

  it("replays a stored request_id for anonymous: the same decision, with the same id, nothing new stored", async () => {
    const { client } = await open();
    const stored = (await call(client, client.getDecision, { id: first })).decision!;
    const again = await review(client, { suggestion: storedSuggestion(first), requestId: "old-req-1" });
    expect(again.error).to.equal(undefined);
    expect(again.events.map((e) => e.decisionId)).to.deep.equal(Array(6).fill(first));
    const replayed = again.events[5]!.event;
    expect(replayed?.$case === "decision" && replayed.value).to.deep.equal(stored);
    // The stored request is found: another suggestion under its id is a conflict, not a new review.
    const conflict = await review(client, { suggestion: storedSuggestion(second), requestId: "old-req-1" });
    expect(conflict.error?.code).to.equal(status.FAILED_PRECONDITION);
    // A stored RecordOutcome request id is found too: its retry records nothing more.
    const retried = await call(client, client.recordOutcome, {
      decisionId: first,
      outcome: Outcome.OUTCOME_SUCCESS,
      notes: "went fine",
      lessons: "old lesson",
      requestId: "old-oreq-1",
    });
    expect(retried.decision).to.deep.equal(stored);
    expect(await call(client, client.getSummary, {})).to.deep.include({ totalDecisions: 3, learningEntries: 3 });
  });

  it("takes new outcomes on old decisions, naming who recorded them", async () => {
    const { client } = await open();
    const recorded = await call(client, client.recordOutcome, { decisionId: second, outcome: Outcome.OUTCOME_FAILURE, notes: "", lessons: "new", requestId: "" });
    expect(recorded.decision).to.deep.include({ submittedBy: "anonymous", outcomeRecordedBy: "anonymous", outcome: Outcome.OUTCOME_FAILURE });
  });

  it("with principals: an agent's request_id is its own, and only an operator records on the old decisions", async () => {
    const running = await open(principals.authFile);
    const agent = running.connect({ token: principals.tokens["agent-a"] });
    const ops = running.connect({ token: principals.tokens.ops });
    const made = await review(agent, { suggestion: storedSuggestion(first), requestId: "old-req-1" });
    expect(made.error).to.equal(undefined);
    const mine = made.events[5]!.event!.value as Decision;
    expect(mine.id).to.not.equal(first);
    expect(mine).to.deep.include({ submittedBy: "agent-a", requestId: "old-req-1" });
    expect(await call(ops, ops.getSummary, {})).to.deep.include({ totalDecisions: 4 });

    const denied = await call(agent, agent.recordOutcome, { decisionId: second, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "", requestId: "" }).then(
      () => undefined,
      (e: { code: number; details: string }) => e,
    );
    expect(denied?.code).to.equal(status.PERMISSION_DENIED);
    expect(denied?.details).to.include(`${second} was submitted by "anonymous"`);
    const byOps = await call(ops, ops.recordOutcome, { decisionId: second, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "", requestId: "" });
    expect(byOps.decision).to.deep.include({ submittedBy: "anonymous", outcomeRecordedBy: "ops" });
  });

  it("reads an outcome that the code before principals recorded over a newer one as anonymous's", async () => {
    const running = await open(principals.authFile);
    const ops = running.connect({ token: principals.tokens.ops });
    await call(ops, ops.recordOutcome, { decisionId: second, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "", requestId: "" });
    expect((await call(ops, ops.getDecision, { id: second })).decision!.outcomeRecordedBy).to.equal("ops");
    // What record_outcome.lua before principals writes to the decision (a replica not yet upgraded).
    const store = running.store as RedisStore;
    const key = store.keys.decision(store.keys.bucketOfId(second), second);
    await redis.hset(key, { outcome: "failure", notes: "", lessons: "old code", implemented_at: String(Date.now()), op: "an-old-replica-call" });
    expect((await call(ops, ops.getDecision, { id: second })).decision).to.deep.include({
      outcome: Outcome.OUTCOME_FAILURE,
      outcomeRecordedBy: "anonymous",
    });
  });
});
