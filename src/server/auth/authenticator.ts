/**
 * Who is calling (SPEC §8). `Authenticator.authenticate` turns a call's credentials into a
 * Principal, or throws UnauthenticatedError with one fixed message whatever went wrong (the real
 * reason goes to the debug log only, so that a caller cannot probe which part was wrong).
 *
 * The rules, in order:
 * - No auth file and no mTLS: every caller is `anonymous` with every role (a token is ignored).
 * - A bearer token, when sent, decides who the caller is: its sha256 is compared, in constant
 *   time, with every hash in the file; failing that, when `jwt` is configured and the token has
 *   the shape of a compact JWS (three base64url parts), it is verified as a JWT. Anything else is
 *   refused — even with a good client certificate, since a caller that sends a token means it.
 * - Otherwise, under mTLS, the client certificate does: with an auth file, the principal whose
 *   `certificate` names the certificate's common name or one of its URI SANs (two principals
 *   matching one certificate is refused as ambiguous); with no auth file, a principal named by
 *   the common name, holding every role.
 *
 * The auth file (and its JWKS file) is re-read when it changes: `fs.watch` on the directories
 * reacts at once, and a periodic stat catches what watching misses (editors and Kubernetes
 * configmaps replace files by renaming, which some platforms do not report). A new file that is
 * invalid is refused with a logged error; the last good one stays in force.
 */
import { timingSafeEqual } from "node:crypto";
import { resolve } from "node:path";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors as jose,
  jwtVerify,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type RemoteJWKSet,
} from "jose";
import { UnauthenticatedError, UnavailableError } from "../../domain/errors.js";
import {
  ANONYMOUS,
  isRole,
  principal,
  principalNameProblem,
  ROLES,
  type Principal,
  type Role,
} from "../../domain/principal.js";
import type { Logger } from "../../log.js";
import { FileWatch } from "./file_watch.js";
import { AuthFileError, loadAuthFile, type AuthSettings, type JwtSettings, type LoadedAuth } from "./auth_file.js";
import type { Credentials, Peer } from "./peer.js";
import { tokenDigest } from "./tokens.js";

export { AuthFileError };

/** How callers are identified: see the module comment. */
export type AuthMode = "anonymous" | "certificate" | "file";

/** Leeway on `exp` and `nbf`, for clocks that disagree a little. */
export const JWT_CLOCK_TOLERANCE_SECONDS = 30;

/** A bearer token longer than this is refused unread (gRPC caps headers near 8 KiB anyway). */
const MAX_TOKEN_LENGTH = 16 * 1024;

/** A compact JWS: header.payload.signature, each base64url (the signature is empty for `alg: none`). */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** How a remote JWKS is fetched and kept (milliseconds). */
export interface RemoteKeySetTimings {
  /** One fetch gives up after this long. */
  timeoutMs: number;
  /** At most one fetch per this long, whatever unknown key ids callers send. */
  cooldownMs: number;
  /** The key set is fetched again when it is this old, so that a key the issuer removed stops working. */
  maxAgeMs: number;
}

export const DEFAULT_REMOTE_KEY_SET_TIMINGS: RemoteKeySetTimings = { timeoutMs: 5_000, cooldownMs: 30_000, maxAgeMs: 600_000 };

export interface AuthenticatorOptions {
  /** `COUNCIL_AUTH_FILE`; unset: no principals, see AuthMode. */
  authFile?: string;
  log: Logger;
  /**
   * The server requires client certificates (`COUNCIL_TLS_CLIENT_CA`) and the TLS handshake
   * verifies them against that CA (grpc-js `ServerCredentials.createSsl(ca, pairs, true)`: the
   * `true` is what makes it verify). Certificates are only trusted as identities when this is
   * set, since an unverified certificate could claim any name.
   */
  mtls: boolean;
  /** How often the files are stat'ed for changes that watching missed (default 2 s). */
  pollIntervalMs?: number;
  /** Watch the files' directories (default true; tests turn it off to try the periodic check alone). */
  watch?: boolean;
  remoteKeySet?: Partial<RemoteKeySetTimings>;
}

/** A refusal, with the reason for the debug log; it becomes UnauthenticatedError. */
class Refused extends Error {}

/** The JWKS URL could not be fetched and no earlier copy exists; it becomes UnavailableError. */
class KeySetUnreachable extends Error {}

