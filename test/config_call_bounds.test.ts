/** The settings that bound what calls may hold: read, checked, and refused with the name of the setting. */
import { expect } from "chai";
import { ConfigError, loadConfig } from "../src/config.js";

const fails = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("configuration of the call bounds", () => {
  it("reads each from its variable or flag", () => {
    const config = loadConfig(["--stream-write-timeout-ms", "5000", "--max-connections=20"], {
      COUNCIL_CALL_MEMORY_BYTES: String(64 * 1024 * 1024),
      COUNCIL_REQUEST_RECEIVE_TIMEOUT_MS: "2500",
      COUNCIL_MAX_CONNECTIONS: "10",
    });
    expect(config).to.deep.include({
      callMemoryBytes: 64 * 1024 * 1024,
      requestReceiveTimeoutMs: 2500,
      streamWriteTimeoutMs: 5000,
      maxConnections: 20,
    });
  });

  it("refuses values that would lift or break a bound, naming the setting", () => {
    const cases: [Record<string, string>, string][] = [
      [{ COUNCIL_CALL_MEMORY_BYTES: "1048576" }, "COUNCIL_CALL_MEMORY_BYTES must be a whole number from 16777216 to 68719476736"],
      [{ COUNCIL_CALL_MEMORY_BYTES: "1e9" }, "COUNCIL_CALL_MEMORY_BYTES must be a whole number"],
      [{ COUNCIL_MAX_CONNECTIONS: "0" }, "COUNCIL_MAX_CONNECTIONS must be a whole number from 1 to 1000000"],
      [{ COUNCIL_REQUEST_RECEIVE_TIMEOUT_MS: "50" }, "COUNCIL_REQUEST_RECEIVE_TIMEOUT_MS must be a whole number from 100 to 600000"],
      [{ COUNCIL_STREAM_WRITE_TIMEOUT_MS: "-1" }, "COUNCIL_STREAM_WRITE_TIMEOUT_MS must be a whole number from 100 to 600000"],
      [{ COUNCIL_STREAM_WRITE_TIMEOUT_MS: "forever" }, "COUNCIL_STREAM_WRITE_TIMEOUT_MS must be a whole number"],
    ];
    for (const [env, message] of cases) expect(fails(() => loadConfig([], env)), JSON.stringify(env)).to.include(message);
  });
});
