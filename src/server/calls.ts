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
  type Metadata,
  type handleBidiStreamingCall,
  type handleServerStreamingCall,
  type ServerDuplexStream,
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServerWritableStream,
} from "@grpc/grpc-js";
import { ResourceExhaustedError } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import type { Principal } from "../domain/principal.js";
import type { Logger } from "../log.js";
import type { Authenticator } from "./auth/authenticator.js";
import { credentialsOf } from "./auth/peer.js";
import type { ReviewRateLimiter } from "./auth/rate_limit.js";
import { authorize } from "./auth/roles.js";
import type { Metrics } from "./metrics.js";
import { serviceError, toGrpcError, type GrpcError } from "./status.js";
import { refusalOf } from "./decode.js";

/** Who may call: how callers are identified, and the review rate per principal. */
export interface Access {
  authenticator: Authenticator;
  /** `COUNCIL_REVIEW_RATE`; undefined: unlimited. */
  reviewRate?: ReviewRateLimiter;
}

/**
 * What every call needs besides its handler: where it is reported (one log line, the call
 * metrics), who may make it, and how long its caller may leave a response unread.
 */
export interface Telemetry {
  log: Logger;
  metrics: Metrics;
  access: Access;
  /**
   * How long a response message may wait for its caller to read it (`COUNCIL_STREAM_WRITE_TIMEOUT_MS`):
   * after that the caller counts as gone and its stream is reset, freeing what it held.
   */
  writeTimeoutMs: number;
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

/**
 * The request id of the log line: the request's `request_id`, else the `x-request-id` header. The
 * header has no limit of its own (Node takes up to about 64 KB of headers), so a longer one is cut
 * to the `request_id` limit: a 60 KB header made a 60 KB log line on every call.
 */
function requestIdOf(call: { metadata: Metadata }, ctx: Partial<CallContext>) {
  if (ctx.requestId) return ctx.requestId;
  const header = call.metadata.get("x-request-id")[0];
  if (typeof header !== "string" || header === "") return undefined;
  return header.length <= LIMITS.requestIdBytes ? header : `${header.slice(0, LIMITS.requestIdBytes)}…(cut from ${header.length})`;
}

/**
 * Lets a call in, or throws the status it gets, in this order: the caller is authenticated
 * (UNAUTHENTICATED, one message whatever was wrong), holds a role the method needs
 * (PERMISSION_DENIED naming it), is within its review rate (RESOURCE_EXHAUSTED), and only then is
 * the request itself looked at (one refused while it was decoded, decode.ts: a string past its
 * limit or not valid UTF-8, a list too long, bytes that are not protobuf: INVALID_ARGUMENT). So a caller
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

function finish(t: Telemetry, method: string, started: number, ctx: Partial<CallContext>, call: { metadata: Metadata }, err?: unknown) {
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

/**
 * The status of a call whose request was refused while it was decoded (decode.ts), answered as
 * soon as the request arrives and without its handler (call_bounds.ts): `admit` runs as for any
 * call, so a caller without the role is told only that, and the refusal comes last. Logged and
 * counted like any call.
 */
export async function refuseEarly(t: Telemetry, method: string, call: AdmittedCall & { metadata: Metadata }): Promise<GrpcError> {
  const started = performance.now();
  const ctx: Partial<CallContext> = {};
  try {
    await admit(t.access, method, call, ctx);
  } catch (err) {
    return finish(t, method, started, ctx, call, err)!;
  }
  // Only reached if `call.request` was not a refusal after all.
  return finish(t, method, started, ctx, call, new Error(`refuseEarly called for ${method} with a request that was not refused`))!;
}

/** Reports, as its log line and metrics, a call ended by call_bounds.ts before its handler ran. */
export function reportEarly(t: Telemetry, method: string, metadata: Metadata, error: GrpcError): void {
  t.metrics.calls.inc({ method, code: status[error.code] });
  t.log.info({ method, status: status[error.code], requestId: requestIdOf({ metadata }, {}), principal: null, details: error.details }, "call");
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
          // A caller that does not read would hold the response (up to 4 MiB) for as long as it stays.
          resetIfStillOpen(any, http2.NGHTTP2_ENHANCE_YOUR_CALM, t.writeTimeoutMs);
        },
        (err: unknown) => {
          const mapped = finish(t, method, started, ctx, any, err)!;
          callback(serviceError(mapped));
        },
      );
  });
}

/**
 * Writes to a server stream with backpressure; once the caller has gone, writes are dropped. A
 * caller that reads nothing for `timeoutMs` while a write waits for room counts as gone: its
 * stream is reset (the HTTP/2 code gRPC clients read as RESOURCE_EXHAUSTED), which frees the
 * messages it held, and the handler goes on without it (a review still stores its decision).
 */
export class StreamWriter<Res> {
  private stalledFor: number | undefined;

  constructor(
    private readonly call: ServerWritableStream<unknown, Res>,
    private readonly timeoutMs: number,
  ) {}

  get gone(): boolean {
    return this.stalledFor !== undefined || this.call.cancelled || this.call.destroyed || this.call.writableEnded;
  }

  /** Set once the caller was dropped for not reading: why, for the call's log line. */
  get stalled(): ResourceExhaustedError | undefined {
    return this.stalledFor === undefined ? undefined : new ResourceExhaustedError(`the caller read nothing for ${this.stalledFor} ms`);
  }

