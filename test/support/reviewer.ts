/**
 * A reviewer agent for tests, on the generated client (no SDK): it opens ServeReviews, says hello,
 * and answers each task with what `answer` returns (undefined: stays silent on that task). Tests
 * wait on its events (`connected`, each task) rather than on time.
 */
import { EventEmitter } from "node:events";
import { Metadata, type ClientDuplexStream, type ServiceError } from "@grpc/grpc-js";
import type { CouncilServiceClient, ReviewTask, ServeReviewsRequest, ServeReviewsResponse, TaskVote } from "../../src/gen/council/v1/council_service.js";
import { ReviewerRole, VoteType } from "../../src/gen/council/v1/review.js";
import { nextEvent } from "./wait.js";

export type Answer = Partial<TaskVote> | undefined;

export class TestReviewer extends EventEmitter {
  readonly tasks: ReviewTask[] = [];
  readonly call: ClientDuplexStream<ServeReviewsRequest, ServeReviewsResponse>;
  /** The status the stream ended with (undefined: still open, or ended OK). */
  error: ServiceError | undefined;
  ended = false;

  constructor(
    client: CouncilServiceClient,
    roles: ReviewerRole[],
    private readonly answer: (task: ReviewTask) => Answer | Promise<Answer> = () => ({ vote: VoteType.VOTE_TYPE_APPROVE, confidence: 0.9, reasoning: "looks fine" }),
  ) {
    super();
    this.call = client.serveReviews(new Metadata());
    this.call.on("metadata", () => this.emit("connected"));
    this.call.on("data", (m: ServeReviewsResponse) => {
      const task = m.task!;
      this.tasks.push(task);
      this.emit("task", task);
      void Promise.resolve(this.answer(task)).then((a) => {
        if (a !== undefined && !this.ended) this.vote({ taskId: task.taskId, ...a });
      });
    });
    this.call.on("error", (err: ServiceError) => {
      this.error = err;
      this.ended = true;
      this.emit("ended");
    });
    this.call.on("end", () => {
      this.ended = true;
      this.emit("ended");
    });
    this.call.write({ message: { $case: "hello", value: { roles } } });
  }

  vote(v: Partial<TaskVote> & { taskId: string }): void {
    this.call.write({
      message: {
        $case: "vote",
        value: { vote: VoteType.VOTE_TYPE_UNSPECIFIED, reasoning: "", concerns: [], conditions: [], confidence: 0, veto: "", ...v },
      },
    });
  }

  /** Resolves once the server has taken the hello (response headers). */
  connected(timeoutMs = 5000): Promise<void> {
    return nextEvent(this, "connected", { timeoutMs, what: "reviewer stream headers" }).then(() => undefined);
  }

  /** Resolves when the stream has ended (with `error` set if it ended with a status). */
  async whenEnded(timeoutMs = 5000): Promise<ServiceError | undefined> {
    if (!this.ended) await nextEvent(this, "ended", { timeoutMs, what: "reviewer stream end" });
    return this.error;
  }

  close(): void {
    if (!this.ended) this.call.cancel();
  }
}

export { ReviewerRole, VoteType };
