/**
 * How CouncilService requests are read. Each request's bytes are checked before the generated
 * decoder sees them, by walking them with the service's descriptors (src/gen/council.binpb):
 *
 * - every string and list is held to its limit (REQUEST_FIELD_LIMITS, src/domain/limits.ts): a
 *   4 MB request of two million empty `files_affected` entries used to decode into about 30 MB of
 *   heap before validation refused it, so a few such requests killed the server; now it costs
 *   one pass over its bytes and no allocation;
 * - every string must be valid UTF-8 (proto3 requires it). The generated decoders (ts-proto over
 *   @bufbuild/protobuf's BinaryReader) would replace invalid bytes with U+FFFD, so two different
 *   request ids (`…\xFF`, `…\xFE`) would read as one and replay the same decision;
 * - the bytes must be protobuf: a truncated varint, a length past the end, wire type 6 or 7,
 *   groups nested deeper than protobuf's own decoders allow.
 *
 * A request that fails is refused with INVALID_ARGUMENT naming the field (`suggestion.fix_steps`,
 * `request_id`), or `request` when the bytes are not protobuf at all. grpc-js answers a
 * deserializer that throws with INTERNAL ("Error deserializing request": a server bug, to a
 * client), so the deserializer never throws: it returns a refusal, which call_bounds.ts answers as
 * soon as it arrives (after the caller's access is checked, calls.ts), and the handler never runs.
 *
 * The same limits give the largest valid request (`largestRequest`), the most the server accepts.
 */
