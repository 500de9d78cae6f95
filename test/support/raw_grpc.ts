/**
 * gRPC calls made by hand over Node's http2, for clients no gRPC library would be: one that never
 * reads what the server sends (an HTTP/2 stream window of 0, so the server's first message stays
 * stuck), or thousands of streams on a few connections. A call's end is reported as the status a
 * gRPC client would read: `grpc-status` from the trailers (or a trailers-only response), else the
 * HTTP/2 reset code mapped as grpc-js, grpc-go and the C core map it.
 */
import http2, { type ClientHttp2Session, type ClientHttp2Stream } from "node:http2";
import { status } from "@grpc/grpc-js";
import { WatchDecisionsRequest } from "../../src/gen/council/v1/council_service.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { within } from "./wait.js";

/** A gRPC message on the wire: a 0 flag byte (not compressed), a 4-byte length, the bytes. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(frame, 5);
  return frame;
}

/** How a gRPC client reads an HTTP/2 reset (grpc-js subchannel-call.ts). */
export function statusOfReset(rstCode: number): status {
  switch (rstCode) {
    case http2.constants.NGHTTP2_REFUSED_STREAM:
      return status.UNAVAILABLE;
    case http2.constants.NGHTTP2_CANCEL:
      return status.CANCELLED;
    case http2.constants.NGHTTP2_ENHANCE_YOUR_CALM:
      return status.RESOURCE_EXHAUSTED;
    default:
      return status.INTERNAL;
  }
}

export interface RawEnd {
  /** The status a gRPC client would report. */
  code: status;
  /** Whether it came as a reset rather than a `grpc-status`. */
  reset: boolean;
  rstCode: number;
}

export interface RawCall {
  stream: ClientHttp2Stream;
  /** Resolves with the response headers (for a watch: it is live), or with its end if none came first. */
  headers: Promise<http2.IncomingHttpHeaders>;
  ended: Promise<RawEnd>;
  /** Whether the call has ended, and how. */
  end(): RawEnd | undefined;
}

/**
 * A connection whose streams never read: each starts with a window of 0 bytes, so not one byte of
 * a message can reach it; headers and trailers (not flow-controlled) still can.
 */
export function silentSession(addr: string): ClientHttp2Session {
  const session = http2.connect(`http://${addr}`, { settings: { initialWindowSize: 0 } });
  session.on("error", () => {
    // The server going away is what some tests wait for; each call reports its own end.
  });
  return session;
}

/** Starts a call of `path` with one request message on `session`. */
export function rawCall(session: ClientHttp2Session, path: string, message: Uint8Array): RawCall {
  const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
  stream.on("error", () => {
    // A reset arrives here too; `ended` reports it.
  });
  let grpcStatus: number | undefined;
  let result: RawEnd | undefined;
  const read = (h: http2.IncomingHttpHeaders) => {
    const s = h["grpc-status"];
    if (s !== undefined) grpcStatus = Number(s);
  };
  const headers = new Promise<http2.IncomingHttpHeaders>((resolve) => {
    stream.once("response", (h) => {
      read(h);
      resolve(h);
    });
    stream.once("close", () => resolve({}));
  });
  stream.on("trailers", read);
  const ended = new Promise<RawEnd>((resolve) =>
    stream.once("close", () => {
      const rstCode = stream.rstCode ?? 0;
      result =
        grpcStatus !== undefined
          ? { code: grpcStatus, reset: false, rstCode }
          : { code: statusOfReset(rstCode), reset: true, rstCode };
      resolve(result);
    }),
  );
  stream.end(grpcFrame(message));
  return { stream, headers, ended, end: () => result };
}

/** A WatchDecisions call that never reads; resolves once the server has answered with headers. */
export async function silentWatch(session: ClientHttp2Session): Promise<RawCall> {
  const call = rawCall(
    session,
    "/council.v1.CouncilService/WatchDecisions",
    WatchDecisionsRequest.encode({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false }).finish(),
  );
  await within(call.headers, { what: "the watch's response headers" });
  return call;
}
