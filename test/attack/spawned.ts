/**
 * A real Council server process for the attack tests: spawned with `node --import tsx src/main.ts`
 * on a free loopback port (optionally with a small heap, so that an attack that exhausts memory
 * shows in seconds), with its output kept for failure messages and its memory read from /proc.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import http2, { type ClientHttp2Session } from "node:http2";
import { connect } from "node:net";
import { freePort } from "../support/redis.js";
import { waitFor } from "../support/wait.js";

export interface Spawned {
  child: ChildProcess;
  addr: string;
  /** The value of a metric without labels (e.g. `council_call_memory_bytes`); needs `metrics: true`. */
  metric(name: string): Promise<number>;
  /** Everything the server printed (the last 1 MB). */
  output(): string;
  up(): boolean;
  /** Resident memory now and at its peak, in MB. */
  memoryMb(): { now: number; peak: number };
  /** SIGKILLs the server and waits for it to exit. */
  stop(): Promise<void>;
}

export async function spawnCouncil(options: { heapMb?: number; env?: Record<string, string>; metrics?: boolean } = {}): Promise<Spawned> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const metricsAddr = options.metrics ? `127.0.0.1:${await freePort()}` : undefined;
  const heap = options.heapMb ? [`--max-old-space-size=${options.heapMb}`] : [];
  const child = spawn(process.execPath, [...heap, "--import", "tsx", "src/main.ts", "--addr", addr], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, COUNCIL_LOG_LEVEL: "warn", ...(metricsAddr ? { COUNCIL_METRICS_ADDR: metricsAddr } : {}), ...options.env },
  });
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString("utf8");
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const up = () => child.exitCode === null && child.signalCode === null;
  await waitFor(
    async () => {
      if (!up()) throw new Error(`the server exited at start-up:\n${out}`);
      return new Promise<boolean>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
    },
    { timeoutMs: 30_000, what: "the server to listen" },
  );
  return {
    child,
    addr,
    async metric(name: string) {
      if (!metricsAddr) throw new Error("spawnCouncil({ metrics: true }) serves metrics");
      const text = await (await fetch(`http://${metricsAddr}/metrics`)).text();
      const line = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
      if (!line) throw new Error(`no metric ${name}`);
      return Number(line[1]);
    },
    output: () => out,
    up,
    memoryMb() {
      const text = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)![1]);
      return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
    },
    async stop() {
      if (!up()) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** An HTTP/2 connection whose errors (the server going away) are left to each call to report. */
export function session(addr: string, settings?: http2.Settings): ClientHttp2Session {
  const s = http2.connect(`http://${addr}`, settings ? { settings } : {});
  s.on("error", () => {});
  return s;
}

export interface RawAnswer {
  code?: number;
  message?: string;
  rstCode?: number;
  timedOut?: boolean;
}

/**
 * One unary gRPC call made by hand: `body` is sent as is (frames included), then the stream ends.
 * The answer is the first `grpc-status`: a server that answers before the whole request has
 * arrived then resets the stream with NO_ERROR, which a Node client still writing never reports
 * as closed, so the stream is closed here once the status is known.
 */
export function rawUnary(s: ClientHttp2Session, path: string, body: Buffer, headers: http2.OutgoingHttpHeaders = {}, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const stream = s.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...headers });
    const answer: RawAnswer = {};
    const read = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] === undefined) return;
      answer.code = Number(h["grpc-status"]);
      answer.message = decodeURIComponent(String(h["grpc-message"] ?? ""));
      if (!stream.closed) stream.close();
    };
    const timer = setTimeout(() => {
      answer.timedOut = true;
      stream.close();
    }, timeoutMs);
    stream.on("response", read);
    stream.on("trailers", read);
    stream.on("data", () => {});
    stream.on("error", () => {});
    stream.on("close", () => {
      clearTimeout(timer);
      answer.rstCode = stream.rstCode;
      resolve(answer);
    });
    stream.end(body);
  });
}

/* Protobuf encoding by hand, for requests no generated encoder would write. */
export function varint(n: number | bigint): Buffer {
  const out: number[] = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}
export const tag = (field: number, wireType: number) => varint((field << 3) | wireType);
export const lengthDelimited = (field: number, bytes: Buffer | string) => {
  const b = Buffer.from(bytes);
  return Buffer.concat([tag(field, 2), varint(b.length), b]);
};
export const varintField = (field: number, n: number) => Buffer.concat([tag(field, 0), varint(n)]);

/** A gRPC frame: flag byte (1: compressed), 4-byte length, the message. */
export function frame(message: Buffer, compressed = false): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out[0] = compressed ? 1 : 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/**
 * A ReviewSuggestionRequest whose suggestion holds `count` empty `files_affected` entries (two
 * bytes each on the wire): 2,000,000 of them fit in 4 MB.
 */
export function manyEmptyFiles(count: number): Buffer {
  const files = Buffer.alloc(2 * count);
  for (let i = 0; i < count; i++) files[2 * i] = (9 << 3) | 2; // field 9 (files_affected), length 0
  const suggestion = Buffer.concat([lengthDelimited(1, "sug-1"), lengthDelimited(2, "title"), varintField(5, 2), varintField(6, 2), files]);
  return lengthDelimited(1, suggestion);
}

export const REVIEW = "/council.v1.CouncilService/ReviewSuggestion";
export const GET_DECISION = "/council.v1.CouncilService/GetDecision";
export const GET_SUMMARY = "/council.v1.CouncilService/GetSummary";

/** Resolves after `ms`: used only to let an attack run for a bounded time before it is measured. */
export const forMs = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
