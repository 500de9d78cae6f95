/**
 * The reviewer hub across replicas (SPEC section 11): a reviewer agent connected to any replica
 * serves reviews submitted to any replica, through Redis. The keys are in keys.ts (`reviewers`,
 * under one hash tag of their own, so that every script touches one slot, on a cluster too).
 *
 * - Presence: every replica renews, every `heartbeatMs`, its entry in a sorted set scored by when it
 *   lapses (`presenceTtlMs` later by the Redis server's TIME, so that no two replicas' clocks are
 *   ever compared) and writes how many reviewers of each role are connected to it; it does so at
 *   once too whenever its reviewers change. A replica that stops without saying so stops counting
 *   once its entry lapses (15 s by default); one that closes removes it.
 * - Tasks: the asking replica picks the replica whose reviewer gets a task (lua/reviewer_pick.lua:
 *   round the reviewers of the role across every present replica, with one counter per role shared
 *   by all askers) and puts the task in that replica's inbox, a list (lua/reviewer_send.lua). Each
 *   replica reads its inbox with BRPOP on a connection of its own and hands each task to one of its
 *   reviewers (LocalReviewers: the one holding the fewest). Answers (a vote, an invalid vote, or
 *   "lost": its reviewer left and no other here has the role) go back to the asker's inbox the
 *   same way; so do withdrawals of tasks that timed out. When the pick falls on the asking replica
 *   itself, the task goes to its reviewer in-process.
 * - A task whose reviewer is lost goes to another reviewer, on any replica, while time remains:
 *   a replica that loses one first publishes its new counts, then answers "lost", and the asker
 *   picks again. An asker also notices, at each heartbeat, that the replica holding its task has
 *   lapsed (it stopped without answering), and picks again.
 * - Claims (SPEC §11: repeats of one request that arrive together ask the reviewers once): one key
 *   per review in its decision's bucket, SET only if absent, with a lifetime (lua/reviewer_claim.lua).
 *
 * Why lists and not pub/sub or streams: a task is a message for exactly one replica, which must
 * not be lost if that replica is briefly away from Redis (pub/sub drops what nobody is listening
 * to at that moment) and must be read once (a stream with a consumer group per replica would do,
 * at the cost of acknowledgements, pending-entry recovery and trimming that a list with BRPOP, a
 * cap and an expiry gives for nothing here: a task that is lost with its replica is re-sent by its
 * asker anyway). BRPOP is in every Redis version and in Redis-compatible servers, and on a cluster
 * a blocking read goes to the one node holding the tag's slot.
 */
import { randomBytes } from "node:crypto";
import type { ConnectionOptions } from "node:tls";
import { LocalClaims, LocalReviewers, type Assignment, type ReviewerConnection, type ReviewerHub, type ReviewerSession, type ReviewTask, type TaskAnswer } from "../app/reviewer_hub.js";
import { checkTaskVote, type FailureCause } from "../domain/external.js";
import { REVIEWER_ROLES, type ReviewerRole } from "../domain/model.js";
import type { Logger } from "../log.js";
import type { Keyspace, ReviewerKeys } from "./keys.js";
import { createClient, lua, parseRedisUrl, reconnectDelay, whenReady, type RedisClient } from "./redis_connection.js";
import { classify, withTimeout } from "./redis_errors.js";

export interface RedisReviewerHubOptions {
  /** The store's REDIS_URL (redis_connection.ts): the hub has connections of its own to it. */
  url: string;
  /** The store's keyspace: its prefix, and the buckets that claims live in. */
  keys: Keyspace;
  log: Logger;
  /** More TLS options for rediss:// (e.g. `ca`). */
  tls?: ConnectionOptions;
  /** Each Redis command fails after this long. Default 1000. */
  commandTimeoutMs?: number;
  /** How long start-up waits for Redis. Default 10000. */
  startTimeoutMs?: number;
  /** How long a replica counts as present after its last heartbeat (SPEC §11: at most 15 s). Default 15000. */
  presenceTtlMs?: number;
  /** How often a replica renews its presence. Default 5000. */
  heartbeatMs?: number;
  /** How long one blocking read of the inbox waits for a message. Default 1000. */
  blockMs?: number;
}

