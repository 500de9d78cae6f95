/**
 * Issue 12, points 4 and 5: the memory of open streams, no leak across many reviews, and the cost
 * of fan-out to many watchers.
 *
 * Memory (Council on Redis): the idle RSS of a fresh server; then, on a fresh server per kind, RSS
 * growth per open stream at 1,000 and at 10,000 WatchDecisions streams, and the same for
 * AwaitDecision streams on pending decisions (quick: 100 and 1,000). The streams are opened by a
 * separate client process (bench/lib/stream_client.ts) over many connections (the server allows
 * 100 streams per connection), and RSS is read once the server confirmed every stream live (a
 * watch's response headers, an await's first message) and the RSS has settled. Growth per stream
 * = (RSS after − RSS before) / streams. Target ≤ 50 KiB per stream.
 *
 * No leak: a Redis-backed replica takes 100,000 reviews (quick: 5,000) from ghz; its RSS after all
 * of them is compared with its RSS after the first 10,000 (quick: 1,000), a warm-up, and sampled
 * after each further tenth (a leak climbs steadily; a heap that settles flattens). RSS also holds
 * garbage not yet collected and the young generation V8 grows into, so the criterion is the live
 * heap, measured exactly from heap snapshots after the warm-up and after all reviews (V8 collects
 * garbage before it writes one; they go to a scratch directory, or BENCH_HEAP_DIR): it must grow
 * by at most 2 MiB. RSS is reported (it is judged, at most +30 MiB, only if no snapshot was taken).
 *
 * Fan-out, on the in-process store and on Redis: the p50 latency of a review (ghz, one review at a
 * time from one client, 200 after 20 of warm-up) with no watcher, then with 2,000 WatchDecisions
 * streams open (quick: 200) in the client process; target with watchers ≤ 2× without. Every
 * watcher must receive every review made while it was open (it counts them; the bench waits until
 * each has all of them, bounded, and fails the target otherwise).
 *
 * Part of `npm run bench` (bench/run.ts; `--only streams`, `--quick`, `--cpu-prof`: each Council's
 * profile goes to bench/profiles/streams-<what>/ and the fan-out servers' top functions are
 * printed). Alone: `npx tsx bench/streams.ts [--quick] [--cpu-prof] [--only memory|leak|fanout]`.
 * BENCH_HEAP_DIR=<dir>: heap snapshots of the servers go there: of each memory server with all its
 * streams open, and of the leak server after the warm-up and after all reviews (its live heap is
 * then judged too).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { suggestionToWire } from "../src/server/convert.js";
import { DecisionStatus } from "../src/gen/council/v1/review.js";
import type { ReviewSuggestionResponse } from "../src/gen/council/v1/council_service.js";
import { mixIndexesOf, variedSuggestion } from "./lib/decisions.js";
import { client, fmt, MiB, settledRss, sleep, table } from "./lib/measure.js";
import { profileSummary } from "./lib/cpuprofile.js";
import { buildCouncil, ROOT, runGhz, startCouncil, startRedis, type BenchRedis, type Served } from "./lib/processes.js";
import { StreamClients } from "./lib/stream_clients.js";
import { reviewRequestJson } from "./lib/suggestion.js";

export interface BenchResult {
  table: string;
  notes: string[];
  missed: string[];
  figures: Record<string, number>;
}

const TARGETS = {
  maxBytesPerStream: 50 * 1024,
  /** No leak: RSS growth from after the warm-up to after all reviews (90,000 reviews: ≤ 350 B each). */
  maxLeakRssBytes: 30 * MiB,
  /** No leak, with heap snapshots: growth of the live heap over the same reviews. */
  maxLeakLiveHeapBytes: 2 * MiB,
  maxFanoutSlowdown: 2,
};

/** Limits raised so that 10,000 streams over ~110 connections are allowed. */
const STREAM_ENV = { COUNCIL_MAX_WATCHERS: "30000", COUNCIL_MAX_CONNECTIONS: "5000" };

const REVIEW = "council.v1.CouncilService.ReviewSuggestion";

/** Fan-out: reviews timed one at a time, after a warm-up. */
const FANOUT_REVIEWS = { total: 200, warmup: 20 };

const log = (line: string) => process.stderr.write(`${line}\n`);

/** Profiles asked for (--cpu-prof): each Council's go to bench/profiles/streams-<what>/. */
let profiling = false;
const profileDir = (what: string) => join(ROOT, "bench", "profiles", `streams-${what}`);

