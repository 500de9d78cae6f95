/**
 * Bounds that keep one client from exhausting the server: watchers per replica, each watcher's
 * backlog in bytes, streams per connection, and every listing response in bytes.
 */
import http2 from "node:http2";
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { ConfigError, loadConfig } from "../../src/config.js";
import { decisionBytes, lessonBytes, LIMITS } from "../../src/domain/limits.js";
import type { Decision } from "../../src/domain/model.js";
import { ListDecisionsResponse, ListLessonsResponse, type WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { Decision as WireDecision, DecisionType, Lesson as WireLesson, Outcome } from "../../src/gen/council/v1/review.js";
import { decisionToWire, lessonToWire } from "../../src/server/convert.js";
import { suggestionAtLimits, wireSuggestionAtLimits } from "../support/at_limits.js";
import { decision, suggestion, unique, wireSuggestion } from "../support/fixtures.js";
import { silentSession, silentWatch } from "../support/raw_grpc.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

/** A grpc-js watch that reads everything; resolves once it is live (or has ended). */
async function watch(c: Running) {
  const stream = c.client.watchDecisions({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false });
  const events: WatchDecisionsResponse[] = [];
  let error: ServiceError | undefined;
  stream.on("data", (e: WatchDecisionsResponse) => events.push(e));
  const ended = new Promise<ServiceError>((resolve) => stream.once("error", resolve));
  stream.on("error", (e: ServiceError) => (error = e));
  await within(Promise.race([new Promise((resolve) => stream.once("metadata", resolve)), ended]), { what: "the watch to go live or end" });
  return { stream, events, error: () => error, ended };
}

describe("limits that keep the server up", function () {
  this.timeout(30_000);
  let c: Running | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
  });

  it("caps the watchers of a replica: beyond the cap a watch is RESOURCE_EXHAUSTED, and a slot frees when one leaves", async () => {
    c = await startCouncil({ maxWatchers: 2 });
    const first = await watch(c);
    const second = await watch(c);
    const third = await watch(c);
    expect(first.error()).to.equal(undefined);
    expect(second.error()).to.equal(undefined);
    const refused = await within(third.ended, { what: "the third watch to be refused" });
    expect(refused.code).to.equal(status.RESOURCE_EXHAUSTED);
    expect(refused.details).to.match(/2 watches open, its limit/);
    first.stream.cancel();
    // The slot frees once the server has seen the cancellation; each try either goes live or is refused.
    const again = await waitFor(
      async () => {
        const w = await watch(c!);
        return w.error() === undefined ? w : undefined;
      },
      { what: "a watch to be accepted again" },
    );
    again.stream.cancel();
    second.stream.cancel();
  });

  it("ends a watcher that stops reading once its backlog passes the byte bound, at once, and frees its slot", async () => {
    c = await startCouncil({ watchBufferBytes: 256 * 1024, maxWatchers: 1 });
    const session = silentSession(c.addr);
    try {
      const silent = await silentWatch(session);
      // About 120 KB per decision: the first is stuck in the stream, the next two pass 256 KiB.
      const big = wireSuggestion({ description: "d".repeat(60_000), reasoning: "r".repeat(60_000) });
      for (let i = 0; i < 10 && !silent.end(); i++) await review(c.client, { suggestion: { ...big, id: unique("sug") } });
      const end = await within(silent.ended, { what: "the silent watcher to be ended" });
      // Its trailers could not pass the message stuck before them: the stream is reset with the
      // code gRPC clients read as RESOURCE_EXHAUSTED, which frees what it held.
      expect(end).to.deep.include({ code: status.RESOURCE_EXHAUSTED, reset: true, rstCode: http2.constants.NGHTTP2_ENHANCE_YOUR_CALM });
      const next = await waitFor(
        async () => {
          const w = await watch(c!);
          return w.error() === undefined ? w : undefined;
        },
        { what: "the slot to be free again" },
      );
      next.stream.cancel();
    } finally {
      session.destroy();
    }
  });

  it("does not end a watcher that keeps up when one review is larger than the whole bound", async () => {
    c = await startCouncil({ watchBufferBytes: 64 * 1024 });
    const w = await watch(c);
    const made = await review(c.client, { suggestion: wireSuggestionAtLimits() });
    const id = made.events.at(-1)!.decisionId;
    await waitFor(() => w.events.some((e) => e.event?.$case === "decision" && e.decisionId === id), { what: "the large decision on the watch" });
    expect(w.error()).to.equal(undefined);
    w.stream.cancel();
  });

  it("advertises a limit on concurrent streams per connection", async () => {
    for (const [options, expected] of [
      [{}, 100],
      [{ maxStreamsPerConnection: 7 }, 7],
    ] as const) {
      c = await startCouncil(options);
      const session = http2.connect(`http://${c.addr}`);
      try {
        const settings = await within(new Promise<http2.Settings>((resolve) => session.once("remoteSettings", resolve)), {
          what: "the server's HTTP/2 settings",
        });
        expect(settings.maxConcurrentStreams).to.equal(expected);
      } finally {
        session.destroy();
        await c.stop();
        c = undefined;
      }
    }
  });

  it("ends a ListDecisions page early rather than pass its byte budget, and the token continues", async () => {
    c = await startCouncil();
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await review(c.client, { suggestion: wireSuggestionAtLimits() })).events.at(-1)!.decisionId);
    made.push((await review(c.client, { suggestion: wireSuggestion() })).events.at(-1)!.decisionId);
    const listed: string[] = [];
    let pageToken = "";
    for (let page = 0; page < 20; page++) {
      const res = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 500, pageToken, status: 0, oldestFirst: false });
      expect(res.decisions.length).to.be.at.least(1);
      // A decision at the limits (with a 1 MiB diff) is larger than the budget: it is a page alone.
      const bound = res.decisions.length > 1 ? LIMITS.pageBytes + 4096 : LIMITS.messageBytes;
      expect(ListDecisionsResponse.encode(res).finish().length).to.be.at.most(bound);
      listed.push(...res.decisions.map((d) => d.id));
      pageToken = res.nextPageToken;
      if (!pageToken) break;
    }
    // Newest first, each exactly once.
    expect(listed).to.deep.equal([...made].reverse());
  });

  it("ends a ListLessons page early rather than pass its byte budget", async () => {
    c = await startCouncil();
    const id = (await review(c.client, { suggestion: wireSuggestion() })).events.at(-1)!.decisionId;
    const text = "n".repeat(LIMITS.notesBytes);
    for (let i = 0; i < 20; i++) {
      await call(c.client, c.client.recordOutcome, { decisionId: id, outcome: Outcome.OUTCOME_SUCCESS, notes: text, lessons: text, requestId: "" });
    }
    let count = 0;
    let pages = 0;
    let pageToken = "";
    do {
      const res = await call(c.client, c.client.listLessons, { pageSize: 500, pageToken });
      expect(ListLessonsResponse.encode(res).finish().length).to.be.at.most(LIMITS.pageBytes + 4096);
      count += res.lessons.length;
      pages++;
      pageToken = res.nextPageToken;
    } while (pageToken && pages < 20);
    expect(count).to.equal(20);
    expect(pages).to.equal(2);
  });

  it("counts a decision's and a lesson's bytes at or above their encoded size, and not far above", () => {
    const atLimits = decision({ suggestion: suggestionAtLimits(), outcome: "partial", outcomeNotes: "é".repeat(30_000), implementedAt: new Date() });
    const unicode = decision({ suggestion: suggestion({ title: "😀".repeat(200), description: "naïve ✓ ".repeat(1000) }) });
    for (const d of [decision(), atLimits, unicode] as Decision[]) {
      // As an item of a repeated field: its own tag and length come on top of the message.
      const encoded = WireDecision.encode(decisionToWire(d)).finish().length + 6;
      expect(decisionBytes(d)).to.be.at.least(encoded);
      expect(decisionBytes(d)).to.be.below(encoded * 1.02 + 1024);
    }
    expect(decisionBytes(atLimits)).to.be.below(LIMITS.messageBytes);
    const lesson = {
      decisionId: "dec-1",
      outcome: "success" as const,
      lessons: "l".repeat(65_536),
      notes: "ü".repeat(30_000),
      recordedAt: new Date(),
      recordedBy: "ü".repeat(256),
    };
    const encoded = WireLesson.encode(lessonToWire(lesson)).finish().length + 6;
    expect(lessonBytes(lesson)).to.be.at.least(encoded);
    expect(lessonBytes(lesson)).to.be.below(encoded + 256);
  });

  it("reads COUNCIL_MAX_WATCHERS and COUNCIL_WATCH_BUFFER_BYTES, and refuses bad values naming them", () => {
    expect(loadConfig([], { COUNCIL_MAX_WATCHERS: "50", COUNCIL_WATCH_BUFFER_BYTES: "1048576" })).to.include({
      maxWatchers: 50,
      watchBufferBytes: 1048576,
    });
    expect(loadConfig(["--max-watchers", "7", "--watch-buffer-bytes=65536"], {})).to.include({ maxWatchers: 7, watchBufferBytes: 65536 });
    for (const [env, value] of [
      ["COUNCIL_MAX_WATCHERS", "0"],
      ["COUNCIL_MAX_WATCHERS", "many"],
      ["COUNCIL_WATCH_BUFFER_BYTES", "100"],
      ["COUNCIL_WATCH_BUFFER_BYTES", "1.5"],
    ]) {
      expect(() => loadConfig([], { [env!]: value })).to.throw(ConfigError, `${env} must be a whole number`);
    }
  });
});
