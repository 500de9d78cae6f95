/**
 * The parent side of bench/lib/stream_client.ts: a process of its own that holds many
 * WatchDecisions or AwaitDecision streams open against a server and counts their events. Every
 * request has a bounded wait; `stop` ends the process (SIGKILL if it does not go).
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ClientReply, ClientRequest } from "./stream_client.js";

const SCRIPT = fileURLToPath(new URL("./stream_client.ts", import.meta.url));

export interface Opened {
  open: number;
  failed: number;
  errors: string[];
  ms: number;
}

export interface Counts {
  streams: number;
  min: number;
  max: number;
  total: number;
  ended: number;
  failed: number;
  errors: string[];
}

export class StreamClients {
  private constructor(private readonly child: ChildProcess) {}

  /** Starts the client process for the server at `addr`. */
  static async start(addr: string): Promise<StreamClients> {
    const child = fork(SCRIPT, [addr], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    await new Promise<void>((resolve, reject) => {
      child.once("spawn", resolve);
      child.once("error", reject);
    });
    return new StreamClients(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  private ask<R extends ClientReply["op"]>(req: ClientRequest, answer: R, timeoutMs: number): Promise<Extract<ClientReply, { op: R }>> {
    return new Promise((resolve, reject) => {
      const done = (err?: Error, value?: Extract<ClientReply, { op: R }>) => {
        clearTimeout(timer);
        this.child.off("message", onMessage);
        this.child.off("exit", onExit);
        if (err) reject(err);
        else resolve(value!);
      };
      const onMessage = (m: ClientReply) => {
        if (m.op === "error") done(new Error(`stream client: ${m.message}`));
        else if (m.op === answer) done(undefined, m as Extract<ClientReply, { op: R }>);
      };
      const onExit = (code: number | null) => done(new Error(`stream client exited (${code}) during ${req.op}`));
      const timer = setTimeout(() => done(new Error(`stream client: no answer to ${req.op} within ${timeoutMs} ms`)), timeoutMs);
      this.child.on("message", onMessage);
      this.child.once("exit", onExit);
      this.child.send(req);
    });
  }

  /** Opens `count` watches (every review, no votes, no updates); resolves once the server confirmed each live. */
  openWatches(count: number, timeoutMs = 180_000): Promise<Opened> {
    return this.ask({ op: "open", kind: "watch", count, timeoutMs }, "opened", timeoutMs + 10_000);
  }

  /** Opens `count` awaits spread over `ids`; resolves once each received its decision's current state. */
  openAwaits(count: number, ids: string[], timeoutMs = 180_000): Promise<Opened> {
    return this.ask({ op: "open", kind: "await", count, ids, timeoutMs }, "opened", timeoutMs + 10_000);
  }

  counts(): Promise<Counts> {
    return this.ask({ op: "counts" }, "counts", 30_000);
  }

  /** Cancels every stream and closes every channel (the process stays, ready for more). */
  async closeAll(): Promise<void> {
    await this.ask({ op: "close" }, "closed", 60_000);
  }

  /** Ends the process: disconnects (it exits on that), SIGKILL after 5 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}
