/** The reviewer hub of a single process (the in-process store): every reviewer is on this replica. */
import type { ReviewerRole } from "../domain/model.js";
import { LocalClaims, LocalReviewers, type ReviewerConnection, type ReviewerHub, type ReviewerSession, type ReviewTask, type TaskAnswer } from "./reviewer_hub.js";

export class MemoryReviewerHub implements ReviewerHub {
  private readonly local = new LocalReviewers();
  private readonly claims = new LocalClaims();

  ask(task: ReviewTask, signal: AbortSignal): Promise<TaskAnswer> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (answer: TaskAnswer) => {
        if (done) return;
        done = true;
        signal.removeEventListener("abort", onAbort);
        resolve(answer);
      };
      const onAbort = () => {
        this.local.withdraw(task.taskId, task.role);
        finish({ kind: "failed", why: "timed out" });
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort);
      const give = (why: "no reviewer connected" | "reviewer disconnected") => {
        if (done) return;
        if (!this.local.assign({ task, settle: finish, lost: () => give("reviewer disconnected") })) finish({ kind: "failed", why });
      };
      give("no reviewer connected");
    });
  }

  connect(reviewer: ReviewerConnection): ReviewerSession {
    return this.local.connect(reviewer);
  }

  async claim(decisionId: string, ttlMs: number): Promise<boolean> {
    return this.claims.take(decisionId, ttlMs);
  }

  async release(decisionId: string): Promise<void> {
    this.claims.release(decisionId);
  }

  async connected(): Promise<Partial<Record<ReviewerRole, number>>> {
    return this.local.counts();
  }

  async close(): Promise<void> {}
}
