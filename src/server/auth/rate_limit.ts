/**
 * `COUNCIL_REVIEW_RATE`: reviews per second per principal, per replica, with a burst of twice
 * that (at least one review), as a token bucket per principal name.
 *
 * Memory is bounded. A bucket that has refilled to its burst is exactly a new bucket, so it is
 * dropped at no cost to anyone; and since JWT subjects are unbounded, the number of buckets is
 * capped too: when the cap is reached, full buckets are swept out, and if that is not enough the
 * least recently used ones go (a principal evicted that way gets a fresh burst: the bound on
 * memory wins over exactness for a principal idle longer than thousands of others).
 */
import { ResourceExhaustedError } from "../../domain/errors.js";
import type { Principal } from "../../domain/principal.js";

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date (ms, from `now`). */
  at: number;
}

export interface RateLimiterOptions {
  /** Reviews per second per principal; must be positive. */
  perSecond: number;
  /** At most this many principals' buckets are kept. */
  maxPrincipals?: number;
  /** A monotonic clock in milliseconds (tests pass their own). */
  now?: () => number;
}

export const DEFAULT_MAX_PRINCIPALS = 10_000;

export class ReviewRateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly maxPrincipals: number;
  private readonly now: () => number;
  /** In least-recently-used order: a bucket is moved to the end each time it is used. */
  private readonly buckets = new Map<string, Bucket>();

  constructor(options: RateLimiterOptions) {
    if (!(Number.isFinite(options.perSecond) && options.perSecond > 0)) {
      throw new RangeError(`review rate must be a positive number of reviews per second, not ${options.perSecond}`);
    }
    this.perSecond = options.perSecond;
    this.burst = Math.max(1, 2 * options.perSecond);
    this.maxPrincipals = Math.max(1, Math.floor(options.maxPrincipals ?? DEFAULT_MAX_PRINCIPALS));
    this.now = options.now ?? (() => performance.now());
  }

  /** How many principals have a bucket now (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one review from `name`'s bucket; false when it is empty. */
  take(name: string): boolean {
    const now = this.now();
    let bucket = this.buckets.get(name);
    if (bucket) {
      this.buckets.delete(name);
      this.refill(bucket, now);
    } else {
      if (this.buckets.size >= this.maxPrincipals) this.makeRoom(now);
      bucket = { tokens: this.burst, at: now };
    }
    this.buckets.set(name, bucket);
    // The epsilon absorbs rounding in the refill arithmetic (0.9999999999 tokens is one token).
    if (bucket.tokens < 1 - 1e-9) return false;
    bucket.tokens = Math.max(0, bucket.tokens - 1);
    return true;
  }

  /** Like `take`, but throws ResourceExhaustedError (RESOURCE_EXHAUSTED) when the bucket is empty. */
  check(p: Principal): void {
    if (this.take(p.name)) return;
    const bucket = this.buckets.get(p.name)!;
    const waitMs = Math.max(1, Math.ceil(((1 - bucket.tokens) / this.perSecond) * 1000));
    throw new ResourceExhaustedError(
      `review rate limit reached for ${p.name}: at most ${this.perSecond} per second (burst ${this.burst}); ` +
        `the next one is allowed in about ${waitMs} ms`,
    );
  }

  private refill(bucket: Bucket, now: number): void {
    const elapsed = Math.max(0, now - bucket.at) / 1000;
    bucket.tokens = Math.min(this.burst, bucket.tokens + elapsed * this.perSecond);
    bucket.at = now;
  }

  /**
   * Drops every bucket that is full by now, then, if still at more than 90% of the cap, the least
   * recently used ones down to 90%: so that a flood of new names pays for one sweep per tenth of
   * the cap, not one per name.
   */
  private makeRoom(now: number): void {
    for (const [name, bucket] of this.buckets) {
      const tokens = bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.perSecond;
      if (tokens >= this.burst) this.buckets.delete(name);
    }
    const target = Math.floor(this.maxPrincipals * 0.9);
    for (const name of this.buckets.keys()) {
      if (this.buckets.size <= target) break;
      this.buckets.delete(name);
    }
  }
}
