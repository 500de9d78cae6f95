/**
 * Opaque page tokens (AIP-158). A token wraps a store cursor together with the listing it belongs
 * to and the filter it was issued for, behind a checksum, so that a token the server did not issue,
 * or one reused with another filter, is refused as INVALID_ARGUMENT.
 */
import { createHash } from "node:crypto";
import { InvalidArgumentError } from "../domain/errors.js";
import { LIMITS } from "../domain/limits.js";
import { checkString } from "../domain/validate.js";

const FIELD = "page_token";

function checksum(body: string): string {
  return createHash("sha256").update(`council-page-token:${body}`).digest("base64url").slice(0, 16);
}

/** Wraps `cursor` for the listing `scope` (e.g. "decisions" plus its filter). */
export function issuePageToken(scope: string, cursor: string | undefined): string {
  if (cursor === undefined) return "";
  const body = Buffer.from(JSON.stringify({ v: 1, s: scope, c: cursor })).toString("base64url");
  return `${body}.${checksum(body)}`;
}

/** The cursor inside a token issued for `scope`; undefined for the empty token. */
export function readPageToken(scope: string, token: string): string | undefined {
  if (token === "") return undefined;
  checkString(FIELD, token, LIMITS.pageTokenBytes);
  const [body, sum, extra] = token.split(".");
  if (!body || !sum || extra !== undefined || checksum(body) !== sum) {
    throw new InvalidArgumentError(FIELD, "was not issued by this service");
  }
  let parsed: { v?: unknown; s?: unknown; c?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    throw new InvalidArgumentError(FIELD, "was not issued by this service");
  }
  if (parsed.v !== 1 || typeof parsed.c !== "string") throw new InvalidArgumentError(FIELD, "was not issued by this service");
  if (parsed.s !== scope) throw new InvalidArgumentError(FIELD, "belongs to another listing or filter; start again without it");
  return parsed.c;
}
