/**
 * The one storage interface. The in-process store and the Redis store both implement it and both
 * pass the contract suite in test/store/contract.ts.
 */
import type { Decision, DecisionType, Lesson, Outcome, Summary } from "../domain/model.js";

/** What saving a review did. */
export type SaveResult =
  /** The review is now stored (decision, votes, indexes, counters and idempotency key, atomically). */
  | { kind: "stored"; decision: Decision }
  /** Its request_id was already taken: nothing was written; this is the review stored under it. */
  | { kind: "exists"; decision: Decision; fingerprint: string };

export interface OutcomeChange {
  outcome: Outcome;
  notes: string;
  lessons: string;
  at: Date;
  /** Idempotency key of the call, or "". */
  requestId: string;
  /** Identifies outcome, notes and lessons, so that a repeat can be told from a conflict. */
  fingerprint: string;
  /** The principal recording it: the decision's `outcomeRecordedBy` and the lesson's `recordedBy`. */
  recordedBy: string;
  /**
   * When set, records only on a decision whose `submittedBy` is this name (an agent records on its
   * own decisions only), checked in the same atomic step as the write; undefined: any decision.
   */
  onlyIfSubmittedBy?: string;
}

/** What recording an outcome did. */
export type OutcomeResult =
  | { kind: "recorded"; decision: Decision }
  /** The request_id was already used for this decision by the same principal: nothing was written. */
  | { kind: "exists"; decision: Decision; fingerprint: string }
  /** `onlyIfSubmittedBy` did not match: the decision was submitted by `submittedBy`. Nothing was written. */
  | { kind: "other_submitter"; submittedBy: string }
  | { kind: "not_found" };

export interface DecisionFilter {
  decisionType?: DecisionType;
  suggestionId?: string;
}

export interface PageRequest {
  limit: number;
  /** The `next` of the previous page; undefined for the first page. */
  cursor?: string;
  /**
   * A byte budget, counted with `decisionBytes`/`lessonBytes` (src/domain/limits.ts): the page
   * ends before the item that would take it past the budget (it always holds at least one), and
   * `next` then continues from the last item it holds. The store reads no more than it needs to.
   */
  maxBytes?: number;
}

/** How many of `items`, from the first, fit in `maxBytes` as `size` counts them: at least one. */
export function countWithin<T>(items: readonly T[], size: (item: T) => number, maxBytes: number | undefined): number {
  if (maxBytes === undefined) return items.length;
  let total = 0;
  for (let i = 0; i < items.length; i++) {
    total += size(items[i]!);
    if (total > maxBytes) return Math.max(1, i);
  }
  return items.length;
}

export interface Page<T> {
  items: T[];
  /** Where the next page starts; undefined on the last page. */
  next?: string;
}

export type Unsubscribe = () => void;

export interface Store {
  /** A short description for the start-up log, e.g. "in-process" or "redis 127.0.0.1:6379". */
  readonly description: string;

  /**
   * A secret that every replica sharing this store holds, and nobody else: the key page tokens
   * are signed with (HMAC-SHA256), so that a token is good on any replica of the keyspace that
   * issued it and on nothing else.
   */
  readonly pageTokenKey: Buffer;

  /**
   * Stores a review atomically, and places it after every review and lesson stored before. With a
   * request_id, stores it only if the id is still free for its submitter (request ids are scoped
   * to `decision.submittedBy`; a re-sent copy of this very call, after a lost reply, is "stored",
   * not "exists"); `fingerprint` identifies the suggestion so that a repeat can be told from a
   * conflict. A decision with a request_id must have the id
   * `decisionIdForRequest(submittedBy, requestId)`.
   */
  saveReview(decision: Decision, fingerprint: string): Promise<SaveResult>;

  /** The review that `submittedBy` stored under a request_id, with its suggestion's fingerprint. */
  findByRequestId(submittedBy: string, requestId: string): Promise<{ decision: Decision; fingerprint: string } | undefined>;

  getDecision(id: string): Promise<Decision | undefined>;

  /**
   * Newest first: in the order the store stored them (a counter, or the Redis server's clock made
   * strictly increasing), never by `decidedAt`, which is the replica's clock.
   */
  listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>>;

  /**
   * Replaces the decision's outcome, notes, lessons and recorder, sets implemented_at, appends a
   * lesson and moves the outcome counters, atomically. With a request_id, does so only if that id
   * is still free for this decision and this recorder; with `onlyIfSubmittedBy`, only on a
   * decision that principal submitted (checked first).
   */
  recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult>;

  /** Exact counts, read from counters. */
  summary(): Promise<Summary>;

  /** Newest first, in the order the store recorded them (as listDecisions). */
  listLessons(page: PageRequest): Promise<Page<Lesson>>;

  /**
   * Calls `onReview` for every review stored after this call, by any replica, in the order each
   * store sees them. `onError` is called if the subscription breaks for good. `onLive` is called
   * once the subscription is in place: no review stored after that is missed.
   */
  subscribe(onReview: (decision: Decision) => void, onError: (err: Error) => void, onLive?: () => void): Unsubscribe;

  /** Whether the store can serve now (for health checks). */
  isHealthy(): boolean;

  /** Registers a callback for changes of isHealthy(). */
  onHealthChange(listener: (healthy: boolean) => void): void;

  close(): Promise<void>;
}

