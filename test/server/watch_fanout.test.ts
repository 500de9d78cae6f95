/**
 * WatchDecisions fan-out (src/server/watch_hub.ts): every watch of a server shares one store
 * subscription and one encoding of each event, and the events go out after the review is
 * answered. Whatever the sharing, each watcher of each kind (decision type, votes, updates) still
 * gets every event meant for it, in order, on both stores, even one that reads late; a watcher
 * that falls behind or reads nothing is still ended with RESOURCE_EXHAUSTED without holding up the
 * others; an event that cannot be encoded ends the watches, not the server; shutdown ends them all.
 */
import { credentials, status, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Decision as DomainDecision } from "../../src/domain/model.js";
import {
  CouncilServiceClient,
  WatchDecisionsRequest,
  WatchDecisionsResponse,
  type ReviewSuggestionResponse,
} from "../../src/gen/council/v1/council_service.js";
import { DecisionStatus, DecisionType, ImpactLevel, RiskLevel, VerdictType, type Suggestion } from "../../src/gen/council/v1/review.js";
import { frame } from "../../src/server/watch_hub.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/store.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { rawCall, silentSession } from "../support/raw_grpc.js";
import { RedisServer } from "../support/redis.js";
import { call, review, startCouncil, type Running, type StartOptions } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";
import { startReplica } from "../redis/helpers.js";

/** What one watcher asks for. */
interface Kind {
  decisionType: DecisionType;
  includeVotes: boolean;
  includeUpdates: boolean;
}

/** A watch read by a grpc-js client (which decodes every message the server wrote). */
interface Watching {
  kind: Kind;
  stream: ClientReadableStream<WatchDecisionsResponse>;
  events: WatchDecisionsResponse[];
  error(): ServiceError | undefined;
  live: Promise<void>;
  ended: Promise<ServiceError>;
}

function watch(client: CouncilServiceClient, kind: Kind): Watching {
  const stream = client.watchDecisions(kind);
  const events: WatchDecisionsResponse[] = [];
  let error: ServiceError | undefined;
  stream.on("data", (e: WatchDecisionsResponse) => events.push(e));
  const ended = new Promise<ServiceError>((resolve) => stream.on("error", (e: ServiceError) => resolve((error = e))));
  // The server sends response headers once the watch is live; from then on nothing is missed.
  const live = new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  return { kind, stream, events, error: () => error, live, ended };
}

const SUGGESTIONS = {
  auto: (o: Partial<Suggestion> = {}) => wireSuggestion(o),
  reject: () => wireSuggestion({ title: "Log the request", description: "This exposes secrets in the logs." }),
  /** Approved for a human: pending until an approver approves it. */
  human: () => wireSuggestion({ risk: RiskLevel.RISK_LEVEL_MEDIUM, impact: ImpactLevel.IMPACT_LEVEL_LOW, autoFixable: false }),
};

const KINDS: Kind[] = [
  { decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false },
  { decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: false, includeUpdates: true },
  { decisionType: DecisionType.DECISION_TYPE_REJECT, includeVotes: false, includeUpdates: false },
  { decisionType: DecisionType.DECISION_TYPE_HUMAN_APPROVE, includeVotes: true, includeUpdates: true },
];

/** A decision that changed (the answer of ResolveDecision). */
interface Change {
  id: string;
  decision: DecisionType;
}

/** The events a watcher of `kind` must receive, as `case:decision id`: each review's (as its caller got them), then each change. */
function expected(kind: Kind, reviews: ReviewSuggestionResponse[][], changes: Change[]): string[] {
  const passes = (type: DecisionType) => kind.decisionType === DecisionType.DECISION_TYPE_UNSPECIFIED || type === kind.decisionType;
  const out: string[] = [];
  for (const events of reviews) {
    const last = events.at(-1)!;
    if (last.event?.$case !== "decision" || !passes(last.event.value.decision)) continue;
    for (const e of events) if (kind.includeVotes || e.event?.$case === "decision") out.push(`${e.event!.$case}:${e.decisionId}`);
  }
  if (kind.includeUpdates) for (const d of changes) if (passes(d.decision)) out.push(`decision:${d.id}`);
  return out;
}

