/**
 * The in-process store: everything in memory, lost at exit. It lets a newcomer run Council with
 * nothing else installed, and is the reference the Redis store is held to by the contract suite.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { InvalidArgumentError } from "../domain/errors.js";
import { isDue } from "../domain/lifecycle.js";
import { decisionBytes, lessonBytes } from "../domain/limits.js";
import { emptySummary, PENDING, type Decision, type Lesson, type Summary } from "../domain/model.js";
import {
  countWithin,
  type DecisionFilter,
  type LifecycleChange,
  type LifecycleResult,
  type OutcomeChange,
  type OutcomeResult,
  type Page,
  type PageRequest,
  type SaveResult,
  type Store,
  type Unsubscribe,
} from "./store.js";

/** Keys kept in ascending order; pages read them newest (largest) first. */
class SortedIndex {
  private readonly keys: string[] = [];

  insert(key: string): void {
    // New reviews take ever larger keys: nearly every insert appends.
    const last = this.keys[this.keys.length - 1];
    if (last === undefined || last < key) this.keys.push(key);
    else this.keys.splice(this.lowerBound(key), 0, key);
  }

  remove(key: string): void {
    const at = this.lowerBound(key);
    if (this.keys[at] === key) this.keys.splice(at, 1);
  }

  /** Up to `limit` keys below `before` (or from the top), descending, and whether more remain. */
  pageBelow(limit: number, before?: string): { keys: string[]; more: boolean } {
    const end = before === undefined ? this.keys.length : this.lowerBound(before);
    const start = Math.max(0, end - limit);
    return { keys: this.keys.slice(start, end).reverse(), more: start > 0 };
  }

