/**
 * Small measuring tools shared by the history and stream benches: a gRPC client of a served
 * process, timed sequential calls, percentiles, a server's RSS once it has settled, and figure
 * formatting. Every loop and wait is bounded.
 */
import { credentials, type ServiceError } from "@grpc/grpc-js";
import { CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import type { Served } from "./processes.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A CouncilService client of `addr` on a channel of its own (plaintext). */
export function client(addr: string): CouncilServiceClient {
  return new CouncilServiceClient(addr, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
}

/** A unary call as a promise: `unary((cb) => c.getSummary({}, cb))`. */
export function unary<T>(start: (cb: (err: ServiceError | null, res: T) => void) => unknown): Promise<T> {
  return new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res))));
}

/** The p-th percentile (0-100) of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs `call` `warmup` times, then `count` times one after the other, timing each: p50 and p99 in ms. */
export async function timed(call: () => Promise<unknown>, count: number, warmup: number): Promise<{ p50Ms: number; p99Ms: number }> {
  for (let i = 0; i < warmup; i++) await call();
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await call();
    ms.push(performance.now() - started);
  }
  return { p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
}

/**
 * The RSS of `served` once it has settled: sampled every 250 ms until the last 8 samples (2 s) lie
 * within 1% (or 256 KiB) of each other, or `timeoutMs` passed (then the last sample, flagged).
 */
export async function settledRss(served: Served, timeoutMs = 20_000): Promise<{ bytes: number; settled: boolean }> {
  const samples: number[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    samples.push(served.rssBytes());
    const last = samples.slice(-8);
    if (last.length === 8) {
      const spread = Math.max(...last) - Math.min(...last);
      if (spread <= Math.max(256 * 1024, 0.01 * last[7]!)) return { bytes: last[7]!, settled: true };
    }
    if (Date.now() >= deadline) return { bytes: samples[samples.length - 1]!, settled: false };
    await sleep(250);
  }
}

export const MiB = 1024 * 1024;

/** 1234.5 → "1,234.5" (with `digits` decimals). */
export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return String(n);
  return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A markdown table. */
export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Runs `fn` with at most `limit` in flight over `count` items (0..count-1); stops at the first failure. */
export async function pool(count: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (next < count && failed === undefined) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  if (failed !== undefined) throw failed;
}
