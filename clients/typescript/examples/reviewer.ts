/**
 * The smallest reviewer: it serves the safety role (external in the server's policy, SPEC section
 * 11) and asks for people on any change that touches more than 200 lines, approving the rest.
 * A handler and one call: serveReviews reconnects by itself and stops on Ctrl-C.
 *
 * Run: COUNCIL_ADDR=127.0.0.1:50051 COUNCIL_TOKEN=<a reviewer's token> npx tsx examples/reviewer.ts
 */
import { serveReviews } from "../src/index.js";

const controller = new AbortController();
process.once("SIGINT", () => controller.abort());

const reviewer = serveReviews({
  address: process.env.COUNCIL_ADDR ?? "127.0.0.1:50051",
  token: process.env.COUNCIL_TOKEN,
  roles: ["safety"],
  signal: controller.signal,
  handler: (task) => {
    const changed = task.suggestion.diff.split("\n").filter((l) => /^[+-](?![+-]{2} )/.test(l)).length;
    return changed > 200
      ? { vote: "needs_more_info", confidence: 0.6, reasoning: `${changed} changed lines: a person should read this one` }
      : { vote: "approve", confidence: 0.5, reasoning: `${changed} changed lines` };
  },
  onConnected: () => console.log("serving safety"),
});
await reviewer.done; // rejects if the server refuses (a token without the role reviewer, a role that is not external)
