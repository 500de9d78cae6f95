/**
 * The hand-written layer over the generated grpc-js client: connect once, then one call per task.
 * Reviews, outcomes and verdicts get a request_id (generated if absent) that every retry reuses, so
 * a retry never makes a second decision or counts a verdict twice; only UNAVAILABLE is retried,
 * and only for calls that are safe to repeat. `guard` is the one call an agent makes before it
 * acts: review, wait for people if the decision is pending, and answer allowed or not, with why.
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
import { CancelledError, CouncilError, DeadlineExceededError, InternalError } from "./errors.js";
import { changed, guardVerdict, isFinal, type GuardVerdict } from "./guard.js";

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

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
  /** Deadline of unary calls, in ms (default 30 000). */
  timeoutMs?: number;
  /** Deadline of a whole review stream, in ms (default 60 000). */
  reviewTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
}

/** A suggestion: id, title, risk and impact are required; the rest defaults to empty. */
export type SuggestionInput = Partial<Suggestion> & Pick<Suggestion, "id" | "title" | "risk" | "impact">;

export interface ReviewOptions {
  /** Idempotency key; generated when absent, and reused by every retry. */
  requestId?: string;
  /** Stream the votes and decision but store nothing. */
  dryRun?: boolean;
  /**
   * The id of a pending decision of yours that this review follows up (e.g. a DEFER answered with
   * more information): once this review is stored, that one becomes SUPERSEDED.
   */
  supersedes?: string;
  timeoutMs?: number;
  /** Aborting cancels the review (the iteration and `decision` then reject with a CancelledError). */
  signal?: AbortSignal;
}

/** A deadline and a way to cancel, for the calls that take them. */
export interface CallOptions {
  /** Aborting cancels the call. */
  signal?: AbortSignal;
  /** The call's deadline, in ms from now, retries included. */
  timeoutMs?: number;
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

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, initialBackoffMs: 100, maxBackoffMs: 2000 };

export function connect(address: string, options: ConnectOptions = {}): CouncilClient {
  return new CouncilClient(address, options);
}

