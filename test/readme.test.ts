/**
 * Runs every command of the README's "Operating Council with grpcurl" section, in order, against a
 * fresh live server, and checks each against the output the README shows after it.
 */
import { readFileSync } from "node:fs";
import { expect } from "chai";
import { MemoryStore } from "../src/store/memory.js";
import { wireSuggestion } from "./support/fixtures.js";
import { review, startCouncil, type Running } from "./support/server.js";
import { grpcurlPath, run } from "./support/tools.js";
import { countLiveSubscriptions, waitFor } from "./support/wait.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const DOC_ADDR = "127.0.0.1:50051";

interface Step {
  command: string;
  /** The output block right after the command's block, if any. */
  shown?: string;
}

function grpcurlSection(): Step[] {
  const start = README.indexOf("## Operating Council with grpcurl");
  const end = README.indexOf("\n## ", start + 1);
  const section = README.slice(start, end === -1 ? undefined : end);
  const blocks = [...section.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], body: m[2]! }));
  const steps: Step[] = [];
  blocks.forEach((b, i) => {
    if (b.lang !== "sh") return;
    const commands = b.body.split("\n").filter((l) => l.startsWith("grpcurl "));
    const next = blocks[i + 1];
    const shown = next && next.lang === "" ? next.body.trim() : undefined;
    commands.forEach((command, j) => steps.push({ command, shown: j === commands.length - 1 ? shown : undefined }));
  });
  return steps;
}

/** Split a shell-quoted grpcurl line into argv (single quotes only, as the README writes them). */
function argv(command: string): string[] {
  const args: string[] = [];
  for (const m of command.matchAll(/'([^']*)'|(\S+)/g)) args.push(m[1] ?? m[2]!);
  return args.slice(1);
}

const normalize = (text: string) => text.replace(/"\d{4}-\d\d-\d\dT[\d:.]+Z"/g, '"<time>"');

describe("README: Operating Council with grpcurl", function () {
  this.timeout(120_000);
  let c: Running;
  let liveWatches: () => number;
  before(async () => {
    const store = new MemoryStore();
    liveWatches = countLiveSubscriptions(store);
    c = await startCouncil({ store });
  });
  after(() => c.stop());

  it("has a command for every RPC", () => {
    const text = grpcurlSection().map((s) => s.command).join("\n");
    for (const rpc of ["ReviewSuggestion", "GetDecision", "ListDecisions", "RecordOutcome", "GetSummary", "ListLessons", "WatchDecisions", "ListReviewers"]) {
      expect(text).to.include(`council.v1.CouncilService/${rpc}`);
    }
    expect(text).to.include("grpc.health.v1.Health/Check");
    expect(text).to.include(" describe ");
  });

  it("every command works as shown", async () => {
    const grpcurl = grpcurlPath();
    for (const step of grpcurlSection()) {
      const args = argv(step.command).map((a) => (a === DOC_ADDR ? c.addr : a));
      if (step.command.includes("/WatchDecisions")) {
        // grpcurl's watch is live once the store reports one more live subscription.
        const before = liveWatches();
        const watching = run(grpcurl, args, { timeoutMs: 30_000 });
        await waitFor(() => liveWatches() > before, { timeoutMs: 20_000, what: `the watch of ${step.command} to be live` });
        await review(c.client, { suggestion: wireSuggestion({ title: "exposes secrets" }) });
        const r = await watching;
        expect(r.stdout, step.command).to.include('"decision": "DECISION_TYPE_REJECT"');
        expect(r.stderr, step.command).to.include("DeadlineExceeded");
        continue;
      }
      const r = await run(grpcurl, args, { timeoutMs: 20_000 });
      const shown = step.shown;
      if (shown?.startsWith("ERROR:")) {
        expect(r.code, step.command).to.not.equal(0);
        expect(r.stderr.trim(), step.command).to.equal(shown);
        continue;
      }
      expect(r.code, `${step.command}\n${r.stderr}`).to.equal(0);
      if (!shown) continue;
      const got = normalize(r.stdout);
      if (!shown.includes("…")) {
        expect(got.trim(), step.command).to.equal(normalize(shown));
        continue;
      }
      // A shortened block: every complete line it shows must be in the real output.
      const squash = (text: string) => text.replace(/\s+/g, " ").replace(/\[ /g, "[").replace(/ \]/g, "]");
      const flat = squash(got);
      for (const line of normalize(shown).split("\n")) {
        const t = line.trim().replace(/,$/, "");
        if (t.includes("…") || /^[[\]{}]*,?$/.test(t)) continue;
        expect(flat, `${step.command}\nshows ${t}`).to.include(squash(t));
      }
    }
  });
});
