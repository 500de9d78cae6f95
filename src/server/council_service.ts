/** The gRPC handlers of council.v1.CouncilService: wire in, use case, wire out. */
import { Metadata, type ServerWritableStream } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import { ResourceExhaustedError, UnavailableError } from "../domain/errors.js";
import { decisionBytes, utf8Bytes, voteBytes } from "../domain/limits.js";
import { isFinal, type Decision, type Vote } from "../domain/model.js";
import type {
  AwaitDecisionRequest,
  AwaitDecisionResponse,
  CouncilServiceServer,
  ReviewSuggestionResponse,
  WatchDecisionsRequest,
  WatchDecisionsResponse,
} from "../gen/council/v1/council_service.js";
import { notServedYet, serverStream, unary, type StreamWriter, type Telemetry } from "./calls.js";
import {
  decisionStatusFromWire,
  decisionToWire,
  decisionTypeFromWire,
  lessonToWire,
  outcomeFromWire,
  profileToWire,
  suggestionFromWire,
  summaryToWire,
  verdictTypeFromWire,
  voteToWire,
} from "./convert.js";

export interface CouncilServiceOptions {
  /**
   * How many bytes of events (waiting, or being sent) a watcher may fall behind before it is ended
   * with RESOURCE_EXHAUSTED. One review's events are always taken when nothing is waiting.
   */
  watchBufferBytes: number;
  /**
   * How many WatchDecisions and AwaitDecision streams may be open at once (each holds a store
   * subscription); beyond, a new one is RESOURCE_EXHAUSTED.
   */
  maxWatchers: number;
}

/** Ends every open watch and await; used at shutdown so that callers reconnect to another replica. */
export type CloseWatches = () => void;

function voteEvent(vote: Vote, decisionId: string, suggestionId: string): ReviewSuggestionResponse {
  return { event: { $case: "vote", value: voteToWire(vote) }, decisionId, suggestionId };
}

function decisionEvent(d: Decision): ReviewSuggestionResponse {
  return { event: { $case: "decision", value: decisionToWire(d) }, decisionId: d.id, suggestionId: d.suggestionId };
}

/** One event of a watch, with its size as `decisionBytes`/`voteBytes` count it. */
interface WatchEvent {
  message: WatchDecisionsResponse;
  bytes: number;
}

/**
 * The events of each stored review, built once: every subscriber of a store receives the same
 * decision object, so thousands of watchers share one copy of its events instead of one each.
 */
const eventsOf = new WeakMap<Decision, { votes: WatchEvent[]; decision: WatchEvent }>();

/** Events of one stored review, as a watch sends them. */
function reviewEvents(d: Decision, includeVotes: boolean): WatchEvent[] {
  let events = eventsOf.get(d);
  if (!events) {
    // Each event also carries the decision and suggestion ids, and is a oneof inside its message.
    const ids = utf8Bytes(d.id) + utf8Bytes(d.suggestionId) + 32;
    events = {
      votes: d.votes.map((v) => ({ message: voteEvent(v, d.id, d.suggestionId), bytes: voteBytes(v) + ids })),
      decision: { message: decisionEvent(d), bytes: decisionBytes(d) + ids },
    };
    eventsOf.set(d, events);
  }
  return includeVotes ? [...events.votes, events.decision] : [events.decision];
}