/**
 * A remote JWKS (jose's createRemoteJWKSet: bounded fetches, a cooldown against floods of
 * unknown key ids) that keeps answering from the last set it fetched while the issuer is
 * unreachable, so that an identity provider's blip does not lock every caller out; it retries
 * at most once per cooldown meanwhile. Only when it has never fetched a set are calls refused,
 * with UNAVAILABLE (the credentials may well be good).
 */
class RemoteKeySet {
  private readonly remote: RemoteJWKSet;
  private failedAt = Number.NEGATIVE_INFINITY;
  private stale?: { source: string; keys: JWTVerifyGetKey };

  constructor(
    readonly url: URL,
    private readonly timings: RemoteKeySetTimings,
    private readonly log: Logger,
  ) {
    this.remote = createRemoteJWKSet(url, {
      timeoutDuration: timings.timeoutMs,
      cooldownDuration: timings.cooldownMs,
      cacheMaxAge: timings.maxAgeMs,
    });
  }

  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    if (Date.now() - this.failedAt < this.timings.cooldownMs) return this.fromStale(header, token);
    try {
      return await this.remote(header, token);
    } catch (err) {
      // These are verdicts on the token (no key with its kid and alg), not failures to fetch.
      if (err instanceof jose.JWKSNoMatchingKey || err instanceof jose.JWKSMultipleMatchingKeys) throw err;
      if (err instanceof jose.JOSENotSupported) throw err;
      this.failedAt = Date.now();
      this.log.warn({ jwksUrl: this.url.href, err: (err as Error).message }, "JWT key set cannot be fetched; using the last one fetched, if any");
      return this.fromStale(header, token);
    }
  };

  private fromStale: JWTVerifyGetKey = (header, token) => {
    const jwks = this.remote.jwks();
    if (!jwks) throw new KeySetUnreachable(`JWT key set ${this.url.href} cannot be fetched`);
    const source = JSON.stringify(jwks);
    if (this.stale?.source !== source) this.stale = { source, keys: createLocalJWKSet(jwks) };
    return this.stale.keys(header, token);
  };
}

class JwtVerifier {
  constructor(
    readonly settings: JwtSettings,
    private readonly keys: JWTVerifyGetKey,
    readonly remote?: RemoteKeySet,
  ) {}

  async verify(token: string): Promise<Principal> {
    const options = {
      issuer: this.settings.issuer,
      audience: this.settings.audience,
      algorithms: this.settings.algorithms,
      clockTolerance: JWT_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ["exp"],
    };
    let payload: JWTPayload;
    try {
      try {
        ({ payload } = await jwtVerify(token, this.keys, options));
      } catch (err) {
        // A token without a kid, and a set with several keys of its algorithm: jose hands over the
        // candidates (as many as the set holds) and leaves trying them to the caller.
        if (!(err instanceof jose.JWKSMultipleMatchingKeys)) throw err;
        payload = await this.verifyWithEach(token, err as jose.JWKSMultipleMatchingKeys & AsyncIterable<CryptoKey>, options);
      }
    } catch (err) {
      if (err instanceof KeySetUnreachable) throw err;
      const code = (err as { code?: string }).code;
      throw new Refused(`JWT refused: ${(err as Error).message}${code ? ` (${code})` : ""}`);
    }
    const name = payload[this.settings.nameClaim];
    if (typeof name !== "string") throw new Refused(`JWT refused: claim ${this.settings.nameClaim} is not a string`);
    const problem = principalNameProblem(name);
    if (problem) throw new Refused(`JWT refused: claim ${this.settings.nameClaim} ${problem}`);
    return principal(name, rolesFromClaim(payload[this.settings.rolesClaim]));
  }

  private async verifyWithEach(
    token: string,
    candidates: AsyncIterable<CryptoKey>,
    options: Parameters<typeof jwtVerify>[2],
  ): Promise<JWTPayload> {
    for await (const key of candidates) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (err) {
        if (err instanceof jose.JWSSignatureVerificationFailed) continue;
        throw err;
      }
    }
    throw new jose.JWSSignatureVerificationFailed();
  }
}

