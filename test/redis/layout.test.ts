/**
 * `<prefix>meta` at start-up (issue 7, item 10): the layout is read, and a layout this code does
 * not know stops start-up (the store and the real process) without touching the keyspace; a
 * keyspace made by an earlier version gets what it lacks (the page-token key); replicas starting
 * together on a new keyspace agree on its bucket count and key.
 */
import { spawn } from "node:child_process";
import { expect } from "chai";
import { Redis } from "ioredis";
import { RedisStore } from "../../src/store/redis.js";
import { unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { within } from "../support/wait.js";
import { silent } from "./helpers.js";

describe("The keyspace's meta at start-up", function () {
  this.timeout(60_000);
  let server: RedisServer;
  let redis: Redis;
  const prefix = () => `${unique("meta")}:`;
  const open = (p: string, buckets?: number) => RedisStore.open({ url: server.url, prefix: p, log: silent, buckets, startTimeoutMs: 5000 });

  before(async () => {
    server = await RedisServer.start();
    redis = new Redis(server.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
  });
  after(async () => {
    redis?.disconnect();
    await server?.destroy();
  });

  it("refuses a layout it does not know, naming it, and leaves the keyspace as it was", async () => {
    const p = prefix();
    await redis.hset(`${p}meta`, { buckets: "4", layout: "3", created_at: "2030-01-01T00:00:00.000Z" });
    const before = await redis.hgetall(`${p}meta`);
    const err = await open(p).then(
      (s) => s.close().then(() => undefined),
      (e: Error) => e,
    );
    expect(err?.message).to.include(`${p}meta records layout "3", which this version of Council cannot read (it knows layouts 1 and 2)`);
    expect(await redis.hgetall(`${p}meta`)).to.deep.equal(before);
  });

  it("the real process stops at start with that message, and exits non-zero", async () => {
    const p = prefix();
    await redis.hset(`${p}meta`, { buckets: "4", layout: "7" });
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "--addr", "127.0.0.1:0", "--redis-url", server.url, "--redis-prefix", p], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, COUNCIL_LOG_LEVEL: "error" },
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString("utf8")));
    child.stderr.on("data", (d: Buffer) => (output += d.toString("utf8")));
    const code = await within(new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c))), {
      what: "the council process to exit",
      timeoutMs: 30_000,
    }).finally(() => child.kill("SIGKILL"));
    expect(output).to.include(`council: failed to start: cannot open the Redis store at 127.0.0.1:${server.port}: ${p}meta records layout "7"`);
    expect(output).to.not.include("council listening");
    expect(code).to.equal(1);
  });

  it("gives a keyspace made by an earlier version a page-token key and layout 2, and keeps everything else", async () => {
    const p = prefix();
    // As the previous version created it: buckets, layout and created_at, no token key.
    await redis.hset(`${p}meta`, { buckets: "3", layout: "1", created_at: "2025-01-01T00:00:00.000Z" });
    const a = await open(p, 16);
    const b = await open(p, 8);
    try {
      expect(a.keys.buckets).to.equal(3);
      expect(b.keys.buckets).to.equal(3);
      const meta = await redis.hgetall(`${p}meta`);
      // Layout 1, brought to layout 2 at open (an empty keyspace: nothing to backfill).
      expect(meta).to.deep.include({ buckets: "3", layout: "2", created_at: "2025-01-01T00:00:00.000Z" });
      expect(Buffer.from(meta.token_key!, "base64")).to.have.length(32);
      expect(a.pageTokenKey.equals(Buffer.from(meta.token_key!, "base64"))).to.equal(true);
      expect(b.pageTokenKey.equals(a.pageTokenKey)).to.equal(true);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it("reads a keyspace whose layout field was never written as layout 1, and brings it to layout 2", async () => {
    const p = prefix();
    // An older replica writes the bucket count first and the layout just after: it may have stopped between.
    await redis.hset(`${p}meta`, { buckets: "2" });
    const store = await open(p);
    try {
      expect(store.keys.buckets).to.equal(2);
      expect(await redis.hget(`${p}meta`, "layout")).to.equal("2");
    } finally {
      await store.close();
    }
  });

  it("replicas that start together on a new keyspace agree on its bucket count and page-token key", async () => {
    const p = prefix();
    const stores = await Promise.all([2, 3, 4, 5, 6, 7].map((n) => open(p, n)));
    try {
      const buckets = new Set(stores.map((s) => s.keys.buckets));
      const keys = new Set(stores.map((s) => s.pageTokenKey.toString("hex")));
      expect(buckets.size).to.equal(1);
      expect(keys.size).to.equal(1);
      const meta = await redis.hgetall(`${p}meta`);
      expect(meta.layout).to.equal("2");
      expect(Number(meta.buckets)).to.equal([...buckets][0]);
      expect(meta.created_at).to.match(/^\d{4}-\d\d-\d\dT/);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
