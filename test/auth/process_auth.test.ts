/**
 * Identity and access in the real entry point (a child process): the safe default refuses a
 * non-loopback address with no authentication (exit 2, saying so) unless
 * COUNCIL_ALLOW_UNAUTHENTICATED=true; bad TLS and auth files stop start-up with exit 2 naming the
 * problem; and a server configured with TLS and an auth file serves grpcurl with `-cacert` and a
 * bearer token.
 */
import { spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { freePort } from "../support/redis.js";
import { grpcurlPath, run } from "../support/tools.js";
import { waitFor } from "../support/wait.js";
import { authFileIn, makePki, writeAuthFile, type Pki } from "./grpc_helpers.js";
import { tempDir } from "./helpers.js";

const MAIN = ["--import", "tsx", "src/main.ts"];

/** The environment of a child: this one without any Council variable a developer may have set. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("COUNCIL_") && k !== "REDIS_URL"));
  return { ...base, ...extra };
}

/** Starts the server, waits for its start-up line, runs `body`, then SIGTERM; expects exit 0. */
async function serving(args: string[], extra: Record<string, string>, body: (out: () => string) => Promise<void>): Promise<void> {
  const child = spawn(process.execPath, [...MAIN, ...args], { stdio: ["ignore", "pipe", "pipe"], env: env(extra) });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    await waitFor(
      () => {
        if (out.includes("council listening")) return true;
        if (child.exitCode !== null) throw new Error(`the process exited with ${child.exitCode}:\n${out}\n${err}`);
        return false;
      },
      { timeoutMs: 20_000, what: "the start-up line" },
    );
    await body(() => out);
  } finally {
    child.kill("SIGTERM");
  }
  expect(await exited).to.equal(0);
}

describe("the council process: identity and access", function () {
  this.timeout(180_000);
  let dir: string;
  let remove: () => Promise<void>;
  let pki: Pki;
  let grpcurl: string;

  before(async () => {
    grpcurl = grpcurlPath();
    ({ dir, remove } = await tempDir());
    pki = await makePki(dir);
  });
  after(() => remove());

  it("refuses a non-loopback address with no authentication configured, saying so (exit 2)", async () => {
    const port = await freePort();
    const r = await run(process.execPath, [...MAIN, "--addr", `0.0.0.0:${port}`], { timeoutMs: 30_000, env: env({}) });
    expect(r.code, r.stderr).to.equal(2);
    expect(r.stderr).to.include(`--addr 0.0.0.0:${port} is not a loopback address, and no authentication is configured`);
    expect(r.stderr).to.include("COUNCIL_ALLOW_UNAUTHENTICATED=true");
  });

  it("serves a non-loopback address anonymously with COUNCIL_ALLOW_UNAUTHENTICATED=true, and warns", async () => {
    const port = await freePort();
    await serving([], { COUNCIL_ADDR: `0.0.0.0:${port}`, COUNCIL_ALLOW_UNAUTHENTICATED: "true" }, async (out) => {
      const health = await run(grpcurlPath(), ["-plaintext", `127.0.0.1:${port}`, "grpc.health.v1.Health/Check"]);
      expect(health.stdout).to.include("SERVING");
      const summary = await run(grpcurlPath(), ["-plaintext", `127.0.0.1:${port}`, "council.v1.CouncilService/GetSummary"]);
      expect(summary.code, summary.stderr).to.equal(0);
      const warning = out().split("\n").find((l) => l.includes("no authentication configured"));
      expect(JSON.parse(warning!)).to.include({ level: 40, auth: "anonymous", tls: "off" });
    });
  });

  it("stops at start-up on an invalid auth file, a TLS key that is not there, or a half TLS configuration (exit 2, naming it)", async () => {
    const bad = join(dir, "bad-auth.yaml");
    await writeFile(bad, "principals:\n  - name: deploy-agent\n    roles: [wizard]\n");
    const cases: [Record<string, string>, string][] = [
      [{ COUNCIL_AUTH_FILE: bad }, `auth file ${bad}: principals[0].roles[0]: "wizard" is not one of agent, operator, approver, reviewer`],
      [{ COUNCIL_AUTH_FILE: join(dir, "missing.yaml") }, "cannot be read: ENOENT"],
      [{ COUNCIL_TLS_CERT: pki.server.certFile, COUNCIL_TLS_KEY: join(dir, "missing.key") }, `COUNCIL_TLS_KEY ${join(dir, "missing.key")} cannot be read: ENOENT`],
      [{ COUNCIL_TLS_CERT: pki.server.certFile }, "COUNCIL_TLS_CERT is set but COUNCIL_TLS_KEY is not"],
      [{ COUNCIL_TLS_CLIENT_CA: pki.ca.certFile }, "COUNCIL_TLS_CLIENT_CA is set but COUNCIL_TLS_CERT and COUNCIL_TLS_KEY are not"],
      [{ COUNCIL_REVIEW_RATE: "0" }, "COUNCIL_REVIEW_RATE must be a positive number"],
    ];
    // One at a time: six processes starting at once would crowd a small machine.
    for (const [extra, message] of cases) {
      const r = await run(process.execPath, MAIN, { timeoutMs: 60_000, env: env(extra) });
      expect(r.code, `${JSON.stringify(extra)}: ${r.stderr}`).to.equal(2);
      expect(r.stderr, JSON.stringify(extra)).to.include(message);
    }
  });

  it("serves TLS with an auth file on a non-loopback address: grpcurl with -cacert and a bearer token", async () => {
    const port = await freePort();
    await writeAuthFile(authFileIn(dir), [{ name: "deploy-agent", roles: ["agent"], tokens: ["council_process-token"] }]);
    const vars = { COUNCIL_TLS_CERT: pki.server.certFile, COUNCIL_TLS_KEY: pki.server.keyFile, COUNCIL_AUTH_FILE: authFileIn(dir) };
    await serving(["--addr", `0.0.0.0:${port}`, "--review-rate", "5"], vars, async (out) => {
      const g = (...args: string[]) => run(grpcurl, ["-cacert", pki.ca.certFile, ...args], { timeoutMs: 20_000 });
      const ok = await g("-H", "authorization: Bearer council_process-token", `127.0.0.1:${port}`, "council.v1.CouncilService/GetSummary");
      expect(ok.code, ok.stderr).to.equal(0);
      const refused = await g(`127.0.0.1:${port}`, "council.v1.CouncilService/GetSummary");
      expect(refused.stderr).to.include("Code: Unauthenticated");
      const access = out().split("\n").find((l) => l.includes("callers authenticated by"));
      expect(JSON.parse(access!)).to.include({ auth: "file", tls: "tls", reviewRate: 5 });
      await waitFor(() => out().includes('"principal":"deploy-agent"'), { what: "the call's log line naming its principal" });
    });
  });
});
