/**
 * Helpers for the gRPC tests against real Redis: replicas in-process on a RedisStore, the real
 * entry point as a child process (for kill -9), health checks, and reading every page.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { CouncilServiceClient, type ListDecisionsRequest } from "../../src/gen/council/v1/council_service.js";
import type { Decision as WireDecision } from "../../src/gen/council/v1/review.js";
import { HealthCheckResponse_ServingStatus, HealthClient } from "../../src/gen/grpc/health/v1/health.js";
import { createLogger } from "../../src/log.js";
import { RedisStore, type RedisStoreOptions } from "../../src/store/redis.js";
import { call, startCouncil, type Running, type StartOptions } from "../support/server.js";
import { waitFor } from "../support/wait.js";

export const silent = createLogger("silent");

/** A replica: the real server in-process on port 0, on a RedisStore. */
export async function startReplica(url: string, prefix: string, options: StartOptions & Partial<RedisStoreOptions> = {}): Promise<Running> {
  // Decisions stored before SPEC §9 read with the approvals of the policy the replica runs.
  const store = await RedisStore.open({ log: silent, verdicts: options.policy?.verdicts, ...options, url, prefix });
  return startCouncil({ ...options, store });
}

/** The health status of the whole server ("" service), or the error code when the call failed. */
export function health(addr: string): Promise<HealthCheckResponse_ServingStatus | string> {
  const client = new HealthClient(addr, credentials.createInsecure());
  return new Promise((resolve) => {
    client.check({ service: "" }, new Metadata(), { deadline: Date.now() + 2000 }, (err, res) => {
      client.close();
      resolve(err ? `error ${err.code}` : res.status);
    });
  });
}

export { HealthCheckResponse_ServingStatus as Serving };

/** Every decision ListDecisions returns, page by page (page_size `size`), with the page count. */
export async function listAll(
  client: CouncilServiceClient,
  size: number,
  filter: Partial<ListDecisionsRequest> = {},
): Promise<{ decisions: WireDecision[]; pages: number }> {
  const decisions: WireDecision[] = [];
  let pageToken = "";
  for (let pages = 1; pages < 100_000; pages++) {
    const res = await call(client, client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: size, pageToken, status: 0, oldestFirst: false, ...filter });
    decisions.push(...res.decisions);
    if (!res.nextPageToken) return { decisions, pages };
    pageToken = res.nextPageToken;
  }
  throw new Error("paging did not end");
}

export const isServiceError = (err: unknown): err is ServiceError => typeof (err as ServiceError)?.code === "number";

/** The real entry point (src/main.ts through tsx) as a child process, so that it can be killed. */
export class ServiceProcess {
  private output = "";

  private constructor(
    private readonly child: ChildProcess,
    readonly addr: string,
  ) {}

  get log(): string {
    return this.output;
  }

  static async start(redisUrl: string, prefix: string): Promise<{ service: ServiceProcess; client: CouncilServiceClient }> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "src/main.ts", "--addr", "127.0.0.1:0", "--redis-url", redisUrl, "--redis-prefix", prefix],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COUNCIL_LOG_LEVEL: "info" } },
    );
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString("utf8")));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString("utf8")));
    const addr = await waitFor(
      () => {
        // Complete lines only: a line still being written is not JSON yet.
        const line = output.split("\n").slice(0, -1).find((l) => l.includes("council listening"));
        if (line) return (JSON.parse(line) as { addr: string }).addr;
        if (child.exitCode !== null) throw new Error("it exited");
        return undefined;
      },
      { timeoutMs: 20_000, what: "the council process to log that it is listening" },
    ).catch((err: Error) => {
      child.kill("SIGKILL");
      throw new Error(`the council process did not start (${err.message}):\n${output}`);
    });
    const service = new ServiceProcess(child, addr);
    child.stdout!.on("data", (d: Buffer) => (service.output += d.toString("utf8")));
    service.output = output;
    return { service, client: new CouncilServiceClient(addr, credentials.createInsecure()) };
  }

  /** SIGSTOP: the process keeps its connections and runs nothing (its event reader falls behind). */
  pause(): void {
    this.child.kill("SIGSTOP");
  }

  resume(): void {
    this.child.kill("SIGCONT");
  }

  /** SIGKILL: the process gets no chance to finish anything. */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
  }
}
