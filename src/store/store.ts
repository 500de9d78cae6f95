/**
 * The one storage interface. The in-process store and the Redis store both implement it and both
 * pass the contract suite in test/store/contract.ts.
 *
 * Human verdicts (SPEC section 9): the rules live once, in src/domain/lifecycle.ts. The app reads a
 * decision with its revision (getDecisionForUpdate), applies a rule, and writes the result with
 * updateLifecycle, which writes only if the revision is unchanged (on "conflict" the app reads
 * again and retries). Stores never judge verdicts; they only keep counters, indexes, expiry and
 * events exact. Decisions stored before section 9 (no status) read through
 * `legacyLifecycle(decisionType, settings)` from src/domain/lifecycle.ts.
 */
import type { Decision, DecisionStatus, DecisionType, Lesson, Outcome, Summary, Verdict } from "../domain/model.js";

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
  /**
   * The decision's status is not `approved` (SPEC section 9: an outcome is what happened when an
   * approved change was carried out): nothing was written. Checked in the same atomic step as the
   * write, after `onlyIfSubmittedBy` and before the request_id. A pending decision past its
   * `expiresAt` by the store's clock counts as `expired` here.
   */
  | { kind: "not_approved"; status: DecisionStatus }
  /** The request_id was already used for this decision by the same principal: nothing was written. */
  | { kind: "exists"; decision: Decision; fingerprint: string }
  /** `onlyIfSubmittedBy` did not match: the decision was submitted by `submittedBy`. Nothing was written. */
  | { kind: "other_submitter"; submittedBy: string }
  | { kind: "not_found" };

/** Every combination of these is served from an index (no scan, no sorting in memory). */
export interface DecisionFilter {
  decisionType?: DecisionType;
  suggestionId?: string;
  /** Only decisions whose status is this one now (a decision moves between status indexes as it changes). */
  status?: DecisionStatus;
}

/**
 * The lifecycle part of a decision that a change writes. Everything else about a decision is
 * immutable, except the outcome (recordOutcome).
 */
export interface LifecycleChange {
  status: DecisionStatus;
  /** The whole list after the change (the previous verdicts, then any new one). */
  verdicts: Verdict[];
  /** Set together with status `superseded`; otherwise the decision's current value, unchanged. */
  supersededBy: string;
}

/** What updateLifecycle did. */
export type LifecycleResult =
  /** Written: status counters and status indexes moved, revision bumped, one update event sent. */
  | { kind: "applied"; decision: Decision }
  /** The decision's revision is no longer `expectRevision`: nothing was written; read it again. */
  | { kind: "conflict" }
  /**
   * The decision was pending and its `expiresAt` has passed by the store's clock: the store expired
   * it in this step (exactly as expireDue would: counters, indexes, one update event) unless that had
   * already happened, and wrote nothing else. `decision` is the expired decision.
   */
  | { kind: "expired"; decision: Decision }
  | { kind: "not_found" };

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
  /**
   * Oldest first (ascending store order) instead of newest first. Cursors of the two directions are
   * not interchangeable (the app scopes page tokens by direction). Paged from the same indexes at
   * the same cost as newest first.
   */
  oldestFirst?: boolean;
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

