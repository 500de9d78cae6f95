/**
 * `npm run bench`: Council against the grpc-js ceiling (issue 12). Every server runs in a process
 * of its own (bench/lib/processes.ts), driven by ghz or by a client process, never inside the
 * bench's own event loop. The parts:
 *
 *   throughput  ReviewSuggestion reviews/s and latency: bare grpc-js, in-process, Redis,
 *               Redis with appendfsync always, Redis with a bearer token (bench/throughput.ts)
 *   history     GetSummary and ListDecisions at 1,000 and 1,000,000 stored decisions, bytes per
 *               decision in Redis (bench/history.ts)
 *   streams     RSS per WatchDecisions / AwaitDecision stream, leaks, review latency with 2,000
 *               watchers (bench/streams.ts)
 *
 *   npm run bench                         everything; writes bench/results.md; exit 1 if a target is missed
 *   npm run bench -- --only throughput    one part (throughput | history | streams)
 *   npm run bench -- --quick              small counts (about two minutes): checks that the bench
 *                                         runs; targets are reported, not enforced; no results.md
 *   npm run bench -- --only throughput --cpu-prof
 *                                         also profiles each server (node --cpu-prof) into
 *                                         bench/profiles/ and prints where the time went
 *   npm run bench -- --only throughput --rounds 1 --reviews 5000 --warmup 1000
 *                                         throughput with a load of one's own (no results.md)
 *
 * Exit status: 0; 1 when a target is missed (not with --quick); 2 when a part failed to run.
 * Needs redis-server and ghz (source .ci/tools.sh; ensure_tools installs them at pinned versions).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildCouncil, ghzBinary, ghzVersion, GHZ_VERSION, ROOT } from "./lib/processes.js";
import { renderScenario, type ScenarioResult } from "./lib/scenario.js";

const PARTS = ["throughput", "history", "streams"] as const;
type Part = (typeof PARTS)[number];
const TITLES: Record<Part, string> = {
  throughput: "Throughput: ReviewSuggestion against the grpc-js ceiling",
  history: "History: cost with stored decisions",
  streams: "Streams: memory per stream and fan-out",
};

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "cpu-prof": { type: "boolean", default: false },
    // Throughput's load, for trying things out (a run with any of them writes no results.md).
    rounds: { type: "string" },
    reviews: { type: "string" },
    warmup: { type: "string" },
  },
});
const count = (name: "rounds" | "reviews" | "warmup") => {
  const v = values[name];
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || (name !== "warmup" && Number(v) === 0)) {
    process.stderr.write(`bench: --${name} takes a whole number${name === "warmup" ? "" : " above 0"}, not ${v}\n`);
    process.exit(2);
  }
  return Number(v);
};
const throughputLoad = { rounds: count("rounds"), reviews: count("reviews"), warmup: count("warmup") };
const custom = Object.values(throughputLoad).some((v) => v !== undefined);
const quick = values.quick!;
if (values.only !== undefined && !(PARTS as readonly string[]).includes(values.only)) {
  process.stderr.write(`bench: --only takes one of ${PARTS.join(", ")}, not ${values.only}\n`);
  process.exit(2);
}
const parts: readonly Part[] = values.only ? [values.only as Part] : PARTS;

/** What a part's run() returns: a ScenarioResult, with a title or not, its table in `table` or `markdown` or `header`/`rows`. */
type Runner = (opts: { quick: boolean; cpuProf?: boolean; rounds?: number; reviews?: number; warmup?: number }) => Promise<Omit<ScenarioResult, "title"> & { title?: string; table?: string }>;

/** A part's `run`, or undefined when its file is not there (yet). */
async function load(part: Part): Promise<Runner | undefined> {
  if (!existsSync(join(ROOT, "bench", `${part}.ts`))) return undefined;
  const mod = (await import(`./${part}.js`)) as { run?: Runner };
  if (typeof mod.run !== "function") throw new Error(`bench/${part}.ts exports no run()`);
  return mod.run;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.error ? "not found" : (r.stdout || r.stderr).split("\n")[0]!.trim();
}

