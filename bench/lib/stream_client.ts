/**
 * Opens many WatchDecisions or AwaitDecision streams against a Council server, in a process of its
 * own (so that the memory of the client side never mixes with the server's, which is what the
 * stream bench measures), and counts what each stream receives. Driven by its parent over the
 * IPC channel of `fork` (bench/lib/stream_clients.ts):
 *
 *   { op: "open", kind: "watch" | "await", count, ids?, perChannel?, timeoutMs? }
 *       opens `count` more streams (awaits spread over `ids`), `perChannel` per channel, each
 *       channel on its own connection (the server allows 100 streams per connection), and answers
 *       { op: "opened", open, failed, errors, ms } once every new stream is confirmed live by the
 *       server: a watch by its response headers (sent once its subscription is live), an await by
 *       its first message (the decision's current state, sent after its subscription is live).
 *   { op: "counts" }  answers { op: "counts", streams, min, max, total, ended, failed, errors }
 *       (events received per stream; `ended`: streams the server ended, `failed`: with an error).
 *   { op: "close" }   cancels every stream, closes every channel, answers { op: "closed" }.
 *
 * The process exits when its parent goes away.
 */
import { credentials, type ClientReadableStream, type ServiceError } from "@grpc/grpc-js";
import { CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";

interface Stream {
  call: ClientReadableStream<unknown>;
  events: number;
  live: boolean;
  ended: boolean;
  error?: string;
}

export type ClientRequest =
  | { op: "open"; kind: "watch" | "await"; count: number; ids?: string[]; perChannel?: number; timeoutMs?: number }
  | { op: "counts" }
  | { op: "close" };

export type ClientReply =
  | { op: "opened"; open: number; failed: number; errors: string[]; ms: number }
  | { op: "counts"; streams: number; min: number; max: number; total: number; ended: number; failed: number; errors: string[] }
  | { op: "closed" }
  | { op: "error"; message: string };

const addr = process.argv[2];
if (!addr || !process.send) {
  process.stderr.write("usage: forked by bench/lib/stream_clients.ts with the server address\n");
  process.exit(2);
}

const streams: Stream[] = [];
const clients: CouncilServiceClient[] = [];
/** Streams on the last channel made, so that the next ones fill it before a new one is made. */
let onLastChannel = Infinity;

const reply = (message: ClientReply) => process.send!(message);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A client on a channel of its own: a local subchannel pool, so no connection is shared with another channel. */
function channel(perChannel: number): CouncilServiceClient {
  if (onLastChannel >= perChannel) {
    clients.push(new CouncilServiceClient(addr!, credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 }));
    onLastChannel = 0;
  }
  onLastChannel++;
  return clients[clients.length - 1]!;
}

function track(call: ClientReadableStream<unknown>, liveOn: "metadata" | "data"): Stream {
  const s: Stream = { call, events: 0, live: false, ended: false };
  call.on("metadata", () => {
    if (liveOn === "metadata") s.live = true;
  });
  call.on("data", () => {
    s.events++;
    s.live = true;
  });
  call.on("error", (err: ServiceError) => {
    s.ended = true;
    // A cancel of our own (at close) is not a failure.
    if (err.code !== 1) s.error = `${err.code} ${err.details}`;
  });
  call.on("end", () => {
    s.ended = true;
  });
  streams.push(s);
  return s;
}

async function open(req: Extract<ClientRequest, { op: "open" }>): Promise<void> {
  const started = performance.now();
  const perChannel = req.perChannel ?? 90;
  const fresh: Stream[] = [];
  // In batches, so that the server is not handed ten thousand calls in one burst of frames.
  const BATCH = 500;
  const deadline = Date.now() + (req.timeoutMs ?? 120_000);
  for (let i = 0; i < req.count; i += BATCH) {
    const batch: Stream[] = [];
    for (let j = i; j < Math.min(req.count, i + BATCH); j++) {
      const c = channel(perChannel);
      if (req.kind === "watch") {
        batch.push(track(c.watchDecisions({ decisionType: 0, includeVotes: false, includeUpdates: false }), "metadata"));
      } else {
        const ids = req.ids ?? [];
        batch.push(track(c.awaitDecision({ decisionId: ids[j % ids.length] ?? "" }), "data"));
      }
    }
    while (Date.now() < deadline && batch.some((s) => !s.live && !s.ended)) await sleep(20);
    fresh.push(...batch);
  }
  const failed = fresh.filter((s) => !s.live || s.error !== undefined);
  reply({
    op: "opened",
    open: fresh.length - failed.length,
    failed: failed.length,
    errors: [...new Set(failed.map((s) => s.error ?? "not live before the deadline"))].slice(0, 5),
    ms: Math.round(performance.now() - started),
  });
}

function counts(): ClientReply {
  let min = Infinity;
  let max = 0;
  let total = 0;
  for (const s of streams) {
    min = Math.min(min, s.events);
    max = Math.max(max, s.events);
    total += s.events;
  }
  const failed = streams.filter((s) => s.error !== undefined);
  return {
    op: "counts",
    streams: streams.length,
    min: streams.length ? min : 0,
    max,
    total,
    ended: streams.filter((s) => s.ended).length,
    failed: failed.length,
    errors: [...new Set(failed.map((s) => s.error!))].slice(0, 5),
  };
}

process.on("message", (msg: ClientRequest) => {
  const run = async () => {
    if (msg.op === "open") await open(msg);
    else if (msg.op === "counts") reply(counts());
    else {
      for (const s of streams) s.call.cancel();
      for (const c of clients) c.close();
      streams.length = 0;
      clients.length = 0;
      onLastChannel = Infinity;
      reply({ op: "closed" });
    }
  };
  run().catch((err: unknown) => reply({ op: "error", message: err instanceof Error ? err.message : String(err) }));
});
process.on("disconnect", () => process.exit(0));
