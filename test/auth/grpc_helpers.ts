/**
 * Pieces shared by the through-gRPC auth tests (grpc_*.test.ts): a PKI made with openssl for the
 * test (never checked-in keys), an auth file written with token hashes, calls that resolve with
 * their status, and the certificate a new TLS connection is served.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { stringify } from "yaml";
import { tokenHash } from "../../src/server/auth/tokens.js";
import type { CouncilServiceClient } from "../../src/gen/council/v1/council_service.js";
import { within } from "../support/wait.js";
import { makeCa, makeCert, type Pem } from "./certs.js";

export interface Pki {
  dir: string;
  ca: Pem;
  /** Server certificate for localhost and 127.0.0.1, signed by `ca`. */
  server: Pem;
  /** A certificate `ca` signs for a client (clientAuth), with the subject `/CN=<cn>`. */
  client(name: string, cn: string, altNames?: string[]): Promise<Pem>;
  /** A new server certificate signed by `ca` (for rotation). */
  anotherServer(name: string): Promise<Pem>;
}

/** Makes a CA and a server certificate in `dir`; openssl runs one at a time (they share a serial file). */
export async function makePki(dir: string): Promise<Pki> {
  const ca = await makeCa(dir);
  const serverCert = (name: string) =>
    makeCert(dir, name, ca, { subject: "/CN=localhost", altNames: ["DNS.1 = localhost", "IP.1 = 127.0.0.1"] });
  const server = await serverCert("server");
  return {
    dir,
    ca,
    server,
    client: (name, cn, altNames) => makeCert(dir, name, ca, { subject: `/CN=${cn}`, usage: "clientAuth", altNames }),
    anotherServer: serverCert,
  };
}

export interface PrincipalSpec {
  name: string;
  roles: string[];
  tokens?: string[];
  certificate?: { common_name: string } | { uri_san: string };
}

/** The auth file's document for these principals (tokens become their hashes). */
export function authDocument(principals: PrincipalSpec[], jwt?: object): object {
  return {
    principals: principals.map((p) => ({
      name: p.name,
      roles: p.roles,
      ...(p.tokens ? { tokens: p.tokens.map(tokenHash) } : {}),
      ...(p.certificate ? { certificate: p.certificate } : {}),
    })),
    ...(jwt ? { jwt } : {}),
  };
}

export async function writeAuthFile(path: string, principals: PrincipalSpec[], jwt?: object): Promise<void> {
  await writeFile(path, stringify(authDocument(principals, jwt)));
}

export function authFileIn(dir: string): string {
  return join(dir, "auth.yaml");
}

/** How a call ended: OK, or its status code and message. */
export interface Outcome<T = unknown> {
  code: status;
  details: string;
  response?: T;
}

/** The generated client's unary methods, by name. */
export type UnaryName =
  | "getDecision"
  | "listDecisions"
  | "recordOutcome"
  | "getSummary"
  | "listLessons"
  | "listReviewers"
  | "resolveDecision";

/** Calls a unary method (deadline 10 s) and resolves with how it ended, never rejecting. */
export function unaryOutcome(client: CouncilServiceClient, method: UnaryName, request: object, metadata = new Metadata()): Promise<Outcome> {
  return new Promise((resolve) => {
    const fn = client[method] as unknown as (
      req: object,
      md: Metadata,
      options: object,
      cb: (err: ServiceError | null, res: unknown) => void,
    ) => unknown;
    fn.call(client, request, metadata, { deadline: Date.now() + 10_000 }, (err, res) =>
      resolve(err ? { code: err.code, details: err.details } : { code: status.OK, details: "", response: res }),
    );
  });
}

/** Reviews `request` (deadline 10 s) and resolves with how the stream ended, and its events. */
export function reviewOutcome(client: CouncilServiceClient, request: object): Promise<Outcome<unknown[]>> {
  return new Promise((resolve) => {
    const events: unknown[] = [];
    const stream = client.reviewSuggestion({ suggestion: undefined, requestId: "", dryRun: false, supersedes: "", ...request }, { deadline: Date.now() + 10_000 });
    stream.on("data", (e) => events.push(e));
    stream.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details, response: events }));
    stream.on("end", () => resolve({ code: status.OK, details: "", response: events }));
  });
}

/**
 * Opens a watch and resolves once it is live (response headers), or with how it ended when it
 * ended first. The caller cancels a live watch.
 */
export function watchOutcome(client: CouncilServiceClient): Promise<Outcome & { cancel: () => void }> {
  const stream = client.watchDecisions({ decisionType: 0, includeVotes: false, includeUpdates: false });
  const cancel = () => stream.cancel();
  stream.on("data", () => undefined);
  const ended = new Promise<Outcome & { cancel: () => void }>((resolve) => {
    stream.on("metadata", () => resolve({ code: status.OK, details: "live", cancel }));
    stream.on("error", (err: ServiceError) => resolve({ code: err.code, details: err.details, cancel }));
    stream.on("end", () => resolve({ code: status.OK, details: "ended", cancel }));
  });
  return within(ended, { what: "the watch to go live or end", timeoutMs: 10_000 });
}

/**
 * The sha256 fingerprint of the certificate a NEW TLS connection to `port` is served (node's
 * colon-separated hex), verified against `ca` for the name localhost.
 */
export function servedFingerprint(port: number, ca: string, options: { cert?: string; key?: string } = {}): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const socket = connectTls({ host: "127.0.0.1", port, ca, servername: "localhost", ALPNProtocols: ["h2"], ...options });
      socket.once("secureConnect", () => {
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        socket.destroy();
        resolve(fingerprint);
      });
      socket.once("error", (err) => {
        socket.destroy();
        reject(err);
      });
    }),
    { what: "a TLS handshake", timeoutMs: 10_000 },
  );
}

/** The `call` log lines of `method` (from test/auth/helpers.ts captureLog). */
export function callLines(lines: { msg: string; [key: string]: unknown }[], method?: string) {
  return lines.filter((l) => l.msg.startsWith("call") && (method === undefined || l.method === method));
}