/** Dispatches of one task at most (each after a reviewer or replica was lost): a bound beyond the deadline's. */
const MAX_DISPATCHES = 16;
/** Messages an inbox holds at most; its replica reads them as they come, so this is reached only if it is stuck. */
const INBOX_CAP = 10_000;
/** Messages read from the inbox at once after a blocking read returned one. */
const DRAIN_BATCH = 100;
/** A held task is withdrawn from its reviewer this long after its asker's deadline, if no withdrawal came. */
const HOLD_MARGIN_MS = 2000;
/** The longest a task is held for its asker (a safety net: the asker withdraws it at its deadline). */
const MAX_HOLD_MS = 10 * 60_000;

/** The custom commands defined from the Lua files. */
interface Scripts {
  councilReviewerPresence(replicas: string, counts: string, id: string, ttlMs: string, counted: string, keepMs: string): Promise<string[]>;
  councilReviewerCounts(replicas: string, counts: string): Promise<string[]>;
  councilReviewerPick(replicas: string, counts: string, turns: string, role: string, keepMs: string): Promise<string | null>;
  councilReviewerSend(inbox: string, replicas: string, id: string, message: string, keepMs: string, cap: string): Promise<number>;
  councilReviewerClaim(claim: string, id: string, ttlMs: string): Promise<number>;
  councilReviewerRelease(claim: string, id: string): Promise<number>;
}

/** A task as it travels in a message (its deadline as an ISO string). */
type WireTask = Omit<ReviewTask, "deadline"> & { deadline: string };

/** What replicas send each other through their inboxes. `n` numbers the dispatches of one task. */
type Message =
  | { k: "task"; from: string; n: number; ms: number; task: WireTask }
  | { k: "withdraw"; from: string; id: string; n: number }
  | { k: "answer"; from: string; id: string; n: number; answer: TaskAnswer }
  | { k: "lost"; from: string; id: string; n: number; given: boolean };

/** A task this replica asked for and waits on. */
interface Pending {
  task: ReviewTask;
  finish(answer: TaskAnswer): void;
  done: boolean;
  /** What counts if no reviewer takes it: "no reviewer connected" until a reviewer was given it. */
  why: "no reviewer connected" | "reviewer disconnected";
  /** The replica holding it (this one's id when a reviewer here has it); undefined while it is being dispatched. */
  target: string | undefined;
  /** Its current dispatch: answers about an earlier one are ignored. */
  n: number;
  dispatches: number;
  /** The heartbeat count when it was sent to `target` (only a later heartbeat can tell that the target lapsed). */
  sentAtBeat: number;
}

/** A task another replica gave to a reviewer here. */
interface Held {
  from: string;
  n: number;
  role: ReviewerRole;
  timer: NodeJS.Timeout;
}


export class RedisReviewerHub implements ReviewerHub {
  /** This replica's id in the hub (a new one at each start). */
  readonly id = randomBytes(8).toString("hex");
  private readonly local = new LocalReviewers();
  private readonly k: ReviewerKeys;
  private readonly pending = new Map<string, Pending>();
  private readonly held = new Map<string, Held>();
  /** Claims this replica holds, so that two of its own calls never both hold one. */
  private readonly claims = new LocalClaims();
  private closed = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  /** Heartbeats serialised: the one running (or done), and the one queued behind it. */
  private beating: Promise<void> = Promise.resolve();
  private nextBeat: Promise<void> | undefined;
  private beats = 0;

  private constructor(
    private readonly client: RedisClient,
    /** The inbox reader's own connection: BRPOP holds it. */
    private readonly blocking: RedisClient,
    private readonly keys: Keyspace,
    private readonly log: Logger,
    private readonly o: Required<Omit<RedisReviewerHubOptions, "url" | "keys" | "log" | "tls">>,
  ) {
    this.k = keys.reviewers();
  }