  /** Up to `limit` keys above `after` (or from the bottom), ascending, and whether more remain. */
  pageAbove(limit: number, after?: string): { keys: string[]; more: boolean } {
    let start = after === undefined ? 0 : this.lowerBound(after);
    if (after !== undefined && this.keys[start] === after) start++;
    const end = Math.min(this.keys.length, start + limit);
    return { keys: this.keys.slice(start, end), more: end < this.keys.length };
  }

  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Stored decisions and lessons are immutable values: the store keeps the object it is given (the
 * Store contract: a caller never changes a decision it handed over or read back), and a write
 * replaces a decision with a new object instead of changing it in place. So reads, listings and
 * events hand out the stored object itself instead of copying it for every reader (copies were a
 * fifth of a review's CPU time on this store).
 */

export interface MemoryStoreOptions {
  /** The store's clock, which decides expiry (tests may pass their own). */
  now?: () => Date;
  /** How often pending decisions past their expiry are swept (and their events sent); 0: never by timer. */
  sweepIntervalMs?: number;
}

/** How often the sweeper looks for pending decisions past their expiry: an expiry is an event within about this. */
export const SWEEP_INTERVAL_MS = 250;

export class MemoryStore implements Store {
  readonly description = "in-process (not durable: everything is lost at exit)";
  /** One process is the only replica: a random key per store is shared by everyone who can use it. */
  readonly pageTokenKey = randomBytes(32);
  /**
   * The one clock of this store: every review and lesson takes the next number, so listings are in
   * the order things were stored, whatever the clock of the caller says.
   */
  private order = 0;
  private readonly decisions = new Map<string, Decision>();
  /** Review request ids, keyed by [submitter, request id] (request ids are per principal). */
  private readonly byRequest = new Map<string, { id: string; fingerprint: string }>();
  /** Outcome request ids, keyed by [decision id, recorder, request id], with their fingerprints. */
  private readonly outcomeRequests = new Map<string, string>();
  private readonly indexes = new Map<string, SortedIndex>();
  private readonly lessons: Lesson[] = [];
  private readonly events = new EventEmitter().setMaxListeners(0);
  private counts = emptySummary();
  /** Each decision's revision: bumped by every change after it was stored (store.ts getDecisionForUpdate). */
  private readonly revisions = new Map<string, number>();
  /** Each decision's index key, which holds its place in store order whatever its status. */
  private readonly orderKeys = new Map<string, string>();
  /**
   * Pending decisions by expiry, ascending: [expires_at ms, id]. An entry whose decision has left
   * pending is skipped (and dropped) when the sweep reaches it.
   */
  private readonly expiries: Array<[number, string]> = [];
  private readonly now: () => Date;
  private readonly sweeper: NodeJS.Timeout | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? (() => new Date());
    const interval = options.sweepIntervalMs ?? SWEEP_INTERVAL_MS;
    if (interval > 0) {
      this.sweeper = setInterval(() => void this.expireDue(Number.MAX_SAFE_INTEGER), interval);
      // The sweeper alone never keeps a process alive; close() stops it.
      this.sweeper.unref();
    }
  }

  async saveReview(decision: Decision, fingerprint: string): Promise<SaveResult> {
    if (decision.requestId) {
      const key = requestKey(decision.submittedBy, decision.requestId);
      const taken = this.byRequest.get(key);
      if (taken) return { kind: "exists", decision: this.decisions.get(taken.id)!, fingerprint: taken.fingerprint };
      this.byRequest.set(key, { id: decision.id, fingerprint });
    }
    const stored = decision;
    this.decisions.set(stored.id, stored);
    this.revisions.set(stored.id, 1);
    const key = `${String(++this.order).padStart(15, "0")}:${stored.id}`;
    this.orderKeys.set(stored.id, key);
    for (const name of indexNames(stored)) this.index(name).insert(key);
    this.counts.totalDecisions += 1;
    this.counts.byType[stored.decision] += 1;
    this.counts.outcomes[stored.outcome ?? PENDING] += 1;
    this.counts.byStatus[stored.status] += 1;
    if (stored.autoFixApproved) this.counts.autoApproved += 1;
    if (stored.status === "pending" && stored.expiresAt) this.scheduleExpiry(stored.expiresAt.getTime(), stored.id);
    this.events.emit("review", stored);
    return { kind: "stored", decision: stored };
  }

  async findByRequestId(submittedBy: string, requestId: string) {
    const taken = this.byRequest.get(requestKey(submittedBy, requestId));
    return taken && { decision: this.read(taken.id)!, fingerprint: taken.fingerprint };
  }

  async getDecision(id: string) {
    return this.read(id);
  }

  async getDecisionForUpdate(id: string) {
    const d = this.read(id);
    return d && { decision: d, revision: this.revisions.get(id)! };
  }

  async updateLifecycle(id: string, expectRevision: number, change: LifecycleChange): Promise<LifecycleResult> {
    const d = this.decisions.get(id);
    if (!d) return { kind: "not_found" };
    if (this.expireIfDue(d)) return { kind: "expired", decision: this.decisions.get(id)! };
    if (this.revisions.get(id) !== expectRevision) return { kind: "conflict" };
    const next = this.replace(d, {
      status: change.status,
      verdicts: change.verdicts,
      supersededBy: change.supersededBy,
    });
    return { kind: "applied", decision: next };
  }

  async expireDue(limit: number): Promise<number> {
    const now = this.now().getTime();
    let expired = 0;
    while (expired < limit && this.expiries.length > 0 && this.expiries[0]![0] <= now) {
      const [, id] = this.expiries.shift()!;
      const d = this.decisions.get(id);
      if (d && this.expireIfDue(d)) expired++;
    }
    return expired;
  }

  async listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>> {
    const name = filterIndexName(filter);
    const index = this.index(name);
    const cursor = checkCursor(page.cursor, INDEX_KEY);
    const { keys, more } = page.oldestFirst ? index.pageAbove(page.limit, cursor) : index.pageBelow(page.limit, cursor);
    // Each one read as of now (a due one expires here); the page was taken from the indexes before.
    const found = keys.map((k) => this.read(k.slice(k.indexOf(":") + 1))!);
    const n = countWithin(found, decisionBytes, page.maxBytes);
    const items = found.slice(0, n);
    return { items, next: (more || n < keys.length) && n > 0 ? keys[n - 1] : undefined };
  }

  async recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult> {
    const d = this.decisions.get(id);
    if (!d) return { kind: "not_found" };
    const { outcome, notes, lessons, at, requestId, recordedBy } = change;
    if (change.onlyIfSubmittedBy !== undefined && d.submittedBy !== change.onlyIfSubmittedBy) {
      return { kind: "other_submitter", submittedBy: d.submittedBy };
    }
    const current = this.read(id)!;
    if (current.status !== "approved") return { kind: "not_approved", status: current.status };
    if (requestId) {
      const key = JSON.stringify([id, recordedBy, requestId]);
      const seen = this.outcomeRequests.get(key);
      if (seen !== undefined) return { kind: "exists", decision: current, fingerprint: seen };
      this.outcomeRequests.set(key, change.fingerprint);
    }
    this.counts.outcomes[current.outcome ?? PENDING] -= 1;
    this.counts.outcomes[outcome] += 1;
    // Lessons are kept in the order this store recorded them, like the reviews (never by `at`).
    this.lessons.push({ decisionId: id, outcome, lessons, notes, recordedAt: at, recordedBy });
    this.counts.learningEntries += 1;
    const next = this.replace(current, {
      outcome,
      outcomeNotes: notes,
      lessonsLearned: lessons,
      implementedAt: at,
      outcomeRecordedBy: recordedBy,
    });
    return { kind: "recorded", decision: next };
  }

  async summary(): Promise<Summary> {
    return structuredClone(this.counts);
  }

  async listLessons(page: PageRequest): Promise<Page<Lesson>> {
    const cursor = checkCursor(page.cursor, LESSON_KEY);
    let end = this.lessons.length;
    if (cursor !== undefined) {
      end = Number(cursor);
      if (!Number.isSafeInteger(end) || end < 0 || end > this.lessons.length) {
        throw new InvalidArgumentError("page_token", "does not point into the lessons");
      }
    }
    const start = Math.max(0, end - page.limit);
    const found = this.lessons.slice(start, end).reverse();
    const n = countWithin(found, lessonBytes, page.maxBytes);
    const items = found.slice(0, n);
    return { items, next: n > 0 && end - n > 0 ? String(end - n) : undefined };
  }

  subscribe(
    onReview: (decision: Decision) => void,
    onError: (err: Error) => void,
    onLive?: () => void,
    onUpdate?: (decision: Decision) => void,
  ): Unsubscribe {
    // Writes emit synchronously: a subscriber that threw would fail a write already made, and keep
    // the subscribers after it from hearing of it. One that throws is dropped instead, and told
    // through onError (as a Redis subscription that breaks is).
    let ended = false;
    const end = () => {
      ended = true;
      this.events.off("review", onReviewEvent);
      this.events.off("update", onUpdateEvent);
    };
    const deliver = (to: (decision: Decision) => void, decision: Decision) => {
      if (ended) return;
      try {
        to(decision);
      } catch (err) {
        end();
        queueMicrotask(() => {
          try {
            onError(err instanceof Error ? err : new Error(String(err)));
          } catch {
            // Nothing is left to tell: the subscription has ended.
          }
        });
      }
    };
    const onReviewEvent = (decision: Decision) => deliver(onReview, decision);
    const onUpdateEvent = (decision: Decision) => deliver(onUpdate!, decision);
    this.events.on("review", onReviewEvent);
    if (onUpdate) this.events.on("update", onUpdateEvent);
    if (onLive) queueMicrotask(onLive);
    return end;
  }

  isHealthy(): boolean {
    return true;
  }

  onHealthChange(): void {
    // Always healthy.
  }

  async close(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.events.removeAllListeners();
  }

  /** The stored decision, expired first if it is due (so that every read sees the expiry at once). */
  private read(id: string): Decision | undefined {
    const d = this.decisions.get(id);
    return d && this.expireIfDue(d) ? this.decisions.get(id) : d;
  }

  /** Expires `d` if it is pending past its expiry by this store's clock; whether it did. */
  private expireIfDue(d: Decision): boolean {
    if (!isDue(d, this.now())) return false;
    this.replace(d, { status: "expired" });
    return true;
  }

  /**
   * Writes a change to a stored decision as a new snapshot: moves it between status counters and
   * indexes when its status changes, bumps its revision and sends one update event.
   */
  private replace(d: Decision, change: Partial<Decision>): Decision {
    const next = { ...d, ...change };
    if (next.status !== d.status) {
      const key = this.orderKeys.get(d.id)!;
      for (const name of statusIndexNames(d)) this.index(name).remove(key);
      this.counts.byStatus[d.status] -= 1;
      this.counts.byStatus[next.status] += 1;
      for (const name of statusIndexNames(next)) this.index(name).insert(key);
    }
    this.decisions.set(d.id, next);
    this.revisions.set(d.id, this.revisions.get(d.id)! + 1);
    this.events.emit("update", next);
    return next;
  }

  private scheduleExpiry(at: number, id: string): void {
    let lo = 0;
    let hi = this.expiries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.expiries[mid]![0] <= at) lo = mid + 1;
      else hi = mid;
    }
    this.expiries.splice(lo, 0, [at, id]);
  }

  private index(name: string): SortedIndex {
    let index = this.indexes.get(name);
    if (!index) this.indexes.set(name, (index = new SortedIndex()));
    return index;
  }
}

