/** The gRPC handlers of council.v1.CouncilService: wire in, use case, wire out. */
import { Metadata, type ServerWritableStream } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import { ResourceExhaustedError, UnavailableError } from "../domain/errors.js";
import type { Decision, Vote } from "../domain/model.js";
import type {
  CouncilServiceServer,
  ReviewSuggestionResponse,
  WatchDecisionsRequest,
  WatchDecisionsResponse,
} from "../gen/council/v1/council_service.js";
import { serverStream, StreamWriter, unary, type Telemetry } from "./calls.js";
import {
  decisionToWire,
  decisionTypeFromWire,
  lessonToWire,
  outcomeFromWire,
  profileToWire,
  suggestionFromWire,
  summaryToWire,
  voteToWire,
} from "./convert.js";

export interface CouncilServiceOptions {
  /** How many messages a watcher may fall behind before it is ended with RESOURCE_EXHAUSTED. */
  watchBufferMessages: number;
}

/** Ends every open watch; used at shutdown so that watchers reconnect to another replica. */
export type CloseWatches = () => void;

function voteEvent(vote: Vote, decisionId: string, suggestionId: string): ReviewSuggestionResponse {
  return { event: { $case: "vote", value: voteToWire(vote) }, decisionId, suggestionId };
}

function decisionEvent(d: Decision): ReviewSuggestionResponse {
  return { event: { $case: "decision", value: decisionToWire(d) }, decisionId: d.id, suggestionId: d.suggestionId };
}

/** Events of one stored review, as a watch sends them. */
function reviewEvents(d: Decision, includeVotes: boolean): ReviewSuggestionResponse[] {
  const votes = includeVotes ? d.votes.map((v) => voteEvent(v, d.id, d.suggestionId)) : [];
  return [...votes, decisionEvent(d)];
}

export function councilService(
  council: Council,
  t: Telemetry,
  options: CouncilServiceOptions,
): { implementation: CouncilServiceServer; closeWatches: CloseWatches } {
  const watches = new Set<(err: Error) => void>();

  const implementation: CouncilServiceServer = {
    reviewSuggestion: serverStream(t, "ReviewSuggestion", async (req, out, ctx) => {
      ctx.requestId = req.requestId || undefined;
      const suggestion = suggestionFromWire(req.suggestion);
      const { decision, replayed, stored } = await council.review(
        { suggestion, requestId: req.requestId, dryRun: req.dryRun },
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
        { decisionType: decisionTypeFromWire("decision_type", req.decisionType), suggestionId: req.suggestionId },
        req.pageSize,
        req.pageToken,
      );
      return { decisions: page.items.map(decisionToWire), nextPageToken: page.nextPageToken };
    }),

    recordOutcome: unary(t, "RecordOutcome", async (req, ctx) => {
      ctx.requestId = req.requestId || undefined;
      const decision = await council.recordOutcome({ ...req, outcome: outcomeFromWire("outcome", req.outcome) });
      return { decision: decisionToWire(decision) };
    }),

    getSummary: unary(t, "GetSummary", async () => summaryToWire(await council.summary())),

    listLessons: unary(t, "ListLessons", async (req) => {
      const page = await council.listLessons(req.pageSize, req.pageToken);
      return { lessons: page.items.map(lessonToWire), nextPageToken: page.nextPageToken };
    }),

    watchDecisions: serverStream(t, "WatchDecisions", async (req, out, _ctx, call) => {
      t.metrics.watchers.inc();
      try {
        await watch(council, req, out, call, options.watchBufferMessages, watches);
      } finally {
        t.metrics.watchers.dec();
      }
    }),

    listReviewers: unary(t, "ListReviewers", async () => ({
      reviewers: council.reviewers().map(profileToWire),
      policyVersion: council.policy.version,
    })),
  };

  const closeWatches = () => {
    for (const close of [...watches]) close(new UnavailableError("the server is shutting down; watch again"));
  };
  return { implementation, closeWatches };
}

/**
 * Streams each review stored from now on until the caller cancels. Events wait in a bounded queue
 * while the caller is slow; past the bound the watch ends with RESOURCE_EXHAUSTED.
 */
function watch(
  council: Council,
  req: WatchDecisionsRequest,
  out: StreamWriter<WatchDecisionsResponse>,
  call: ServerWritableStream<WatchDecisionsRequest, WatchDecisionsResponse>,
  bound: number,
  watches: Set<(err: Error) => void>,
): Promise<void> {
  const decisionType = decisionTypeFromWire("decision_type", req.decisionType);
  return new Promise<void>((resolve, reject) => {
    const queue: WatchDecisionsResponse[] = [];
    let pumping = false;
    let finished = false;

    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      unsubscribe();
      watches.delete(finish);
      call.off("cancelled", onCancel);
      queue.length = 0;
      if (err) reject(err);
      else resolve();
    };
    const onCancel = () => finish();

    const pump = async () => {
      if (pumping) return;
      pumping = true;
      while (queue.length > 0 && !finished) await out.write(queue.shift()!);
      pumping = false;
    };

    const unsubscribe = council.watch(
      decisionType,
      (d) => {
        if (finished) return;
        queue.push(...reviewEvents(d, req.includeVotes));
        if (queue.length > bound) {
          finish(new ResourceExhaustedError(`watcher fell more than ${bound} messages behind; watch again`));
          return;
        }
        void pump();
      },
      (err) => finish(err),
      // Response headers tell the client that the watch is live: every review stored from now on is sent.
      () => {
        if (!finished) call.sendMetadata(new Metadata());
      },
    );
    watches.add(finish);
    call.on("cancelled", onCancel);
    if (call.cancelled) finish();
  });
}
