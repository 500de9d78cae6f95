/**
 * Throughput and latency of ReviewSuggestion against the grpc-js ceiling (issue 12, point 2).
 *
 * The same ghz load (50 concurrent streams on one connection, each review with a fresh request_id
 * and suggestion id) is driven at, in turn:
 *
 *   bare            bench/bare_server.ts: the project's generated service answering canned messages
 *   memory          Council on the in-process store
 *   redis           Council on a redis-server of its own (no persistence)
 *   redis fsync     Council on a redis-server with appendonly and appendfsync always
 *   redis + token   as redis, with an auth file: every call carries a bearer token (role agent)
 *
 * Each server is a fresh process (and a fresh redis-server) per run, warmed up by the first calls
 * of the run (ghz --skipFirst), then measured. The configs are interleaved in rounds, so that a
 * change in the machine's load (2 shared cores) falls on all of them alike; each figure is the
 * median over the rounds, and each ratio is taken within a round (against that round's bare run)
 * before its median is taken.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newToken, tokenHash } from "../src/server/auth/tokens.js";
import { profileSummary } from "./lib/cpuprofile.js";
import { ROOT, runGhz, startBare, startCouncil, startRedis, type BenchRedis, type GhzResult, type Served } from "./lib/processes.js";
import { reviewRequestJson } from "./lib/suggestion.js";
import type { ScenarioResult } from "./lib/scenario.js";

const CALL = "council.v1.CouncilService/ReviewSuggestion";

/** Issue 12, point 2. */
export const TARGETS = {
  /** Council on Redis: reviews/s ≥ 0.8× bare, p99 ≤ 1.5× bare. */
  redisRps: 0.8,
  redisP99: 1.5,
  /** Council on the in-process store: reviews/s ≥ 0.9× bare. */
  memoryRps: 0.9,
  /** Redis with a token: reviews/s ≥ 0.95× Redis without. */
  tokenVsRedis: 0.95,
};