import { isUtf8 } from "node:buffer";
import { ScalarType, type DescField, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { InvalidArgumentError } from "../domain/errors.js";
import { REQUEST_FIELD_LIMITS, type FieldLimit } from "../domain/limits.js";

type Limits = Readonly<Record<string, Readonly<Record<string, FieldLimit>>>>;

const REFUSED = Symbol("refused request");

/** What a strict deserializer returns for a request it refuses. */
interface Refusal {
  [REFUSED]: InvalidArgumentError;
}

/** The error a request was refused with while it was decoded, if it was. */
export function refusalOf(request: unknown): InvalidArgumentError | undefined {
  return typeof request === "object" && request !== null && REFUSED in request ? (request as Refusal)[REFUSED] : undefined;
}

/** Messages (or groups of unknown fields) nested deeper than this are refused, as protobuf's decoders do. */
const MAX_DEPTH = 100;

/** The bytes are not protobuf: the walk stops, and the request is refused naming `request`. */
class Malformed extends Error {}

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 like @bufbuild/protobuf does (a leading U+FEFF is text), but refuses invalid bytes. */
function strictUtf8(bytes: Uint8Array): string {
  return fatal.decode(bytes);
}

/** Whether the generated decoder reads `field` from a length-delimited record (else it skips one). */
function isLengthDelimited(field: DescField): boolean {
  switch (field.fieldKind) {
    case "scalar":
      return field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES;
    case "message":
    case "map":
      return true;
    case "list":
      // A list of numbers or enums may be packed into one record; this walk counts records.
      return true;
    default:
      return false;
  }
}

const fieldsOf = new WeakMap<DescMessage, Map<number, DescField>>();
function fieldByNumber(desc: DescMessage, number: number): DescField | undefined {
  let fields = fieldsOf.get(desc);
  if (!fields) {
    fields = new Map(desc.fields.map((f) => [f.number, f]));
    fieldsOf.set(desc, fields);
  }
  return fields.get(number);
}

/** Why one string (or bytes) value is refused, or undefined: past its limit, or not UTF-8. */
function textRefusal(path: string, data: Uint8Array): InvalidArgumentError | undefined {
  const problem = textProblem(data, true, undefined);
  return problem === undefined ? undefined : new InvalidArgumentError(path, problem);
}

function textProblem(data: Uint8Array, isString: boolean, limit: FieldLimit | undefined): string | undefined {
  if (limit?.bytes !== undefined && data.length > limit.bytes) return `is ${data.length} bytes; the limit is ${limit.bytes}`;
  if (isString && !isUtf8(data)) return "is not valid UTF-8";
  return undefined;
}

/**
 * Walks the bytes of one `desc` message, and returns the first problem in the order of the bytes.
 * Lists are counted in `counts` by path, across repeated occurrences of the message that holds
 * them (protobuf merges those); the walk stops at the first item past the limit, so a request of
 * two million entries costs no more than one at the limit. Throws Malformed when the bytes are not
 * protobuf.
 */
function walk(desc: DescMessage, bytes: Uint8Array, prefix: string, counts: Map<string, number>, limits: Limits, depth: number): InvalidArgumentError | undefined {
  if (depth > MAX_DEPTH) throw new Malformed();
  const reader = new BinaryReader(bytes);
  const fieldLimits = limits[desc.typeName] ?? {};
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = fieldByNumber(desc, number);
    if (!field || wireType !== WireType.LengthDelimited || !isLengthDelimited(field)) {
      // An unknown field, or a known one with another wire type, which the decoder skips too. A
      // group's end without its start is not protobuf; skip() checks lengths and group nesting.
      if (wireType === WireType.EndGroup) throw new Malformed();
      reader.skip(wireType, number, MAX_DEPTH - depth);
      continue;
    }
    const data = reader.bytes();
    const limit = fieldLimits[field.name];
    // Paths are built only for lists (to count their items) and for a refusal: a valid request
    // allocates no path strings (this walk runs on every request).
    let problem: string | undefined;
    let refused: InvalidArgumentError | undefined;
    switch (field.fieldKind) {
      case "scalar":
        problem = textProblem(data, field.scalar === ScalarType.STRING, limit);
        if (problem) refused = new InvalidArgumentError(`${prefix}${field.name}`, problem);
        break;
      case "message":
        refused = walk(field.message, data, `${prefix}${field.name}.`, counts, limits, depth + 1);
        break;
      case "list": {
        const path = `${prefix}${field.name}`;
        const index = counts.get(path) ?? 0;
        counts.set(path, index + 1);
        if (limit?.items !== undefined && index >= limit.items) {
          return new InvalidArgumentError(path, `has more than ${limit.items} items; the limit is ${limit.items}`);
        }
        if (field.listKind === "scalar" && (field.scalar === ScalarType.STRING || field.scalar === ScalarType.BYTES)) {
          problem = textProblem(data, field.scalar === ScalarType.STRING, limit);
          if (problem) refused = new InvalidArgumentError(`${path}[${index}]`, problem);
        } else if (field.listKind === "message") {
          refused = walk(field.message, data, `${path}[${index}].`, counts, limits, depth + 1);
        }
        break;
      }
      case "map": {
        // A map entry is a message with the key as field 1 and the value as field 2.
        const path = `${prefix}${field.name}`;
        const entry = new BinaryReader(data);
        while (entry.pos < entry.len && !refused) {
          const [n, t] = entry.tag();
          if (t !== WireType.LengthDelimited || (n !== 1 && n !== 2)) {
            if (t === WireType.EndGroup) throw new Malformed();
            entry.skip(t, n, MAX_DEPTH - depth);
            continue;
          }
          const part = entry.bytes();
          if (n === 1 && field.mapKey === ScalarType.STRING) refused = textRefusal(path, part);
          if (n === 2 && field.mapKind === "scalar" && field.scalar === ScalarType.STRING) refused = textRefusal(path, part);
          if (n === 2 && field.mapKind === "message") refused = walk(field.message, part, `${path}.`, counts, limits, depth + 1);
        }
        if (entry.pos > entry.len) throw new Malformed();
        break;
      }
      default:
        break;
    }
    if (refused) return refused;
  }
  // A varint cut off at the very end leaves the reader past the end instead of throwing.
  if (reader.pos > reader.len) throw new Malformed();
  return undefined;
}

/**
 * Why a request (`desc`, its bytes) is refused before it is decoded, or undefined: the first
 * string past its byte limit or not valid UTF-8, or list past its item limit, in the order of the
 * bytes; `request` if the bytes are not protobuf.
 */
export function checkRequest(desc: DescMessage, bytes: Uint8Array, limits: Limits = REQUEST_FIELD_LIMITS): InvalidArgumentError | undefined {
  try {
    return walk(desc, bytes, "", new Map(), limits, 0);
  } catch {
    return notProtobuf(desc);
  }
}

