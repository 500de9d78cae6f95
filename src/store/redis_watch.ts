/**
 * The live feed behind WatchDecisions and AwaitDecision: every bucket's event stream
 * (`<prefix>{tag}:events`, one small entry per stored review — its bucket's sequence number, its
 * order, the decision id and type — written by save_review.lua in the same atomic step as the
 * review) and update stream (`<prefix>{tag}:updates`, one small entry per change to a stored
 * decision — sequence number, order, decision id, revision and what changed — written by
 * update_lifecycle.lua and record_outcome.lua with the change), read by one shared reader per
 * process, which then fetches the decisions themselves (pipelined, a few at a time, so that memory
 * stays bounded however large decisions are). The reader starts with the first subscriber, at the
 * end of each stream as it is then, and stops with the last.
 *
 * Updates have their own streams, with their own sequence (`updates` in the bucket's counters),
 * rather than entries in `events`: a replica of layout 1 still running during an upgrade reads
 * `events` and would take an entry outside its sequence for lost data. All entries of a bucket
 * share one order (`us`, the server's TIME made strictly increasing per bucket), so a change is
 * delivered after the review it changes and in the order the changes were made.
 *
 * - Single Redis: one blocking `XREAD BLOCK … STREAMS <every bucket>` on a dedicated connection.
 *   One read is atomic across the streams, so sorting each batch by the order save_review.lua put
 *   in the entries gives the order the reviews were stored in.
 * - Cluster: a multi-key XREAD across slots is refused (CROSSSLOT), and one blocking connection
 *   per bucket would cost buckets × masters connections per process, so the reader polls every
 *   bucket without blocking (pipelined per node) every `pollMs`. Reads of different nodes are not
 *   one snapshot, so each entry is held back until the read after the one that found it; then no
 *   review is delivered before one stored earlier (by a single clock; across the masters of a
 *   real cluster the order is only as good as their clocks agree).
 *
 * A watch never hangs silently. The reader knows, for every stream, the sequence number of the
 * last entry it has seen (at start: the bucket's counter, read atomically with the stream's end,
 * so an empty stream is no excuse), and it ends every subscription with an UnavailableError
 * ("watch again") when
 * - an entry's sequence number is not the next one: entries were trimmed before it read them (it
 *   fell further behind than the capped stream keeps), or the sequence started again (Redis lost
 *   data: a restart without persistence, a FLUSHALL, a failover to a replica that had not caught
 *   up);
 * - a periodic check (every `checkMs`, whether or not entries arrive) finds that a bucket's counter
 *   went back or its stream's ids did (the same losses, with no new entry to show them), or that
 *   the counter moved on while the stream holds nothing after the last entry read (trimmed
 *   before it was read);
 * - an entry has no sequence number or names no decision;
 * - it could not read Redis for `stallMs` (a Redis blip shorter than that is ridden out: the
 *   reader retries from the last entry it saw).
 * A decision an event names that is missing or unreadable ends the subscriptions with the error
 * the store would give for it (DATA_LOSS or INTERNAL), rather than skipping it unseen.
 */
import type { Redis } from "ioredis";
import { CouncilError, DataLossError, UnavailableError } from "../domain/errors.js";
import { DEFAULT_VERDICTS, type VerdictsSection } from "../domain/lifecycle.js";
import type { Decision } from "../domain/model.js";
import type { Logger } from "../log.js";
import type { Keyspace } from "./keys.js";
import { decodeDecision, decodeLesson, fieldMap, revisionOf, statusOf } from "./redis_codec.js";
import { whenReady, type RedisClient } from "./redis_connection.js";
import { classify } from "./redis_errors.js";
import type { Unsubscribe } from "./store.js";

/** Entries read per stream per call (each about 100 bytes). */
const BATCH = 500;
/** Reviews being stored by this replica kept for their events (see EventFeed.storedHere). */
const STORED_HERE_MAX = 4096;

/** Decisions fetched at once: at the size limits one is about 2.6 MB, so this bounds the reader's memory. */
const FETCH = 32;

/** What every subscriber reads when the feed cannot tell whether it missed reviews. */
export const WATCH_BROKEN = "the watch may have missed reviews (the event stream was trimmed or reset); watch again";
export const WATCH_STALLED = "the watch lost its connection to the store; watch again";

