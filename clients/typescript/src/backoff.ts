/** Waiting between attempts, shared by the client's retries and the reviewer's reconnects. */

/**
 * The wait after `failures` (from 1) failed attempts in a row: at random below
 * min(maxMs, initialMs × 2^(failures − 1)) ("full jitter", so that clients that failed together do
 * not all come back at the same instant).
 */
export function fullJitter(failures: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  return random() * Math.min(maxMs, initialMs * 2 ** Math.max(0, failures - 1));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