/**
 * The Council roles a JWT grants: its roles claim as a list of strings, or one string of
 * space-separated words (the OAuth `scope` style). Names that are not Council roles are ignored,
 * since an identity provider's tokens often carry roles for other services too. A token with no
 * Council role authenticates, and is then denied each call with PERMISSION_DENIED naming the
 * role needed, which tells the caller what to fix.
 */
function rolesFromClaim(claim: unknown): Role[] {
  const words = typeof claim === "string" ? claim.split(" ") : Array.isArray(claim) ? claim : [];
  return words.filter(isRole);
}

/** Everything one version of the auth file says, ready for lookups. */
interface Snapshot {
  loaded?: LoadedAuth;
  tokens: { digest: Buffer; principal: Principal }[];
  byCommonName: Map<string, Principal>;
  byUriSan: Map<string, Principal>;
  jwt?: JwtVerifier;
}

const EMPTY: Snapshot = { tokens: [], byCommonName: new Map(), byUriSan: new Map() };

function bearerToken(authorization: string | readonly string[]): string {
  const values = typeof authorization === "string" ? [authorization] : authorization;
  if (values.length !== 1) throw new Refused(`${values.length} authorization headers`);
  const value = values[0]!;
  if (value.length > MAX_TOKEN_LENGTH) throw new Refused("authorization header too long");
  const m = /^bearer +([^\s]+) *$/i.exec(value);
  if (!m) throw new Refused("authorization header is not `Bearer <token>`");
  return m[1]!;
}

export class Authenticator {
  private snapshot: Snapshot = EMPTY;
  /** Re-reads the auth file (and its JWKS file) when they change; undefined without an auth file. */
  private fileWatch?: FileWatch;
  private readonly authFile?: string;
  private readonly log: Logger;
  private readonly timings: RemoteKeySetTimings;

  private constructor(
    options: AuthenticatorOptions,
    readonly mode: AuthMode,
  ) {
    if (options.authFile !== undefined) this.authFile = resolve(options.authFile);
    this.log = options.log;
    this.timings = { ...DEFAULT_REMOTE_KEY_SET_TIMINGS, ...options.remoteKeySet };
  }

  /**
   * Loads the auth file, if any, and starts watching it. An invalid or unreadable file throws
   * AuthFileError, naming the problem (the server exits with status 2).
   */
  static async open(options: AuthenticatorOptions): Promise<Authenticator> {
    const mode: AuthMode = options.authFile !== undefined ? "file" : options.mtls ? "certificate" : "anonymous";
    const a = new Authenticator(options, mode);
    if (a.authFile === undefined) return a;
    const authFile = a.authFile;
    a.fileWatch = new FileWatch({
      paths: () => a.files(),
      reload: () => a.reload(),
      log: a.log,
      what: "auth file",
      pollIntervalMs: options.pollIntervalMs,
      watch: options.watch,
    });
    await a.fileWatch.read(async () => a.apply(await loadAuthFile(authFile)));
    a.fileWatch.start();
    return a;
  }

  /** How many times the files have been checked for a change (watch events and the periodic check). */
  get checks(): number {
    return this.fileWatch?.checks ?? 0;
  }

  /** False only when every caller is `anonymous` (no auth file, no mTLS). */
  get requiresCredentials(): boolean {
    return this.mode !== "anonymous";
  }

  /**
   * The caller's principal. Throws UnauthenticatedError (one message, whatever the reason), or
   * UnavailableError when a JWT cannot be checked because the remote key set is unreachable.
   */
  async authenticate(credentials: Credentials): Promise<Principal> {
    if (this.mode === "anonymous") return ANONYMOUS;
    try {
      return await this.identify(credentials);
    } catch (err) {
      if (err instanceof Refused) {
        this.log.debug({ reason: err.message }, "authentication refused");
        throw new UnauthenticatedError();
      }
      if (err instanceof KeySetUnreachable) {
        this.log.warn({ reason: err.message }, "authentication unavailable");
        throw new UnavailableError("credentials cannot be verified now; retry later");
      }
      throw err;
    }
  }

