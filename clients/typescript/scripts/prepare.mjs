/**
 * The `prepare` script of @council/client: makes this directory a working package with nothing
 * installed beforehand (no `npm ci` at the repository's root, no global TypeScript). npm runs it:
 *
 * - when a project installs this directory, `npm install <checkout>/clients/typescript`. npm then
 *   only symlinks the directory and installs none of its dependencies, and Node resolves the
 *   client's imports from the directory's real path, never from the project's node_modules: the
 *   dependencies must be in this directory's own node_modules, or the import fails (or, worse,
 *   picks up whatever the checkout's root happens to have);
 * - before `npm pack` (and publish), whose tarball must carry the compiled dist/;
 * - after `npm install` or `npm ci` run in this directory.
 *
 * So it installs this package's locked dependencies (package-lock.json; dev ones included, since
 * the build needs typescript) into ./node_modules unless they are already there, then compiles
 * src/ to dist/ with that typescript. A packed copy (a tarball ships dist/ and no lockfile) has
 * nothing to do. Plain JavaScript, Node's own modules only: nothing else exists yet when it runs.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = dirname(dirname(fileURLToPath(import.meta.url)));
const lockFile = join(dir, "package-lock.json");

if (!existsSync(lockFile) && existsSync(join(dir, "dist", "index.js"))) process.exit(0);

/** Runs a command in this directory, failing the script (and the install) if it fails. */
function run(command, args, env = process.env) {
  const result = spawnSync(command, args, { cwd: dir, stdio: "inherit", env, shell: process.platform === "win32" && !command.endsWith(".js") });
  if (result.error) throw result.error;
  if (result.status !== 0) {
    console.error(`@council/client prepare: ${basename(command)} ${args.join(" ")} failed (exit ${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

/** Whether every direct dependency (dev ones too) is installed here at its locked version. */
function installed() {
  const lock = JSON.parse(readFileSync(lockFile, "utf8"));
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  return names.every((name) => {
    const locked = lock.packages?.[`node_modules/${name}`]?.version;
    const manifest = join(dir, "node_modules", name, "package.json");
    return locked !== undefined && existsSync(manifest) && JSON.parse(readFileSync(manifest, "utf8")).version === locked;
  });
}

if (!installed()) {
  // The npm that runs this script, so that a project's npm version and settings (registry, cache,
  // proxy) apply; its other settings are the outer install's, which are not meant for this one
  // (--omit=dev, --global, --install-links, a workspace): drop them and say what this one needs.
  const npmCli = process.env.npm_execpath && /npm-cli\.c?js$/.test(process.env.npm_execpath) ? process.env.npm_execpath : undefined;
  const keep = /^npm_config_(registry|cache|userconfig|globalconfig|proxy|https_proxy|noproxy|strict_ssl|cafile|ca|prefer_offline|offline|fetch_.*|@.*:registry|\/\/.*)$/i;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_/i.test(k) || keep.test(k)));
  const args = ["ci", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"];
  if (npmCli) run(process.execPath, [npmCli, ...args], env);
  else run("npm", args, env);
}

run(process.execPath, [join(dir, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"]);