  /** Connects (waiting up to `startTimeoutMs`), says this replica is present, and starts reading its inbox and renewing its presence. */
  static async open(options: RedisReviewerHubOptions): Promise<RedisReviewerHub> {
    const o = {
      commandTimeoutMs: options.commandTimeoutMs ?? 1000,
      startTimeoutMs: options.startTimeoutMs ?? 10_000,
      presenceTtlMs: options.presenceTtlMs ?? 15_000,
      heartbeatMs: options.heartbeatMs ?? 5000,
      blockMs: options.blockMs ?? 1000,
    };
    if (!(o.heartbeatMs > 0 && o.presenceTtlMs > o.heartbeatMs)) throw new RangeError("the presence must outlast the heartbeat");
    const target = parseRedisUrl(options.url);
    const client = createClient(target, { commandTimeoutMs: o.commandTimeoutMs, connectionName: "council-reviewers", tls: options.tls });
    const blocking = createClient(target, {
      commandTimeoutMs: o.blockMs + o.commandTimeoutMs,
      connectionName: "council-reviewers-inbox",
      tls: options.tls,
    });
    for (const c of [client, blocking]) c.on("error", () => undefined); // reported through failed calls
    client.defineCommand("councilReviewerPresence", { numberOfKeys: 2, lua: lua("reviewer_presence") });
    client.defineCommand("councilReviewerCounts", { numberOfKeys: 2, lua: lua("reviewer_counts") });
    client.defineCommand("councilReviewerPick", { numberOfKeys: 3, lua: lua("reviewer_pick") });
    client.defineCommand("councilReviewerSend", { numberOfKeys: 2, lua: lua("reviewer_send") });
    client.defineCommand("councilReviewerClaim", { numberOfKeys: 1, lua: lua("reviewer_claim") });
    client.defineCommand("councilReviewerRelease", { numberOfKeys: 1, lua: lua("reviewer_release") });
    const hub = new RedisReviewerHub(client, blocking, options.keys, options.log, o);
    try {
      await whenReady(client, o.startTimeoutMs);
      await hub.scripts.councilReviewerPresence(hub.k.replicas, hub.k.counts, hub.id, String(o.presenceTtlMs), "{}", String(hub.keepMs));
    } catch (err) {
      client.disconnect();
      blocking.disconnect();
      throw new Error(`cannot open the reviewer hub at ${target.where}: ${(err as Error).message}`);
    }
    hub.reading = hub.read();
    hub.heartbeatTimer = setInterval(() => void hub.publish(), o.heartbeatMs);
    hub.heartbeatTimer.unref();
    return hub;
  }

  // ---- asking ----

  ask(task: ReviewTask, signal: AbortSignal): Promise<TaskAnswer> {
    return new Promise((resolve) => {
      const p: Pending = {
        task,
        done: false,
        why: "no reviewer connected",
        target: undefined,
        n: 0,
        dispatches: 0,
        sentAtBeat: 0,
        finish: (answer) => {
          if (p.done) return;
          p.done = true;
          if (this.pending.get(task.taskId) === p) this.pending.delete(task.taskId);
          signal.removeEventListener("abort", onAbort);
          resolve(answer);
        },
      };
      const onAbort = () => {
        if (p.done) return;
        this.withdraw(p);
        p.finish({ kind: "failed", why: "timed out" });
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort);
      if (this.closed) return p.finish({ kind: "failed", why: "no reviewer connected" });
      this.pending.set(task.taskId, p);
      this.dispatch(p);
    });
  }

  /**
   * Gives the task to a reviewer of its role: picks a replica (lua/reviewer_pick.lua) and sends it
   * there, or gives it to a reviewer here in-process. Fails the task with `p.why` when no reviewer
   * of the role is connected anywhere. A failure to reach Redis counts as a lost reviewer (the
   * council would count it so too).
   */
  private dispatch(p: Pending): void {
    this.dispatchNow(p).catch((err: unknown) => {
      this.log.debug({ err: (err as Error).message, taskId: p.task.taskId }, "reviewer hub: could not dispatch a task");
      p.finish({ kind: "failed", why: "reviewer disconnected" });
    });
  }

