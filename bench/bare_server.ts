/**
 * The bench's ceiling: a bare grpc-js server with the project's own generated service that answers
 * from canned messages, with no logic per call and no store. What Council costs is measured against
 * this: the same service, the same messages, the same grpc-js, nothing else.
 *
 * The canned messages are made once at start-up by the real domain (Council on an in-process store
 * with the default policy), so they are exactly the shape and size of what Council sends:
 *
 *   ReviewSuggestion  5 vote events, then the decision event, for the throughput bench's suggestion
 *                     (bench/lib/suggestion.ts)
 *   ListDecisions     a page of 50 decisions of the history bench's mix (bench/lib/decisions.ts),
 *                     with a next-page token
 *   GetSummary        the summary of the stored decisions
 *
 * It also answers grpc.health.v1 Check (SERVING), which the bench polls to know it is up.
 *
 *   BARE_ADDR=127.0.0.1:50600 node --import tsx bench/bare_server.ts
 */
import { randomUUID } from "node:crypto";
import { Server, ServerCredentials, status, type ServerWritableStream, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { CouncilServiceService, type ReviewSuggestionResponse } from "../src/gen/council/v1/council_service.js";
import { HealthService, HealthCheckResponse_ServingStatus } from "../src/gen/grpc/health/v1/health.js";
import { Council } from "../src/app/council.js";
import { resolvePolicy } from "../src/config.js";
import { ANONYMOUS } from "../src/domain/principal.js";
import { MemoryStore } from "../src/store/memory.js";
import { decisionToWire, summaryToWire, voteToWire } from "../src/server/convert.js";
import { benchDecision } from "./lib/decisions.js";
import { benchSuggestion } from "./lib/suggestion.js";

const PAGE = 50;

async function cannedMessages() {
  const store = new MemoryStore({ sweepIntervalMs: 0 });
  const council = new Council(store, resolvePolicy("default"));
  // The review: what Council answers for the suggestion the throughput bench sends.
  const events: ReviewSuggestionResponse[] = [];
  const suggestion = benchSuggestion();
  const { decision } = await council.review({ suggestion, requestId: randomUUID(), dryRun: false, principal: ANONYMOUS }, async (vote, decisionId) => {
    events.push({ event: { $case: "vote", value: voteToWire(vote) }, decisionId, suggestionId: suggestion.id });
  });
  events.push({ event: { $case: "decision", value: decisionToWire(decision) }, decisionId: decision.id, suggestionId: suggestion.id });
  if (events.length !== 6) throw new Error(`bare server: the default policy cast ${events.length - 1} votes, not 5`);
  // The listing and the summary: the history bench's mix of decisions (bench/lib/decisions.ts),
  // a page of them stored after the review's decision: one more than a page is stored, so that the
  // page carries a next-page token as Council's would.
  for (let n = 0; n < PAGE; n++) {
    const { decision: d, fingerprint } = benchDecision(n);
    await store.saveReview(d, fingerprint);
  }
  const page = await council.listDecisions({ suggestionId: "" }, PAGE, "");
  if (page.items.length !== PAGE || !page.nextPageToken) throw new Error("bare server: the canned page is not a full page with a next token");
  const list = { decisions: page.items.map(decisionToWire), nextPageToken: page.nextPageToken };
  const summary = summaryToWire(await council.summary());
  await store.close();
  return { events, list, summary };
}

const { events, list, summary } = await cannedMessages();

const server = new Server();
server.addService(CouncilServiceService, {
  reviewSuggestion(call: ServerWritableStream<unknown, ReviewSuggestionResponse>) {
    for (const e of events) call.write(e);
    call.end();
  },
  listDecisions(_call: unknown, callback: (err: null, res: typeof list) => void) {
    callback(null, list);
  },
  getSummary(_call: unknown, callback: (err: null, res: typeof summary) => void) {
    callback(null, summary);
  },
  // Everything else is not part of the baseline.
  ...Object.fromEntries(
    Object.keys(CouncilServiceService)
      .filter((m) => !["reviewSuggestion", "listDecisions", "getSummary"].includes(m))
      .map((m) => [m, (_call: unknown, callback?: (err: { code: number }) => void) => callback?.({ code: status.UNIMPLEMENTED })]),
  ),
} as UntypedServiceImplementation);
server.addService(HealthService, {
  check(_call: unknown, callback: (err: null, res: { status: number }) => void) {
    callback(null, { status: HealthCheckResponse_ServingStatus.SERVING });
  },
  watch(call: ServerWritableStream<unknown, { status: number }>) {
    call.write({ status: HealthCheckResponse_ServingStatus.SERVING });
  },
} as UntypedServiceImplementation);

const addr = process.env.BARE_ADDR ?? "127.0.0.1:50600";
server.bindAsync(addr, ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`bare server: cannot listen on ${addr}: ${err.message}\n`);
    process.exit(1);
  }
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
