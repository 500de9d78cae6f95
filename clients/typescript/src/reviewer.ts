/**
 * The reviewer SDK (SPEC section 11): serving an external role of the council is a handler
 * (task → vote) and one call, `serveReviews` (or `CouncilClient.serveReviews` on a client you
 * already have). The same shape as the Python and Go clients:
 *
 * - one ServeReviews stream: the hello names the roles; the server's response headers say it was
 *   accepted ("connected"); then each task is handed to the handler, at most `concurrency` at
 *   once (16 by default; the rest wait in arrival order, and reading pauses while they pile up);
 * - a handler that throws is logged and sends no vote (the role's failure policy then counts at
 *   the task's deadline); a vote that is ready after the deadline, or after the stream it came on
 *   ended, is dropped (the server would ignore it, and too many of them end the stream);
 * - the stream is opened again whenever it ends for a reason that may pass: UNAVAILABLE (a replica
 *   shutting down, a connection lost), an end by the server, anything unexpected; after a random
 *   wait below 100 ms doubling to 10 s ("full jitter", so that the reviewers of a replica that
 *   went away do not all come back at the same instant), the doubling starting over once a
 *   stream was accepted. It gives up (and `done` rejects) on the errors of configuration that
 *   retrying cannot fix: UNAUTHENTICATED, PERMISSION_DENIED, FAILED_PRECONDITION (a role that is
 *   not external in the policy in force), INVALID_ARGUMENT and UNIMPLEMENTED (a server without
 *   ServeReviews);
 * - `stop()` (or aborting `signal`) half-closes the stream, so that the server hands the open
 *   tasks to another reviewer at once, and aborts the handlers' signals.
 */
import { status, type ClientDuplexStream } from "@grpc/grpc-js";
import type { ReviewTask as WireTask, ServeReviewsRequest, ServeReviewsResponse, TaskVote } from "./gen/council/v1/council_service.js";
import { ReviewerRole, VoteType, type Suggestion } from "./gen/council/v1/review.js";
import { fullJitter, sleep } from "./backoff.js";
import { CancelledError, CouncilError } from "./errors.js";

/** A role by its lower-case name, as policies spell it. */
export type RoleName = "safety" | "performance" | "architecture" | "compliance" | "quality";

/** A vote type by its lower-case name. */
export type VoteName = "approve" | "reject" | "abstain" | "needs_more_info";

/** One review that needs this reviewer's vote. */
export interface ReviewerTask {
  taskId: string;
  /** The decision the vote will be part of. */
  decisionId: string;
  /** The change under review; `suggestion.diff` is the change itself (a unified diff), "" when the agent sent none. */
  suggestion: Suggestion;
  /** The role the vote is cast in (one of those served). */
  role: ReviewerRole;
  /** When the review stops waiting for this vote: a vote ready later is dropped. */
  deadline: Date;
  /** The review stores nothing (the caller asked for a dry run). */
  dryRun: boolean;
  /** Aborts at the deadline, on `stop()`, or when the stream the task came on ends: the vote would no longer count. */
  signal: AbortSignal;
}

/** A reviewer's vote. */
export interface ReviewerVote {
  /** `"approve"`, `"reject"`, `"abstain"`, `"needs_more_info"`, or the enum value. */
  vote: VoteType | VoteName;
  /** How sure the reviewer is, from 0 to 1. */
  confidence: number;
  reasoning?: string;
  concerns?: string[];
  conditions?: string[];
  /**
   * On a REJECT only: why the change must not happen, snake_case (`[a-z0-9_]`, at most 64
   * characters, e.g. `credential_in_diff`). It counts like a built-in veto.
   */
  veto?: string;
}

/**
 * Decides one task. Return (or resolve with) the vote; `undefined` sends none (the role's failure
 * policy counts at the deadline); throwing is logged and sends none either.
 */
