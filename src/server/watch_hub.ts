/**
 * WatchDecisions fan-out: every watch of a server shares one store subscription, each event is
 * encoded once for all of them, and the events reach the watchers after the review that made them
 * has been answered, a slice of watchers at a time.
 *
 * What a watch used to cost, per watcher and per event (2,000 watchers made a review on the
 * in-process store take 39–50 ms instead of 1.7 ms): a store listener of its own, called inside
 * the review's `saveReview`; its own protobuf encoding of the event (more than half the time in a
 * CPU profile); a framed copy of it; a write through two Node streams (grpc-js's call, then the
 * HTTP/2 stream) with a callback, and a timer for the write timeout. Now:
 *
 * - One subscription per kind of watch (with or without updates: a watch without them must not make
 *   the Redis feed fetch every changed decision), opened with the first watch and closed with the
 *   last. Its callback only appends the event to a log: the review that stored it goes on at once.
 * - The log is sent in batches, from a `setImmediate` (so after the review's own response was
 *   written), to the watchers of the server in slices of `SLICE_MS`, each slice followed by a turn
 *   of the event loop, so that reviews are served between slices instead of after every watcher.
 *   After a fan-out the next one waits REST times as long as it took (at most MAX_REST_MS): under
 *   a stream of reviews the fan-out takes a bounded share of the loop, each write carrying several
 *   reviews; with few watchers that rest is nothing and events go out at once.
 * - Each event is encoded once, as a gRPC message (5-byte prefix and protobuf), and the messages of
 *   a batch are joined once per kind of watcher (decision type, with or without votes) into chunks
 *   of whole messages: every watcher of that kind is handed the same Buffers, written straight to
 *   its HTTP/2 stream, usually in one write. grpc-js would encode and frame the message again for
 *   every watcher, and write it through its own stream first. The HTTP/2 stream is the one grpc-js
 *   sent the response headers on (`sendMetadata`, before the first write), and it sends the
 *   trailers on it after these bytes when the call ends (only whole messages are ever handed to
 *   it). Watch calls are not counted by call_bounds.ts: their bytes are bounded here.
 * - A watcher's backlog is the bytes waiting for it here plus those handed to its stream and not
 *   yet sent (HTTP/2 flow control being the caller's reading). Past `boundBytes` it is ended with
 *   RESOURCE_EXHAUSTED; a batch is taken whole when nothing waits, and a batch is never larger
 *   than the bound unless one review alone is (so the bound holds as it did per review). A watcher
 *   whose stream has not sent what it was handed for `writeTimeoutMs` is ended the same way, found
 *   by one timer for all watchers instead of a timer per write.
 *
 * Order: a watcher receives the events of the log from the moment it went live, in the order the
 * store delivered them, batch after batch (a batch is sent to every watcher before the next).
 */
import type { ServerHttp2Stream } from "node:http2";
import { Metadata, type ServerWritableStream } from "@grpc/grpc-js";
import type { Council } from "../app/council.js";
import { ResourceExhaustedError } from "../domain/errors.js";
import type { Decision, DecisionType } from "../domain/model.js";
import { WatchDecisionsResponse, type WatchDecisionsRequest } from "../gen/council/v1/council_service.js";
import type { Unsubscribe } from "../store/store.js";
import { http2StreamOf } from "./calls.js";
import { decisionToWire, decisionTypeFromWire, voteToWire } from "./convert.js";
import { encodeFramed } from "./encode.js";

/** How long one slice of a fan-out may run before the event loop serves other calls. */
const SLICE_MS = 1;
/**
 * How much longer than a fan-out took the event loop rests before the next one, at most MAX_REST_MS
 * (see `schedule`). Measured with 2,000 watchers and one review at a time: with no rest, a review
 * cost the server 2.9 ms of CPU (1.1 ms without watchers), with a rest of 3 times the fan-out 2.7
 * ms, 8 times 1.5–1.9 ms, 16 times 1.4–2.0 ms; 8 keeps a watcher's events at most ~12 ms late there.
 */
