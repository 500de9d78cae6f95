/**
 * Issue 12, point 3: the cost of reads stays flat as history grows.
 *
 * Council runs on a redis-server of its own; the bench loads decisions into the same keyspace
 * through the store's own write path (RedisStore.saveReview, the Lua script a review runs, many
 * in flight so that ioredis pipelines them), made by the real domain (bench/lib/decisions.ts:
 * every reviewer votes, the default policy concludes, so types and statuses vary). At 1,000 and
 * then at 1,000,000 stored decisions (quick: 1,000 and 20,000) it times, through gRPC, one call
 * after another: GetSummary and the first page (page_size 50) of ListDecisions unfiltered, by
 * type and by status. Target: each ≤ 1.2× its cost at 1,000.
 *
 * Then pages per second: ghz ListDecisions page_size 50 against Council at the larger size and
 * against the bare grpc-js server answering 50 canned decisions (bench/bare_server.ts). Target:
 * Council ≥ 0.5× bare. And Redis's used_memory per stored decision (no target: the README's
 * capacity guidance).
 *
 * Part of `npm run bench` (bench/run.ts; `--only history`, `--quick`, `--cpu-prof`: Council's
 * profile goes to bench/profiles/history/ and its top functions are printed). Alone:
 * `npx tsx bench/history.ts [--quick] [--cpu-prof]`.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../src/config.js";
import type { CouncilServiceClient } from "../src/gen/council/v1/council_service.js";
import { DecisionStatus, DecisionType } from "../src/gen/council/v1/review.js";
import { createLogger } from "../src/log.js";
import { RedisStore } from "../src/store/redis.js";
import type { Store } from "../src/store/store.js";
import { benchDecision, mixTypes } from "./lib/decisions.js";
import { client, fmt, pool, sleep, table, timed, unary } from "./lib/measure.js";
import { profileSummary } from "./lib/cpuprofile.js";
import { buildCouncil, ROOT, runGhz, startBare, startCouncil, startRedis, type BenchRedis, type Served } from "./lib/processes.js";

export interface BenchResult {
  table: string;
  notes: string[];
  missed: string[];
  figures: Record<string, number>;
}

const TARGETS = { maxGrowth: 1.2, minPageRatio: 0.5 };

/**
 * Saves in flight at once while loading (ioredis pipelines what is in flight). Redis runs about
 * 3,500 save scripts a second on the 2-core machine, so 1,000 in flight wait about 0.3 s each.
 */
const IN_FLIGHT = 1000;

/** The reads timed at each size. */
const QUERIES: { name: string; key: string; call: (c: CouncilServiceClient) => Promise<unknown> }[] = [
  { name: "GetSummary", key: "summary", call: (c) => unary((cb) => c.getSummary({}, cb)) },
  { name: "ListDecisions page of 50, all", key: "list_all", call: (c) => list(c, {}) },
  { name: "ListDecisions page of 50, by type (human_approve)", key: "list_type", call: (c) => list(c, { decisionType: DecisionType.DECISION_TYPE_HUMAN_APPROVE }) },
  { name: "ListDecisions page of 50, by status (pending)", key: "list_status", call: (c) => list(c, { status: DecisionStatus.DECISION_STATUS_PENDING }) },
];

async function list(c: CouncilServiceClient, filter: { decisionType?: DecisionType; status?: DecisionStatus }) {
  const res = await unary<{ decisions: unknown[] }>((cb) =>
    c.listDecisions({ decisionType: 0, suggestionId: "", pageSize: 50, pageToken: "", status: 0, oldestFirst: false, ...filter }, cb),
  );
  if (res.decisions.length !== 50) throw new Error(`a first page of ListDecisions held ${res.decisions.length} decisions, not 50`);
  return res;
}

/** Stores decisions number `from` to `to` − 1 through the store's write path, `IN_FLIGHT` at a time. */
async function load(store: Store, from: number, to: number, log: (line: string) => void): Promise<number> {
  const started = performance.now();
  let retries = 0;
  let done = from;
  let nextReport = Math.ceil((from + 1) / 100_000) * 100_000;
  await pool(to - from, IN_FLIGHT, async (i) => {
    const { decision, fingerprint } = benchDecision(from + i);
    // A save that timed out may have landed: the retry then finds its request id taken by the same
    // suggestion ("exists", same fingerprint), which is as good as stored. Bounded: 5 attempts.
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await store.saveReview(decision, fingerprint);
        if (r.kind === "exists" && r.fingerprint !== fingerprint) throw new Error(`request id ${decision.requestId} taken by another suggestion`);
        break;
      } catch (err) {
        if (attempt >= 5) throw err;
        retries++;
        await sleep(200 * attempt);
      }
    }
    done++;
    if (done >= nextReport) {
      const s = (performance.now() - started) / 1000;
      log(`history: ${fmt(done)} decisions stored (${fmt((done - from) / s)}/s)`);
      nextReport += 100_000;
    }
  });
  return retries;
}

