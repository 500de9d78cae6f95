/**
 * What one client can hold through connections: how many connections a replica keeps open
 * (`COUNCIL_MAX_CONNECTIONS`), and how much a connection whose client reads nothing can make the
 * server queue before its new calls are refused. Real server processes, raw HTTP/2 clients.
 */
import http2, { type ClientHttp2Session } from "node:http2";
import { credentials, status, type ServiceError } from "@grpc/grpc-js";
import { expect } from "chai";
import { Council } from "../../src/app/council.js";
import { PRESETS } from "../../src/domain/presets.js";
import {
  CouncilServiceClient,
  GetDecisionRequest,
  ReviewSuggestionRequest,
  WatchDecisionsRequest,
  GetDecisionResponse,
} from "../../src/gen/council/v1/council_service.js";
import { createLogger } from "../../src/log.js";
import { CouncilServer } from "../../src/server/server.js";
import { MemoryStore } from "../../src/store/memory.js";
import { wireSuggestionAtLimits } from "../support/at_limits.js";
import { rawCall, type RawCall } from "../support/raw_grpc.js";
import { review } from "../support/server.js";
import { nextEvent, waitFor, within } from "../support/wait.js";
import { frame, GET_SUMMARY, rawUnary, spawnCouncil, type Spawned } from "./spawned.js";

/** An HTTP/2 connection; resolves once it is up, or with the error or close that ended it first. */
function connect(addr: string, settings?: http2.Settings): Promise<{ session: ClientHttp2Session; up: boolean }> {
  const session = http2.connect(`http://${addr}`, { ...(settings ? { settings } : {}), maxSessionMemory: 4096 });
  session.on("error", () => {});
  return new Promise((resolve) => {
    // A connection the server accepts answers with its SETTINGS; one past the cap is closed unanswered.
    session.once("remoteSettings", () => resolve({ session, up: true }));
    session.once("close", () => resolve({ session, up: false }));
  });
}

describe("attack: connections", function () {
  this.timeout(60_000);
  let server: Spawned | undefined;
  const sessions: ClientHttp2Session[] = [];

  afterEach(async () => {
    for (const s of sessions.splice(0)) s.destroy();
    await server?.stop();
    server = undefined;
  });

  // Was a finding: connections were not capped at all (3,000 connections x 10 streams held 30,000
  // streams). Past COUNCIL_MAX_CONNECTIONS a connection is closed as it is accepted.
  it("closes connections past COUNCIL_MAX_CONNECTIONS as they come, and takes new ones once some leave", async () => {
    server = await spawnCouncil({ env: { COUNCIL_MAX_CONNECTIONS: "5" } });
    const first = await Promise.all(Array.from({ length: 5 }, () => connect(server!.addr)));
    sessions.push(...first.map((c) => c.session));
    expect(first.map((c) => c.up)).to.deep.equal([true, true, true, true, true]);
    for (const { session } of first) expect((await rawUnary(session, GET_SUMMARY, frame(Buffer.alloc(0)))).code).to.equal(status.OK);
    const sixth = await within(connect(server.addr), { what: "the sixth connection to be answered or closed" });
    sessions.push(sixth.session);
    expect(sixth.up, "the sixth connection").to.equal(false);
    first[0]!.session.close();
    // The server counts the connection gone once it has seen it close: poll until a new one is taken.
    const again = await waitFor(
      async () => {
        const c = await connect(server!.addr);
        sessions.push(c.session);
        return c.up ? c : undefined;
      },
      { timeoutMs: 10_000, what: "a connection to be taken again" },
    );
    expect((await rawUnary(again.session, GET_SUMMARY, frame(Buffer.alloc(0)))).code).to.equal(status.OK);
  });

  // A client that reads nothing and asks for large answers one after another: each answer waits
  // in the server for the client to read it. About 32 MB in, the connection may open no more
  // streams (RESOURCE_EXHAUSTED), while other connections are served as before.
  it("refuses new calls on a connection with more than 32 MB of answers unread, and serves the others", async () => {
    server = await spawnCouncil();
    const client = new CouncilServiceClient(server.addr, credentials.createInsecure());
    try {
      const made = await review(client, ReviewSuggestionRequest.fromPartial({ suggestion: wireSuggestionAtLimits() }));
      const id = made.events.at(-1)!.decisionId;
      const { session: silent } = await connect(server.addr, { initialWindowSize: 0 });
      sessions.push(silent);
      const request = GetDecisionRequest.encode(GetDecisionRequest.fromPartial({ id })).finish();
      // Each answer is about 2.6 MB (a suggestion at every limit, with a 1 MiB diff); 40 of them
      // would be 105 MB. About 32 MB of them are held: the count is worked out from their size.
      const answer = GetDecisionResponse.encode(await new Promise<GetDecisionResponse>((resolve, reject) => client.getDecision({ id }, (err, res) => (err ? reject(err) : resolve(res))))).finish().length;
      const held = (32 * 1024 * 1024) / answer;
      const calls: RawCall[] = [];
      for (let i = 0; i < 40; i++) {
        const call = rawCall(silent, "/council.v1.CouncilService/GetDecision", request);
        calls.push(call);
        await within(call.headers, { what: `an answer to call ${i} to start or end` });
      }
      const refused = calls.filter((c) => c.end()?.code === status.RESOURCE_EXHAUSTED).length;
      const waiting = calls.filter((c) => c.end() === undefined).length;
      expect(waiting, "answers waiting to be read").to.be.within(Math.floor(held * 0.75), Math.ceil(held * 1.25));
      expect(refused + waiting).to.equal(calls.length);
      const served = await new Promise<GetDecisionResponse | ServiceError>((resolve) => client.getDecision({ id }, (err, res) => resolve(err ?? res)));
      expect(served).to.have.property("decision");
    } finally {
      client.close();
    }
  });

  // Connections count against the cap, so one that a client left open with no call is closed
  // after a while (5 minutes; 1.5 s here), and one with a call open is not.
  it("closes a connection left with no call open, and keeps one with a call open", async () => {
    const store = new MemoryStore();
    const running = await CouncilServer.start({
      council: new Council(store, PRESETS.default),
      store,
      log: createLogger("silent"),
      addr: "127.0.0.1:0",
      connectionIdleMs: 1500,
    });
    try {
      const addr = `127.0.0.1:${running.port}`;
      const [busy, idle] = await Promise.all([connect(addr), connect(addr)]);
      sessions.push(idle.session, busy.session);
      const watch = rawCall(busy.session, "/council.v1.CouncilService/WatchDecisions", WatchDecisionsRequest.encode(WatchDecisionsRequest.fromPartial({})).finish());
      await within(watch.headers, { what: "the watch to go live" });
      await nextEvent(idle.session, "goaway", { timeoutMs: 15_000, what: "the idle connection to be closed" });
      expect(busy.session.closed || busy.session.destroyed, "the connection with a watch open").to.equal(false);
      watch.stream.close();
      await nextEvent(busy.session, "goaway", { timeoutMs: 15_000, what: "the connection to be closed once its watch has ended" });
    } finally {
      await running.shutdown(1000);
    }
  });
});
