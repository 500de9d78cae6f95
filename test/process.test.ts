/** The real entry point as a child process: start-up line, SIGTERM, bad configuration. */
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { grpcurlPath, run } from "./support/tools.js";

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
      const deadline = Date.now() + 15_000;
      while (!out.includes("council listening") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const line = JSON.parse(out.split("\n").find((l) => l.includes("council listening"))!);
      expect(line).to.include({ addr: `127.0.0.1:${port}`, policyVersion: line.policyVersion });
      expect(line.policyVersion).to.match(/^seed@[0-9a-f]{12}$/);
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
