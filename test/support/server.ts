/**
 * Starts a real Council server in-process on a free port and returns a generated client connected
 * to it over a real channel, plus small promise helpers for calling it.
 */
import { credentials, Metadata, type CallOptions, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { Council, type CouncilOptions } from "../../src/app/council.js";
import type { Policy } from "../../src/domain/policy.js";
import { PRESETS } from "../../src/domain/presets.js";
import { CouncilServiceClient, type ReviewSuggestionRequest, type ReviewSuggestionResponse } from "../../src/gen/council/v1/council_service.js";
import { createLogger } from "../../src/log.js";
import { CouncilServer } from "../../src/server/server.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/store.js";
import { waitFor } from "./wait.js";

export interface Running {
  client: CouncilServiceClient;
  council: Council;
  server: CouncilServer;
  store: Store;
  addr: string;
  /** Shuts the server down (grace 2 s), closes the client and the store. */
  stop(): Promise<void>;
}

export interface StartOptions extends CouncilOptions {
  policy?: Policy;
  store?: Store;
  watchBufferBytes?: number;
  maxWatchers?: number;
  maxStreamsPerConnection?: number;
  metricsAddr?: string;
}

export async function startCouncil(options: StartOptions = {}): Promise<Running> {
  const store = options.store ?? new MemoryStore();
  const council = new Council(store, options.policy ?? PRESETS.default, options);
  const server = await CouncilServer.start({
    council,
    store,
    log: createLogger(process.env.COUNCIL_TEST_LOG_LEVEL === "debug" ? "debug" : "silent"),
    addr: "127.0.0.1:0",
    watchBufferBytes: options.watchBufferBytes,
    maxWatchers: options.maxWatchers,
    maxStreamsPerConnection: options.maxStreamsPerConnection,
    metricsAddr: options.metricsAddr,
  });
  const addr = `127.0.0.1:${server.port}`;
  const client = new CouncilServiceClient(addr, credentials.createInsecure());
  return {
    client,
    council,
    server,
    store,
    addr,
    async stop() {
      client.close();
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
    client.reviewSuggestion({ suggestion: undefined, requestId: "", dryRun: false, ...req }),
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
