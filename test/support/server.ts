/**
 * Starts a real Council server in-process on a free port and returns a generated client connected
 * to it over a real channel, plus small promise helpers for calling it.
 */
import {
  credentials,
  Metadata,
  type CallOptions,
  type ChannelCredentials,
  type ClientReadableStream,
  type Interceptor,
  InterceptingCall,
  type ServiceError,
} from "@grpc/grpc-js";
import type { Logger } from "../../src/log.js";
import { Council, type CouncilOptions } from "../../src/app/council.js";
import type { Policy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { CouncilServiceClient, type ReviewSuggestionRequest, type ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { createLogger } from "../../src/log.js";
import { Authenticator } from "../../src/server/auth/authenticator.js";
import { TlsFiles } from "../../src/server/auth/tls.js";
import { CouncilServer, type ServerOptions } from "../../src/server/server.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/store.js";
import { waitFor } from "./wait.js";

export interface Running {
  /** A client of the server, connected as `StartOptions.connect` says (default: plaintext, no token). */
  client: CouncilServiceClient;
  council: Council;
  server: CouncilServer;
  store: Store;
  addr: string;
  /** Another client on its own channel (closed by `stop`), e.g. with another token or certificate. */
  connect(options?: ConnectOptions): CouncilServiceClient;
  /** Shuts the server down (grace 2 s), closes the clients and the store. */
  stop(): Promise<void>;
}

/** The TLS files of a server under test (SPEC §8: COUNCIL_TLS_CERT, _KEY, _CLIENT_CA). */
export interface TlsFileNames {
  certFile: string;
  keyFile: string;
  /** Set: mTLS (client certificates required and verified against this CA). */
  clientCaFile?: string;
}

export interface StartOptions extends CouncilOptions {
  policy?: Policy;
  store?: Store;
  watchBufferBytes?: number;
  maxWatchers?: number;
  maxStreamsPerConnection?: number;
  /** How long a response may wait for its caller to read it (COUNCIL_STREAM_WRITE_TIMEOUT_MS). */
  streamWriteTimeoutMs?: number;
  metricsAddr?: string;
  /** TLS (and mTLS with `clientCaFile`) on the gRPC port; files are watched as in production. */
  tls?: TlsFileNames;
  /** COUNCIL_AUTH_FILE. Unset: anonymous, or under mTLS the certificate's common name. */
  authFile?: string;
  /** How often the auth and TLS files are stat'ed for changes (default 2 s; watching reacts sooner). */
  filePollIntervalMs?: number;
  /** COUNCIL_REVIEW_RATE: reviews per second per principal. */
  reviewRate?: number;
  /** The server's logger (default: silent, or debug with COUNCIL_TEST_LOG_LEVEL=debug). */
  log?: Logger;
  /** How `Running.client` connects (default: plaintext, no token). */
  connect?: ConnectOptions;
  /** Bounds of reviewer streams (ServeReviews). */
  serveReviews?: ServerOptions["serveReviews"];
}

/** How a test client connects: TLS with a CA, a client certificate (mTLS), a bearer token. */
export interface ConnectOptions {
  /** PEM of the CA that signed the server's certificate; set: TLS. */
  ca?: string | Buffer;
  /** PEM client certificate and key (mTLS); need `ca`. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Sent as `authorization: Bearer <token>` on every call (over plaintext too). */
  token?: string;
  /** The name the server certificate must carry, when it is not the address's host. */
  serverName?: string;
}

/** The channel credentials of `options` (plaintext without `ca`). */
export function channelCredentials(options: ConnectOptions = {}): ChannelCredentials {
  if (options.ca === undefined) return credentials.createInsecure();
  const pem = (v: string | Buffer | undefined) => (v === undefined ? null : Buffer.from(v));
  return credentials.createSsl(pem(options.ca), pem(options.key), pem(options.cert));
}

/** An interceptor that sends `authorization: Bearer <token>` (grpc-js sends call credentials only over TLS). */
export function bearer(token: string): Interceptor {
  return (opts, next) =>
    new InterceptingCall(next(opts), {
      start(metadata, listener, proceed) {
        metadata.set("authorization", `Bearer ${token}`);
        proceed(metadata, listener);
      },
    });
}

/** A CouncilService client of `addr`, connected as `options` says. */
export function connectClient(addr: string, options: ConnectOptions = {}): CouncilServiceClient {
  const channelOptions: Record<string, unknown> = {};
  if (options.serverName !== undefined) channelOptions["grpc.ssl_target_name_override"] = options.serverName;
  if (options.token !== undefined) channelOptions.interceptors = [bearer(options.token)];
  return new CouncilServiceClient(addr, channelCredentials(options), channelOptions);
}

/**
 * Starts a server. Options for identity and access (issue 8), for every test that needs them:
 * - `tls: { certFile, keyFile, clientCaFile? }`: TLS, or mTLS with `clientCaFile` (make the
 *   files with test/auth/certs.ts: makeCa, makeCert; give the server cert `IP.1 = 127.0.0.1`).
 * - `authFile`: COUNCIL_AUTH_FILE; `filePollIntervalMs` for how often it (and TLS) is re-checked.
 * - `reviewRate`: COUNCIL_REVIEW_RATE.
 * - `connect: { ca?, cert?, key?, token?, serverName? }`: how `Running.client` connects;
 *   `Running.connect(options)` makes more clients (another principal), closed by `stop()`;
 *   `connectClient(addr, options)` makes one outside.
 * - `log`: a logger of your own (e.g. test/auth/helpers.ts captureLog) to read log lines.
 */
export async function startCouncil(options: StartOptions = {}): Promise<Running> {
  const store = options.store ?? new MemoryStore();
  const council = new Council(store, options.policy ?? PRESETS.default, options);
  const log = options.log ?? createLogger(process.env.COUNCIL_TEST_LOG_LEVEL === "debug" ? "debug" : "silent");
  const pollIntervalMs = options.filePollIntervalMs;
  const tls = options.tls && (await TlsFiles.open({ ...options.tls, log, pollIntervalMs }));
  let authenticator: Authenticator | undefined;
  try {
    authenticator =
      options.authFile === undefined ? undefined : await Authenticator.open({ authFile: options.authFile, mtls: tls?.mtls ?? false, log, pollIntervalMs });
  } catch (err) {
    tls?.close();
    throw err;
  }
  const server = await CouncilServer.start({
    council,
    store,
    log,
    addr: "127.0.0.1:0",
    watchBufferBytes: options.watchBufferBytes,
    maxWatchers: options.maxWatchers,
    maxStreamsPerConnection: options.maxStreamsPerConnection,
    streamWriteTimeoutMs: options.streamWriteTimeoutMs,
    metricsAddr: options.metricsAddr,
    tls,
    authenticator,
    reviewRate: options.reviewRate,
    serveReviews: options.serveReviews,
  });
  const addr = `127.0.0.1:${server.port}`;
  const clients: CouncilServiceClient[] = [];
  const connect = (o: ConnectOptions = {}) => {
    const c = connectClient(addr, o);
    clients.push(c);
    return c;
  };
  const client = connect(options.connect);
  return {
    client,
    council,
    server,
    store,
    addr,
    connect,
    async stop() {
      for (const c of clients) c.close();
      await server.shutdown(2000);
      await store.close();
    },
  };
}

/** A generated unary method; TypeScript infers from its last overload (request, metadata, options, callback). */
type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls a unary method and resolves with its response (rejects with the ServiceError). */
export function call<Req, Res>(client: CouncilServiceClient, method: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, req, new Metadata(), {}, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

export interface StreamResult<T> {
  events: T[];
  error?: ServiceError;
}

/** Reads a server stream to its end; resolves with every event and the error status, if any. */
export function collect<T>(stream: ClientReadableStream<T>, timeoutMs = 10_000): Promise<StreamResult<T>> {
  return new Promise((resolve, reject) => {
    const events: T[] = [];
    const timer = setTimeout(() => {
      stream.cancel();
      reject(new Error(`stream did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on("data", (e: T) => events.push(e));
    stream.on("error", (error: ServiceError) => {
      clearTimeout(timer);
      resolve({ events, error });
    });
    stream.on("end", () => {
      clearTimeout(timer);
      resolve({ events });
    });
  });
}

export function review(client: CouncilServiceClient, req: Partial<ReviewSuggestionRequest>) {
  return collect<ReviewSuggestionResponse>(
    client.reviewSuggestion({ suggestion: undefined, requestId: "", dryRun: false, supersedes: "", ...req }),
  );
}

/** Waits until `predicate` holds, polling; fails after `timeoutMs` (see `waitFor` in wait.ts). */
export async function eventually(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  await waitFor(predicate, { timeoutMs, what });
}

/** A promise with its resolve function, for holding a review between votes. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}