interface Config {
  name: string;
  label: string;
  /**
   * Starts the server (and what it needs) with `nodeArgs` for its node process; returns it, the
   * metadata to send, and how to stop it all.
   */
  start(nodeArgs: string[]): Promise<{ served: Served; metadata?: Record<string, string>; redisPid?: number; stop(): Promise<void> }>;
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU time a process has used so far, in seconds (utime + stime from /proc/<pid>/stat). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces; the fields after its ")" are fixed.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU time the whole machine has been busy so far, in seconds over all cores (/proc/stat). */
function machineBusy(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICKS_PER_SECOND;
}

/** CPU per review over one ghz run (warm-up included), in µs: the server, its redis-server, and the rest (ghz). */
interface CpuPerReview {
  server: number;
  redis: number;
  rest: number;
}

function councilOnRedis(appendfsyncAlways: boolean, token: boolean): Config["start"] {
  return async (nodeArgs) => {
    let redis: BenchRedis | undefined;
    let authDir: string | undefined;
    try {
      redis = await startRedis({ appendfsyncAlways });
      const env: Record<string, string> = { REDIS_URL: redis.url };
      let metadata: Record<string, string> | undefined;
      if (token) {
        // An auth file naming one principal with the role agent by its token's hash (README
        // "Identity and access"); ghz sends the token on every call.
        const secret = newToken();
        authDir = mkdtempSync(join(tmpdir(), "council-bench-auth-"));
        const file = join(authDir, "auth.json");
        writeFileSync(file, JSON.stringify({ principals: [{ name: "bench-agent", roles: ["agent"], tokens: [tokenHash(secret)] }] }));
        env.COUNCIL_AUTH_FILE = file;
        metadata = { authorization: `Bearer ${secret}` };
      }
      const served = await startCouncil(env, nodeArgs);
      const r = redis;
      const dir = authDir;
      return {
        served,
        metadata,
        redisPid: r.pid,
        stop: async () => {
          await served.stop();
          await r.stop();
          if (dir) rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (err) {
      await redis?.stop();
      if (authDir) rmSync(authDir, { recursive: true, force: true });
      throw err;
    }
  };
}

const CONFIGS: Config[] = [
  {
    name: "bare",
    label: "bare grpc-js (the ceiling)",
    start: async (nodeArgs) => {
      const served = await startBare(nodeArgs);
      return { served, stop: () => served.stop() };
    },
  },
  {
    name: "memory",
    label: "Council, in-process store",
    start: async (nodeArgs) => {
      const served = await startCouncil({}, nodeArgs);
      return { served, stop: () => served.stop() };
    },
  },
  { name: "redis", label: "Council, Redis", start: councilOnRedis(false, false) },
  { name: "fsync", label: "Council, Redis with `appendfsync always`", start: councilOnRedis(true, false) },
  { name: "token", label: "Council, Redis, bearer token", start: councilOnRedis(false, true) },
];

export interface ThroughputOptions {
  quick: boolean;
  /** Overrides of the load (for trying things out). */
  rounds?: number;
  reviews?: number;
  warmup?: number;
  /**
   * Profiles each server with node --cpu-prof into bench/profiles/<config>/ and prints the
   * functions with the most self time (the profile covers start-up and warm-up too).
   */
  cpuProf?: boolean;
  /** Progress lines go here. */
  log?: (line: string) => void;
}

const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "—");
const num = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : "—");
const ratio = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : "—");
/** "median unit (min – max)"; the median alone after one round. */
const range = (xs: number[], f: (n: number) => string, unit = "") => {
  if (xs.length < 2) return `${f(xs[0] ?? NaN)}${unit}`;
  return `${f(median(xs))}${unit} (${f(Math.min(...xs))} – ${f(Math.max(...xs))})`;
};

export async function run(opts: ThroughputOptions): Promise<ScenarioResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rounds = opts.rounds ?? (opts.quick ? 1 : 3);
  const reviews = opts.reviews ?? (opts.quick ? 400 : 10_000);
  const warmup = opts.warmup ?? (opts.quick ? 200 : 2_000);
  const load = { concurrency: 50, connections: 1, total: reviews, warmup };

