/**
 * The processes a bench scenario runs: Council (`node dist/main.js`), the bare grpc-js baseline
 * (bench/bare_server.ts), redis-server, and the ghz load generator. Each server runs in its own
 * process so that the load client and the server never share a CPU's event loop, as in
 * production. Every wait is bounded (readiness is a polled gRPC health check, never a fixed
 * sleep), and every child is stopped when the bench ends, fails, or is interrupted.
 *
 * Council is run from bench/.dist/<pid>/, which buildCouncil() compiles from src/ once per bench run.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, homedir } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials, Metadata } from "@grpc/grpc-js";
import { HealthClient, HealthCheckResponse_ServingStatus } from "../../src/gen/grpc/health/v1/health.js";
import { freePort, RedisServer } from "../../test/support/redis.js";

export { freePort };

/** The repository's root: every child runs there. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** The ghz version the bench is pinned to (as .ci/tools.sh installs it). */
export const GHZ_VERSION = "v0.121.0";

export interface Served {
  /** "127.0.0.1:PORT" (gRPC, plaintext). */
  addr: string;
  pid: number;
  /** VmRSS of the process, from /proc/<pid>/status. */
  rssBytes(): number;
  /** SIGTERM, wait for exit (bounded), SIGKILL after. */
  stop(): Promise<void>;
}

export interface BenchRedis {
  url: string;
  port: number;
  pid: number;
  /** used_memory from INFO memory. */
  infoMemoryBytes(): Promise<number>;
  stop(): Promise<void>;
}

export interface GhzOptions {
  addr: string;
  /** "council.v1.CouncilService/ReviewSuggestion". */
  call: string;
  /** The request as JSON; ghz expands templates such as "{{.UUID}}" per call. */
  data: object;
  concurrency: number;
  connections: number;
  /** Calls measured (after the warm-up). */
  total: number;
  /** Calls made first and left out of the figures. */
  warmup: number;
  /** gRPC metadata sent with every call, e.g. { authorization: "Bearer …" }. */
  metadata?: Record<string, string>;
}

export interface GhzResult {
  /** Calls per second over the measured calls: count / (last end − first start). */
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Measured calls that did not end with OK. */
  errors: number;
  /** Measured calls. */
  count: number;
  /** Status name → calls, and the distinct error messages (for the failure message). */
  statuses: Record<string, number>;
  errorMessages: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------
// Children: tracked so that none outlives the bench.

const live = new Set<ChildProcess>();

process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    process.stderr.write(`bench: ${signal}: stopping the processes it started\n`);
    // process.exit runs the "exit" handlers above (and test/support/redis.ts's), which SIGKILL
    // every child still running.
    process.exit(130);
  });
}

function track(child: ChildProcess, what: string): { output: () => string } {
  live.add(child);
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString("utf8")).slice(-8000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  child.on("exit", () => live.delete(child));
  child.on("error", (err) => {
    output += `\n${what}: ${err.message}`;
  });
  return { output: () => output };
}

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves once it has exited. */
async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return;
  await new Promise<void>((resolveExit) => {
    let killTimer: NodeJS.Timeout | undefined;
    let giveUp: NodeJS.Timeout | undefined;
    child.once("exit", () => {
      clearTimeout(killTimer);
      clearTimeout(giveUp);
      resolveExit();
    });
    killTimer = setTimeout(() => {
      child.kill("SIGKILL");
      // A SIGKILLed process exits at once; this bound only guards against a lost "exit" event.
      giveUp = setTimeout(resolveExit, 5000);
    }, graceMs);
    child.kill("SIGTERM");
  });
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(kb[1]) * 1024;
}

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One grpc.health.v1 Check of the server ("") answered SERVING, within `timeoutMs`. */
function healthy(addr: string, timeoutMs: number): Promise<boolean> {
  const client = new HealthClient(addr, credentials.createInsecure());
  return new Promise<boolean>((resolveCheck) => {
    client.check({ service: "" }, new Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      resolveCheck(!err && res?.status === HealthCheckResponse_ServingStatus.SERVING);
    });
  });
}

/**
 * Starts `args` (a node program) with `env` on a free port (the env var `addrVar`), and waits
 * until it answers a health check. A port taken in the meantime makes it exit at start: it is
 * tried again on another port (3 attempts).
 */
