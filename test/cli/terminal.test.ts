/**
 * Terminal or pipe: colours only on a terminal (a real pseudo-terminal made by util-linux
 * `script -qc`), never with NO_COLOR, and on a pipe only with FORCE_COLOR; never in `-o json`.
 * Tables fit 100 columns, or a narrower terminal (`stty cols 60` inside the pseudo-terminal),
 * long titles cut with `…`.
 */
import { expect } from "chai";
import { startCouncil, type Running } from "../support/server.js";
import { run } from "../support/tools.js";
import { BIN, buildCli, cleanEnv, council, expectExit, expectFits, report } from "./helpers.js";

const ESC = "\u001b[";
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs `council …args` on a pseudo-terminal (`before` runs first in its shell, e.g. `stty cols 60`). */
async function onTerminal(args: string[], env: NodeJS.ProcessEnv = {}, before = "") {
  const command = `${before}${quote(process.execPath)} ${[BIN, ...args].map(quote).join(" ")}`;
  const r = await run("script", ["-qec", command, "/dev/null"], { env: cleanEnv({ TERM: "xterm", ...env }), timeoutMs: 60_000, input: "" });
  return { ...r, stdout: r.stdout.replace(/\r\n/g, "\n") };
}

describe("council CLI: terminal or pipe", function () {
  this.timeout(120_000);
  let c: Running;
  let addr: string[];
  const longTitle = `Rewrite the payment retry helper ${"with a very long explanation ".repeat(6)}end`;

  before(async () => {
    await buildCli();
    c = await startCouncil({});
    addr = ["--addr", c.addr];
    const r = await council(["review", "--title", longTitle, "--risk", "medium", "--impact", "low", ...addr]);
    expectExit(r, 4);
  });
  after(async () => c?.stop());

  it("a pipe gets no colours; a terminal gets them", async () => {
    const piped = await council(["pending", ...addr]);
    expectExit(piped, 0);
    expect(piped.stdout).to.not.include(ESC);

    const tty = await onTerminal(["pending", ...addr]);
    expect(tty.code, report(tty)).to.equal(0);
    expect(tty.stdout).to.include(`${ESC}1mID${ESC}22m`); // bold headers
    expect(tty.stdout).to.include(`${ESC}36mHUMAN_APPROVE${ESC}39m`);
    expectFits(tty.stdout);
  });

  it("NO_COLOR turns colours off on a terminal; FORCE_COLOR turns them on for a pipe; -o json never has them", async () => {
    const noColor = await onTerminal(["pending", ...addr], { NO_COLOR: "1" });
    expect(noColor.code, report(noColor)).to.equal(0);
    expect(noColor.stdout).to.include("HUMAN_APPROVE");
    expect(noColor.stdout).to.not.include(ESC);

    const forced = await council(["pending", ...addr], { env: { FORCE_COLOR: "1" } });
    expect(forced.stdout).to.include(`${ESC}36mHUMAN_APPROVE`);
    const both = await council(["pending", ...addr], { env: { FORCE_COLOR: "1", NO_COLOR: "1" } });
    expect(both.stdout).to.not.include(ESC);

    const json = await onTerminal(["pending", "-o", "json", ...addr]);
    expect(json.stdout).to.not.include(ESC);
    expect(JSON.parse(json.stdout.trim().split("\n")[0]!)).to.include({ status: "DECISION_STATUS_PENDING" });
  });

  it("tables fit 100 columns on a pipe and a narrower terminal's width, cutting long text with …", async () => {
    for (const command of [["pending"], ["list"], ["reviewers"]]) {
      const piped = await council([...command, ...addr]);
      expectFits(piped.stdout, 100);
    }
    const piped = await council(["pending", ...addr]);
    const row = piped.lines.find((l) => l.includes("Rewrite the payment"))!;
    expect(row).to.have.length(100);
    expect(row.endsWith("…")).to.equal(true);

    const narrow = await onTerminal(["list", ...addr], { NO_COLOR: "1" }, "stty cols 60; ");
    expect(narrow.code, report(narrow)).to.equal(0);
    expectFits(narrow.stdout, 60);
    expect(narrow.stdout).to.match(/^dec-[0-9a-f]{24} /m);
    expect(narrow.stdout).to.include("…");

    const id = (await council(["pending", "-o", "json", ...addr])).json()[0]!.id as string;
    const detail = await onTerminal(["get", id, ...addr], { NO_COLOR: "1" }, "stty cols 72; ");
    expectFits(detail.stdout, 72);
    expect(detail.stdout.replace(/\s+/g, " "), "the full title, wrapped").to.include(longTitle);
  });
});
