/**
 * The council's use cases: review a suggestion (streaming each vote as it is cast, storing the
 * decision, replaying idempotent repeats), read and list decisions, record outcomes, summarise,
 * list lessons, and watch new reviews. It knows the domain and the Store interface, not gRPC.
 */
import { randomUUID } from "node:crypto";
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
  type ExternalSettings,
  type Lesson,
  type Outcome,
  type ReviewerProfile,
  type ReviewerRole,
  type Suggestion,
  type Summary,
  type VerdictType,
  type Vote,
} from "../domain/model.js";
import { causeLabel, externalVote, fallbackVote } from "../domain/external.js";
import { externalSettings, reviewerProfiles, type Policy, type ReviewerRules } from "../domain/policy.js";
import { outcomeScope, type Principal } from "../domain/principal.js";
import { castVote, conclude } from "../domain/rules.js";
import { checkString, pageSize, validateSuggestion } from "../domain/validate.js";
import type { Store, Unsubscribe } from "../store/store.js";
import { PageTokens } from "./page_token.js";
import { MemoryReviewerHub } from "./reviewer_hub_memory.js";
import type { ReviewerConnection, ReviewerHub, ReviewerSession } from "./reviewer_hub.js";

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
  /**
   * How external reviewers are reached (SPEC section 11): the Redis hub when replicas share a
   * store; default: this process only.
   */
  reviewerHub?: ReviewerHub;
}

/** Told of each external vote asked for: its role, what came of it (`vote` or a failure cause label), and how long it took. */
export type ExternalVoteObserver = (role: ReviewerRole, result: string, seconds: number) => void;

/**
 * How long past its largest external timeout a review holds its claim on asking the reviewers: a
 * repeat that arrives meanwhile waits this long at most for the decision before it is UNAVAILABLE.
 */
const CLAIM_MARGIN_MS = 10_000;

/** A page of a listing, with the opaque token of the next page (empty on the last). */
export interface TokenPage<T> {
  items: T[];
  nextPageToken: string;
}

export class Council {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly now: () => Date;
  private readonly tokens: PageTokens;
  private readonly hub: ReviewerHub;
  /** The external reviewers' settings, in voting order (undefined for a built-in one). */
  private readonly externals: ReadonlyArray<ExternalSettings | undefined>;
  /** The largest external timeout; 0 when every reviewer is built in. */
  private readonly longestWaitMs: number;
  private observeExternal: ExternalVoteObserver = () => {};

  constructor(
    private readonly store: Store,
    readonly policy: Policy,
    private readonly options: CouncilOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.hub = options.reviewerHub ?? new MemoryReviewerHub();
    this.externals = policy.reviewers.map(externalSettings);
    this.longestWaitMs = Math.max(0, ...this.externals.map((e) => e?.timeoutMs ?? 0));
    // Signed with the store's key, so that a token is good on every replica of the keyspace.
    this.tokens = new PageTokens(store.pageTokenKey);
  }

  /** Set by the server that serves the council: where external votes are counted (metrics). */
  onExternalVote(observer: ExternalVoteObserver): void {
    this.observeExternal = observer;
  }

  /** Closes the reviewer hub (at shutdown, after the reviews in flight). */
  closeReviewers(): Promise<void> {
    return this.hub.close();
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
    if (this.longestWaitMs === 0) return this.decide(request, id, fingerprint, await this.castBuiltIn(suggestion, id, sink));
    // Repeats of one request that arrive together ask the reviewers once: the others wait for the
    // decision the first stores and replay it.
    const claimed = !requestId || (await this.hub.claim(id, this.longestWaitMs + CLAIM_MARGIN_MS));
    if (!claimed) {
      const stored = await this.waitForStored(submittedBy, requestId, id, this.longestWaitMs + CLAIM_MARGIN_MS);
      return this.replay(stored.decision, stored.fingerprint, fingerprint, supersedes, sink);
    }
    let result: ReviewResult | undefined;
    try {
      result = await this.decide(request, id, fingerprint, await this.castAll(suggestion, id, dryRun, sink));
      return result;
    } finally {
      if (requestId && !result?.stored) await this.hub.release(id).catch(() => {});
    }
  }

  /** Every reviewer built in: each votes in turn, and its vote is sent before the next one votes. */
  private async castBuiltIn(suggestion: Suggestion, id: string, sink: VoteSink): Promise<Vote[]> {
    const votes: Vote[] = [];
    for (const [index, reviewer] of this.policy.reviewers.entries()) {
      await this.options.beforeVote?.(reviewer.role, index);
      const vote = castVote(this.policy, reviewer, suggestion, this.now());
      votes.push(vote);
      await sink(vote, id);
    }
    return votes;
  }