  /** Resolves once the message is handed to the transport and the buffer has room again (or the caller is gone). */
  async write(message: Res): Promise<void> {
    if (this.gone) return;
    if (this.call.write(message)) return;
    const drained = await new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.call.off("drain", onDrain);
        this.call.off("cancelled", onDrain);
        this.call.off("close", onDrain);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const timer = setTimeout(() => done(false), this.timeoutMs);
      this.call.on("drain", onDrain);
      this.call.on("cancelled", onDrain);
      this.call.on("close", onDrain);
    });
    if (!drained && !this.gone) {
      this.stalledFor = this.timeoutMs;
      resetNow(this.call as ServerWritableStream<unknown, unknown>, http2.NGHTTP2_ENHANCE_YOUR_CALM);
    }
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
    const out = new StreamWriter<Res>(call as ServerWritableStream<unknown, Res>, t.writeTimeoutMs);
    admit(t.access, method, any, ctx)
      .then(() => fn(call.request, out, ctx as CallContext, call))
      .then(
        () => {
          finish(t, method, started, ctx, any, out.stalled ?? (call.cancelled ? CANCELLED : undefined));
          if (out.gone) return;
          call.end();
          // The trailers leave only after every message before them: a caller that stops reading
          // now would hold them, and the messages, for as long as it stays.
          resetIfStillOpen(any, http2.NGHTTP2_ENHANCE_YOUR_CALM, t.writeTimeoutMs);
        },
        (err: unknown) => {
          const mapped = finish(t, method, started, ctx, any, out.stalled ?? (call.cancelled ? CANCELLED : err));
          if (mapped && !out.gone) endWithStatus(any, mapped);
        },
      );
  });
}

/**
 * A bidirectional stream's handler: admitted like any call before it reads a message (the wrapper
 * checks nothing in the messages; call_bounds.ts answers one refused while it was decoded), logged
 * once when it ends. `fn` resolves when the stream should end OK, rejects with its status.
 */
export function bidiStream<Req, Res>(
  t: Telemetry,
  method: string,
  fn: (call: ServerDuplexStream<Req, Res>, ctx: CallContext) => Promise<void>,
): handleBidiStreamingCall<Req, Res> {
  return marked((call: ServerDuplexStream<Req, Res>) => {
    const started = performance.now();
    const ctx: Partial<CallContext> = {};
    const any = call as unknown as ServerWritableStream<unknown, unknown>;
    const gone = () => call.cancelled || call.destroyed || call.writableEnded;
    admit(t.access, method, { metadata: call.metadata, getAuthContext: () => call.getAuthContext() }, ctx)
      .then(() => fn(call, ctx as CallContext))
      .then(
        () => {
          finish(t, method, started, ctx, any, call.cancelled ? CANCELLED : undefined);
          if (gone()) return;
          call.end();
          resetIfStillOpen(any, http2.NGHTTP2_ENHANCE_YOUR_CALM, t.writeTimeoutMs);
        },
        (err: unknown) => {
          const mapped = finish(t, method, started, ctx, any, call.cancelled ? CANCELLED : err);
          if (mapped && !gone()) endWithStatus(any, mapped);
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
 * The HTTP/2 stream under a grpc-js server call (a handler's call, or the intercepting call an
 * interceptor is given). grpc-js keeps it in a private field of the call at the end of its
 * interceptor chain; it is found by shape, and test/server/limits.test.ts, shutdown.test.ts and
 * test/attack/request_memory.test.ts fail if a grpc-js upgrade moves it.
 */
export function http2StreamOf(call: object): ServerHttp2Stream | undefined {
  let link: unknown = call;
  for (let depth = 0; depth < 16 && typeof link === "object" && link !== null; depth++) {
    const stream = (link as { stream?: Partial<ServerHttp2Stream> }).stream;
    if (stream && typeof stream.close === "function" && "rstCode" in stream) return stream as ServerHttp2Stream;
    const next = link as { call?: unknown; nextCall?: unknown };
    link = next.nextCall ?? next.call;
  }
  return undefined;
}

/** Resets `call`'s stream with the HTTP/2 code `code` now, if it is still open. */
function resetNow(call: ServerWritableStream<unknown, unknown>, code: number): void {
  const stream = http2StreamOf(call);
  if (stream && !stream.closed && !stream.destroyed) stream.close(code);
}

/**
 * Resets `call`'s stream with the HTTP/2 code `code` if it is still open after `ms`: its trailers
 * (or the messages before them) did not leave, because its caller stopped reading.
 *
 * Nearly every stream has closed a moment after its call ended, so a timer per call (and a close
 * listener to clear it) was wasted work on the hot path: streams are first collected, looked at
 * together once, ENDED_CHECK_MS later, and only the few still open then get a timer of their own.
 */
export function resetIfStillOpen(call: ServerWritableStream<unknown, unknown> | ServerUnaryCall<unknown, unknown>, code: number, ms = TRAILERS_TIMEOUT_MS): void {
  const stream = http2StreamOf(call);
  if (!stream || stream.closed || stream.destroyed) return;
  if (ms <= ENDED_CHECK_MS) {
    resetAfter(stream, code, ms);
    return;
  }
  ended.push({ stream, code, ms });
  endedCheck ??= setTimeout(checkEnded, ENDED_CHECK_MS).unref();
}

/** How long after its call ended a stream is first looked at (see resetIfStillOpen). */
const ENDED_CHECK_MS = 100;
let ended: Array<{ stream: ServerHttp2Stream; code: number; ms: number }> = [];
let endedCheck: NodeJS.Timeout | undefined;

function checkEnded(): void {
  const batch = ended;
  ended = [];
  endedCheck = undefined;
  for (const { stream, code, ms } of batch) {
    if (!stream.closed && !stream.destroyed) resetAfter(stream, code, ms - ENDED_CHECK_MS);
  }
}

function resetAfter(stream: ServerHttp2Stream, code: number, ms: number): void {
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