  private async dispatchNow(p: Pending): Promise<void> {
    while (!p.done) {
      if (++p.dispatches > MAX_DISPATCHES) return p.finish({ kind: "failed", why: p.why });
      const n = ++p.n;
      p.target = undefined;
      let target = await this.pick(p.task.role);
      if (p.done || p.n !== n) return; // answered, withdrawn or dispatched again meanwhile
      // A reviewer that has just connected here may not be published yet: it still takes the task.
      if (target === undefined && this.local.has(p.task.role)) target = this.id;
      if (target === undefined) return p.finish({ kind: "failed", why: p.why });
      if (target === this.id) {
        p.target = this.id;
        const given = this.local.assign({
          task: p.task,
          settle: (answer) => p.n === n && p.finish(answer),
          lost: () => {
            if (p.done || p.n !== n) return;
            p.why = "reviewer disconnected";
            this.dispatch(p);
          },
        });
        if (given) return;
        // The presence said that a reviewer here has the role; it has just left: publish that, then pick again.
        await this.publish();
        continue;
      }
      p.target = target;
      p.sentAtBeat = this.beats;
      const ms = Math.min(MAX_HOLD_MS, Math.max(1000, p.task.deadline.getTime() - Date.now()));
      const sent = await this.send(target, { k: "task", from: this.id, n, ms, task: { ...p.task, deadline: p.task.deadline.toISOString() } });
      if (sent || p.done || p.n !== n) return;
      // The target lapsed since the pick: pick again.
    }
  }

  /** The replica whose reviewer gets the next task of `role`, or undefined when none is connected anywhere. */
  private async pick(role: ReviewerRole): Promise<string | undefined> {
    const id = await this.call(() => this.scripts.councilReviewerPick(this.k.replicas, this.k.counts, this.k.turns, role, String(this.keepMs)));
    return id ?? undefined;
  }

  /** Takes a task back (timed out): from the reviewer here, or from the replica holding it. */
  private withdraw(p: Pending): void {
    if (p.target === this.id) this.local.withdraw(p.task.taskId, p.task.role);
    else if (p.target !== undefined) {
      void this.send(p.target, { k: "withdraw", from: this.id, id: p.task.taskId, n: p.n }).catch(() => undefined);
    }
  }

  // ---- serving tasks of other replicas ----

  connect(reviewer: ReviewerConnection): ReviewerSession {
    return this.local.connect(reviewer, () => void this.publish());
  }

  /** One message from the inbox; one that cannot be read is logged and dropped (the others still count). */
  private onMessage(raw: string): void {
    try {
      this.handle(JSON.parse(raw) as Message);
    } catch (err) {
      this.log.warn({ bytes: raw.length, err: (err as Error).message }, "reviewer hub: a message in the inbox cannot be read; dropped");
    }
  }

  private handle(m: Message): void {
    if (m.k === "task") return this.take(m);
    const id = m.id;
    if (m.k === "withdraw") {
      const h = this.held.get(id);
      if (h && h.from === m.from && h.n === m.n) {
        this.drop(id, h);
        this.local.withdraw(id, h.role);
      }
      return;
    }
    const p = this.pending.get(id);
    if (!p || p.done || p.n !== m.n || p.target !== m.from) return; // about an earlier dispatch, or too late
    if (m.k === "answer") return p.finish(reviveAnswer(m.answer));
    if (m.k === "lost") {
      if (m.given) p.why = "reviewer disconnected";
      this.dispatch(p);
    }
  }

  /** A task from another replica: to a reviewer here, or back as lost when none here has its role now. */
  private take(m: Extract<Message, { k: "task" }>): void {
    const task: ReviewTask = { ...m.task, deadline: new Date(m.task.deadline) };
    const id = task.taskId;
    if (this.closed) {
      void this.send(m.from, { k: "lost", from: this.id, id, n: m.n, given: false }).catch(() => undefined);
      return;
    }
    const earlier = this.held.get(id);
    if (earlier) {
      this.drop(id, earlier);
      this.local.withdraw(id, earlier.role);
    }
    const h: Held = {
      from: m.from,
      n: m.n,
      role: task.role,
      // A safety net for a withdrawal that never comes (its asker stopped): the reviewer does not hold it forever.
      timer: setTimeout(() => {
        if (this.held.get(id) !== h) return;
        this.drop(id, h);
        this.local.withdraw(id, h.role);
      }, Math.min(MAX_HOLD_MS, Math.max(0, m.ms)) + HOLD_MARGIN_MS),
    };
    h.timer.unref();
    this.held.set(id, h);
    const a: Assignment = {
      task,
      settle: (answer) => {
        if (this.held.get(id) !== h) return;
        this.drop(id, h);
        void this.reply(h, { k: "answer", from: this.id, id, n: h.n, answer });
      },
      lost: () => {
        if (this.held.get(id) !== h) return;
        if (!this.closed && this.local.assign(a)) return;
        this.drop(id, h);
        void this.replyLost(h, id, true);
      },
    };
    if (!this.local.assign(a)) {
      this.drop(id, h);
      void this.replyLost(h, id, false);
    }
  }