const REST = 8;
const MAX_REST_MS = 100;
/** How many watchers are served between two looks at the clock. */
const CLOCK_EVERY = 32;
/**
 * The most a watcher hands its HTTP/2 stream at once (about one default flow-control window): what
 * a watcher that reads nothing pins in its connection's HTTP/2 memory.
 */
const WRITE_BYTES = 64 * 1024;

/** A decision's events as gRPC messages (flag byte, 4-byte length, protobuf), made once. */
interface Frames {
  votes?: Buffer[];
  decision: Buffer;
}

/** Every subscriber of a store receives the same decision object: its frames are made once for all. */
const framesOf = new WeakMap<Decision, Frames>();

/** `message` as one gRPC message on the wire: not compressed, its length, its bytes. */
export function frame(message: WatchDecisionsResponse): Buffer {
  return encodeFramed(WatchDecisionsResponse, message);
}

/** The frames of `d`: with its votes when `withVotes` (a review), else only the decision. */
function frames(d: Decision, withVotes: boolean): Frames {
  let f = framesOf.get(d);
  if (!f) {
    const decision = frame({ event: { $case: "decision", value: decisionToWire(d) }, decisionId: d.id, suggestionId: d.suggestionId });
    framesOf.set(d, (f = { decision }));
  }
  if (withVotes && !f.votes) {
    f.votes = d.votes.map((v) => frame({ event: { $case: "vote", value: voteToWire(v) }, decisionId: d.id, suggestionId: d.suggestionId }));
  }
  return f;
}

/** One event of the log: a stored review, or a change to a stored decision. */
interface Entry {
  decision: Decision;
  update: boolean;
}

/** What one kind of watcher receives: its decision type (undefined: all), and votes or not. */
interface Kind {
  key: string;
  decisionType: DecisionType | undefined;
  votes: boolean;
}

const kinds = new Map<string, Kind>();
function kindOf(decisionType: DecisionType | undefined, votes: boolean): Kind {
  const key = `${decisionType ?? ""}:${votes ? "v" : ""}`;
  let kind = kinds.get(key);
  if (!kind) kinds.set(key, (kind = { key, decisionType, votes }));
  return kind;
}

/**
 * What watchers of `kind` receive of `entries`: whole gRPC messages joined into chunks of at most
 * WRITE_BYTES (a larger message is a chunk of its own), so that a watcher's stream is only ever
 * handed whole messages and whatever it was handed ends with one, whenever the watch ends.
 * Undefined when none of the entries is for them.
 */
function chunksFor(kind: Kind, entries: readonly Entry[]): Chunks | undefined {
  const chunks: Buffer[] = [];
  let part: Buffer[] = [];
  let partBytes = 0;
  let bytes = 0;
  const close = () => {
    if (part.length > 0) chunks.push(part.length === 1 ? part[0]! : Buffer.concat(part, partBytes));
    part = [];
    partBytes = 0;
  };
  const add = (message: Buffer) => {
    if (partBytes + message.length > WRITE_BYTES) close();
    part.push(message);
    partBytes += message.length;
    bytes += message.length;
  };
  for (const e of entries) {
    if (kind.decisionType !== undefined && e.decision.decision !== kind.decisionType) continue;
    const withVotes = kind.votes && !e.update;
    const f = frames(e.decision, withVotes);
    if (withVotes) for (const v of f.votes!) add(v);
    add(f.decision);
  }
  close();
  return chunks.length === 0 ? undefined : { chunks, bytes };
}

/** Events as a watcher's stream is handed them: chunks of whole messages, and their size. */
interface Chunks {
  chunks: Buffer[];
  bytes: number;
}

/** The size of an entry's events with votes: what the largest kind of watcher receives of it. */
function fullBytes(e: Entry): number {
  const f = frames(e.decision, !e.update);
  let n = f.decision.length;
  for (const v of f.votes ?? []) n += v.length;
  return n;
}

/** One open watch. */
class Watcher {
  /** The sequence number of the first event it receives (the log's end when it went live). */
  from = Number.MAX_SAFE_INTEGER;
  /** Chunks waiting to be handed to its stream (Buffers shared with other watchers: never changed). */
  private readonly queue: Buffer[] = [];
  private queued = 0;
  /** Bytes handed to its stream and not yet sent, and since when. */
  private sending = 0;
  private sendingSince = 0;
  /** The write callback, made once rather than for every write. */
  private readonly sent = () => {
    this.sending = 0;
    this.pump();
  };

