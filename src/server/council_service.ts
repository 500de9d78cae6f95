/** The gRPC handlers of council.v1.CouncilService: wire in, use case, wire out. */
import type { ServerWritableStream } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import { ResourceExhaustedError, UnavailableError } from "../domain/errors.js";
import { isFinal, type Decision, type Vote } from "../domain/model.js";
import type {
  AwaitDecisionRequest,
  AwaitDecisionResponse,
  CouncilServiceServer,
  ReviewSuggestionResponse,
} from "../gen/council/v1/council_service.js";
import { bidiStream, serverStream, unary, type StreamWriter, type Telemetry } from "./calls.js";
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
import { SERVE_REVIEWS_DEFAULTS, serveReviews, type ServeReviewsOptions } from "./serve_reviews.js";
import { WatchHub } from "./watch_hub.js";

export interface CouncilServiceOptions {
  /**
   * How many bytes of events (waiting, or being sent) a watcher may fall behind before it is ended
   * with RESOURCE_EXHAUSTED. One review's events are always taken when nothing is waiting
   * (watch_hub.ts).
   */
  watchBufferBytes: number;
  /**
   * How many WatchDecisions and AwaitDecision streams may be open at once (each holds a store
   * subscription); beyond, a new one is RESOURCE_EXHAUSTED.
   */
  maxWatchers: number;
  /** Bounds of reviewer streams (ServeReviews); default SERVE_REVIEWS_DEFAULTS. */
  serveReviews?: ServeReviewsOptions;
}

/** Ends every open watch and await; used at shutdown so that callers reconnect to another replica. */
export type CloseWatches = () => void;

function voteEvent(vote: Vote, decisionId: string, suggestionId: string): ReviewSuggestionResponse {
  return { event: { $case: "vote", value: voteToWire(vote) }, decisionId, suggestionId };
}

function decisionEvent(d: Decision): ReviewSuggestionResponse {
  return { event: { $case: "decision", value: decisionToWire(d) }, decisionId: d.id, suggestionId: d.suggestionId };
}

export function councilService(
  council: Council,
  t: Telemetry,
  options: CouncilServiceOptions,
): { implementation: CouncilServiceServer; closeWatches: CloseWatches; watchesLive: () => number } {
  const watches = new Set<(err: Error) => void>();
  let watching = 0;
  // Every watch of this server shares one store subscription and one encoding of each event.
  const hub = new WatchHub(council, { boundBytes: options.watchBufferBytes, writeTimeoutMs: t.writeTimeoutMs });
  const reviewers = serveReviews(council, t.metrics, options.serveReviews ?? SERVE_REVIEWS_DEFAULTS);
  council.onExternalVote((role, result, seconds) => {
    t.metrics.externalVotes.inc({ role, result });
    t.metrics.externalVoteSeconds.observe({ role }, seconds);
  });

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
        await hub.watch(req, call, watches);
      } finally {
        watching--;
        t.metrics.watchers.dec();
      }
    }),

    listReviewers: unary(t, "ListReviewers", async () => ({
      reviewers: (await council.reviewers()).map(profileToWire),
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

    serveReviews: bidiStream(t, "ServeReviews", reviewers.handle),
  };

  const closeWatches = () => {
    for (const close of [...watches]) close(new UnavailableError("the server is shutting down; watch again"));
    reviewers.closeAll();
  };
  return { implementation, closeWatches, watchesLive: () => hub.watchesLive };
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