interface Position {
  /** The last entry id read; "0-0" before the first. */
  id: string;
  /** The sequence number of the last review of this bucket the reader has accounted for. */
  seq: number;
}

interface Entry {
  /** The stream it came from: bucket b's review stream is b, its update stream buckets + b. */
  stream: number;
  bucket: number;
  kind: "review" | "update";
  id: string;
  seq: number;
  us: number;
  fields: Record<string, string>;
}

type RawEntry = [id: string, fields: string[]];
type XReadReply = [key: string, entries: RawEntry[]][] | null;

/** Where entries come from: the single-node blocking read or the cluster poll. */
interface EventSource {
  /** Whether an entry must wait for the following read before it is delivered. */
  readonly holdBack: boolean;
  /** Entries after `positions`, per bucket in stream order; `full` when some stream had more. */
  read(positions: Position[]): Promise<{ entries: Entry[]; full: boolean }>;
  /** Waits before the next read when the last one was not full. */
  pause(): Promise<void>;
  /** Ends a read in progress (the reader is stopping). */
  stop(): void;
}

/** The feed cannot tell whether it missed reviews; `detail` is for the log. */
class FeedBroken extends Error {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Entries of stream `stream` of a feed over `buckets` buckets (see Entry.stream). */
function toEntries(stream: number, buckets: number, raw: RawEntry[]): Entry[] {
  const bucket = stream % buckets;
  const kind = stream < buckets ? "review" : "update";
  return raw.map(([id, flat]) => {
    const fields = fieldMap(flat);
    return { stream, bucket, kind, id, seq: Number(fields.seq), us: Number(fields.us), fields };
  });
}

/**
 * The decision as it was right after the change an update event records, from the decision as it
 * is now (`now`, its hash) and what the event kept (update_lifecycle.lua, record_outcome.lua): the
 * same when nothing changed since (same revision); else with the event's status, the verdicts it
 * had then (they are only ever appended; `nv` counts them), no superseded_by unless superseded,
 * and the outcome recorded by the call the event names (`oc`): none, the one on the decision now,
 * or, for an outcome event overtaken by another outcome, the one its lesson (`lm`) kept. (A
 * lifecycle event whose outcome was replaced since can only have one recorded by a replica before
 * SPEC §9 on a decision that was not approved: it is sent with the outcome the decision has now.)
 */
export async function stateAfter(
  event: Record<string, string>,
  now: Record<string, string>,
  verdicts: VerdictsSection,
  lesson: (member: string) => Promise<string | null>,
): Promise<Decision> {
  const d = decodeDecision(now, verdicts)!;
  if (event.rev === undefined || event.status === undefined || String(revisionOf(now)) === event.rev) return d;
  const status = statusOf(event.status);
  const then: Decision = {
    ...d,
    status,
    verdicts: d.verdicts.slice(0, Number(event.nv ?? d.verdicts.length)),
    supersededBy: status === "superseded" ? d.supersededBy : "",
  };
  const outcomeOp = event.oc ?? "";
  if (outcomeOp === (now.op ?? "")) return then;
  if (outcomeOp === "") {
    return { ...then, outcome: undefined, outcomeNotes: "", lessonsLearned: "", implementedAt: undefined, outcomeRecordedBy: "" };
  }
  const json = event.lm === undefined ? null : await lesson(event.lm);
  if (json === null) return then;
  const l = decodeLesson(json);
  return { ...then, outcome: l.outcome, outcomeNotes: l.notes, lessonsLearned: l.lessons, implementedAt: l.recordedAt, outcomeRecordedBy: l.recordedBy };
}

/** Compares two stream ids (`<ms>-<n>`) numerically. */
export function compareIds(a: string, b: string): number {
  const [am, an] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bn] = b.split("-").map(BigInt) as [bigint, bigint];
  return am !== bm ? (am < bm ? -1 : 1) : an !== bn ? (an < bn ? -1 : 1) : 0;
}

/** Single Redis: one blocking XREAD over every bucket's streams on its own connection. */
export class BlockingSource implements EventSource {
  readonly holdBack = false;
  private conn: Redis | undefined;

  constructor(
    private readonly main: Redis,
    /** Every bucket's review stream, then every bucket's update stream. */
    private readonly streams: string[],
    private readonly blockMs: number,
    private readonly commandTimeoutMs: number,
  ) {}

