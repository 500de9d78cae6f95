import { expect } from "chai";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Authenticator } from "../../src/server/auth/authenticator.js";
import { run } from "../support/tools.js";
import { captureLog, tempDir } from "./helpers.js";

const tool = ["--import", "tsx", "src/tools/make_token.ts"];

describe("make_token", () => {
  it("prints a new token and the hash that lets it in", async () => {
    const r = await run(process.execPath, tool);
    expect(r.code, r.stderr).to.equal(0);
    const m = /^token: (council_[A-Za-z0-9_-]{43})\nhash:  (sha256:[0-9a-f]{64})\n$/.exec(r.stdout);
    expect(m, r.stdout).to.not.equal(null);
    const [, token, hash] = m!;

    const { dir, remove } = await tempDir();
    const file = join(dir, "auth.yaml");
    await writeFile(file, `principals:\n  - name: deploy-agent\n    roles: [agent]\n    tokens: ["${hash}"]\n`);
    const a = await Authenticator.open({ authFile: file, log: captureLog().log, mtls: false });
    try {
      expect((await a.authenticate({ authorization: `Bearer ${token}` })).name).to.equal("deploy-agent");
    } finally {
      a.close();
      await remove();
    }
  });

  it("makes a different token each time", async () => {
    const [a, b] = await Promise.all([run(process.execPath, tool), run(process.execPath, tool)]);
    expect(a.stdout).to.not.equal(b.stdout);
  });

  it("hashes a token read from stdin with --hash, as sha256sum would", async () => {
    const r = await run(process.execPath, [...tool, "--hash"], { input: "abc\n" });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal("sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n");
  });

  it("exits 2 on a usage error", async () => {
    const r = await run(process.execPath, [...tool, "--bogus"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain("usage: make_token [--hash]");
  });
});
