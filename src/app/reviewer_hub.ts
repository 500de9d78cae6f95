/**
 * How a review reaches external reviewers (SPEC section 11): the council asks a hub for one role's
 * vote on a task; reviewer agents connected over ServeReviews (on this replica or, through the
 * store, on any) receive tasks and answer them. Two hubs implement it: reviewer_hub_memory.ts for
 * one process, store/redis_reviewers.ts across replicas. Neither knows gRPC.
 */
import type { ExternalVote, FailureCause } from "../domain/external.js";
import type { ReviewerRole, Suggestion } from "../domain/model.js";

export interface ReviewTask {
  taskId: string;
  decisionId: string;
  suggestion: Suggestion;
  role: ReviewerRole;
  /** When the review stops waiting for this vote. */
  deadline: Date;
  dryRun: boolean;
}

/** What came of a task: a valid vote (and who cast it), or why none counts. */
export type TaskAnswer = { kind: "vote"; vote: ExternalVote; castBy: string } | { kind: "failed"; why: FailureCause };

/** What a reviewer agent sends for a task: a vote that passed checkTaskVote, or why it did not. */
export type ReviewerAnswer = { vote: ExternalVote } | { invalid: string };

/** A reviewer agent's stream, as a hub sees it. */
export interface ReviewerConnection {
  /** The reviewer's principal: each of its votes is cast by it. */
  principal: string;
  roles: readonly ReviewerRole[];
  /** Sends a task to the reviewer; it must not throw (a stream that cannot take it ends itself). */
  deliver(task: ReviewTask): void;
}

export interface ReviewerSession {
  /** Answers one of the reviewer's open tasks; false when it has none by that id (answered, timed out, or never given). */
  answer(taskId: string, answer: ReviewerAnswer): boolean;
  /** The reviewer left: its open tasks go to another reviewer of their role while time remains. */
  close(): void;
}

export interface ReviewerHub {
  /**
   * Gives the task to one connected reviewer of its role (spread over them, on any replica) and
   * resolves with its answer. Resolves at once with "no reviewer connected" when none is, with
   * "reviewer disconnected" when its reviewer left and none other is, and with "timed out" when
   * `signal` aborts first (the council aborts it at the task's deadline).
   */
  ask(task: ReviewTask, signal: AbortSignal): Promise<TaskAnswer>;
  connect(reviewer: ReviewerConnection): ReviewerSession;
  /**
   * Claims the asking of reviewers for a review (its decision id) for `ttlMs`, on every replica:
   * false when another call holds the claim (a repeat of the same request arriving together).
   */
  claim(decisionId: string, ttlMs: number): Promise<boolean>;
  /** Gives a claim back (its review ended without storing a decision). */
  release(decisionId: string): Promise<void>;
  /** Reviewers connected per role across all replicas (roles with none may be left out). */
  connected(): Promise<Partial<Record<ReviewerRole, number>>>;
  close(): Promise<void>;
}

/** One task given to a local reviewer: how its answer is told, and what happens if the reviewer leaves first. */
export interface Assignment {
  task: ReviewTask;
  settle(answer: TaskAnswer): void;
  /** The reviewer left without answering. */
  lost(): void;
}

/**
 * The reviewer agents connected to this replica, by role, and the tasks each holds. A task goes to
 * the reviewer of its role holding the fewest, the longest idle first among equals, so that tasks
 * spread over them. Both hubs use it for the reviewers on their own replica.
 */
export class LocalReviewers {
  private readonly byRole = new Map<ReviewerRole, Set<LocalReviewer>>();
  private turn = 0;

  /** Connected reviewers per role on this replica. */
  counts(): Partial<Record<ReviewerRole, number>> {
    const counts: Partial<Record<ReviewerRole, number>> = {};
    for (const [role, set] of this.byRole) if (set.size > 0) counts[role] = set.size;
    return counts;
  }

  has(role: ReviewerRole): boolean {
    return (this.byRole.get(role)?.size ?? 0) > 0;
  }

  /** Gives `a` to a reviewer of its role; false when none is connected here. */
  assign(a: Assignment): boolean {
    let best: LocalReviewer | undefined;
    for (const r of this.byRole.get(a.task.role) ?? []) {
      if (!best || r.open.size < best.open.size || (r.open.size === best.open.size && r.lastGiven < best.lastGiven)) best = r;
    }
    if (!best) return false;
    best.lastGiven = ++this.turn;
    best.open.set(a.task.taskId, a);
    best.connection.deliver(a.task);
    return true;
  }

  /** Takes back a task that is no longer wanted (timed out); its late answer then finds no task. */
  withdraw(taskId: string, role: ReviewerRole): void {
    for (const r of this.byRole.get(role) ?? []) if (r.open.delete(taskId)) return;
  }

  /** `onChange` is told each time the reviewers of this replica change (the Redis hub publishes its counts). */
  connect(connection: ReviewerConnection, onChange?: () => void): ReviewerSession {
    const reviewer: LocalReviewer = { connection, open: new Map(), lastGiven: 0 };
    const roles = [...new Set(connection.roles)];
    for (const role of roles) {
      let set = this.byRole.get(role);
      if (!set) this.byRole.set(role, (set = new Set()));
      set.add(reviewer);
    }
    onChange?.();
    let closed = false;
    return {
      answer: (taskId, answer) => {
        const a = reviewer.open.get(taskId);
        if (!a) return false;
        reviewer.open.delete(taskId);
        a.settle("vote" in answer ? { kind: "vote", vote: answer.vote, castBy: connection.principal } : { kind: "failed", why: `invalid vote: ${answer.invalid}` });
        return true;
      },
      close: () => {
        if (closed) return;
        closed = true;
        for (const role of roles) this.byRole.get(role)?.delete(reviewer);
        onChange?.();
        const orphans = [...reviewer.open.values()];
        reviewer.open.clear();
        for (const a of orphans) a.lost();
      },
    };
  }
}

interface LocalReviewer {
  connection: ReviewerConnection;
  /** Its open tasks by id. */
  open: Map<string, Assignment>;
  /** When it was last given a task (a counter), to spread ties. */
  lastGiven: number;
}

/**
 * Claims held in this process, each until it lapses: the whole of the in-process hub's claims, and
 * the Redis hub's guard against two calls of one replica both holding a claim while Redis answers.
 */
export class LocalClaims {
  /** Claimed decision ids and when each claim lapses (performance.now()). */
  private readonly until = new Map<string, number>();

  /** Takes the claim unless a live one is held; false when it is. */
  take(decisionId: string, ttlMs: number): boolean {
    const now = performance.now();
    const until = this.until.get(decisionId);
    if (until !== undefined && until > now) return false;
    // Lapsed claims are dropped as new ones are made, so the map holds only live reviews' claims.
    for (const [id, u] of this.until) if (u <= now) this.until.delete(id);
    this.until.set(decisionId, now + ttlMs);
    return true;
  }

  release(decisionId: string): void {
    this.until.delete(decisionId);
  }
}