function nodeArgs(what: string): string[] {
  const args: string[] = [];
  if (profiling) {
    rmSync(profileDir(what), { recursive: true, force: true });
    args.push("--cpu-prof", `--cpu-prof-dir=${profileDir(what)}`);
  }
  const heapDir = process.env.BENCH_HEAP_DIR;
  if (heapDir) {
    mkdirSync(heapDir, { recursive: true });
    args.push("--heapsnapshot-signal=SIGUSR2", `--diagnostic-dir=${heapDir}`);
  }
  return args;
}

/** With BENCH_HEAP_DIR: has `served` write a heap snapshot there, and waits (bounded) until it is written. */
async function heapSnapshot(served: Served, label: string): Promise<string | undefined> {
  const dir = process.env.BENCH_HEAP_DIR;
  if (!dir) return undefined;
  const before = new Set(readdirSync(dir));
  process.kill(served.pid, "SIGUSR2");
  const deadline = Date.now() + 120_000;
  // The file appears when writing starts; it is complete once its size stops changing.
  let last = -1;
  while (Date.now() < deadline) {
    const fresh = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
    if (fresh.length > 0) {
      const { size } = statSync(`${dir}/${fresh[0]}`);
      if (size > 0 && size === last) {
        log(`streams: heap snapshot (${label}) ${dir}/${fresh[0]}`);
        return `${dir}/${fresh[0]}`;
      }
      last = size;
    }
    await sleep(1000);
  }
  log(`streams: heap snapshot (${label}) not complete within 120 s`);
  return undefined;
}

/** The live JS heap in a heap snapshot (V8 collects garbage before it writes one): the sum of every node's self size. */
function liveHeapBytes(path: string): number {
  const snap = JSON.parse(readFileSync(path, "utf8")) as { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const size = fields.indexOf("self_size");
  let total = 0;
  for (let i = size; i < snap.nodes.length; i += width) total += snap.nodes[i]!;
  return total;
}

/** One review through gRPC; resolves with its final decision's id and status. */
function review(addr: string, n: number): Promise<{ id: string; status: DecisionStatus }> {
  const c = client(addr);
  return new Promise((resolve, reject) => {
    let decision: { id: string; status: DecisionStatus } | undefined;
    const call = c.reviewSuggestion({ suggestion: suggestionToWire(variedSuggestion(n)), requestId: randomUUID(), dryRun: false, supersedes: "" });
    call.on("data", (e: ReviewSuggestionResponse) => {
      if (e.event?.$case === "decision") decision = { id: e.event.value.id, status: e.event.value.status };
    });
    call.on("error", (err) => {
      c.close();
      reject(err);
    });
    call.on("end", () => {
      c.close();
      if (decision) resolve(decision);
      else reject(new Error("a review ended without its decision"));
    });
  });
}

/** `count` reviews that end pending (human_approve under the default policy, 24 h to expiry). */
async function pendingDecisions(addr: string, count: number): Promise<string[]> {
  const mix = mixIndexesOf("human_approve", 200);
  if (mix.length === 0) throw new Error("no suggestion of the mix makes a human_approve decision");
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = await review(addr, mix[i % mix.length]!);
    if (d.status !== DecisionStatus.DECISION_STATUS_PENDING) throw new Error(`a human_approve review ended in status ${d.status}, not pending`);
    ids.push(d.id);
  }
  return ids;
}

interface MemoryFigures {
  idleRss: number;
  rows: (string | number)[][];
  figures: Record<string, number>;
  missed: string[];
}