export type ReviewHandler = (task: ReviewerTask) => ReviewerVote | undefined | Promise<ReviewerVote | undefined>;

export interface ReconnectBackoff {
  /** The bound of the first wait, in ms; it doubles after each stream that failed without being accepted. */
  initialMs: number;
  /** The cap of that doubling, in ms. Each wait is drawn at random below the bound ("full jitter"). */
  maxMs: number;
}

/** 100 ms doubling to 10 s, the same in every client. */
export const DEFAULT_RECONNECT_BACKOFF: Readonly<ReconnectBackoff> = Object.freeze({ initialMs: 100, maxMs: 10_000 });
/** How many tasks a reviewer handles at once unless told otherwise. */
export const DEFAULT_REVIEWER_CONCURRENCY = 16;

export interface ReviewerOptions {
  /** The roles served: external roles of the policy in force, at least one (`"safety"` or `ReviewerRole.REVIEWER_ROLE_SAFETY`). */
  roles: (ReviewerRole | RoleName)[];
  handler: ReviewHandler;
  /** Tasks handled at once (default 16); the others wait for a free slot, in arrival order. */
  concurrency?: number;
  /** Aborting stops the reviewer, as `stop()` does. */
  signal?: AbortSignal;
  /** Waits between two streams (default DEFAULT_RECONNECT_BACKOFF). */
  backoff?: Partial<ReconnectBackoff>;
  /** Called each time a stream is accepted (the server took the hello): the reviewer is serving. */
  onConnected?: () => void;
  /**
   * Called each time a stream that will be opened again ends: with its error (an UnavailableError
   * when a replica shuts down or the connection is lost), or undefined when the server ended it
   * OK; `retryInMs` is the wait before the next one.
   */
  onDisconnected?: (err: CouncilError | undefined, retryInMs: number) => void;
  /** Where problems are told (a handler that threw, a vote dropped, a stream that ended): default console.error. */
  log?: (message: string) => void;
}

/** The errors after which opening the stream again cannot help: the configuration must change. */
const GIVE_UP = new Set<status>([
  status.UNAUTHENTICATED,
  status.PERMISSION_DENIED,
  status.FAILED_PRECONDITION,
  status.INVALID_ARGUMENT,
  status.UNIMPLEMENTED,
]);

/** Whether a stream that ended with `code` should be opened again. */
export function reconnectable(code: status): boolean {
  return !GIVE_UP.has(code);
}

/**
 * The wait before opening a stream again after `failures` (from 1) streams in a row failed
 * without being accepted: at random below min(maxMs, initialMs × 2^(failures − 1)).
 */
export function reconnectDelay(failures: number, backoff: ReconnectBackoff = DEFAULT_RECONNECT_BACKOFF, random = Math.random): number {
  return fullJitter(failures, backoff.initialMs, backoff.maxMs, random);
}

const ROLE_NAMES: Record<RoleName, ReviewerRole> = {
  safety: ReviewerRole.REVIEWER_ROLE_SAFETY,
  performance: ReviewerRole.REVIEWER_ROLE_PERFORMANCE,
  architecture: ReviewerRole.REVIEWER_ROLE_ARCHITECTURE,
  compliance: ReviewerRole.REVIEWER_ROLE_COMPLIANCE,
  quality: ReviewerRole.REVIEWER_ROLE_QUALITY,
};

const VOTE_NAMES: Record<VoteName, VoteType> = {
  approve: VoteType.VOTE_TYPE_APPROVE,
  reject: VoteType.VOTE_TYPE_REJECT,
  abstain: VoteType.VOTE_TYPE_ABSTAIN,
  needs_more_info: VoteType.VOTE_TYPE_NEEDS_MORE_INFO,
};