/** The key of a review's request id: request ids are scoped to their submitter. */
function requestKey(submittedBy: string, requestId: string): string {
  return JSON.stringify([submittedBy, requestId]);
}

/** Every index a decision belongs to: each combination of its type, suggestion and status (any of them left out). */
function indexNames(d: Decision): string[] {
  return [...baseIndexNames(d), ...statusIndexNames(d)];
}

/** The indexes that do not filter by status: a decision stays in them for good. */
function baseIndexNames(d: Decision): string[] {
  return [
    filterIndexName({}),
    filterIndexName({ decisionType: d.decision }),
    filterIndexName({ suggestionId: d.suggestionId }),
    filterIndexName({ decisionType: d.decision, suggestionId: d.suggestionId }),
  ];
}

/** The indexes of the decision's current status, which it leaves when its status changes. */
function statusIndexNames(d: Decision): string[] {
  const status = d.status;
  return [
    filterIndexName({ status }),
    filterIndexName({ decisionType: d.decision, status }),
    filterIndexName({ suggestionId: d.suggestionId, status }),
    filterIndexName({ decisionType: d.decision, suggestionId: d.suggestionId, status }),
  ];
}

/** An index's name: its filter's parts joined by a character no decision type, suggestion id or status holds. */
function filterIndexName(f: DecisionFilter): string {
  return `${f.decisionType ?? ""}\u0000${f.suggestionId ?? ""}\u0000${f.status ?? ""}`;
}

/** An index key: `<15-digit order>:<decision id>`. */
const INDEX_KEY = /^\d{15}:\S{1,300}$/;
/** A lessons cursor: how many lessons lie below it. */
const LESSON_KEY = /^\d{1,15}$/;

function checkCursor(cursor: string | undefined, shape: RegExp): string | undefined {
  if (cursor !== undefined && !shape.test(cursor)) {
    throw new InvalidArgumentError("page_token", "is malformed");
  }
  return cursor;
}
