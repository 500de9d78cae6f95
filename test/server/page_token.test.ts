/**
 * Page tokens that cannot be forged (issue 7, item 4), through real gRPC: a token is signed with a
 * key the replicas of one keyspace share, so every replica of the keyspace takes it, and anything
 * else — a recomputed unkeyed checksum, a JSON `null` body, wrong types, bad base64, a token from
 * another keyspace or another in-process server — is INVALID_ARGUMENT naming page_token.
 */
import { createHash } from "node:crypto";
import { status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import type { CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import { Outcome } from "../../src/gen/council/v1/review.js";
import { unique, wireSuggestion } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { call, review, startCouncil, type Running } from "../support/server.js";
import { startReplica } from "../redis/helpers.js";

const b64 = (text: string) => Buffer.from(text).toString("base64url");
/** The checksum tokens had before they were signed: anybody could compute it. */
const unkeyed = (body: string) => createHash("sha256").update(`council-page-token:${body}`).digest("base64url");
/** A token in the old form, with its checksum recomputed. */
const oldForm = (json: string) => `${b64(json)}.${unkeyed(b64(json)).slice(0, 16)}`;
/** A token in the current form, with an unkeyed sha256 where the signature goes. */
const newFormUnkeyed = (json: string) => `${b64(json)}.${unkeyed(b64(json))}`;

const ALL = "decisions::";
const forgeries: [string, string][] = [
  ["the old form with a recomputed checksum and a cursor above everything", oldForm(JSON.stringify({ v: 1, s: ALL, c: "999999999999999:zzz" }))],
  ["the current form with an unkeyed sha256", newFormUnkeyed(JSON.stringify({ v: 2, s: ALL, c: "999999999999999:zzz" }))],
  ["a JSON null body with a recomputed checksum", oldForm("null")],
  ["a JSON null body in the current form", newFormUnkeyed("null")],
  ["wrong types with a recomputed checksum", oldForm(JSON.stringify({ v: 1, s: 5, c: [] }))],
  ["an array body", oldForm("[1,2]")],
  ["a body that is not JSON", `${b64("{not json")}.${unkeyed(b64("{not json")).slice(0, 16)}`],
  ["bad base64", "@@@@.####"],
  ["three parts", "abc.def.ghi"],
  ["no signature", `${b64("{}")}.`],
  ["only a dot", "."],
  ["bogus", "bogus"],
];

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  const err = await p.then(
    () => undefined,
    (e: ServiceError) => e,
  );
  expect(err, "the call succeeded").to.not.equal(undefined);
  return err!;
}

function expectBadToken(err: ServiceError): void {
  expect(err.code, err.details).to.equal(status.INVALID_ARGUMENT);
  expect(err.details.startsWith("page_token:"), err.details).to.equal(true);
}

const listDecisions = (c: CouncilServiceClient, pageToken: string, pageSize = 1) =>
  call(c, c.listDecisions, { decisionType: 0, suggestionId: "", pageSize, pageToken, status: 0, oldestFirst: false });
const listLessons = (c: CouncilServiceClient, pageToken: string, pageSize = 1) => call(c, c.listLessons, { pageSize, pageToken });

/** Stores three reviews, each with an outcome, so that both listings have more than one page. */
async function seed(c: CouncilServiceClient): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const r = await review(c, { suggestion: wireSuggestion(), requestId: unique("req") });
    const id = r.events.at(-1)!.decisionId;
    await call(c, c.recordOutcome, { decisionId: id, outcome: Outcome.OUTCOME_SUCCESS, notes: "", lessons: `l${i}`, requestId: "" });
  }
}

