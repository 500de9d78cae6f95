/**
 * The council's use cases: review a suggestion (streaming each vote as it is cast, storing the
 * decision, replaying idempotent repeats), read and list decisions, record outcomes, summarise,
 * list lessons, and watch new reviews. It knows the domain and the Store interface, not gRPC.
 */
import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  UnavailableError,
} from "../domain/errors.js";
import { decisionIdForRequest, newDecisionId, outcomeFingerprint, suggestionFingerprint } from "../domain/identity.js";
import {
  applyVerdict,
  checkSupersede,
  checkVerdictInput,
  initialLifecycle,
  statusName,
  supersedeChange,
  type LifecycleChange,
} from "../domain/lifecycle.js";
import { LIMITS } from "../domain/limits.js";
import {
  isFinal,
  type Decision,
  type DecisionStatus,
  type DecisionType,
  type Lesson,
  type Outcome,
  type ReviewerProfile,
  type ReviewerRole,
  type Suggestion,
  type Summary,
  type VerdictType,
  type Vote,
} from "../domain/model.js";
import { reviewerProfiles, type Policy } from "../domain/policy.js";
import { outcomeScope, type Principal } from "../domain/principal.js";
import { castVote, conclude } from "../domain/rules.js";
import { checkString, pageSize, validateSuggestion } from "../domain/validate.js";
import type { Store, Unsubscribe } from "../store/store.js";
import { PageTokens } from "./page_token.js";

export interface ReviewRequest {
  suggestion: Suggestion;
  /** Scoped to `principal`: the same id from two principals makes two decisions. */
  requestId: string;
  dryRun: boolean;
  /** Who submits it: stored as the decision's `submittedBy` (a dry run shows it too). */
  principal: Principal;
  /**
   * A pending decision of the same submitter that this review follows up, or "": it becomes
   * superseded once this review is stored (SPEC section 9).
   */
  supersedes?: string;
}

export interface ResolveRequest {
  decisionId: string;
  verdict: VerdictType | undefined;
  comment: string;
  /** Scoped to `principal` and the decision. */
  requestId: string;
  /** Who gives the verdict: an approver, never on a decision it submitted (`anonymous` may). */
  principal: Principal;
}

/** What a listing of decisions keeps, and in which order. */
export interface DecisionQuery {
  decisionType?: DecisionType;
  suggestionId: string;
  status?: DecisionStatus;
  oldestFirst?: boolean;
}

/** How an await is told of the decision's states; see Council.await. */
export interface AwaitListener {
  /** Each state: first the current one, then one per change; the last has a final status. */
  onDecision: (decision: Decision) => void;
  /** The await cannot go on (unknown decision, store subscription broken); nothing follows. */
  onError: (err: Error) => void;
}

/** How many times a verdict or a supersede is retried when another change won the race (compare-and-set). */
export const MAX_LIFECYCLE_ATTEMPTS = 64;

export interface OutcomeRequest {
  decisionId: string;
  outcome: Outcome | undefined;
  notes: string;
  lessons: string;
  /** Scoped to `principal` and the decision. */
  requestId: string;
  /** Who records it: an agent only on a decision it submitted, an operator on any. */
  principal: Principal;
}

export interface ReviewResult {
  decision: Decision;
  /** True when an earlier review with the same request_id was replayed; nothing new was stored. */
  replayed: boolean;
  stored: boolean;
}

/**
 * Receives each vote as it is cast. The returned promise applies backpressure: the next reviewer
 * votes only once it resolves. It must not reject; a departed caller simply stops listening.
 */
export type VoteSink = (vote: Vote, decisionId: string) => Promise<void>;

export interface CouncilOptions {
  /** Awaited before each reviewer votes (tests use it to hold a review between votes). */
  beforeVote?: (role: ReviewerRole, index: number) => Promise<void>;
  /**
   * The replica's clock, for `cast_at`, `decided_at`, `implemented_at` and `recorded_at`. It does
   * not order anything: the store orders listings and lessons (see Store.listDecisions).
   */
  now?: () => Date;
}

/** A page of a listing, with the opaque token of the next page (empty on the last). */
export interface TokenPage<T> {
  items: T[];
  nextPageToken: string;
}

export class Council {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly now: () => Date;
  private readonly tokens: PageTokens;

  constructor(
    private readonly store: Store,
    readonly policy: Policy,
    private readonly options: CouncilOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    // Signed with the store's key, so that a token is good on every replica of the keyspace.
    this.tokens = new PageTokens(store.pageTokenKey);
  }

  /** Reviews in progress; each runs to its stored decision even if its caller has gone. */
  get reviewsInFlight(): number {
    return this.inFlight.size;
  }

