/**
 * Every Redis key name Council uses is built here, and nowhere else.
 *
 * Layout (prefix `council:` by default, `{…}` is the Redis Cluster hash tag of one bucket):
 *
 *   council:meta                               hash: buckets, layout, created_at, token_key (read at
 *                                                start, lua/open_keyspace.lua)
 *   council:{b7}:d:<decision id>               hash: doc (JSON of the immutable part),
 *                                                submitted_by, outcome, notes, lessons,
 *                                                implemented_at, op, outcome_by, outcome_by_op
 *                                                (redis_codec.ts says how each one reads)
 *   council:{b7}:req:<request id>              hash: id (decision id), fp (suggestion fingerprint),
 *                                                op (the save call that stored it); a request of
 *                                                `anonymous`
 *   council:{b7}:preq:<n>:<principal>:<request id>  the same, a request of another principal
 *                                                (`<n>`: the name's length in UTF-8 bytes)
 *   council:{b7}:oreq:<decision id>:<request id>  hash: fp (fingerprint of a RecordOutcome call
 *                                                of `anonymous`)
 *   council:{b7}:poreq:<decision id>:<n>:<principal>:<request id>  the same, another principal
 *   council:{b7}:ix:all                        zset, score 0, members `<order>:<decision id>`
 *   council:{b7}:ix:t:<decision type>          the same, one decision type
 *   council:{b7}:ix:s:<suggestion id>          the same, one suggestion
 *   council:{b7}:ix:ts:<type>:<suggestion id>  the same, both
 *   council:{b7}:ix:st:<status>                the same, decisions in one status now (SPEC §9)
 *   council:{b7}:ix:stt:<status>:<type>        … and one decision type
 *   council:{b7}:ix:sts:<status>:<suggestion id>  … and one suggestion
 *   council:{b7}:ix:stts:<status>:<type>:<suggestion id>  … and both
 *   council:{b7}:exp                           zset: pending decisions that expire, score expires_at
 *                                                in ms, member the decision id (swept by every
 *                                                replica: redis.ts `expireDue`)
 *   council:{b7}:counts                        hash: total, type:<t>, outcome:<o|pending>,
 *                                                status:<s>, auto_approved, lessons, updates,
 *                                                last_us, st_cursor (how far the status backfill
 *                                                read ix:all), sync (touched before each WAIT:
 *                                                redis.ts `write`)
 *   council:{b7}:lessons                       zset, score 0, members `<order>:<decision id>:<12-digit n>`
 *   council:{b7}:lesson                        hash: lessons member -> lesson JSON
 *   council:{b7}:events                        stream (capped): one entry per stored review
 *   council:{b7}:updates                       stream (capped): one entry per change to a stored
 *                                                decision (verdict, status, outcome); apart from
 *                                                `events` so that readers of layout 1 never meet
 *                                                an entry they cannot sequence
 *   council:{b7}:claim:<decision id>           string: the replica asking the external reviewers
 *                                                for that review (set only if absent, expiring:
 *                                                lua/reviewer_claim.lua; SPEC §11: repeats that
 *                                                arrive together ask them once)
 *
 * External reviewers across replicas (redis_reviewers.ts), all under one hash tag of their own so
 * that each of their scripts touches one slot, and none of them in a bucket:
 *
 *   council:{reviewers}:replicas               zset: replica id -> when its presence lapses (ms
 *                                                of the Redis server's TIME; renewed every few s)
 *   council:{reviewers}:counts                 hash: replica id -> JSON of its connected reviewers
 *                                                per role
 *   council:{reviewers}:turns                  hash: role -> tasks handed out (spreads them)
 *   council:{reviewers}:in:<replica id>        list: messages to that replica (tasks, withdrawals,
 *                                                answers), JSON, read with BRPOP; capped, expiring
 *
 * `<order>` is `<15-digit ms>.<3-digit µs>` of the Redis server's TIME when the script stored the
 * entry, made strictly increasing per bucket (`last_us`): the one clock that orders listings,
 * lessons and events. Entries written before that (layout 1 too) have `<15-digit ms>` of the
 * replica's clock; both forms sort together by their millisecond ("." sorts before ":").
 *
 * Request ids are scoped to their principal (SPEC §8). The keys of `anonymous` are those written
 * before principals existed, so stored requests are still found; every other principal's name is
 * in its keys with its length, so that no name and request id can be glued into another pair's
 * key, and under another word (`preq`, `poreq`), so that no anonymous request id can spell one.
 *
 * A bucket's keys share one hash tag, so each Lua script touches one slot. The tags are chosen so
 * that bucket i of n hashes into the i-th n-th of the 16384 cluster slots: whatever the slot
 * ranges of a cluster's masters, the buckets spread evenly over them. The tag is `b<i>` when that
 * already lands in range, else the first `b<i>.<k>` that does (a pure function of i and n).
 */
