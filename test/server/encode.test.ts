/** The shared-writer serializers (src/server/encode.ts): the generated encoder's bytes, message after message. */
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { expect } from "chai";
import { ReviewSuggestionResponse, WatchDecisionsResponse } from "../../src/gen/council/v1/council_service.js";
import { encodeFramed, encodeMessage } from "../../src/server/encode.js";
import { wireSuggestion } from "../support/fixtures.js";

const vote = (reasoning: string): ReviewSuggestionResponse => ({
  event: { $case: "vote", value: { reviewerRole: 1, vote: 1, reasoning, concerns: ["a"], conditions: [], confidence: 0.5, castAt: new Date(0), veto: "", castBy: "rules" } },
  decisionId: "dec-1",
  suggestionId: "sug-1",
});

describe("shared-writer serializers", () => {
  it("give the generated encoder's bytes for messages large and small in any order, each its own buffer", () => {
    const messages = [vote("short"), vote("x".repeat(200_000)), vote(""), vote("é".repeat(70_000)), vote("last")];
    const encoded = messages.map((m) => encodeMessage(ReviewSuggestionResponse, m));
    messages.forEach((m, i) => expect(Buffer.compare(encoded[i]!, Buffer.from(ReviewSuggestionResponse.encode(m).finish()))).to.equal(0));
    // Each result stays as it was after later messages were encoded (no shared bytes).
    expect(ReviewSuggestionResponse.decode(encoded[0]!).event).to.deep.include({ $case: "vote" });
    expect((ReviewSuggestionResponse.decode(encoded[0]!).event as { value: { reasoning: string } }).value.reasoning).to.equal("short");
  });

  it("frames a message as gRPC does: 0, the length big-endian, the bytes", () => {
    const m: WatchDecisionsResponse = { event: undefined, decisionId: "dec-2", suggestionId: wireSuggestion().id };
    const body = Buffer.from(WatchDecisionsResponse.encode(m).finish());
    const framed = encodeFramed(WatchDecisionsResponse, m);
    expect(framed[0]).to.equal(0);
    expect(framed.readUInt32BE(1)).to.equal(body.length);
    expect(Buffer.compare(framed.subarray(5), body)).to.equal(0);
  });

  it("is ready for the next message after an encoder throws", () => {
    // It throws halfway through a nested message, leaving bytes and a fork behind.
    const broken = {
      encode: (_: unknown, w: BinaryWriter) => {
        w.uint32(10).fork().string("partial");
        throw new Error("boom");
      },
    };
    expect(() => encodeMessage(broken as never, {})).to.throw("boom");
    const m = vote("after");
    expect(Buffer.compare(encodeMessage(ReviewSuggestionResponse, m), Buffer.from(ReviewSuggestionResponse.encode(m).finish()))).to.equal(0);
  });
});