  /** Resolves once every review in progress has finished. */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  review(request: ReviewRequest, sink: VoteSink): Promise<ReviewResult> {
    validateSuggestion(request.suggestion);
    checkString("request_id", request.requestId, LIMITS.requestIdBytes);
    checkString("supersedes", request.supersedes ?? "", LIMITS.idBytes);
    const run = this.runReview(request, sink);
    this.inFlight.add(run);
    const forget = () => this.inFlight.delete(run);
    run.then(forget, forget);
    return run;
  }

  private async runReview(request: ReviewRequest, sink: VoteSink): Promise<ReviewResult> {
    const { suggestion, dryRun } = request;
    const submittedBy = request.principal.name;
    const requestId = dryRun ? "" : request.requestId;
    const supersedes = request.supersedes ?? "";
    const fingerprint = suggestionFingerprint(suggestion);

    if (requestId) {
      const earlier = await this.store.findByRequestId(submittedBy, requestId);
      if (earlier) return this.replay(earlier.decision, earlier.fingerprint, fingerprint, supersedes, sink);
    }
    // Checked before anyone votes, so that a review that cannot follow up what it names costs nothing.
    if (supersedes) checkSupersede(supersedes, await this.store.getDecision(supersedes), submittedBy, this.now());

    const id = requestId ? decisionIdForRequest(submittedBy, requestId) : newDecisionId();
    const votes: Vote[] = [];
    for (const [index, reviewer] of this.policy.reviewers.entries()) {
      await this.options.beforeVote?.(reviewer.role, index);
      const vote = castVote(this.policy, reviewer, suggestion, this.now());
      votes.push(vote);
      await sink(vote, id);
    }
    const concluded = conclude(this.policy, suggestion, votes);
    const decidedAt = this.now();
    const decision: Decision = {
      id,
      suggestionId: suggestion.id,
      ...concluded,
      votes,
      decidedAt,
      implementedAt: undefined,
      outcome: undefined,
      outcomeNotes: "",
      lessonsLearned: "",
      policyVersion: this.policy.version,
      suggestion,
      requestId,
      submittedBy,
      outcomeRecordedBy: "",
      ...initialLifecycle(this.policy.verdicts, concluded.decision, decidedAt),
      supersedes,
    };
    if (dryRun) return { decision, replayed: false, stored: false };

    const saved = await this.store.saveReview(decision, fingerprint);
    if (saved.kind === "stored") {
      // The new review is stored first, then the old decision is marked if it is still pending
      // (the two may live in different buckets of a store, so this is a second write).
      if (supersedes) await this.markSuperseded(supersedes, saved.decision);
      return { decision: saved.decision, replayed: false, stored: true };
    }
    // Another call with the same request_id stored first: its decision (same id) is the answer.
    checkSameSuggestion(saved.fingerprint, fingerprint, requestId);
    checkSameSupersedes(saved.decision, supersedes);
    return { decision: saved.decision, replayed: true, stored: false };
  }

  private async replay(stored: Decision, storedFingerprint: string, fingerprint: string, supersedes: string, sink: VoteSink) {
    checkSameSuggestion(storedFingerprint, fingerprint, stored.requestId);
    checkSameSupersedes(stored, supersedes);
    // A review stored by a call that ended before it marked the old decision: finish the job.
    if (stored.supersedes) await this.markSuperseded(stored.supersedes, stored);
    for (const vote of stored.votes) await sink(vote, stored.id);
    return { decision: stored, replayed: true, stored: false };
  }

  /**
   * Marks `oldId` superseded by `by` if it is still a pending decision of the same submitter (it
   * may have been approved, rejected or expired since the check before the review: then it stays so).
   */
  private async markSuperseded(oldId: string, by: Decision): Promise<void> {
    await this.changeLifecycle(oldId, (old) => {
      if (old.status !== "pending" || old.submittedBy !== by.submittedBy) return undefined;
      return supersedeChange(old, by.id);
    });
  }

  /**
   * Reads a decision with its revision, asks `decide` what to write, and writes it only if nothing
   * changed in between (compare-and-set), trying again when another change won the race. `decide`
   * answers undefined to write nothing. Answers the decision as written or as it was left.
   */
  private async changeLifecycle(
    id: string,
    decide: (decision: Decision) => LifecycleChange | undefined,
  ): Promise<Decision> {
    for (let attempt = 0; attempt < MAX_LIFECYCLE_ATTEMPTS; attempt++) {
      if (attempt > 0) await backoff(attempt);
      const read = await this.store.getDecisionForUpdate(id);
      if (!read) throw new NotFoundError(`decision ${JSON.stringify(id)} not found`);
      const change = decide(read.decision);
      if (!change) return read.decision;
      const result = await this.store.updateLifecycle(id, read.revision, change);
      if (result.kind === "applied") return result.decision;
      if (result.kind === "not_found") throw new NotFoundError(`decision ${JSON.stringify(id)} not found`);
      // "expired": the next read shows it expired, and `decide` judges that; "conflict": read again.
      if (result.kind === "expired") continue;
    }
    throw new UnavailableError(`decision ${id} is changing too often to take this change now; try again`);
  }