  /** Tells the asker that no reviewer here has its task, once the counts it will pick from again say so. */
  private async replyLost(h: Held, id: string, given: boolean): Promise<void> {
    await this.publish();
    await this.reply(h, { k: "lost", from: this.id, id, n: h.n, given });
  }

  private async reply(h: Held, m: Message): Promise<void> {
    try {
      await this.send(h.from, m);
    } catch (err) {
      // Its asker then finds out at the deadline (or picks again when this replica lapses).
      this.log.debug({ err: (err as Error).message, to: h.from, kind: m.k }, "reviewer hub: could not answer a task");
    }
  }

  /** Puts `m` in replica `to`'s inbox; false when that replica is not present. */
  private async send(to: string, m: Message): Promise<boolean> {
    const pushed = await this.call(() =>
      this.scripts.councilReviewerSend(this.k.inbox(to), this.k.replicas, to, JSON.stringify(m), String(this.inboxKeepMs), String(INBOX_CAP)),
    );
    return pushed === 1;
  }

  /** Reads the inbox until the hub closes: one BRPOP at a time, then what else is waiting, in order. */
  private async read(): Promise<void> {
    const inbox = this.k.inbox(this.id);
    let failures = 0;
    while (!this.closed) {
      try {
        await whenReady(this.blocking, this.o.commandTimeoutMs);
        const popped = await this.blocking.brpop(inbox, this.o.blockMs / 1000);
        failures = 0;
        if (!popped) continue;
        this.onMessage(popped[1]);
        for (;;) {
          const more = (await this.blocking.call("RPOP", inbox, String(DRAIN_BATCH))) as string[] | null;
          for (const raw of more ?? []) this.onMessage(raw);
          if (!more || more.length < DRAIN_BATCH) break;
        }
      } catch (err) {
        if (this.closed) break;
        failures++;
        this.log.debug({ err: (err as Error).message, failures }, "reviewer hub: reading the inbox failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, reconnectDelay(failures)).unref());
      }
    }
  }

  // ---- presence ----

  /**
   * Renews this replica's presence with its reviewers' counts now, after any heartbeat under way
   * (several calls meanwhile share one); then picks again for tasks whose replica has lapsed.
   * Never rejects: a failure is left to the next heartbeat.
   */
  private publish(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (!this.nextBeat) {
      const beat = this.beating.then(async () => {
        this.nextBeat = undefined;
        await this.beat();
      });
      this.nextBeat = beat;
      this.beating = beat;
    }
    return this.nextBeat;
  }

  private async beat(): Promise<void> {
    if (this.closed) return;
    const beat = ++this.beats;
    let live: Set<string>;
    try {
      const counts = JSON.stringify(this.local.counts());
      live = new Set(
        await this.call(() =>
          this.scripts.councilReviewerPresence(this.k.replicas, this.k.counts, this.id, String(this.o.presenceTtlMs), counts, String(this.keepMs)),
        ),
      );
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, "reviewer hub: the heartbeat failed; the next one retries");
      return;
    }
    for (const p of this.pending.values()) {
      if (p.done || p.target === undefined || p.target === this.id || live.has(p.target) || p.sentAtBeat >= beat) continue;
      p.why = "reviewer disconnected";
      this.dispatch(p);
    }
  }

  /** The reviewers connected per role on every present replica: this one's as they are now, the others' as last published. */
  async connected(): Promise<Partial<Record<ReviewerRole, number>>> {
    const rows = await this.op("connectedReviewers", () => this.scripts.councilReviewerCounts(this.k.replicas, this.k.counts));
    const total = this.local.counts();
    for (let i = 0; i + 1 < rows.length; i += 2) {
      if (rows[i] === this.id) continue;
      let counts: unknown;
      try {
        counts = JSON.parse(rows[i + 1]!);
      } catch {
        continue;
      }
      for (const role of REVIEWER_ROLES) {
        const n = (counts as Record<string, unknown> | null)?.[role];
        if (typeof n === "number" && n > 0) total[role] = (total[role] ?? 0) + n;
      }
    }
    return total;
  }

