/**
 * Makes a bearer token for a principal and prints it with the hash the auth file holds:
 *
 *   node dist/tools/make_token.js          (after `npm run build`; or `npx tsx src/tools/make_token.ts`)
 *   token: council_…                       give this to the caller, once, over a safe channel
 *   hash:  sha256:…                        put this under the principal's `tokens`
 *
 * With `--hash`, it reads an existing token from stdin instead and prints only its hash.
 */
import { pathToFileURL } from "node:url";
import { newToken, tokenHash } from "../server/auth/tokens.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8").trim();
}

export async function main(args: string[]): Promise<number> {
  if (args.length === 0) {
    const token = newToken();
    process.stdout.write(`token: ${token}\nhash:  ${tokenHash(token)}\n`);
    return 0;
  }
  if (args.length === 1 && args[0] === "--hash") {
    const token = await readStdin();
    if (token === "") {
      process.stderr.write("make_token --hash: no token on stdin\n");
      return 2;
    }
    process.stdout.write(`${tokenHash(token)}\n`);
    return 0;
  }
  process.stderr.write("usage: make_token [--hash]   (--hash: print the hash of a token read from stdin)\n");
  return 2;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`make_token: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