function notProtobuf(desc: DescMessage): InvalidArgumentError {
  return new InvalidArgumentError("request", `is not a valid ${desc.typeName} (malformed protobuf)`);
}

/** Bytes a varint of `n` takes. */
function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

/** The most bytes one scalar value of `scalar` can take (a string or bytes: `bytes` of it). */
function scalarBytes(scalar: ScalarType, bytes: number | undefined, where: string): number {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      if (bytes === undefined) throw new Error(`${where} has no byte limit (REQUEST_FIELD_LIMITS, src/domain/limits.ts)`);
      return varintBytes(bytes) + bytes;
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
    case ScalarType.FLOAT:
      return 4;
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
    case ScalarType.DOUBLE:
      return 8;
    default:
      return 10; // any varint
  }
}

/**
 * The size in bytes of the largest `desc` message whose every field is at its limit (each field
 * once, numbers at their longest encoding): no valid request is larger. Throws, naming the field,
 * when a string or list has no limit, or the message contains itself (it would have no largest).
 */
export function largestMessage(desc: DescMessage, limits: Limits = REQUEST_FIELD_LIMITS, within: readonly string[] = []): number {
  if (within.includes(desc.typeName)) throw new Error(`${desc.typeName} contains itself: a request holding it has no largest size`);
  const inner = [...within, desc.typeName];
  let total = 0;
  for (const field of desc.fields) {
    const where = `${desc.typeName}.${field.name}`;
    const limit = limits[desc.typeName]?.[field.name];
    const tag = varintBytes(field.number * 8);
    const messageBytes = (m: DescMessage) => {
      const size = largestMessage(m, limits, inner);
      return varintBytes(size) + size;
    };
    switch (field.fieldKind) {
      case "scalar":
        total += tag + scalarBytes(field.scalar, limit?.bytes, where);
        break;
      case "enum":
        total += tag + 10;
        break;
      case "message":
        total += tag + messageBytes(field.message);
        break;
      case "list": {
        if (limit?.items === undefined) throw new Error(`${where} has no item limit (REQUEST_FIELD_LIMITS, src/domain/limits.ts)`);
        const item =
          field.listKind === "message" ? messageBytes(field.message) : field.listKind === "enum" ? 10 : scalarBytes(field.scalar, limit.bytes, where);
        total += limit.items * (tag + item);
        break;
      }
      case "map":
        throw new Error(`${where} is a map: give it limits (REQUEST_FIELD_LIMITS) and teach largestMessage its entries`);
    }
  }
  return total;
}

/** The largest valid request of any method of `serviceName` (see `largestMessage`). */
export function largestRequest(registry: FileRegistry, serviceName: string, limits: Limits = REQUEST_FIELD_LIMITS): number {
  const desc = registry.getService(serviceName);
  if (!desc) throw new Error(`the descriptor set has no service ${serviceName}`);
  return Math.max(...desc.methods.map((m) => largestMessage(m.input, limits)));
}

/**
 * `service` with every request deserializer made strict (see the top of this file). `registry`
 * holds the service's descriptors, which name the field that was refused.
 */
export function strictService<S extends ServiceDefinition>(service: S, registry: FileRegistry, serviceName: string): S {
  const desc = registry.getService(serviceName);
  if (!desc) throw new Error(`the descriptor set has no service ${serviceName}`);
  const out: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(service)) {
    const name = method.path.slice(method.path.lastIndexOf("/") + 1);
    const input = desc.methods.find((m) => m.name === name)?.input;
    if (!input) throw new Error(`the descriptor set has no method ${serviceName}.${name}`);
    const lenient = method.requestDeserialize;
    const refuse = (err: InvalidArgumentError): Refusal => ({ [REFUSED]: err });
    out[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const refused = checkRequest(input, bytes);
        if (refused) return refuse(refused);
        try {
          // The generated decoders read strings through the reader they are given.
          return lenient(new BinaryReader(bytes, strictUtf8) as unknown as Buffer);
        } catch {
          // The walk above accepts what the decoder reads; should they ever disagree, the request
          // is still refused, not answered INTERNAL.
          return refuse(notProtobuf(input));
        }
      },
    };
  }
  return out as S;
}