describe("Page tokens cannot be forged", function () {
  this.timeout(30_000);

  describe("on the in-process store", () => {
    let a: Running;
    let b: Running;
    before(async () => {
      a = await startCouncil();
      b = await startCouncil();
      await seed(a.client);
      await seed(b.client);
    });
    after(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
    });

    for (const [name, token] of forgeries) {
      it(`refuses ${name}`, async () => {
        expectBadToken(await failure(listDecisions(a.client, token)));
        expectBadToken(await failure(listLessons(a.client, token)));
      });
    }

    it("takes its own tokens, and refuses one with a changed character or from another server", async () => {
      const first = await listDecisions(a.client, "");
      expect(first.nextPageToken).to.not.equal("");
      expect((await listDecisions(a.client, first.nextPageToken)).decisions).to.have.length(1);
      for (let i = 0; i < first.nextPageToken.length; i++) {
        const ch = first.nextPageToken[i]!;
        const changed = first.nextPageToken.slice(0, i) + (ch === "A" ? "B" : "A") + first.nextPageToken.slice(i + 1);
        expectBadToken(await failure(listDecisions(a.client, changed)));
      }
      expectBadToken(await failure(listDecisions(b.client, first.nextPageToken)));
      const lessons = await listLessons(a.client, "");
      expect(lessons.nextPageToken).to.not.equal("");
      expectBadToken(await failure(listLessons(b.client, lessons.nextPageToken)));
      // A token of one listing is no token of the other.
      expectBadToken(await failure(listLessons(a.client, first.nextPageToken)));
    });

    it("stays short enough to be sent back whatever the filter (a suggestion id of 256 escaped characters)", async () => {
      const s = wireSuggestion({ id: "\u0001".repeat(256) });
      for (let i = 0; i < 3; i++) await review(a.client, { suggestion: s, requestId: unique("req") });
      const seen: string[] = [];
      let token = "";
      for (let page = 0; page < 10; page++) {
        const res = await call(a.client, a.client.listDecisions, { decisionType: 0, suggestionId: s.id, pageSize: 1, pageToken: token, status: 0, oldestFirst: false });
        seen.push(...res.decisions.map((d) => d.id));
        token = res.nextPageToken;
        expect(token.length).to.be.below(200);
        if (!token) break;
      }
      expect(new Set(seen).size).to.equal(3);
      // Bound to its filter still.
      const first = await call(a.client, a.client.listDecisions, { decisionType: 0, suggestionId: s.id, pageSize: 1, pageToken: "", status: 0, oldestFirst: false });
      const err = await failure(listDecisions(a.client, first.nextPageToken));
      expectBadToken(err);
      expect(err.details).to.include("another listing or filter");
    });
  });

  describe("on Redis", () => {
    let redis: RedisServer;
    const replicas: Running[] = [];
    let a1: Running;
    let a2: Running;
    let other: Running;
    before(async () => {
      redis = await RedisServer.start();
      const prefix = `${unique("tok")}:`;
      // Two replicas of one keyspace, started together (they must agree on the key), and a
      // replica of another keyspace on the same Redis.
      [a1, a2] = await Promise.all([startReplica(redis.url, prefix), startReplica(redis.url, prefix)]);
      other = await startReplica(redis.url, `${unique("tok")}:`);
      replicas.push(a1, a2, other);
      await seed(a1.client);
      await seed(other.client);
    });
    after(async () => {
      await Promise.all(replicas.map((r) => r.stop()));
      await redis?.destroy();
    });

    for (const [name, token] of forgeries) {
      it(`refuses ${name}`, async () => {
        expectBadToken(await failure(listDecisions(a1.client, token)));
        expectBadToken(await failure(listLessons(a1.client, token)));
      });
    }

    it("a token from one replica pages on the other replica of its keyspace, never on another keyspace", async () => {
      const seen: string[] = [];
      let token = "";
      for (let page = 0; page < 10; page++) {
        const res = await listDecisions(page % 2 === 0 ? a1.client : a2.client, token);
        seen.push(...res.decisions.map((d) => d.id));
        token = res.nextPageToken;
        if (!token) break;
      }
      expect(seen).to.have.length(3);
      expect(new Set(seen).size).to.equal(3);

      const first = await listDecisions(a1.client, "");
      expectBadToken(await failure(listDecisions(other.client, first.nextPageToken)));
      const lessons = await listLessons(a2.client, "");
      expect((await listLessons(a1.client, lessons.nextPageToken)).lessons).to.have.length(1);
      expectBadToken(await failure(listLessons(other.client, lessons.nextPageToken)));
      const theirs = await listDecisions(other.client, "");
      expectBadToken(await failure(listDecisions(a2.client, theirs.nextPageToken)));
    });

    it("keeps the key in <prefix>meta, the same for every replica", () => {
      const key = (r: Running) => redis.cli("hget", `${(r.store as unknown as { keys: { prefix: string } }).keys.prefix}meta`, "token_key").trim();
      expect(Buffer.from(key(a1), "base64")).to.have.length(32);
      expect(key(a1)).to.equal(key(a2));
      expect(key(a1)).to.not.equal(key(other));
      expect(a1.store.pageTokenKey.equals(a2.store.pageTokenKey)).to.equal(true);
    });
  });
});
