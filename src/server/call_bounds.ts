/**
 * Bounds every gRPC call is held to from the moment its stream opens, before any handler runs (a
 * grpc-js server interceptor, so that health and reflection are bounded too):
 *
 * - Call memory. The bytes every call holds, over all connections, are counted against one budget
 *   (`COUNCIL_CALL_MEMORY_BYTES`): a fixed cost per open stream; its request, from the moment the
 *   5-byte prefix of its message announces the size (the whole size is counted then, so a request
 *   that cannot be held is refused after its first bytes, not its last) until the call ends (the
 *   decoded request lives as long as the handler); and each response message from when it is
 *   handed to HTTP/2 until it has been sent. A call that would pass the budget is ended with
 *   RESOURCE_EXHAUSTED, so attackers that send requests which never finish, or never read what
 *   they asked for, exhaust the budget rather than the heap. Watches are the exception for
 *   responses: their events have their own bound (`COUNCIL_WATCH_BUFFER_BYTES` per watcher,
 *   `COUNCIL_MAX_WATCHERS` watchers), and are not counted twice.
 * - A deadline for the request (`COUNCIL_REQUEST_RECEIVE_TIMEOUT_MS`). grpc-js runs a unary or
 *   server-streaming handler only once the client half-closes, and has no timeout of its own: a
 *   stream that sent only its headers, or a request it never finished, was held forever. A call
 *   whose request has not arrived in full within the deadline is ended with DEADLINE_EXCEEDED.
 *   Reflection, whose client keeps a stream open to send request after request, has none.
 * - A request refused while it was decoded (decode.ts) is answered as soon as it arrives, after
 *   the same access checks as any call (calls.ts `refuseEarly`), without waiting for a half-close
 *   that may never come. A stream of requests (ServeReviews) is the exception: its handler is
 *   already running, reads each message, and ends the stream with a refused one's status itself.
 *
 * A call ended here before its response started gets its status (a trailers-only response), and
 * then its stream is closed with NO_ERROR, which tells the client to stop sending the rest of its
 * request (RFC 9113 §8.1): what it had sent is freed at once.
 */