async function startServed(what: string, args: string[], env: Record<string, string>, addrVar: string): Promise<Served> {
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    const addr = `127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { ...inheritedEnv(), ...env, [addrVar]: addr },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const { output } = track(child, what);
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (exited(child)) throw new Error(`${what} exited at start (code ${child.exitCode}, signal ${child.signalCode}):\n${output()}`);
        if (await healthy(addr, 1000)) break;
        if (Date.now() > deadline) throw new Error(`${what} did not answer a health check on ${addr} within 60 s:\n${output()}`);
        await pause(50);
      }
    } catch (err) {
      lastError = err as Error;
      await stopChild(child, 2000);
      continue;
    }
    const pid = child.pid!;
    return {
      addr,
      pid,
      rssBytes: () => rssOf(pid),
      stop: () => stopChild(child),
    };
  }
  throw lastError;
}

/**
 * The environment children inherit: this process's, without the settings that would change what
 * a Council under test is (a REDIS_URL or COUNCIL_* of the shell running the bench).
 */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === "REDIS_URL" || k.startsWith("COUNCIL_") || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// Servers.

/**
 * Council as the bench runs it: compiled from src/ by buildCouncil() into a directory of this
 * bench process's own, bench/.dist/<pid>/, so that neither a `npm run build` by someone else (dist/
 * is shared) nor another bench running at the same time can change the code between two configs
 * or pull a file from under a starting server. It is removed when the bench exits.
 */
const DIST_PARENT = join(ROOT, "bench", ".dist");
let councilDist: string | undefined;

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * What `npm run build` does for the server, into bench/.dist/<pid>/: tsc with the build config,
 * then the descriptor set and the Lua scripts beside the code. Once per bench run, so that the
 * servers run the current src/. Also removes the directories of benches that are no longer running.
 */
export function buildCouncil(): void {
  mkdirSync(DIST_PARENT, { recursive: true });
  for (const name of readdirSync(DIST_PARENT)) {
    if (/^\d+$/.test(name) && !alive(Number(name))) rmSync(join(DIST_PARENT, name), { recursive: true, force: true });
  }
  const dist = join(DIST_PARENT, String(process.pid));
  rmSync(dist, { recursive: true, force: true });
  process.on("exit", () => rmSync(dist, { recursive: true, force: true }));
  const tsc = spawnSync(process.execPath, [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", dist], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (tsc.status !== 0) throw new Error(`building Council (tsc -p tsconfig.build.json --outDir ${dist}) failed: exit ${tsc.status}`);
  cpSync(join(ROOT, "src/gen/council.binpb"), join(dist, "gen/council.binpb"));
  mkdirSync(join(dist, "store/lua"), { recursive: true });
  for (const f of readdirSync(join(ROOT, "src/store/lua")).filter((f) => f.endsWith(".lua"))) {
    cpSync(join(ROOT, "src/store/lua", f), join(dist, "store/lua", f));
  }
  councilDist = dist;
}

/**
 * The V8 flags `npm start` runs Council with (package.json `start`: the young generation that
 * suits a server making many short-lived objects per call). The bench gives the same flags to
 * Council and to the bare server, so that the ratios compare the work done, not the heap settings.
 */
export const SERVER_NODE_FLAGS: string[] = (() => {
  const start: string = JSON.parse(readFileSync("package.json", "utf8")).scripts.start;
  const match = /\bnode((?:\s+--[\w-]+(?:=\S+)?)*)\s+dist\/main\.js/.exec(start);
  if (!match) throw new Error(`package.json start script ${JSON.stringify(start)} does not run node dist/main.js`);
  return match[1]!.trim().split(/\s+/).filter(Boolean);
})();

/**
 * `node bench/.dist/<pid>/main.js` (built by buildCouncil()) with the given extra env
 * (COUNCIL_ADDR is chosen on a free port; COUNCIL_LOG_LEVEL=warn unless given; REDIS_URL when
 * given), started once it answers a gRPC health check. `nodeArgs` go before the script (e.g.
 * `--cpu-prof`).
 */
export function startCouncil(env: Record<string, string>, nodeArgs: string[] = []): Promise<Served> {
  if (!councilDist) throw new Error("Council is not built for the bench: call buildCouncil() first");
  return startServed("council", [...SERVER_NODE_FLAGS, ...nodeArgs, join(councilDist, "main.js")], { COUNCIL_LOG_LEVEL: "warn", ...env }, "COUNCIL_ADDR");
}

/** The bare grpc-js server (bench/bare_server.ts) in its own process. */
export function startBare(nodeArgs: string[] = []): Promise<Served> {
  return startServed("bare server", [...SERVER_NODE_FLAGS, ...nodeArgs, "--import", "tsx", "bench/bare_server.ts"], {}, "BARE_ADDR");
}

/** A fresh redis-server on a free port in a temp dir: no snapshots; appendonly with fsync always when asked, else none. */
export async function startRedis(opts: { appendfsyncAlways?: boolean } = {}): Promise<BenchRedis> {
  const server = await RedisServer.start(opts.appendfsyncAlways ? { appendfsync: "always" } : {});
  return {
    url: server.url,
    port: server.port,
    pid: server.pid!,
    infoMemoryBytes: async () => {
      const m = /^used_memory:(\d+)/m.exec(server.cli("info", "memory"));
      if (!m) throw new Error("INFO memory has no used_memory");
      return Number(m[1]);
    },
    stop: async () => {
      await server.stop(); // SIGTERM, SIGKILL after 5 s
      rmSync(server.dir, { recursive: true, force: true });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ghz.

let ghzPath: string | undefined;

/** The ghz binary: on PATH, or in Go's bin directory (where `go install` puts it). */
export function ghzBinary(): string {
  if (ghzPath) return ghzPath;
  const dirs = (process.env.PATH ?? "").split(delimiter);
  const gopath = process.env.GOPATH ?? spawnSync("go", ["env", "GOPATH"], { encoding: "utf8" }).stdout?.trim();
  dirs.push(join(gopath || join(homedir(), "go"), "bin"));
  for (const dir of dirs) {
    const candidate = join(dir, "ghz");
    if (dir && existsSync(candidate)) return (ghzPath = candidate);
  }
  throw new Error(`ghz is not installed: go install github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION} (or source .ci/tools.sh; ensure_tools)`);
}

/** The module version of the ghz binary (`ghz --version` prints "dev"); "unknown" without Go. */
export function ghzVersion(): string {
  const r = spawnSync("go", ["version", "-m", ghzBinary()], { encoding: "utf8" });
  const m = /^\s*mod\s+github\.com\/bojand\/ghz\s+(\S+)/m.exec(r.stdout ?? "");
  return m ? m[1]! : "unknown";
}

interface GhzReport {
  count: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  latencyDistribution?: { percentage: number; latency: number }[] | null;
  details?: { timestamp: string; latency: number; status: string }[] | null;
}

/** Nanoseconds since the epoch of an RFC 3339 time with up to nanosecond digits. */
function epochNs(rfc3339: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(rfc3339);
  if (!m) throw new Error(`ghz: bad timestamp ${rfc3339}`);
  const whole = Date.parse(`${m[1]}${m[3]}`);
  return whole * 1e6 + Number((m[2] ?? "").padEnd(9, "0").slice(0, 9));
}

/**
 * Runs ghz against `addr` (plaintext, the project's protoset) and returns the figures of the
 * measured calls. ghz's own `rps` divides by the whole run, warm-up included; this one counts
 * the measured calls over their own span (first start to last end), from ghz's per-call details.
 */
export async function runGhz(opts: GhzOptions): Promise<GhzResult> {
  const dir = mkdtempSync(join(tmpdir(), "council-ghz-"));
  try {
    const dataFile = join(dir, "data.json");
    writeFileSync(dataFile, JSON.stringify(opts.data));
    const args = [
      "--insecure",
      "--protoset", join(ROOT, "src/gen/council.binpb"),
      "--call", opts.call,
      "-D", dataFile,
      "-c", String(opts.concurrency),
      "--connections", String(opts.connections),
      "-n", String(opts.total + opts.warmup),
      "--skipFirst", String(opts.warmup),
      "-O", "json",
    ];
    if (opts.metadata) {
      const metadataFile = join(dir, "metadata.json");
      writeFileSync(metadataFile, JSON.stringify(opts.metadata));
      args.push("-M", metadataFile);
    }
    args.push(opts.addr);
    const child = spawn(ghzBinary(), args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    live.add(child);
    child.on("exit", () => live.delete(child));
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => (err = (err + c.toString("utf8")).slice(-4000)));
    // Bounded: ghz's own per-call timeout is 20 s; a whole run gets a generous budget.
    const budgetMs = 120_000 + (opts.total + opts.warmup) * 20;
    const code = await new Promise<number | null>((resolveExit, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`ghz ${opts.call} did not finish within ${budgetMs / 1000} s`));
      }, budgetMs);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("exit", (c) => {
        clearTimeout(timer);
        resolveExit(c);
      });
    });
    if (code !== 0) throw new Error(`ghz ${opts.call} against ${opts.addr} exited with ${code}:\n${err}`);
    const report = JSON.parse(Buffer.concat(out).toString("utf8")) as GhzReport;
    return summarize(report, opts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function summarize(report: GhzReport, opts: GhzOptions): GhzResult {
  const statuses = report.statusCodeDistribution ?? {};
  const errors = Object.entries(statuses).reduce((n, [s, k]) => (s === "OK" ? n : n + k), 0);
  const details = report.details ?? [];
  let first = Infinity;
  let last = -Infinity;
  for (const d of details) {
    const end = epochNs(d.timestamp);
    first = Math.min(first, end - d.latency);
    last = Math.max(last, end);
  }
  const spanS = (last - first) / 1e9;
  const lat = (p: number) => (report.latencyDistribution ?? []).find((l) => l.percentage === p)?.latency ?? NaN;
  if (report.count !== opts.total) {
    throw new Error(`ghz ${opts.call}: measured ${report.count} calls, expected ${opts.total}`);
  }
  return {
    rps: details.length > 0 && spanS > 0 ? details.length / spanS : NaN,
    p50Ms: lat(50) / 1e6,
    p99Ms: lat(99) / 1e6,
    errors,
    count: report.count,
    statuses,
    errorMessages: report.errorDistribution ?? {},
  };
}
