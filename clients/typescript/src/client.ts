/**
 * The hand-written layer over the generated grpc-js client: connect once, then one call per task.
 * Reviews get a request_id (generated if absent) that every retry reuses, so a retry never makes a
 * second decision; only UNAVAILABLE is retried, and only for calls that are safe to repeat.
 */
import { randomUUID } from "node:crypto";
import { ChannelCredentials, credentials, Metadata, status, type ClientReadableStream } from "@grpc/grpc-js";
import {
  CouncilServiceClient,
  type GetSummaryResponse,
  type ListReviewersResponse,
  type ReviewSuggestionResponse,
  type WatchDecisionsResponse,
} from "./gen/council/v1/council_service.js";
import { Suggestion, type Decision, type DecisionType, type Lesson, type Outcome, type Vote } from "./gen/council/v1/review.js";
import { CouncilError, InternalError } from "./errors.js";

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
  timeoutMs?: number;
}

export type WatchEvent = { kind: "vote"; vote: Vote; decisionId: string; suggestionId: string } | { kind: "decision"; decision: Decision };

const DEFAULT_RETRY: RetryPolicy = { attempts: 4, initialBackoffMs: 100, maxBackoffMs: 2000 };

export function connect(address: string, options: ConnectOptions = {}): CouncilClient {
  return new CouncilClient(address, options);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

  /** Runs `attempt` until it succeeds, fails with anything but UNAVAILABLE, or attempts run out. */
  async withRetry<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const e = CouncilError.from(err);
        if (!e.retryable || n >= this.retry.attempts) throw e;
        const backoff = Math.min(this.retry.maxBackoffMs, this.retry.initialBackoffMs * 2 ** (n - 1));
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
      }
    }
  }

  private unary<Req, Res>(
    method: (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: unknown, res: Res) => void) => unknown,
    req: Req,
  ): Promise<Res> {
    return new Promise((resolve, reject) =>
      method.call(this.stub, req, this.metadata(), { deadline: this.deadline() }, (err, res) =>
        err ? reject(CouncilError.from(err)) : resolve(res),
      ),
    );
  }

  /**
   * Reviews a suggestion. Iterate the result for each vote as it is cast; `await review.decision`
   * for the stored decision (it also works without iterating).
   */
  review(suggestion: SuggestionInput, options: ReviewOptions = {}): Review {
    const requestId = options.dryRun ? "" : (options.requestId ?? randomUUID());
    const request = { suggestion: Suggestion.fromPartial(suggestion), requestId, dryRun: options.dryRun ?? false };
    return new Review(requestId, (sink) =>
      this.withRetry(() => {
        sink.attempt();
        return readStream(
          this.stub.reviewSuggestion(request, this.metadata(), {
            deadline: this.deadline(options.timeoutMs ?? this.options.reviewTimeoutMs ?? 60_000),
          }),
          sink.event,
        );
      }),
    );
  }

  getDecision(id: string): Promise<Decision> {
    return this.withRetry(() => this.unary(this.stub.getDecision, { id })).then((r) => r.decision!);
  }

  /** Every decision matching the filter, newest first, fetching page after page. */
  async *listDecisions(filter: { decisionType?: DecisionType; suggestionId?: string; pageSize?: number } = {}): AsyncGenerator<Decision> {
    let pageToken = "";
    do {
      const page = await this.withRetry(() =>
        this.unary(this.stub.listDecisions, {
          decisionType: filter.decisionType ?? 0,
          suggestionId: filter.suggestionId ?? "",
          pageSize: filter.pageSize ?? 100,
          pageToken,
        }),
      );
      yield* page.decisions;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /**
   * Records an outcome. It carries a request_id (yours, or a generated one) that every retry
   * reuses, so a retry after a lost reply does not append a second lesson.
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
   * Every review stored from now on (its votes first if `includeVotes`), until `signal` aborts or
   * the server ends the watch (UNAVAILABLE at shutdown, RESOURCE_EXHAUSTED if we fell behind),
   * which throws a CouncilError: watch again to resume.
   */
  async *watch(options: { decisionType?: DecisionType; includeVotes?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<WatchEvent> {
    const call = this.stub.watchDecisions(
      { decisionType: options.decisionType ?? 0, includeVotes: options.includeVotes ?? false },
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