/** RSS growth per stream of `kind`, at each of `sizes` open at once, on a fresh server. */
async function streamMemory(redis: BenchRedis, kind: "watch" | "await", sizes: number[], pending: string[]): Promise<MemoryFigures> {
  const council = await startCouncil({ REDIS_URL: redis.url, ...STREAM_ENV }, nodeArgs(`memory-${kind}`));
  let clients: StreamClients | undefined;
  try {
    const idle = await settledRss(council);
    // A warm-up, so that what is measured is the streams, not code loaded and compiled on first use:
    // a few reviews, and a few streams of the kind opened and closed.
    for (let i = 0; i < 20; i++) await review(council.addr, i);
    clients = await StreamClients.start(council.addr);
    await (kind === "watch" ? clients.openWatches(50) : clients.openAwaits(50, pending));
    await clients.closeAll();
    const before = await settledRss(council);
    const rows: (string | number)[][] = [];
    const figures: Record<string, number> = {};
    const missed: string[] = [];
    let open = 0;
    for (const size of sizes) {
      const opened = kind === "watch" ? await clients.openWatches(size - open) : await clients.openAwaits(size - open, pending);
      if (opened.failed > 0) throw new Error(`${opened.failed} of ${size - open} ${kind} streams did not open: ${opened.errors.join("; ")}`);
      open = size;
      const after = await settledRss(council);
      const counts = await clients.counts();
      if (counts.ended > 0) throw new Error(`${counts.ended} ${kind} streams ended while they should stay open: ${counts.errors.join("; ")}`);
      const perStream = (after.bytes - before.bytes) / size;
      figures[`${kind}_rss_before_bytes`] = before.bytes;
      figures[`${kind}_${size}_rss_bytes`] = after.bytes;
      figures[`${kind}_${size}_bytes_per_stream`] = Math.round(perStream);
      const ok = perStream <= TARGETS.maxBytesPerStream;
      if (!ok) missed.push(`${kind === "watch" ? "WatchDecisions" : "AwaitDecision"}: ${fmt(perStream / 1024, 1)} KiB of RSS per stream at ${fmt(size)} open (target ≤ ${TARGETS.maxBytesPerStream / 1024} KiB)`);
      rows.push([
        `${kind === "watch" ? "WatchDecisions" : "AwaitDecision"} × ${fmt(size)}`,
        `${fmt(before.bytes / MiB, 1)} → ${fmt(after.bytes / MiB, 1)} MiB${after.settled ? "" : " (not settled)"}`,
        `${fmt(perStream / 1024, 1)} KiB`,
        `≤ ${TARGETS.maxBytesPerStream / 1024} KiB`,
        ok ? "ok" : "MISSED",
      ]);
      log(`streams: ${kind} × ${size}: ${fmt(perStream / 1024, 1)} KiB per stream (opened in ${fmt(opened.ms)} ms)`);
    }
    await heapSnapshot(council, `${kind} × ${open}`);
    return { idleRss: idle.bytes, rows, figures, missed };
  } finally {
    await clients?.stop();
    await council.stop();
  }
}

/**
 * RSS of a Redis-backed replica after a warm-up of reviews and then after every further tenth of
 * them (ghz, 50 at a time on one connection), so that a leak shows as a steady climb and a heap that
 * merely settles as a flattening curve.
 */
async function leak(redis: BenchRedis, warm: number, total: number) {
  const council = await startCouncil({ REDIS_URL: redis.url }, nodeArgs("leak"));
  try {
    const ghz = { call: REVIEW, data: reviewRequestJson(), concurrency: 50, connections: 1, warmup: 0 };
    const first = await runGhz({ addr: council.addr, ...ghz, total: warm });
    const afterWarm = await settledRss(council);
    // With BENCH_HEAP_DIR, the live heap (after a full GC) too: the exact answer, where RSS is only a hint.
    // Writing a snapshot swells RSS for a while, so the RSS after it is not comparable: the curve
    // then starts from the first tenth.
    const heapWarm = await heapSnapshot(council, `after ${warm} reviews`);
    const curve: number[] = [];
    let settled = afterWarm.settled;
    let errors = first.errors;
    const messages: Record<string, number> = { ...first.errorMessages };
    let seconds = 0;
    const step = Math.ceil((total - warm) / 10);
    for (let done = warm; done < total; ) {
      const n = Math.min(step, total - done);
      const r = await runGhz({ addr: council.addr, ...ghz, total: n });
      done += n;
      errors += r.errors;
      Object.assign(messages, r.errorMessages);
      seconds += n / r.rps;
      const rss = await settledRss(council);
      settled &&= rss.settled;
      curve.push(rss.bytes);
    }
    const heapAll = await heapSnapshot(council, `after ${total} reviews`);
    const liveHeap = heapWarm && heapAll ? { warm: liveHeapBytes(heapWarm), all: liveHeapBytes(heapAll) } : undefined;
    if (errors > 0) throw new Error(`${errors} reviews failed: ${JSON.stringify(messages)}`);
    return { afterWarm: heapWarm ? curve[0]! : afterWarm.bytes, curve, afterAll: curve[curve.length - 1]!, settled, rps: (total - warm) / seconds, liveHeap };
  } finally {
    await council.stop();
  }
}

