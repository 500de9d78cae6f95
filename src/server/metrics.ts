/**
 * Prometheus metrics (prom-client), served on their own HTTP port when COUNCIL_METRICS_ADDR is set:
 * calls by method and status with their durations, reviews and decisions, watchers, reviews in
 * flight, whether the store can serve, and the process's own metrics.
 */
import { createServer, type Server } from "node:http";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export class Metrics {
  readonly registry = new Registry();

  readonly calls = new Counter({
    name: "council_grpc_calls_total",
    help: "gRPC calls handled, by method and status code.",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });

  readonly callSeconds = new Histogram({
    name: "council_grpc_call_duration_seconds",
    help: "How long gRPC calls took, by method (streams: until they ended).",
    labelNames: ["method"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly reviews = new Counter({
    name: "council_reviews_total",
    help: "Reviews answered: stored (a new decision), replayed (an idempotent repeat) or dry_run.",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly decisions = new Counter({
    name: "council_decisions_total",
    help: "Decisions stored by this replica, by decision type.",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });

  readonly watchers = new Gauge({
    name: "council_watchers",
    help: "WatchDecisions streams open on this replica.",
    registers: [this.registry],
  });

  readonly reviewersConnected = new Gauge({
    name: "council_reviewers_connected",
    help: "Reviewer agents (ServeReviews streams) connected to this replica, by role served.",
    labelNames: ["role"] as const,
    registers: [this.registry],
  });

  readonly externalVotes = new Counter({
    name: "council_external_votes_total",
    help: "External votes asked for by reviews on this replica, by role and result: vote, or the failure cause (timed_out, no_reviewer_connected, reviewer_disconnected, invalid_vote).",
    labelNames: ["role", "result"] as const,
    registers: [this.registry],
  });

  readonly externalVoteSeconds = new Histogram({
    name: "council_external_vote_duration_seconds",
    help: "How long reviews waited for an external vote (or its failure), by role.",
    labelNames: ["role"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  /** With `processMetrics`, also the process's own (CPU, memory, event loop lag, …). */
  constructor(processMetrics: boolean) {
    if (processMetrics) collectDefaultMetrics({ register: this.registry, prefix: "council_" });
  }

  /** Gauges read when scraped: reviews in flight, whether the store can serve, the call memory held. */
  observe(sources: { reviewsInFlight: () => number; storeHealthy: () => boolean; callMemoryBytes?: () => number }): void {
    const callMemory = sources.callMemoryBytes;
    if (callMemory) {
      new Gauge({
        name: "council_call_memory_bytes",
        help: "Bytes held by calls in progress (requests, responses waiting to be sent), counted against COUNCIL_CALL_MEMORY_BYTES.",
        registers: [this.registry],
        collect() {
          this.set(callMemory());
        },
      });
    }
    new Gauge({
      name: "council_reviews_in_flight",
      help: "Reviews started and not yet finished (they finish even if their caller left).",
      registers: [this.registry],
      collect() {
        this.set(sources.reviewsInFlight());
      },
    });
    new Gauge({
      name: "council_store_up",
      help: "1 while the store can serve, else 0 (health is NOT_SERVING).",
      registers: [this.registry],
      collect() {
        this.set(sources.storeHealthy() ? 1 : 0);
      },
    });
  }
}

/**
 * How long a rendered page of metrics is served again before it is rendered anew. Rendering
 * (collecting every metric, the process's included) runs on the event loop that serves gRPC: 32
 * clients scraping as fast as they could (1,700 scrapes a second) took GetSummary from 2 ms to
 * 40 ms. A scraper asks every 10 s or so; a page a second old is as good to it.
 */
export const METRICS_CACHE_MS = 1000;

/**
 * The metrics text, rendered at most once per `cacheMs`: scrapes within that time (or while a
 * render is under way) share one render.
 */
export function cachedRender(metrics: Metrics, cacheMs = METRICS_CACHE_MS): () => Promise<string> {
  let cached: { text: Promise<string>; at: number } | undefined;
  return () => {
    const now = performance.now();
    if (!cached || now - cached.at >= cacheMs) {
      const text = metrics.registry.metrics();
      cached = { text, at: now };
      // A failed render is not served again.
      text.catch(() => {
        if (cached?.text === text) cached = undefined;
      });
    }
    return cached.text;
  };
}

/** Serves GET /metrics on `addr` (host:port; port 0 picks one). */
export async function serveMetrics(metrics: Metrics, addr: string, cacheMs = METRICS_CACHE_MS): Promise<{ port: number; close: () => Promise<void> }> {
  const render = cachedRender(metrics, cacheMs);
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
      res.writeHead(404).end("not found; try GET /metrics\n");
      return;
    }
    render().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      () => res.writeHead(500).end("cannot collect metrics\n"),
    );
  });
  const colon = addr.lastIndexOf(":");
  const host = addr.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(addr.slice(colon + 1)), host, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    // Closes every connection too: one that sends half a request would otherwise hold shutdown
    // until Node's request timeout (5 minutes), past the grace period.
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
