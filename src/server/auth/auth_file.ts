/**
 * The auth file (`COUNCIL_AUTH_FILE`, SPEC §8): principals with their roles, token hashes and
 * certificate identities, and optionally how to verify JWTs. `parseAuthText` validates it and
 * names the first problem by its path (e.g. `principals[1].tokens[0]`), as the policy loader does;
 * `loadAuthFile` reads it, and the JWKS file it names, from disk.
 *
 * Decisions worth knowing (the README says them too):
 * - JWTs are verified with public keys only. `algorithms` may list RS*, PS*, ES*, EdDSA/Ed25519
 *   (the default is all of them); `none` and the HMAC algorithms HS* are refused in the file, and
 *   a JWKS that holds a private or symmetric key is refused. A shared secret belongs in `tokens`
 *   (as a hash), never in a key set: an HS256 token verified with a key that is public by design
 *   is the classic algorithm-confusion forgery.
 * - A principal with no tokens and no certificate is allowed: emptying its `tokens` is how an
 *   operator revokes it, and refusing that file would keep the revoked token alive.
 * - `jwks_url` must be https (http only to a loopback host, for tests and sidecars): a key set
 *   fetched in clear could be swapped by anyone on the path.
 * - A relative `jwks_file` is read from the auth file's directory.
 */
