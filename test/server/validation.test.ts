import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { ReviewSuggestionRequest } from "../../src/gen/council/v1/council_service.js";
import { Effort, ImpactLevel, Outcome, RiskLevel } from "../../src/gen/council/v1/review.js";
import { LIMITS } from "../../src/domain/limits.js";
import { wireSuggestion } from "../support/fixtures.js";
import { call, review, startCouncil, type Running } from "../support/server.js";

const big = (bytes: number) => "x".repeat(bytes + 1);

/** Each row: a bad ReviewSuggestion request and the field its INVALID_ARGUMENT must name. */
const badReviews: [string, Partial<ReviewSuggestionRequest>, string][] = [
  ["missing suggestion", { suggestion: undefined }, "suggestion"],
  ["empty id", { suggestion: wireSuggestion({ id: "" }) }, "suggestion.id"],
  ["blank id", { suggestion: wireSuggestion({ id: " \t " }) }, "suggestion.id"],
  ["empty title", { suggestion: wireSuggestion({ title: "" }) }, "suggestion.title"],
  ["blank title", { suggestion: wireSuggestion({ title: "   " }) }, "suggestion.title"],
  ["risk unspecified", { suggestion: wireSuggestion({ risk: 0 }) }, "suggestion.risk"],
  ["impact unspecified", { suggestion: wireSuggestion({ impact: 0 }) }, "suggestion.impact"],
  ["unknown risk", { suggestion: wireSuggestion({ risk: 99 as RiskLevel }) }, "suggestion.risk"],
  ["unknown impact", { suggestion: wireSuggestion({ impact: 6 as ImpactLevel }) }, "suggestion.impact"],
  ["unknown effort", { suggestion: wireSuggestion({ estimatedEffort: 42 as Effort }) }, "suggestion.estimated_effort"],
  ["oversize id", { suggestion: wireSuggestion({ id: big(LIMITS.idBytes) }) }, "suggestion.id"],
  ["oversize title", { suggestion: wireSuggestion({ title: big(LIMITS.titleBytes) }) }, "suggestion.title"],
  ["oversize description", { suggestion: wireSuggestion({ description: big(LIMITS.textBytes) }) }, "suggestion.description"],
  ["oversize reasoning", { suggestion: wireSuggestion({ reasoning: big(LIMITS.textBytes) }) }, "suggestion.reasoning"],
  ["too many fix steps", { suggestion: wireSuggestion({ fixSteps: Array(LIMITS.fixSteps + 1).fill("s") }) }, "suggestion.fix_steps"],
  ["oversize fix step", { suggestion: wireSuggestion({ fixSteps: ["ok", big(LIMITS.fixStepBytes)] }) }, "suggestion.fix_steps[1]"],
  [
    "too many files",
    { suggestion: wireSuggestion({ filesAffected: Array(LIMITS.filesAffected + 1).fill("f") }) },
    "suggestion.files_affected",
  ],
  ["oversize file path", { suggestion: wireSuggestion({ filesAffected: [big(LIMITS.fileBytes)] }) }, "suggestion.files_affected[0]"],
  ["oversize request_id", { suggestion: wireSuggestion(), requestId: big(LIMITS.requestIdBytes) }, "request_id"],
  ["multi-byte title over the byte limit", { suggestion: wireSuggestion({ title: "é".repeat(LIMITS.titleBytes / 2 + 1) }) }, "suggestion.title"],
];

