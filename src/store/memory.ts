/**
 * The in-process store: everything in memory, lost at exit. It lets a newcomer run Council with
 * nothing else installed, and is the reference the Redis store is held to by the contract suite.
 */
import { EventEmitter } from "node:events";
import { InvalidArgumentError } from "../domain/errors.js";
import { emptySummary, PENDING, type Decision, type Lesson, type Summary } from "../domain/model.js";
import {
  decisionSortKey,
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
  private readonly decisions = new Map<string, Decision>();
  private readonly byRequest = new Map<string, { id: string; fingerprint: string }>();
  /** Outcome request ids, keyed by [decision id, request id], with their fingerprints. */
  private readonly outcomeRequests = new Map<string, string>();
  private readonly indexes = new Map<string, SortedIndex>();
  private readonly lessons: Lesson[] = [];
  private readonly events = new EventEmitter().setMaxListeners(0);
  private counts = emptySummary();

  async saveReview(decision: Decision, fingerprint: string): Promise<SaveResult> {
    if (decision.requestId) {
      const taken = this.byRequest.get(decision.requestId);
      if (taken) return { kind: "exists", decision: copy(this.decisions.get(taken.id)!), fingerprint: taken.fingerprint };
      this.byRequest.set(decision.requestId, { id: decision.id, fingerprint });
    }
    const stored = copy(decision);
    this.decisions.set(stored.id, stored);
    const key = decisionSortKey(stored);
    for (const name of indexNames(stored)) this.index(name).insert(key);
    this.counts.totalDecisions += 1;
    this.counts.byType[stored.decision] += 1;
    this.counts.outcomes[stored.outcome ?? PENDING] += 1;
    if (stored.autoFixApproved) this.counts.autoApproved += 1;
    this.events.emit("review", copy(stored));
    return { kind: "stored", decision: copy(stored) };
  }

  async findByRequestId(requestId: string) {
    const taken = this.byRequest.get(requestId);
    return taken && { decision: copy(this.decisions.get(taken.id)!), fingerprint: taken.fingerprint };
  }

  async getDecision(id: string) {
    const d = this.decisions.get(id);
    return d && copy(d);
  }

  async listDecisions(filter: DecisionFilter, page: PageRequest): Promise<Page<Decision>> {
    const name = filterIndexName(filter);
    const { keys, more } = this.index(name).pageBelow(page.limit, checkCursor(page.cursor));
    const items = keys.map((k) => copy(this.decisions.get(k.slice(k.indexOf(":") + 1))!));
    return { items, next: more && keys.length ? keys[keys.length - 1] : undefined };
  }

  async recordOutcome(id: string, change: OutcomeChange): Promise<OutcomeResult> {
    const d = this.decisions.get(id);
    if (!d) return { kind: "not_found" };
    const { outcome, notes, lessons, at, requestId } = change;
    if (requestId) {
      const key = JSON.stringify([id, requestId]);
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
    this.lessons.push({ decisionId: id, outcome, lessons, notes, recordedAt: at });
    this.counts.learningEntries += 1;
    return { kind: "recorded", decision: copy(d) };
  }

  async summary(): Promise<Summary> {
    return copy(this.counts);
  }

  async listLessons(page: PageRequest): Promise<Page<Lesson>> {
    const cursor = checkCursor(page.cursor);
    let end = this.lessons.length;
    if (cursor !== undefined) {
      end = Number(cursor);
      if (!Number.isSafeInteger(end) || end < 0 || end > this.lessons.length) {
        throw new InvalidArgumentError("page_token", "does not point into the lessons");
      }
    }
    const start = Math.max(0, end - page.limit);
    const items = this.lessons.slice(start, end).reverse().map(copy);
    return { items, next: start > 0 ? String(start) : undefined };
  }

  subscribe(onReview: (decision: Decision) => void, _onError: (err: Error) => void, onLive?: () => void): Unsubscribe {
    this.events.on("review", onReview);
    if (onLive) queueMicrotask(onLive);
    return () => this.events.off("review", onReview);
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

function checkCursor(cursor: string | undefined): string | undefined {
  if (cursor !== undefined && (cursor === "" || cursor.length > 512)) {
    throw new InvalidArgumentError("page_token", "is malformed");
  }
  return cursor;
}
