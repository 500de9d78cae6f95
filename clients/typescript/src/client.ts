/**
 * The hand-written layer over the generated grpc-js client: connect once, then one call per task.
 *
 * The same shape as the Python and Go clients (the repository README compares them):
 * - every call takes `{ signal, timeoutMs }`; `timeoutMs` is one deadline for the whole call,
 *   retries included (30 s for unary calls, 60 s for a review; none for a watch or an await);
 * - only UNAVAILABLE is retried, and only for calls safe to repeat: reads, and the writes that
 *   carry a request_id (review, recordOutcome, resolve), generated once and reused by every
 *   attempt so that a retry never makes a second decision or counts a verdict twice; 4 attempts
 *   in all, backoff 100 ms doubling to 2 s with full jitter, never past the deadline;
 * - cancelling (aborting `signal`, or `break` out of an iteration) cancels the call on the
 *   server; an iteration then ends without an error, a promise rejects with a CancelledError;
 * - every failure is a CouncilError subclass per status family (errors.ts).
 *
 * `guard` is the one call an agent makes before it acts: review, wait for people if the decision
 * is pending, and answer allowed or not, with why.
 */
import { randomUUID } from "node:crypto";
import { ChannelCredentials, credentials, Metadata, status, type ClientReadableStream } from "@grpc/grpc-js";
import {
  CouncilServiceClient,
  type AwaitDecisionResponse,
  type GetSummaryResponse,
  type ListReviewersResponse,
  type ReviewSuggestionResponse,
  type WatchDecisionsResponse,
} from "./gen/council/v1/council_service.js";
import {
  Suggestion,
  VerdictType,
  type Decision,
  type DecisionStatus,
  type DecisionType,
  type Lesson,
  type Outcome,
  type Vote,
} from "./gen/council/v1/review.js";
import { fullJitter, sleep } from "./backoff.js";
import { CancelledError, CouncilError, DeadlineExceededError, InternalError } from "./errors.js";
import { changed, guardVerdict, isFinal, type GuardVerdict } from "./guard.js";
import { Reviewer, type ReviewerOptions } from "./reviewer.js";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The longest wait before the second attempt; it doubles for each later one. */
  initialBackoffMs: number;
  /** The cap of that doubling. Each wait is drawn at random below it ("full jitter"). */
  maxBackoffMs: number;
}

/** The deadline of a unary call, retries included, unless `ConnectOptions.timeoutMs` or the call's own `timeoutMs` says otherwise. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** The deadline of a whole review (the stream of votes and the decision), retries included. */
export const DEFAULT_REVIEW_TIMEOUT_MS = 60_000;
/** Retries of UNAVAILABLE: 4 attempts in all, waits drawn below 100 ms, 200 ms, 400 ms (capped at 2 s). */
export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ attempts: 4, initialBackoffMs: 100, maxBackoffMs: 2000 });

/** TLS settings; every field is optional, and PEM may be given as a Buffer or a string. */
export interface TlsOptions {
  /** The certificates to trust (a private CA), instead of the system's roots. */
  rootCerts?: Buffer | string;
  /** mTLS: this client's certificate chain; give `privateKey` with it. */
  certChain?: Buffer | string;
  /** mTLS: the private key of `certChain`. */
  privateKey?: Buffer | string;
  /**
   * The name the server's certificate must carry, when it is not the host of the address (an IP
   * address, or an alias): also sent as the TLS server name (SNI).
   */
  serverName?: string;
}

export interface ConnectOptions {
  /**
   * Use TLS: `true` trusts the system roots; `{ rootCerts }` trusts a private CA; `certChain` and
   * `privateKey` add a client certificate (mTLS). Without it the channel is plaintext.
   */
  tls?: boolean | TlsOptions;
  /**
   * Sent as `authorization: Bearer <token>` on every call. Without `tls` it travels in clear
   * text: send one without TLS only on a trusted network.
   */
  token?: string;
  /** The deadline of each unary call, retries included, in ms (default DEFAULT_CALL_TIMEOUT_MS: 30 s). */
  timeoutMs?: number;
  /** The deadline of a whole review, retries included, in ms (default DEFAULT_REVIEW_TIMEOUT_MS: 60 s). */
  reviewTimeoutMs?: number;
  /** How UNAVAILABLE is retried (default DEFAULT_RETRY_POLICY). */
  retry?: Partial<RetryPolicy>;
}

