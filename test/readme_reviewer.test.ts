/**
 * Runs the README's "Serving a reviewer by hand" (in "Operating Council with grpcurl") as an
 * operator does, and checks each output against the block the README shows: a server with the
 * policy the section shows; grpcurl on ServeReviews with its stdin a pipe, typed the section's
 * `json` blocks (the hello, then the vote, its task id replaced by the real one); ListReviewers
 * counting the reviewer; the review, its task printed by the reviewer, the vote cast by the
 * reviewer's principal and the veto rejecting. Decision and task ids and times differ from run to
 * run and are set aside.
 *
 * Block conventions of the section: `yaml` the policy, `sh` the commands (in order: ServeReviews,
 * ListReviewers, ReviewSuggestion), `json` what is typed on the stream's stdin, and a block with no
 * language the output of what comes before it (lines with `…` are left out, as in
 * test/readme.test.ts).
 */
import { spawn } from "node:child_process";
import { expect } from "chai";
import { parse as parseYaml } from "yaml";
import { parsePolicy } from "../src/domain/policy.js";
import { PRESETS } from "../src/domain/presets.js";
import { call, startCouncil, type Running } from "./support/server.js";
import { blocksOf, section } from "./support/readme.js";
import { grpcurlPath, run } from "./support/tools.js";
import { waitFor, within } from "./support/wait.js";

const DOC_ADDR = "127.0.0.1:50051";


/** A grpcurl line split as the shell would (single-quoted words as they are), the guide's address replaced. */
function argv(command: string, addr: string): string[] {
  const args = [...command.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
  expect(args[0]).to.equal("grpcurl");
  return args.slice(1).map((a) => (a === DOC_ADDR ? addr : a));
}

/** What differs from run to run: times, decision ids, task ids. */
const normalize = (text: string) =>
  text
    .replace(/"\d{4}-\d\d-\d\dT[\d:.]+Z"/g, '"<time>"')
    .replace(/dec-[0-9a-f]{24}/g, "<decision>")
    .replace(/task-[0-9a-f-]{36}/g, "<task>");

/** Every complete line of `shown` (those with `…` left out) is in `got`, both normalized and squashed. */
function expectShown(got: string, shown: string, what: string): void {
  const squash = (text: string) => text.replace(/\s+/g, " ").replace(/\[ /g, "[").replace(/ \]/g, "]");
  const flat = squash(normalize(got));
  for (const line of normalize(shown).split("\n")) {
    const t = line.trim().replace(/,$/, "");
    if (t.includes("…") || /^[[\]{}]*,?$/.test(t)) continue;
    expect(flat, `${what} shows ${t}\n--- got ---\n${got}`).to.include(squash(t));
  }
}

describe("README: serving a reviewer by hand with grpcurl", function () {
  this.timeout(60_000);
  let c: Running | undefined;
  after(async () => {
    await c?.stop();
  });

  it("every step works as shown", async () => {
    const blocks = blocksOf(section("### Serving a reviewer by hand"));
    const policy = blocks.find((b) => b.lang === "yaml");
    expect(policy, "a yaml block: the policy").to.exist;
    c = await startCouncil({ policy: parsePolicy("reviewers", parseYaml(policy!.body), PRESETS.default) });
    const commands = blocks.filter((b) => b.lang === "sh").map((b) => b.body.trim());
    expect(commands, "ServeReviews, ListReviewers, ReviewSuggestion").to.have.length(3);
    const [serveCommand, listCommand, reviewCommand] = commands as [string, string, string];
    expect(serveCommand).to.include("-d @").and.include("council.v1.CouncilService/ServeReviews");
    const typed = blocks.filter((b) => b.lang === "json").map((b) => b.body.trim());
    expect(typed, "the hello, then the vote").to.have.length(2);
    const outputs = blocks.filter((b) => b.lang === "").map((b) => b.body.trim());
    expect(outputs, "ListReviewers', the task's and the review's outputs").to.have.length(3);
    const [listShown, taskShown, reviewShown] = outputs as [string, string, string];
    const connected = async () =>
      (await call(c!.client, c!.client.listReviewers, {})).reviewers.find((r) => r.role === 1 /* REVIEWER_ROLE_SAFETY */)!.connected;

    // The reviewer: grpcurl reading its messages from a pipe, as from a terminal.
    const reviewer = spawn(grpcurlPath(), argv(serveCommand, c.addr), { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    reviewer.stdout.on("data", (d: Buffer) => (out += d.toString()));
    reviewer.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => reviewer.on("close", (code) => resolve(code)));
    try {
      reviewer.stdin.write(`${typed[0]}\n`);
      await waitFor(async () => (await connected()) === 1, { what: "the grpcurl reviewer to be counted", timeoutMs: 20_000 });

      const list = await run(grpcurlPath(), argv(listCommand, c.addr), { timeoutMs: 20_000 });
      expect(list.code, list.stderr).to.equal(0);
      expectShown(list.stdout, listShown, listCommand);

      const review = run(grpcurlPath(), argv(reviewCommand, c.addr), { timeoutMs: 40_000 });
      const task = await waitFor(
        () => {
          try {
            return JSON.parse(out) as { task: { taskId: string } };
          } catch {
            if (reviewer.exitCode !== null) throw new Error(`grpcurl ServeReviews exited (${reviewer.exitCode}): ${err}`);
            return undefined;
          }
        },
        { what: `the task on grpcurl's stdout (so far: ${out})`, timeoutMs: 20_000 },
      );
      expect(normalize(out).trim(), "the task, as shown").to.equal(normalize(taskShown));

      const shownTaskId = /"taskId": "([^"]+)"/.exec(taskShown)![1]!;
      expect(typed[1], "the vote names the task shown").to.include(shownTaskId);
      reviewer.stdin.write(`${typed[1]!.replace(shownTaskId, task.task.taskId)}\n`);
      const r = await review;
      expect(r.code, r.stderr).to.equal(0);
      expectShown(r.stdout, reviewShown, reviewCommand);

      // Ctrl-D: the stream ends OK, and nobody is counted any more.
      reviewer.stdin.end();
      expect(await within(exited, { what: "grpcurl ServeReviews to exit", timeoutMs: 20_000 }), err).to.equal(0);
      await waitFor(async () => (await connected()) === 0, { what: "the reviewer to be gone", timeoutMs: 20_000 });
    } finally {
      if (reviewer.exitCode === null) reviewer.kill("SIGKILL");
    }
  });
});