/** p50 (and p99) of each query, `count` sequential calls after a warm-up. */
async function measure(c: CouncilServiceClient, quick: boolean): Promise<Record<string, { p50Ms: number; p99Ms: number }>> {
  const out: Record<string, { p50Ms: number; p99Ms: number }> = {};
  for (const q of QUERIES) out[q.key] = await timed(() => q.call(c), quick ? 100 : 300, quick ? 20 : 50);
  return out;
}

export async function run(opts: { quick: boolean; cpuProf?: boolean }): Promise<BenchResult> {
  const { quick } = opts;
  const small = 1_000;
  const large = quick ? 20_000 : 1_000_000;
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const profileDir = join(ROOT, "bench", "profiles", "history");
  if (opts.cpuProf) rmSync(profileDir, { recursive: true, force: true });
  const nodeArgs = opts.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];

  let redis: BenchRedis | undefined;
  let council: Served | undefined;
  let bare: Served | undefined;
  let store: Store | undefined;
  let c: CouncilServiceClient | undefined;
  try {
    redis = await startRedis();
    council = await startCouncil({ REDIS_URL: redis.url }, nodeArgs);
    // The keyspace the Council process opened (the default prefix; its bucket count recorded in
    // meta), through the store Council itself uses, with the options openStore gives it but longer
    // timeouts: a thousand saves in flight on a busy 2-core machine can wait longer than the 1.5 s
    // a client's call gets.
    const config = loadConfig([], { REDIS_URL: redis.url });
    store = await RedisStore.open({
      url: redis.url,
      prefix: config.redisPrefix,
      buckets: config.redisBuckets,
      log: createLogger("warn"),
      commandTimeoutMs: 10_000,
      operationTimeoutMs: 15_000,
    });
    c = client(council.addr);
    const memBefore = await redis.infoMemoryBytes();

    let retries = await load(store, 0, small, log);
    const atSmall = await measure(c, quick);
    log(`history: timed reads at ${fmt(small)}`);
    const loadStarted = performance.now();
    retries += await load(store, small, large, log);
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const memAfter = await redis.infoMemoryBytes();
    log(`history: ${fmt(large)} stored in all (${fmt((large - small) / loadSeconds)}/s); timing reads`);
    const atLarge = await measure(c, quick);

    // Pages per second, the same load against Council and the bare server.
    const ghz = { call: "council.v1.CouncilService.ListDecisions", data: { pageSize: 50 }, concurrency: 50, connections: 1, total: quick ? 2_000 : 5_000, warmup: quick ? 200 : 500 };
    const councilPages = await runGhz({ addr: council.addr, ...ghz });
    bare = await startBare();
    const barePages = await runGhz({ addr: bare.addr, ...ghz });
    for (const [who, r] of [["Council", councilPages], ["bare", barePages]] as const) {
      if (r.errors > 0) throw new Error(`ghz ListDecisions against ${who}: ${r.errors} calls failed: ${JSON.stringify(r.errorMessages)}`);
    }

    const figures: Record<string, number> = {
      decisions_small: small,
      decisions_large: large,
      load_per_s: Math.round((large - small) / loadSeconds),
      load_retries: retries,
      redis_bytes_per_decision: Math.round((memAfter - memBefore) / large),
      redis_used_memory_bytes: memAfter,
      pages_per_s_council: Math.round(councilPages.rps),
      pages_per_s_bare: Math.round(barePages.rps),
      pages_p99_ms_council: +councilPages.p99Ms.toFixed(2),
      pages_p99_ms_bare: +barePages.p99Ms.toFixed(2),
      pages_ratio: +(councilPages.rps / barePages.rps).toFixed(3),
    };
    const missed: string[] = [];
    const rows: (string | number)[][] = [];
    for (const q of QUERIES) {
      const a = atSmall[q.key]!;
      const b = atLarge[q.key]!;
      const growth = b.p50Ms / a.p50Ms;
      figures[`${q.key}_p50_ms_small`] = +a.p50Ms.toFixed(3);
      figures[`${q.key}_p50_ms_large`] = +b.p50Ms.toFixed(3);
      figures[`${q.key}_growth`] = +growth.toFixed(3);
      const ok = growth <= TARGETS.maxGrowth;
      if (!ok) missed.push(`${q.name}: p50 ${b.p50Ms.toFixed(2)} ms at ${fmt(large)} is ${growth.toFixed(2)}× its ${a.p50Ms.toFixed(2)} ms at ${fmt(small)} (target ≤ ${TARGETS.maxGrowth}×)`);
      rows.push([q.name, `${a.p50Ms.toFixed(2)} ms`, `${b.p50Ms.toFixed(2)} ms`, `${growth.toFixed(2)}×`, `≤ ${TARGETS.maxGrowth}×`, ok ? "ok" : "MISSED"]);
    }
    const pageOk = figures.pages_ratio! >= TARGETS.minPageRatio;
    if (!pageOk) {
      missed.push(
        `ListDecisions page of 50: Council on Redis ${fmt(figures.pages_per_s_council!)} pages/s is ${figures.pages_ratio}× the bare server's ${fmt(figures.pages_per_s_bare!)} (target ≥ ${TARGETS.minPageRatio}×)`,
      );
    }
    rows.push([
      "Pages of 50 per second (ghz, 50 concurrent, 1 connection)",
      `bare ${fmt(barePages.rps)}/s, p99 ${barePages.p99Ms.toFixed(1)} ms`,
      `Council ${fmt(councilPages.rps)}/s, p99 ${councilPages.p99Ms.toFixed(1)} ms`,
      `${figures.pages_ratio!.toFixed(2)}× bare`,
      `≥ ${TARGETS.minPageRatio}× bare`,
      pageOk ? "ok" : "MISSED",
    ]);
    rows.push(["Redis used_memory per stored decision", "", `${fmt(figures.redis_bytes_per_decision!)} B (${fmt(memAfter / 2 ** 30, 2)} GiB in all)`, "", "(reported)", ""]);
    const head = ["history (Council on Redis)", `at ${fmt(small)} decisions`, `at ${fmt(large)} decisions`, "ratio", "target", ""];
    const notes = [
      `Council on a redis-server of its own (no persistence); the decisions are loaded through the store's own write path ` +
        `(RedisStore.saveReview, ${fmt(IN_FLIGHT)} in flight, pipelined by ioredis; ${fmt(figures.load_per_s!)}/s), made by the ` +
        `domain under the default policy from varied suggestions (${Object.entries(mixTypes(1000))
          .map(([t, n]) => `${t} ${Math.round(n / 10)}%`)
          .join(", ")}; human_approve and defer start pending), each with its own suggestion id and request id.`,
      `Reads through gRPC, one call after another: p50 of ${quick ? 100 : 300} calls after ${quick ? 20 : 50} of warm-up at each size; ` +
        `first pages, page_size 50, newest first. Pages per second: ghz, ${ghz.concurrency} concurrent on ${ghz.connections} connection, ` +
        `${fmt(ghz.total)} calls after ${fmt(ghz.warmup)}; the bare server answers 50 canned decisions of the same mix.`,
      `Bytes per decision: Redis INFO used_memory after the load minus before it, over ${fmt(large)} decisions.`,
    ];
    return { table: table(head, rows), notes, missed, figures };
  } finally {
    c?.close();
    await store?.close().catch(() => undefined);
    await bare?.stop();
    await council?.stop();
    await redis?.stop();
    if (opts.cpuProf) log(`\nhistory, Council on Redis: most self time\n${profileSummary(profileDir, 25)}`);
  }
}

// Run alone: `npx tsx bench/history.ts [--quick]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes("--quick");
  buildCouncil();
  const r = await run({ quick, cpuProf: process.argv.includes("--cpu-prof") });
  console.log(r.table);
  console.log(`\n${r.notes.join("\n")}`);
  console.log(JSON.stringify(r.figures, null, 2));
  if (r.missed.length) {
    console.error(`missed:\n- ${r.missed.join("\n- ")}`);
    process.exitCode = 1;
  }
}
