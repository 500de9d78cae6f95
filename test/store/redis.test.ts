/**
 * The Redis store against real redis-server processes started here on free ports: the shared
 * contract suite on one Redis and on a 3-master cluster, plus what only Redis has — buckets spread
 * over the cluster's masters, key prefixes, the recorded bucket count, failing fast and recovering.
 */
import { expect } from "chai";
import { pino } from "pino";
import { UnavailableError } from "../../src/domain/errors.js";
import type { Decision } from "../../src/domain/model.js";
import { createLogger } from "../../src/log.js";
import { Keyspace, clusterSlot } from "../../src/store/keys.js";
import { RedisStore, type RedisStoreOptions } from "../../src/store/redis.js";
import { parseRedisUrl } from "../../src/store/redis_connection.js";
import { openStore } from "../../src/store/open.js";
import { ConfigError, loadConfig } from "../../src/config.js";
import { decision, unique } from "../support/fixtures.js";
import { RedisCluster, RedisServer } from "../support/redis.js";
import { waitFor, within } from "../support/wait.js";
import { storeContract } from "./contract.js";

const log = createLogger("silent");
const prefix = () => `${unique("t")}:`;

/** Subscribes, and returns once the store reports the subscription live (onLive). */
async function subscribeLive(store: RedisStore, onReview: (d: Decision) => void, onError: (err: Error) => void): Promise<() => void> {
  let live!: () => void;
  const isLive = new Promise<void>((resolve) => (live = resolve));
  const leave = store.subscribe(onReview, onError, live);
  await within(isLive, { what: "the subscription to be live" });
  return leave;
}

describe("REDIS_URL", () => {
  const rows: [string, Partial<ReturnType<typeof parseRedisUrl>>][] = [
    ["redis://127.0.0.1:6380", { cluster: false, tls: false, nodes: [{ host: "127.0.0.1", port: 6380 }], where: "127.0.0.1:6380" }],
    ["redis://cache", { nodes: [{ host: "cache", port: 6379 }], password: undefined, db: undefined }],
    ["redis://:s%40cret@cache:6379/2", { password: "s@cret", username: undefined, db: 2, where: "cache:6379" }],
    ["redis://council:pw@cache:6379", { username: "council", password: "pw" }],
    ["rediss://redis.example.com:6380", { tls: true, nodes: [{ host: "redis.example.com", port: 6380 }] }],
    ["redis://[::1]:6379", { nodes: [{ host: "::1", port: 6379 }], where: "[::1]:6379" }],
    [
      "redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001",
      { cluster: true, password: "pw", nodes: [{ host: "10.0.0.1", port: 7000 }, { host: "10.0.0.2", port: 7001 }], where: "10.0.0.1:7000,10.0.0.2:7001" },
    ],
  ];
  for (const [url, want] of rows) {
    it(`reads ${url}`, () => expect(parseRedisUrl(url)).to.deep.include(want));
  }
  for (const bad of ["redis://", "redis://a:1,b:2", "redis://h:99999", "redis+cluster://a:1/3", "http://h:1"]) {
    it(`refuses ${bad}`, () => expect(() => parseRedisUrl(bad)).to.throw(/REDIS_URL/));
  }
  it("never puts the password in the description", () => expect(parseRedisUrl("redis://:hunter2@h:1").where).to.equal("h:1"));
});