  constructor(
    readonly call: ServerWritableStream<WatchDecisionsRequest, WatchDecisionsResponse>,
    readonly stream: ServerHttp2Stream,
    readonly kind: Kind,
    /** Ends the watch (with an error: the call ends with its status); idempotent. */
    readonly end: (err?: Error) => void,
  ) {}

  /** Bytes of events waiting or being sent. */
  get backlog(): number {
    return this.queued + this.sending;
  }

  /** Whether what its stream was last handed has waited to be sent since `since` or before. */
  stalledSince(since: number): boolean {
    return this.sending > 0 && this.sendingSince <= since;
  }

  /** Drops what waits for it (it has ended): its stream is done with or about to be reset. */
  drop(): void {
    this.queue.length = 0;
    this.queued = 0;
  }

  take(events: Chunks): void {
    for (const chunk of events.chunks) this.queue.push(chunk);
    this.queued += events.bytes;
    this.pump();
  }

  /**
   * Hands the stream the next chunks, up to WRITE_BYTES (or one larger message), once what it was
   * handed before has been sent. HTTP/2 counts what a stream holds against its connection's memory
   * (`grpc-node.max_session_memory`: past it the connection gets no new stream, and one that keeps
   * trying is closed), so a watcher that reads nothing pins no more there than this, as when
   * grpc-js sent one message at a time; the rest waits here, within the watcher's bound.
   */
  private pump(): void {
    if (this.sending > 0 || this.queue.length === 0) return;
    const stream = this.stream;
    if (stream.destroyed || stream.closed || stream.writableEnded) {
      this.drop();
      this.end();
      return;
    }
    let n = 1;
    let bytes = this.queue[0]!.length;
    while (n < this.queue.length && bytes + this.queue[n]!.length <= WRITE_BYTES) bytes += this.queue[n++]!.length;
    this.queued -= bytes;
    this.sending = bytes;
    this.sendingSince = performance.now();
    if (n === 1) {
      stream.write(this.queue.shift(), this.sent);
      return;
    }
    const chunks = this.queue.splice(0, n);
    stream.cork();
    for (let i = 0; i < n - 1; i++) stream.write(chunks[i]);
    stream.write(chunks[n - 1], this.sent);
    stream.uncork();
  }
}

/** A batch of the log being sent: entries [start, end), and the bytes of each kind, made once. */
interface Batch {
  start: number;
  end: number;
  entries: Entry[];
  events: Map<string, Chunks | undefined>;
  next: IterableIterator<Watcher>;
}

/** The subscription a fan-out holds: `Council.watch` for every decision type. */
type Subscribe = (onReview: (d: Decision) => void, onError: (err: Error) => void, onLive: () => void, onUpdate?: (d: Decision) => void) => Unsubscribe;

export interface FanOutOptions {
  /** Bytes a watcher may have waiting before it is ended (COUNCIL_WATCH_BUFFER_BYTES). */
  boundBytes: number;
  /** How long a watcher's backlog may stay still before it is ended (COUNCIL_STREAM_WRITE_TIMEOUT_MS). */
  writeTimeoutMs: number;
}

/** The watchers of one kind of subscription (reviews only, or reviews and updates). */
class FanOut {
  private readonly watchers = new Set<Watcher>();
  /** Watchers waiting for the subscription to be live. */
  private readonly waiting = new Set<Watcher>();
  private unsubscribe: Unsubscribe | undefined;
  private live = false;
  /** Events not yet sent to every watcher; `log[0]` has sequence number `logStart`. */
  private log: Entry[] = [];
  private logStart = 0;
  private batch: Batch | undefined;
  private scheduled = false;
  /** Time spent on the log since it was last sent whole, and when the next fan-out may start. */
  private busyMs = 0;
  private restUntil = 0;
  private looker: NodeJS.Timeout | undefined;

  constructor(
    private readonly subscribe: Subscribe,
    private readonly updates: boolean,
    private readonly options: FanOutOptions,
    /** Told each time a watcher goes live. */
    private readonly wentLive: () => void,
  ) {}

