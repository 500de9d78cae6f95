/**
 * Real redis-server processes for tests: one server on a free port in its own temp dir (which can
 * be killed with SIGKILL, paused, and restarted on the same dir and port), and a local Redis Cluster
 * of N masters. Every wait is bounded. Stop what you start in an `after` hook; anything left
 * running is killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { connect as connectTls } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./wait.js";

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

let checkedBinary = false;
function requireRedisServer(): void {
  if (checkedBinary) return;
  const probe = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  if (probe.error || probe.status !== 0) {
    throw new Error("redis-server is not on PATH: the Redis tests need Redis 6.2 or later installed (e.g. apt-get install redis-server)");
  }
  checkedBinary = true;
}

/** A TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

/** Sends one inline command and returns the first reply line, or undefined if the port did not answer. */
async function ask(port: number, command: string, timeoutMs = 1000, tls = false): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls
      ? connectTls({ port, host: "127.0.0.1", rejectUnauthorized: false })
      : connect({ port, host: "127.0.0.1" });
    let data = "";
    const done = (answer: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on(tls ? "secureConnect" : "connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk) => {
      data += chunk.toString("utf8");
      if (data.includes("\r\n")) done(data);
    });
    socket.on("error", () => done(undefined));
  });
}

export interface RedisServerOptions {
  /** appendonly yes with this appendfsync; undefined: no persistence at all. */
  appendfsync?: "always" | "everysec" | "no";
  /** Starts a node for a cluster (cluster-enabled yes). */
  cluster?: boolean;
  /** More `--name value` arguments for redis-server. */
  extraArgs?: string[];
  /** Serves TLS only, with a certificate for localhost and 127.0.0.1 from a test CA (see `caPem`). */
  tls?: boolean;
}

/** Makes a throwaway CA and a server certificate for localhost/127.0.0.1 in `dir` with openssl. */
function makeCertificates(dir: string): void {
  const openssl = (...args: string[]) => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8", timeout: 20_000 });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=council-test-ca");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf");
}