export function councilService(
  council: Council,
  t: Telemetry,
  options: CouncilServiceOptions,
): { implementation: CouncilServiceServer; closeWatches: CloseWatches } {
  const watches = new Set<(err: Error) => void>();
  let watching = 0;

  const implementation: CouncilServiceServer = {
    reviewSuggestion: serverStream(t, "ReviewSuggestion", async (req, out, ctx) => {
      ctx.requestId = req.requestId || undefined;
      const suggestion = suggestionFromWire(req.suggestion);
      const { decision, replayed, stored } = await council.review(
        { suggestion, requestId: req.requestId, dryRun: req.dryRun, principal: ctx.principal, supersedes: req.supersedes },
        (vote, decisionId) => out.write(voteEvent(vote, decisionId, suggestion.id)),
      );
      t.metrics.reviews.inc({ result: stored ? "stored" : replayed ? "replayed" : "dry_run" });
      if (stored) t.metrics.decisions.inc({ type: decision.decision });
      await out.write(decisionEvent(decision));
    }),

    getDecision: unary(t, "GetDecision", async (req) => ({
      decision: decisionToWire(await council.getDecision(req.id)),
    })),

    listDecisions: unary(t, "ListDecisions", async (req) => {
      const page = await council.listDecisions(
        {
          decisionType: decisionTypeFromWire("decision_type", req.decisionType),
          suggestionId: req.suggestionId,
          status: decisionStatusFromWire("status", req.status),
          oldestFirst: req.oldestFirst,
        },
        req.pageSize,
        req.pageToken,
      );
      return { decisions: page.items.map(decisionToWire), nextPageToken: page.nextPageToken };
    }),

    recordOutcome: unary(t, "RecordOutcome", async (req, ctx) => {
      ctx.requestId = req.requestId || undefined;
      const decision = await council.recordOutcome({
        ...req,
        outcome: outcomeFromWire("outcome", req.outcome),
        principal: ctx.principal,
      });
      return { decision: decisionToWire(decision) };
    }),

    getSummary: unary(t, "GetSummary", async () => summaryToWire(await council.summary())),

    listLessons: unary(t, "ListLessons", async (req) => {
      const page = await council.listLessons(req.pageSize, req.pageToken);
      return { lessons: page.items.map(lessonToWire), nextPageToken: page.nextPageToken };
    }),

    watchDecisions: serverStream(t, "WatchDecisions", async (req, _out, _ctx, call) => {
      if (watching >= options.maxWatchers) {
        throw new ResourceExhaustedError(`this server already has ${options.maxWatchers} watches open, its limit; watch again later`);
      }
      watching++;
      t.metrics.watchers.inc();
      try {
        await watch(council, req, call, { boundBytes: options.watchBufferBytes, writeTimeoutMs: t.writeTimeoutMs }, watches);
      } finally {
        watching--;
        t.metrics.watchers.dec();
      }
    }),

    listReviewers: unary(t, "ListReviewers", async () => ({
      reviewers: council.reviewers().map(profileToWire),
      policyVersion: council.policy.version,
    })),

    resolveDecision: unary(t, "ResolveDecision", async (req, ctx) => {
      ctx.requestId = req.requestId || undefined;
      const decision = await council.resolve({
        decisionId: req.decisionId,
        verdict: verdictTypeFromWire("verdict", req.verdict),
        comment: req.comment,
        requestId: req.requestId,
        principal: ctx.principal,
      });
      return { decision: decisionToWire(decision) };
    }),

    awaitDecision: serverStream(t, "AwaitDecision", async (req, out, _ctx, call) => {
      // An await holds a subscription to the store like a watch, so it counts against the same limit.
      if (watching >= options.maxWatchers) {
        throw new ResourceExhaustedError(`this server already has ${options.maxWatchers} watches and awaits open, its limit; await again later`);
      }
      watching++;
      try {
        await awaitDecision(council, req, out, call, watches);
      } finally {
        watching--;
      }
    }),

    serveReviews: notServedYet(t, "ServeReviews"),
  };

  const closeWatches = () => {
    for (const close of [...watches]) close(new UnavailableError("the server is shutting down; watch again"));
  };
  return { implementation, closeWatches };
}

/**
 * Streams each review stored from now on until the caller cancels. Events wait in a queue while
 * the caller is slow, and are written one at a time, the next once the last has been sent; past
 * `boundBytes` waiting or being sent, or when one message has not left within `writeTimeoutMs`
 * (the caller reads nothing), the watch ends with RESOURCE_EXHAUSTED (calls.ts resets a stream
 * that is stuck on a message, so the memory it holds is freed at once).
 */