  private async identify(credentials: Credentials): Promise<Principal> {
    const s = this.snapshot;
    if (credentials.authorization !== undefined) {
      const token = bearerToken(credentials.authorization);
      if (this.mode !== "file") throw new Refused("a bearer token was sent, but no auth file is configured");
      const digest = tokenDigest(token);
      let found: Principal | undefined;
      // Every stored hash is compared, with no early exit, so the time taken tells nothing.
      for (const t of s.tokens) if (timingSafeEqual(t.digest, digest)) found = t.principal;
      if (found) return found;
      if (s.jwt && JWT_SHAPE.test(token)) return s.jwt.verify(token);
      throw new Refused(s.jwt ? "unknown token, and not a JWT" : "unknown token");
    }
    if (!credentials.peer) throw new Refused("no bearer token and no client certificate");
    return this.byCertificate(credentials.peer);
  }

  private byCertificate(peer: Peer): Principal {
    if (this.mode === "certificate") {
      if (peer.commonName === undefined) throw new Refused("client certificate has no (single) common name");
      const problem = principalNameProblem(peer.commonName);
      if (problem) throw new Refused(`client certificate common name ${problem}`);
      return principal(peer.commonName, ROLES);
    }
    const s = this.snapshot;
    const matches = new Set<Principal>();
    for (const uri of peer.uriSans) {
      const p = s.byUriSan.get(uri);
      if (p) matches.add(p);
    }
    if (peer.commonName !== undefined) {
      const p = s.byCommonName.get(peer.commonName);
      if (p) matches.add(p);
    }
    if (matches.size === 1) return [...matches][0]!;
    if (matches.size === 0) {
      throw new Refused(`client certificate (CN ${JSON.stringify(peer.commonName)}, URIs ${JSON.stringify(peer.uriSans)}) names no principal`);
    }
    throw new Refused(`client certificate names ${matches.size} principals: ${[...matches].map((p) => p.name).join(", ")}`);
  }

  /**
   * Re-reads the auth file (and its JWKS file) now. Resolves true when the file on disk is in
   * force afterwards, false when it was refused (logged; the last good one stays).
   */
  reload(): Promise<boolean> {
    return this.fileWatch ? this.fileWatch.read(() => this.reloadNow()) : Promise.resolve(true);
  }

  /** Stops watching. Authentication keeps answering from the last file loaded. */
  close(): void {
    this.fileWatch?.close();
  }

  private async reloadNow(): Promise<boolean> {
    if (this.authFile === undefined) return true;
    let loaded: LoadedAuth;
    try {
      loaded = await loadAuthFile(this.authFile);
    } catch (err) {
      this.log.error({ authFile: this.authFile, err: (err as Error).message }, "new auth file refused; the last good one stays in force");
      return false;
    }
    if (loaded.digest === this.snapshot.loaded?.digest) return true;
    this.apply(loaded);
    return true;
  }

  private apply(loaded: LoadedAuth): void {
    const settings: AuthSettings = loaded.settings;
    const next: Snapshot = { loaded, tokens: [], byCommonName: new Map(), byUriSan: new Map() };
    for (const entry of settings.principals) {
      const p = principal(entry.name, entry.roles);
      for (const digest of entry.tokens) next.tokens.push({ digest, principal: p });
      if (entry.certificate?.kind === "common_name") next.byCommonName.set(entry.certificate.value, p);
      if (entry.certificate?.kind === "uri_san") next.byUriSan.set(entry.certificate.value, p);
    }
    if (settings.jwt) next.jwt = this.jwtVerifier(settings.jwt, loaded.jwks);
    const first = this.snapshot === EMPTY;
    this.snapshot = next;
    this.log.info(
      { authFile: this.authFile, principals: settings.principals.length, jwt: settings.jwt !== undefined },
      first ? "auth file loaded" : "auth file reloaded",
    );
  }

  private jwtVerifier(settings: JwtSettings, jwks: JSONWebKeySet | undefined): JwtVerifier {
    if (settings.jwksUrl) {
      // The same URL keeps its fetched keys across reloads of the auth file.
      const previous = this.snapshot.jwt?.remote;
      const remote =
        previous && previous.url.href === settings.jwksUrl.href ? previous : new RemoteKeySet(settings.jwksUrl, this.timings, this.log);
      return new JwtVerifier(settings, remote.getKey, remote);
    }
    return new JwtVerifier(settings, createLocalJWKSet(jwks!));
  }

  private files(): string[] {
    const jwksFile = this.snapshot.loaded?.settings.jwt?.jwksFile;
    return jwksFile === undefined ? [this.authFile!] : [this.authFile!, jwksFile];
  }
}