import { createHash, createPublicKey, type JsonWebKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import type { JSONWebKeySet, JWK } from "jose";
import { isRole, principalNameProblem, ROLES, type Role } from "../../domain/principal.js";
import { parseTokenHash } from "./tokens.js";
import { DocumentReader } from "../../domain/document_reader.js";

/** The auth file (or its JWKS) is invalid or unreadable; the message names the file and the path. */
export class AuthFileError extends Error {
  override name = "AuthFileError";
}

/** The JWS algorithms Council accepts: signatures made with a private key, checked with a public one. */
export const ASYMMETRIC_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;
export type JwsAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

export type CertificateIdentity = { kind: "common_name"; value: string } | { kind: "uri_san"; value: string };

export interface PrincipalEntry {
  name: string;
  roles: Role[];
  /** sha256 digests (32 bytes each) of the principal's bearer tokens. */
  tokens: Buffer[];
  certificate?: CertificateIdentity;
}

export interface JwtSettings {
  /** Absolute path of a JWKS file; exactly one of `jwksFile` and `jwksUrl` is set. */
  jwksFile?: string;
  jwksUrl?: URL;
  issuer: string;
  /** A token is accepted when its `aud` names any of these. */
  audience: string[];
  nameClaim: string;
  rolesClaim: string;
  algorithms: JwsAlgorithm[];
}

export interface AuthSettings {
  principals: PrincipalEntry[];
  jwt?: JwtSettings;
}

export const DEFAULT_NAME_CLAIM = "sub";
export const DEFAULT_ROLES_CLAIM = "council_roles";

type Json = unknown;

/** Reads the auth file; every refusal is an AuthFileError naming the path of the problem. */
const authReader = () => new DocumentReader("", (message) => new AuthFileError(message), "auth file");

function readRoles(r: DocumentReader, value: Json): Role[] {
  const roles = r.list(value, (ri: DocumentReader, v): Role => {
    if (!isRole(v)) ri.fail(`${JSON.stringify(v)} is not one of ${ROLES.join(", ")}`);
    return v;
  });
  if (roles.length === 0) r.fail(`must name at least one role (${ROLES.join(", ")})`);
  roles.forEach((role, i) => {
    if (roles.indexOf(role) !== i) r.at(i).fail(`${role} appears twice`);
  });
  return roles;
}

function readCertificate(r: DocumentReader, value: Json): CertificateIdentity {
  const o = r.object(value, ["common_name", "uri_san"]);
  const given = (["common_name", "uri_san"] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) r.fail("must give exactly one of common_name, uri_san");
  const kind = given[0]!;
  return { kind, value: r.at(kind).string(o[kind], { nonEmpty: true }) };
}

function readPrincipal(r: DocumentReader, value: Json): PrincipalEntry {
  const o = r.object(value, ["name", "roles", "tokens", "certificate"]);
  const name = r.at("name").string(o.name, { nonEmpty: true });
  const problem = principalNameProblem(name);
  if (problem) r.at("name").fail(problem);
  const entry: PrincipalEntry = {
    name,
    roles: readRoles(r.at("roles"), o.roles),
    tokens: r.at("tokens").list(o.tokens ?? [], (ri: DocumentReader, v): Buffer => {
      const digest = typeof v === "string" ? parseTokenHash(v) : undefined;
      if (!digest) ri.fail('must be "sha256:" followed by the 64 hex digits of the token\'s sha256 (never the token itself)');
      return digest;
    }),
  };
  if (o.certificate !== undefined) entry.certificate = readCertificate(r.at("certificate"), o.certificate);
  return entry;
}

function readAlgorithm(r: DocumentReader, value: Json): JwsAlgorithm {
  if (typeof value === "string" && value.toLowerCase() === "none") r.fail("none is never accepted: a token must be signed");
  if (typeof value === "string" && /^HS\d+$/i.test(value)) {
    r.fail(
      `${value} is a shared-secret algorithm and is never accepted: a JWKS holds public keys ` +
        "(for a shared secret, give the caller a token and list its hash under tokens)",
    );
  }
  if (typeof value !== "string" || !(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(value)) {
    r.fail(`${JSON.stringify(value)} is not one of ${ASYMMETRIC_ALGORITHMS.join(", ")}`);
  }
  return value as JwsAlgorithm;
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function readJwt(r: DocumentReader, value: Json, baseDir: string): JwtSettings {
  const o = r.object(value, ["jwks_file", "jwks_url", "issuer", "audience", "name_claim", "roles_claim", "algorithms"]);
  if ((o.jwks_file === undefined) === (o.jwks_url === undefined)) r.fail("must give exactly one of jwks_file, jwks_url");
  const audience =
    typeof o.audience === "string" || o.audience === undefined
      ? [r.at("audience").string(o.audience, { nonEmpty: true })]
      : r.at("audience").list(o.audience, (ri, v) => ri.string(v, { nonEmpty: true }));
  if (audience.length === 0) r.at("audience").fail("must name at least one audience");
  const algorithms =
    o.algorithms === undefined ? [...ASYMMETRIC_ALGORITHMS] : r.at("algorithms").list(o.algorithms, readAlgorithm);
  if (algorithms.length === 0) r.at("algorithms").fail("must name at least one algorithm");
  const jwt: JwtSettings = {
    issuer: r.at("issuer").string(o.issuer, { nonEmpty: true }),
    audience,
    nameClaim: o.name_claim === undefined ? DEFAULT_NAME_CLAIM : r.at("name_claim").string(o.name_claim, { nonEmpty: true }),
    rolesClaim: o.roles_claim === undefined ? DEFAULT_ROLES_CLAIM : r.at("roles_claim").string(o.roles_claim, { nonEmpty: true }),
    algorithms,
  };
  if (o.jwks_file !== undefined) jwt.jwksFile = resolve(baseDir, r.at("jwks_file").string(o.jwks_file, { nonEmpty: true }));
  if (o.jwks_url !== undefined) {
    const ru = r.at("jwks_url");
    const text = ru.string(o.jwks_url, { nonEmpty: true });
    const url = URL.canParse(text) ? new URL(text) : ru.fail("must be an absolute URL");
    if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.hostname))) {
      ru.fail("must be https (http only to localhost): a key set fetched in clear could be replaced on the way");
    }
    jwt.jwksUrl = url;
  }
  return jwt;
}