  /**
   * Gives a person's verdict on a pending decision (SPEC section 9), by compare-and-set so that
   * verdicts racing on one decision, on one replica or several, are each counted exactly once.
   */
  async resolve(request: ResolveRequest): Promise<Decision> {
    const { decisionId, verdict, comment, requestId, principal } = request;
    // The transport checks roles before any handler runs; the use case holds itself to the same rule.
    if (!principal.roles.has("approver")) throw new PermissionDeniedError("ResolveDecision needs the role approver");
    checkString("decision_id", decisionId, LIMITS.idBytes, true);
    checkString("comment", comment, LIMITS.commentBytes);
    checkString("request_id", requestId, LIMITS.requestIdBytes);
    const input = { by: principal.name, verdict, comment, requestId, at: this.now() };
    checkVerdictInput(input);
    return this.changeLifecycle(decisionId, (decision) => {
      const effect = applyVerdict(decision, input, this.now());
      return effect.kind === "change" ? effect.change : undefined;
    });
  }

  /**
   * Follows one decision (AwaitDecision): subscribes first, then reads it, so that no change is
   * missed between the two; tells `listener` the current state, then each later state, and stops
   * after a final status. A state is told only if it is further along than the last one told (more
   * verdicts, or final): a store whose events are read after the fact may deliver one state twice.
   */
  await(decisionId: string, listener: AwaitListener): Unsubscribe {
    checkString("decision_id", decisionId, LIMITS.idBytes, true);
    let done = false;
    /**
     * How far along the last state told was (not the decision itself: thousands of awaits each
     * holding a whole decision cost kilobytes apiece, for two facts).
     */
    let told: Progress | undefined;
    /** Updates that arrive while the first read is under way, told after it. */
    let early: Decision[] | undefined = [];
    const stop = () => {
      done = true;
      unsubscribe();
    };
    const tell = (d: Decision) => {
      if (done || (told && !furtherAlong(d, told))) return;
      told = progressOf(d);
      if (isFinal(d.status)) stop();
      listener.onDecision(d);
    };
    const fail = (err: Error) => {
      if (done) return;
      stop();
      listener.onError(err);
    };
    const unsubscribe = this.store.subscribe(
      () => {},
      fail,
      () => {
        this.getDecision(decisionId).then(
          (d) => {
            const waiting = early ?? [];
            early = undefined;
            tell(d);
            for (const u of waiting) tell(u);
          },
          (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
        );
      },
      (d) => {
        if (d.id !== decisionId || done) return;
        if (early) early.push(d);
        else tell(d);
      },
    );
    return stop;
  }

  async getDecision(id: string): Promise<Decision> {
    checkString("id", id, LIMITS.idBytes, true);
    const decision = await this.store.getDecision(id);
    if (!decision) throw new NotFoundError(`decision ${JSON.stringify(id)} not found`);
    return decision;
  }

  async listDecisions(filter: DecisionQuery, requestedPageSize: number, pageToken: string): Promise<TokenPage<Decision>> {
    checkString("suggestion_id", filter.suggestionId, LIMITS.idBytes);
    const limit = pageSize("page_size", requestedPageSize);
    // The scope of tokens issued before statuses existed stays what it was (newest first, any
    // status), so that a token issued by an older replica still works during a rolling upgrade.
    let scope = `decisions:${filter.decisionType ?? ""}:${filter.suggestionId}`;
    if (filter.status || filter.oldestFirst) scope += `:${JSON.stringify([filter.status ?? "", filter.oldestFirst ? "asc" : "desc"])}`;
    const cursor = this.tokens.read(scope, pageToken);
    const page = await this.store.listDecisions(
      { decisionType: filter.decisionType, suggestionId: filter.suggestionId || undefined, status: filter.status },
      // Bounded in bytes as well as in items: a page of decisions at the size limits ends early.
      { limit, cursor, maxBytes: LIMITS.pageBytes, oldestFirst: filter.oldestFirst },
    );
    return { items: page.items, nextPageToken: this.tokens.issue(scope, page.next) };
  }

  async recordOutcome(request: OutcomeRequest): Promise<Decision> {
    const { decisionId, outcome, notes, lessons, requestId, principal } = request;
    // The transport checks the roles before any handler runs; this holds the use case to the same
    // rule for any other caller, before anything else is looked at.
    const scope = outcomeScope(principal);
    if (scope.kind === "none") throw new PermissionDeniedError("RecordOutcome needs the role agent or operator");
    checkString("decision_id", decisionId, LIMITS.idBytes, true);
    if (outcome === undefined) throw new InvalidArgumentError("outcome", "must be set (success, failure or partial)");
    checkString("notes", notes, LIMITS.notesBytes);
    checkString("lessons", lessons, LIMITS.notesBytes);
    checkString("request_id", requestId, LIMITS.requestIdBytes);
    const fingerprint = outcomeFingerprint(outcome, notes, lessons);
    // The store checks the submitter in the step that records (one Redis script): no window between
    // check and write, and no extra read of the decision. Reading it first would be safe too (a
    // decision's submitter never changes, and nothing is deleted), at the cost of a round trip.
    const result = await this.store.recordOutcome(decisionId, {
      outcome,
      notes,
      lessons,
      at: this.now(),
      requestId,
      fingerprint,
      recordedBy: principal.name,
      onlyIfSubmittedBy: scope.kind === "own" ? scope.submittedBy : undefined,
    });
    if (result.kind === "not_found") throw new NotFoundError(`decision ${JSON.stringify(decisionId)} not found`);
    if (result.kind === "other_submitter") {
      throw new PermissionDeniedError(
        `an agent may record outcomes only on decisions it submitted: ${decisionId} was submitted by ` +
          `${JSON.stringify(result.submittedBy)}, not ${JSON.stringify(principal.name)} (the role operator may record on any)`,
      );
    }
    if (result.kind === "not_approved") {
      throw new FailedPreconditionError(
        `decision ${decisionId} is ${statusName(result.status)}; an outcome can be recorded only on an APPROVED decision ` +
          `(it is what happened when an approved change was carried out)`,
      );
    }
    if (result.kind === "exists" && result.fingerprint !== fingerprint) {
      throw new FailedPreconditionError(
        `request_id ${JSON.stringify(requestId)} was already used to record a different outcome of ${decisionId}; use a new request_id`,
      );
    }
    return result.decision;
  }

  summary(): Promise<Summary> {
    return this.store.summary();
  }

  async listLessons(requestedPageSize: number, pageToken: string): Promise<TokenPage<Lesson>> {
    const limit = pageSize("page_size", requestedPageSize);
    const cursor = this.tokens.read("lessons", pageToken);
    const page = await this.store.listLessons({ limit, cursor, maxBytes: LIMITS.pageBytes });
    return { items: page.items, nextPageToken: this.tokens.issue("lessons", page.next) };
  }

  reviewers(): ReviewerProfile[] {
    return reviewerProfiles(this.policy);
  }

  /**
   * Calls `onReview` for each review stored from now on whose decision passes the filter;
   * `onLive` once nothing stored from then on can be missed. With `onUpdate`, also calls it with a
   * decision that passes the filter each time its status, verdicts or outcome change.
   */
  watch(
    decisionType: DecisionType | undefined,
    onReview: (decision: Decision) => void,
    onError: (err: Error) => void,
    onLive: () => void,
    onUpdate?: (decision: Decision) => void,
  ): Unsubscribe {
    const passes = (d: Decision) => decisionType === undefined || d.decision === decisionType;
    return this.store.subscribe(
      (d) => {
        if (passes(d)) onReview(d);
      },
      onError,
      onLive,
      onUpdate &&
        ((d) => {
          if (passes(d)) onUpdate(d);
        }),
    );
  }
}

/**
 * Whether `d` is a later state of the same decision than `than`: before a final status, every
 * change adds a verdict or makes the status final, so (verdicts, final) only ever grows.
 */
/** How far along a decision is, as an await compares states: verdicts given, and whether it is final. */
interface Progress {
  verdicts: number;
  final: boolean;
}

function progressOf(d: Decision): Progress {
  return { verdicts: d.verdicts.length, final: isFinal(d.status) };
}

function furtherAlong(d: Decision, than: Progress): boolean {
  if (d.verdicts.length !== than.verdicts) return d.verdicts.length > than.verdicts;
  return isFinal(d.status) && !than.final;
}

/** A short, jittered wait before trying a compare-and-set again: racing writers spread out. */
function backoff(attempt: number): Promise<void> {
  const ms = Math.random() * Math.min(50, 2 ** Math.min(attempt, 6));
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function checkSameSupersedes(stored: Decision, supersedes: string): void {
  if (stored.supersedes !== supersedes) {
    throw new FailedPreconditionError(
      `request_id ${JSON.stringify(stored.requestId)} was already used for a review that supersedes ` +
        `${JSON.stringify(stored.supersedes)}, not ${JSON.stringify(supersedes)}; use a new request_id`,
    );
  }
}

function checkSameSuggestion(storedFingerprint: string, fingerprint: string, requestId: string): void {
  if (storedFingerprint !== fingerprint) {
    throw new FailedPreconditionError(
      `request_id ${JSON.stringify(requestId)} was already used for a different suggestion; use a new request_id`,
    );
  }
}