function watch(
  council: Council,
  req: WatchDecisionsRequest,
  call: ServerWritableStream<WatchDecisionsRequest, WatchDecisionsResponse>,
  bounds: { boundBytes: number; writeTimeoutMs: number },
  watches: Set<(err: Error) => void>,
): Promise<void> {
  const { boundBytes, writeTimeoutMs } = bounds;
  const decisionType = decisionTypeFromWire("decision_type", req.decisionType);
  return new Promise<void>((resolve, reject) => {
    const queue: WatchEvent[] = [];
    /** Bytes of the events waiting in the queue or being sent. */
    let backlog = 0;
    let writing = false;
    let finished = false;
    let stalled: NodeJS.Timeout | undefined;

    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      clearTimeout(stalled);
      unsubscribe();
      watches.delete(finish);
      call.off("cancelled", onCancel);
      queue.length = 0;
      if (err) reject(err);
      else resolve();
    };
    const onCancel = () => finish();

    const pump = () => {
      if (writing || finished) return;
      const next = queue.shift();
      if (!next) return;
      writing = true;
      stalled = setTimeout(() => finish(new ResourceExhaustedError(`the watcher read nothing for ${writeTimeoutMs} ms; watch again`)), writeTimeoutMs);
      // The callback runs once the message has left (HTTP/2 flow control let it go), or the call is gone.
      call.write(next.message, () => {
        clearTimeout(stalled);
        writing = false;
        backlog -= next.bytes;
        pump();
      });
    };

    const take = (events: WatchEvent[]) => {
      if (finished) return;
      const bytes = events.reduce((sum, e) => sum + e.bytes, 0);
      // A watcher that keeps up is never ended by one large review: it is taken when nothing waits.
      if (backlog > 0 && backlog + bytes > boundBytes) {
        finish(new ResourceExhaustedError(`the watcher fell more than ${boundBytes} bytes behind; watch again`));
        return;
      }
      queue.push(...events);
      backlog += bytes;
      pump();
    };

    const unsubscribe = council.watch(
      decisionType,
      (d) => take(reviewEvents(d, req.includeVotes)),
      (err) => finish(err),
      // Response headers tell the client that the watch is live: every review stored from now on is sent.
      () => {
        if (!finished) call.sendMetadata(new Metadata());
      },
      // A change to a stored decision is sent as the decision again, without its votes.
      req.includeUpdates ? (d) => take(reviewEvents(d, false)) : undefined,
    );
    watches.add(finish);
    call.on("cancelled", onCancel);
    if (call.cancelled) finish();
  });
}

/**
 * Streams the states of one decision (AwaitDecision): the current one at once, then one per change,
 * and ends OK after a final status. Each state is written once the previous one has left (at most
 * a hundred or so states ever exist: one per verdict, and the final one). Ends early, without
 * error, when the caller cancels or its deadline passes; with UNAVAILABLE at shutdown.
 */
function awaitDecision(
  council: Council,
  req: AwaitDecisionRequest,
  out: StreamWriter<AwaitDecisionResponse>,
  call: ServerWritableStream<AwaitDecisionRequest, AwaitDecisionResponse>,
  watches: Set<(err: Error) => void>,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let finished = false;
    let sent = Promise.resolve();
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      stop();
      watches.delete(finish);
      call.off("cancelled", onCancel);
      if (err) reject(err);
      else resolve();
    };
    const onCancel = () => finish();
    const stop = council.await(req.decisionId, {
      onDecision: (d) => {
        const message = { decision: decisionToWire(d) };
        const final = isFinal(d.status);
        sent = sent
          .then(async () => {
            if (finished) return;
            await out.write(message);
            if (final) finish();
          })
          .catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
      },
      onError: (err) => {
        // After what was already queued, so that the states before the error reach the caller.
        sent = sent.then(() => finish(err));
      },
    });
    watches.add(finish);
    call.on("cancelled", onCancel);
    if (call.cancelled) finish();
  });
}