/** Validates an auth document (already parsed from YAML or JSON). */
export function parseAuthDocument(document: Json, baseDir: string): AuthSettings {
  const r = authReader();
  const o = r.object(document, ["principals", "jwt"]);
  const principals = r.at("principals").list(o.principals ?? [], readPrincipal);
  const settings: AuthSettings = { principals };
  if (o.jwt !== undefined) settings.jwt = readJwt(r.at("jwt"), o.jwt, baseDir);
  if (principals.length === 0 && !settings.jwt) r.fail("must name at least one principal, or configure jwt");

  // One name, one token and one certificate identity each name exactly one principal.
  const names = new Map<string, number>();
  const tokens = new Map<string, string>();
  const certificates = new Map<string, number>();
  principals.forEach((p, i) => {
    const at = r.at("principals").at(i);
    const earlier = names.get(p.name);
    if (earlier !== undefined) at.at("name").fail(`${JSON.stringify(p.name)} appears twice (also principals[${earlier}])`);
    names.set(p.name, i);
    p.tokens.forEach((digest, j) => {
      const key = digest.toString("hex");
      const first = tokens.get(key);
      if (first !== undefined) at.at("tokens").at(j).fail(`the same hash as ${first}: a token must name one principal`);
      tokens.set(key, `principals[${i}].tokens[${j}]`);
    });
    if (p.certificate) {
      const key = `${p.certificate.kind}\u0000${p.certificate.value}`;
      const first = certificates.get(key);
      if (first !== undefined) {
        at.at("certificate").at(p.certificate.kind).fail(`${JSON.stringify(p.certificate.value)} is already the certificate of principals[${first}]`);
      }
      certificates.set(key, i);
    }
  });
  return settings;
}

/** Parses an auth file's text (JSON, or YAML, which includes JSON) and validates it. */
export function parseAuthText(text: string, baseDir: string): AuthSettings {
  let document: unknown;
  try {
    document = parseYaml(text, { uniqueKeys: true, strict: true });
  } catch (err) {
    throw new AuthFileError(`not valid JSON or YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  return parseAuthDocument(document, baseDir);
}

/** Members that only a private or symmetric JWK has. */
const SECRET_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** Validates a JWKS for verifying JWTs: public RSA, EC or OKP keys that node can import. */
export function parseJwks(text: string): JSONWebKeySet {
  const r = authReader();
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (err) {
    throw new AuthFileError(`not valid JSON: ${(err as Error).message}`);
  }
  const o = r.object(document, ["keys"]);
  const keys = r.at("keys").list(o.keys, (rk: DocumentReader, v): JWK => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) rk.fail("must be an object");
    const jwk = v as JWK;
    if (jwk.kty !== "RSA" && jwk.kty !== "EC" && jwk.kty !== "OKP") {
      rk.at("kty").fail(`${JSON.stringify(jwk.kty)} is not a public-key type (RSA, EC, OKP)`);
    }
    const secret = SECRET_MEMBERS.find((m) => m in jwk);
    if (secret) rk.fail(`holds a private key ("${secret}"): a JWKS for verification holds public keys only`);
    if (jwk.kid !== undefined && typeof jwk.kid !== "string") rk.at("kid").fail("must be a string");
    let bits: number | undefined;
    try {
      bits = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" }).asymmetricKeyDetails?.modulusLength;
    } catch (err) {
      rk.fail(`is not a usable public key (${(err as Error).message})`);
    }
    if (jwk.kty === "RSA" && bits !== undefined && bits < 2048) rk.fail(`is an RSA key of ${bits} bits; at least 2048 are needed`);
    return jwk;
  });
  if (keys.length === 0) r.at("keys").fail("must hold at least one key");
  return { keys };
}

/** A validated auth file, with the key set it names when that is a file. */
export interface LoadedAuth {
  settings: AuthSettings;
  jwks?: JSONWebKeySet;
  /** sha256 of the files' bytes: equal digests mean nothing changed. */
  digest: string;
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new AuthFileError(`${what} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Reads and validates the auth file at `path` and the JWKS file it names; throws AuthFileError. */
export async function loadAuthFile(path: string): Promise<LoadedAuth> {
  const what = `auth file ${path}`;
  const text = await readText(path, what);
  const hash = createHash("sha256").update(text);
  let settings: AuthSettings;
  try {
    settings = parseAuthText(text, dirname(resolve(path)));
  } catch (err) {
    throw err instanceof AuthFileError ? new AuthFileError(`${what}: ${err.message}`) : err;
  }
  const loaded: LoadedAuth = { settings, digest: "" };
  const jwksFile = settings.jwt?.jwksFile;
  if (jwksFile !== undefined) {
    const where = `${what}: jwt.jwks_file ${jwksFile}`;
    const jwksText = await readText(jwksFile, where);
    hash.update("\u0000").update(jwksText);
    try {
      loaded.jwks = parseJwks(jwksText);
    } catch (err) {
      throw err instanceof AuthFileError ? new AuthFileError(`${where}: ${err.message}`) : err;
    }
  }
  loaded.digest = hash.digest("hex");
  return loaded;
}
