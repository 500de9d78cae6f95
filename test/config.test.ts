import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { ConfigError, loadConfig, resolvePolicy } from "../src/config.js";

const fails = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("configuration", () => {
  it("has the documented defaults", () => {
    expect(loadConfig([], {})).to.deep.equal({
      addr: "127.0.0.1:50051",
      policy: "default",
      redisUrl: undefined,
      redisPrefix: "council:",
      redisBuckets: 16,
      redisMinReplicas: 0,
      logLevel: "info",
      shutdownGraceMs: 10000,
      metricsAddr: undefined,
      maxWatchers: 1000,
      watchBufferBytes: 4 * 1024 * 1024,
      maxConnections: 1000,
      callMemoryBytes: 256 * 1024 * 1024,
      requestReceiveTimeoutMs: 30_000,
      streamWriteTimeoutMs: 30_000,
      tlsCert: undefined,
      tlsKey: undefined,
      tlsClientCa: undefined,
      authFile: undefined,
      allowUnauthenticated: false,
      reviewRate: undefined,
    });
  });

  it("reads variables, and a flag wins over its variable", () => {
    const env = { COUNCIL_ADDR: "0.0.0.0:6000", COUNCIL_ALLOW_UNAUTHENTICATED: "true", COUNCIL_POLICY: "seed", REDIS_URL: "redis://r:6379", COUNCIL_REDIS_PREFIX: "a:", COUNCIL_LOG_LEVEL: "warn" };
    expect(loadConfig([], env)).to.include({ addr: "0.0.0.0:6000", policy: "seed", redisUrl: "redis://r:6379", redisPrefix: "a:", logLevel: "warn" });
    expect(loadConfig(["--addr", "[::1]:7000", "--log-level=debug", "--redis-prefix", "b:"], env)).to.include({
      addr: "[::1]:7000",
      logLevel: "debug",
      redisPrefix: "b:",
    });
  });

  it("stops on bad values, naming them", () => {
    expect(fails(() => loadConfig(["--addr", "nowhere"], {}))).to.include("--addr must be host:port");
    expect(fails(() => loadConfig([], { COUNCIL_ADDR: "h:99999" }))).to.include("COUNCIL_ADDR must be host:port");
    expect(fails(() => loadConfig([], { REDIS_URL: "http://x" }))).to.include("REDIS_URL: must look like redis://host:port");
    expect(fails(() => loadConfig(["--redis-url", "redis://a:1,b:2"], {}))).to.include("--redis-url: list several nodes only with redis+cluster://");
    expect(fails(() => loadConfig([], { COUNCIL_LOG_LEVEL: "loud" }))).to.include("COUNCIL_LOG_LEVEL must be one of");
    expect(fails(() => loadConfig(["--redis-prefix", "a b"], {}))).to.include("--redis-prefix must be");
    expect(fails(() => loadConfig(["--bogus"], {}))).to.include('unknown argument "--bogus"');
    expect(fails(() => loadConfig(["--metrics-addr", "9464"], {}))).to.include("--metrics-addr must be host:port");
    expect(fails(() => loadConfig([], { COUNCIL_REDIS_BUCKETS: "0" }))).to.include("COUNCIL_REDIS_BUCKETS must be a whole number from 1 to 1024");
    expect(fails(() => loadConfig(["--addr"], {}))).to.include("--addr needs a value");
    expect(fails(() => loadConfig([], { COUNCIL_REDIS_MIN_REPLICAS: "-1" }))).to.include("COUNCIL_REDIS_MIN_REPLICAS must be a whole number from 0 to 16");
    expect(fails(() => loadConfig(["--redis-min-replicas", "1.5"], {}))).to.include("--redis-min-replicas must be a whole number");
    expect(loadConfig(["--redis-min-replicas=2"], { COUNCIL_REDIS_MIN_REPLICAS: "1" }).redisMinReplicas).to.equal(2);
  });

  it("loads a policy file by path, named after its base name, and names a bad file's problem", () => {
    const dir = mkdtempSync(join(tmpdir(), "council-policy-"));
    const good = join(dir, "strict.yaml");
    writeFileSync(good, "reviewers:\n  - role: safety\n    risk_tolerance: 0.1\n");
    expect(resolvePolicy(good).version).to.match(/^strict@[0-9a-f]{12}$/);
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ reviewers: [{ role: "safety", risk_tolerance: "high" }] }));
    expect(fails(() => resolvePolicy(bad))).to.include(`policy file ${bad}: reviewers[0].risk_tolerance: must be a number`);
    expect(fails(() => resolvePolicy(join(dir, "missing.json")))).to.include("cannot read policy file");
  });
});