import { createHash } from "node:crypto";
import type { DecisionStatus, DecisionType } from "../domain/model.js";
import { ANONYMOUS_NAME } from "../domain/principal.js";

export const DEFAULT_BUCKETS = 16;
export const MAX_BUCKETS = 1024;
const SLOTS = 16384;

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster maps keys to slots with. */
function crc16(data: Buffer): number {
  let crc = 0;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The cluster slot of a key, honouring `{hash tags}` as Redis does. */
export function clusterSlot(key: string): number {
  const open = key.indexOf("{");
  if (open !== -1) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, "utf8")) % SLOTS;
}

/** The hash tag (without braces) of bucket `index` of `count`. */
export function bucketTag(index: number, count: number): string {
  const low = Math.floor((index * SLOTS) / count);
  const high = Math.floor(((index + 1) * SLOTS) / count);
  for (let k = 0; ; k++) {
    const tag = k === 0 ? `b${index}` : `b${index}.${k}`;
    const slot = clusterSlot(tag);
    if (slot >= low && slot < high) return tag;
  }
}

export function checkBucketCount(count: number): number {
  if (!Number.isInteger(count) || count < 1 || count > MAX_BUCKETS) {
    throw new RangeError(`the bucket count must be a whole number from 1 to ${MAX_BUCKETS}, got ${count}`);
  }
  return count;
}

/** `<n>:<principal>:<request id>`, `<n>` the name's UTF-8 length: unambiguous whatever the name holds. */
const scoped = (principal: string, requestId: string) => `${Buffer.byteLength(principal, "utf8")}:${principal}:${requestId}`;

/** The key that records a keyspace's layout; outside every bucket, read once at start. */
export const metaKey = (prefix: string) => `${prefix}meta`;

/**
 * The layout this code writes. Principals added keys (`preq`, `poreq`) and decision fields
 * (`submitted_by`, `outcome_by`, `outcome_by_op`) within layout 1: the code before them reads
 * everything it knows of a keyspace written since, and this code reads what was written before them
 * as `anonymous`'s (redis_codec.ts).
 *
 * Layout 2 (human verdicts, SPEC §9): every decision has a status, is in the status indexes and is
 * counted in `status:<s>`. A keyspace of layout 1 is brought to layout 2 at open (redis.ts
 * `backfillStatus`: the decisions stored before get their status, indexes and counters, chunk by
 * chunk, idempotently), and only then is `meta.layout` set to "2". Code that does not keep statuses
 * must not write to such a keyspace, so the versions before refuse to start on it; replicas of them
 * still running keep working, and what they store is indexed by the sweepers of this code.
 */
export const LAYOUT = "2";

/** The layouts this code opens: its own, and layout 1, which it upgrades. */
export const READABLE_LAYOUTS: readonly string[] = ["1", LAYOUT];

/** The layout of a keyspace whose meta has none (made before layouts were recorded). */
export const UNRECORDED_LAYOUT = "1";

/** An index member: `<15-digit ms>[.<3-digit µs>]:<decision id>` (the optional part since the store orders). */
export const INDEX_MEMBER = /^\d{15}(?:\.\d{3})?:\S{1,300}$/;

/** A lesson member: `<15-digit ms>[.<3-digit µs>]:<decision id>:<12-digit n>`. */
export const LESSON_MEMBER = /^\d{15}(?:\.\d{3})?:\S{1,300}:\d{12}$/;

/** The decision id in an index member. */
export const memberDecisionId = (member: string): string => member.slice(member.indexOf(":") + 1);

export interface IndexFilter {
  decisionType?: DecisionType;
  suggestionId?: string;
  status?: DecisionStatus;
}

/** The reviewer hub's keys (Keyspace.reviewers). */
export interface ReviewerKeys {
  replicas: string;
  counts: string;
  turns: string;
  inbox(replicaId: string): string;
}

/** The keys of one keyspace: a prefix and a fixed number of buckets. */
export class Keyspace {
  private readonly tags: string[];

  constructor(
    readonly prefix: string,
    readonly buckets: number,
  ) {
    checkBucketCount(buckets);
    this.tags = Array.from({ length: buckets }, (_, i) => `${prefix}{${bucketTag(i, buckets)}}:`);
  }