/** Review p50 with no watcher, then with `watchers` open; checks that every watcher got every review. */
async function fanout(env: Record<string, string>, watchers: number, what: string) {
  const council = await startCouncil({ ...env, ...STREAM_ENV }, nodeArgs(what));
  let clients: StreamClients | undefined;
  try {
    const ghz = { call: REVIEW, data: reviewRequestJson(), concurrency: 1, connections: 1, ...FANOUT_REVIEWS };
    const none = await runGhz({ addr: council.addr, ...ghz });
    clients = await StreamClients.start(council.addr);
    const opened = await clients.openWatches(watchers);
    if (opened.failed > 0) throw new Error(`${opened.failed} of ${watchers} watches did not open: ${opened.errors.join("; ")}`);
    const withWatchers = await runGhz({ addr: council.addr, ...ghz });
    if (none.errors + withWatchers.errors > 0) throw new Error(`reviews failed: ${JSON.stringify({ ...none.errorMessages, ...withWatchers.errorMessages })}`);
    // Every review made while the watches were open (warm-up included) must reach every watcher.
    const expected = ghz.total + ghz.warmup;
    const deadline = Date.now() + 60_000;
    let counts = await clients.counts();
    while (counts.min < expected && counts.failed === 0 && Date.now() < deadline) {
      await sleep(200);
      counts = await clients.counts();
    }
    const allGotAll = counts.min === expected && counts.max === expected && counts.failed === 0 && counts.streams === watchers;
    return { none, withWatchers, counts, expected, allGotAll };
  } finally {
    await clients?.stop();
    await council.stop();
  }
}