  /** The sequence number the next event will take. */
  private get end(): number {
    return this.logStart + this.log.length;
  }

  add(w: Watcher): void {
    if (!this.unsubscribe) {
      const take = (update: boolean) => (decision: Decision) => {
        this.log.push({ decision, update });
        this.schedule();
      };
      this.unsubscribe = this.subscribe(take(false), (err) => this.fail(err), () => this.goLive(), this.updates ? take(true) : undefined);
      this.looker = setInterval(() => this.look(), Math.max(10, Math.min(1000, this.options.writeTimeoutMs / 4)));
      this.looker.unref();
    }
    if (this.live) this.start(w);
    else this.waiting.add(w);
  }

  remove(w: Watcher): void {
    this.watchers.delete(w);
    this.waiting.delete(w);
    if (this.watchers.size === 0 && this.waiting.size === 0) this.stop();
  }

  private stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.live = false;
    clearInterval(this.looker);
    this.looker = undefined;
    // Nobody is left to send them to; a batch under way finds no watcher.
    this.logStart = this.end;
    this.log = [];
  }

  private goLive(): void {
    if (!this.unsubscribe || this.live) return;
    this.live = true;
    // Each leaves `waiting` only as it starts: one that ends meanwhile must not stop the subscription.
    for (const w of [...this.waiting]) if (this.waiting.delete(w)) this.start(w);
  }

  /** Sends `w` the response headers (it is live: nothing stored from now on is missed) and adds it. */
  private start(w: Watcher): void {
    w.call.sendMetadata(new Metadata());
    // Headers that did not go (the call was cancelled meanwhile) leave nothing to write on.
    if (!w.stream.headersSent) {
      w.end();
      return;
    }
    w.from = this.end;
    this.watchers.add(w);
    this.wentLive();
  }

  private fail(err: Error): void {
    const all = [...this.waiting, ...this.watchers];
    // The subscription has ended: the next watcher opens a new one.
    this.unsubscribe = undefined;
    for (const w of all) w.end(err);
    this.stop();
  }

  /**
   * Flushes from a `setImmediate` (after the calls being served now), or, right after a fan-out
   * ran, once the loop has rested REST times as long as it took: while reviews keep coming, the
   * fan-out takes about 1/(REST+1) of the event loop, and each write carries several reviews (the
   * cost of a fan-out is in the writes, one per watcher, more than in their bytes). With a few
   * watchers the rest is shorter than a millisecond and events go out at once.
   */
  private schedule(now = false): void {
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = now ? 0 : this.restUntil - performance.now();
    // A rest shorter than a timer's millisecond is not worth one.
    if (wait >= 1) setTimeout(this.flushNow, wait);
    else setImmediate(this.flushNow);
  }

  private readonly flushNow = () => {
    try {
      this.flush();
    } catch (err) {
      // Nothing here should throw; if something does, the watches end with it (INTERNAL, logged by
      // calls.ts) rather than the process, and the next watch starts afresh.
      this.batch = undefined;
      const error = err instanceof Error ? err : new Error(String(err));
      // The last one to leave closes the subscription.
      for (const w of [...this.waiting, ...this.watchers]) w.end(error);
    }
  };

  /** Sends batches of the log for one slice of time; schedules the rest. */
  private flush(): void {
    this.scheduled = false;
    const started = performance.now();
    let served = 0;
    for (;;) {
      let batch = this.batch;
      if (!batch) {
        if (this.log.length === 0) break;
        batch = this.batch = this.cut();
      }
      for (let next = batch.next.next(); !next.done; next = batch.next.next()) {
        this.send(next.value, batch);
        if (++served % CLOCK_EVERY === 0 && performance.now() - started >= SLICE_MS) {
          this.busyMs += performance.now() - started;
          this.schedule(true);
          return;
        }
      }
      this.batch = undefined;
      // Every watcher has had the batch (one that went live since starts after it): drop it.
      if (this.logStart <= batch.start) {
        this.log = this.log.slice(batch.end - this.logStart);
        this.logStart = batch.end;
      }
    }
    const ended = performance.now();
    this.busyMs += ended - started;
    this.restUntil = ended + Math.min(MAX_REST_MS, REST * this.busyMs);
    this.busyMs = 0;
  }

  /**
   * The next batch: from the start of the log, as many events as fit in the bound together (at
   * least one), so that a watcher with nothing waiting, which takes a batch whole, never holds
   * more than the bound unless one review alone is larger.
   */
  private cut(): Batch {
    let bytes = 0;
    let n = 0;
    while (n < this.log.length) {
      const size = fullBytes(this.log[n]!);
      if (n > 0 && bytes + size > this.options.boundBytes) break;
      bytes += size;
      n++;
    }
    return {
      start: this.logStart,
      end: this.logStart + n,
      entries: this.log.slice(0, n),
      events: new Map(),
      next: this.watchers.values(),
    };
  }

  private send(w: Watcher, batch: Batch): void {
    if (w.from >= batch.end) return;
    let events: Chunks | undefined;
    if (w.from <= batch.start) {
      if (batch.events.has(w.kind.key)) events = batch.events.get(w.kind.key);
      else batch.events.set(w.kind.key, (events = chunksFor(w.kind, batch.entries)));
    } else {
      // It went live in the middle of this batch: only what came after.
      events = chunksFor(w.kind, batch.entries.slice(w.from - batch.start));
    }
    if (!events) return;
    const backlog = w.backlog;
    // A watcher that keeps up is never ended by one large review: a batch is taken when nothing waits.
    if (backlog > 0 && backlog + events.bytes > this.options.boundBytes) {
      w.end(new ResourceExhaustedError(`the watcher fell more than ${this.options.boundBytes} bytes behind; watch again`));
      return;
    }
    w.take(events);
  }

  /** Ends the watchers whose last write has not been sent for the write timeout (they read nothing). */
  private look(): void {
    const timeoutMs = this.options.writeTimeoutMs;
    const since = performance.now() - timeoutMs;
    for (const w of this.watchers) {
      if (w.stalledSince(since)) w.end(new ResourceExhaustedError(`the watcher read nothing for ${timeoutMs} ms; watch again`));
    }
  }
}

