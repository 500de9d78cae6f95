/**
 * Every CouncilService RPC × every role, through gRPC, allowed or PERMISSION_DENIED exactly as in
 * the table of SPEC §8, on the in-process store and on Redis; and the role is checked before
 * anything else in the request (a caller without the role learns nothing about it: not that the
 * decision does not exist, not that a field is invalid, not that a string is not UTF-8).
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { generateKeyPair, exportJWK, SignJWT } from "jose";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ROLES, type Role } from "../../src/domain/principal.js";
import type { CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import { createLogger } from "../../src/log.js";
import { RedisStore } from "../../src/store/redis.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/store.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { startCouncil, type Running } from "../support/server.js";
import { within } from "../support/wait.js";
import { authFileIn, reviewOutcome, unaryOutcome, watchOutcome, writeAuthFile, type Outcome } from "./grpc_helpers.js";

/** Awaits `decisionId` (deadline 10 s) and resolves with how the stream ended. */
function awaitOutcome(client: CouncilServiceClient, decisionId: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const stream = client.awaitDecision({ decisionId }, { deadline: Date.now() + 10_000 });
    stream.on("data", () => undefined);
    stream.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
    stream.on("end", () => resolve({ code: status.OK, details: "" }));
  });
}
import { tempDir } from "./helpers.js";

/** The callers: one principal per role, and one with no Council role (only a JWT can be that). */
const CALLERS = ["agent", "operator", "approver", "reviewer", "no role"] as const;
type Caller = (typeof CALLERS)[number];

/** SPEC §8's table, written out again here (not read from src/server/auth/roles.ts). */
const ALLOWED: Record<string, readonly Caller[]> = {
  ReviewSuggestion: ["agent", "operator"],
  RecordOutcome: ["agent", "operator"],
  GetDecision: ["agent", "operator", "approver", "reviewer"],
  ListDecisions: ["agent", "operator", "approver", "reviewer"],
  GetSummary: ["agent", "operator", "approver", "reviewer"],
  ListLessons: ["agent", "operator", "approver", "reviewer"],
  ListReviewers: ["agent", "operator", "approver", "reviewer"],
  WatchDecisions: ["agent", "operator", "approver", "reviewer"],
  ResolveDecision: ["approver"],
  AwaitDecision: ["agent", "operator", "approver", "reviewer"],
  ServeReviews: ["reviewer"],
};

const NEEDS: Record<string, string> = {
  ReviewSuggestion: "ReviewSuggestion needs the role agent or operator",
  RecordOutcome: "RecordOutcome needs the role agent or operator",
  ResolveDecision: "ResolveDecision needs the role approver",
  ServeReviews: "ServeReviews needs the role reviewer",
};
const needs = (method: string) => NEEDS[method] ?? `${method} needs the role agent, operator, approver or reviewer`;

/** Opens ServeReviews and half-closes it at once: how the stream ended. */
function serveOutcome(client: CouncilServiceClient): Promise<Outcome> {
  return within(
    new Promise<Outcome>((resolve) => {
      const stream = client.serveReviews();
      stream.on("data", () => undefined);
      stream.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details }));
      stream.on("end", () => resolve({ code: status.OK, details: "" }));
      stream.end();
    }),
    { what: "the ServeReviews stream to end" },
  );
}

