/**
 * Decisions stored before human verdicts (SPEC §9) on Redis: a keyspace of layout 1 is brought to
 * layout 2 when this version opens it (every decision gets its status, status index entries and
 * status count, chunk by chunk, idempotently; then meta records layout 2), and reads as SPEC §9
 * says: AUTO_APPROVE approved, REJECT rejected, the rest pending with the policy's approvals and no
 * expiry. Verdicts and outcomes work on them like on any other decision.
 *
 * The keyspaces: fixtures/pre-principals.keyspace.json (written at commit b1601be) and
 * fixtures/pre-verdicts.keyspace.json (written at commit 4898c97, the code just before this
 * change: fixtures/make_pre_verdicts.ts), loaded under a fresh prefix on a real redis-server; and
 * decisions written by the layout-1 scripts themselves (fixtures/layout1/*.lua, as of 4898c97), as
 * a replica not yet upgraded writes them while the others already run this version.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Redis } from "ioredis";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { DEFAULT_VERDICTS, type VerdictsSection } from "../../src/domain/lifecycle.js";
import { DECISION_STATUSES, type Decision, type DecisionType as DomainType } from "../../src/domain/model.js";
import { parsePolicy, type Policy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import type { AwaitDecisionResponse, CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import { DecisionStatus, DecisionType, Outcome, VerdictType, type Decision as WireDecision } from "../../src/gen/council/v1/review.js";
import { Keyspace } from "../../src/store/keys.js";
import { decodeDecision, encodeDecision } from "../../src/store/redis_codec.js";
import { RedisStore } from "../../src/store/redis.js";
import { decision, suggestion, unique } from "../support/fixtures.js";
import { writePrincipals, type Principals } from "../support/principals.js";
import { RedisServer } from "../support/redis.js";
import { call, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { silent } from "./helpers.js";

interface Dumped {
  key: string;
  type: "hash" | "zset" | "stream";
  value: Record<string, string> | string[] | [string, string[]][];
}

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`./fixtures/${name}.keyspace.json`, import.meta.url), "utf8")) as { keys: Dumped[] };
const PRE_PRINCIPALS = fixture("pre-principals");
const PRE_VERDICTS = fixture("pre-verdicts");
const OLD_SAVE = readFileSync(new URL("./fixtures/layout1/save_review.lua", import.meta.url), "utf8");

/** Writes a dumped keyspace under `prefix`, as the old code left it. */
async function load(redis: Redis, prefix: string, dump: { keys: Dumped[] }): Promise<void> {
  for (const { key, type, value } of dump.keys) {
    const name = prefix + key;
    if (type === "hash") await redis.hset(name, value as Record<string, string>);
    else if (type === "zset") for (const member of value as string[]) await redis.zadd(name, 0, member);
    else for (const [id, fields] of value as [string, string[]][]) await redis.xadd(name, id, ...fields);
  }
}

/** The dumped decisions, by the suggestion id each was made for. */
function decisionsOf(dump: { keys: Dumped[] }): Record<string, Decision> {
  const ds = dump.keys.filter((k) => k.key.includes(":d:")).map((k) => decodeDecision(k.value as Record<string, string>)!);
  return Object.fromEntries(ds.map((d) => [d.suggestionId, d]));
}

/** Stores `d` as a replica of layout 1 does: its save_review.lua, its keys and arguments (4898c97). */
async function saveAsLayout1(redis: Redis, keys: Keyspace, d: Decision): Promise<void> {
  const b = keys.bucketOfId(d.id);
  const f = encodeDecision(d);
  await redis.eval(
    OLD_SAVE,
    8,
    keys.decision(b, d.id),
    keys.request(b, d.submittedBy, d.requestId),
    keys.index(b, {}),
    keys.index(b, { decisionType: d.decision }),
    keys.index(b, { suggestionId: d.suggestionId }),
    keys.index(b, { decisionType: d.decision, suggestionId: d.suggestionId }),
    keys.counts(b),
    keys.events(b),
    d.requestId,
    "fp",
    f.doc,
    f.outcome,
    f.notes,
    f.lessons,
    f.implemented_at,
    randomUUID(),
    d.decision,
    d.outcome ?? "pending",
    d.autoFixApproved ? "1" : "0",
    "1000",
    d.id,
    f.submitted_by,
    f.outcome_by,
  );
}

