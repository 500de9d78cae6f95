/** Shared pieces of the auth tests: a logger whose lines the test can read, temp files, waiting. */
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import { stringify } from "yaml";
import { waitFor } from "../support/wait.js";

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A debug-level logger that keeps its lines in memory. */
export function captureLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const text of chunk.toString("utf8").split("\n")) if (text) lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { log: pino({ level: "debug" }, sink), lines };
}

export async function tempDir(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "council-auth-"));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

let serial = 0;

/** Replaces a file the way editors and Kubernetes do: write a new file beside it, then rename. */
export async function replaceFile(path: string, content: string | object): Promise<void> {
  const text = typeof content === "string" ? content : stringify(content);
  const tmp = `${path}.tmp-${process.pid}-${serial++}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

/** Polls `condition` until it holds, for at most `timeoutMs`; fails naming `what`. */
export async function eventually(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  await waitFor(condition, { what, timeoutMs, intervalMs: 20 });
}

/** The error a promise rejects with; fails when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    (value) => {
      if (value && typeof (value as { close?: unknown }).close === "function") (value as { close: () => void }).close();
      throw new Error("expected a rejection");
    },
    (err: unknown) => err as Error,
  );
}
