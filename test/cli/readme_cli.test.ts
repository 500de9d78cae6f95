/**
 * Runs every command of the README's "Approving with the CLI" walkthrough, in order, as a
 * subprocess against a live server with the auth file the walkthrough describes (`deploy-agent`,
 * an agent; `alice`, an approver; tokens made here), and compares each command's output with the
 * block the README shows after it. What cannot be the same from run to run is set aside: decision
 * ids (the README's ids stand for the ones this run makes, in order), timestamps, relative times
 * and the policy digest, and the runs of spaces that pad columns around them.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { newToken, tokenHash } from "../../src/server/auth/tokens.js";
import { tempDir } from "../auth/helpers.js";
import { blocksOf, section } from "../support/readme.js";
import { startCouncil, type Running } from "../support/server.js";
import { buildCli, council, report } from "./helpers.js";

const DOC_ADDR = "127.0.0.1:50051";


interface Step {
  /** `export NAME=value` lines run before the command (they last for the rest of the walkthrough). */
  exports: [string, string][];
  /** `NAME=value` assignments in front of the command (for that command only). */
  assignments: [string, string][];
  args: string[];
  exit: number;
  line: string;
  /** The output block right after the command's block (for its last command), if any. */
  shown?: string;
}

/**
 * Splits a shell line as the README writes it: single quotes as they are, double quotes with
 * `$NAME` replaced from `vars` (an unknown name fails the test), plain words.
 */
function words(text: string, vars: Record<string, string>): string[] {
  const expand = (t: string) =>
    t.replace(/\$([A-Z_]+)/g, (_, name: string) => {
      if (!(name in vars)) throw new Error(`the README uses $${name}, which the test does not set`);
      return vars[name]!;
    });
  return [...text.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? (m[2] !== undefined ? expand(m[2]) : expand(m[3]!)));
}

function walkthrough(vars: Record<string, string>): Step[] {
  const blocks = blocksOf(section("## Approving with the CLI"));
  const steps: Step[] = [];
  blocks.forEach((b, i) => {
    if (b.lang !== "sh") return;
    const exports: [string, string][] = [];
    const mine: Step[] = [];
    for (const raw of b.body.split("\n")) {
      if (!raw.trim()) continue;
      const exit = /\s#\s*exit (\d+)\s*$/.exec(raw);
      const line = raw.replace(/\s+#.*$/, "").trim();
      const exported = /^export ([A-Z_]+)=(.*)$/.exec(line);
      if (exported) {
        exports.push([exported[1]!, words(exported[2]!, vars)[0] ?? ""]);
        continue;
      }
      const assignments: [string, string][] = [];
      let rest = line;
      for (let m = /^([A-Z_]+)=(\S*)\s+/.exec(rest); m; m = /^([A-Z_]+)=(\S*)\s+/.exec(rest)) {
        assignments.push([m[1]!, words(m[2]!, vars)[0] ?? ""]);
        rest = rest.slice(m[0].length);
      }
      expect(rest, `a command of the walkthrough: ${raw}`).to.match(/^npx council /);
      mine.push({ exports: mine.length ? [] : exports.splice(0), assignments, args: words(rest, vars).slice(2), exit: Number(exit?.[1] ?? 0), line });
    }
    const next = blocks[i + 1];
    if (mine.length && next && next.lang === "") mine.at(-1)!.shown = next.body.trimEnd();
    steps.push(...mine);
  });
  return steps;
}

const ID = /dec-[0-9a-f]{24}/g;

/** What may differ from run to run, set aside; then the spaces that pad columns. */
function normalize(text: string): string {
  return text
    .replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, "<time>")
    .replace(/\b(just now|in \d+ (?:s|min|h|d)|\d+ (?:s|min|h|d) ago)\b/g, "<when>")
    .replace(/@[0-9a-f]{12}\b/g, "@<digest>")
    .split("\n")
    .map((l) => l.replace(/ {2,}/g, "  ").trimEnd())
    .join("\n")
    .trim();
}

describe("README: Approving with the CLI", function () {
  this.timeout(120_000);
  let c: Running;
  let remove: () => Promise<void>;
  const tokens = { AGENT_TOKEN: newToken(), ALICE_TOKEN: newToken() };

  before(async () => {
    await buildCli();
    let dir: string;
    ({ dir, remove } = await tempDir());
    const authFile = join(dir, "auth.json");
    const principals = [
      { name: "deploy-agent", roles: ["agent"], tokens: [tokenHash(tokens.AGENT_TOKEN)] },
      { name: "alice", roles: ["approver"], tokens: [tokenHash(tokens.ALICE_TOKEN)] },
    ];
    await writeFile(authFile, JSON.stringify({ principals }));
    c = await startCouncil({ authFile });
  });
  after(async () => {
    await c?.stop();
    await remove?.();
  });

  it("walks through review → pending → get → approve and reject → await → outcome", () => {
    const verbs = walkthrough(tokens).map((s) => s.args[0]);
    for (const verb of ["review", "pending", "get", "approve", "reject", "await", "outcome", "lessons"]) expect(verbs).to.include(verb);
  });

  it("every command prints what the README shows", async () => {
    const env: NodeJS.ProcessEnv = {};
    /** The README's decision ids, each to the id this run made in its place. */
    const ids = new Map<string, string>();
    for (const step of walkthrough(tokens)) {
      for (const [name, value] of step.exports) env[name] = value === DOC_ADDR ? c.addr : value;
      const args = step.args.map((a) => a.replace(ID, (id) => ids.get(id) ?? id));
      const r = await council(args, { env: { ...env, ...Object.fromEntries(step.assignments) } });
      expect(r.code, `${step.line}\n${report(r)}`).to.equal(step.exit);
      if (step.shown === undefined) continue;
      const got = step.exit === 0 || r.stdout ? r.stdout : r.stderr;
      // The ids this output shows stand where the README shows its own, in the same order.
      const shownIds = [...new Set(step.shown.match(ID) ?? [])];
      const gotIds = [...new Set(got.match(ID) ?? [])];
      expect(gotIds, `${step.line}: the decisions it shows`).to.have.length(shownIds.length);
      shownIds.forEach((id, i) => {
        const known = ids.get(id);
        if (known) expect(gotIds[i], `${step.line}: ${id}`).to.equal(known);
        else ids.set(id, gotIds[i]!);
      });
      const back = new Map([...ids].map(([doc, real]) => [real, doc]));
      expect(normalize(got.replace(ID, (id) => back.get(id) ?? id)), step.line).to.equal(normalize(step.shown));
    }
  });
});