function roleOf(role: ReviewerRole | RoleName): ReviewerRole {
  if (typeof role === "string") {
    const value = ROLE_NAMES[role];
    if (value === undefined) throw new TypeError(`serveReviews: unknown role ${JSON.stringify(role)} (one of ${Object.keys(ROLE_NAMES).join(", ")})`);
    return value;
  }
  if (!Object.values(ROLE_NAMES).includes(role)) throw new TypeError(`serveReviews: unknown role ${String(role)}`);
  return role;
}

/** The role's lower-case name, for messages. */
const roleName = (role: ReviewerRole) => (ReviewerRole[role] ?? String(role)).replace(/^REVIEWER_ROLE_/, "").toLowerCase();

/**
 * The wire vote for `v`, and what would make the server count it as invalid (the server checks
 * too: an invalid vote is sent anyway, so that the failure policy counts at once instead of at the
 * deadline). A vote name that does not exist throws: there is nothing to send.
 */
export function taskVote(taskId: string, v: ReviewerVote): { vote: TaskVote; problem?: string } {
  const type = typeof v.vote === "string" ? VOTE_NAMES[v.vote] : v.vote;
  if (type === undefined) throw new TypeError(`unknown vote ${JSON.stringify(v.vote)} (one of ${Object.keys(VOTE_NAMES).join(", ")})`);
  const vote: TaskVote = {
    taskId,
    vote: type,
    reasoning: v.reasoning ?? "",
    concerns: v.concerns ?? [],
    conditions: v.conditions ?? [],
    confidence: v.confidence,
    veto: v.veto ?? "",
  };
  let problem: string | undefined;
  if (!Object.values(VOTE_NAMES).includes(type)) problem = `vote ${String(type)} is not a vote type`;
  else if (typeof v.confidence !== "number" || !(v.confidence >= 0 && v.confidence <= 1)) problem = `confidence ${String(v.confidence)} is not in [0, 1]`;
  else if (vote.veto && type !== VoteType.VOTE_TYPE_REJECT) problem = "a veto goes on a REJECT only";
  else if (vote.veto && !/^[a-z0-9_]{1,64}$/.test(vote.veto)) problem = `veto ${JSON.stringify(vote.veto)} is not snake_case [a-z0-9_], at most 64 characters`;
  return problem === undefined ? { vote } : { vote, problem };
}

/** Opens one ServeReviews stream (the client's channel and token). */
export type OpenReviewStream = () => ClientDuplexStream<ServeReviewsRequest, ServeReviewsResponse>;

/** What one stream did: whether the server accepted it, and the error it ended with (undefined: OK). */
interface StreamEnd {
  accepted: boolean;
  error: CouncilError | undefined;
}

/** One open stream, as its tasks see it. */
interface Stream {
  call: ClientDuplexStream<ServeReviewsRequest, ServeReviewsResponse>;
  /** Aborted when the stream ends: its tasks' votes can no longer be sent. */
  ended: AbortController;
}

/** How long `stop()` waits for the server to end a half-closed stream before cancelling it. */
const STOP_GRACE_MS = 2000;

/**
 * A reviewer serving its roles (see the file's comment). Made by `serveReviews`; runs until
 * `stop()`, its signal, or an error of configuration.
 */
export class Reviewer {
  /**
   * Resolves when the first stream is accepted: the reviewer is serving. Rejects with the error
   * the reviewer gave up on, or a CancelledError if it was stopped first.
   */
  readonly connected: Promise<void>;
  /**
   * Settles when the reviewer ends: resolves after `stop()` (or the signal), rejects with the
   * CouncilError it gave up on (e.g. a PermissionDeniedError for a token without the role
   * reviewer, a FailedPreconditionError for a role that is not external).
   */
  readonly done: Promise<void>;
  /** Whether a stream is accepted now. */
  isConnected = false;
  /** How many streams were accepted so far (more than one: it reconnected). */
  connections = 0;
  /** Tasks whose handler is running now. */
  inFlight = 0;

  /** Tasks received and waiting for a free slot (at most `concurrency` run at once). */
  get waiting(): number {
    return this.queue.length;
  }