export async function run(opts: { quick: boolean; cpuProf?: boolean; only?: "memory" | "leak" | "fanout" }): Promise<BenchResult> {
  const { quick, only } = opts;
  profiling = opts.cpuProf === true;
  const sizes = quick ? [100, 1_000] : [1_000, 10_000];
  const leakWarm = quick ? 1_000 : 10_000;
  const leakTotal = quick ? 5_000 : 100_000;
  const watchers = quick ? 200 : 2_000;

  const figures: Record<string, number> = {};
  const missed: string[] = [];
  const rows: (string | number)[][] = [];
  let redis: BenchRedis | undefined;
  try {
    redis = await startRedis();

    if (!only || only === "memory") {
      // Pending decisions for the awaits, made through a Council of their own (any replica serves them).
      const maker = await startCouncil({ REDIS_URL: redis.url });
      let pending: string[];
      try {
        pending = await pendingDecisions(maker.addr, quick ? 20 : 100);
      } finally {
        await maker.stop();
      }
      const watch = await streamMemory(redis, "watch", sizes, pending);
      const awaits = await streamMemory(redis, "await", sizes, pending);
      figures.idle_rss_bytes = watch.idleRss;
      rows.push(["Idle RSS, Council on Redis (fresh)", `${fmt(watch.idleRss / MiB, 1)} MiB`, "", "(reported)", ""]);
      rows.push(...watch.rows, ...awaits.rows);
      Object.assign(figures, watch.figures, awaits.figures);
      missed.push(...watch.missed, ...awaits.missed);
    }

    if (!only || only === "leak") {
      // The live heap (from heap snapshots, taken after a full GC) is the criterion: RSS also holds
      // garbage not yet collected and the young generation V8 grows into (npm start gives it up to
      // 64 MB), so RSS is reported, not judged. Snapshots go to a scratch directory unless
      // BENCH_HEAP_DIR keeps them.
      const scratch = process.env.BENCH_HEAP_DIR ? undefined : mkdtempSync(join(tmpdir(), "council-bench-heap-"));
      if (scratch) process.env.BENCH_HEAP_DIR = scratch;
      let l: Awaited<ReturnType<typeof leak>>;
      try {
        l = await leak(redis, leakWarm, leakTotal);
      } finally {
        if (scratch) {
          delete process.env.BENCH_HEAP_DIR;
          rmSync(scratch, { recursive: true, force: true });
        }
      }
      // With heap snapshots the RSS curve starts after the first tenth (see leak()).
      const from = l.liveHeap ? leakWarm + Math.ceil((leakTotal - leakWarm) / 10) : leakWarm;
      const grown = l.afterAll - l.afterWarm;
      const perReview = grown / (leakTotal - from);
      Object.assign(figures, {
        leak_rss_after_warmup_bytes: l.afterWarm,
        leak_rss_after_all_bytes: l.afterAll,
        leak_rss_growth_bytes: grown,
        leak_rss_growth_ratio: +(grown / l.afterWarm).toFixed(4),
        leak_bytes_per_review: Math.round(perReview),
        leak_reviews_per_s: Math.round(l.rps),
      });
      if (l.liveHeap) Object.assign(figures, { leak_live_heap_warm_bytes: l.liveHeap.warm, leak_live_heap_all_bytes: l.liveHeap.all });
      log(`streams: RSS after ${fmt(leakWarm)} reviews then each further tenth: ${[l.afterWarm, ...l.curve].map((b) => fmt(b / MiB, 1)).join(", ")} MiB`);
      // The criterion: RSS (which also holds garbage not yet collected and heap space V8 keeps)
      // grows by at most TARGETS.maxLeakRssBytes over the run; with heap snapshots, the live heap
      // (after a full GC) by at most TARGETS.maxLeakLiveHeapBytes.
      const rssOk = grown <= TARGETS.maxLeakRssBytes;
      const heapGrown = l.liveHeap ? l.liveHeap.all - l.liveHeap.warm : 0;
      const heapOk = heapGrown <= TARGETS.maxLeakLiveHeapBytes;
      if (!rssOk && !l.liveHeap) missed.push(`no leak: RSS grew ${fmt(grown / MiB, 1)} MiB from ${fmt(from)} to ${fmt(leakTotal)} reviews (criterion ≤ ${TARGETS.maxLeakRssBytes / MiB} MiB)`);
      if (!heapOk) missed.push(`no leak: the live heap grew ${fmt(heapGrown / MiB, 2)} MiB from ${fmt(leakWarm)} to ${fmt(leakTotal)} reviews (criterion ≤ ${TARGETS.maxLeakLiveHeapBytes / MiB} MiB)`);
      rows.push([
        `RSS across ${fmt(leakTotal)} reviews, Redis (after ${fmt(from)} → after all)`,
        `${fmt(l.afterWarm / MiB, 1)} → ${fmt(l.afterAll / MiB, 1)} MiB${l.settled ? "" : " (not settled)"}`,
        `${grown >= 0 ? "+" : ""}${fmt(grown / MiB, 1)} MiB (${fmt(perReview, 1)} B per review)`,
        l.liveHeap ? "(reported)" : `≤ +${TARGETS.maxLeakRssBytes / MiB} MiB`,
        l.liveHeap ? "" : rssOk ? "ok" : "MISSED",
      ]);
      if (l.liveHeap) {
        rows.push([
          `Live JS heap (heap snapshot) after ${fmt(leakWarm)} → after ${fmt(leakTotal)} reviews`,
          `${fmt(l.liveHeap.warm / MiB, 2)} → ${fmt(l.liveHeap.all / MiB, 2)} MiB`,
          `${heapGrown >= 0 ? "+" : ""}${fmt(heapGrown / MiB, 2)} MiB`,
          `≤ +${TARGETS.maxLeakLiveHeapBytes / MiB} MiB`,
          heapOk ? "ok" : "MISSED",
        ]);
      }
    }

    if (!only || only === "fanout") {
      for (const name of ["in-process", "Redis"] as const) {
        const key = name === "Redis" ? "redis" : "memory";
        // A fresh redis-server, as every configuration of the throughput part gets: the one above
        // holds the leak test's 100,000 reviews by now.
        const own = name === "Redis" ? await startRedis() : undefined;
        let f: Awaited<ReturnType<typeof fanout>>;
        try {
          f = await fanout(own ? { REDIS_URL: own.url } : {}, watchers, `fanout-${key}`);
        } finally {
          await own?.stop();
        }
        if (profiling) log(`\nfan-out, ${name}, ${fmt(watchers)} watchers: most self time\n${profileSummary(profileDir(`fanout-${key}`), 25)}`);
        const slowdown = f.withWatchers.p50Ms / f.none.p50Ms;
        Object.assign(figures, {
          [`fanout_${key}_p50_ms_none`]: +f.none.p50Ms.toFixed(3),
          [`fanout_${key}_p50_ms_watchers`]: +f.withWatchers.p50Ms.toFixed(3),
          [`fanout_${key}_slowdown`]: +slowdown.toFixed(3),
          // One review at a time: the mean latency is the time per review (p50 can hide a fan-out
          // that stalls one review in several for a long time).
          [`fanout_${key}_mean_ms_none`]: +(1000 / f.none.rps).toFixed(3),
          [`fanout_${key}_mean_ms_watchers`]: +(1000 / f.withWatchers.rps).toFixed(3),
          [`fanout_${key}_watchers_min_events`]: f.counts.min,
          [`fanout_${key}_watchers_max_events`]: f.counts.max,
          [`fanout_${key}_watchers_failed`]: f.counts.failed,
        });
        const ok = slowdown <= TARGETS.maxFanoutSlowdown;
        if (!ok) missed.push(`fan-out, ${name}: a review's p50 with ${fmt(watchers)} watchers is ${f.withWatchers.p50Ms.toFixed(2)} ms, ${slowdown.toFixed(1)}× its ${f.none.p50Ms.toFixed(2)} ms with none (target ≤ ${TARGETS.maxFanoutSlowdown}×)`);
        if (!f.allGotAll) {
          missed.push(
            `fan-out, ${name}: not every watcher got every review: of ${f.counts.streams} watchers, events received min ${f.counts.min} max ${f.counts.max} (expected ${f.expected}), ${f.counts.failed} failed${f.counts.errors.length ? `: ${f.counts.errors.join("; ")}` : ""}`,
          );
        }
        rows.push([
          `Review p50, ${name}: no watcher → ${fmt(watchers)} watchers`,
          `p50 ${f.none.p50Ms.toFixed(2)} → ${f.withWatchers.p50Ms.toFixed(2)} ms (p99 ${f.none.p99Ms.toFixed(1)} → ${f.withWatchers.p99Ms.toFixed(1)}, mean ${(1000 / f.none.rps).toFixed(1)} → ${(1000 / f.withWatchers.rps).toFixed(1)})`,
          `${slowdown.toFixed(2)}×; ${f.allGotAll ? `each watcher got all ${f.expected}` : `watchers got ${f.counts.min}-${f.counts.max} of ${f.expected}`}`,
          `≤ ${TARGETS.maxFanoutSlowdown}×, all get all`,
          ok && f.allGotAll ? "ok" : "MISSED",
        ]);
      }
    }
  } finally {
    await redis?.stop();
  }
  const notes = [
    `Memory: Council on Redis (COUNCIL_MAX_WATCHERS ${STREAM_ENV.COUNCIL_MAX_WATCHERS}), a fresh server per kind, warmed up (20 reviews, ` +
      `50 streams of the kind opened and closed); the streams are opened by a separate client process, at most 90 per connection, and ` +
      `RSS (VmRSS) is read once the server confirmed each live (a watch's response headers, an await's first message) and RSS settled. ` +
      `Per stream: (RSS with the streams open − RSS before) / streams. Awaits are spread over ${quick ? 20 : 100} pending decisions.`,
    `No leak: ghz reviews (50 concurrent, 1 connection, each a new suggestion and request id) against a fresh Redis-backed server; ` +
      `RSS settled after the warm-up and after all reviews.`,
    `Fan-out: ghz, one review at a time from one client, ${FANOUT_REVIEWS.total} after ${FANOUT_REVIEWS.warmup} of warm-up, first with no watcher, then with the watchers ` +
      `open (WatchDecisions, every type, no votes) in a separate process that counts what each receives. Mean = time per review.`,
  ];
  return { table: table(["streams and memory", "measured", "per stream / ratio", "target", ""], rows), notes, missed, figures };
}

// Run alone: `npx tsx bench/streams.ts [--quick] [--only memory|leak|fanout]`.
if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes("--quick");
  const i = process.argv.indexOf("--only");
  const only = i === -1 ? undefined : (process.argv[i + 1] as "memory" | "leak" | "fanout");
  buildCouncil();
  const r = await run({ quick, only, cpuProf: process.argv.includes("--cpu-prof") });
  console.log(r.table);
  console.log(`\n${r.notes.join("\n")}`);
  console.log(JSON.stringify(r.figures, null, 2));
  if (r.missed.length) {
    console.error(`missed:\n- ${r.missed.join("\n- ")}`);
    process.exitCode = 1;
  }
}