describe("bad input gets INVALID_ARGUMENT naming the field, and stores nothing", () => {
  let c: Running;
  before(async () => (c = await startCouncil()));
  after(() => c.stop());

  afterEach(async () => {
    const summary = await call(c.client, c.client.getSummary, {});
    expect(summary.totalDecisions).to.equal(0);
  });

  for (const [name, req, field] of badReviews) {
    it(`ReviewSuggestion: ${name}`, async () => {
      const { events, error } = await review(c.client, req);
      expect(events).to.deep.equal([]);
      expect(error?.code, error?.details).to.equal(status.INVALID_ARGUMENT);
      expect(error?.details.startsWith(`${field}:`), error?.details).to.equal(true);
    });
  }

  const unaryCases: [string, (c: Running) => Promise<unknown>, status, string][] = [
    ["GetDecision: empty id", (c) => call(c.client, c.client.getDecision, { id: "" }), status.INVALID_ARGUMENT, "id:"],
    ["GetDecision: unknown id", (c) => call(c.client, c.client.getDecision, { id: "dec-nope" }), status.NOT_FOUND, "decision"],
    [
      "ListDecisions: a page token the server did not issue",
      (c) => call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 0, pageToken: "bogus", status: 0, oldestFirst: false }),
      status.INVALID_ARGUMENT,
      "page_token:",
    ],
    [
      "ListDecisions: negative page size",
      (c) => call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: -1, pageToken: "", status: 0, oldestFirst: false }),
      status.INVALID_ARGUMENT,
      "page_size:",
    ],
    [
      "ListDecisions: unknown decision type",
      (c) => call(c.client, c.client.listDecisions, { decisionType: 17, suggestionId: "", pageSize: 0, pageToken: "", status: 0, oldestFirst: false }),
      status.INVALID_ARGUMENT,
      "decision_type:",
    ],
    [
      "ListLessons: a page token the server did not issue",
      (c) => call(c.client, c.client.listLessons, { pageSize: 0, pageToken: "eyJ2IjoxfQ.AAAA" }),
      status.INVALID_ARGUMENT,
      "page_token:",
    ],
    [
      "RecordOutcome: OUTCOME_UNSPECIFIED",
      (c) => call(c.client, c.client.recordOutcome, { decisionId: "dec-x", outcome: 0, notes: "", lessons: "" , requestId: "" }),
      status.INVALID_ARGUMENT,
      "outcome:",
    ],
    [
      "RecordOutcome: unknown outcome",
      (c) => call(c.client, c.client.recordOutcome, { decisionId: "dec-x", outcome: 9 as Outcome, notes: "", lessons: "" , requestId: "" }),
      status.INVALID_ARGUMENT,
      "outcome:",
    ],
    [
      "RecordOutcome: unknown decision",
      (c) => call(c.client, c.client.recordOutcome, { decisionId: "dec-nope", outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: "" , requestId: "" }),
      status.NOT_FOUND,
      "decision",
    ],
    [
      "RecordOutcome: oversize notes",
      (c) => call(c.client, c.client.recordOutcome, { decisionId: "dec-x", outcome: Outcome.OUTCOME_SUCCESS, notes: big(LIMITS.notesBytes), lessons: "" , requestId: "" }),
      status.INVALID_ARGUMENT,
      "notes:",
    ],
  ];

  for (const [name, run, code, prefix] of unaryCases) {
    it(name, async () => {
      const err = (await run(c).then(
        () => undefined,
        (e: ServiceError) => e,
      )) as ServiceError | undefined;
      expect(err?.code, err?.details).to.equal(code);
      expect(err?.details.startsWith(prefix), err?.details).to.equal(true);
    });
  }

  it("a page token is bound to its filter", async () => {
    for (let i = 0; i < 3; i++) await review(c.client, { suggestion: wireSuggestion(), dryRun: false });
    const first = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 1, pageToken: "", status: 0, oldestFirst: false });
    expect(first.nextPageToken).to.not.equal("");
    const err = await call(c.client, c.client.listDecisions, {
      decisionType: 0,
      suggestionId: "other",
      pageSize: 1,
      pageToken: first.nextPageToken,
      status: 0,
      oldestFirst: false,
    }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).to.equal(status.INVALID_ARGUMENT);
    const tampered = first.nextPageToken.replace(/^./, (ch) => (ch === "A" ? "B" : "A"));
    const err2 = await call(c.client, c.client.listDecisions, { decisionType: 0, suggestionId: "", pageSize: 1, pageToken: tampered, status: 0, oldestFirst: false }).catch(
      (e: ServiceError) => e,
    );
    expect((err2 as ServiceError).code).to.equal(status.INVALID_ARGUMENT);
    // Clean up for the afterEach check: this test stored three reviews on purpose.
    await c.stop();
    c = await startCouncil();
  });

  it("an unexpected failure is INTERNAL with a generic message, and the server stays up", async () => {
    const original = c.store.summary.bind(c.store);
    c.store.summary = async () => {
      throw new Error("secret internal detail at /srv/council/store.ts:42");
    };
    const err = await call(c.client, c.client.getSummary, {}).catch((e: ServiceError) => e);
    c.store.summary = original;
    expect((err as ServiceError).code).to.equal(status.INTERNAL);
    expect((err as ServiceError).details).to.equal("internal error");
    const ok = await call(c.client, c.client.getSummary, {});
    expect(ok.totalDecisions).to.equal(0);
  });
});