/** Waits `ms`, or less if `signal` aborts first. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });

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

export class CouncilClient {
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
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  close(): void {
    this.stub.close();
  }

  private metadata(): Metadata {
    const md = new Metadata();
    if (this.options.token) md.set("authorization", `Bearer ${this.options.token}`);
    return md;
  }

  private deadline(timeoutMs?: number): Date {
    return new Date(Date.now() + (timeoutMs ?? this.options.timeoutMs ?? 30_000));
  }

  /**
   * Runs `attempt` until it succeeds, fails with anything but UNAVAILABLE, or attempts run out; with
   * `bounds`, also stops retrying once `signal` aborts or the next try would start past `deadline`.
   */
  async withRetry<T>(attempt: () => Promise<T>, bounds: { deadline?: Date; signal?: AbortSignal } = {}): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const e = CouncilError.from(err);
        if (!e.retryable || n >= this.retry.attempts) throw e;
        const backoff = this.backoff(n);
        if (bounds.signal?.aborted || (bounds.deadline && Date.now() + backoff >= bounds.deadline.getTime())) throw e;
        await sleep(backoff, bounds.signal);
      }
    }
  }

  /** The wait after failed attempt `n` (from 1): doubled each time, capped, with jitter. */
  private backoff(n: number): number {
    const backoff = Math.min(this.retry.maxBackoffMs, this.retry.initialBackoffMs * 2 ** (n - 1));
    return backoff / 2 + Math.random() * (backoff / 2);
  }

  private unary<Req, Res>(
    method: (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: unknown, res: Res) => void) => unknown,
    req: Req,
    call: { deadline?: Date; signal?: AbortSignal } = {},
  ): Promise<Res> {
    return new Promise((resolve, reject) => {
      if (call.signal?.aborted) {
        reject(new CancelledError("the call was aborted"));
        return;
      }
      const abort = () => (pending as { cancel(): void }).cancel();
      const pending = method.call(this.stub, req, this.metadata(), { deadline: call.deadline ?? this.deadline() }, (err, res) => {
        call.signal?.removeEventListener("abort", abort);
        if (err) reject(CouncilError.from(err));
        else resolve(res);
      });
      call.signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /**
   * Reviews a suggestion. Iterate the result for each vote as it is cast; `await review.decision`
   * for the stored decision (it also works without iterating).
   */
  review(suggestion: SuggestionInput, options: ReviewOptions = {}): Review {
    return this.startReview(suggestion, options);
  }

  /** A review; with `until` (ms since the epoch), no attempt runs past it, retries included. */
  private startReview(suggestion: SuggestionInput, options: ReviewOptions, until?: number): Review {
    const requestId = options.dryRun ? "" : (options.requestId ?? randomUUID());
    const request = {
      suggestion: Suggestion.fromPartial(suggestion),
      requestId,
      dryRun: options.dryRun ?? false,
      supersedes: options.supersedes ?? "",
    };
    const { signal } = options;
    const perAttemptMs = options.timeoutMs ?? this.options.reviewTimeoutMs ?? 60_000;
    return new Review(requestId, (sink) =>
      this.withRetry(
        () => {
          sink.attempt();
          if (signal?.aborted) throw new CancelledError("the review was aborted");
          const deadline = new Date(Math.min(Date.now() + perAttemptMs, until ?? Infinity));
          const call = this.stub.reviewSuggestion(request, this.metadata(), { deadline });
          const abort = () => call.cancel();
          signal?.addEventListener("abort", abort, { once: true });
          return readStream(call, sink.event).finally(() => signal?.removeEventListener("abort", abort));
        },
        { signal, deadline: until === undefined ? undefined : new Date(until) },
      ),
    );
  }

  getDecision(id: string): Promise<Decision> {
    return this.withRetry(() => this.unary(this.stub.getDecision, { id })).then((r) => r.decision!);
  }

  /**
   * Every decision matching the filter, newest first (`oldestFirst`: oldest first), fetching page
   * after page. The approvers' queue: `{ status: DecisionStatus.DECISION_STATUS_PENDING, oldestFirst: true }`.
   */
  async *listDecisions(
    filter: { decisionType?: DecisionType; suggestionId?: string; status?: DecisionStatus; oldestFirst?: boolean; pageSize?: number } = {},
  ): AsyncGenerator<Decision> {
    let pageToken = "";
    do {
      const page = await this.withRetry(() =>
        this.unary(this.stub.listDecisions, {
          decisionType: filter.decisionType ?? 0,
          suggestionId: filter.suggestionId ?? "",
          pageSize: filter.pageSize ?? 100,
          pageToken,
          status: filter.status ?? 0,
          oldestFirst: filter.oldestFirst ?? false,
        }),
      );
      yield* page.decisions;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Records an outcome (only an APPROVED decision takes one: FailedPreconditionError otherwise).
   * It carries a request_id (yours, or a generated one) that every retry reuses, so a retry after
   * a lost reply does not append a second lesson.
   */
  recordOutcome(
    decisionId: string,
    outcome: Outcome,
    details: { notes?: string; lessons?: string; requestId?: string } = {},
  ): Promise<Decision> {
    const request = {
      decisionId,
      outcome,
      notes: details.notes ?? "",
      lessons: details.lessons ?? "",
      requestId: details.requestId ?? randomUUID(),
    };
    return this.withRetry(() => this.unary(this.stub.recordOutcome, request)).then((r) => r.decision!);
  }

  summary(): Promise<GetSummaryResponse> {
    return this.withRetry(() => this.unary(this.stub.getSummary, {}));
  }

  /** Every lesson, newest first, fetching page after page. */
  async *lessons(options: { pageSize?: number } = {}): AsyncGenerator<Lesson> {
    let pageToken = "";
    do {
      const page = await this.withRetry(() => this.unary(this.stub.listLessons, { pageSize: options.pageSize ?? 100, pageToken }));
      yield* page.lessons;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  reviewers(): Promise<ListReviewersResponse> {
    return this.withRetry(() => this.unary(this.stub.listReviewers, {}));
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
    const bounds = { deadline: this.deadline(options.timeoutMs), signal: options.signal };
    return this.withRetry(() => this.unary(this.stub.resolveDecision, request, bounds), bounds).then((r) => r.decision!);
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
    const deadline = options.timeoutMs === undefined ? undefined : new Date(Date.now() + options.timeoutMs);
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
   * not be made in that time rejects (DeadlineExceededError), as does any other failure
   * (a CouncilError); aborting `signal` rejects with a CancelledError.
   *
   *     const verdict = await council.guard(suggestion, { onVote, timeoutMs: 60_000 });
   *     if (!verdict.allowed) throw new Error(`not allowed: ${verdict.reason}`);
   */
  async guard(suggestion: SuggestionInput, options: GuardOptions = {}): Promise<GuardVerdict> {
    const started = Date.now();
    const until = started + (options.timeoutMs ?? DEFAULT_GUARD_TIMEOUT_MS);
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
   * Every review stored from now on (its votes first if `includeVotes`; with `includeUpdates`, a
   * stored decision again each time its status, verdicts or outcome change), until `signal` aborts
   * or the server ends the watch (UNAVAILABLE at shutdown, RESOURCE_EXHAUSTED if we fell behind),
   * which throws a CouncilError: watch again to resume.
   */
  async *watch(
    options: { decisionType?: DecisionType; includeVotes?: boolean; includeUpdates?: boolean; signal?: AbortSignal } = {},
  ): AsyncGenerator<WatchEvent> {
    const call = this.stub.watchDecisions(
      {
        decisionType: options.decisionType ?? 0,
        includeVotes: options.includeVotes ?? false,
        includeUpdates: options.includeUpdates ?? false,
      },
      this.metadata(),
    );
    const abort = () => call.cancel();
    options.signal?.addEventListener("abort", abort);
    try {
      for await (const message of call as AsyncIterable<WatchDecisionsResponse>) {
        const event = toEvent(message);
        if (event) yield event;
      }
    } catch (err) {
      const e = CouncilError.from(err);
      if (e.code === status.CANCELLED && options.signal?.aborted) return;
      throw e;
    } finally {
      options.signal?.removeEventListener("abort", abort);
      call.cancel();
    }
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
 * on an attempt that failed are not repeated when the retry replays them.
 */
export class Review implements AsyncIterable<Vote> {
  readonly decision: Promise<Decision>;
  /** The decision id, known from the first event on. */
  decisionId: string | undefined;
  /** How many times the review was sent: 1, or more after retries (UNAVAILABLE only). */
  attempts = 0;
  private readonly votes: Vote[] = [];
  private waiting: (() => void) | undefined;
  private finished = false;

  constructor(
    readonly requestId: string,
    run: (sink: { attempt: () => void; event: (e: WatchEvent) => void }) => Promise<Decision>,
  ) {
    let seenThisAttempt = 0;
    this.decision = run({
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
    }).finally(() => {
      this.finished = true;
      this.wake();
    });
    this.decision.catch(() => undefined); // the iterator or the caller's await reports it
  }

  private wake() {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Vote> {
    let next = 0;
    for (;;) {
      if (next < this.votes.length) {
        yield this.votes[next++]!;
        continue;
      }
      if (this.finished) break;
      await new Promise<void>((r) => (this.waiting = r));
    }
    await this.decision; // throws the failure, if any
  }
}