  /** Every bucket number, 0 to buckets-1. */
  all(): number[] {
    return Array.from({ length: this.buckets }, (_, i) => i);
  }

  /**
   * The bucket of a decision, from its id. A review with a request_id has the id derived from it
   * and its submitter (`decisionIdForRequest`), so every replica and every retry picks the same bucket; a review
   * without one has a random id, so it lands in a random bucket.
   */
  bucketOfId(decisionId: string): number {
    return createHash("sha256").update(decisionId).digest().readUInt32BE(0) % this.buckets;
  }

  private in(bucket: number): string {
    const tag = this.tags[bucket];
    if (tag === undefined) throw new RangeError(`no bucket ${bucket}`);
    return tag;
  }

  decision(bucket: number, id: string): string {
    return `${this.in(bucket)}d:${id}`;
  }

  /** The idempotency key of a review: per principal (see the layout above). */
  request(bucket: number, submittedBy: string, requestId: string): string {
    if (submittedBy === ANONYMOUS_NAME) return `${this.in(bucket)}req:${requestId}`;
    return `${this.in(bucket)}preq:${scoped(submittedBy, requestId)}`;
  }

  /**
   * The index a listing with `filter` reads. Each of the eight combinations has its own sorted
   * set, so that every listing is paged by Redis, never filtered or sorted in memory.
   */
  index(bucket: number, filter: IndexFilter): string {
    const { decisionType: t, suggestionId: s, status: st } = filter;
    if (st !== undefined) {
      if (t !== undefined && s !== undefined) return `${this.in(bucket)}ix:stts:${st}:${t}:${s}`;
      if (t !== undefined) return `${this.in(bucket)}ix:stt:${st}:${t}`;
      if (s !== undefined) return `${this.in(bucket)}ix:sts:${st}:${s}`;
      return `${this.in(bucket)}ix:st:${st}`;
    }
    if (t !== undefined && s !== undefined) return `${this.in(bucket)}ix:ts:${t}:${s}`;
    if (t !== undefined) return `${this.in(bucket)}ix:t:${t}`;
    if (s !== undefined) return `${this.in(bucket)}ix:s:${s}`;
    return `${this.in(bucket)}ix:all`;
  }

  /**
   * The four status indexes a decision of `type` and `suggestionId` is in while its status is
   * `status`, in the order the scripts take them (status; and type; and suggestion; and both).
   */
  statusIndexes(bucket: number, status: DecisionStatus, type: DecisionType, suggestionId: string): string[] {
    return [
      this.index(bucket, { status }),
      this.index(bucket, { status, decisionType: type }),
      this.index(bucket, { status, suggestionId }),
      this.index(bucket, { status, decisionType: type, suggestionId }),
    ];
  }

  /** The pending decisions of a bucket that expire, by expires_at. */
  expiries(bucket: number): string {
    return `${this.in(bucket)}exp`;
  }

  counts(bucket: number): string {
    return `${this.in(bucket)}counts`;
  }

  /** The idempotency key of a RecordOutcome call: per decision and principal, in the decision's bucket. */
  outcomeRequest(bucket: number, decisionId: string, recordedBy: string, requestId: string): string {
    if (recordedBy === ANONYMOUS_NAME) return `${this.in(bucket)}oreq:${decisionId}:${requestId}`;
    return `${this.in(bucket)}poreq:${decisionId}:${scoped(recordedBy, requestId)}`;
  }

  lessons(bucket: number): string {
    return `${this.in(bucket)}lessons`;
  }

  lessonDocs(bucket: number): string {
    return `${this.in(bucket)}lesson`;
  }

  events(bucket: number): string {
    return `${this.in(bucket)}events`;
  }

  /** The stream of changes to the bucket's stored decisions (lifecycle and outcome). */
  updates(bucket: number): string {
    return `${this.in(bucket)}updates`;
  }

  /** Who asks the external reviewers for a review (its decision id), while it does (SPEC §11). */
  claim(bucket: number, decisionId: string): string {
    return `${this.in(bucket)}claim:${decisionId}`;
  }

  /** The keys of the reviewer hub across replicas (see the layout above), under their own hash tag. */
  reviewers(): ReviewerKeys {
    const tag = `${this.prefix}{reviewers}:`;
    return {
      replicas: `${tag}replicas`,
      counts: `${tag}counts`,
      turns: `${tag}turns`,
      inbox: (replicaId: string) => `${tag}in:${replicaId}`,
    };
  }
}
