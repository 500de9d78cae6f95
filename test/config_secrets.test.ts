/**
 * Configuration that cannot leak: REDIS_URL carries a password, so no error about it quotes any
 * part of it. A URL that can be read two ways (an unencoded `@` in the password) is refused,
 * naming only the variable or flag, never the URL, a host or the password — checked on loadConfig
 * and on the real process's stderr and stdout.
 */
import { expect } from "chai";
import { ConfigError, loadConfig } from "../src/config.js";
import { run } from "./support/tools.js";

const MAIN = ["--import", "tsx", "src/main.ts"];
/** Pieces of the URLs below that must never be printed. */
const SECRETS = ["s3c", "ret@", "Zq8", "h0st", "127.0.0.1", "6379", "%zz", "pa/ss"];

const refusal = (argv: string[], env: Record<string, string>) => {
  try {
    loadConfig(argv, env);
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
};

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text, `printed ${JSON.stringify(s)}`).to.not.include(s);
}

describe("REDIS_URL never leaks", () => {
  it("refuses an unencoded @ in the password as ambiguous, naming only the variable or the flag", () => {
    const url = "redis://:s3c@ret@127.0.0.1:6379";
    const byEnv = refusal([], { REDIS_URL: url });
    expect(byEnv).to.equal("REDIS_URL: ambiguous, it has more than one @ (percent-encode each @ in the user name or password as %40)");
    expectNoSecret(byEnv);
    const byFlag = refusal(["--redis-url", url], {});
    expect(byFlag).to.match(/^--redis-url: ambiguous/);
    expectNoSecret(byFlag);
    // Encoded, the same password is fine.
    expect(loadConfig([], { REDIS_URL: "redis://:s3c%40ret@127.0.0.1:6379" }).redisUrl).to.equal("redis://:s3c%40ret@127.0.0.1:6379");
  });

  for (const url of [
    "redis://:Zq8@h0st.example:99999",
    "redis://:Zq8@h0st$.example:1",
    "redis://:Zq8%zz@h0st.example:1",
    "redis://:pa/ss@h0st.example:1",
    "redis://:Zq8@h0st.example,h0st2:1",
    "redis+cluster://:Zq8@h0st.example:1/2",
    "http://:Zq8@h0st.example:1",
  ]) {
    it(`refuses ${url.replace(/:\/\/.*/, "://…")} (bad port, host, escape, shape…) without quoting it`, () => {
      const message = refusal([], { REDIS_URL: url });
      expect(message).to.match(/^REDIS_URL/);
      expectNoSecret(message);
    });
  }

  it("the process refuses to start on an ambiguous REDIS_URL, and prints neither the URL, its host nor its password", async () => {
    const r = await run(process.execPath, MAIN, {
      timeoutMs: 20_000,
      env: { ...process.env, REDIS_URL: "redis://:s3c@ret@127.0.0.1:6379", COUNCIL_LOG_LEVEL: "debug" },
    });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include("REDIS_URL: ambiguous");
    expectNoSecret(r.stderr + r.stdout);
  });
});