/** Clients on connections of their own (grpc-js channels to one address share one otherwise). */
const connections: CouncilServiceClient[] = [];
function connection(c: Running): CouncilServiceClient {
  const client = new CouncilServiceClient(c.addr, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  connections.push(client);
  return client;
}
function closeConnections() {
  for (const client of connections.splice(0)) client.close();
}

function fanOutSuite(name: string, start: (options?: StartOptions) => Promise<Running>) {
  describe(`WatchDecisions fan-out: ${name}`, function () {
    this.timeout(60_000);
    let c: Running;
    afterEach(async () => {
      closeConnections();
      await c?.stop();
    });

    it("sends every watcher of every kind every event meant for it, in order, as its caller reads it", async () => {
      c = await start();
      // Three connections (a server allows 100 streams on one), 30 watchers of each kind.
      const clients = [connection(c), connection(c), connection(c)];
      const watchers = Array.from({ length: 120 }, (_, i) => watch(clients[i % clients.length]!, KINDS[i % KINDS.length]!));
      await within(Promise.all(watchers.map((w) => w.live)), { timeoutMs: 20_000, what: "every watch to be live" });

      const made: ReviewSuggestionResponse[][] = [];
      for (const suggestion of [SUGGESTIONS.auto, SUGGESTIONS.human, SUGGESTIONS.reject, SUGGESTIONS.human, SUGGESTIONS.auto, SUGGESTIONS.reject]) {
        const r = await review(c.client, { suggestion: suggestion() });
        expect(r.error, "a review").to.equal(undefined);
        made.push(r.events);
      }
      const typeOf = (events: ReviewSuggestionResponse[]) => {
        const last = events.at(-1)!.event;
        return last?.$case === "decision" ? last.value.decision : undefined;
      };
      const human = made.find((events) => typeOf(events) === DecisionType.DECISION_TYPE_HUMAN_APPROVE)!;
      const resolved = await call(c.client, c.client.resolveDecision, {
        decisionId: human.at(-1)!.decisionId,
        verdict: VerdictType.VERDICT_TYPE_APPROVE,
        comment: "",
        requestId: "",
      });
      expect(resolved.decision?.status).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
      const changes = [{ id: resolved.decision!.id, decision: resolved.decision!.decision }];
      const want = new Map(KINDS.map((k) => [k, expected(k, made, changes)]));
      // Each kind gets something, so that an empty stream cannot pass for a right one.
      for (const w of want.values()) expect(w.length).to.be.greaterThan(0);

      await waitFor(() => watchers.every((w) => w.events.length >= want.get(w.kind)!.length), { timeoutMs: 20_000, what: "every watcher to have every event" });
      const byDecision = new Map(made.map((events) => [events.at(-1)!.decisionId, events]));
      for (const w of watchers) {
        const what = `a watcher of ${JSON.stringify(w.kind)}`;
        expect(w.events.map((e) => `${e.event!.$case}:${e.decisionId}`), what).to.deep.equal(want.get(w.kind));
        expect(w.error(), what).to.equal(undefined);
        // The bytes every watcher shares decode to what the review's caller got.
        w.events.forEach((e, i) => {
          const events = byDecision.get(e.decisionId)!;
          expect(e.suggestionId, what).to.equal(events[0]!.suggestionId);
          if (e.event?.$case === "vote") {
            expect(events.some((r) => r.event?.$case === "vote" && JSON.stringify(r.event.value) === JSON.stringify(e.event!.value)), what).to.equal(true);
          } else if (w.kind.includeUpdates && i === w.events.length - 1) {
            // The change: the decision as it is once approved.
            expect(e.event?.value.status, what).to.equal(DecisionStatus.DECISION_STATUS_APPROVED);
          } else {
            const decision = events.at(-1)!.event!;
            expect(e.event?.value.status, what).to.equal(decision.$case === "decision" ? decision.value.status : undefined);
            expect(e.event?.value.votes, what).to.deep.equal(decision.$case === "decision" ? decision.value.votes : undefined);
          }
        });
      }
      for (const w of watchers) w.stream.cancel();
    });

    it("ends every watch with UNAVAILABLE at shutdown", async () => {
      c = await start();
      const clients = [connection(c), connection(c)];
      const watchers = Array.from({ length: 150 }, (_, i) => watch(clients[i % 2]!, KINDS[i % KINDS.length]!));
      await within(Promise.all(watchers.map((w) => w.live)), { timeoutMs: 20_000, what: "every watch to be live" });
      await c.server.shutdown(2000);
      const ends = await within(Promise.all(watchers.map((w) => w.ended)), { timeoutMs: 10_000, what: "every watch to end" });
      expect(new Set(ends.map((e) => e.code))).to.deep.equal(new Set([status.UNAVAILABLE]));
    });
  });
}

fanOutSuite("in-process store", (options) => startCouncil(options));

describe("on Redis", function () {
  let redis: RedisServer;
  before(async () => {
    redis = await RedisServer.start();
  });
  after(() => redis?.destroy());
  fanOutSuite("Redis store", (options) => startReplica(redis.url, `${unique("fan")}:`, { buckets: 4, ...options }));
});

/** Counts the store subscriptions open now. */
function countOpenSubscriptions(store: Store): () => number {
  let open = 0;
  const subscribe = store.subscribe.bind(store);
  store.subscribe = (onReview, onError, onLive, onUpdate) => {
    open++;
    let closed = false;
    const unsubscribe = subscribe(onReview, onError, onLive, onUpdate);
    return () => {
      if (!closed) open--;
      closed = true;
      unsubscribe();
    };
  };
  return () => open;
}

describe("WatchDecisions fan-out: what a watcher costs", function () {
  this.timeout(60_000);
  let c: Running | undefined;
  afterEach(async () => {
    closeConnections();
    await c?.stop();
  });

  it("shares one store subscription among all watches without updates, and one among those with", async () => {
    const store = new MemoryStore();
    const open = countOpenSubscriptions(store);
    c = await startCouncil({ store });
    const plain = Array.from({ length: 40 }, (_, i) => watch(c!.client, KINDS[i % 2 === 0 ? 0 : 2]!));
    const withUpdates = Array.from({ length: 20 }, (_, i) => watch(c!.client, KINDS[i % 2 === 0 ? 1 : 3]!));
    await within(Promise.all([...plain, ...withUpdates].map((w) => w.live)), { what: "every watch to be live" });
    expect(open()).to.equal(2);
    for (const w of plain) w.stream.cancel();
    await waitFor(() => open() === 1, { what: "the subscription of the watches without updates to close with the last of them" });
    for (const w of withUpdates) w.stream.cancel();
    await waitFor(() => open() === 0, { what: "every subscription to close once no watch is left" });
    // A new watch opens a subscription again, and is live.
    const again = watch(c.client, KINDS[0]!);
    await within(again.live, { what: "a new watch to be live" });
    expect(open()).to.equal(1);
    const r = await review(c.client, { suggestion: SUGGESTIONS.auto() });
    await waitFor(() => again.events.length === 6, { what: "the review on the new watch" });
    expect(again.events.map((e) => e.decisionId)).to.deep.equal(r.events.map((e) => e.decisionId));
    again.stream.cancel();
  });

  it("ends the watches with INTERNAL when an event cannot be encoded, and serves new ones", async () => {
    const store = new MemoryStore();
    const subscribe = store.subscribe.bind(store);
    const onReviews: ((d: DomainDecision) => void)[] = [];
    store.subscribe = (onReview, onError, onLive, onUpdate) => {
      onReviews.push(onReview);
      return subscribe(onReview, onError, onLive, onUpdate);
    };
    c = await startCouncil({ store });
    const watchers = Array.from({ length: 5 }, () => watch(c!.client, KINDS[0]!));
    await within(Promise.all(watchers.map((w) => w.live)), { what: "every watch to be live" });
    // A decision no encoder can take (its votes are not a list), as a broken store might deliver.
    const broken = { id: "broken", suggestionId: "s", votes: null } as unknown as DomainDecision;
    onReviews.at(-1)!(broken);
    const ends = await within(Promise.all(watchers.map((w) => w.ended)), { what: "every watch to end" });
    expect(new Set(ends.map((e) => e.code))).to.deep.equal(new Set([status.INTERNAL]));
    const again = watch(c.client, KINDS[0]!);
    await within(again.live, { what: "a new watch to be live" });
    const r = await review(c.client, { suggestion: SUGGESTIONS.auto() });
    await waitFor(() => again.events.length === r.events.length, { what: "the review on the new watch" });
    again.stream.cancel();
  });

  it("keeps the order of the events that wait for a watcher that reads late", async () => {
    c = await startCouncil();
    const late = Array.from({ length: 10 }, (_, i) => watch(i % 2 === 0 ? c!.client : connection(c!), KINDS[i % 2 === 0 ? 0 : 1]!));
    await within(Promise.all(late.map((w) => w.live)), { what: "every watch to be live" });
    // Paused, they read nothing: once HTTP/2 flow control stops the server, the events wait for them there.
    for (const w of late) w.stream.pause();
    const made: ReviewSuggestionResponse[][] = [];
    for (let i = 0; i < 25; i++) made.push((await review(c.client, { suggestion: SUGGESTIONS.auto({ id: unique("sug"), description: "z".repeat(30_000) }) })).events);
    for (const w of late) w.stream.resume();
    const withVotes = made.flatMap((events) => events.map((e) => `${e.event!.$case}:${e.decisionId}`));
    const decisions = withVotes.filter((e) => e.startsWith("decision:"));
    await waitFor(() => late.every((w) => w.events.length >= (w.kind.includeVotes ? withVotes : decisions).length), { timeoutMs: 20_000, what: "every late watcher to have every event" });
    for (const w of late) {
      expect(w.events.map((e) => `${e.event!.$case}:${e.decisionId}`)).to.deep.equal(w.kind.includeVotes ? withVotes : decisions);
      expect(w.error()).to.equal(undefined);
      w.stream.cancel();
    }
  });

  it("ends a watcher that reads nothing with RESOURCE_EXHAUSTED past its bound, and the others get every event", async () => {
    c = await startCouncil({ watchBufferBytes: 256 * 1024 });
    const session = silentSession(c.addr);
    try {
      const request = WatchDecisionsRequest.encode({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false }).finish();
      const silent = rawCall(session, "/council.v1.CouncilService/WatchDecisions", request);
      await within(silent.headers, { what: "the silent watch to be live" });
      const readers = Array.from({ length: 30 }, (_, i) => watch(i % 2 === 0 ? c!.client : connection(c!), KINDS[0]!));
      await within(Promise.all(readers.map((w) => w.live)), { what: "every reading watch to be live" });
      const big = () => SUGGESTIONS.auto({ id: unique("sug"), description: "y".repeat(60_000) });
      const made: ReviewSuggestionResponse[][] = [];
      for (let i = 0; i < 40 && !silent.end(); i++) made.push((await review(c.client, { suggestion: big() })).events);
      const end = await within(silent.ended, { what: "the silent watcher to be ended" });
      expect(end.code).to.equal(status.RESOURCE_EXHAUSTED);
      // Reviews after it was ended reach the others too.
      made.push((await review(c.client, { suggestion: big() })).events);
      const ids = made.flatMap((events) => events.map((e) => e.decisionId));
      await waitFor(() => readers.every((w) => w.events.length >= ids.length), { timeoutMs: 20_000, what: "every reading watcher to have every event" });
      for (const w of readers) {
        expect(w.events.map((e) => e.decisionId)).to.deep.equal(ids);
        expect(w.error()).to.equal(undefined);
        w.stream.cancel();
      }
    } finally {
      session.destroy();
    }
  });

  it("ends a watcher that reads nothing with RESOURCE_EXHAUSTED after the write timeout, with nothing more to send", async () => {
    c = await startCouncil({ streamWriteTimeoutMs: 300 });
    const session = silentSession(c.addr);
    try {
      const request = WatchDecisionsRequest.encode({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false }).finish();
      const silent = rawCall(session, "/council.v1.CouncilService/WatchDecisions", request);
      await within(silent.headers, { what: "the silent watch to be live" });
      const reader = watch(c.client, KINDS[0]!);
      await within(reader.live, { what: "the reading watch to be live" });
      // One small review: far below the bound, but not one byte of it can reach the silent watcher.
      const r = await review(c.client, { suggestion: SUGGESTIONS.auto() });
      const end = await within(silent.ended, { timeoutMs: 10_000, what: "the silent watcher to be ended" });
      expect(end.code).to.equal(status.RESOURCE_EXHAUSTED);
      await waitFor(() => reader.events.length === r.events.length, { what: "the review on the reading watch" });
      expect(reader.error()).to.equal(undefined);
      reader.stream.cancel();
    } finally {
      session.destroy();
    }
  });
});

describe("WatchDecisions fan-out: the shared encoding", () => {
  it("frames an event as one gRPC message: not compressed, its length, its protobuf", () => {
    const message = WatchDecisionsResponse.fromPartial({ decisionId: "d-1", suggestionId: "s-1", event: { $case: "vote", value: { reasoning: "é".repeat(300) } } });
    const bytes = frame(message);
    expect(bytes[0]).to.equal(0);
    expect(bytes.readUInt32BE(1)).to.equal(bytes.length - 5);
    expect(WatchDecisionsResponse.decode(bytes.subarray(5))).to.deep.equal(message);
    // A message of more than 64 KiB still has its whole length in the prefix.
    const large = WatchDecisionsResponse.fromPartial({ decisionId: "d-2", event: { $case: "vote", value: { reasoning: "x".repeat(100_000) } } });
    expect(frame(large).readUInt32BE(1)).to.equal(WatchDecisionsResponse.encode(large).finish().length);
  });
});