  // ---- claims ----

  async claim(decisionId: string, ttlMs: number): Promise<boolean> {
    // Held here before Redis answers, so that a second call of this replica meanwhile is refused.
    if (!this.claims.take(decisionId, ttlMs)) return false;
    try {
      const b = this.keys.bucketOfId(decisionId);
      const got = await this.op("claim", () => this.scripts.councilReviewerClaim(this.keys.claim(b, decisionId), this.id, String(Math.ceil(ttlMs))));
      if (got !== 1) this.claims.release(decisionId);
      return got === 1;
    } catch (err) {
      this.claims.release(decisionId);
      throw err;
    }
  }

  async release(decisionId: string): Promise<void> {
    this.claims.release(decisionId);
    const b = this.keys.bucketOfId(decisionId);
    await this.op("release", () => this.scripts.councilReviewerRelease(this.keys.claim(b, decisionId), this.id));
  }

  // ---- closing ----

  /**
   * Stops renewing and reading, removes this replica's presence, and hands back the tasks its
   * reviewers hold for other replicas (their askers pick again, elsewhere); its own tasks still
   * waiting count as lost reviewers.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.heartbeatTimer);
    await this.beating;
    try {
      await this.call(() => this.scripts.councilReviewerPresence(this.k.replicas, this.k.counts, this.id, "0", "{}", String(this.keepMs)));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "reviewer hub: could not remove this replica's presence; it lapses on its own");
    }
    await Promise.all(
      [...this.held].map(([id, h]) => {
        this.drop(id, h);
        this.local.withdraw(id, h.role);
        return this.reply(h, { k: "lost", from: this.id, id, n: h.n, given: true });
      }),
    );
    for (const p of [...this.pending.values()]) p.finish({ kind: "failed", why: "reviewer disconnected" });
    this.blocking.disconnect();
    await this.reading;
    try {
      await withTimeout(this.client.quit(), this.o.commandTimeoutMs);
    } catch {
      this.client.disconnect();
    }
  }

  // ---- plumbing ----

  private drop(id: string, h: Held): void {
    clearTimeout(h.timer);
    if (this.held.get(id) === h) this.held.delete(id);
  }

  private get scripts(): Scripts {
    return this.client as unknown as Scripts;
  }

  /** How long the presence keys live after the last heartbeat of any replica. */
  private get keepMs(): number {
    return Math.max(60_000, 4 * this.o.presenceTtlMs);
  }

  /** How long an inbox lives after its last message: past its replica's presence. */
  private get inboxKeepMs(): number {
    return 2 * this.o.presenceTtlMs;
  }

  /** One Redis call within the command timeout (the client's own timeout does not cover a cluster's redirections). */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    return withTimeout(fn(), 2 * this.o.commandTimeoutMs);
  }

  /** A call whose failure reaches a caller: classified once here (redis_errors.ts), UNAVAILABLE when Redis is away. */
  private async op<T>(name: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await this.call(fn);
    } catch (err) {
      throw classify(name, err);
    }
  }
}

/** An answer read from another replica's message, checked as a reviewer's own vote is. */
function reviveAnswer(a: TaskAnswer): TaskAnswer {
  if (a?.kind === "vote" && typeof a.castBy === "string") {
    const checked = checkTaskVote(a.vote);
    return "invalid" in checked ? { kind: "failed", why: `invalid vote: ${checked.invalid}` } : { kind: "vote", vote: checked, castBy: a.castBy };
  }
  if (a?.kind === "failed" && isFailureCause(a.why)) return a;
  return { kind: "failed", why: "reviewer disconnected" };
}

function isFailureCause(why: unknown): why is FailureCause {
  return (
    why === "timed out" ||
    why === "no reviewer connected" ||
    why === "reviewer disconnected" ||
    (typeof why === "string" && why.startsWith("invalid vote: "))
  );
}

