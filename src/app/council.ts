/**
 * The council's use cases: review a suggestion (streaming each vote as it is cast, storing the
 * decision, replaying idempotent repeats), read and list decisions, record outcomes, summarise,
 * list lessons, and watch new reviews. It knows the domain and the Store interface, not gRPC.
 */
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from "../domain/errors.js";
import { decisionIdForRequest, newDecisionId, outcomeFingerprint, suggestionFingerprint } from "../domain/identity.js";
import { LIMITS } from "../domain/limits.js";
import type { Decision, DecisionType, Lesson, Outcome, ReviewerProfile, ReviewerRole, Suggestion, Summary, Vote } from "../domain/model.js";
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
}

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
    const fingerprint = suggestionFingerprint(suggestion);

    if (requestId) {
      const earlier = await this.store.findByRequestId(submittedBy, requestId);
      if (earlier) return this.replay(earlier.decision, earlier.fingerprint, fingerprint, sink);
    }

    const id = requestId ? decisionIdForRequest(submittedBy, requestId) : newDecisionId();
    const votes: Vote[] = [];
    for (const [index, reviewer] of this.policy.reviewers.entries()) {
      await this.options.beforeVote?.(reviewer.role, index);
      const vote = castVote(this.policy, reviewer, suggestion, this.now());
      votes.push(vote);
      await sink(vote, id);
    }
    const decision: Decision = {
      id,
      suggestionId: suggestion.id,
      ...conclude(this.policy, suggestion, votes),
      votes,
      decidedAt: this.now(),
      implementedAt: undefined,
      outcome: undefined,
      outcomeNotes: "",
      lessonsLearned: "",
      policyVersion: this.policy.version,
      suggestion,
      requestId,
      submittedBy,
      outcomeRecordedBy: "",
    };
    if (dryRun) return { decision, replayed: false, stored: false };

    const saved = await this.store.saveReview(decision, fingerprint);
    if (saved.kind === "stored") return { decision: saved.decision, replayed: false, stored: true };
    // Another call with the same request_id stored first: its decision (same id) is the answer.
    checkSameSuggestion(saved.fingerprint, fingerprint, requestId);
    return { decision: saved.decision, replayed: true, stored: false };
  }

  private async replay(stored: Decision, storedFingerprint: string, fingerprint: string, sink: VoteSink) {
    checkSameSuggestion(storedFingerprint, fingerprint, stored.requestId);
    for (const vote of stored.votes) await sink(vote, stored.id);
    return { decision: stored, replayed: true, stored: false };
  }

  async getDecision(id: string): Promise<Decision> {
    checkString("id", id, LIMITS.idBytes, true);
    const decision = await this.store.getDecision(id);
    if (!decision) throw new NotFoundError(`decision ${JSON.stringify(id)} not found`);
    return decision;
  }

  async listDecisions(
    filter: { decisionType?: DecisionType; suggestionId: string },
    requestedPageSize: number,
    pageToken: string,
  ): Promise<TokenPage<Decision>> {
    checkString("suggestion_id", filter.suggestionId, LIMITS.idBytes);
    const limit = pageSize("page_size", requestedPageSize);
    const scope = `decisions:${filter.decisionType ?? ""}:${filter.suggestionId}`;
    const cursor = this.tokens.read(scope, pageToken);
    const page = await this.store.listDecisions(
      { decisionType: filter.decisionType, suggestionId: filter.suggestionId || undefined },
      // Bounded in bytes as well as in items: a page of decisions at the size limits ends early.
      { limit, cursor, maxBytes: LIMITS.pageBytes },
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
   * `onLive` once nothing stored from then on can be missed.
   */
  watch(
    decisionType: DecisionType | undefined,
    onReview: (decision: Decision) => void,
    onError: (err: Error) => void,
    onLive: () => void,
  ): Unsubscribe {
    return this.store.subscribe(
      (d) => {
        if (decisionType === undefined || d.decision === decisionType) onReview(d);
      },
      onError,
      onLive,
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
