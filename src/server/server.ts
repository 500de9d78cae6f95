/**
 * The gRPC server: CouncilService, health and reflection on one port, and an orderly shutdown.
 */
import { Server, ServerCredentials } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import { CouncilServiceService } from "../gen/council/v1/council_service.js";
import { HealthService } from "../gen/grpc/health/v1/health.js";
import { ServerReflectionService as ReflectionV1 } from "../gen/grpc/reflection/v1/reflection.js";
import { ServerReflectionService as ReflectionV1Alpha } from "../gen/grpc/reflection/v1alpha/reflection.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import { councilService } from "./council_service.js";
import { Health } from "./health.js";
import { Metrics, serveMetrics } from "./metrics.js";
import { DescriptorIndex, reflectionHandler } from "./reflection.js";

export const COUNCIL_SERVICE = "council.v1.CouncilService";
const SERVED = [COUNCIL_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

export interface ServerOptions {
  council: Council;
  store: Store;
  log: Logger;
  /** host:port; port 0 picks a free port. */
  addr: string;
  watchBufferMessages?: number;
  /** host:port for Prometheus metrics at GET /metrics; undefined: not served. */
  metricsAddr?: string;
}

export class CouncilServer {
  private shuttingDown = false;

  private constructor(
    private readonly server: Server,
    private readonly health: Health,
    private readonly closeWatches: () => void,
    private readonly council: Council,
    private readonly log: Logger,
    /** The port actually bound. */
    readonly port: number,
    private readonly metricsServer: { port: number; close: () => Promise<void> } | undefined,
  ) {}

  /** The port metrics are served on, if they are. */
  get metricsPort(): number | undefined {
    return this.metricsServer?.port;
  }

  static async start(options: ServerOptions): Promise<CouncilServer> {
    const { council, store, log } = options;
    const server = new Server({ "grpc.max_receive_message_length": 4 * 1024 * 1024 });
    const metrics = new Metrics(options.metricsAddr !== undefined);
    metrics.observe({ reviewsInFlight: () => council.reviewsInFlight, storeHealthy: () => store.isHealthy() });
    const service = councilService(council, { log, metrics }, { watchBufferMessages: options.watchBufferMessages ?? 1000 });
    server.addService(CouncilServiceService, service.implementation);

    const health = new Health([COUNCIL_SERVICE]);
    server.addService(HealthService, health.implementation);

    const reflect = reflectionHandler(DescriptorIndex.load(), SERVED);
    server.addService(ReflectionV1, { serverReflectionInfo: reflect });
    server.addService(ReflectionV1Alpha, { serverReflectionInfo: reflect });

    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(options.addr, ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    let metricsServer;
    try {
      metricsServer = options.metricsAddr === undefined ? undefined : await serveMetrics(metrics, options.metricsAddr);
    } catch (err) {
      server.forceShutdown();
      throw new Error(`cannot serve metrics on ${options.metricsAddr}: ${(err as Error).message}`);
    }
    const running = new CouncilServer(server, health, service.closeWatches, council, log, port, metricsServer);
    health.setAll(store.isHealthy());
    store.onHealthChange((healthy) => {
      if (running.shuttingDown) return;
      log.warn({ healthy }, healthy ? "store reachable again: serving" : "store unreachable: not serving");
      health.setAll(healthy);
    });
    return running;
  }

  /**
   * Stops accepting calls, ends watches, lets calls in flight (and reviews that have started)
   * finish within `graceMs`, then cancels whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.health.setAll(false);
    this.closeWatches();
    this.health.endWatches();
    const timer = setTimeout(() => {
      this.log.warn({ graceMs }, "grace period over: cancelling calls still in flight");
      this.server.forceShutdown();
    }, graceMs);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    clearTimeout(timer);
    await Promise.race([this.council.drain(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    await this.metricsServer?.close();
  }
}