import { constants as h2, type ServerHttp2Stream } from "node:http2";
import {
  Metadata,
  ServerInterceptingCall,
  ServerListenerBuilder,
  status,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from "@grpc/grpc-js";
import type { GrpcError } from "./status.js";

/**
 * What an open stream costs before any of its bytes are counted: an HTTP/2 stream and a grpc-js
 * call that only sent headers measured about 7.7 KB each (30,000 of them took 230 MB).
 */
export const STREAM_OVERHEAD_BYTES = 8 * 1024;

/** The bytes held by calls on this replica, against a budget. */
export class CallMemory {
  private used = 0;

  constructor(readonly limitBytes: number) {}

  get usedBytes(): number {
    return this.used;
  }

  /** Counts `bytes` if they fit in the budget; false (and nothing counted) if they do not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limitBytes) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used -= bytes;
  }
}

export interface CallBoundsOptions {
  memory: CallMemory;
  /** How long a unary or server-streaming call's request may take to arrive in full. */
  requestTimeoutMs: number;
  /** `grpc.max_receive_message_length`: a message announced larger is refused by grpc-js itself. */
  maxRequestBytes: number;
  /** Full method paths whose responses are not counted (they have a bound of their own). */
  uncountedResponses: ReadonlySet<string>;
  /** Full method paths whose requests decode.ts may refuse, answered by `refuse`. */
  strictMethods: ReadonlySet<string>;
  /** Whether `request` is a refusal made by decode.ts. */
  isRefusal(request: unknown): boolean;
  /** The status of a call whose request was refused (after the caller's access is checked). */
  refuse(path: string, call: { metadata: Metadata; request: unknown; getAuthContext: ServerInterceptingCallInterface["getAuthContext"] }): Promise<GrpcError>;
  /**
   * Reports a call ended here: before its handler ran (`request`), or while it was answering,
   * when its response did not fit in the budget (`response`).
   */
  report(path: string, metadata: Metadata, error: GrpcError, phase: "request" | "response"): void;
}

/** The HTTP/2 stream under an intercepting call (grpc-js keeps it in a private field; see calls.ts). */
type StreamFinder = (call: object) => ServerHttp2Stream | undefined;

export function callBounds(options: CallBoundsOptions, streamOf: StreamFinder): ServerInterceptor {
  const { memory } = options;
  return (method, next) => {
    const stream = streamOf(next);
    if (!stream) throw new Error("grpc-js moved the HTTP/2 stream of a call: the call bounds cannot see it");
    let metadata = new Metadata();
    /** Bytes this call has counted, given back when its stream closes. */
    let held = 0;
    let closed = false;
    /** Set once this interceptor has answered the call (or is about to): nothing more goes to the handler. */
    let answered = false;
    let refusing = false;
    /** Set once the handler may have started sending (so a status can no longer be trailers-only). */
    let handed = method.requestStream;
    let deadline: NodeJS.Timeout | undefined;

    const take = (bytes: number) => {
      if (closed || !memory.take(bytes)) return false;
      held += bytes;
      return true;
    };
    const answer = (error: GrpcError, report = true) => {
      if (answered || closed) return;
      answered = true;
      clearTimeout(deadline);
      if (report) options.report(method.path, metadata, error, handed ? "response" : "request");
      if (handed) {
        // The response may have begun: the reset code gRPC clients read as RESOURCE_EXHAUSTED.
        stream.close(h2.NGHTTP2_ENHANCE_YOUR_CALM);
        return;
      }
      next.sendStatus({ code: error.code, details: error.details });
      if (!stream.closed && !stream.destroyed) stream.close(h2.NGHTTP2_NO_ERROR);
    };
    const exhausted = () =>
      answer({ code: status.RESOURCE_EXHAUSTED, details: "the server holds as many calls as its memory budget allows; retry later" });

    stream.once("close", () => {
      closed = true;
      clearTimeout(deadline);
      memory.give(held);
      held = 0;
    });
    /** Request bytes received, and counted (as many, or all the first message announced). */
    let received = 0;
    let counted = 0;
    let announced = 0;
    /** The first message's prefix (a flag byte, a 4-byte length), while it is being read. */
    const prefix: number[] | undefined = method.requestStream ? undefined : [];
    // Added to a paused stream, this listener does not start the flow; grpc-js reads as before.
    stream.on("data", (chunk: Buffer) => {
      if (prefix && prefix.length < 5) {
        for (let i = 0; i < chunk.length && prefix.length < 5; i++) prefix.push(chunk[i]!);
        const size = prefix.length === 5 ? Buffer.from(prefix).readUInt32BE(1) : 0;
        if (size <= options.maxRequestBytes) announced = 5 + size;
      }
      received += chunk.length;
      const count = Math.max(received, announced);
      if (!take(count - counted)) {
        exhausted();
        return;
      }
      counted = count;
      // The response has ended while the client still sends (grpc-js refused the request itself,
      // e.g. a message larger than the largest valid request): tell it to stop.
      if (stream.writableEnded && !stream.closed && !stream.destroyed) stream.close(h2.NGHTTP2_NO_ERROR);
    });
    if (!options.uncountedResponses.has(method.path)) countWrites(stream, take, (bytes) => {
      if (closed) return;
      held -= bytes;
      memory.give(bytes);
    }, () => {
      // The response message does not fit: drop it, and end the call.
      handed = true;
      exhausted();
    });

    if (!take(STREAM_OVERHEAD_BYTES)) {
      // The handler will not start: grpc-js sees the call ended when it starts it.
      exhausted();
    } else if (!method.requestStream) {
      deadline = setTimeout(
        () => answer({ code: status.DEADLINE_EXCEEDED, details: `the request did not arrive in full within ${options.requestTimeoutMs} ms` }),
        options.requestTimeoutMs,
      );
      deadline.unref();
    }

    const strict = options.strictMethods.has(method.path);
    return new ServerInterceptingCall(next, {
      start: (proceed) => {
        proceed(
          new ServerListenerBuilder()
            .withOnReceiveMetadata((md, pass) => {
              metadata = md;
              pass(md);
            })
            .withOnReceiveMessage((message, pass) => {
              if (answered || refusing) return;
              // A stream of requests (ServeReviews) gets its refused messages like any other: its
              // handler ends it with the refusal's status once the stream is under way.
              if (!strict || method.requestStream || !options.isRefusal(message)) {
                pass(message);
                return;
              }
              clearTimeout(deadline);
              refusing = true;
              // `refuse` logs the call itself, as the handler would have.
              options.refuse(method.path, { metadata, request: message, getAuthContext: () => next.getAuthContext() }).then(
                (error) => answer(error, false),
                () => answer({ code: status.INTERNAL, details: "internal error" }),
              );
            })
            .withOnReceiveHalfClose((pass) => {
              clearTimeout(deadline);
              if (answered || refusing) return;
              handed = true;
              pass();
            })
            .withOnCancel(() => clearTimeout(deadline))
            .build(),
        );
      },
    });
  };
}

/**
 * Counts each message written to `stream` while it waits to be sent: grpc-js writes one serialized
 * message per `write` and is called back once HTTP/2 has sent it. A message that does not fit
 * (`take` is false) is not written: `refused` ends the call instead.
 */
function countWrites(stream: ServerHttp2Stream, take: (bytes: number) => boolean, sent: (bytes: number) => void, refused: () => void): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const bytes = Buffer.isBuffer(chunk) || chunk instanceof Uint8Array ? chunk.byteLength : typeof chunk === "string" ? Buffer.byteLength(chunk) : 0;
    if (!take(bytes)) {
      refused();
      return false;
    }
    const i = rest.findIndex((r) => typeof r === "function");
    const callback = i === -1 ? undefined : (rest[i] as (err?: Error | null) => void);
    const counted = (err?: Error | null) => {
      sent(bytes);
      callback?.(err);
    };
    if (i === -1) rest.push(counted);
    else rest[i] = counted;
    return write(chunk, ...rest);
  }) as ServerHttp2Stream["write"];
}