  private readonly roles: ReviewerRole[];
  private readonly concurrency: number;
  private readonly backoff: ReconnectBackoff;
  private readonly log: (message: string) => void;
  private readonly stopping = new AbortController();
  /** Resolves `connected` (the first accepted stream). */
  private readonly firstConnected: () => void;
  private readonly queue: { task: ReviewerTask; stream: Stream; abort: AbortController }[] = [];
  private current: Stream | undefined;

  constructor(
    private readonly open: OpenReviewStream,
    private readonly options: ReviewerOptions,
  ) {
    if (!Array.isArray(options.roles) || options.roles.length === 0) throw new TypeError("serveReviews: roles must name at least one role");
    if (typeof options.handler !== "function") throw new TypeError("serveReviews: handler must be a function");
    this.roles = [...new Set(options.roles.map(roleOf))];
    this.concurrency = options.concurrency ?? DEFAULT_REVIEWER_CONCURRENCY;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1) throw new TypeError("serveReviews: concurrency must be a whole number ≥ 1");
    this.backoff = { ...DEFAULT_RECONNECT_BACKOFF, ...options.backoff };
    this.log = options.log ?? ((message) => console.error(`council reviewer: ${message}`));

    let connected!: () => void;
    let notConnected!: (err: unknown) => void;
    this.connected = new Promise<void>((resolve, reject) => {
      connected = resolve;
      notConnected = reject;
    });
    this.connected.catch(() => undefined); // for a caller that awaits `done` only
    this.firstConnected = connected;

