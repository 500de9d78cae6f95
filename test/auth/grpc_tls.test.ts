/**
 * TLS and mTLS on the gRPC port, through real gRPC clients and real handshakes (SPEC §8,
 * Transport): plaintext and unverified clients are refused, mTLS verifies client certificates
 * against the configured CA alone, and a certificate replaced on disk is served to new connections
 * while an open WatchDecisions keeps streaming. Certificates are made by openssl for each run.
 */
import { X509Certificate } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import { HealthClient } from "../../src/gen/grpc/health/v1/health.js";
import { createLogger } from "../../src/log.js";
import { TlsFiles, TlsFilesError } from "../../src/server/auth/tls.js";
import { RedisStore } from "../../src/store/redis.js";
import { MemoryStore } from "../../src/store/memory.js";
import type { Store } from "../../src/store/store.js";
import { wireSuggestion, unique } from "../support/fixtures.js";
import { RedisServer } from "../support/redis.js";
import { channelCredentials, startCouncil, type Running } from "../support/server.js";
import { nextEvent, waitFor } from "../support/wait.js";
import { makeCa } from "./certs.js";
import { callLines, makePki, reviewOutcome, servedFingerprint, unaryOutcome, type Pki } from "./grpc_helpers.js";
import { captureLog, replaceFile, tempDir, type LogLine } from "./helpers.js";

