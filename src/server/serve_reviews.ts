/**
 * ServeReviews (SPEC section 11): a reviewer agent's stream. It says hello naming its roles, gets
 * one task per review that needs its vote, and answers each with a vote. Votes are checked here
 * (domain/external.ts): an invalid one counts for its task at once as a failure. A stream is ended
 * when it misbehaves: no hello in time, a second hello, more votes for unknown tasks than it could
 * owe, or tasks left unread past a byte bound (its open tasks then go to another reviewer).
 */
import { Metadata, type ServerDuplexStream } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import type { ReviewerSession, ReviewTask } from "../app/reviewer_hub.js";
import { FailedPreconditionError, InvalidArgumentError, ResourceExhaustedError, UnavailableError } from "../domain/errors.js";
import { checkTaskVote } from "../domain/external.js";
import { suggestionBytes } from "../domain/limits.js";
import type { ServeReviewsRequest, ServeReviewsResponse } from "../gen/council/v1/council_service.js";
import type { CallContext } from "./calls.js";
import { rolesFromWire, taskToWire, taskVoteFromWire } from "./convert.js";
import { refusalOf } from "./decode.js";
import type { Metrics } from "./metrics.js";

export interface ServeReviewsOptions {
  /** How long a reviewer stream may stay open without its hello. */
  helloTimeoutMs: number;
  /** Bytes of tasks a reviewer may leave unread before its stream is ended (RESOURCE_EXHAUSTED). */
  unreadBytes: number;
  /** Reviewer streams open at once on this server; beyond, a new one is RESOURCE_EXHAUSTED. */
  maxReviewers: number;
}

export const SERVE_REVIEWS_DEFAULTS: ServeReviewsOptions = {
  helloTimeoutMs: 10_000,
  unreadBytes: 16 * 1024 * 1024,
  maxReviewers: 1000,
};

/**
 * Votes for tasks a reviewer does not hold (answered already, timed out, never given) it may send
 * beyond one per task it was given: a late answer to each timed-out task is fair, a flood is not.
 */
const UNKNOWN_VOTE_ALLOWANCE = 16;

/** The events after which a reviewer's stream is over: half-closed, cancelled, gone, or failed. */
const STREAM_ENDS = ["end", "cancelled", "close", "error"] as const;

/** Ends every reviewer stream (shutdown): each is told UNAVAILABLE, so that its agent reconnects elsewhere. */
export type CloseReviewers = () => void;

export function serveReviews(council: Council, metrics: Metrics, options: ServeReviewsOptions) {
  const open = new Set<(err: Error) => void>();

  const handle = (call: ServerDuplexStream<ServeReviewsRequest, ServeReviewsResponse>, ctx: CallContext): Promise<void> => {
    if (open.size >= options.maxReviewers) {
      return Promise.reject(new ResourceExhaustedError(`this server already has ${options.maxReviewers} reviewer streams open, its limit`));
    }
    return new Promise<void>((resolve, reject) => {
      let session: ReviewerSession | undefined;
      let roles: string[] = [];
      let given = 0;
      let unknown = 0;
      let unread = 0;
      let ended = false;
      const end = (err?: Error) => {
        if (ended) return;
        ended = true;
        clearTimeout(helloTimer);
        open.delete(end);
        call.off("data", onData);
        for (const event of STREAM_ENDS) call.off(event, onEnd);
        if (session) {
          session.close();
          for (const role of roles) metrics.reviewersConnected.dec({ role });
        }
        if (err) reject(err);
        else resolve();
      };
      const onEnd = () => end();
      const helloTimer = setTimeout(
        () => end(new InvalidArgumentError("hello", `must be the first message, within ${options.helloTimeoutMs} ms`)),
        options.helloTimeoutMs,
      );

      const deliver = (task: ReviewTask) => {
        if (ended) return;
        const bytes = suggestionBytes(task.suggestion);
        if (unread + bytes > options.unreadBytes) {
          // Ended on the next turn, not inside the hub's hand-out: the task is then given to another reviewer.
          setImmediate(() => end(new ResourceExhaustedError(`the reviewer left ${unread} bytes of tasks unread`)));
          return;
        }
        given++;
        unread += bytes;
        call.write(taskToWire(task), () => {
          unread -= bytes;
        });
      };

      const onData = (message: ServeReviewsRequest) => {
        if (ended) return;
        // A message refused on its bytes (decode.ts: past a suggestion's limits, not UTF-8, not protobuf).
        const refused = refusalOf(message);
        if (refused) return end(refused);
        const m = message.message;
        if (!session) {
          if (m?.$case !== "hello") return end(new InvalidArgumentError("hello", "must be the first message"));
          try {
            const wanted = rolesFromWire("hello.roles", m.value.roles);
            session = council.serveReviews({ principal: ctx.principal.name, roles: wanted, deliver });
            roles = wanted;
          } catch (err) {
            return end(err as Error);
          }
          clearTimeout(helloTimer);
          for (const role of roles) metrics.reviewersConnected.inc({ role });
          // Headers now: the agent learns it is serving (its SDK reports "connected") before any task.
          call.sendMetadata(new Metadata());
          return;
        }
        if (m?.$case === "hello") return end(new FailedPreconditionError("hello may be sent only once, as the first message"));
        if (m?.$case !== "vote") return end(new InvalidArgumentError("message", "must be a hello or a vote"));
        const checked = checkTaskVote(taskVoteFromWire(m.value));
        if (session.answer(m.value.taskId, "invalid" in checked ? checked : { vote: checked })) return;
        if (++unknown > given + UNKNOWN_VOTE_ALLOWANCE) {
          end(new ResourceExhaustedError(`${unknown} votes for tasks this reviewer does not hold (it was given ${given})`));
        }
      };

      open.add(end);
      call.on("data", onData);
      // The agent half-closed, cancelled or went away: its open tasks go to another reviewer.
      for (const event of STREAM_ENDS) call.on(event, onEnd);
    });
  };

  const closeAll: CloseReviewers = () => {
    for (const end of [...open]) end(new UnavailableError("the server is shutting down; serve reviews on another replica"));
  };
  return { handle, closeAll };
}