/** A suggestion: id, title, risk and impact are required; the rest (e.g. `diff`, the change as a unified diff) defaults to empty. */
export type SuggestionInput = Partial<Suggestion> & Pick<Suggestion, "id" | "title" | "risk" | "impact">;

/** A deadline and a way to cancel: every call takes them. */
export interface CallOptions {
  /**
   * Aborting cancels the call, on the server too. A promise then rejects with a CancelledError;
   * an iteration (votes, a listing, a watch, an await) ends without an error.
   */
  signal?: AbortSignal;
  /**
   * The call's deadline, in ms from now, retries included: no attempt and no wait between two
   * runs past it. Defaults: DEFAULT_CALL_TIMEOUT_MS for unary calls (each page of a listing),
   * DEFAULT_REVIEW_TIMEOUT_MS for a review, none for a watch or an await.
   */
  timeoutMs?: number;
}

export interface ReviewOptions extends CallOptions {
  /** Idempotency key; generated when absent, and reused by every retry. */
  requestId?: string;
  /** Stream the votes and decision but store nothing. */
  dryRun?: boolean;
  /**
   * The id of a pending decision of yours that this review follows up (e.g. a DEFER answered with
   * more information): once this review is stored, that one becomes SUPERSEDED.
   */
  supersedes?: string;
}

/** Which decisions `listDecisions` returns, and how many per page. */
export interface DecisionFilter {
  decisionType?: DecisionType;
  suggestionId?: string;
  status?: DecisionStatus;
  oldestFirst?: boolean;
  pageSize?: number;
}

export interface OutcomeDetails extends CallOptions {
  notes?: string;
  lessons?: string;
  /** Idempotency key; generated when absent, and reused by every retry. */
  requestId?: string;
}

export interface WatchOptions extends CallOptions {
  /** Only decisions of this type (their votes too); every type by default. */
  decisionType?: DecisionType;
  /** Each review's votes before its decision. */
  includeVotes?: boolean;
  /** A stored decision again each time its status, verdicts or outcome change. */
  includeUpdates?: boolean;
  /** Called once, when the watch is live (as `Watch.ready` resolves). */
  onLive?: () => void;
}

/** A person's verdict: `"approve"`, `"reject"`, or the enum value. */
export type VerdictInput = VerdictType | "approve" | "reject";

export interface ResolveOptions extends CallOptions {
  /** Why; required to reject. */
  comment?: string;
  /** Idempotency key; generated when absent, and reused by every retry. */
  requestId?: string;
}

export interface GuardOptions {
  /** Called with each vote as it is cast (each reviewer once, even across retries). */
  onVote?: (vote: Vote) => void;
  /**
   * Called with the council's decision as soon as it is made (its `id` is what approvers need),
   * then again each time people change it while the guard waits (a verdict, the final status).
   */
  onDecision?: (decision: Decision) => void;
  /**
   * How long the whole guard may take, in ms: the review, then the wait for people (default
   * DEFAULT_GUARD_TIMEOUT_MS, 10 minutes). Past it, a pending decision gives a verdict with
   * `timedOut: true` (not allowed; not a rejection either).
   */
  timeoutMs?: number;
  /** Aborting cancels the guard: it rejects with a CancelledError. */
  signal?: AbortSignal;
  /** The review's idempotency key; generated when absent. */
  requestId?: string;
  /** A pending decision of yours that this review follows up (see ReviewOptions.supersedes). */
  supersedes?: string;
}

/** How long `guard` waits in all unless told otherwise: people take minutes, not milliseconds. */
export const DEFAULT_GUARD_TIMEOUT_MS = 600_000;

export type WatchEvent = { kind: "vote"; vote: Vote; decisionId: string; suggestionId: string } | { kind: "decision"; decision: Decision };

export function connect(address: string, options: ConnectOptions = {}): CouncilClient {
  return new CouncilClient(address, options);
}