describe("Redis store", function () {
  this.timeout(30_000);

  describe("on one redis-server", () => {
    let server: RedisServer;
    const open = (o: Partial<RedisStoreOptions> = {}) => RedisStore.open({ url: server.url, prefix: prefix(), log, ...o });

    before(async () => {
      server = await RedisServer.start();
    });
    after(async () => {
      await server?.destroy();
    });

    storeContract("redis", { open: () => open() });

    it("describes itself for the start-up log", async () => {
      const store = await open({ buckets: 4 });
      try {
        expect(store.description).to.equal(`redis 127.0.0.1:${server.port} (prefix ${store.keys.prefix}, 4 buckets)`);
      } finally {
        await store.close();
      }
    });

    it("records the bucket count when it creates a keyspace, and every later opener uses it", async () => {
      const p = prefix();
      const first = await RedisStore.open({ url: server.url, prefix: p, log, buckets: 5 });
      const second = await RedisStore.open({ url: server.url, prefix: p, log, buckets: 9 });
      const fresh = await RedisStore.open({ url: server.url, prefix: prefix(), log, buckets: 9 });
      try {
        expect(first.keys.buckets).to.equal(5);
        expect(second.keys.buckets).to.equal(5);
        expect(fresh.keys.buckets).to.equal(9);
        expect(server.cli("hget", `${p}meta`, "buckets").trim()).to.equal("5");
        const d = decision();
        await first.saveReview(d, "fp");
        expect(await second.getDecision(d.id)).to.deep.equal(d);
      } finally {
        await Promise.all([first.close(), second.close(), fresh.close()]);
      }
    });

    it("is what openStore opens when REDIS_URL is set, with COUNCIL_REDIS_BUCKETS for a new keyspace", async () => {
      const config = loadConfig(["--redis-url", server.url, "--redis-prefix", prefix()], { COUNCIL_REDIS_BUCKETS: "4" });
      const store = await openStore(config, log);
      try {
        expect(store).to.be.instanceOf(RedisStore);
        expect(store.description).to.match(/, 4 buckets\)$/);
      } finally {
        await store.close();
      }
      for (const bad of ["0", "x", "1.5", "5000"]) {
        let err: unknown;
        try {
          loadConfig(["--redis-url", server.url], { COUNCIL_REDIS_BUCKETS: bad });
        } catch (e) {
          err = e;
        }
        expect(err, bad).to.be.instanceOf(ConfigError);
        expect((err as Error).message).to.include("COUNCIL_REDIS_BUCKETS must be");
      }
    });

    it("warns at start-up when Redis persistence can lose acknowledged writes, or cannot be checked", async () => {
      const everysec = await RedisServer.start({ appendfsync: "everysec" });
      const noConfig = await RedisServer.start({ extraArgs: ["--rename-command", "CONFIG", ""] });
      try {
        const startUp = async (url: string) => {
          const lines: { level: number; msg: string; features?: unknown }[] = [];
          const capture = pino({ level: "info" }, { write: (line: string) => lines.push(JSON.parse(line)) });
          const store = await RedisStore.open({ url, prefix: prefix(), log: capture });
          await store.close();
          return lines;
        };
        const warnings = (lines: { level: number; msg: string }[]) => lines.filter((l) => l.level === 40).map((l) => l.msg);

        const none = await startUp(server.url);
        expect(warnings(none).join("\n")).to.include("Redis persistence can lose acknowledged decisions: appendonly is not yes");
        expect(none.find((l) => l.msg === "optional Redis commands")?.features).to.deep.equal({ waitaof: false });
        expect(warnings(await startUp(everysec.url)).join("\n")).to.include("appendfsync is everysec");
        expect(warnings(await startUp(noConfig.url)).join("\n")).to.include("could not check Redis persistence");
      } finally {
        await Promise.all([everysec.destroy(), noConfig.destroy()]);
      }
    });

    it("connects over TLS with rediss://, checking the server's certificate", async () => {
      const secure = await RedisServer.start({ tls: true });
      try {
        const store = await RedisStore.open({ url: secure.url, prefix: prefix(), log, tls: { ca: secure.caPem } });
        try {
          expect(store.description).to.match(/^rediss localhost:\d+ \(prefix /);
          const d = decision({ requestId: unique("req") });
          await store.saveReview(d, "fp");
          expect(await store.getDecision(d.id)).to.deep.equal(d);
        } finally {
          await store.close();
        }
        // Without the CA, the certificate is refused and the store does not open.
        const refused = await RedisStore.open({ url: secure.url, prefix: prefix(), log, startTimeoutMs: 1500 }).then(
          async (s) => {
            await s.close();
            return undefined;
          },
          (e: Error) => e,
        );
        expect(refused?.message).to.match(/cannot open the Redis store.*(certificate|self.signed)/i);
      } finally {
        await secure.destroy();
      }
    });

    it("keeps two prefixes apart: neither sees the other's decisions, counts, lessons or events", async () => {
      // One bucket each: were the prefixes to share keys, A's events would be in B's one stream.
      const a = await open({ buckets: 1 });
      const b = await open({ buckets: 1 });
      try {
        const seenByB: string[] = [];
        const leave = await subscribeLive(b, (d) => seenByB.push(d.id), () => undefined);
        const requestId = unique("req");
        const d = decision({ requestId });
        await a.saveReview(d, "fp");
        await a.recordOutcome(d.id, { outcome: "success", notes: "n", lessons: "l", at: new Date(), requestId: "", fingerprint: "", recordedBy: "anonymous" });
        expect(await b.getDecision(d.id)).to.equal(undefined);
        expect(await b.findByRequestId("anonymous", requestId)).to.equal(undefined);
        expect((await b.listDecisions({}, { limit: 10 })).items).to.deep.equal([]);
        expect((await b.listLessons({ limit: 10 })).items).to.deep.equal([]);
        expect((await b.summary()).totalDecisions).to.equal(0);
        // The same request_id under the other prefix is a new review.
        const ofB = decision({ requestId });
        expect((await b.saveReview(ofB, "fp")).kind).to.equal("stored");
        expect((await a.summary()).totalDecisions).to.equal(1);
        // B's own review reaches B's subscriber; A's, stored earlier, would have come first.
        await waitFor(() => seenByB.includes(ofB.id), { what: "B's review to reach B's subscriber" });
        expect(seenByB).to.deep.equal([ofB.id]);
        leave();
        const keysOfA = server.cli("--scan", "--pattern", `${a.keys.prefix}*`).trim().split("\n");
        const keysOfB = server.cli("--scan", "--pattern", `${b.keys.prefix}*`).trim().split("\n");
        expect(keysOfA.length).to.be.greaterThan(3);
        expect(keysOfA.some((k) => k.startsWith(b.keys.prefix))).to.equal(false);
        expect(keysOfB.some((k) => k.startsWith(a.keys.prefix))).to.equal(false);
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    });

    it("stores a re-sent request-less save once", async () => {
      const store = await open();
      try {
        const d = decision();
        expect((await store.saveReview(d, "fp")).kind).to.equal("stored");
        expect((await store.saveReview(d, "fp")).kind).to.equal("stored");
        expect((await store.summary()).totalDecisions).to.equal(1);
        expect((await store.listDecisions({}, { limit: 10 })).items).to.have.length(1);
      } finally {
        await store.close();
      }
    });

    it("refuses a decisions cursor it did not issue", async () => {
      const store = await open();
      try {
        for (const cursor of ["", "nope", "12:dec-x", `${"9".repeat(15)}:`, "x".repeat(600)]) {
          const err = await store.listDecisions({}, { limit: 5, cursor }).then(
            () => undefined,
            (e: Error) => e,
          );
          expect(err?.name, cursor).to.equal("InvalidArgumentError");
        }
      } finally {
        await store.close();
      }
    });

    it("fails fast with UNAVAILABLE while Redis hangs, reports unhealthy, and recovers on its own", async () => {
      const store = await open();
      const changes: boolean[] = [];
      store.onHealthChange((h) => changes.push(h));
      try {
        expect(store.isHealthy()).to.equal(true);
        server.pause();
        const started = Date.now();
        const calls = [store.saveReview(decision(), "fp"), store.summary(), store.getDecision("dec-x"), store.listLessons({ limit: 5 })];
        for (const err of await Promise.all(calls.map((c) => c.then(() => undefined, (e: Error) => e)))) {
          expect(err).to.be.instanceOf(UnavailableError);
        }
        expect(Date.now() - started).to.be.lessThan(2000);
        await waitFor(() => !store.isHealthy(), { timeoutMs: 3000, what: "health to go down" });
        server.resume();
        await waitFor(() => store.isHealthy(), { timeoutMs: 5000, what: "health to come back" });
        expect(changes).to.deep.equal([false, true]);
        await store.saveReview(decision(), "fp");
      } finally {
        server.resume();
        await store.close();
      }
    });
  });

  describe("on a 3-master cluster", () => {
    let cluster: RedisCluster;
    before(async function () {
      this.timeout(60_000);
      cluster = await RedisCluster.start(3);
    });
    after(async () => {
      await cluster?.destroy();
    });

    storeContract("redis cluster", { open: () => RedisStore.open({ url: cluster.url, prefix: prefix(), log }) });

    it("spreads the buckets' slots evenly over the slot space", () => {
      const keys = new Keyspace("council:", 16);
      const slots = keys.all().map((b) => clusterSlot(keys.counts(b)));
      slots.forEach((slot, b) => expect(Math.floor(slot / 1024), `bucket ${b}`).to.equal(b));
    });

    it("writes to every master: keys land on all three after 50 reviews", async () => {
      const store = await RedisStore.open({ url: cluster.url, prefix: prefix(), log });
      try {
        expect(store.description).to.match(/^redis cluster 127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+ \(prefix t-\w+:, 16 buckets\)$/);
        for (let i = 0; i < 50; i++) await store.saveReview(decision(i % 2 ? { requestId: unique("req") } : {}), "fp");
        const perMaster = cluster.nodes.map((n) => n.cli("--scan", "--pattern", `${store.keys.prefix}*`).trim().split("\n").filter(Boolean));
        for (const keys of perMaster) expect(keys.filter((k) => k.includes(":d:")).length).to.be.greaterThan(5);
        expect(perMaster.flat().filter((k) => k.includes(":d:"))).to.have.length(50);
        expect((await store.summary()).totalDecisions).to.equal(50);
        const listed = (await store.listDecisions({}, { limit: 100 })).items;
        expect(new Set(listed.map((d) => d.id)).size).to.equal(50);
      } finally {
        await store.close();
      }
    });
  });

  describe("on a 3-master cluster losing a master", () => {
    let cluster: RedisCluster;
    before(async function () {
      this.timeout(60_000);
      cluster = await RedisCluster.start(3);
    });
    after(async () => {
      await cluster?.destroy();
    });

    it("fails fast and reports unhealthy while a master is down, and recovers on its own when it is back", async function () {
      this.timeout(60_000);
      const store = await RedisStore.open({ url: cluster.url, prefix: prefix(), log });
      try {
        expect(store.isHealthy()).to.equal(true);
        const victim = cluster.nodes[1]!;
        await victim.kill();
        await waitFor(() => !store.isHealthy(), { timeoutMs: 5000, what: "health to go down" });
        // Reviews whose bucket lives on the lost master fail fast; the others may or may not
        // (the cluster itself stops serving once it marks the master failed).
        const attempts = await Promise.all(
          Array.from({ length: 32 }, async () => {
            const started = Date.now();
            const err = await store.saveReview(decision(), "fp").then(
              () => undefined,
              (e: Error) => e,
            );
            return { err, ms: Date.now() - started };
          }),
        );
        for (const a of attempts) {
          expect(a.ms).to.be.lessThan(2000);
          if (a.err) expect(a.err).to.be.instanceOf(UnavailableError);
        }
        expect(attempts.filter((a) => a.err).length).to.be.greaterThan(0);
        await victim.restart();
        await cluster.waitOk(20_000);
        await waitFor(() => store.isHealthy(), { timeoutMs: 15_000, what: "health to come back" });
        await waitFor(
          async () => {
            const results = await Promise.allSettled(Array.from({ length: 32 }, () => store.saveReview(decision(), "fp")));
            return results.every((r) => r.status === "fulfilled");
          },
          { timeoutMs: 15_000, intervalMs: 100, what: "writes to every bucket to succeed" },
        );
      } finally {
        await store.close();
      }
    });
  });
});
