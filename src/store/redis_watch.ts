/**
 * The live feed behind WatchDecisions: every bucket's event stream (`<prefix>{tag}:events`, one
 * entry per stored review, written by save_review.lua in the same atomic step as the review),
 * read by one shared reader per process. The reader starts with the first subscriber, at the end
 * of each stream as it is then, and stops with the last.
 *
 * - Single Redis: one blocking `XREAD BLOCK … STREAMS <every bucket>` on a dedicated connection.
 *   One read is atomic across the streams, so sorting each batch by the server time that
 *   save_review.lua put in the entries gives the order the reviews were stored in.
 * - Cluster: a multi-key XREAD across slots is refused (CROSSSLOT), and one blocking connection
 *   per bucket would cost buckets × masters connections per process, so the reader polls every
 *   bucket without blocking (pipelined per node) every `pollMs`. Reads of different nodes are not
 *   one snapshot, so each entry is held back until the read after the one that found it; then no
 *   review is delivered before one stored earlier (by a single clock; across the masters of a
 *   real cluster the order is only as good as their clocks agree).
 *
 * A Redis blip does not end watches: the reader retries from the last entry it saw. Each entry
 * carries its bucket's sequence number; if the reader finds that it missed entries (it fell
 * further behind than the capped stream keeps), every subscriber gets `onError` with an
 * UnavailableError, so that no watcher silently misses a review.
 */
import type { Redis } from "ioredis";
import { UnavailableError } from "../domain/errors.js";
import type { Decision } from "../domain/model.js";
import type { Logger } from "../log.js";
import { decodeDecision, fieldMap } from "./redis_codec.js";
import { whenReady, type RedisClient } from "./redis_connection.js";
import type { Unsubscribe } from "./store.js";

/** Entries read per stream per call. */
const BATCH = 500;

interface Position {
  /** The last entry id seen; "0-0" for an empty stream. */
  id: string;
  /** The sequence number of that entry; undefined when unknown. */
  seq: number | undefined;
}

interface Entry {
  bucket: number;
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

class GapError extends Error {}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function toEntries(bucket: number, raw: RawEntry[]): Entry[] {
  return raw.map(([id, flat]) => {
    const fields = fieldMap(flat);
    return { bucket, id, seq: Number(fields.seq), us: Number(fields.us), fields };
  });
}

/** Single Redis: one blocking XREAD over every bucket's stream on its own connection. */
export class BlockingSource implements EventSource {
  readonly holdBack = false;
  private conn: Redis | undefined;

  constructor(
    private readonly main: Redis,
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
      const bucket = this.streams.indexOf(key);
      if (bucket === -1) continue;
      entries.push(...toEntries(bucket, raw));
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

/** Cluster: a non-blocking XREAD of each bucket's stream, every `pollMs`. */
export class PollingSource implements EventSource {
  readonly holdBack = true;

  constructor(
    private readonly client: RedisClient,
    private readonly streams: string[],
    private readonly pollMs: number,
  ) {}

  async read(positions: Position[]) {
    const replies = await Promise.all(
      this.streams.map((key, b) => this.client.xread("COUNT", BATCH, "STREAMS", key, positions[b]!.id) as Promise<XReadReply>),
    );
    const entries: Entry[] = [];
    let full = false;
    replies.forEach((reply, bucket) => {
      const raw = reply?.[0]?.[1] ?? [];
      entries.push(...toEntries(bucket, raw));
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
}

/** The one reader of a process, shared by every subscriber. */
export class EventFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** Bumped at every start and stop; a loop runs while its generation is current. */
  private generation = 0;
  /** Whether the running reader knows where every stream ended when it started. */
  private live = false;
  private waitingForLive: (() => void)[] = [];

  constructor(
    private readonly client: RedisClient,
    private readonly streams: string[],
    private readonly source: EventSource,
    private readonly log: Logger,
  ) {}

  subscribe(onReview: Subscriber["onReview"], onError: Subscriber["onError"], onLive?: () => void): Unsubscribe {
    const sub: Subscriber = { onReview, onError };
    this.subscribers.add(sub);
    if (onLive) {
      if (this.live) queueMicrotask(onLive);
      else this.waitingForLive.push(onLive);
    }
    if (this.subscribers.size === 1) {
      const generation = ++this.generation;
      void this.run(generation);
    }
    return () => {
      if (!this.subscribers.delete(sub) || this.subscribers.size > 0) return;
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
    this.source.stop();
  }

  /** Where each stream ends now: the reader delivers what comes after. */
  private async positions(): Promise<Position[]> {
    const last = await Promise.all(
      this.streams.map((key) => this.client.xrevrange(key, "+", "-", "COUNT", 1) as Promise<RawEntry[]>),
    );
    return last.map((entries) => {
      const top = entries[0];
      if (!top) return { id: "0-0", seq: undefined };
      const seq = Number(fieldMap(top[1]).seq);
      return { id: top[0], seq: Number.isSafeInteger(seq) ? seq : undefined };
    });
  }

  private async run(generation: number): Promise<void> {
    const current = () => generation === this.generation;
    let positions: Position[] | undefined;
    let held: Entry[] = [];
    let watermark = -1;
    let failures = 0;
    while (current()) {
      try {
        if (!positions) {
          positions = await this.positions();
          if (!current()) return;
          this.live = true;
          for (const onLive of this.waitingForLive.splice(0)) onLive();
        }
        const { entries, full } = await this.source.read(positions);
        if (!current()) return;
        for (const e of entries) {
          const p = positions[e.bucket]!;
          if (Number.isSafeInteger(e.seq)) {
            if (p.seq !== undefined && e.seq > p.seq + 1) {
              throw new GapError(`missed ${e.seq - p.seq - 1} event(s) of bucket ${e.bucket}`);
            }
            p.seq = e.seq;
          }
          p.id = e.id;
        }
        if (failures > 0) this.log.info({ failures }, "watch: reading events again");
        failures = 0;

        let ready = entries;
        if (this.source.holdBack) {
          held.push(...entries);
          ready = held.filter((e) => e.us <= watermark);
          held = held.filter((e) => e.us > watermark);
          for (const e of entries) if (e.us > watermark) watermark = e.us;
        }
        this.deliver(ready);
        if (!full) await this.source.pause();
      } catch (err) {
        if (!current()) return;
        if (err instanceof GapError) {
          this.log.warn({ err: err.message }, "watch: the reader fell behind the capped event streams; ending watches");
          this.fail(new UnavailableError("the watch fell behind the event stream and missed reviews; watch again"));
          return;
        }
        failures++;
        if (failures === 1) this.log.warn({ err: (err as Error).message }, "watch: cannot read events from Redis; retrying");
        await sleep(Math.min(100 * 2 ** (failures - 1), 2000));
      }
    }
  }

  private deliver(entries: Entry[]): void {
    if (entries.length === 0) return;
    entries.sort((a, b) => a.us - b.us || a.bucket - b.bucket || a.seq - b.seq);
    for (const e of entries) {
      let decision: Decision | undefined;
      try {
        decision = decodeDecision(e.fields);
      } catch (err) {
        this.log.error({ err, entry: e.id, bucket: e.bucket }, "watch: unreadable event entry skipped");
      }
      if (!decision) continue;
      for (const s of [...this.subscribers]) {
        if (!this.subscribers.has(s)) continue;
        try {
          s.onReview(decision);
        } catch (err) {
          this.log.error({ err }, "watch: a subscriber threw");
        }
      }
    }
  }
}
