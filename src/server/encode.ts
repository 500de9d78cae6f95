/**
 * Response serializers that encode into one reused protobuf writer. The generated ones
 * (`Buffer.from(X.encode(value).finish())`) start a new writer for every message, grow its buffer
 * from a few bytes by doubling, and copy the result twice; a review sends six messages, and that was
 * half of what encoding them cost (profiles and a micro-benchmark in bench/README.md). Encoding is
 * synchronous, so one writer serves the whole process: it keeps the buffer of the largest message
 * encoded so far (at most twice `LIMITS.messageBytes`). The bytes are the generated encoder's.
 */
import type { FileRegistry } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import type { ServiceDefinition } from "@grpc/grpc-js";

/** A generated message's encoder (ts-proto writes into the writer it is given). */
export interface Encoder<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

const writer = new BinaryWriter();

/** `value` encoded by `type`, as a Buffer over the writer's copy of the bytes (no second copy). */
export function encodeMessage<T>(type: Encoder<T>, value: T): Buffer {
  try {
    type.encode(value, writer);
  } catch (err) {
    writer.finish(); // resets the writer for the next message
    throw err;
  }
  const bytes = writer.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const PREFIX = new Uint8Array(5);

/**
 * `value` as one gRPC message on the wire: the 5-byte prefix (not compressed, the length) and the
 * encoding, made in the shared writer.
 */
export function encodeFramed<T>(type: Encoder<T>, value: T): Buffer {
  writer.raw(PREFIX);
  const out = encodeMessage(type, value);
  out[0] = 0;
  out.writeUInt32BE(out.length - PREFIX.length, 1);
  return out;
}

/**
 * `service` with each response serializer encoding into the shared writer. `messages` holds the
 * generated encoders by message name (the generated module's exports); a response type missing
 * from it stops the server at start-up rather than falling back unnoticed.
 */
export function sharedWriterService<S extends ServiceDefinition>(
  service: S,
  registry: FileRegistry,
  serviceName: string,
  messages: Readonly<Record<string, unknown>>,
): S {
  const desc = registry.getService(serviceName);
  if (!desc) throw new Error(`the descriptor set has no service ${serviceName}`);
  const out: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(service)) {
    const name = method.path.slice(method.path.lastIndexOf("/") + 1);
    const output = desc.methods.find((m) => m.name === name)?.output;
    const type = output && (messages[output.name] as Encoder<unknown> | undefined);
    if (typeof type?.encode !== "function") throw new Error(`no generated encoder for the response of ${serviceName}.${name}`);
    out[key] = { ...method, responseSerialize: (value: unknown) => encodeMessage(type, value) };
  }
  return out as S;
}
