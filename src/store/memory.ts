/**
 * The in-process store: everything in memory, lost at exit. It lets a newcomer run Council with
 * nothing else installed, and is the reference the Redis store is held to by the contract suite.
 */
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { InvalidArgumentError } from "../domain/errors.js";
import { decisionBytes, lessonBytes } from "../domain/limits.js";
import { emptySummary, PENDING, type Decision, type Lesson, type Summary } from "../domain/model.js";
import {
  countWithin,
  type DecisionFilter,
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
    this.keys.splice(this.lowerBound(key), 0, key);
  }

  /** Up to `limit` keys below `before` (or from the top), descending, and whether more remain. */
  pageBelow(limit: number, before?: string): { keys: string[]; more: boolean } {
    const end = before === undefined ? this.keys.length : this.lowerBound(before);
    const start = Math.max(0, end - limit);
    return { keys: this.keys.slice(start, end).reverse(), more: start > 0 };
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

const copy = <T>(value: T): T => structuredClone(value);

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

  async saveReview(decision: Decision, fingerprint: string): Promise<SaveResult> {
    if (decision.requestId) {
      const key = requestKey(decision.submittedBy, decision.requestId);
      const taken = this.byRequest.get(key);
      if (taken) return { kind: "exists", decision: copy(this.decisions.get(taken.id)!), fingerprint: taken.fingerprint };
      this.byRequest.set(key, { id: decision.id, fingerprint });
    }
    const stored = copy(decision);
    this.decisions.set(stored.id, stored);
    const key = `${String(++this.order).padStart(15, "0")}:${stored.id}`;
    for (const name of indexNames(stored)) this.index(name).insert(key);
    this.counts.totalDecisions += 1;
    this.counts.byType[stored.decision] += 1;
    this.counts.outcomes[stored.outcome ?? PENDING] += 1;
    if (stored.autoFixApproved) this.counts.autoApproved += 1;
    this.events.emit("review", copy(stored));
    return { kind: "stored", decision: copy(stored) };
  }

  async findByRequestId(submittedBy: string, requestId: string) {
    const taken = this.byRequest.get(requestKey(submittedBy, requestId));
    return taken && { decision: copy(this.decisions.get(taken.id)!), fingerprint: taken.fingerprint };
  }

  async getDecision(id: string) {
    const d = this.decisions.get(id);
    return d && copy(d);
  }

  async listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>> {
    const name = filterIndexName(filter);
    const { keys, more } = this.index(name).pageBelow(page.limit, checkCursor(page.cursor, INDEX_KEY));
    const found = keys.map((k) => this.decisions.get(k.slice(k.indexOf(":") + 1))!);
    // Measured before copying, so that a page of large decisions is never copied whole.
    const n = countWithin(found, decisionBytes, page.maxBytes);
    const items = found.slice(0, n).map(copy);
    return { items, next: (more || n < keys.length) && n > 0 ? keys[n - 1] : undefined };
  }

  async recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult> {
    const d = this.decisions.get(id);
    if (!d) return { kind: "not_found" };
    const { outcome, notes, lessons, at, requestId, recordedBy } = change;
    if (change.onlyIfSubmittedBy !== undefined && d.submittedBy !== change.onlyIfSubmittedBy) {
      return { kind: "other_submitter", submittedBy: d.submittedBy };
    }
    if (requestId) {
      const key = JSON.stringify([id, recordedBy, requestId]);
      const seen = this.outcomeRequests.get(key);
      if (seen !== undefined) return { kind: "exists", decision: copy(d), fingerprint: seen };
      this.outcomeRequests.set(key, change.fingerprint);
    }
    this.counts.outcomes[d.outcome ?? PENDING] -= 1;
    this.counts.outcomes[outcome] += 1;
    d.outcome = outcome;
    d.outcomeNotes = notes;
    d.lessonsLearned = lessons;
    d.implementedAt = at;
    d.outcomeRecordedBy = recordedBy;
    // Lessons are kept in the order this store recorded them, like the reviews (never by `at`).
    this.lessons.push({ decisionId: id, outcome, lessons, notes, recordedAt: at, recordedBy });
    this.counts.learningEntries += 1;
    return { kind: "recorded", decision: copy(d) };
  }

  async summary(): Promise<Summary> {
    return copy(this.counts);
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
    const items = found.slice(0, n).map(copy);
    return { items, next: n > 0 && end - n > 0 ? String(end - n) : undefined };
  }

  subscribe(onReview: (decision: Decision) => void, onError: (err: Error) => void, onLive?: () => void): Unsubscribe {
    // saveReview emits synchronously: a subscriber that threw would fail a review already stored,
    // and keep the subscribers after it from hearing of it. One that throws is dropped instead,
    // and told through onError (as a Redis subscription that breaks is).
    const listener = (decision: Decision) => {
      try {
        onReview(decision);
      } catch (err) {
        this.events.off("review", listener);
        queueMicrotask(() => {
          try {
            onError(err instanceof Error ? err : new Error(String(err)));
          } catch {
            // Nothing is left to tell: the subscription has ended.
          }
        });
      }
    };
    this.events.on("review", listener);
    if (onLive) queueMicrotask(onLive);
    return () => this.events.off("review", listener);
  }

  isHealthy(): boolean {
    return true;
  }

  onHealthChange(): void {
    // Always healthy.
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
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

/** Every index a decision belongs to: all, by type, by suggestion, and by both. */
function indexNames(d: Decision): string[] {
  return [
    filterIndexName({}),
    filterIndexName({ decisionType: d.decision }),
    filterIndexName({ suggestionId: d.suggestionId }),
    filterIndexName({ decisionType: d.decision, suggestionId: d.suggestionId }),
  ];
}

function filterIndexName(f: DecisionFilter): string {
  return JSON.stringify([f.decisionType ?? "", f.suggestionId ?? ""]);
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
