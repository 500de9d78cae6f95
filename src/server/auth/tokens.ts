/**
 * Bearer tokens: how a new one is made and how the auth file names it (by its hash only, so that
 * a leaked auth file or a configmap dump reveals no credential).
 */
import { createHash, randomBytes } from "node:crypto";

/**
 * The prefix of tokens made here. It lets secret scanners (and people) recognise a Council token
 * in a log or a commit; it is not checked, so a token made any other way works too.
 */
export const TOKEN_PREFIX = "council_";

/** A new token: the prefix, then 32 random bytes in base64url (no dots, so never taken for a JWT). */
export function newToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString("base64url");
}

/** The sha256 of a token's UTF-8 bytes. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The form the auth file holds: `sha256:` then 64 lower-case hex digits. */
export function tokenHash(token: string): string {
  return `sha256:${tokenDigest(token).toString("hex")}`;
}

const HASH = /^sha256:([0-9a-fA-F]{64})$/;

/** The 32 digest bytes of a `sha256:<64 hex>` string, or undefined when it is not one. */
export function parseTokenHash(text: string): Buffer | undefined {
  const m = HASH.exec(text);
  return m ? Buffer.from(m[1]!, "hex") : undefined;
}