describe("TLS and mTLS through gRPC", function () {
  this.timeout(60_000);
  let dir: string;
  let remove: () => Promise<void>;
  let pki: Pki;
  const running: Running[] = [];

  before(async () => {
    ({ dir, remove } = await tempDir());
    pki = await makePki(dir);
  });
  after(() => remove());
  afterEach(async () => {
    for (const c of running.splice(0)) await c.stop();
  });

  async function start(options: Parameters<typeof startCouncil>[0]): Promise<Running> {
    const c = await startCouncil(options);
    running.push(c);
    return c;
  }

  const summary = (c: Running, connect: Parameters<Running["connect"]>[0]) => unaryOutcome(c.connect(connect), "getSummary", {});

  describe("TLS", () => {
    it("serves clients that trust its CA, and refuses plaintext clients and clients that do not", async () => {
      const c = await start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile }, connect: { ca: pki.ca.cert } });
      expect((await unaryOutcome(c.client, "getSummary", {})).code).to.equal(status.OK);

      const plaintext = await summary(c, {});
      expect(plaintext.code, plaintext.details).to.equal(status.UNAVAILABLE);

      const stranger = await makeCa(dir, "stranger-ca");
      const untrusting = await summary(c, { ca: stranger.cert });
      expect(untrusting.code, untrusting.details).to.equal(status.UNAVAILABLE);

      // The name in the certificate is checked: it is for localhost and 127.0.0.1 only.
      const misnamed = await summary(c, { ca: pki.ca.cert, serverName: "council.example" });
      expect(misnamed.code, misnamed.details).to.equal(status.UNAVAILABLE);
    });

    it("stops at start-up on files that do not make a TLS server, naming the problem", async () => {
      const log = createLogger("silent");
      const garbage = join(dir, "garbage.pem");
      await writeFile(garbage, "not a certificate\n");
      const other = await pki.client("other-key", "other");
      const cases: [Parameters<typeof TlsFiles.open>[0], string][] = [
        [{ certFile: join(dir, "missing.crt"), keyFile: pki.server.keyFile, log }, "COUNCIL_TLS_CERT"],
        [{ certFile: garbage, keyFile: pki.server.keyFile, log }, "holds no PEM certificate"],
        [{ certFile: pki.server.certFile, keyFile: garbage, log }, "is not a PEM private key"],
        [{ certFile: pki.server.certFile, keyFile: other.keyFile, log }, "is not the key of the certificate"],
        [{ certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: garbage, log }, "COUNCIL_TLS_CLIENT_CA"],
        [{ certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: pki.server.certFile, log }, "is not a CA certificate"],
      ];
      for (const [options, problem] of cases) {
        const err = await TlsFiles.open(options).then(
          (t) => {
            t.close();
            return new Error("opened");
          },
          (e: unknown) => e as Error,
        );
        expect(err, `${JSON.stringify(options)}: ${err.message}`).to.be.instanceOf(TlsFilesError);
        expect(err.message).to.include(problem);
      }
    });
  });

  describe("mTLS", () => {
    let clientCa: string;
    before(() => (clientCa = pki.ca.certFile));

    it("refuses a client without a certificate, and one whose certificate another CA signed", async () => {
      const bot = await pki.client("mtls-bot", "ci-bot");
      const c = await start({
        tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: clientCa },
        connect: { ca: pki.ca.cert, cert: bot.cert, key: bot.key },
      });
      expect((await unaryOutcome(c.client, "getSummary", {})).code).to.equal(status.OK);

      const without = await summary(c, { ca: pki.ca.cert });
      expect(without.code, without.details).to.equal(status.UNAVAILABLE);

      // A certificate with the very same subject, from a CA the server was not told to trust.
      const { dir: otherDir, remove: removeOther } = await tempDir();
      try {
        const rogue = await makePki(otherDir);
        const forged = await rogue.client("forged", "ci-bot");
        const refused = await summary(c, { ca: pki.ca.cert, cert: forged.cert, key: forged.key });
        expect(refused.code, refused.details).to.equal(status.UNAVAILABLE);
        // Not even the TLS handshake completes: the client certificate is verified there.
        const handshake = await servedFingerprint(c.server.port, pki.ca.cert, { cert: forged.cert, key: forged.key }).then(
          () => "completed",
          (e: Error) => e.message,
        );
        // With TLS 1.3 the client may finish first and learn of the refusal on its first read.
        if (handshake === "completed") {
          const health = new HealthClient(c.addr, channelCredentials({ ca: pki.ca.cert, cert: forged.cert, key: forged.key }));
          const err = await new Promise<number>((resolve) => health.check({ service: "" }, (e) => resolve(e ? e.code : status.OK)));
          health.close();
          expect(err).to.equal(status.UNAVAILABLE);
        }
      } finally {
        await removeOther();
      }
    });

    it("accepts clients of every CA in the client CA file (how a client CA is rotated)", async () => {
      const { dir: otherDir, remove: removeOther } = await tempDir();
      try {
        const next = await makePki(otherDir);
        const bundle = join(otherDir, "both.crt");
        await writeFile(bundle, `${next.ca.cert}${pki.ca.cert}`);
        const c = await start({ tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: bundle } });
        for (const [name, issuer] of [["old-ca-bot", pki], ["new-ca-bot", next]] as const) {
          const bot = await issuer.client(name, name);
          const r = await summary(c, { ca: pki.ca.cert, cert: bot.cert, key: bot.key });
          expect(r.code, `${name}: ${r.details}`).to.equal(status.OK);
        }
      } finally {
        await removeOther();
      }
    });

    it("with no auth file names the caller by its certificate's common name, with every role", async () => {
      const captured = captureLog();
      const bot = await pki.client("cn-bot", "ci-bot");
      const c = await start({
        tls: { certFile: pki.server.certFile, keyFile: pki.server.keyFile, clientCaFile: clientCa },
        connect: { ca: pki.ca.cert, cert: bot.cert, key: bot.key },
        log: captured.log,
      });
      expect(c.server).to.exist;
      // Every role: a review (agent or operator) and an outcome (operator) both pass.
      const reviewed = await reviewOutcome(c.client, { suggestion: wireSuggestion() });
      expect(reviewed.code, reviewed.details).to.equal(status.OK);
      const decision = (reviewed.response!.at(-1) as { decisionId: string }).decisionId;
      const outcome = await unaryOutcome(c.client, "recordOutcome", { decisionId: decision, outcome: 1, notes: "", lessons: "", requestId: "" });
      expect(outcome.code, outcome.details).to.equal(status.OK);
      await waitFor(() => callLines(captured.lines, "RecordOutcome").length === 1, { what: "the RecordOutcome log line" });
      for (const line of callLines(captured.lines)) expect(line.principal, JSON.stringify(line)).to.equal("ci-bot");
    });
  });

  for (const kind of ["memory", "redis"] as const) {
    describe(`rotation (${kind} store)`, () => {
      let redis: RedisServer | undefined;
      before(async () => {
        if (kind === "redis") redis = await RedisServer.start();
      });
      after(async () => redis?.stop());
      const newStore = async (): Promise<Store> =>
        redis ? RedisStore.open({ url: redis.url, prefix: `${unique("tls")}:`, log: createLogger("silent") }) : new MemoryStore();

      it("serves a replaced certificate to new connections while an open watch keeps streaming", async () => {
        const { dir: rotDir, remove: removeRot } = await tempDir();
        try {
          const certFile = join(rotDir, "tls.crt");
          const keyFile = join(rotDir, "tls.key");
          await writeFile(certFile, pki.server.cert);
          await writeFile(keyFile, pki.server.key);
          const captured = captureLog();
          const c = await start({
            store: await newStore(),
            tls: { certFile, keyFile },
            connect: { ca: pki.ca.cert },
            log: captured.log,
            filePollIntervalMs: 200,
          });
          const before = new X509Certificate(pki.server.cert).fingerprint256;
          expect(await servedFingerprint(c.server.port, pki.ca.cert)).to.equal(before);

          const watch = c.client.watchDecisions({ decisionType: 0, includeVotes: false, includeUpdates: false });
          const events: { decisionId: string }[] = [];
          watch.on("data", (e: { decisionId: string }) => events.push(e));
          let watchError: Error | undefined;
          watch.on("error", (e: Error) => (watchError = e));
          await nextEvent(watch, "metadata", { what: "the watch to be live", timeoutMs: 10_000 });

          const next = await pki.anotherServer(`rotated-${kind}`);
          const after = new X509Certificate(next.cert).fingerprint256;
          expect(after).to.not.equal(before);
          // The key first, then the certificate, each by a rename: in between they do not match,
          // and that state is refused while the old pair stays in force.
          await replaceFile(keyFile, next.key);
          await replaceFile(certFile, next.cert);
          await waitFor(async () => (await servedFingerprint(c.server.port, pki.ca.cert)) === after, {
            what: "a new connection to be served the new certificate",
            timeoutMs: 15_000,
            intervalMs: 50,
          });

          // A new channel (a new connection) stores a review; the watch opened before the rotation gets it.
          const reviewed = await reviewOutcome(c.connect({ ca: pki.ca.cert }), { suggestion: wireSuggestion() });
          expect(reviewed.code, reviewed.details).to.equal(status.OK);
          const id = (reviewed.response!.at(-1) as { decisionId: string }).decisionId;
          await waitFor(() => events.some((e) => e.decisionId === id), { what: "the open watch to receive the review", timeoutMs: 10_000 });
          expect(watchError).to.equal(undefined);
          // The connection made before the rotation still serves unary calls too.
          expect((await unaryOutcome(c.client, "getSummary", {})).code).to.equal(status.OK);
          watch.cancel();
          expect(captured.lines.some((l) => l.msg.startsWith("TLS certificate reloaded") && l.fingerprint === after)).to.equal(true);
        } finally {
          await removeRot();
        }
      });
    });
  }

  it("keeps serving the last good certificate when a new file is invalid, and takes the next good one", async () => {
    const { dir: rotDir, remove: removeRot } = await tempDir();
    try {
      const certFile = join(rotDir, "tls.crt");
      const keyFile = join(rotDir, "tls.key");
      const caFile = join(rotDir, "ca.crt");
      await writeFile(certFile, pki.server.cert);
      await writeFile(keyFile, pki.server.key);
      await writeFile(caFile, pki.ca.cert);
      const bot = await pki.client("rot-bot", "rot-bot");
      const captured = captureLog();
      const c = await start({
        tls: { certFile, keyFile, clientCaFile: caFile },
        connect: { ca: pki.ca.cert, cert: bot.cert, key: bot.key },
        log: captured.log,
        filePollIntervalMs: 200,
      });
      const good = new X509Certificate(pki.server.cert).fingerprint256;
      const served = () => servedFingerprint(c.server.port, pki.ca.cert, { cert: bot.cert, key: bot.key });
      const refusals = () => captured.lines.filter((l: LogLine) => l.msg.startsWith("new TLS files refused")).length;

      const steps: [string, () => Promise<void>][] = [
        ["garbage in the certificate file", () => replaceFile(certFile, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")],
        ["the certificate file deleted", () => rm(certFile)],
        ["a key that is not the certificate's", async () => {
          await replaceFile(certFile, pki.server.cert);
          await replaceFile(keyFile, bot.key);
        }],
        ["garbage in the client CA file", async () => {
          await replaceFile(keyFile, pki.server.key);
          await replaceFile(caFile, "nonsense");
        }],
      ];
      for (const [what, step] of steps) {
        const before = refusals();
        await step();
        await waitFor(() => refusals() > before, { what: `the refusal of ${what}`, timeoutMs: 10_000 });
        expect(await served(), what).to.equal(good);
        const r = await unaryOutcome(c.connect({ ca: pki.ca.cert, cert: bot.cert, key: bot.key }), "getSummary", {});
        expect(r.code, `${what}: ${r.details}`).to.equal(status.OK);
      }
      const refused = captured.lines.filter((l) => l.msg.startsWith("new TLS files refused")).map((l) => l.err as string);
      expect(refused.join("\n")).to.include("is not the key of the certificate");

      // Good files again: the next certificate is taken.
      const next = await pki.anotherServer("after-bad");
      await replaceFile(caFile, pki.ca.cert);
      await replaceFile(keyFile, next.key);
      await replaceFile(certFile, next.cert);
      const after = new X509Certificate(next.cert).fingerprint256;
      await waitFor(async () => (await served()) === after, { what: "the good files to be taken", timeoutMs: 15_000, intervalMs: 50 });
      expect((await readFile(certFile, "utf8")).length).to.be.greaterThan(0);
    } finally {
      await removeRot();
    }
  });
});
