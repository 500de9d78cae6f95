/**
 * Opaque page tokens (AIP-158). A token wraps a store cursor together with the listing it belongs
 * to and the filter it was issued for, signed with HMAC-SHA256 under a key that every replica of
 * the keyspace shares (`Store.pageTokenKey`) and nobody else has. A token the server did not issue
 * (whatever its checksum), one from another keyspace, or anything malformed is INVALID_ARGUMENT
 * naming page_token; one reused with another filter too, with a message saying so.
 *
 * Form: `<base64url of {"v":2,"s":scope digest,"c":cursor}>.<base64url of its HMAC-SHA256>`. The
 * scope is carried as a digest, so that a token stays short whatever the filter (a suggestion id
 * of 256 escaped characters would otherwise make a token longer than the server accepts back).
 * Version 1 (an unkeyed sha256 checksum, which anybody could recompute) is no longer accepted.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import { checkString } from "../domain/validate.js";

const FIELD = "page_token";
const VERSION = 2;
const SHAPE = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{43})$/;
const NOT_ISSUED = "was not issued by this service";

/** 128 bits of the scope's sha256: enough to tell one listing and filter from another. */
const scopeDigest = (scope: string) => createHash("sha256").update(scope).digest("base64url").slice(0, 22);

export class PageTokens {
  constructor(private readonly key: Buffer) {
    if (key.length < 16) throw new RangeError("a page-token key needs at least 16 bytes");
  }

  private sign(body: string): Buffer {
    return createHmac("sha256", this.key).update(`council-page-token:${body}`).digest();
  }

  /** Wraps `cursor` for the listing `scope` (e.g. "decisions" plus its filter); "" for no cursor. */
  issue(scope: string, cursor: string | undefined): string {
    if (cursor === undefined) return "";
    const body = Buffer.from(JSON.stringify({ v: VERSION, s: scopeDigest(scope), c: cursor })).toString("base64url");
    return `${body}.${this.sign(body).toString("base64url")}`;
  }

  /** The cursor inside a token issued for `scope`; undefined for the empty token. */
  read(scope: string, token: string): string | undefined {
    if (token === "") return undefined;
    checkString(FIELD, token, LIMITS.pageTokenBytes);
    const m = SHAPE.exec(token);
    if (!m) throw new InvalidArgumentError(FIELD, NOT_ISSUED);
    const [, body, mac] = m as unknown as [string, string, string];
    // Compared as text (base64url decoding ignores the last character's spare bits, so comparing
    // bytes would accept several spellings of one signature), in constant time, so that a caller
    // cannot find a valid signature byte by byte.
    const given = Buffer.from(mac, "ascii");
    const expected = Buffer.from(this.sign(body).toString("base64url"), "ascii");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new InvalidArgumentError(FIELD, NOT_ISSUED);
    // Only this service signs, so what follows holds for every token that got here; it is still
    // checked, so that a bug or an old key can never turn into anything but INVALID_ARGUMENT.
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
    } catch {
      throw new InvalidArgumentError(FIELD, NOT_ISSUED);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError(FIELD, NOT_ISSUED);
    const { v, s, c } = parsed as { v?: unknown; s?: unknown; c?: unknown };
    if (v !== VERSION || typeof s !== "string" || typeof c !== "string" || c === "") throw new InvalidArgumentError(FIELD, NOT_ISSUED);
    if (s !== scopeDigest(scope)) throw new InvalidArgumentError(FIELD, "belongs to another listing or filter; start again without it");
    return c;
  }
}
