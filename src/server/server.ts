/**
 * The gRPC server: CouncilService, health and reflection on one port (plaintext, TLS or mTLS),
 * and an orderly shutdown. CouncilService calls are authenticated and authorized by the call
 * wrappers (calls.ts); health and reflection are open to any caller that completes the handshake.
 */
import { readFileSync } from "node:fs";
import type { Server as NetServer } from "node:net";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Server, ServerCredentials, status } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import { LIMITS } from "../domain/limits.js";
import * as councilMessages from "../gen/council/v1/council_service.js";
import { CouncilServiceService } from "../gen/council/v1/council_service.js";
import { HealthService } from "../gen/grpc/health/v1/health.js";
import { ServerReflectionService as ReflectionV1 } from "../gen/grpc/reflection/v1/reflection.js";
import { ServerReflectionService as ReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import { Authenticator } from "./auth/authenticator.js";
import { ReviewRateLimiter } from "./auth/rate_limit.js";
import type { TlsFiles } from "./auth/tls.js";
import { CallMemory, callBounds } from "./call_bounds.js";
import { admits, http2StreamOf, refuseEarly, reportEarly, type Telemetry } from "./calls.js";
import { councilService } from "./council_service.js";
import { largestRequest, refusalOf, strictService } from "./decode.js";
import { sharedWriterService } from "./encode.js";
import { Health } from "./health.js";
import { Metrics, serveMetrics } from "./metrics.js";
import { SERVE_REVIEWS_DEFAULTS, type ServeReviewsOptions } from "./serve_reviews.js";
import { DESCRIPTOR_SET_URL, DescriptorIndex, reflectionHandler } from "./reflection.js";

export const COUNCIL_SERVICE = "council.v1.CouncilService";
const SERVED = [COUNCIL_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

export interface ServerOptions {
  council: Council;
  store: Store;
  log: Logger;
  /** host:port; port 0 picks a free port. */
  addr: string;
  /** Bytes a watcher may fall behind before it is ended with RESOURCE_EXHAUSTED (default 4 MiB). */
  watchBufferBytes?: number;
  /** WatchDecisions streams open at once on this server; beyond: RESOURCE_EXHAUSTED (default 1000). */
  maxWatchers?: number;
  /** Concurrent streams a client may open on one connection (default 100). */
  maxStreamsPerConnection?: number;
  /** Connections open at once on each listening socket; beyond, new ones are closed as they come (default 1000). */
  maxConnections?: number;
  /**
   * Bytes that calls may hold at once (requests, responses waiting to be sent; see
   * call_bounds.ts); beyond, the call that would pass it is RESOURCE_EXHAUSTED (default 256 MiB).
   */
  callMemoryBytes?: number;
  /** How long a call's request may take to arrive in full; beyond: DEADLINE_EXCEEDED (default 30 s). */
  requestReceiveTimeoutMs?: number;
  /** How long a response may wait for its caller to read it; beyond, the stream is reset (default 30 s). */
  streamWriteTimeoutMs?: number;
  /** How long a connection with no call open is kept before it is closed (GOAWAY; default 5 min). */
  connectionIdleMs?: number;
  /** host:port for Prometheus metrics at GET /metrics (plain HTTP, always); undefined: not served. */
  metricsAddr?: string;
  /**
   * TLS on the gRPC port, from files that are re-read when they change (TlsFiles.open);
   * undefined: plaintext. The server owns it from here and stops watching at shutdown.
   */
  tls?: TlsFiles;
  /**
   * Who callers are (Authenticator.open with the auth file, if any). Undefined: every caller is
   * `anonymous`, or under mTLS is named by its certificate's common name. The server owns it from
   * here and stops watching at shutdown.
   */
  authenticator?: Authenticator;
  /** Reviews per second per principal (`COUNCIL_REVIEW_RATE`); undefined: unlimited. */
  reviewRate?: number;
  /** Bounds of reviewer streams (ServeReviews); each left out takes SERVE_REVIEWS_DEFAULTS' value. */
  serveReviews?: Partial<ServeReviewsOptions>;
}

/** Defaults of the server's bounds; src/config.ts exposes all but the streams per connection. */
export const DEFAULTS = {
  watchBufferBytes: 4 * 1024 * 1024,
  maxWatchers: 1000,
  /**
   * RFC 9113 recommends no fewer than 100. It bounds what one connection can hold open, and so
   * what a connection that never reads can pin; a client that keeps more watches than this open
   * at once needs more than one connection (grpc-js and grpc-go queue the calls past it).
   */
  maxStreamsPerConnection: 100,
  maxConnections: 1000,
  callMemoryBytes: 256 * 1024 * 1024,
  requestReceiveTimeoutMs: 30_000,
  streamWriteTimeoutMs: 30_000,
  /**
   * Connections count against COUNCIL_MAX_CONNECTIONS: one left open with no call for this long is
   * closed (a GOAWAY, after which gRPC clients reconnect on their next call), so that clients that
   * went away without closing do not hold the slots for good.
   */
  connectionIdleMs: 5 * 60_000,
} as const;

/**
 * The server pings each connection this often (and closes it when no answer comes within
 * KEEPALIVE_TIMEOUT_MS): a client that vanished (a crashed host, a cut network) leaves no call and
 * no connection slot held behind it. gRPC clients answer pings on their own.
 */
const KEEPALIVE_MS = 2 * 60_000;
const KEEPALIVE_TIMEOUT_MS = 20_000;

/**
 * The most memory, in MB, HTTP/2 may account to one connection (headers, streams, frames and
 * response data queued to be sent) before it refuses new streams on it (ENHANCE_YOUR_CALM, read
 * as RESOURCE_EXHAUSTED) until some of that is sent: so a client that stops reading cannot open
 * more calls on that connection. grpc-js sets no limit unless told; Node's own default is 10.
 */
const SESSION_MEMORY_MB = 32;

export class CouncilServer {
  private shuttingDown = false;
  private countWatchesLive: () => number = () => 0;

  private constructor(
    private readonly server: Server,
    private readonly health: Health,
    private readonly closeWatches: () => void,
    private readonly council: Council,
    private readonly log: Logger,
    /** The port actually bound. */
    readonly port: number,
    private readonly metricsServer: { port: number; close: () => Promise<void> } | undefined,
    private readonly closeAccess: () => void,
  ) {}

  /**
   * How many WatchDecisions streams have gone live (response headers sent) since start, for tests
   * and tools that cannot see the headers: every watch shares one store subscription (watch_hub.ts).
   */
  get watchesLive(): number {
    return this.countWatchesLive();
  }

  /** The port metrics are served on, if they are. */
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }

  static async start(options: ServerOptions): Promise<CouncilServer> {
    const { council, store, log } = options;
    const mtls = options.tls?.mtls ?? false;
    const authenticator = options.authenticator ?? (await Authenticator.open({ log, mtls }));
    const closeAccess = () => {
      authenticator.close();
      options.tls?.close();
    };
    if (authenticator.mode === "certificate" && !mtls) {
      closeAccess();
      // Names from certificates nobody verified would be whatever the caller wrote in them.
      throw new Error("an authenticator that names callers by their certificates needs mTLS (a client CA)");
    }
    const reviewRate = options.reviewRate === undefined ? undefined : new ReviewRateLimiter({ perSecond: options.reviewRate });
    const descriptors = readFileSync(DESCRIPTOR_SET_URL);
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, descriptors));
    const metrics = new Metrics(options.metricsAddr !== undefined);
    const memory = new CallMemory(options.callMemoryBytes ?? DEFAULTS.callMemoryBytes);
    metrics.observe({ reviewsInFlight: () => council.reviewsInFlight, storeHealthy: () => store.isHealthy(), callMemoryBytes: () => memory.usedBytes });
    const telemetry: Telemetry = {
      log,
      metrics,
      access: { authenticator, ...(reviewRate ? { reviewRate } : {}) },
      writeTimeoutMs: options.streamWriteTimeoutMs ?? DEFAULTS.streamWriteTimeoutMs,
    };
    const councilPath = (name: string) => `/${COUNCIL_SERVICE}/${name}`;
    const methodOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);
    const maxRequestBytes = largestRequest(registry, COUNCIL_SERVICE);
    const server = new Server({
      // Nothing larger than the largest valid request (every field at its limit) is read at all.
      "grpc.max_receive_message_length": maxRequestBytes,
      // Every response is bounded too (listings end a page early rather than pass pageBytes).
      "grpc.max_send_message_length": LIMITS.messageBytes,
      // grpc-js advertises no limit by default: one connection could open streams without end.
      "grpc.max_concurrent_streams": options.maxStreamsPerConnection ?? DEFAULTS.maxStreamsPerConnection,
      "grpc-node.max_session_memory": SESSION_MEMORY_MB,
      "grpc.max_connection_idle_ms": options.connectionIdleMs ?? DEFAULTS.connectionIdleMs,
      "grpc.keepalive_time_ms": KEEPALIVE_MS,
      "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
      interceptors: [
        callBounds(
          {
            memory,
            requestTimeoutMs: options.requestReceiveTimeoutMs ?? DEFAULTS.requestReceiveTimeoutMs,
            maxRequestBytes,
            uncountedResponses: new Set([councilPath("WatchDecisions"), "/grpc.health.v1.Health/Watch"]),
            strictMethods: new Set(Object.values(CouncilServiceService).map((m) => m.path)),
            isRefusal: (request) => refusalOf(request) !== undefined,
            refuse: (path, call) => refuseEarly(telemetry, methodOf(path), call),
            report: (path, metadata, error, phase) => {
              // Health and reflection calls are not logged or counted when they succeed either.
              if (!path.startsWith(`/${COUNCIL_SERVICE}/`)) return;
              if (phase === "request") reportEarly(telemetry, methodOf(path), metadata, error);
              else log.info({ method: methodOf(path), status: status[error.code], details: error.details }, "response dropped");
            },
          },
          http2StreamOf,
        ),
      ],
    });
    const service = councilService(council, telemetry, {
      watchBufferBytes: options.watchBufferBytes ?? DEFAULTS.watchBufferBytes,
      maxWatchers: options.maxWatchers ?? DEFAULTS.maxWatchers,
      serveReviews: { ...SERVE_REVIEWS_DEFAULTS, ...options.serveReviews },
    });
    // Every CouncilService method must authenticate and authorize through calls.ts: one that was
    // built some other way would be open to anyone, so the server does not start.
    for (const [name, method] of Object.entries(CouncilServiceService)) {
      const handler = (service.implementation as unknown as Record<string, unknown>)[name];
      if (!admits(handler)) throw new Error(`CouncilService method ${method.path} is not built by the call wrappers (calls.ts)`);
    }
    const served = sharedWriterService(strictService(CouncilServiceService, registry, COUNCIL_SERVICE), registry, COUNCIL_SERVICE, councilMessages);
    server.addService(served, service.implementation);

    const health = new Health([COUNCIL_SERVICE]);
    server.addService(HealthService, health.implementation);

    const reflect = reflectionHandler(new DescriptorIndex(descriptors), SERVED);
    server.addService(ReflectionV1, { serverReflectionInfo: reflect });
    server.addService(ReflectionV1Alpha, { serverReflectionInfo: reflect });

    const credentials = options.tls ? options.tls.credentials() : ServerCredentials.createInsecure();
    let port: number;
    try {
      port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(options.addr, credentials, (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (err) {
      closeAccess();
      throw err;
    }
    try {
      capConnections(server, options.maxConnections ?? DEFAULTS.maxConnections);
    } catch (err) {
      server.forceShutdown();
      closeAccess();
      throw err;
    }
    let metricsServer;
    try {
      metricsServer = options.metricsAddr === undefined ? undefined : await serveMetrics(metrics, options.metricsAddr);
    } catch (err) {
      server.forceShutdown();
      closeAccess();
      throw new Error(`cannot serve metrics on ${options.metricsAddr}: ${(err as Error).message}`);
    }
    const running = new CouncilServer(server, health, service.closeWatches, council, log, port, metricsServer, closeAccess);
    running.countWatchesLive = service.watchesLive;
    health.setAll(store.isHealthy());
    store.onHealthChange((healthy) => {
      if (running.shuttingDown) return;
      log.warn({ healthy }, healthy ? "store reachable again: serving" : "store unreachable: not serving");
      health.setAll(healthy);
    });
    return running;
  }

  /**
   * Stops accepting calls, ends watches, lets calls in flight (and reviews that have started, even
   * those whose callers have gone) finish, and cancels whatever is left when `graceMs` is over:
   * the whole shutdown takes at most one grace period.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    const deadline = performance.now() + graceMs;
    this.health.setAll(false);
    this.closeWatches();
    this.health.endWatches();
    const timer = setTimeout(() => {
      this.log.warn({ graceMs }, "grace period over: cancelling calls still in flight");
      this.server.forceShutdown();
    }, graceMs);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    clearTimeout(timer);
    const left = Math.max(0, deadline - performance.now());
    let waited: NodeJS.Timeout | undefined;
    const over = new Promise<boolean>((resolve) => (waited = setTimeout(() => resolve(true), left)));
    if (await Promise.race([this.council.drain().then(() => false), over])) {
      this.log.warn({ graceMs, reviewsInFlight: this.council.reviewsInFlight }, "grace period over: reviews still in flight are abandoned");
    }
    clearTimeout(waited);
    await this.council.closeReviewers().catch((err: unknown) => this.log.warn({ err }, "closing the reviewer hub failed"));
    this.closeAccess();
    await this.metricsServer?.close();
  }
}

/**
 * Caps the connections of each socket `server` listens on (net.Server `maxConnections`: one past
 * the cap is closed as it is accepted, before TLS or HTTP/2 cost anything). grpc-js exposes no such
 * option, and keeps its listening servers in a private field: a grpc-js upgrade that moves it
 * stops the server at start-up here, and test/attack/connections.test.ts checks the cap holds.
 */
function capConnections(server: Server, maxConnections: number): void {
  const listening = (server as unknown as { http2Servers?: Map<NetServer, unknown> }).http2Servers;
  if (!(listening instanceof Map) || listening.size === 0) throw new Error("grpc-js moved its listening servers: cannot cap connections");
  for (const listener of listening.keys()) listener.maxConnections = maxConnections;
}