/** Every WatchDecisions stream of a server. */
export class WatchHub {
  private readonly plain: FanOut;
  private readonly withUpdates: FanOut;
  private live = 0;

  constructor(council: Council, options: FanOutOptions) {
    const subscribe: Subscribe = (onReview, onError, onLive, onUpdate) => council.watch(undefined, onReview, onError, onLive, onUpdate);
    const wentLive = () => void this.live++;
    this.plain = new FanOut(subscribe, false, options, wentLive);
    this.withUpdates = new FanOut(subscribe, true, options, wentLive);
  }

  /**
   * How many watches have gone live (been sent their response headers) since the server started:
   * the store subscription is shared, so a watch that goes live is not seen there.
   */
  get watchesLive(): number {
    return this.live;
  }

  /**
   * Streams each review stored from now on (and with `include_updates` each change) until the
   * caller cancels; rejects with RESOURCE_EXHAUSTED when the caller falls behind (see above), or
   * with the store's error when the subscription breaks. `watches` holds its end while it is open
   * (for shutdown).
   */
  watch(
    req: WatchDecisionsRequest,
    call: ServerWritableStream<WatchDecisionsRequest, WatchDecisionsResponse>,
    watches: Set<(err: Error) => void>,
  ): Promise<void> {
    const kind = kindOf(decisionTypeFromWire("decision_type", req.decisionType), req.includeVotes);
    const stream = http2StreamOf(call);
    if (!stream) throw new Error("grpc-js moved the HTTP/2 stream of a call: watches cannot write to it");
    const fanOut = req.includeUpdates ? this.withUpdates : this.plain;
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const end = (err?: Error) => {
        if (finished) return;
        finished = true;
        w.drop();
        fanOut.remove(w);
        watches.delete(end);
        call.off("cancelled", onCancel);
        if (err) reject(err);
        else resolve();
      };
      const onCancel = () => end();
      const w = new Watcher(call, stream, kind, end);
      watches.add(end);
      call.on("cancelled", onCancel);
      if (call.cancelled) end();
      else fanOut.add(w);
    });
  }
}
