/**
 * Wrappers that turn async functions into grpc-js handlers: errors become gRPC statuses (never a
 * stack trace), no promise is left rejected, and each call logs one line with method, status,
 * duration and request id.
 */
import { constants as http2, type ServerHttp2Stream } from "node:http2";
import {
  status,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
} from "@grpc/grpc-js";
import { ANONYMOUS, type Principal } from "../domain/principal.js";
import type { Logger } from "../log.js";
import type { Metrics } from "./metrics.js";
import { serviceError, toGrpcError, type GrpcError } from "./status.js";
import { refusalOf } from "./utf8.js";

/** Where each call is reported: one log line, and the call metrics. */
export interface Telemetry {
  log: Logger;
  metrics: Metrics;
}

/** Marks, for the log, a stream that ended because its caller cancelled it. */
const CANCELLED = Symbol("cancelled");

export interface CallContext {
  /** Set by the handler when the request carries one, for the log line. */
  requestId?: string;
  /** Who is calling: set by the wrapper (authentication) before the handler runs. */
  principal: Principal;
}

function requestIdOf(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, ctx: CallContext) {
  return ctx.requestId || (call.metadata.get("x-request-id")[0] as string | undefined) || undefined;
}

function finish(t: Telemetry, method: string, started: number, requestId: string | undefined, err?: unknown) {
  const seconds = (performance.now() - started) / 1000;
  const durationMs = Math.round(seconds * 1_000_000) / 1000;
  t.metrics.callSeconds.observe({ method }, seconds);
  if (err === undefined || err === CANCELLED) {
    const code = err === CANCELLED ? "CANCELLED" : "OK";
    t.metrics.calls.inc({ method, code });
    t.log.info({ method, status: code, durationMs, requestId }, "call");
    return undefined;
  }
  const mapped = toGrpcError(err);
  const line = { method, status: status[mapped.code], durationMs, requestId };
  t.metrics.calls.inc({ method, code: line.status });
  if (mapped.internal) t.log.error({ ...line, err }, "call failed");
  else t.log.info({ ...line, details: mapped.details }, "call");
  return mapped;
}

export function unary<Req, Res>(
  t: Telemetry,
  method: string,
  fn: (request: Req, ctx: CallContext, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const started = performance.now();
    const ctx: CallContext = { principal: ANONYMOUS };
    const refused = refusalOf(call.request);
    (refused ? Promise.reject(refused) : fn(call.request, ctx, call)).then(
      (response) => {
        finish(t, method, started, requestIdOf(call, ctx));
        callback(null, response);
      },
      (err: unknown) => {
        const mapped = finish(t, method, started, requestIdOf(call, ctx), err)!;
        callback(serviceError(mapped));
      },
    );
  };
}

/** Writes to a server stream with backpressure; once the caller has gone, writes are dropped. */
export class StreamWriter<Res> {
  constructor(private readonly call: ServerWritableStream<unknown, Res>) {}

  get gone(): boolean {
    return this.call.cancelled || this.call.destroyed || this.call.writableEnded;
  }

  /** Resolves once the message is handed to the transport and the buffer has room again. */
  async write(message: Res): Promise<void> {
    if (this.gone) return;
    if (this.call.write(message)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.call.off("drain", done);
        this.call.off("cancelled", done);
        this.call.off("close", done);
        resolve();
      };
      this.call.on("drain", done);
      this.call.on("cancelled", done);
      this.call.on("close", done);
    });
  }
}

export function serverStream<Req, Res>(
  t: Telemetry,
  method: string,
  fn: (request: Req, out: StreamWriter<Res>, ctx: CallContext, call: ServerWritableStream<Req, Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    const started = performance.now();
    const ctx: CallContext = { principal: ANONYMOUS };
    const out = new StreamWriter<Res>(call as ServerWritableStream<unknown, Res>);
    const refused = refusalOf(call.request);
    (refused ? Promise.reject(refused) : fn(call.request, out, ctx, call)).then(
      () => {
        finish(t, method, started, requestIdOf(call, ctx), call.cancelled ? CANCELLED : undefined);
        if (!out.gone) call.end();
      },
      (err: unknown) => {
        const mapped = finish(t, method, started, requestIdOf(call, ctx), call.cancelled ? CANCELLED : err);
        if (mapped && !out.gone) endWithStatus(call as ServerWritableStream<unknown, unknown>, mapped);
      },
    );
  };
}

/** How long the trailers of a stream ended with an error may take to leave before it is reset. */
const TRAILERS_TIMEOUT_MS = 1000;

/** The HTTP/2 reset codes that gRPC clients (grpc-js, grpc-go, C core) read as these statuses. */
const RESET_CODES: Partial<Record<status, number>> = {
  [status.RESOURCE_EXHAUSTED]: http2.NGHTTP2_ENHANCE_YOUR_CALM,
  [status.UNAVAILABLE]: http2.NGHTTP2_REFUSED_STREAM,
};

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js keeps it in a private field of the call
 * at the end of its interceptor chain; it is found by shape, and test/server/limits.test.ts and
 * shutdown.test.ts fail if a grpc-js upgrade moves it.
 */
function http2StreamOf(call: ServerWritableStream<unknown, unknown>): ServerHttp2Stream | undefined {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof link === "object" && link !== null; depth++) {
    const stream = (link as { stream?: Partial<ServerHttp2Stream> }).stream;
    if (stream && typeof stream.close === "function" && "rstCode" in stream) return stream as ServerHttp2Stream;
    link = (link as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

/**
 * Resets `call`'s stream with the HTTP/2 code `code` if it is still open after `ms`: its trailers
 * (or the messages before them) did not leave, because its caller stopped reading.
 */
export function resetIfStillOpen(call: ServerWritableStream<unknown, unknown>, code: number, ms = TRAILERS_TIMEOUT_MS): void {
  const stream = http2StreamOf(call);
  if (!stream || stream.closed || stream.destroyed) return;
  const timer = setTimeout(() => {
    if (!stream.closed && !stream.destroyed) stream.close(code);
  }, ms).unref();
  stream.once("close", () => clearTimeout(timer));
}

/**
 * Ends a server stream with an error status. The status travels in trailers, which HTTP/2 sends
 * only after every message written before them: a caller that stopped reading would hold them, the
 * call and the memory of the message in flight for as long as it likes (a silent watcher held
 * shutdown for the whole grace period, then read CANCELLED). So a stream with a message still
 * being sent is reset at once when the status has an HTTP/2 code that gRPC clients (grpc-js,
 * grpc-go, the C core) read as the same status: REFUSED_STREAM for UNAVAILABLE, ENHANCE_YOUR_CALM
 * for RESOURCE_EXHAUSTED. Any other status goes in trailers, and a stream whose trailers have not
 * left within TRAILERS_TIMEOUT_MS is reset then (INTERNAL_ERROR, read as INTERNAL).
 */
export function endWithStatus(call: ServerWritableStream<unknown, unknown>, error: GrpcError): void {
  const stream = http2StreamOf(call);
  const exact = RESET_CODES[error.code];
  const sending = call.writableLength > 0 || (stream?.writableLength ?? 0) > 0;
  if (sending && exact !== undefined && stream) {
    if (!stream.closed && !stream.destroyed) stream.close(exact);
    return;
  }
  call.emit("error", serviceError(error));
  resetIfStillOpen(call, exact ?? http2.NGHTTP2_INTERNAL_ERROR);
}
