/**
 * The checks a request's bytes pass before they are decoded (src/server/decode.ts): limits of every
 * string and list, UTF-8, protobuf itself; and the largest valid request, worked out from the
 * limits. Unit tests on hand-made bytes; test/attack/ sends such requests to a real server.
 */
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, ScalarType, type DescMessage } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { expect } from "chai";
import { LIMITS, REQUEST_FIELD_LIMITS } from "../../src/domain/limits.js";
import { ReviewSuggestionRequest } from "../../src/gen/council/v1/council_service.js";
import { checkRequest, largestMessage, largestRequest } from "../../src/server/decode.js";
import { DESCRIPTOR_SET_URL } from "../../src/server/reflection.js";
import { COUNCIL_SERVICE } from "../../src/server/server.js";
import { wireSuggestionAtLimits } from "../support/at_limits.js";

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(DESCRIPTOR_SET_URL)));
const service = registry.getService(COUNCIL_SERVICE)!;
const input = (method: string) => service.methods.find((m) => m.name === method)!.input;

/** Every message a request can hold, the request included. */
function reachable(desc: DescMessage, seen = new Map<string, DescMessage>()): Map<string, DescMessage> {
  if (seen.has(desc.typeName)) return seen;
  seen.set(desc.typeName, desc);
  for (const f of desc.fields) {
    if (f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) reachable(f.message, seen);
  }
  return seen;
}

/** A ReviewSuggestionRequest whose suggestion is written `times` times, each with `steps` fix steps. */
function suggestionTimes(times: number, steps: number): Uint8Array {
  const w = new BinaryWriter();
  for (let t = 0; t < times; t++) {
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string("sug-1");
    for (let i = 0; i < steps; i++) w.tag(8, WireType.LengthDelimited).string("step");
    w.join();
  }
  return w.finish();
}

describe("request bytes checked before decoding", () => {
  it("every string and list of every request has a limit", () => {
    for (const method of service.methods) {
      for (const [typeName, desc] of reachable(method.input)) {
        for (const f of desc.fields) {
          const limit = REQUEST_FIELD_LIMITS[typeName]?.[f.name];
          const where = `${method.name}: ${typeName}.${f.name}`;
          if (f.fieldKind === "list" || f.fieldKind === "map") expect(limit?.items, where).to.be.a("number");
          const text = (f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")) && (f.scalar === ScalarType.STRING || f.scalar === ScalarType.BYTES);
          if (text) expect(limit?.bytes, where).to.be.a("number");
        }
      }
    }
  });

  it("the largest valid request is a request at every limit, numbers at their longest", () => {
    const atLimits = ReviewSuggestionRequest.encode(ReviewSuggestionRequest.fromPartial({ suggestion: wireSuggestionAtLimits(), requestId: "r".repeat(LIMITS.requestIdBytes), dryRun: true })).finish();
    const largest = largestRequest(registry, COUNCIL_SERVICE);
    expect(largest).to.equal(largestMessage(input("ReviewSuggestion")));
    expect(largest - atLimits.length).to.be.within(0, 1024);
    expect(checkRequest(input("ReviewSuggestion"), atLimits)).to.equal(undefined);
  });

  it("a string or list without a limit stops the server from working out its largest request", () => {
    const { request_id: _left, ...others } = REQUEST_FIELD_LIMITS["council.v1.ReviewSuggestionRequest"]!;
    const limits = { ...REQUEST_FIELD_LIMITS, "council.v1.ReviewSuggestionRequest": others };
    expect(() => largestMessage(input("ReviewSuggestion"), limits)).to.throw("council.v1.ReviewSuggestionRequest.request_id has no byte limit");
  });

  it("counts a list across every copy of the message that holds it (protobuf merges them)", () => {
    const review = input("ReviewSuggestion");
    expect(checkRequest(review, suggestionTimes(1, LIMITS.fixSteps))).to.equal(undefined);
    expect(checkRequest(review, suggestionTimes(2, LIMITS.fixSteps / 2))).to.equal(undefined);
    expect(checkRequest(review, suggestionTimes(2, LIMITS.fixSteps / 2 + 1))?.message).to.equal(
      `suggestion.fix_steps: has more than ${LIMITS.fixSteps} items; the limit is ${LIMITS.fixSteps}`,
    );
  });

  it("names the first string past its limit, or not UTF-8, with its index in a list", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(8, WireType.LengthDelimited).string("ok");
    w.tag(8, WireType.LengthDelimited).string("x".repeat(LIMITS.fixStepBytes + 1));
    w.join();
    expect(checkRequest(input("ReviewSuggestion"), w.finish())?.message).to.equal(
      `suggestion.fix_steps[1]: is ${LIMITS.fixStepBytes + 1} bytes; the limit is ${LIMITS.fixStepBytes}`,
    );
    const bad = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(Uint8Array.from([0x61, 0xff])).finish();
    expect(checkRequest(input("ReviewSuggestion"), bad)?.message).to.equal("request_id: is not valid UTF-8");
  });

  it("skips unknown fields, and known fields sent with another wire type, as the decoder does", () => {
    const w = new BinaryWriter();
    w.tag(1, WireType.Varint).int32(7); // `id` is a string: a varint there is skipped
    w.tag(99, WireType.Bit64).fixed64(1);
    w.tag(98, WireType.StartGroup).tag(1, WireType.Varint).int32(1).tag(98, WireType.EndGroup);
    expect(checkRequest(input("GetDecision"), w.finish())).to.equal(undefined);
  });

  it("refuses bytes that are not protobuf, naming the request", () => {
    const notProtobuf = "request: is not a valid council.v1.GetDecisionRequest (malformed protobuf)";
    const groups = (n: number) => Uint8Array.from([...Array<number>(n).fill((15 << 3) | 3), ...Array<number>(n).fill((15 << 3) | 4)]);
    for (const bytes of [
      [0x08, 0xff], // a varint cut off
      [0x0a, 0x05, 0x61], // a length past the end
      [0x0e], // wire type 6
      [0x0f], // wire type 7
      [0x0c], // an end of group never started
      [0x00], // field 0
      [...groups(101)], // groups nested deeper than protobuf's decoders allow
    ]) {
      expect(checkRequest(input("GetDecision"), Uint8Array.from(bytes))?.message, JSON.stringify(bytes.slice(0, 4))).to.equal(notProtobuf);
    }
    expect(checkRequest(input("GetDecision"), groups(99))).to.equal(undefined);
  });
});