function machine(): string {
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "")?.[1] ?? cpus()[0]?.model ?? "unknown";
  const redis = /v=(\S+)/.exec(firstLine("redis-server", ["--version"]))?.[1] ?? "unknown";
  let ghz = "not found";
  try {
    ghzBinary();
    ghz = ghzVersion();
  } catch {
    // Reported as "not found"; the throughput part fails on its own with the install command.
  }
  return (
    `${cpuModel.replace(/\s+/g, " ")}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM; ` +
    `node ${process.version}, redis-server ${redis}, ghz ${ghz}${ghz !== GHZ_VERSION && ghz !== "not found" ? ` (pinned: ${GHZ_VERSION})` : ""}`
  );
}

const flags = [
  quick && "--quick",
  values.only && `--only ${values.only}`,
  values["cpu-prof"] && "--cpu-prof",
  ...(["rounds", "reviews", "warmup"] as const).map((k) => throughputLoad[k] !== undefined && `--${k} ${throughputLoad[k]}`),
].filter(Boolean);
const command = `npm run bench${flags.length ? ` -- ${flags.join(" ")}` : ""}`;
const started = new Date();
const log = (line: string) => process.stderr.write(`${line}\n`);

log("bench: building Council into bench/.dist");
buildCouncil();

const sections: { part: Part; text: string }[] = [];
const missed: string[] = [];
const failed: string[] = [];
for (const part of parts) {
  const runner = await load(part).catch((err: Error) => {
    failed.push(`${part}: ${err.message}`);
    return undefined;
  });
  if (!runner) {
    if (!failed.some((f) => f.startsWith(`${part}:`))) log(`bench: ${part}: bench/${part}.ts is not there; skipped`);
    continue;
  }
  log(`bench: ${part}${quick ? " (quick)" : ""}`);
  const t0 = performance.now();
  try {
    const result = await runner({ quick, cpuProf: values["cpu-prof"], ...(part === "throughput" ? throughputLoad : {}) });
    const titled: ScenarioResult = { ...result, title: result.title ?? TITLES[part], markdown: result.markdown ?? result.table };
    sections.push({ part, text: renderScenario(titled) });
    missed.push(...titled.missed.map((m) => `${part}: ${m}`));
    log(`bench: ${part} took ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } catch (err) {
    failed.push(`${part}: ${(err as Error).stack ?? String(err)}`);
    log(`bench: ${part} FAILED: ${(err as Error).message}`);
  }
}

const heading = [
  `Command: \`${command}\``,
  `Date: ${started.toISOString().replace(/\.\d+Z$/, "Z")}`,
  `Machine: ${machine()}`,
].join("  \n");
const report = [heading, ...sections.map((s) => s.text)].join("\n\n");
process.stdout.write(`\n${report}\n`);

// bench/results.md: the last full run of each part (a run of one part replaces that part's section).
// Not after --quick (too few calls), --cpu-prof (profiling slows the servers) or a load of one's own.
if (!quick && !values["cpu-prof"] && !custom && sections.length > 0) {
  const file = join(ROOT, "bench", "results.md");
  const previous = existsSync(file) ? readFileSync(file, "utf8") : "";
  const kept = new Map<string, string>();
  for (const m of previous.matchAll(/<!-- bench:(\w+) -->\n([\s\S]*?)\n<!-- \/bench:\1 -->/g)) kept.set(m[1]!, m[2]!);
  for (const s of sections) kept.set(s.part, `${heading}\n\n${s.text}`);
  const body = PARTS.filter((p) => kept.has(p))
    .map((p) => `<!-- bench:${p} -->\n${kept.get(p)}\n<!-- /bench:${p} -->`)
    .join("\n\n");
  writeFileSync(file, `# Council benchmark results\n\nWritten by \`npm run bench\` (bench/run.ts); each part shows the run that produced it.\n\n${body}\n`);
  log(`bench: wrote bench/results.md`);
}

if (failed.length > 0) {
  log(`\nbench: FAILED to run:\n${failed.map((f) => `- ${f}`).join("\n")}`);
  process.exit(2);
}
if (missed.length > 0) {
  log(`\nbench: targets missed${quick ? " (not enforced with --quick)" : ""}:\n${missed.map((m) => `- ${m}`).join("\n")}`);
  process.exit(quick ? 0 : 1);
}
log("\nbench: all targets met");
process.exit(0);
