/**
 * `Suggestion.diff` (SPEC section 11, issue 13): the change itself, a unified diff of at most 1 MiB,
 * reaches the council and is kept with the decision, on both stores; a longer one, or one that is
 * not UTF-8, is refused naming `suggestion.diff`; a replay must send the same diff.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Council } from "../../src/app/council.js";
import { InvalidArgumentError } from "../../src/domain/errors.js";
import { decisionIdForRequest } from "../../src/domain/identity.js";
import { decisionBytes, LIMITS } from "../../src/domain/limits.js";
import type { Decision, Verdict, Vote } from "../../src/domain/model.js";
import { PRESETS } from "../../src/domain/presets.js";
import { ANONYMOUS } from "../../src/domain/principal.js";
import { castVote, conclude } from "../../src/domain/rules.js";
import { ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { Decision as WireDecision } from "../../src/gen/council/v1/review.js";
import { createLogger } from "../../src/log.js";
import { decisionToWire } from "../../src/server/convert.js";
import { MemoryStore } from "../../src/store/memory.js";
import { RedisStore } from "../../src/store/redis.js";
import type { Store } from "../../src/store/store.js";
import { suggestionAtLimits } from "../support/at_limits.js";
import { decision, unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { within } from "../support/wait.js";

const DIFF = [
  "diff --git a/src/retry.ts b/src/retry.ts",
  "--- a/src/retry.ts",
  "+++ b/src/retry.ts",
  "@@ -1,4 +1,2 @@",
  "-for (let i = 0; i < 3; i++) {",
  '-  try { return fn(); } catch (e) { log("réessai ✓", e); }',
  "-}",
  "+return retry(fn, { attempts: 3 });",
  "",
].join("\n");

const decisionOf = (r: { events: ReviewSuggestionResponse[] }) => {
  const last = r.events.at(-1)?.event;
  if (last?.$case !== "decision") throw new Error("the review did not end with its decision");
  return last.value;
};

function diffSuite(name: string, open: () => Promise<Store>) {
  describe(`Suggestion.diff over gRPC: ${name}`, function () {
    this.timeout(30_000);
    let c: Running;
    beforeEach(async () => (c = await startCouncil({ store: await open() })));
    afterEach(() => c.stop());

    it("reaches the council and comes back with the decision: streamed, read, listed and replayed", async () => {
      const requestId = unique("req");
      const sent = wireSuggestion({ diff: DIFF });
      const made = await review(c.client, { suggestion: sent, requestId });
      expect(made.error).to.equal(undefined);
      const stored = decisionOf(made);
      expect(stored.suggestion).to.deep.equal(sent);
      expect((await c.store.getDecision(stored.id))!.suggestion.diff).to.equal(DIFF);
      expect((await call(c.client, c.client.getDecision, { id: stored.id })).decision).to.deep.equal(stored);
      const listed = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: sent.id, pageSize: 10, pageToken: "", status: 0, oldestFirst: false });
      expect(listed.decisions).to.deep.equal([stored]);

      // A replay sends the same diff, and gets the stored decision.
      const again = await review(c.client, { suggestion: sent, requestId });
      expect(again.error).to.equal(undefined);
      expect(decisionOf(again)).to.deep.equal(stored);
      // Another diff, or none, under the same request id is another suggestion: a conflict.
      for (const diff of [`${DIFF}+// one more line\n`, ""]) {
        const other = await review(c.client, { suggestion: { ...sent, diff }, requestId });
        expect(other.error?.code, JSON.stringify(diff.slice(-20))).to.equal(status.FAILED_PRECONDITION);
      }
      expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(1);
    });

    it("is empty when the caller sends none, and a dry run shows it as sent", async () => {
      const plain = decisionOf(await review(c.client, { suggestion: wireSuggestion() }));
      expect(plain.suggestion!.diff).to.equal("");
      const dry = decisionOf(await review(c.client, { suggestion: wireSuggestion({ diff: DIFF }), dryRun: true }));
      expect(dry.suggestion!.diff).to.equal(DIFF);
    });

    it("takes a diff of exactly 1 MiB, in bytes, and keeps it whole", async () => {
      // Two-byte characters: 1 MiB of bytes is half as many characters.
      const diff = "é".repeat(LIMITS.diffBytes / 2);
      const made = await review(c.client, { suggestion: wireSuggestion({ diff }), requestId: unique("req") });
      expect(made.error).to.equal(undefined);
      const id = decisionOf(made).id;
      expect((await call(c.client, c.client.getDecision, { id })).decision!.suggestion!.diff).to.equal(diff);
    });
  });
}

diffSuite("in-process", async () => new MemoryStore());

describe("on Redis", function () {
  this.timeout(60_000);
  let server: RedisServer;
  before(async () => (server = await RedisServer.start()));
  after(() => server?.destroy());
  diffSuite("redis", () => RedisStore.open({ url: server.url, prefix: `${unique("t")}:`, log: createLogger("silent") }));
});

/** ReviewSuggestionRequest { suggestion: { id, title, risk: LOW, impact: LOW, diff } } with the diff's bytes as they are. */
function rawReview(diff: Uint8Array): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).string(unique("sug"));
  w.tag(2, WireType.LengthDelimited).string("Tidy the retry helper");
  w.tag(5, WireType.Varint).int32(2);
  w.tag(6, WireType.Varint).int32(2);
  w.tag(11, WireType.LengthDelimited).bytes(diff);
  w.join();
  return Buffer.from(w.finish());
}