    const { signal } = options;
    const stop = () => void this.stop();
    if (signal?.aborted) this.stopping.abort();
    else signal?.addEventListener("abort", stop, { once: true });
    this.done = this.run().then(
      () => {
        signal?.removeEventListener("abort", stop);
        notConnected(new CancelledError("the reviewer was stopped before it connected"));
      },
      (err: unknown) => {
        signal?.removeEventListener("abort", stop);
        notConnected(err);
        throw err;
      },
    );
    this.done.catch(() => undefined); // the caller's await of `done` or `connected` reports it
  }

  /** Stops serving: half-closes the stream (the server gives its open tasks to another reviewer) and aborts the handlers. Resolves as `done` does. */
  stop(): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.stopping.abort();
      const stream = this.current;
      if (stream) {
        stream.ended.abort();
        stream.call.end();
        // A server that does not answer the half-close (a connection gone silent) is not waited for long.
        const timer = setTimeout(() => stream.call.cancel(), STOP_GRACE_MS);
        timer.unref();
        this.done.finally(() => clearTimeout(timer)).catch(() => undefined);
      }
    }
    return this.done;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      const end = await this.serveOnce();
      if (this.stopping.signal.aborted) return;
      if (end.error && !reconnectable(end.error.code)) {
        this.log(`giving up: ${end.error.message}`);
        throw end.error;
      }
      failures = end.accepted ? 1 : failures + 1;
      const wait = reconnectDelay(failures, this.backoff);
      this.log(`the stream ended (${end.error ? end.error.message : "by the server"}); opening it again in ${Math.round(wait)} ms`);
      this.options.onDisconnected?.(end.error, wait);
      await sleep(wait, this.stopping.signal);
    }
  }

  /** Opens one stream, serves it until it ends, and says how it ended. */
  private serveOnce(): Promise<StreamEnd> {
    return new Promise<StreamEnd>((resolve) => {
      const call = this.open();
      const stream: Stream = { call, ended: new AbortController() };
      this.current = stream;
      let accepted = false;
      call.on("metadata", () => {
        if (accepted || stream.ended.signal.aborted) return;
        accepted = true;
        this.isConnected = true;
        this.connections += 1;
        this.firstConnected();
        this.callback(() => this.options.onConnected?.());
      });
      call.on("data", (m: ServeReviewsResponse) => {
        if (m.task) this.enqueue(m.task, stream);
      });
      // grpc-js emits "error" (non-OK) and then "status" (always): the status settles the stream.
      call.on("error", () => undefined);
      call.on("status", (s: { code: status; details: string }) => {
        stream.ended.abort();
        if (this.current === stream) this.current = undefined;
        this.isConnected = false;
        this.dropQueued(stream);
        resolve({ accepted, error: s.code === status.OK ? undefined : CouncilError.from(s) });
      });
      call.write({ message: { $case: "hello", value: { roles: this.roles } } });
    });
  }

  /** Runs a caller's callback; one that throws is told, and changes nothing here. */
  private callback(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log(`a callback threw: ${describe(err)}`);
    }
  }

  private enqueue(wire: WireTask, stream: Stream): void {
    const abort = new AbortController();
    const task: ReviewerTask = {
      taskId: wire.taskId,
      decisionId: wire.decisionId,
      suggestion: wire.suggestion ?? ({} as Suggestion),
      role: wire.role,
      deadline: wire.deadline ?? new Date(),
      dryRun: wire.dryRun,
      signal: abort.signal,
    };
    this.queue.push({ task, stream, abort });
    this.pump();
  }

  /** Starts queued tasks while slots are free; pauses reading while tasks pile up, so that the server sees a slow reviewer. */
  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const item = this.queue.shift()!;
      if (item.stream.ended.signal.aborted) continue;
      if (Date.now() >= item.task.deadline.getTime()) {
        this.log(`${what(item.task)}: its deadline passed while it waited for a free slot; no vote`);
        continue;
      }
      this.inFlight += 1;
      void this.handle(item).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
    const call = this.current?.call;
    if (!call) return;
    if (this.queue.length >= this.concurrency) call.pause();
    else if (call.isPaused()) call.resume();
  }

  /** Tasks of a stream that ended wait no more: the server gives them to another reviewer. */
  private dropQueued(stream: Stream): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.stream === stream) this.queue.splice(i, 1);
  }

  private async handle({ task, stream, abort }: { task: ReviewerTask; stream: Stream; abort: AbortController }): Promise<void> {
    // A timer can fire a millisecond before Date.now() reaches the deadline: once it has fired, the
    // vote is late whatever the clock says (the handler was told so through its signal).
    let late = false;
    const timer = setTimeout(
      () => {
        late = true;
        abort.abort();
      },
      Math.max(0, task.deadline.getTime() - Date.now()),
    );
    const ended = () => abort.abort();
    stream.ended.signal.addEventListener("abort", ended, { once: true });
    try {
      let answer: ReviewerVote | undefined;
      try {
        answer = await this.options.handler(task);
      } catch (err) {
        this.log(`${what(task)}: the handler failed, no vote: ${describe(err)}`);
        return;
      }
      if (answer === undefined || answer === null) return;
      if (late || Date.now() >= task.deadline.getTime()) {
        this.log(`${what(task)}: the vote came after the deadline; dropped`);
        return;
      }
      if (stream.ended.signal.aborted) {
        // Stopping aborts every handler on purpose: nothing to tell.
        if (this.stopping.signal.aborted) return;
        this.log(`${what(task)}: the stream ended before the vote; dropped (the task goes to another reviewer)`);
        return;
      }
      let wire: ReturnType<typeof taskVote>;
      try {
        wire = taskVote(task.taskId, answer);
      } catch (err) {
        this.log(`${what(task)}: no vote: ${describe(err)}`);
        return;
      }
      if (wire.problem) this.log(`${what(task)}: the server will count this vote as invalid: ${wire.problem}`);
      stream.call.write({ message: { $case: "vote", value: wire.vote } });
    } finally {
      clearTimeout(timer);
      stream.ended.signal.removeEventListener("abort", ended);
      abort.abort();
    }
  }
}

const what = (task: ReviewerTask) => `${roleName(task.role)} task ${task.taskId} (decision ${task.decisionId})`;

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
