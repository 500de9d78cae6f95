/**
 * Principals for tests that need several callers: an auth file (COUNCIL_AUTH_FILE) in a temp dir
 * naming each with its roles and the hash of a fresh token, and the tokens to call as each.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Role } from "../../src/domain/principal.js";
import { newToken, tokenHash } from "../../src/server/auth/tokens.js";

export interface Principals {
  /** The auth file's path, for `startCouncil({ authFile })`. */
  authFile: string;
  /** Each principal's bearer token, by name. */
  tokens: Record<string, string>;
  remove(): Promise<void>;
}

/** Writes an auth file with one token per principal, e.g. `{ "agent-a": ["agent"], ops: ["operator"] }`. */
export async function writePrincipals(roles: Record<string, Role[]>): Promise<Principals> {
  const dir = await mkdtemp(join(tmpdir(), "council-principals-"));
  const tokens = Object.fromEntries(Object.keys(roles).map((name) => [name, newToken()]));
  const principals = Object.entries(roles).map(([name, r]) => ({ name, roles: r, tokens: [tokenHash(tokens[name]!)] }));
  const authFile = join(dir, "auth.yaml");
  await writeFile(authFile, stringify({ principals }));
  return { authFile, tokens, remove: () => rm(dir, { recursive: true, force: true }) };
}
