/**
 * The attack of issue 7, scaled to run in seconds: thousands of WatchDecisions streams that never
 * read, over 4 connections, then about 115 reviews (a few at the size limits). Before the limits,
 * every stream was accepted and each queued its own copy of every review's events: 18,000 of them
 * took a server past its 4 GiB heap and killed it, losing every in-process decision. Here a real
 * server process runs with a small heap and a low watcher cap; the excess must be refused with
 * RESOURCE_EXHAUSTED, the watchers that stop reading must be ended, and the server must still serve,
 * with its peak memory bounded.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { CouncilServiceClient, WatchDecisionsRequest, type GetSummaryResponse } from "../../src/gen/council/v1/council_service.js";
import { DecisionType } from "../../src/gen/council/v1/review.js";
import { HealthCheckResponse_ServingStatus, HealthClient, type HealthCheckResponse } from "../../src/gen/grpc/health/v1/health.js";
import { wireSuggestionAtLimits } from "../support/at_limits.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { rawCall, silentSession, type RawCall } from "../support/raw_grpc.js";
import { freePort } from "../support/redis.js";
import { review } from "../support/server.js";
import { waitFor, within } from "../support/wait.js";

const MAX_WATCHERS = 40;
const CONNECTIONS = 4;
const STREAMS_PER_WAVE = 250; // per connection: 2 waves x 4 x 250 = 2000 streams
const HEAP_MB = 128;

/** Peak and current resident memory of a process, in MB (from /proc). */
function memoryMb(pid: number): { peak: number; now: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)![1]);
  return { peak: kb("VmHWM") / 1024, now: kb("VmRSS") / 1024 };
}

describe("a client that tries to exhaust the server", function () {
  this.timeout(90_000);
  let child: ChildProcess | undefined;
  let client: CouncilServiceClient | undefined;

  afterEach(async () => {
    client?.close();
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child!.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
  });

  it("gets RESOURCE_EXHAUSTED for the excess watchers, and the server stays up with bounded memory", async () => {
    const port = await freePort();
    const addr = `127.0.0.1:${port}`;
    child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, "--import", "tsx", "src/main.ts", "--addr", addr], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, COUNCIL_MAX_WATCHERS: String(MAX_WATCHERS), COUNCIL_WATCH_BUFFER_BYTES: String(256 * 1024), COUNCIL_LOG_LEVEL: "warn" },
    });
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const up = () => child!.exitCode === null && child!.signalCode === null;
    client = new CouncilServiceClient(addr, credentials.createInsecure());
    const summary = () =>
      new Promise<GetSummaryResponse>((resolve, reject) => client!.getSummary({}, (err, res) => (err ? reject(err) : resolve(res))));
    await waitFor(
      async () => {
        if (!up()) throw new Error(`the server exited at start-up:\n${out}`);
        return summary().then(
          () => true,
          () => false,
        );
      },
      { timeoutMs: 30_000, what: "the server to answer" },
    );
    const baseline = memoryMb(child.pid!).now;

    const sessions = Array.from({ length: CONNECTIONS }, () => silentSession(addr));
    const request = WatchDecisionsRequest.encode({ decisionType: DecisionType.DECISION_TYPE_UNSPECIFIED, includeVotes: true, includeUpdates: false }).finish();
    const all: RawCall[] = [];
    /** Opens a wave of silent watches; returns how many the server accepted (headers without a status). */
    const wave = async () => {
      const calls = sessions.flatMap((s) => Array.from({ length: STREAMS_PER_WAVE }, () => rawCall(s, "/council.v1.CouncilService/WatchDecisions", request)));
      all.push(...calls);
      const headers = await within(Promise.all(calls.map((c) => c.headers)), { timeoutMs: 30_000, what: "an answer to every watch" });
      return headers.filter((h) => Number(h[":status"]) === 200 && h["grpc-status"] === undefined).length;
    };
    const reviews = async (count: number, suggestion: () => ReturnType<typeof wireSuggestion>) => {
      for (let i = 0; i < count; i++) {
        const r = await review(client!, { suggestion: suggestion() });
        if (r.error) throw new Error(`a review failed: ${r.error.code} ${r.error.details}\n${out.slice(-2000)}`);
      }
    };

    try {
      const firstAccepted = await wave();
      expect(firstAccepted).to.equal(MAX_WATCHERS);
      // Three reviews at the size limits: the backlog of every silent watcher passes its bound.
      await reviews(3, wireSuggestionAtLimits);
      const secondAccepted = await wave();
      expect(secondAccepted).to.be.at.least(1).and.at.most(MAX_WATCHERS);
      await reviews(112, () => wireSuggestion({ id: unique("sug"), description: "d".repeat(2000) }));
    } finally {
      // What the server did is judged below; the attacker's connections may now go.
      await new Promise((r) => setImmediate(r));
    }

    expect(up(), `the server died:\n${out.slice(-3000)}`).to.equal(true);
    const ended = all.map((c) => c.end()).filter((e) => e !== undefined);
    // Every stream the server ended, at the start or later, ended with RESOURCE_EXHAUSTED.
    expect(ended.length).to.be.at.least(all.length - MAX_WATCHERS);
    expect(new Set(ended.map((e) => e.code))).to.deep.equal(new Set([status.RESOURCE_EXHAUSTED]));
    for (const s of sessions) s.destroy();

    // Still serving, with every review kept.
    expect((await summary()).totalDecisions).to.equal(115);
    const health = new HealthClient(addr, credentials.createInsecure());
    try {
      const answer = await new Promise<HealthCheckResponse>((resolve, reject) =>
        health.check({ service: "" }, new Metadata(), (err: ServiceError | null, res: HealthCheckResponse) => (err ? reject(err) : resolve(res))),
      );
      expect(answer.status).to.equal(HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      health.close();
    }
    const { peak } = memoryMb(child.pid!);
    expect(peak - baseline, `peak ${peak.toFixed(0)} MB, ${baseline.toFixed(0)} MB at start`).to.be.below(250);
  });
});