/**
 * Decisions and lessons cross this interface as values: a caller never changes one it handed to
 * the store or read from it (the in-process store keeps and hands out the objects themselves).
 */
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
   *
   * The decision arrives with its initial lifecycle (src/domain/lifecycle.ts initialLifecycle): its
   * status is counted in `byStatus` and indexed, and a pending one is scheduled for expiry at its
   * `expiresAt`; its revision starts at 1. Supersede is not part of this call: the app stores the
   * new review, then marks the old decision through updateLifecycle (compare-and-set).
   */
  saveReview(decision: Decision, fingerprint: string): Promise<SaveResult>;

  /** The review that `submittedBy` stored under a request_id, with its suggestion's fingerprint. */
  findByRequestId(submittedBy: string, requestId: string): Promise<{ decision: Decision; fingerprint: string } | undefined>;

  getDecision(id: string): Promise<Decision | undefined>;

  /**
   * Newest first (or oldest first with `page.oldestFirst`): in the order the store stored them (a
   * counter, or the Redis server's clock made strictly increasing), never by `decidedAt`, which is
   * the replica's clock. A status keeps a decision's place in that order (the order is when it was
   * stored, not when its status changed).
   *
   * Expiry on reads (this method, getDecision, getDecisionForUpdate, findByRequestId): a decision
   * read as `pending` whose `expiresAt` has passed by the store's clock is returned with status
   * `expired` (the store may expire it then and there, or only present it so until its sweeper
   * does; the update event is sent once either way). A listing filtered by `pending` may therefore
   * hold an item that reads `expired` for the moment between its expiry time and the sweep.
   */
  listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>>;

  /**
   * The decision with its revision: an integer that changes with every write to the decision after
   * it was stored (lifecycle changes and outcomes), for compare-and-set through updateLifecycle.
   * Decisions stored before revisions existed have revision 0. Read expiry as listDecisions says.
   */
  getDecisionForUpdate(id: string): Promise<{ decision: Decision; revision: number } | undefined>;

  /**
   * Writes a lifecycle change, atomically, only if the decision's revision is still `expectRevision`
   * (compare-and-set: the rules run in src/domain/lifecycle.ts, once, and the store only checks that
   * nothing changed between the read and this write). In the same atomic step: if the decision is
   * pending and past its `expiresAt` by the store's clock, expire it instead ("expired"); otherwise
   * write status, verdicts and supersededBy, move one count between `byStatus` counters when the
   * status changes, move the decision between status indexes, bump the revision, and send one
   * update event (see subscribe). The store does not judge the change itself (the caller did).
   */
  updateLifecycle(id: string, expectRevision: number, change: LifecycleChange): Promise<LifecycleResult>;

  /**
   * Expires up to `limit` pending decisions whose `expiresAt` has passed by the store's clock, each
   * exactly once across all replicas (status `expired`, counters, indexes, revision, one update
   * event), and answers how many this call expired. Stores also run this by themselves on a timer
   * from the moment they are open until close (every few hundred milliseconds), so that an expiry
   * is an event within about a second on any replica; tests may call it to sweep at once.
   */
  expireDue(limit: number): Promise<number>;

  /**
   * Replaces the decision's outcome, notes, lessons and recorder, sets implemented_at, appends a
   * lesson and moves the outcome counters, atomically. With a request_id, does so only if that id
   * is still free for this decision and this recorder; with `onlyIfSubmittedBy`, only on a
   * decision that principal submitted (checked first); then only on an `approved` decision
   * ("not_approved" otherwise). Sends one update event (see subscribe) when it records.
   */
  recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult>;

  /** Exact counts, read from counters (`byStatus` included: every stored decision is in one status). */
  summary(): Promise<Summary>;

  /** Newest first, in the order the store recorded them (as listDecisions). */
  listLessons(page: PageRequest): Promise<Page<Lesson>>;

  /**
   * Calls `onReview` for every review stored after this call, by any replica, in the order each
   * store sees them. `onError` is called if the subscription breaks for good. `onLive` is called
   * once the subscription is in place: no review or update stored after that is missed.
   *
   * With `onUpdate`, also calls it for every change to a stored decision after this call (a
   * lifecycle change through updateLifecycle, supersede or expiry, and a recorded outcome), in the
   * same order as the reviews around it, with the decision as it reads after that change or later
   * (a store whose events carry only ids reads the decision when it delivers the event, so two quick
   * changes may both deliver the later state; a consumer that needs each state once compares). Each
   * change is delivered once per subscriber. Without `onUpdate`, update events are not read at all.
   */
  subscribe(
    onReview: (decision: Decision) => void,
    onError: (err: Error) => void,
    onLive?: () => void,
    onUpdate?: (decision: Decision) => void,
  ): Unsubscribe;

  /** Whether the store can serve now (for health checks). */
  isHealthy(): boolean;

  /** Registers a callback for changes of isHealthy(). */
  onHealthChange(listener: (healthy: boolean) => void): void;

  close(): Promise<void>;
}

