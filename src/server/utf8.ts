/**
 * Proto3 strings must be valid UTF-8. The generated decoders (ts-proto over @bufbuild/protobuf's
 * BinaryReader) replace invalid bytes with U+FFFD, so two different request ids (`…\xFF`,
 * `…\xFE`) would read as one and replay the same decision. Here each request is decoded with a
 * strict UTF-8 decoder instead; a request that fails it is refused with INVALID_ARGUMENT naming
 * the field, found by walking the bytes with the service's descriptors.
 *
 * grpc-js answers a deserializer that throws with INTERNAL, so the deserializer does not throw: it
 * returns a refusal that the call wrappers (calls.ts) turn into the status before the handler runs.
 */
import { isUtf8 } from "node:buffer";
import { ScalarType, type DescField, type DescMessage, type FileRegistry } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { InvalidArgumentError } from "../domain/errors.js";

const REFUSED = Symbol("refused request");

/** What a strict deserializer returns for a request it refuses. */
interface Refusal {
  [REFUSED]: InvalidArgumentError;
}

/** The error a request was refused with while it was decoded, if it was. */
export function refusalOf(request: unknown): InvalidArgumentError | undefined {
  return typeof request === "object" && request !== null && REFUSED in request ? (request as Refusal)[REFUSED] : undefined;
}

class InvalidUtf8 extends Error {}

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes UTF-8 like @bufbuild/protobuf does (a leading U+FEFF is text), but refuses invalid bytes. */
function strictUtf8(bytes: Uint8Array): string {
  try {
    return fatal.decode(bytes);
  } catch {
    throw new InvalidUtf8();
  }
}

/**
 * The path of the first string field in `bytes` (a `desc` message) that is not valid UTF-8, as
 * the proto names it: `suggestion.fix_steps[2]`, `request_id`. Undefined if there is none.
 */
export function invalidUtf8Field(desc: DescMessage, bytes: Uint8Array, prefix = ""): string | undefined {
  const reader = new BinaryReader(bytes);
  const fields = new Map<number, DescField>(desc.fields.map((f) => [f.number, f]));
  const seen = new Map<number, number>();
  while (reader.pos < reader.len) {
    const [number, wireType] = reader.tag();
    const field = fields.get(number);
    if (!field || wireType !== WireType.LengthDelimited) {
      reader.skip(wireType, number);
      continue;
    }
    const data = reader.bytes();
    const index = seen.get(number) ?? 0;
    seen.set(number, index + 1);
    const path = `${prefix}${field.name}`;
    switch (field.fieldKind) {
      case "scalar":
        if (field.scalar === ScalarType.STRING && !isUtf8(data)) return path;
        break;
      case "message": {
        const inner = invalidUtf8Field(field.message, data, `${path}.`);
        if (inner) return inner;
        break;
      }
      case "list":
        if (field.listKind === "scalar" && field.scalar === ScalarType.STRING && !isUtf8(data)) return `${path}[${index}]`;
        if (field.listKind === "message") {
          const inner = invalidUtf8Field(field.message, data, `${path}[${index}].`);
          if (inner) return inner;
        }
        break;
      case "map": {
        // A map entry is a message with the key as field 1 and the value as field 2.
        const entry = new BinaryReader(data);
        while (entry.pos < entry.len) {
          const [n, t] = entry.tag();
          if (t !== WireType.LengthDelimited || (n !== 1 && n !== 2)) {
            entry.skip(t, n);
            continue;
          }
          const part = entry.bytes();
          if (n === 1 && field.mapKey === ScalarType.STRING && !isUtf8(part)) return path;
          if (n === 2 && field.mapKind === "scalar" && field.scalar === ScalarType.STRING && !isUtf8(part)) return path;
          if (n === 2 && field.mapKind === "message") {
            const inner = invalidUtf8Field(field.message, part, `${path}.`);
            if (inner) return inner;
          }
        }
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}

/**
 * `service` with every request deserializer made strict about UTF-8. `registry` holds the
 * service's descriptors (src/gen/council.binpb), which name the field that was invalid.
 */
export function strictUtf8Service<S extends ServiceDefinition>(service: S, registry: FileRegistry, serviceName: string): S {
  const desc = registry.getService(serviceName);
  if (!desc) throw new Error(`the descriptor set has no service ${serviceName}`);
  const out: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(service)) {
    const name = method.path.slice(method.path.lastIndexOf("/") + 1);
    const input = desc.methods.find((m) => m.name === name)?.input;
    if (!input) throw new Error(`the descriptor set has no method ${serviceName}.${name}`);
    const lenient = method.requestDeserialize;
    out[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          // The generated decoders read strings through the reader they are given.
          return lenient(new BinaryReader(bytes, strictUtf8) as unknown as Buffer);
        } catch (err) {
          if (!(err instanceof InvalidUtf8)) throw err;
          const field = invalidUtf8Field(input, bytes) ?? "request";
          const refusal: Refusal = { [REFUSED]: new InvalidArgumentError(field, "is not valid UTF-8") };
          return refusal;
        }
      },
    };
  }
  return out as S;
}
