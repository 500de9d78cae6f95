/**
 * Wrappers that turn async functions into grpc-js handlers: errors become gRPC statuses (never a
 * stack trace), no promise is left rejected, and each call logs one line with method, status,
 * duration, request id and principal.
 *
 * They are also the one place where access is decided (SPEC §8): before a handler runs, `admit`
 * authenticates the caller, checks the method's role (before anything else in the request is
 * looked at, even whether its strings are valid UTF-8), and applies the per-principal review rate.
 * No handler checks a role itself, and server.ts refuses to start when a CouncilService method
 * was not built by these wrappers. Health and reflection do not go through them: they stay open.
 */
import { constants as http2, type ServerHttp2Stream } from "node:http2";
import {
  status,
  type handleServerStreamingCall,
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
} from "@grpc/grpc-js";
import type { Principal } from "../domain/principal.js";
import type { Logger } from "../log.js";
import type { Authenticator } from "./auth/authenticator.js";
import { credentialsOf } from "./auth/peer.js";
import type { ReviewRateLimiter } from "./auth/rate_limit.js";
import { authorize } from "./auth/roles.js";
import type { Metrics } from "./metrics.js";
import { serviceError, toGrpcError, type GrpcError } from "./status.js";
import { refusalOf } from "./utf8.js";

/** Who may call: how callers are identified, and the review rate per principal. */
export interface Access {
  authenticator: Authenticator;
  /** `COUNCIL_REVIEW_RATE`; undefined: unlimited. */
  reviewRate?: ReviewRateLimiter;
}

/**
 * What every call needs besides its handler: where it is reported (one log line, the call
 * metrics) and who may make it.
 */
export interface Telemetry {
  log: Logger;
  metrics: Metrics;
  access: Access;
}

/** The methods whose calls count against the per-principal review rate. */
const RATE_LIMITED: ReadonlySet<string> = new Set(["ReviewSuggestion"]);

/** Marks the handlers built here, so that server.ts can check that no method escapes `admit`. */
const ADMITTING = Symbol("admitting");

/** True when `handler` was built by one of these wrappers (so it authenticates and authorizes). */
export function admits(handler: unknown): boolean {
  return typeof handler === "function" && (handler as { [ADMITTING]?: boolean })[ADMITTING] === true;
}

function marked<H extends object>(handler: H): H {
  Object.defineProperty(handler, ADMITTING, { value: true });
  return handler;
}

/** Marks, for the log, a stream that ended because its caller cancelled it. */
const CANCELLED = Symbol("cancelled");

export interface CallContext {
  /** Set by the handler when the request carries one, for the log line. */
  requestId?: string;
  /** Who is calling: set by the wrapper (authentication) before the handler runs. */
  principal: Principal;
}

type AnyCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/**
 * What `admit` reads from a call: its headers, its TLS peer and, for calls that have one, the
 * request. A bidi or client-stream wrapper passes its call (no `request`) to `admit` before it
 * reads a message, marks its handler with `marked`, and checks each message's `refusalOf` itself.
 */
type AdmittedCall = Pick<AnyCall, "metadata" | "getAuthContext"> & { request?: unknown };

function requestIdOf(call: AnyCall, ctx: Partial<CallContext>) {
  return ctx.requestId || (call.metadata.get("x-request-id")[0] as string | undefined) || undefined;
}

/**
 * Lets a call in, or throws the status it gets, in this order: the caller is authenticated
 * (UNAUTHENTICATED, one message whatever was wrong), holds a role the method needs
 * (PERMISSION_DENIED naming it), is within its review rate (RESOURCE_EXHAUSTED), and only then is
 * the request itself looked at (a string that is not valid UTF-8: INVALID_ARGUMENT). So a caller
 * without the role learns nothing about what a request would have done. Sets `ctx.principal` as
 * soon as it is known, for the log line.
 */
async function admit(access: Access, method: string, call: AdmittedCall, ctx: Partial<CallContext>): Promise<void> {
  ctx.principal = await access.authenticator.authenticate(credentialsOf(call));
  authorize(ctx.principal, method);
  if (RATE_LIMITED.has(method)) access.reviewRate?.check(ctx.principal);
  const refused = refusalOf(call.request);
  if (refused) throw refused;
}

function finish(t: Telemetry, method: string, started: number, ctx: Partial<CallContext>, call: AnyCall, err?: unknown) {
  const seconds = (performance.now() - started) / 1000;
  const durationMs = Math.round(seconds * 1_000_000) / 1000;
  const requestId = requestIdOf(call, ctx);
  // null: the caller was not authenticated (or the call failed before it could be).
  const principal = ctx.principal?.name ?? null;
  t.metrics.callSeconds.observe({ method }, seconds);
  if (err === undefined || err === CANCELLED) {
    const code = err === CANCELLED ? "CANCELLED" : "OK";
    t.metrics.calls.inc({ method, code });
    t.log.info({ method, status: code, durationMs, requestId, principal }, "call");
    return undefined;
  }
  const mapped = toGrpcError(err);
  const line = { method, status: status[mapped.code], durationMs, requestId, principal };
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
  return marked((call: ServerUnaryCall<Req, Res>, callback: Parameters<handleUnaryCall<Req, Res>>[1]) => {
    const started = performance.now();
    const ctx: Partial<CallContext> = {};
    const any = call as ServerUnaryCall<unknown, unknown>;
    admit(t.access, method, any, ctx)
      .then(() => fn(call.request, ctx as CallContext, call))
      .then(
        (response) => {
          finish(t, method, started, ctx, any);
          callback(null, response);
        },
        (err: unknown) => {
          const mapped = finish(t, method, started, ctx, any, err)!;
          callback(serviceError(mapped));
        },
      );
  });
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
  return marked((call: ServerWritableStream<Req, Res>) => {
    const started = performance.now();
    const ctx: Partial<CallContext> = {};
    const any = call as ServerWritableStream<unknown, unknown>;
    const out = new StreamWriter<Res>(call as ServerWritableStream<unknown, Res>);
    admit(t.access, method, any, ctx)
      .then(() => fn(call.request, out, ctx as CallContext, call))
      .then(
        () => {
          finish(t, method, started, ctx, any, call.cancelled ? CANCELLED : undefined);
          if (!out.gone) call.end();
        },
        (err: unknown) => {
          const mapped = finish(t, method, started, ctx, any, call.cancelled ? CANCELLED : err);
          if (mapped && !out.gone) endWithStatus(any, mapped);
        },
      );
  });
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