  async read(positions: Position[]) {
    let conn = this.conn;
    if (!conn) {
      conn = this.conn = this.main.duplicate({
        commandTimeout: this.blockMs + this.commandTimeoutMs,
        connectionName: "council-watch",
        lazyConnect: true,
      });
      conn.on("error", () => undefined); // reported through failed reads
    }
    await whenReady(conn, this.commandTimeoutMs);
    const reply = (await conn.xread(
      "COUNT",
      BATCH,
      "BLOCK",
      this.blockMs,
      "STREAMS",
      ...this.streams,
      ...positions.map((p) => p.id),
    )) as XReadReply;
    const entries: Entry[] = [];
    let full = false;
    for (const [key, raw] of reply ?? []) {
      const stream = this.streams.indexOf(key);
      if (stream === -1) continue;
      entries.push(...toEntries(stream, this.streams.length / 2, raw));
      if (raw.length >= BATCH) full = true;
    }
    return { entries, full };
  }

  async pause(): Promise<void> {
    // The read itself waits for news.
  }

  stop(): void {
    this.conn?.disconnect();
    this.conn = undefined;
  }
}

/** Cluster: a non-blocking XREAD of each bucket's streams, every `pollMs`. */
export class PollingSource implements EventSource {
  readonly holdBack = true;

  constructor(
    private readonly client: RedisClient,
    /** Every bucket's review stream, then every bucket's update stream. */
    private readonly streams: string[],
    private readonly pollMs: number,
  ) {}

  async read(positions: Position[]) {
    const replies = await Promise.all(
      this.streams.map((key, b) => this.client.xread("COUNT", BATCH, "STREAMS", key, positions[b]!.id) as Promise<XReadReply>),
    );
    const entries: Entry[] = [];
    let full = false;
    replies.forEach((reply, stream) => {
      const raw = reply?.[0]?.[1] ?? [];
      entries.push(...toEntries(stream, this.streams.length / 2, raw));
      if (raw.length >= BATCH) full = true;
    });
    return { entries, full };
  }

  pause(): Promise<void> {
    return sleep(this.pollMs);
  }

  stop(): void {
    // A poll in flight ends within the command timeout; the loop then sees that it was stopped.
  }
}

interface Subscriber {
  onReview: (decision: Decision) => void;
  onError: (err: Error) => void;
  /** Changes to stored decisions; a subscriber without it is not told about them. */
  onUpdate?: (decision: Decision) => void;
}

export interface FeedOptions {
  /** Subscriptions end with UNAVAILABLE when the reader has not read Redis for this long. Default 10000. */
  stallMs?: number;
  /** How often the reader checks that no stream was reset or trimmed behind it. Default 1000. */
  checkMs?: number;
  /** The policy section that decisions stored before SPEC §9 take their approvals from. */
  verdicts?: VerdictsSection;
}

/** The keys the feed reads: every bucket's streams, counters, decisions and lessons. */
export type FeedKeys = Pick<Keyspace, "all" | "events" | "updates" | "counts" | "decision" | "lessonDocs">;

/** The stream of each position, and the counter that holds its sequence number. */
const COUNTERS = { review: "total", update: "updates" } as const;

/** Replies of a MULTI, each checked for an error. */
async function transaction(multi: ReturnType<RedisClient["multi"]>): Promise<unknown[]> {
  const replies = await multi.exec();
  if (!replies) throw new Error("Connection is closed."); // EXEC aborted: treated as a lost connection
  return replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
}

