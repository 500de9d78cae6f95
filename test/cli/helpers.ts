/**
 * Runs the `council` command as people run it: `node bin/council.js …` (the package's bin) as a
 * subprocess, on the CLI compiled once per test process with the same tsc command that `npm ci`
 * runs (the `build:cli` script), so that the tests never run a stale build. Each run gets a clean
 * environment: no COUNCIL_*, NO_COLOR or FORCE_COLOR from the caller's shell unless the test sets
 * them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { expect } from "chai";
import { run, type RunResult } from "../support/tools.js";
import { waitFor, within } from "../support/wait.js";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const BIN = join(ROOT, "bin/council.js");

let built: Promise<void> | undefined;

/** Compiles cli/ (and the client sources it imports) into dist/, once per test process. */
export function buildCli(): Promise<void> {
  built ??= run(join(ROOT, "node_modules/.bin/tsc"), ["-p", "cli/tsconfig.json"], { cwd: ROOT, timeoutMs: 180_000 }).then((r) => {
    if (r.code !== 0) throw new Error(`tsc -p cli/tsconfig.json failed:\n${r.stdout}${r.stderr}`);
  });
  return built;
}

/** The environment of a run: the caller's, without anything that would change what council does. */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("COUNCIL_") || k === "NO_COLOR" || k === "FORCE_COLOR" || k === "NODE_OPTIONS") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface CouncilRun extends RunResult {
  /** stdout's lines, the last (empty) one left out. */
  lines: string[];
  /** stdout parsed as JSON Lines (fails the test if a line is not JSON). */
  json<T = Record<string, unknown>>(): T[];
}

function withParsing(r: RunResult): CouncilRun {
  const lines = r.stdout.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return {
    ...r,
    lines,
    json<T>() {
      return lines.map((l, i) => {
        try {
          return JSON.parse(l) as T;
        } catch {
          throw new Error(`stdout line ${i + 1} is not JSON: ${l}\n--- stderr ---\n${r.stderr}`);
        }
      });
    },
  };
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
  cwd?: string;
}

/** Runs `council …args` to its end. */
export async function council(args: string[], options: RunOptions = {}): Promise<CouncilRun> {
  const r = await run(process.execPath, [BIN, ...args], {
    env: cleanEnv(options.env),
    input: options.input,
    timeoutMs: options.timeoutMs ?? 60_000,
    cwd: options.cwd ?? ROOT,
  });
  return withParsing(r);
}

/** A report of a run for assertion messages. */
export function report(r: RunResult): string {
  return `exit ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Expects `r` to have exited with `code`, showing the whole run when it did not. */
export function expectExit(r: RunResult, code: number): void {
  expect(r.code, report(r)).to.equal(code);
}

/** A council process that is still running, read line by line as it writes. */
export interface LiveCouncil {
  child: ChildProcess;
  /** stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Waits until stdout has at least `n` complete lines, and returns them. */
  lines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Waits for the exit; resolves with the code (or 128 + signal number). */
  exited(timeoutMs?: number): Promise<CouncilRun>;
  kill(signal?: NodeJS.Signals): void;
}

const SIGNALS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15, SIGKILL: 9 };

/** Starts `council …args` and returns at once; `after` hooks should kill it if a test fails. */
export function startCouncilCli(args: string[], options: RunOptions = {}): LiveCouncil {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv(options.env), cwd: options.cwd ?? ROOT, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (err += c.toString("utf8")));
  if (options.input !== undefined) child.stdin!.end(options.input);
  else child.stdin!.end();
  const exit = new Promise<number>((resolve) =>
    child.on("close", (code, signal) => resolve(code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0))),
  );
  const complete = () => {
    const ls = out.split("\n");
    ls.pop();
    return ls;
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async lines(n, timeoutMs = 15_000) {
      await waitFor(
        () => {
          if (complete().length >= n) return true;
          if (child.exitCode !== null) throw new Error(`council exited (${child.exitCode}) before printing ${n} lines:\n${out}\n${err}`);
          return false;
        },
        { what: `${n} lines from council ${args.join(" ")} (so far:\n${out})`, timeoutMs },
      );
      return complete();
    },
    async exited(timeoutMs = 30_000) {
      const code = await within(exit, { what: `council ${args.join(" ")} to exit`, timeoutMs });
      return withParsing({ code, stdout: out, stderr: err });
    },
    kill(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** Every line of `text` fits in `width` columns (ANSI colours not counted). */
export function expectFits(text: string, width = 100): void {
  for (const line of text.split("\n")) {
    // eslint-disable-next-line no-control-regex
    const plain = line.replace(/\u001b\[[0-9;]*m/g, "");
    expect([...plain].length, `wider than ${width}: ${plain}`).to.be.at.most(width);
  }
}