  /**
   * Asks every reviewer at once (SPEC section 11): the external ones through the hub, the built-in
   * ones in turn meanwhile. Each vote is sent as it is cast (one at a time, in arrival order); the
   * answer keeps reviewer order. Ends once every external vote or its fallback is cast: within the
   * largest external timeout.
   */
  private async castAll(suggestion: Suggestion, id: string, dryRun: boolean, sink: VoteSink): Promise<Vote[]> {
    const votes: Vote[] = new Array(this.policy.reviewers.length);
    let sent = Promise.resolve();
    const cast = (index: number, vote: Vote) => {
      votes[index] = vote;
      sent = sent.then(() => sink(vote, id));
      return sent;
    };
    const asked = this.policy.reviewers.map((reviewer, index) => {
      const settings = this.externals[index];
      return settings && this.askExternal(reviewer, settings, suggestion, id, dryRun).then((vote) => cast(index, vote));
    });
    for (const [index, reviewer] of this.policy.reviewers.entries()) {
      if (this.externals[index]) continue;
      await this.options.beforeVote?.(reviewer.role, index);
      await cast(index, castVote(this.policy, reviewer, suggestion, this.now()));
    }
    await Promise.all(asked);
    await sent;
    return votes;
  }

  /** One external reviewer's vote, or its failure policy's when none counts by the deadline. */
  private async askExternal(
    reviewer: ReviewerRules,
    settings: ExternalSettings,
    suggestion: Suggestion,
    decisionId: string,
    dryRun: boolean,
  ): Promise<Vote> {
    const started = performance.now();
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), settings.timeoutMs);
    let answer;
    try {
      answer = await this.hub.ask(
        {
          taskId: `task-${randomUUID()}`,
          decisionId,
          suggestion,
          role: reviewer.role,
          deadline: new Date(this.now().getTime() + settings.timeoutMs),
          dryRun,
        },
        timeout.signal,
      );
    } catch {
      // The hub could not reach the store: as for a reviewer that is gone, the failure policy counts.
      answer = { kind: "failed", why: "reviewer disconnected" } as const;
    } finally {
      clearTimeout(timer);
    }
    this.observeExternal(reviewer.role, answer.kind === "vote" ? "vote" : causeLabel(answer.why), (performance.now() - started) / 1000);
    if (answer.kind === "vote") return externalVote(reviewer.role, answer.vote, answer.castBy, this.now());
    return fallbackVote(this.policy, reviewer, settings, suggestion, answer.why, this.now());
  }

  /**
   * Waits (at most `ms`) for the decision another call is reviewing under the same request_id to
   * be stored: subscribes first, then looks, so that a save between the two is not missed.
   */
  private waitForStored(submittedBy: string, requestId: string, id: string, ms: number): Promise<{ decision: Decision; fingerprint: string }> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (result: { decision: Decision; fingerprint: string } | Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsubscribe();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const look = () =>
        this.store.findByRequestId(submittedBy, requestId).then(
          (found) => found && finish(found),
          (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
        );
      const timer = setTimeout(
        () => finish(new UnavailableError(`request_id ${JSON.stringify(requestId)} is still being reviewed by another call; try again`)),
        ms,
      );
      const unsubscribe = this.store.subscribe(
        (d) => {
          if (d.id === id) void look();
        },
        (err) => finish(err),
        () => void look(),
      );
    });
  }

  private async decide(request: ReviewRequest, id: string, fingerprint: string, votes: Vote[]): Promise<ReviewResult> {
    const { suggestion, dryRun } = request;
    const submittedBy = request.principal.name;
    const requestId = dryRun ? "" : request.requestId;
    const supersedes = request.supersedes ?? "";
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

  /** The reviewers of the policy, with how many agents serve each external role across replicas. */
  async reviewers(): Promise<ReviewerProfile[]> {
    return reviewerProfiles(this.policy, this.longestWaitMs === 0 ? {} : await this.hub.connected());
  }

  /** A reviewer agent's stream (ServeReviews): the roles it names must be external roles of the policy. */
  serveReviews(reviewer: ReviewerConnection): ReviewerSession {
    const external = new Set(this.policy.reviewers.filter((_, i) => this.externals[i]).map((r) => r.role));
    if (reviewer.roles.length === 0) throw new InvalidArgumentError("hello.roles", "must name at least one role");
    for (const role of reviewer.roles) {
      if (!external.has(role)) {
        throw new FailedPreconditionError(
          `role ${role} is not external in policy ${this.policy.version}` +
            (external.size ? ` (external: ${[...external].join(", ")})` : " (it has no external role)"),
        );
      }
    }
    return this.hub.connect(reviewer);
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
