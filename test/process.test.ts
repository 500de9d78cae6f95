/** The real entry point as a child process: start-up line, SIGTERM, bad configuration. */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { PRESETS } from "../src/domain/presets.js";
import { grpcurlPath, run } from "./support/tools.js";
import { waitFor } from "./support/wait.js";

const MAIN = ["--import", "tsx", "src/main.ts"];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/**
 * A policy's version as SPEC section 4 defines it, computed here without the service's code: the
 * first 12 hex digits of the sha256 of the policy's canonical JSON (keys sorted at every level, no
 * spaces), behind the policy's name.
 */
function expectedVersion(name: string, policy: object): string {
  const sorted = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(sorted);
    if (value === null || typeof value !== "object") return value;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sorted((value as Record<string, unknown>)[key]);
    return out;
  };
  const { name: _name, version: _version, ...document } = policy as Record<string, unknown>;
  return `${name}@${createHash("sha256").update(JSON.stringify(sorted(document))).digest("hex").slice(0, 12)}`;
}

describe("the council process", () => {
  it("logs address, store and policy version, serves, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [...MAIN, "--addr", `127.0.0.1:${port}`, "--policy", "seed"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const line = await waitFor(
        () => {
          const listening = out.split("\n").slice(0, -1).find((l) => l.includes("council listening"));
          if (listening) return JSON.parse(listening) as Record<string, unknown>;
          if (child.exitCode !== null) throw new Error(`the process exited with ${child.exitCode}:\n${out}`);
          return undefined;
        },
        { timeoutMs: 15_000, what: "the start-up line" },
      );
      expect(line).to.include({ addr: `127.0.0.1:${port}`, policyVersion: expectedVersion("seed", PRESETS.seed) });
      expect(line.store).to.match(/^in-process/);
      const health = await run(grpcurlPath(), ["-plaintext", `127.0.0.1:${port}`, "grpc.health.v1.Health/Check"]);
      expect(health.stdout).to.include("SERVING");
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).to.equal(0);
    expect(out).to.include('"msg":"stopped"');
  });

  it("refuses to start on an invalid policy file, naming the problem", async () => {
    const dir = mkdtempSync(join(tmpdir(), "council-"));
    const file = join(dir, "broken.json");
    writeFileSync(file, JSON.stringify({ reviewers: [{ role: "wizard", risk_tolerance: 0.1 }] }));
    const r = await run(process.execPath, [...MAIN, "--policy", file], { timeoutMs: 20_000 });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include(`policy file ${file}: reviewers[0].role: "wizard" is not one of`);
  });

  it("refuses to start on a bad address, naming the variable", async () => {
    const r = await run(process.execPath, MAIN, { timeoutMs: 20_000, env: { ...process.env, COUNCIL_ADDR: "localhost" } });
    expect(r.code).to.equal(2);
    expect(r.stderr).to.include("COUNCIL_ADDR must be host:port");
  });
});
