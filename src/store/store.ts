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
}

/** What recording an outcome did. */
export type OutcomeResult =
  | { kind: "recorded"; decision: Decision }
  /** The request_id was already used for this decision: nothing was written. */
  | { kind: "exists"; decision: Decision; fingerprint: string }
  | { kind: "not_found" };

export interface DecisionFilter {
  decisionType?: DecisionType;
  suggestionId?: string;
}

export interface PageRequest {
  limit: number;
  /** The `next` of the previous page; undefined for the first page. */
  cursor?: string;
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
   * Stores a review atomically. With a request_id, stores it only if the id is still free;
   * `fingerprint` identifies the suggestion so that a repeat can be told from a conflict. A
   * decision with a request_id must have the id `decisionIdForRequest(requestId)`.
   */
  saveReview(decision: Decision, fingerprint: string): Promise<SaveResult>;

  /** The review stored under a request_id, with its suggestion's fingerprint. */
  findByRequestId(requestId: string): Promise<{ decision: Decision; fingerprint: string } | undefined>;

  getDecision(id: string): Promise<Decision | undefined>;

  /** Newest first. */
  listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>>;

  /**
   * Replaces the decision's outcome, notes and lessons, sets implemented_at, appends a lesson
   * and moves the outcome counters, atomically. With a request_id, does so only if that id is
   * still free for this decision.
   */
  recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult>;

  /** Exact counts, read from counters. */
  summary(): Promise<Summary>;

  /** Newest first. */
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

/** A sort key that orders decisions by decision time, then id: `<ms, 15 digits>:<id>`. */
export function decisionSortKey(d: Pick<Decision, "decidedAt" | "id">): string {
  return `${String(d.decidedAt.getTime()).padStart(15, "0")}:${d.id}`;
}
