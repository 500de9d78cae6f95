/** The identity and access settings of src/config.ts (SPEC §6, §8): names, precedence, validation, the safe default. */
import { expect } from "chai";
import { ConfigError, isLoopback, loadConfig } from "../../src/config.js";

const fails = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError");
};

describe("configuration: identity and access", () => {
  it("reads every setting from its variable, and a flag wins over the variable", () => {
    const env = {
      COUNCIL_TLS_CERT: "/env/tls.crt",
      COUNCIL_TLS_KEY: "/env/tls.key",
      COUNCIL_TLS_CLIENT_CA: "/env/ca.crt",
      COUNCIL_AUTH_FILE: "/env/auth.yaml",
      COUNCIL_ALLOW_UNAUTHENTICATED: "true",
      COUNCIL_REVIEW_RATE: "5",
    };
    expect(loadConfig([], env)).to.include({
      tlsCert: "/env/tls.crt",
      tlsKey: "/env/tls.key",
      tlsClientCa: "/env/ca.crt",
      authFile: "/env/auth.yaml",
      allowUnauthenticated: true,
      reviewRate: 5,
    });
    const flags = [
      "--tls-cert", "/flag/tls.crt", "--tls-key=/flag/tls.key", "--tls-client-ca", "/flag/ca.crt",
      "--auth-file", "/flag/auth.yaml", "--allow-unauthenticated", "false", "--review-rate", "0.5",
    ];
    expect(loadConfig(flags, env)).to.include({
      tlsCert: "/flag/tls.crt",
      tlsKey: "/flag/tls.key",
      tlsClientCa: "/flag/ca.crt",
      authFile: "/flag/auth.yaml",
      allowUnauthenticated: false,
      reviewRate: 0.5,
    });
  });

  it("needs the TLS certificate and key together, and TLS under a client CA", () => {
    expect(fails(() => loadConfig([], { COUNCIL_TLS_CERT: "a.crt" }))).to.equal(
      "COUNCIL_TLS_CERT is set but COUNCIL_TLS_KEY is not: TLS needs both the certificate and its key",
    );
    expect(fails(() => loadConfig(["--tls-key", "a.key"], {}))).to.equal("--tls-key is set but COUNCIL_TLS_CERT is not: TLS needs both the certificate and its key");
    expect(fails(() => loadConfig([], { COUNCIL_TLS_CLIENT_CA: "ca.crt" }))).to.include(
      "COUNCIL_TLS_CLIENT_CA is set but COUNCIL_TLS_CERT and COUNCIL_TLS_KEY are not",
    );
    expect(fails(() => loadConfig(["--auth-file", ""], {}))).to.equal("--auth-file must not be empty");
  });

  it("refuses a review rate that is not a positive number, and an allow flag that is not true or false", () => {
    for (const bad of ["0", "-1", "abc", "1e3", "Infinity", "5/s", "2000000"]) {
      expect(fails(() => loadConfig([], { COUNCIL_REVIEW_RATE: bad })), bad).to.include("COUNCIL_REVIEW_RATE must be a positive number of reviews per second");
    }
    for (const bad of ["yes", "1", "TRUE"]) {
      expect(fails(() => loadConfig(["--allow-unauthenticated", bad], {})), bad).to.equal(`--allow-unauthenticated must be true or false, got "${bad}"`);
    }
  });

  it("refuses a non-loopback address when nobody is authenticated, unless allowed", () => {
    const message = fails(() => loadConfig(["--addr", "0.0.0.0:50051"], {}));
    expect(message).to.include("--addr 0.0.0.0:50051 is not a loopback address, and no authentication is configured");
    expect(message).to.include("COUNCIL_ALLOW_UNAUTHENTICATED=true");
    expect(fails(() => loadConfig([], { COUNCIL_ADDR: "council.internal:50051" }))).to.include("COUNCIL_ADDR council.internal:50051 is not a loopback");
    // Allowed explicitly, or authenticated by an auth file or by mTLS.
    expect(loadConfig(["--addr", "0.0.0.0:50051"], { COUNCIL_ALLOW_UNAUTHENTICATED: "true" }).addr).to.equal("0.0.0.0:50051");
    expect(loadConfig(["--addr", "0.0.0.0:50051", "--auth-file", "auth.yaml"], {}).authFile).to.equal("auth.yaml");
    const mtls = { COUNCIL_TLS_CERT: "t.crt", COUNCIL_TLS_KEY: "t.key", COUNCIL_TLS_CLIENT_CA: "ca.crt" };
    expect(loadConfig(["--addr", "[::]:50051"], mtls).tlsClientCa).to.equal("ca.crt");
    // TLS without client certificates authenticates nobody.
    expect(fails(() => loadConfig(["--addr", "[::]:50051"], { COUNCIL_TLS_CERT: "t.crt", COUNCIL_TLS_KEY: "t.key" }))).to.include("is not a loopback address");
    // Loopback needs nothing: the quick start.
    for (const addr of ["127.0.0.1:50051", "127.8.9.10:1", "[::1]:50051", "localhost:50051"]) expect(loadConfig(["--addr", addr], {}).addr).to.equal(addr);
  });

  it("knows loopback hosts", () => {
    for (const host of ["localhost", "127.0.0.1", "127.255.255.254", "[::1]"]) expect(isLoopback(host), host).to.equal(true);
    for (const host of ["0.0.0.0", "[::]", "10.0.0.1", "128.0.0.1", "127.0.0.256", "localhost.example", "[::ffff:10.0.0.1]"]) {
      expect(isLoopback(host), host).to.equal(false);
    }
  });
});
