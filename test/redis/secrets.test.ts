/**
 * The Redis password never reaches the process's output: the real entry point against a real
 * redis-server with `requirepass`, once with a wrong password (start-up fails, exit 1) and once
 * with the right one (it serves, and reviews work); neither stdout nor stderr holds the password,
 * at log level debug.
 */
import { expect } from "chai";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { review } from "../support/server.js";
import { run } from "../support/tools.js";
import { ServiceProcess } from "./helpers.js";

const MAIN = ["--import", "tsx", "src/main.ts"];
const PASSWORD = "Zq8-the-redis-password";

describe("The Redis password in the process's output", function () {
  this.timeout(60_000);
  let redis: RedisServer;

  before(async () => {
    redis = await RedisServer.start();
    // Set once it answers PING (the test helper waits for +PONG, which a password would refuse).
    redis.cli("CONFIG", "SET", "requirepass", PASSWORD);
  });
  after(async () => {
    await redis?.destroy();
  });

  it("a wrong password: start-up fails naming the address, and prints no password", async () => {
    const wrong = `${PASSWORD}-wrong`;
    const r = await run(process.execPath, [...MAIN, "--addr", "127.0.0.1:0"], {
      timeoutMs: 40_000,
      env: { ...process.env, REDIS_URL: `redis://:${encodeURIComponent(wrong)}@127.0.0.1:${redis.port}`, COUNCIL_LOG_LEVEL: "debug" },
    });
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include(`cannot open the Redis store at 127.0.0.1:${redis.port}`);
    expect(r.stderr + r.stdout).to.not.include("Zq8");
  });

  it("the right password: it serves, and prints no password", async () => {
    const url = `redis://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${redis.port}`;
    const { service, client } = await ServiceProcess.start(url, `${unique("sec")}:`);
    try {
      const r = await review(client, { suggestion: wireSuggestion(), requestId: unique("req") });
      expect(r.error).to.equal(undefined);
      expect(service.log).to.include("council listening");
      expect(service.log).to.not.include("Zq8");
    } finally {
      client.close();
      await service.kill();
    }
  });
});