/** A raw unary call on `client` (one that adds no token itself): `bytes` as the request, with `token`. */
function rawUnary(client: CouncilServiceClient, method: string, bytes: Uint8Array, token: string): Promise<Outcome> {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return within(
    new Promise<Outcome>((resolve) =>
      client.makeUnaryRequest(
        `/council.v1.CouncilService/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        md,
        {},
        (err: ServiceError | null) => resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: "" }),
      ),
    ),
    { what: `${method} to answer`, timeoutMs: 10_000 },
  );
}

/** A message with string field 1 set to `bytes` (GetDecisionRequest.id, RecordOutcomeRequest.decision_id). */
const field1 = (bytes: number[]) => Uint8Array.from([0x0a, bytes.length, ...bytes]);

for (const kind of ["memory", "redis"] as const) {
  describe(`roles through gRPC (${kind} store)`, function () {
    this.timeout(90_000);
    let redis: RedisServer | undefined;
    let dir: string;
    let remove: () => Promise<void>;
    let c: Running;
    const tokens = {} as Record<Caller, string>;
    const clients = {} as Record<Caller, CouncilServiceClient>;
    /** A decision each of agent and operator submitted (auto-approved, so outcomes may be recorded). */
    const submitted = {} as Record<"agent" | "operator", string>;
    /** A decision the agent submitted that waits for an approver (human_approve). */
    let pending: string;

    before(async () => {
      ({ dir, remove } = await tempDir());
      if (kind === "redis") redis = await RedisServer.start();
      const store: Store = redis ? await RedisStore.open({ url: redis.url, prefix: `${unique("roles")}:`, log: createLogger("silent") }) : new MemoryStore();
      const pair = await generateKeyPair("ES256", { extractable: true });
      await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" }] }));
      for (const role of ROLES) tokens[role] = `council_${role}-token`;
      tokens["no role"] = await new SignJWT({ council_roles: [] })
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setSubject("nobody")
        .setIssuer("https://issuer.test")
        .setAudience("council")
        .setExpirationTime("1h")
        .sign(pair.privateKey);
      await writeAuthFile(
        authFileIn(dir),
        ROLES.map((role: Role) => ({ name: `the-${role}`, roles: [role], tokens: [tokens[role]] })),
        { jwks_file: "jwks.json", issuer: "https://issuer.test", audience: "council" },
      );
      c = await startCouncil({ store, authFile: authFileIn(dir) });
      for (const caller of CALLERS) clients[caller] = c.connect({ token: tokens[caller] });
      for (const who of ["agent", "operator"] as const) {
        const r = await reviewOutcome(clients[who], { suggestion: wireSuggestion() });
        expect(r.code, r.details).to.equal(status.OK);
        submitted[who] = (r.response!.at(-1) as { decisionId: string }).decisionId;
      }
      const r = await reviewOutcome(clients.agent, { suggestion: wireSuggestion({ risk: 3, autoFixable: false }) });
      expect(r.code, r.details).to.equal(status.OK);
      pending = (r.response!.at(-1) as { decisionId: string }).decisionId;
    });
    after(async () => {
      await c.stop();
      await redis?.destroy();
      await remove();
    });

    /** Calls `method` as `caller` with a request that the handler accepts. */
    async function callAs(caller: Caller, method: string): Promise<Outcome> {
      const client = clients[caller];
      switch (method) {
        case "ReviewSuggestion":
          return reviewOutcome(client, { suggestion: wireSuggestion(), dryRun: true });
        case "RecordOutcome":
          // An agent on its own decision (the finer rule, own decisions only, is tested with the store).
          return unaryOutcome(client, "recordOutcome", {
            decisionId: caller === "agent" ? submitted.agent : submitted.operator,
            outcome: 1,
            notes: "",
            lessons: "",
            requestId: "",
          });
        case "GetDecision":
          return unaryOutcome(client, "getDecision", { id: submitted.agent });
        case "ListDecisions":
          return unaryOutcome(client, "listDecisions", { decisionType: 0, suggestionId: "", pageSize: 5, pageToken: "", status: 0, oldestFirst: false });
        case "GetSummary":
          return unaryOutcome(client, "getSummary", {});
        case "ListLessons":
          return unaryOutcome(client, "listLessons", { pageSize: 5, pageToken: "" });
        case "ListReviewers":
          return unaryOutcome(client, "listReviewers", {});
        case "WatchDecisions": {
          const w = await watchOutcome(client);
          w.cancel();
          return w;
        }
        case "ResolveDecision":
          // The approver's first call counts its verdict; a repeat returns the decision unchanged.
          return unaryOutcome(client, "resolveDecision", { decisionId: pending, verdict: 1, comment: "", requestId: "" });
        case "AwaitDecision":
          // An auto-approved decision: sent once, then the stream ends OK.
          return awaitOutcome(client, submitted.agent);
        case "ServeReviews":
          // A reviewer that leaves before its hello: the stream ends OK.
          return serveOutcome(client);
        default:
          throw new Error(`no call for ${method}`);
      }
    }

    it("covers every RPC the server serves", () => {
      const served = Object.keys(Object.getPrototypeOf(c.client) as object).filter((k) => k !== "constructor");
      const rpcs = served.map((k) => k[0]!.toUpperCase() + k.slice(1));
      expect(rpcs.sort()).to.deep.equal(Object.keys(ALLOWED).sort());
    });

    for (const method of Object.keys(ALLOWED)) {
      it(`${method}: ${ALLOWED[method]!.join(", ")} allowed; every other caller PERMISSION_DENIED naming the role`, async () => {
        for (const caller of CALLERS) {
          const r = await callAs(caller, method);
          if (ALLOWED[method]!.includes(caller)) {
            expect(r.code, `${method} as ${caller}: ${r.details}`).to.equal(status.OK);
          } else {
            expect(r, `${method} as ${caller}`).to.deep.include({ code: status.PERMISSION_DENIED, details: needs(method) });
          }
        }
      });
    }

    it("checks the role before anything in the request: missing fields, unknown ids, invalid UTF-8", async () => {
      // Each of these requests is wrong in a way the allowed caller is told about.
      const agentSees = [
        (await reviewOutcome(clients.agent, { suggestion: undefined })).code,
        (await unaryOutcome(clients.agent, "recordOutcome", { decisionId: "dec-nope", outcome: 1, notes: "", lessons: "", requestId: "" })).code,
        (await rawUnary(c.client, "RecordOutcome", field1([0x64, 0xff]), tokens.agent)).code,
        (await rawUnary(c.client, "GetDecision", field1([0xc3]), tokens.agent)).code,
      ];
      expect(agentSees).to.deep.equal([status.INVALID_ARGUMENT, status.NOT_FOUND, status.INVALID_ARGUMENT, status.INVALID_ARGUMENT]);
      // The caller without the role is told only that.
      const approverSees = [
        await reviewOutcome(clients.approver, { suggestion: undefined }),
        await unaryOutcome(clients.approver, "recordOutcome", { decisionId: "dec-nope", outcome: 1, notes: "", lessons: "", requestId: "" }),
        await rawUnary(c.client, "RecordOutcome", field1([0x64, 0xff]), tokens.approver),
      ];
      for (const r of approverSees) expect(r.code, r.details).to.equal(status.PERMISSION_DENIED);
      const nobody = await rawUnary(c.client, "GetDecision", field1([0xc3]), tokens["no role"]);
      expect(nobody).to.deep.include({ code: status.PERMISSION_DENIED, details: needs("GetDecision") });
      // And an unknown token is UNAUTHENTICATED, whatever the request.
      const anonymous = await rawUnary(c.client, "GetDecision", field1([0xc3]), "council_not-a-token");
      expect(anonymous.code).to.equal(status.UNAUTHENTICATED);
    });
  });
}