/** Where a reviewer connects (as `connect` takes it) and what it serves. */
export interface ServeReviewsOptions extends ReviewerOptions, ConnectOptions {
  /** host:port of a Council server. */
  address: string;
}

/**
 * Serves external reviewer roles (SPEC section 11) on a channel of its own, closed when the
 * reviewer ends: the handler gets each task and returns the vote. The token must be a principal's
 * with the role reviewer. See reviewer.ts and the README's "Serving a reviewer role".
 *
 *     const reviewer = serveReviews({ address: "127.0.0.1:50051", token, roles: ["safety"], handler: async (task) => vote });
 *     await reviewer.connected;   // serving
 *     await reviewer.stop();      // or abort `signal`
 */
export function serveReviews(options: ServeReviewsOptions): Reviewer {
  const client = connect(options.address, options);
  try {
    const reviewer = client.serveReviews(options);
    void reviewer.done.catch(() => undefined).finally(() => client.close());
    return reviewer;
  } catch (err) {
    client.close();
    throw err;
  }
}

/** Waits `ms`, or less if `signal` aborts first. */
function verdictType(verdict: VerdictInput): VerdictType {
  if (verdict === "approve") return VerdictType.VERDICT_TYPE_APPROVE;
  if (verdict === "reject") return VerdictType.VERDICT_TYPE_REJECT;
  if (typeof verdict === "number") return verdict;
  throw new TypeError(`resolve: verdict must be "approve", "reject" or a VerdictType, not ${JSON.stringify(verdict)}`);
}

const pem = (value: Buffer | string | undefined) => (typeof value === "string" ? Buffer.from(value) : value);

function channelCredentials(tls: ConnectOptions["tls"]): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  if (tls === true) return credentials.createSsl();
  if (!tls.certChain !== !tls.privateKey) {
    throw new TypeError("connect: tls.certChain and tls.privateKey go together (mTLS needs both, plain TLS neither)");
  }
  return credentials.createSsl(pem(tls.rootCerts), pem(tls.privateKey), pem(tls.certChain));
}

/** The instant `timeoutMs` from now; a TypeError for a timeout that is not a finite number ≥ 0. */
function deadlineAfter(timeoutMs: number): Date {
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new TypeError(`timeoutMs must be a finite number of milliseconds ≥ 0, not ${String(timeoutMs)}`);
  }
  return new Date(Date.now() + timeoutMs);
}

/** Whether `err` is the CANCELLED that the caller's own cancelling caused (an iteration then ends quietly). */
const cancelledBy = (err: unknown, signal: AbortSignal | undefined) => err instanceof CancelledError && signal?.aborted === true;

export class CouncilClient {
  // `stub` keeps its name: the council CLI reads its channel for health checks (cli/health.ts).
  private readonly stub: CouncilServiceClient;
  private readonly retry: RetryPolicy;

  constructor(
    address: string,
    private readonly options: ConnectOptions = {},
  ) {
    const serverName = typeof options.tls === "object" ? options.tls.serverName : undefined;
    this.stub = new CouncilServiceClient(
      address,
      channelCredentials(options.tls),
      serverName === undefined ? {} : { "grpc.ssl_target_name_override": serverName },
    );
    this.retry = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    if (!(this.retry.attempts >= 1)) throw new TypeError("connect: retry.attempts must be at least 1");
  }

  close(): void {
    this.stub.close();
  }

  private metadata(): Metadata {
    const md = new Metadata();
    if (this.options.token) md.set("authorization", `Bearer ${this.options.token}`);
    return md;
  }

