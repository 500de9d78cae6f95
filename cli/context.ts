/**
 * What every command works with: where the server is and how to reach it (flags over environment
 * over defaults), the client (connected on first use), the output format, the clock, and a signal
 * that Ctrl-C aborts.
 */
import { readFileSync } from "node:fs";
import { connect, type ConnectOptions, type CouncilClient } from "../clients/typescript/src/client.js";
import { CliError, UsageError } from "./errors.js";
import { colourWanted, outputWidth, painter, type Painter } from "./render.js";

export const DEFAULT_ADDR = "127.0.0.1:50051";
/** The deadline of a call when --timeout is not given (the client's own default). */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;
/** The deadline of a review stream when --timeout is not given (the client's own default). */
export const DEFAULT_REVIEW_TIMEOUT_MS = 60_000;

/** The flags every command takes, as node:util parseArgs reads them. */
export interface GlobalFlags {
  addr?: string;
  token?: string;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  "server-name"?: string;
  output?: string;
  timeout?: string;
  help?: boolean;
}

/** Where the output goes; tests read the same streams as subprocess pipes. */
export interface Streams {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** `30s`, `500ms`, `15m`, `24h`, `2d` in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a duration (e.g. 500ms, 30s, 15m, 24h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  const ms = Number(m[1]) * unit;
  if (ms <= 0) throw new UsageError(`${flag}: must be more than 0`);
  return ms;
}

const truthy = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
const nonEmpty = (v: string | undefined) => (v === undefined || v === "" ? undefined : v);

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(`cannot read the ${what} ${path}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code}`);
  }
}

/** The server's address: --addr, then COUNCIL_ADDR, then the default. */
export function addrOf(flags: GlobalFlags, env: NodeJS.ProcessEnv): string {
  return flags.addr ?? nonEmpty(env.COUNCIL_ADDR) ?? DEFAULT_ADDR;
}

/** The connection settings from flags, then COUNCIL_* variables, then defaults. */
export function connectionOf(flags: GlobalFlags, env: NodeJS.ProcessEnv): { addr: string; options: ConnectOptions } {
  const addr = addrOf(flags, env);
  const token = flags.token ?? nonEmpty(env.COUNCIL_TOKEN);
  const ca = flags.ca ?? nonEmpty(env.COUNCIL_CA_FILE);
  const cert = flags.cert ?? nonEmpty(env.COUNCIL_CERT_FILE);
  const key = flags.key ?? nonEmpty(env.COUNCIL_KEY_FILE);
  const serverName = flags["server-name"] ?? nonEmpty(env.COUNCIL_SERVER_NAME);
  if (!cert !== !key) throw new UsageError("--cert and --key go together (a client certificate needs its key)");
  const tls = Boolean(flags.tls) || truthy(env.COUNCIL_TLS) || Boolean(ca || cert || serverName);
  const options: ConnectOptions = { token };
  if (tls) {
    options.tls = {
      rootCerts: ca ? readPem(ca, "CA file") : undefined,
      certChain: cert ? readPem(cert, "certificate file") : undefined,
      privateKey: key ? readPem(key, "key file") : undefined,
      serverName,
    };
  }
  return { addr, options };
}

export class Context {
  readonly json: boolean;
  readonly paint: Painter;
  readonly width: number;
  /** Aborted by Ctrl-C (SIGINT) or SIGTERM; streams end, and the command exits 130. */
  readonly abort = new AbortController();
  private client: CouncilClient | undefined;
  private connection: { addr: string; options: ConnectOptions } | undefined;

  constructor(
    readonly flags: GlobalFlags,
    readonly streams: Streams,
    /** The --timeout in ms, if given. */
    readonly timeoutMs: number | undefined,
  ) {
    this.json = flags.output === "json";
    const tty = Boolean(streams.stdout.isTTY);
    this.paint = painter(!this.json && colourWanted(tty, streams.env));
    this.width = outputWidth(tty ? streams.stdout.columns : undefined);
  }

  /** The server's address, as the flags and environment say. */
  get addr(): string {
    return addrOf(this.flags, this.streams.env);
  }

  private settings() {
    this.connection ??= connectionOf(this.flags, this.streams.env);
    return this.connection;
  }

  /** The client, connected on first use. */
  council(): CouncilClient {
    if (!this.client) {
      const { addr, options } = this.settings();
      this.client = connect(addr, {
        ...options,
        timeoutMs: this.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
        reviewTimeoutMs: this.timeoutMs ?? DEFAULT_REVIEW_TIMEOUT_MS,
      });
    }
    return this.client;
  }

  close(): void {
    this.client?.close();
  }

  now(): Date {
    return new Date();
  }

  /** One line for people (table output) on stdout. */
  line(text = ""): void {
    this.streams.stdout.write(`${text}\n`);
  }

  lines(texts: string[]): void {
    if (texts.length) this.streams.stdout.write(`${texts.join("\n")}\n`);
  }

  /** One JSON object on one line (the proto JSON mapping of a message, from its toJSON). */
  object(value: unknown): void {
    this.streams.stdout.write(`${JSON.stringify(value)}\n`);
  }

  /** A note for people that is not the command's output (stderr, table output only). */
  note(text: string): void {
    if (!this.json) this.streams.stderr.write(`${text}\n`);
  }
}