/** The one reader of a process, shared by every subscriber. */
export class EventFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** How many subscribers want updates (counted, not searched for on every read: awaits are thousands). */
  private wantUpdates = 0;
  /** Bumped at every start and stop; a loop runs while its generation is current. */
  private generation = 0;
  /** Whether the running reader knows where every stream ended when it started. */
  private live = false;
  private waitingForLive: (() => void)[] = [];
  private readonly stallMs: number;
  private readonly checkMs: number;
  private readonly verdicts: VerdictsSection;
  /**
   * Reviews this replica is storing while someone watches, by the operation id their save script
   * writes into their event (save_review.lua): the event then needs no read of the decision from
   * Redis (which cost a review about 0.7 ms of this process's CPU once anyone watched). The id is
   * unique per call, so an event written by another replica's save of the same decision never
   * matches. At most STORED_HERE_MAX, oldest dropped first (an event whose entry was dropped reads
   * the decision from Redis, as every other replica does).
   */
  private readonly storedHere = new Map<string, Decision>();

  constructor(
    private readonly client: RedisClient,
    private readonly keys: FeedKeys,
    private readonly source: EventSource,
    private readonly log: Logger,
    options: FeedOptions = {},
  ) {
    this.stallMs = options.stallMs ?? 10_000;
    this.checkMs = options.checkMs ?? 1000;
    this.verdicts = options.verdicts ?? DEFAULT_VERDICTS;
  }

  /**
   * Tells the feed of a review this replica is about to store with save operation `op`, as it
   * will be stored (the decision its review event names), so that while anyone watches, the event
   * is sent without reading it back. `notStored` takes it back when the save stored nothing.
   */
  storing(op: string, decision: Decision): void {
    if (this.subscribers.size === 0) return;
    if (this.storedHere.size >= STORED_HERE_MAX) this.storedHere.delete(this.storedHere.keys().next().value!);
    this.storedHere.set(op, decision);
  }

  notStored(op: string): void {
    this.storedHere.delete(op);
  }

  /** Every bucket's review stream, then every bucket's update stream: what a source reads. */
  static streams(keys: Pick<Keyspace, "all" | "events" | "updates">): string[] {
    return [...keys.all().map((b) => keys.events(b)), ...keys.all().map((b) => keys.updates(b))];
  }

  subscribe(onReview: Subscriber["onReview"], onError: Subscriber["onError"], onLive?: () => void, onUpdate?: Subscriber["onUpdate"]): Unsubscribe {
    const sub: Subscriber = { onReview, onError, onUpdate };
    this.subscribers.add(sub);
    if (onUpdate) this.wantUpdates++;
    if (onLive) {
      if (this.live) queueMicrotask(onLive);
      else this.waitingForLive.push(onLive);
    }
    if (this.subscribers.size === 1) {
      const generation = ++this.generation;
      void this.run(generation);
    }
    return () => {
      if (!this.subscribers.delete(sub)) return;
      if (onUpdate) this.wantUpdates--;
      if (this.subscribers.size > 0) return;
      this.stopReading();
    };
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Ends every subscription with `err` and stops reading. */
  fail(err: Error): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    this.wantUpdates = 0;
    this.stopReading();
    for (const s of subs) {
      try {
        s.onError(err);
      } catch (e) {
        this.log.error({ err: e }, "watch: a subscriber's error handler threw");
      }
    }
  }

  private stopReading(): void {
    this.generation++;
    this.live = false;
    this.waitingForLive = [];
    this.storedHere.clear();
    this.source.stop();
  }

  /**
   * Where each stream ends now, and the sequence number of its last entry (the bucket's counter
   * `total` for reviews, `updates` for changes), read in one transaction per bucket so that they
   * agree: the reader delivers what comes after.
   */
  private async start(): Promise<Position[]> {
    const k = this.keys;
    const n = k.all().length;
    const replies = await Promise.all(
      k.all().map((b) =>
        transaction(
          this.client
            .multi()
            .hmget(k.counts(b), COUNTERS.review, COUNTERS.update)
            .xrevrange(k.events(b), "+", "-", "COUNT", 1)
            .xrevrange(k.updates(b), "+", "-", "COUNT", 1),
        ),
      ),
    );
    const positions: Position[] = new Array<Position>(2 * n);
    replies.forEach(([counters, lastReview, lastUpdate], bucket) => {
      [lastReview, lastUpdate].forEach((last, which) => {
        const value = (counters as (string | null)[])[which];
        const seq = Number(value ?? 0);
        if (!Number.isSafeInteger(seq)) throw new FeedBroken(`bucket ${bucket}: its counter ${JSON.stringify(value)} is not a number`);
        const top = (last as RawEntry[])[0];
        positions[which * n + bucket] = { id: top ? top[0] : "0-0", seq };
      });
    });
    return positions;
  }

  /**
   * Whether every stream still continues where the reader is: its counter has not gone back, its
   * ids have not, and if the counter moved on, the stream still holds the entry after the reader's
   * position (else it was trimmed unread). One transaction per bucket.
   */
  private async check(positions: Position[]): Promise<void> {
    const k = this.keys;
    const n = k.all().length;
    const replies = await Promise.all(
      k.all().map((b) =>
        transaction(
          this.client
            .multi()
            .hmget(k.counts(b), COUNTERS.review, COUNTERS.update)
            .xrevrange(k.events(b), "+", "-", "COUNT", 1)
            .xrange(k.events(b), `(${positions[b]!.id}`, "+", "COUNT", 1)
            .xrevrange(k.updates(b), "+", "-", "COUNT", 1)
            .xrange(k.updates(b), `(${positions[n + b]!.id}`, "+", "COUNT", 1),
        ),
      ),
    );
    replies.forEach(([counters, ...streams], bucket) => {
      for (const which of [0, 1]) {
        const what = which === 0 ? "events" : "updates";
        const p = positions[which * n + bucket]!;
        const value = (counters as (string | null)[])[which];
        const seq = Number(value ?? 0);
        const top = (streams[2 * which] as RawEntry[])[0];
        const next = streams[2 * which + 1] as RawEntry[];
        if (!Number.isSafeInteger(seq) || seq < p.seq) {
          throw new FeedBroken(`bucket ${bucket}: its ${what} sequence went back from ${p.seq} to ${JSON.stringify(value)} (Redis lost data)`);
        }
        if (top && p.id !== "0-0" && compareIds(top[0], p.id) < 0) {
          throw new FeedBroken(`bucket ${bucket}: its ${what} stream ends at ${top[0]}, before ${p.id} already read (Redis lost data)`);
        }
        if (seq > p.seq && next.length === 0) {
          throw new FeedBroken(`bucket ${bucket}: ${what} ${p.seq + 1}-${seq} were trimmed before they were read`);
        }
      }
    });
  }

  /** Moves each stream's position past `entries`, which must continue its sequence exactly. */
  private advance(positions: Position[], entries: Entry[]): void {
    for (const e of entries) {
      const p = positions[e.stream]!;
      const what = `bucket ${e.bucket} (${e.kind}s)`;
      if (!Number.isSafeInteger(e.seq)) throw new FeedBroken(`${what}: entry ${e.id} has no sequence number`);
      if (e.seq > p.seq + 1) throw new FeedBroken(`${what}: missed ${e.seq - p.seq - 1} event(s) before ${e.id}`);
      if (e.seq <= p.seq) throw new FeedBroken(`${what}: entry ${e.id} has sequence ${e.seq} after ${p.seq} (Redis lost data)`);
      p.seq = e.seq;
      p.id = e.id;
    }
  }

  /**
   * The decisions `entries` name, in order. Entries written before events became small carry the
   * decision themselves. A review is sent as it was stored, with who submitted it and the lifecycle
   * it was stored with: without the outcome, notes and lessons a RecordOutcome may have added since,
   * or the verdicts given since (their update events carry those). A change is sent as the decision
   * was right after it (stateAfter), even when it has changed again since the event was written.
   * Neither is presented as expired when due: the expiry is a change of its own, with its own event.
   */
  private async fetch(entries: Entry[]): Promise<Decision[]> {
    const found = await Promise.all(
      entries.map(async (e): Promise<Decision | undefined> => {
        if (e.fields.doc !== undefined) return decodeDecision(e.fields, this.verdicts);
        const id = e.fields.id;
        if (!id) throw new FeedBroken(`bucket ${e.bucket}: entry ${e.id} names no decision`);
        const here = e.kind === "review" && e.fields.op !== undefined ? this.storedHere.get(e.fields.op) : undefined;
        if (here) {
          this.storedHere.delete(e.fields.op!);
          return here;
        }
        const key = this.keys.decision(e.bucket, id);
        if (e.kind === "update") {
          const all = await this.client.hgetall(key);
          if (all.doc === undefined) return undefined;
          return stateAfter(e.fields, all, this.verdicts, (member) => this.client.hget(this.keys.lessonDocs(e.bucket), member));
        }
        const [doc, submittedBy, approvals, expiresAt, supersedes] = await this.client.hmget(
          key,
          "doc",
          "submitted_by",
          "approvals",
          "expires_at",
          "supersedes",
        );
        if (doc === null || doc === undefined) return undefined;
        // Without `status`, the codec reads the status the decision starts in (its type's); the
        // fields it was stored with, where it has them. No submitted_by: stored before
        // principals, read as the codec reads it (anonymous).
        const fields: Record<string, string> = { doc };
        const set = (name: string, value: string | null | undefined) => {
          if (value !== null && value !== undefined) fields[name] = value;
        };
        set("submitted_by", submittedBy);
        set("approvals", approvals);
        set("expires_at", expiresAt);
        set("supersedes", supersedes);
        return decodeDecision(fields, this.verdicts);
      }),
    );
    return entries.map((e, i) => {
      const decision = found[i];
      if (decision === undefined) {
        throw new DataLossError(`watch: event ${e.id} of bucket ${e.bucket} names decision ${e.fields.id}, which is missing`);
      }
      return decision;
    });
  }

  private async run(generation: number): Promise<void> {
    const current = () => generation === this.generation;
    let lastOk = Date.now();
    // However a read hangs, a reader that has not read Redis for stallMs ends its subscriptions.
    const watchdog = setInterval(
      () => {
        if (!current() || Date.now() - lastOk <= this.stallMs) return;
        this.log.warn({ stallMs: this.stallMs }, "watch: cannot read events from Redis; ending watches");
        this.fail(new UnavailableError(WATCH_STALLED));
      },
      Math.max(10, Math.min(250, this.stallMs / 4)),
    );
    watchdog.unref();
    let positions: Position[] | undefined;
    let held: Entry[] = [];
    let ready: Entry[] = [];
    let watermark = -1;
    let lastCheck = 0;
    let failures = 0;
    try {
      while (current()) {
        try {
          if (!positions) {
            positions = await this.start();
            if (!current()) return;
            lastOk = lastCheck = Date.now();
            this.live = true;
            for (const onLive of this.waitingForLive.splice(0)) onLive();
          }
          if (ready.length > 0) {
            const chunk = ready.slice(0, FETCH);
            const decisions = await this.fetch(chunk);
            if (!current()) return;
            lastOk = Date.now();
            ready = ready.slice(chunk.length);
            this.deliver(chunk, decisions);
            continue;
          }
          if (Date.now() - lastCheck >= this.checkMs) {
            await this.check(positions);
            if (!current()) return;
            lastOk = lastCheck = Date.now();
          }
          const { entries, full } = await this.source.read(positions);
          if (!current()) return;
          lastOk = Date.now();
          this.advance(positions, entries);
          if (failures > 0) this.log.info({ failures }, "watch: reading events again");
          failures = 0;

          let next = entries;
          if (this.source.holdBack) {
            held.push(...entries);
            next = held.filter((e) => e.us <= watermark);
            held = held.filter((e) => e.us > watermark);
            for (const e of entries) if (e.us > watermark) watermark = e.us;
          }
          // Changes nobody asked for are not fetched (their positions moved on all the same).
          const wanted = this.wantUpdates > 0;
          ready = next.filter((e) => e.kind === "review" || wanted).sort((a, b) => a.us - b.us || a.stream - b.stream || a.seq - b.seq);
          if (!full && ready.length === 0) await this.source.pause();
        } catch (err) {
          if (!current()) return;
          if (err instanceof FeedBroken) {
            this.log.warn({ err: err.message }, "watch: the event streams do not continue where the reader was; ending watches");
            this.fail(new UnavailableError(WATCH_BROKEN));
            return;
          }
          const e: CouncilError = classify("watch", err);
          if (!(e instanceof UnavailableError)) {
            this.log.error({ err: e }, "watch: an event cannot be delivered; ending watches");
            this.fail(e);
            return;
          }
          failures++;
          if (failures === 1) this.log.warn({ err: (err as Error).message }, "watch: cannot read events from Redis; retrying");
          await sleep(Math.min(100 * 2 ** (failures - 1), 1000));
        }
      }
    } finally {
      clearInterval(watchdog);
    }
  }

  private deliver(entries: Entry[], decisions: Decision[]): void {
    // The subscribers as they are now, copied once for the whole chunk (one that subscribes during
    // the delivery goes live after it, so these were stored before it was live). One that leaves
    // meanwhile is skipped.
    const subscribers = [...this.subscribers];
    decisions.forEach((decision, i) => {
      const update = entries[i]!.kind === "update";
      for (const s of subscribers) {
        if (!this.subscribers.has(s)) continue;
        try {
          if (!update) s.onReview(decision);
          else s.onUpdate?.(decision);
        } catch (err) {
          this.log.error({ err }, "watch: a subscriber threw");
        }
      }
    });
  }
}