/** Every status index of every bucket, summed per status, and the status counters, summed. */
async function statusTotals(redis: Redis, keys: Keyspace) {
  const indexed = Object.fromEntries(DECISION_STATUSES.map((s) => [s, 0])) as Record<string, number>;
  const counted = { ...indexed };
  for (const b of keys.all()) {
    for (const s of DECISION_STATUSES) {
      indexed[s]! += await redis.zcard(keys.index(b, { status: s }));
      counted[s]! += Number((await redis.hget(keys.counts(b), `status:${s}`)) ?? 0);
    }
  }
  return { indexed, counted };
}

const WIRE_STATUS: Record<string, DecisionStatus> = {
  pending: DecisionStatus.DECISION_STATUS_PENDING,
  approved: DecisionStatus.DECISION_STATUS_APPROVED,
  rejected: DecisionStatus.DECISION_STATUS_REJECTED,
};

const list = (client: CouncilServiceClient, req: { status?: DecisionStatus; decisionType?: DecisionType; oldestFirst?: boolean }) =>
  call(client, client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 50, pageToken: "", status: 0, oldestFirst: false, ...req }).then((r) =>
    r.decisions.map((d) => d.id),
  );

describe("A keyspace of layout 1, opened by this version", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  let principals: Principals;
  const running: Running[] = [];

  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    principals = await writePrincipals({
      "agent-a": ["agent"],
      "agent-b": ["agent"],
      alice: ["approver"],
      bob: ["approver"],
      carol: ["approver"],
      ops: ["operator"],
    });
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop();
  });
  after(async () => {
    redis?.disconnect();
    await principals?.remove();
    await server?.destroy();
  });

  const open = (prefix: string, verdicts: VerdictsSection = DEFAULT_VERDICTS, buckets = 4) =>
    RedisStore.open({ url: server.url, prefix, log: silent, verdicts, buckets });
  const serve = async (prefix: string, policy: Policy = PRESETS.default) => {
    const r = await startCouncil({ store: await open(prefix, policy.verdicts), policy, authFile: principals.authFile });
    running.push(r);
    return r;
  };

  it("brings the keyspace written before principals to layout 2: its decisions read approved, and are counted and listed by status", async () => {
    const prefix = `${unique("pp")}:`;
    await load(redis, prefix, PRE_PRINCIPALS);
    const r = await serve(prefix);
    const ops = r.connect({ token: principals.tokens.ops });
    expect(await redis.hget(`${prefix}meta`, "layout")).to.equal("2");
    const summary = await call(ops, ops.getSummary, {});
    expect(summary.byStatus).to.deep.equal({ pending: 0, approved: 3, rejected: 0, expired: 0, superseded: 0 });
    const all = await list(ops, { oldestFirst: true });
    expect(all).to.have.length(3);
    expect(await list(ops, { status: DecisionStatus.DECISION_STATUS_APPROVED, oldestFirst: true })).to.deep.equal(all);
    expect(await list(ops, { status: DecisionStatus.DECISION_STATUS_PENDING })).to.deep.equal([]);
    for (const id of all) {
      const d = (await call(ops, ops.getDecision, { id })).decision!;
      expect(d).to.deep.include({ status: DecisionStatus.DECISION_STATUS_APPROVED, verdicts: [], approvalsRequired: 0, expiresAt: undefined, submittedBy: "anonymous" });
    }
  });

  it("reads a keyspace written just before verdicts as SPEC section 9 says, counts and lists it by status, and takes verdicts on it", async () => {
    const prefix = `${unique("pv")}:`;
    await load(redis, prefix, PRE_VERDICTS);
    const old = decisionsOf(PRE_VERDICTS);
    // The policy of the replicas: its approvals are what old pending decisions need.
    const policy = parsePolicy("three", { verdicts: { escalate: { approvals: 3 } } }, PRESETS.default);
    const a = await serve(prefix, policy);
    const b = await serve(prefix, policy);
    expect(await redis.hget(`${prefix}meta`, "layout")).to.equal("2");
    const as = (who: string, r: Running = a) => r.connect({ token: principals.tokens[who] });
    const ops = as("ops");
    const get = async (suggestionId: string) => (await call(ops, ops.getDecision, { id: old[suggestionId]!.id })).decision!;

    const want: [string, string, number][] = [
      ["sug-pv-auto", "approved", 0],
      ["sug-pv-human", "pending", 1],
      ["sug-pv-defer", "pending", 1],
      ["sug-pv-reject", "rejected", 0],
      ["sug-pv-escalate", "pending", 3],
      ["sug-pv-early", "pending", 1],
    ];
    for (const [sid, st, approvals] of want) {
      expect(await get(sid), sid).to.deep.include({ status: WIRE_STATUS[st], approvalsRequired: approvals, verdicts: [], expiresAt: undefined, supersedes: "" });
    }
    // What the old code recorded stays as it was: who submitted, the outcomes (one on a decision
    // that now reads pending), the counters of types and outcomes.
    expect(await get("sug-pv-early")).to.deep.include({ outcome: Outcome.OUTCOME_FAILURE, submittedBy: "anonymous" });
    expect(await get("sug-pv-auto")).to.deep.include({ outcome: Outcome.OUTCOME_SUCCESS, submittedBy: "agent-a", outcomeRecordedBy: "agent-a" });
    const summary = await call(ops, ops.getSummary, {});
    expect(summary).to.deep.include({ totalDecisions: 6, learningEntries: 2 });
    expect(summary.outcomes).to.deep.equal({ success: 1, failure: 1, partial: 0, pending: 4 });
    expect(summary.byStatus).to.deep.equal({ pending: 4, approved: 1, rejected: 1, expired: 0, superseded: 0 });

    const ids = (...sids: string[]) => sids.map((s) => old[s]!.id);
    expect(await list(ops, { status: DecisionStatus.DECISION_STATUS_PENDING, oldestFirst: true })).to.deep.equal(
      ids("sug-pv-human", "sug-pv-defer", "sug-pv-escalate", "sug-pv-early"),
    );
    expect(await list(ops, { status: DecisionStatus.DECISION_STATUS_PENDING, decisionType: DecisionType.DECISION_TYPE_HUMAN_APPROVE })).to.deep.equal(
      ids("sug-pv-early", "sug-pv-human"),
    );
    expect(await list(ops, { status: DecisionStatus.DECISION_STATUS_REJECTED })).to.deep.equal(ids("sug-pv-reject"));

    // A verdict on an old pending decision, awaited on the other replica.
    const human = old["sug-pv-human"]!.id;
    const states: WireDecision[] = [];
    const awaiting = as("agent-a", b).awaitDecision({ decisionId: human }, new Metadata(), { deadline: Date.now() + 15_000 });
    awaiting.on("data", (m: AwaitDecisionResponse) => states.push(m.decision!));
    const ended = new Promise<ServiceError | undefined>((resolve) => {
      awaiting.on("error", resolve);
      awaiting.on("end", () => resolve(undefined));
    });
    await waitFor(() => states.length >= 1, { what: "the await's first state" });
    const resolve = (who: string, id: string, r: Running = a) =>
      call(as(who, r), as(who, r).resolveDecision, { decisionId: id, verdict: VerdictType.VERDICT_TYPE_APPROVE, comment: "", requestId: "" }).then((x) => x.decision!);
    expect((await resolve("alice", human)).status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
    expect(await within(ended, { what: "the await to end" })).to.equal(undefined);
    expect(states.map((s) => s.status)).to.deep.equal([DecisionStatus.DECISION_STATUS_PENDING, DecisionStatus.DECISION_STATUS_APPROVED]);

    // The old escalation needs the policy's three approvals, from distinct approvers.
    const escalate = old["sug-pv-escalate"]!.id;
    expect((await resolve("alice", escalate)).status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
    expect((await resolve("bob", escalate, b)).status).to.equal(DecisionStatus.DECISION_STATUS_PENDING);
    expect((await resolve("carol", escalate)).status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);

    // Outcomes: only on approved decisions now; a request id the old code stored is still found.
    const refused = await call(ops, ops.recordOutcome, { decisionId: old["sug-pv-defer"]!.id, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "", requestId: "" }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(refused?.code).to.equal(status.FAILED_PRECONDITION);
    expect(refused?.details).to.include("PENDING");
    const agentA = as("agent-a");
    const replayed = await call(agentA, agentA.recordOutcome, {
      decisionId: old["sug-pv-auto"]!.id,
      outcome: Outcome.OUTCOME_SUCCESS,
      notes: "shipped",
      lessons: "fine",
      requestId: "pv-oreq-1",
    });
    expect(replayed.decision).to.deep.include({ outcome: Outcome.OUTCOME_SUCCESS, outcomeRecordedBy: "agent-a" });

    const after = await call(as("ops", b), as("ops", b).getSummary, {});
    expect(after.byStatus).to.deep.equal({ pending: 2, approved: 3, rejected: 1, expired: 0, superseded: 0 });
    expect(after.learningEntries).to.equal(2);
    const totals = await statusTotals(redis, (a.store as RedisStore).keys);
    expect(totals.indexed).to.deep.equal(totals.counted);
  });

  it("replicas that open it at the same time count each decision once", async () => {
    const prefix = `${unique("pvrace")}:`;
    await load(redis, prefix, PRE_VERDICTS);
    const stores = await Promise.all([1, 2, 3, 4].map(() => open(prefix)));
    try {
      const summary = await stores[0]!.summary();
      expect(summary.byStatus).to.deep.equal({ pending: 4, approved: 1, rejected: 1, expired: 0, superseded: 0 });
      const totals = await statusTotals(redis, stores[0]!.keys);
      expect(totals.indexed).to.deep.equal(totals.counted);
      expect(await redis.hget(`${prefix}meta`, "layout")).to.equal("2");
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it("works in chunks: buckets of hundreds of decisions written by the layout-1 scripts", async () => {
    const prefix = `${unique("chunks")}:`;
    const keys = new Keyspace(prefix, 2);
    // A keyspace of layout 1, as the old code creates it (it adds the page-token key at its start).
    await redis.hset(`${prefix}meta`, { buckets: "2", layout: "1", created_at: new Date().toISOString() });
    const types: DomainType[] = ["auto_approve", "human_approve", "defer", "reject", "escalate"];
    const made: Decision[] = [];
    for (let i = 0; i < 520; i++) {
      const d = decision({ decision: types[i % types.length]!, suggestion: suggestion({ id: `sug-chunk-${i % 7}` }), requestId: i % 2 ? unique("req") : "" });
      made.push({ ...d, suggestionId: d.suggestion.id });
      await saveAsLayout1(redis, keys, made.at(-1)!);
    }
    const store = await open(prefix, DEFAULT_VERDICTS, 2);
    try {
      expect(await redis.hget(`${prefix}meta`, "layout")).to.equal("2");
      const byStatus = (await store.summary()).byStatus;
      const expected = { pending: 0, approved: 0, rejected: 0, expired: 0, superseded: 0 };
      for (const d of made) expected[d.decision === "auto_approve" ? "approved" : d.decision === "reject" ? "rejected" : "pending"]++;
      expect(byStatus).to.deep.equal(expected);
      const totals = await statusTotals(redis, keys);
      expect(totals.indexed).to.deep.include(expected);
      // Each bucket's cursor is at its last decision: a later catch-up reads only what comes after.
      for (const b of keys.all()) {
        const [last] = await redis.zrevrangebylex(keys.index(b, {}), "+", "-", "LIMIT", 0, 1);
        expect(await redis.hget(keys.counts(b), "st_cursor")).to.equal(last);
      }
      // By status, type and suggestion, page by page, oldest first: the same decisions.
      const pendingDefer = made.filter((d) => d.decision === "defer" && d.suggestionId === "sug-chunk-3").map((d) => d.id);
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 100; i++) {
        const page = await store.listDecisions({ status: "pending", decisionType: "defer", suggestionId: "sug-chunk-3" }, { limit: 4, cursor, oldestFirst: true });
        seen.push(...page.items.map((d) => d.id));
        if (!page.next) break;
        cursor = page.next;
      }
      expect(seen).to.deep.equal(pendingDefer);
    } finally {
      await store.close();
    }
  });

  it("a start that fails half-way leaves layout 1, and the next start finishes without counting anything twice", async () => {
    const prefix = `${unique("half")}:`;
    await load(redis, prefix, PRE_VERDICTS);
    const human = decisionsOf(PRE_VERDICTS)["sug-pv-human"]!;
    // The status index the human_approve decision goes to is broken: its bucket's backfill fails there.
    const keys = new Keyspace(prefix, 4);
    const broken = keys.index(keys.bucketOfId(human.id), { status: "pending", decisionType: "human_approve" });
    await redis.set(broken, "not a sorted set");
    const err = await open(prefix).then(
      async (s) => (await s.close(), undefined),
      (e: Error) => e,
    );
    expect(err?.message).to.match(/cannot open the Redis store/);
    expect(await redis.hget(`${prefix}meta`, "layout")).to.equal("1");
    expect(await redis.hexists(keys.decision(keys.bucketOfId(human.id), human.id), "status")).to.equal(0);

    await redis.del(broken);
    const store = await open(prefix);
    try {
      expect(await redis.hget(`${prefix}meta`, "layout")).to.equal("2");
      expect((await store.summary()).byStatus).to.deep.equal({ pending: 4, approved: 1, rejected: 1, expired: 0, superseded: 0 });
      const totals = await statusTotals(redis, store.keys);
      expect(totals.indexed).to.deep.equal(totals.counted);
    } finally {
      await store.close();
    }
  });

  it("while a replica of layout 1 still runs: what it stores is indexed within seconds, and a verdict or an outcome on it works at once", async () => {
    const prefix = `${unique("rolling")}:`;
    const r = await serve(prefix);
    const keys = (r.store as RedisStore).keys;
    const ops = r.connect({ token: principals.tokens.ops });
    const alice = r.connect({ token: principals.tokens.alice });
    // Stored by the old replica after this one upgraded the keyspace: no status, not indexed by it.
    const resolvedAtOnce = decision({ decision: "human_approve", submittedBy: "agent-a" });
    const auto = decision({ decision: "auto_approve", submittedBy: "agent-a" });
    // In a bucket of its own, so that indexing the others on demand does not index it too.
    let left = decision({ decision: "defer", submittedBy: "agent-a" });
    for (let i = 0; i < 100 && [resolvedAtOnce, auto].some((d) => keys.bucketOfId(d.id) === keys.bucketOfId(left.id)); i++) {
      left = decision({ decision: "defer", submittedBy: "agent-a" });
    }
    for (const d of [resolvedAtOnce, left, auto]) await saveAsLayout1(redis, keys, d);
    expect(await redis.hexists(keys.decision(keys.bucketOfId(left.id), left.id), "status")).to.equal(0);

    const approved = await call(alice, alice.resolveDecision, { decisionId: resolvedAtOnce.id, verdict: VerdictType.VERDICT_TYPE_APPROVE, comment: "", requestId: "" });
    expect(approved.decision).to.deep.include({ status: DecisionStatus.DECISION_STATUS_APPROVED, approvalsRequired: 1 });
    const recorded = await call(ops, ops.recordOutcome, { decisionId: auto.id, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "", requestId: "" });
    expect(recorded.decision).to.deep.include({ status: DecisionStatus.DECISION_STATUS_APPROVED, outcome: Outcome.OUTCOME_SUCCESS });
    // Nobody touches the third one: the sweepers' catch-up indexes it.
    await waitFor(async () => (await call(ops, ops.getSummary, {})).byStatus.pending === 1, {
      what: "the decision stored by the old replica to be counted pending",
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    expect(await list(ops, { status: DecisionStatus.DECISION_STATUS_PENDING })).to.deep.equal([left.id]);
    const summary = await call(ops, ops.getSummary, {});
    expect(summary.byStatus).to.deep.equal({ pending: 1, approved: 2, rejected: 0, expired: 0, superseded: 0 });

    // The review stream stays what a reader of layout 1 follows: one entry per review, numbered
    // 1, 2, 3… up to the bucket's total (updates have their own stream).
    for (const b of keys.all()) {
      const entries = await redis.xrange(keys.events(b), "-", "+");
      const total = Number((await redis.hget(keys.counts(b), "total")) ?? 0);
      expect(entries.map(([, f]) => Number(f[f.indexOf("seq") + 1]))).to.deep.equal(Array.from({ length: total }, (_, i) => i + 1));
      for (const [, f] of entries) expect(f.filter((_, i) => i % 2 === 0)).to.deep.equal(["seq", "us", "id", "type"]);
    }
  });

  it("a request id stored by the layout-1 code still names its decision", async () => {
    const prefix = `${unique("req1")}:`;
    await load(redis, prefix, PRE_VERDICTS);
    const store = await open(prefix);
    try {
      const found = await store.findByRequestId("agent-a", "pv-req-human");
      expect(found?.decision).to.deep.include({ id: decisionIdForRequest("agent-a", "pv-req-human"), status: "pending", approvalsRequired: 1 });
    } finally {
      await store.close();
    }
  });
});