  /** The deadline of a unary call started now: the call's own timeout, or the client's, or 30 s. */
  private deadline(timeoutMs?: number): Date {
    return deadlineAfter(timeoutMs ?? this.options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
  }

  /**
   * Runs `attempt` until it succeeds, fails with anything but UNAVAILABLE, or attempts run out.
   * With `bounds`, it also stops once `signal` aborts (CancelledError), and never waits past
   * `deadline`: when the next wait would end past it, the last attempt's error is thrown.
   */
  async withRetry<T>(attempt: () => Promise<T>, bounds: { deadline?: Date; signal?: AbortSignal } = {}): Promise<T> {
    for (let n = 1; ; n++) {
      if (bounds.signal?.aborted) throw new CancelledError("the call was cancelled");
      try {
        return await attempt();
      } catch (err) {
        const e = CouncilError.from(err);
        if (!e.retryable || n >= this.retry.attempts) throw e;
        const backoff = this.backoff(n);
        if (bounds.deadline && Date.now() + backoff >= bounds.deadline.getTime()) throw e;
        await sleep(backoff, bounds.signal);
      }
    }
  }

  /** The wait after failed attempt `n` (from 1): at random below a bound that doubles each time, capped ("full jitter"). */
  private backoff(n: number): number {
    return fullJitter(n, this.retry.initialBackoffMs, this.retry.maxBackoffMs);
  }

  /** One attempt of a unary call, ending at `call.deadline` at the latest, cancelled when `call.signal` aborts. */
  private unary<Req, Res>(
    method: (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: unknown, res: Res) => void) => unknown,
    req: Req,
    call: { deadline: Date; signal?: AbortSignal },
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      if (call.signal?.aborted) {
        reject(new CancelledError("the call was cancelled"));
        return;
      }
      const abort = () => (pending as { cancel(): void }).cancel();
      const pending = method.call(this.stub, req, this.metadata(), { deadline: call.deadline }, (err, res) => {
        call.signal?.removeEventListener("abort", abort);
        if (err) reject(CouncilError.from(err));
        else resolve(res);
      });
      call.signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /** A unary call, retried (UNAVAILABLE) within one deadline: `options.timeoutMs`, or the client's. */
  private unaryCall<Req, Res>(
    method: (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: unknown, res: Res) => void) => unknown,
    req: Req,
    options: CallOptions,
  ): Promise<Res> {
    let deadline: Date;
    try {
      deadline = this.deadline(options.timeoutMs);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const bounds = { deadline, signal: options.signal };
    return this.withRetry(() => this.unary(method, req, bounds), bounds);
  }

  /**
   * Reviews a suggestion. Iterate the result for each vote as it is cast; `await review.decision`
   * for the stored decision (it also works without iterating). `timeoutMs` (default 60 s, or the
   * client's `reviewTimeoutMs`) bounds the whole review, retries included. Aborting `signal`, or
   * `break` out of the votes, cancels the review: the iteration ends, `decision` rejects with a
   * CancelledError.
   */
  review(suggestion: SuggestionInput, options: ReviewOptions = {}): Review {
    return this.startReview(suggestion, options);
  }

  /** A review; with `until` (ms since the epoch), it also ends by then, retries included. */
  private startReview(suggestion: SuggestionInput, options: ReviewOptions, until?: number): Review {
    const requestId = options.dryRun ? "" : (options.requestId ?? randomUUID());
    const request = {
      suggestion: Suggestion.fromPartial(suggestion),
      requestId,
      dryRun: options.dryRun ?? false,
      supersedes: options.supersedes ?? "",
    };
    const own = deadlineAfter(options.timeoutMs ?? this.options.reviewTimeoutMs ?? DEFAULT_REVIEW_TIMEOUT_MS);
    const deadline = until === undefined || own.getTime() <= until ? own : new Date(until);
    return new Review(requestId, options.signal, (sink, signal) =>
      this.withRetry(
        () => {
          sink.attempt();
          const call = this.stub.reviewSuggestion(request, this.metadata(), { deadline });
          const abort = () => call.cancel();
          signal.addEventListener("abort", abort, { once: true });
          return readStream(call, sink.event).finally(() => signal.removeEventListener("abort", abort));
        },
        { signal, deadline },
      ),
    );
  }

  getDecision(id: string, options: CallOptions = {}): Promise<Decision> {
    return this.unaryCall(this.stub.getDecision, { id }, options).then((r) => r.decision!);
  }

  /**
   * Every decision matching the filter, newest first (`oldestFirst`: oldest first), fetching page
   * after page; `timeoutMs` bounds each page's request, retries included. The approvers' queue:
   * `{ status: DecisionStatus.DECISION_STATUS_PENDING, oldestFirst: true }`.
   */
  async *listDecisions(filter: DecisionFilter & CallOptions = {}): AsyncGenerator<Decision> {
    let pageToken = "";
    do {
      if (filter.signal?.aborted) return;
      const request = {
        decisionType: filter.decisionType ?? 0,
        suggestionId: filter.suggestionId ?? "",
        pageSize: filter.pageSize ?? 100,
        pageToken,
        status: filter.status ?? 0,
        oldestFirst: filter.oldestFirst ?? false,
      };
      const page = await this.unaryCall(this.stub.listDecisions, request, filter).catch((err: unknown) => {
        if (cancelledBy(err, filter.signal)) return undefined;
        throw err;
      });
      if (!page) return;
      yield* page.decisions;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Records an outcome (only an APPROVED decision takes one: FailedPreconditionError otherwise).
   * It carries a request_id (yours, or a generated one) that every retry reuses, so a retry after
   * a lost reply does not append a second lesson.
   */
  recordOutcome(decisionId: string, outcome: Outcome, details: OutcomeDetails = {}): Promise<Decision> {
    const request = {
      decisionId,
      outcome,
      notes: details.notes ?? "",
      lessons: details.lessons ?? "",
      requestId: details.requestId ?? randomUUID(),
    };
    return this.unaryCall(this.stub.recordOutcome, request, details).then((r) => r.decision!);
  }

  summary(options: CallOptions = {}): Promise<GetSummaryResponse> {
    return this.unaryCall(this.stub.getSummary, {}, options);
  }

  /** Every lesson, newest first, fetching page after page; `timeoutMs` bounds each page's request. */
  async *lessons(options: { pageSize?: number } & CallOptions = {}): AsyncGenerator<Lesson> {
    let pageToken = "";
    do {
      if (options.signal?.aborted) return;
      const request = { pageSize: options.pageSize ?? 100, pageToken };
      const page = await this.unaryCall(this.stub.listLessons, request, options).catch((err: unknown) => {
        if (cancelledBy(err, options.signal)) return undefined;
        throw err;
      });
      if (!page) return;
      yield* page.lessons;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  reviewers(options: CallOptions = {}): Promise<ListReviewersResponse> {
    return this.unaryCall(this.stub.listReviewers, {}, options);
  }

  /**
   * Serves external reviewer roles on this client's channel, with its token (a principal with the
   * role reviewer): see `serveReviews`. The reviewer runs until `stop()`, its signal, or an error
   * of configuration: stop it before closing the client.
   */
  serveReviews(options: ReviewerOptions): Reviewer {
    return new Reviewer(() => this.stub.serveReviews(this.metadata()), options);
  }

  /**
   * Gives your verdict on a pending decision (the caller needs the role approver, and may not
   * judge a decision it submitted): `"approve"`, or `"reject"` with a `comment` (required). One
   * rejection rejects; approvals from `approvalsRequired` distinct principals approve. Returns the
   * decision with the verdict counted. A request_id (yours, or a generated one) goes with every
   * retry (UNAVAILABLE only), so a retry after a lost reply returns the same answer. A decision
   * that is not pending: FailedPreconditionError; a reject without a comment:
   * InvalidArgumentError with `field` "comment".
   */
  resolve(decisionId: string, verdict: VerdictInput, options: ResolveOptions = {}): Promise<Decision> {
    const request = {
      decisionId,
      verdict: verdictType(verdict),
      comment: options.comment ?? "",
      requestId: options.requestId ?? randomUUID(),
    };
    return this.unaryCall(this.stub.resolveDecision, request, options).then((r) => r.decision!);
  }

  /**
   * The states of a decision as people decide it: the current one at once, then one per change
   * (a verdict, the status), ending after a final status (APPROVED, REJECTED, EXPIRED,
   * SUPERSEDED). `timeoutMs` bounds the whole wait (none by default: the decision's expiry ends
   * it): past it the iteration throws a DeadlineExceededError. Aborting `signal`, or breaking out
   * of the loop, cancels the call and ends the iteration without an error. UNAVAILABLE (a replica
   * shutting down) is retried by awaiting again, which resumes; a state already yielded is not
   * yielded twice.
   */
  awaitDecision(decisionId: string, options: CallOptions = {}): AsyncGenerator<Decision> {
    const deadline = options.timeoutMs === undefined ? undefined : deadlineAfter(options.timeoutMs);
    return this.awaitStates(decisionId, { deadline, signal: options.signal });
  }

  private async *awaitStates(
    decisionId: string,
    options: { deadline?: Date; signal?: AbortSignal; since?: Decision },
  ): AsyncGenerator<Decision> {
    const { deadline, signal } = options;
    let last = options.since;
    let failures = 0;
    for (;;) {
      if (signal?.aborted) return;
      const call = this.stub.awaitDecision({ decisionId }, this.metadata(), deadline ? { deadline } : {});
      const abort = () => call.cancel();
      signal?.addEventListener("abort", abort, { once: true });
      try {
        for await (const message of call as AsyncIterable<AwaitDecisionResponse>) {
          const decision = message.decision;
          if (!decision) continue;
          failures = 0;
          if (!last || changed(last, decision)) {
            last = decision;
            yield decision;
          }
          if (isFinal(decision)) return;
        }
        throw new InternalError("the await stream ended before the decision reached a final status");
      } catch (err) {
        const e = CouncilError.from(err);
        if (e.code === status.CANCELLED && signal?.aborted) return;
        failures += 1;
        if (!e.retryable || failures >= this.retry.attempts) throw e;
        const backoff = this.backoff(failures);
        if (deadline && Date.now() + backoff >= deadline.getTime()) throw e;
        await sleep(backoff, signal);
      } finally {
        signal?.removeEventListener("abort", abort);
        call.cancel();
      }
    }
  }

  /**
   * The one call an agent makes before it acts: submits `suggestion`, streams the votes to
   * `onVote`, and if the decision waits for people (HUMAN_APPROVE, DEFER, ESCALATE) waits for their
   * verdict, reporting each change to `onDecision`. Resolves with whether the agent may act and
   * why: `allowed` only when the decision ended APPROVED. A decision still pending at `timeoutMs`
   * (default 10 minutes, for the whole guard) resolves with `timedOut: true`; a review that could
   * not be made in that time (or in the review's own 60 s) rejects (DeadlineExceededError), as
   * does any other failure (a CouncilError); aborting `signal` rejects with a CancelledError.
   *
   *     const verdict = await council.guard(suggestion, { onVote, timeoutMs: 60_000 });
   *     if (!verdict.allowed) throw new Error(`not allowed: ${verdict.reason}`);
   */
  async guard(suggestion: SuggestionInput, options: GuardOptions = {}): Promise<GuardVerdict> {
    const started = Date.now();
    const until = deadlineAfter(options.timeoutMs ?? DEFAULT_GUARD_TIMEOUT_MS).getTime();
    const { signal } = options;
    const review = this.startReview(suggestion, { requestId: options.requestId, supersedes: options.supersedes, signal }, until);
    for await (const vote of review) options.onVote?.(vote);
    let decision = await review.decision;
    options.onDecision?.(decision);
    if (isFinal(decision)) return guardVerdict(decision);
    try {
      for await (const state of this.awaitStates(decision.id, { deadline: new Date(until), signal, since: decision })) {
        decision = state;
        options.onDecision?.(state);
      }
    } catch (err) {
      // The only deadline of the wait is the guard's own: the decision is still pending.
      if (err instanceof DeadlineExceededError) return guardVerdict(decision, Date.now() - started);
      throw err;
    }
    if (!isFinal(decision)) throw new CancelledError("the guard was aborted while the decision was pending");
    return guardVerdict(decision);
  }

  /**
   * Every review stored from the moment the watch is live (`await watch.ready`, or `onLive`): its
   * votes first if `includeVotes`; with `includeUpdates`, a stored decision again each time its
   * status, verdicts or outcome change. The call starts at once. Aborting `signal`, or `break`
   * out of the iteration, ends it without an error; the server ending it (UNAVAILABLE at
   * shutdown, RESOURCE_EXHAUSTED if we fell behind) throws a CouncilError. No deadline unless
   * `timeoutMs` (then a DeadlineExceededError). To resume, watch again: the new watch is live from
   * its own `ready` on, and reviews stored between the two are not replayed (list them with
   * `listDecisions` if they matter).
   */
  watch(options: WatchOptions = {}): Watch {
    const deadline = options.timeoutMs === undefined ? undefined : deadlineAfter(options.timeoutMs);
    const request = {
      decisionType: options.decisionType ?? 0,
      includeVotes: options.includeVotes ?? false,
      includeUpdates: options.includeUpdates ?? false,
    };
    return new Watch(() => this.stub.watchDecisions(request, this.metadata(), deadline ? { deadline } : {}), options);
  }
}

function toEvent(m: ReviewSuggestionResponse | WatchDecisionsResponse): WatchEvent | undefined {
  if (m.event?.$case === "vote") return { kind: "vote", vote: m.event.value, decisionId: m.decisionId, suggestionId: m.suggestionId };
  if (m.event?.$case === "decision") return { kind: "decision", decision: m.event.value };
  return undefined;
}

/** Reads one review stream; resolves with the decision, or rejects with the stream's status. */
function readStream(call: ClientReadableStream<ReviewSuggestionResponse>, onEvent: (e: WatchEvent) => void): Promise<Decision> {
  return new Promise((resolve, reject) => {
    let decision: Decision | undefined;
    call.on("data", (m: ReviewSuggestionResponse) => {
      const event = toEvent(m);
      if (!event) return;
      if (event.kind === "decision") decision = event.decision;
      onEvent(event);
    });
    call.on("error", (err) => reject(CouncilError.from(err)));
    call.on("end", () => (decision ? resolve(decision) : reject(new InternalError("the review stream ended without a decision"))));
  });
}

/**
 * One review in progress: an async iterable of votes as they arrive, and the decision. Votes seen
 * on an attempt that failed are not repeated when the retry replays them. Leaving the iteration
 * early (`break`, `return`, an exception in the loop) cancels the review, as `cancel()` and the
 * caller's signal do: the server sees the call cancelled, the iteration ends without an error and
 * `decision` rejects with a CancelledError (unless it had already arrived).
 */
export class Review implements AsyncIterable<Vote> {
  readonly decision: Promise<Decision>;
  /** The decision id, known from the first event on. */
  decisionId: string | undefined;
  /** How many times the review was sent: 1, or more after retries (UNAVAILABLE only). */
  attempts = 0;
  private readonly votes: Vote[] = [];
  private readonly cancelling = new AbortController();
  private waiting: (() => void) | undefined;
  private finished = false;

  constructor(
    readonly requestId: string,
    private readonly signal: AbortSignal | undefined,
    run: (sink: { attempt: () => void; event: (e: WatchEvent) => void }, signal: AbortSignal) => Promise<Decision>,
  ) {
    const cancel = () => this.cancel();
    if (signal?.aborted) this.cancelling.abort();
    else signal?.addEventListener("abort", cancel, { once: true });
    let seenThisAttempt = 0;
    this.decision = run(
      {
        attempt: () => {
          seenThisAttempt = 0;
          this.attempts += 1;
        },
        event: (event) => {
          if (event.kind === "decision") {
            this.decisionId = event.decision.id;
            return;
          }
          this.decisionId = event.decisionId;
          seenThisAttempt += 1;
          if (seenThisAttempt > this.votes.length) this.votes.push(event.vote);
          this.wake();
        },
      },
      this.cancelling.signal,
    ).finally(() => {
      signal?.removeEventListener("abort", cancel);
      this.finished = true;
      this.wake();
    });
    this.decision.catch(() => undefined); // the iterator or the caller's await reports it
  }

  /** Cancels the review, on the server too, unless it has ended: `decision` then rejects with a CancelledError. */
  cancel(): void {
    if (!this.finished) this.cancelling.abort();
  }

  private wake() {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Vote> {
    let next = 0;
    try {
      for (;;) {
        // Cancelled: no more votes, even those that arrived before (the review may have ended first).
        if (this.cancelling.signal.aborted || this.signal?.aborted) return;
        if (next < this.votes.length) {
          yield this.votes[next++]!;
          continue;
        }
        if (this.finished) break;
        await new Promise<void>((r) => (this.waiting = r));
      }
      await this.decision.catch((err: unknown) => {
        // Cancelled by the caller: the iteration ends quietly (`decision` still says so).
        if (!cancelledBy(err, this.cancelling.signal)) throw err;
      });
    } finally {
      this.cancel();
    }
  }
}

/** How many messages a watch holds for a caller that has not taken them, before it stops reading. */
const WATCH_BUFFER = 64;

/**
 * A watch in progress (`CouncilClient.watch`): an async iterable of events, iterated once, and
 * `ready`, which resolves once the watch is live. While the caller does not take events, at most
 * WATCH_BUFFER wait here; then reading stops and the server, seeing a watcher fall too far behind,
 * ends the watch with RESOURCE_EXHAUSTED.
 */
export class Watch implements AsyncIterable<WatchEvent> {
  /**
   * Resolves once the server's response headers arrive: from then on, every review stored is
   * sent. Rejects with the watch's error if it fails before (e.g. a PermissionDeniedError), or a
   * CancelledError if it is cancelled before.
   */
  readonly ready: Promise<void>;
  /** Whether the watch is live (`ready` resolved). */
  live = false;
  private readonly call: ClientReadableStream<WatchDecisionsResponse>;
  private readonly queue: WatchDecisionsResponse[] = [];
  private error: unknown;
  private ended = false;
  private cancelled = false;
  private iterated = false;
  private waiting: (() => void) | undefined;

  constructor(start: () => ClientReadableStream<WatchDecisionsResponse>, options: { signal?: AbortSignal; onLive?: () => void }) {
    let live!: () => void;
    let fail!: (err: unknown) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      live = resolve;
      fail = reject;
    });
    this.ready.catch(() => undefined); // for a caller that only iterates
    const { signal } = options;
    const cancel = () => this.cancel();
    this.call = start();
    this.call.on("metadata", () => {
      if (this.live || this.ended) return;
      this.live = true;
      live();
      try {
        options.onLive?.();
      } catch (err) {
        // The caller's callback failed: the watch ends with that error.
        this.error = err;
        this.call.cancel();
      }
    });
    this.call.on("data", (m: WatchDecisionsResponse) => {
      this.queue.push(m);
      if (this.queue.length >= WATCH_BUFFER) this.call.pause();
      this.wake();
    });
    this.call.on("error", (err) => {
      this.error ??= CouncilError.from(err);
      fail(this.cancelled ? new CancelledError("the watch was cancelled before it was live") : this.error);
      this.wake();
    });
    // grpc-js ends the stream before it emits an error; "end" comes once every message is read.
    const end = () => {
      signal?.removeEventListener("abort", cancel);
      this.ended = true;
      fail(this.error ?? new InternalError("the watch ended before it was live"));
      this.wake();
    };
    this.call.on("end", end);
    this.call.on("close", end);
    if (signal?.aborted) this.cancel();
    else signal?.addEventListener("abort", cancel, { once: true });
  }

  /** Ends the watch (the server sees it cancelled); the iteration then ends without an error. */
  cancel(): void {
    if (this.ended) return;
    this.cancelled = true;
    this.call.cancel();
  }

  private wake() {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    if (this.iterated) throw new TypeError("a watch is iterated once: watch again for another");
    this.iterated = true;
    try {
      for (;;) {
        const message = this.queue.shift();
        if (message) {
          if (this.call.isPaused() && this.queue.length <= WATCH_BUFFER / 2) this.call.resume();
          const event = toEvent(message);
          if (event) yield event;
          continue;
        }
        // An error ends the iteration once the messages before it are taken.
        if (this.ended || (this.error !== undefined && !this.call.readableLength)) break;
        await new Promise<void>((r) => (this.waiting = r));
      }
      const err = this.error;
      if (err !== undefined && !(this.cancelled && err instanceof CancelledError)) throw err;
    } finally {
      this.cancel();
    }
  }
}