export class RedisServer {
  private child: ChildProcess | undefined;
  private output = "";

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly options: RedisServerOptions,
    private readonly busPort: number | undefined,
  ) {}

  get url(): string {
    return this.options.tls ? `rediss://localhost:${this.port}` : `redis://127.0.0.1:${this.port}`;
  }

  /** The CA that signed a TLS server's certificate. */
  get caPem(): string {
    return readFileSync(join(this.dir, "ca.pem"), "utf8");
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts redis-server on a free port in a new temp dir and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    requireRedisServer();
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const dir = mkdtempSync(join(tmpdir(), "council-redis-"));
      const server = new RedisServer(await freePort(), dir, options, options.cluster ? await freePort() : undefined);
      try {
        if (options.tls) makeCertificates(dir);
        await server.launch();
        return server;
      } catch (err) {
        lastError = err; // most likely the port was taken in the meantime: try another
        await server.destroy();
      }
    }
    throw lastError;
  }

  private args(): string[] {
    const o = this.options;
    const args = ["--bind", "127.0.0.1", "--dir", this.dir, "--save", "", "--protected-mode", "no"];
    if (o.tls) {
      args.push("--port", "0", "--tls-port", String(this.port), "--tls-auth-clients", "no");
      args.push("--tls-cert-file", join(this.dir, "server.pem"), "--tls-key-file", join(this.dir, "server.key"));
      args.push("--tls-ca-cert-file", join(this.dir, "ca.pem"));
    } else args.push("--port", String(this.port));
    args.push("--daemonize", "no", "--logfile", "", "--loglevel", "warning");
    if (o.appendfsync) args.push("--appendonly", "yes", "--appendfsync", o.appendfsync);
    else args.push("--appendonly", "no");
    if (o.cluster) {
      args.push("--cluster-enabled", "yes", "--cluster-config-file", join(this.dir, "nodes.conf"), "--cluster-node-timeout", "3000");
      args.push("--cluster-port", String(this.busPort));
    }
    args.push(...(o.extraArgs ?? []));
    return args;
  }

  private async launch(): Promise<void> {
    this.output = "";
    const child = spawn("redis-server", this.args(), { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    live.add(child);
    child.on("exit", () => live.delete(child));
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-4000);
    };
    child.stdout!.on("data", collect);
    child.stderr!.on("data", collect);
    // Not answering yet, or -LOADING while it reads its append-only file.
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`redis-server on port ${this.port} exited at start:\n${this.output}`);
        }
        return (await ask(this.port, "PING", 500, this.options.tls))?.startsWith("+PONG");
      },
      { timeoutMs: 15_000, intervalMs: 20, what: `redis-server on port ${this.port} to answer PING` },
    ).catch((err: Error) => {
      throw new Error(`${err.message}:\n${this.output}`);
    });
  }

  private async waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, timeoutMs);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** SIGKILL: no chance to flush anything. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await this.waitExit(child, 5000);
    this.child = undefined;
  }

  /** SIGTERM, waiting for a clean exit (bounded). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill("SIGCONT");
    child.kill("SIGTERM");
    await this.waitExit(child, 5000);
    this.child = undefined;
  }

  /** SIGSTOP: the server keeps its connections open and stops answering. */
  pause(): void {
    this.child?.kill("SIGSTOP");
  }

  resume(): void {
    this.child?.kill("SIGCONT");
  }

  /** Starts redis-server again on the same port and dir (after kill or stop). */
  async restart(): Promise<void> {
    if (this.child) throw new Error("redis-server is still running");
    // The old process may take a moment to release its port.
    let lastError: unknown;
    await waitFor(
      () =>
        this.launch().then(
          () => true,
          (err: unknown) => {
            lastError = err;
            return false;
          },
        ),
      { timeoutMs: 5000, intervalMs: 100, what: `redis-server to start again on port ${this.port}` },
    ).catch((err: unknown) => {
      throw lastError ?? err;
    });
  }

  /** Stops the server and removes its dir. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs redis-cli against this server and returns its output. */
  cli(...args: string[]): string {
    const tls = this.options.tls ? ["--tls", "--cacert", join(this.dir, "ca.pem")] : [];
    const r = spawnSync("redis-cli", [...tls, "-h", "127.0.0.1", "-p", String(this.port), ...args], { encoding: "utf8", timeout: 10_000 });
    if (r.error) throw r.error;
    return r.stdout;
  }
}

/** A local Redis Cluster of N masters and no replicas. */
export class RedisCluster {
  private constructor(readonly nodes: RedisServer[]) {}

  /** `redis+cluster://` URL naming every node. */
  get url(): string {
    return `redis+cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(",")}`;
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const nodes: RedisServer[] = [];
    try {
      for (const n of await Promise.all(Array.from({ length: masters }, () => RedisServer.start({ cluster: true })))) nodes.push(n);
      const create = spawnSync(
        "redis-cli",
        ["--cluster", "create", ...nodes.map((n) => `127.0.0.1:${n.port}`), "--cluster-replicas", "0", "--cluster-yes"],
        { encoding: "utf8", timeout: 30_000 },
      );
      if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
      const cluster = new RedisCluster(nodes);
      await cluster.waitOk(20_000);
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.destroy()));
      throw err;
    }
  }

  /** Waits until every node reports cluster_state:ok and knows every master. */
  async waitOk(timeoutMs: number): Promise<void> {
    // redis-cli is a process per check: poll gently.
    await waitFor(
      () =>
        this.nodes.every((n) => {
          const info = n.cli("cluster", "info");
          return info.includes("cluster_state:ok") && info.includes(`cluster_known_nodes:${this.nodes.length}`);
        }),
      { timeoutMs, intervalMs: 100, what: "every node of the cluster to report cluster_state:ok" },
    );
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.destroy()));
  }
}
