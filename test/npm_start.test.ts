/**
 * `npm start` as an operator (or a process supervisor) runs it: SIGTERM goes to npm itself, and the
 * server must stop too, not be left running without a parent.
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { expect } from "chai";
import { freePort } from "./support/redis.js";
import { waitFor, within } from "./support/wait.js";

/** Every process below `root`, from /proc. */
function descendants(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command name (which may hold spaces): state, ppid, …
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    for (const child of parents.get(pid) ?? []) {
      out.push(child);
      visit(child);
    }
  };
  visit(root);
  return out;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect({ port, host: "127.0.0.1" });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

describe("npm start", function () {
  // `prestart` builds the project with tsc first.
  this.timeout(120_000);

  it("stops the server when npm itself gets SIGTERM", async () => {
    const port = await freePort();
    const npm = spawn("npm", ["start", "--silent", "--", "--addr", `127.0.0.1:${port}`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    npm.stdout.on("data", (d) => (out += d));
    npm.stderr.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => npm.on("exit", (code) => resolve(code)));
    let below: number[] = [];
    try {
      await waitFor(
        () => {
          if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}:\n${out}`);
          return out.includes("council listening");
        },
        { timeoutMs: 100_000, what: "the server's start-up line" },
      );
      below = descendants(npm.pid!);
      npm.kill("SIGTERM");
      await within(exited, { timeoutMs: 15_000, what: "npm to exit" });
      await waitFor(async () => !(await accepts(port)), { timeoutMs: 15_000, what: "the server to stop listening" });
      await waitFor(() => below.every((pid) => !alive(pid)), { timeoutMs: 15_000, what: "every process npm started to exit" });
      expect(out).to.include('"msg":"stopped"');
    } finally {
      // Whatever the outcome, nothing this test started may outlive it.
      if (npm.exitCode === null) npm.kill("SIGKILL");
      for (const pid of below) if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  });
});