describe("Suggestion.diff limits", function () {
  this.timeout(30_000);
  let c: Running;
  let raw: Client;
  beforeEach(async () => {
    c = await startCouncil();
    raw = new Client(c.addr, credentials.createInsecure());
  });
  afterEach(async () => {
    raw.close();
    await c.stop();
  });

  /** Sends `request` as it is (no generated encoder could send invalid UTF-8) and reads the review to its end. */
  function send(request: Buffer): Promise<{ events: ReviewSuggestionResponse[]; error?: ServiceError }> {
    const stream = raw.makeServerStreamRequest(
      "/council.v1.CouncilService/ReviewSuggestion",
      (b: Buffer) => b,
      (b: Buffer) => ReviewSuggestionResponse.decode(b),
      request,
      new Metadata(),
      {},
    );
    const events: ReviewSuggestionResponse[] = [];
    stream.on("data", (e: ReviewSuggestionResponse) => events.push(e));
    return within(
      new Promise((resolve) => {
        stream.on("error", (error: ServiceError) => resolve({ events, error }));
        stream.on("end", () => resolve({ events }));
      }),
      { what: "the review to end" },
    );
  }

  it("refuses a diff one byte over 1 MiB, naming suggestion.diff, and stores nothing", async () => {
    const ascii = await review(c.client, { suggestion: wireSuggestion({ diff: "+".repeat(LIMITS.diffBytes + 1) }) });
    const wide = await review(c.client, { suggestion: wireSuggestion({ diff: `${"é".repeat(LIMITS.diffBytes / 2)}+` }) });
    for (const r of [ascii, wide]) {
      expect(r.events).to.have.length(0);
      expect(r.error?.code).to.equal(status.INVALID_ARGUMENT);
      expect(r.error?.details).to.equal(`suggestion.diff: is ${LIMITS.diffBytes + 1} bytes; the limit is ${LIMITS.diffBytes}`);
    }
    const atLimit = await send(rawReview(Buffer.alloc(LIMITS.diffBytes, 0x2b)));
    expect(atLimit.error).to.equal(undefined);
    expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(1);
  });

  it("refuses a diff that is not UTF-8, naming suggestion.diff", async () => {
    const r = await send(rawReview(Buffer.from([...Buffer.from("+const x = '"), 0xff, 0xfe, ...Buffer.from("';\n")])));
    expect(r.events).to.have.length(0);
    expect(r.error?.code).to.equal(status.INVALID_ARGUMENT);
    expect(r.error?.details).to.equal("suggestion.diff: is not valid UTF-8");
    expect((await call(c.client, c.client.getSummary, {})).totalDecisions).to.equal(0);
  });

  it("is held to its limit by the council itself too, not only by the transport", async () => {
    const council = new Council(new MemoryStore(), PRESETS.default);
    const s = { ...suggestionAtLimits(), diff: "+".repeat(LIMITS.diffBytes + 1) };
    // review() throws at once for input it refuses; a later throw would reject the promise: either counts.
    const refused = await Promise.resolve()
      .then(() => council.review({ suggestion: s, requestId: "", dryRun: true, principal: ANONYMOUS }, async () => {}))
      .then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused).to.be.instanceOf(InvalidArgumentError);
    expect((refused as Error).message).to.equal(`suggestion.diff: is ${LIMITS.diffBytes + 1} bytes; the limit is ${LIMITS.diffBytes}`);
  });

  /** Five external votes at every vote limit (SPEC section 11), each with conditions of its own. */
  const externalVotesAtLimits = (at: Date): Vote[] =>
    PRESETS.default.reviewers.map((r, i) => ({
      reviewerRole: r.role,
      vote: "reject",
      reasoning: "x".repeat(LIMITS.voteReasoningBytes),
      concerns: Array.from({ length: LIMITS.voteItems }, (_, j) => `${i}.${j}`.padEnd(LIMITS.voteItemBytes, "c")),
      conditions: Array.from({ length: LIMITS.voteItems }, (_, j) => `${i}.${j}`.padEnd(LIMITS.voteItemBytes, "k")),
      confidence: 1,
      castAt: at,
      veto: "v".repeat(LIMITS.vetoChars),
      castBy: `${i}`.padEnd(LIMITS.idBytes, "r"),
    }));

  for (const kind of ["the rules' votes", "external votes at their limits"]) {
  it(`with a 1 MiB diff and ${kind}, the largest decision the server can send still fits one message, and is counted above its size`, () => {
    // Every limit at once: the suggestion, the votes, 100 verdicts with the longest comments, notes
    // and lessons, and the longest ids.
    const policy = PRESETS.default;
    const s = suggestionAtLimits();
    const at = new Date();
    const votes = kind === "the rules' votes" ? policy.reviewers.map((r) => castVote(policy, r, s, at)) : externalVotesAtLimits(at);
    const name = "p".repeat(LIMITS.idBytes);
    const verdicts: Verdict[] = Array.from({ length: 100 }, (_, i) => ({
      by: `${i}`.padEnd(LIMITS.idBytes, "p"),
      verdict: "approve",
      comment: "c".repeat(LIMITS.commentBytes),
      givenAt: at,
      requestId: "",
    }));
    const largest: Decision = decision({
      ...conclude(policy, s, votes),
      id: decisionIdForRequest(name, "r".repeat(LIMITS.requestIdBytes)),
      suggestion: s,
      votes,
      requestId: "r".repeat(LIMITS.requestIdBytes),
      submittedBy: name,
      outcome: "partial",
      outcomeNotes: "n".repeat(LIMITS.notesBytes),
      lessonsLearned: "l".repeat(LIMITS.notesBytes),
      outcomeRecordedBy: name,
      implementedAt: at,
      verdicts,
      approvalsRequired: 100,
      expiresAt: at,
      supersedes: "d".repeat(LIMITS.idBytes),
      supersededBy: "d".repeat(LIMITS.idBytes),
    });
    expect(largest.suggestion.diff.length).to.equal(LIMITS.diffBytes);
    const encoded = WireDecision.encode(decisionToWire(largest)).finish().length;
    expect(decisionBytes(largest)).to.be.at.least(encoded + 6);
    // In a response it is one field of a message: its tag and length, and the event's ids, come on top.
    expect(decisionBytes(largest) + 1024).to.be.below(LIMITS.messageBytes);
  });
  }
});