  if (opts.cpuProf) rmSync(join(ROOT, "bench", "profiles"), { recursive: true, force: true });
  // results[config][round]
  const results = new Map<string, GhzResult[]>(CONFIGS.map((c) => [c.name, []]));
  const cpu = new Map<string, CpuPerReview[]>(CONFIGS.map((c) => [c.name, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const config of CONFIGS) {
      const profDir = join(ROOT, "bench", "profiles", config.name);
      const started = await config.start(opts.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : []);
      let r: GhzResult;
      try {
        const pids = { server: started.served.pid, redis: started.redisPid };
        const before = { server: cpuOf(pids.server), redis: pids.redis ? cpuOf(pids.redis) : 0, machine: machineBusy() };
        r = await runGhz({ addr: started.served.addr, call: CALL, data: reviewRequestJson(), metadata: started.metadata, ...load });
        const server = cpuOf(pids.server) - before.server;
        const redis = pids.redis ? cpuOf(pids.redis) - before.redis : 0;
        const perReview = 1e6 / (load.total + load.warmup);
        cpu.get(config.name)!.push({ server: server * perReview, redis: redis * perReview, rest: (machineBusy() - before.machine - server - redis) * perReview });
      } finally {
        await started.stop();
      }
      if (r.errors > 0) {
        throw new Error(
          `throughput: ${config.label}: ${r.errors} of ${r.count} reviews did not end OK: ${JSON.stringify(r.statuses)} ${JSON.stringify(r.errorMessages)}`,
        );
      }
      results.get(config.name)!.push(r);
      log(`throughput round ${round}/${rounds}: ${config.name.padEnd(6)} ${int(r.rps).padStart(6)} reviews/s  p50 ${num(r.p50Ms)} ms  p99 ${num(r.p99Ms)} ms`);
    }
  }

  if (opts.cpuProf) {
    for (const config of CONFIGS) log(`\n${config.label}: most self time\n${profileSummary(join(ROOT, "bench", "profiles", config.name), 25)}`);
  }

  const of = (name: string) => results.get(name)!;
  const bare = of("bare");
  /** Per round, this config's figure over bare's (or over `base`'s). */
  const perRound = (name: string, pick: (r: GhzResult) => number, base = bare) => of(name).map((r, i) => pick(r) / pick(base[i]!));
  const rpsRatio = (name: string) => median(perRound(name, (r) => r.rps));
  const p99Ratio = (name: string) => median(perRound(name, (r) => r.p99Ms));
  const tokenVsRedis = median(perRound("token", (r) => r.rps, of("redis")));

  const header = ["server", "reviews/s", "p50", "p99", "reviews/s ÷ bare", "p99 ÷ bare", "target", "CPU µs/review: server + Redis + ghz"];
  const cpuCell = (name: string) => {
    const c = (pick: (x: CpuPerReview) => number) => median(cpu.get(name)!.map(pick));
    const [server, redis, rest] = [c((x) => x.server), c((x) => x.redis), c((x) => x.rest)];
    return `${int(server)} + ${int(redis)} + ${int(rest)} = ${int(server + redis + rest)}`;
  };
  const target: Record<string, string> = {
    bare: "",
    memory: `≥ ${TARGETS.memoryRps}× bare`,
    redis: `≥ ${TARGETS.redisRps}× bare, p99 ≤ ${TARGETS.redisP99}× bare`,
    fsync: "(reported)",
    token: `≥ ${TARGETS.tokenVsRedis}× Redis (${ratio(tokenVsRedis)}×)`,
  };
  const rows = CONFIGS.map((c) => [
    c.label,
    range(of(c.name).map((r) => r.rps), int),
    range(of(c.name).map((r) => r.p50Ms), num, " ms"),
    range(of(c.name).map((r) => r.p99Ms), num, " ms"),
    c.name === "bare" ? "1" : ratio(rpsRatio(c.name)),
    c.name === "bare" ? "1" : ratio(p99Ratio(c.name)),
    target[c.name] ?? "",
    cpuCell(c.name),
  ]);

  const missed: string[] = [];
  if (!(rpsRatio("memory") >= TARGETS.memoryRps)) missed.push(`in-process reviews/s ${ratio(rpsRatio("memory"))}× bare < ${TARGETS.memoryRps}×`);
  if (!(rpsRatio("redis") >= TARGETS.redisRps)) missed.push(`Redis reviews/s ${ratio(rpsRatio("redis"))}× bare < ${TARGETS.redisRps}×`);
  if (!(p99Ratio("redis") <= TARGETS.redisP99)) missed.push(`Redis p99 ${ratio(p99Ratio("redis"))}× bare > ${TARGETS.redisP99}×`);
  if (!(tokenVsRedis >= TARGETS.tokenVsRedis)) missed.push(`Redis with a token ${ratio(tokenVsRedis)}× Redis without < ${TARGETS.tokenVsRedis}×`);

  return {
    title: "Throughput: ReviewSuggestion against the grpc-js ceiling",
    header,
    rows,
    notes: [
      `ghz, ${load.concurrency} concurrent streams on ${load.connections} connection, ${int(reviews)} reviews after a warm-up of ${int(warmup)}, ` +
        `each with a fresh request_id; ${rounds} interleaved round${rounds === 1 ? "" : "s"}, each server a fresh process; ` +
        "figures are the median of the rounds (lowest – highest in parentheses), ratios the median of the per-round ratios.",
      "CPU per review: CPU time (user + system, from /proc) over the whole ghz run, warm-up included, divided by its reviews: the server process, " +
        "its redis-server, and the rest of the machine (ghz, mostly). The machine has 2 cores for all three, so reviews/s is bounded by " +
        "2 s of CPU ÷ the total.",
    ],
    missed,
  };
}
