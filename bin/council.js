#!/usr/bin/env node
// The `council` command (cli/). It runs the compiled CLI, which `npm ci` builds (the `prepare`
// script) and `npm run build` rebuilds; this file stays plain JavaScript so that it works before
// anything is compiled and can say what to do.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const compiled = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(compiled)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  process.stderr.write(`council is not built: run \`npm ci\` (or \`npm run build\`) in ${root}\n`);
  process.exit(1);
}
// grpc-js sets the TLS server name to the address's host, which Node deprecates for an IP address
// (DEP0123) with a warning on stderr; a command's stderr is for its own one-line errors.
process.noDeprecation = true;
const { run } = await import(compiled.href);
await run();
