/**
 * Proto3 strings must be valid UTF-8. These requests are encoded by hand, byte for byte, and sent
 * through a real grpc-js client whose serializer passes the bytes as they are: no generated
 * encoder can produce invalid UTF-8, which is exactly what an attacker's client would send.
 */
import { Client, credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { expect } from "chai";
import { GetDecisionResponse, GetSummaryResponse, ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { unique } from "../support/fixtures.js";
import { startCouncil, type Running } from "../support/server.js";
import { within } from "../support/wait.js";

const utf8 = (text: string) => new TextEncoder().encode(text);
const bytes = (...parts: (string | number[])[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === "string" ? [...utf8(p)] : p)));

interface RawSuggestion {
  id?: Uint8Array;
  title?: Uint8Array;
  fixSteps?: Uint8Array[];
}

/** ReviewSuggestionRequest { suggestion: { id, title, risk: LOW, impact: LOW, fix_steps }, request_id }. */
function reviewRequest(s: RawSuggestion, requestId?: Uint8Array): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).fork();
  w.tag(1, WireType.LengthDelimited).bytes(s.id ?? utf8(unique("sug")));
  w.tag(2, WireType.LengthDelimited).bytes(s.title ?? utf8("Tidy the retry helper"));
  w.tag(5, WireType.Varint).int32(2);
  w.tag(6, WireType.Varint).int32(2);
  for (const step of s.fixSteps ?? []) w.tag(8, WireType.LengthDelimited).bytes(step);
  w.join();
  if (requestId) w.tag(2, WireType.LengthDelimited).bytes(requestId);
  return w.finish();
}

/** A message with one length-delimited field `field` holding `value`. */
function oneString(field: number, value: Uint8Array): Uint8Array {
  return new BinaryWriter().tag(field, WireType.LengthDelimited).bytes(value).finish();
}

const asIs = (b: Buffer) => b;

describe("invalid UTF-8 in requests", () => {
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

  function unary<Res>(method: string, request: Uint8Array, decode: (b: Buffer) => Res): Promise<Res> {
    return within(
      new Promise<Res>((resolve, reject) =>
        raw.makeUnaryRequest(`/council.v1.CouncilService/${method}`, asIs, decode, Buffer.from(request), new Metadata(), {}, (err, res) =>
          err ? reject(err) : resolve(res!),
        ),
      ),
      { what: `${method} to answer` },
    );
  }

  function reviewRaw(request: Uint8Array): Promise<{ events: ReviewSuggestionResponse[]; error?: ServiceError }> {
    const stream = raw.makeServerStreamRequest(
      "/council.v1.CouncilService/ReviewSuggestion",
      asIs,
      (b: Buffer) => ReviewSuggestionResponse.decode(b),
      Buffer.from(request),
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
      { what: "the review stream to end" },
    );
  }

  const summary = () => unary("GetSummary", new Uint8Array(), (b) => GetSummaryResponse.decode(b));

  it("refuses request ids that differ only in invalid bytes, instead of replaying one decision for both", async () => {
    const base = unique("req");
    const first = await reviewRaw(reviewRequest({}, bytes(base, [0xff])));
    const second = await reviewRaw(reviewRequest({}, bytes(base, [0xfe])));
    for (const r of [first, second]) {
      expect(r.events).to.have.length(0);
      expect(r.error?.code).to.equal(status.INVALID_ARGUMENT);
      expect(r.error?.details).to.equal("request_id: is not valid UTF-8");
    }
    expect((await summary()).totalDecisions).to.equal(0);
  });

  const cases: [string, Uint8Array, string][] = [
    ["a suggestion's title", reviewRequest({ title: bytes("Tidy ", [0xc3]) }), "suggestion.title"],
    ["an item of a repeated field", reviewRequest({ fixSteps: [utf8("ok"), bytes("step ", [0xff, 0xfe])] }), "suggestion.fix_steps[1]"],
    ["an overlong encoding", reviewRequest({ id: bytes("sug-", [0xc0, 0xaf]) }), "suggestion.id"],
    ["a surrogate encoded in UTF-8", reviewRequest({ title: bytes("half ", [0xed, 0xa0, 0x80]) }), "suggestion.title"],
  ];
  for (const [what, request, field] of cases) {
    it(`names the field: ${what}`, async () => {
      const r = await reviewRaw(request);
      expect(r.error?.code).to.equal(status.INVALID_ARGUMENT);
      expect(r.error?.details).to.equal(`${field}: is not valid UTF-8`);
    });
  }

  it("refuses invalid UTF-8 in every RPC's strings, naming the field", async () => {
    const refused = async (method: string, request: Uint8Array, field: string) => {
      const err = (await unary(method, request, asIs).then(
        () => undefined,
        (e: ServiceError) => e,
      )) as ServiceError | undefined;
      expect(err?.code, method).to.equal(status.INVALID_ARGUMENT);
      expect(err?.details, method).to.equal(`${field}: is not valid UTF-8`);
    };
    await refused("GetDecision", oneString(1, bytes("dec-", [0xff])), "id");
    await refused("ListDecisions", oneString(2, bytes("sug-", [0x80])), "suggestion_id");
    await refused("RecordOutcome", oneString(3, bytes("notes ", [0xf8, 0x88, 0x80, 0x80, 0x80])), "notes");
  });

  it("accepts valid UTF-8 of every length, a leading byte-order mark included, and keeps it exactly", async () => {
    const title = "\uFEFFCafé ✓ 😀 — naïve";
    const r = await reviewRaw(reviewRequest({ title: utf8(title) }));
    expect(r.error).to.equal(undefined);
    const id = r.events.at(-1)!.decisionId;
    const got = await unary("GetDecision", oneString(1, utf8(id)), (b) => GetDecisionResponse.decode(b));
    expect(got.decision?.suggestion?.title).to.equal(title);
  });
});
