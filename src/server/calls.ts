/**
 * Wrappers that turn async functions into grpc-js handlers: errors become gRPC statuses (never a
 * stack trace), no promise is left rejected, and each call logs one line with method, status,
 * duration and request id.
 */
import {
  status,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
} from "@grpc/grpc-js";
import type { Logger } from "../log.js";
import type { Metrics } from "./metrics.js";
import { serviceError, toGrpcError } from "./status.js";

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
    const ctx: CallContext = {};
    fn(call.request, ctx, call).then(
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
    const ctx: CallContext = {};
    const out = new StreamWriter<Res>(call as ServerWritableStream<unknown, Res>);
    fn(call.request, out, ctx, call).then(
      () => {
        finish(t, method, started, requestIdOf(call, ctx), call.cancelled ? CANCELLED : undefined);
        if (!out.gone) call.end();
      },
      (err: unknown) => {
        const mapped = finish(t, method, started, requestIdOf(call, ctx), call.cancelled ? CANCELLED : err);
        if (mapped && !out.gone) call.emit("error", serviceError(mapped));
      },
    );
  };
}
