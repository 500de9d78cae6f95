/** Entry point: read the config, open the store, serve, and shut down cleanly on SIGINT/SIGTERM. */
import { Council } from "./app/council.js";
import { ConfigError, loadConfig, resolvePolicy } from "./config.js";
import { createLogger } from "./log.js";
import { CouncilServer } from "./server/server.js";
import { openStore } from "./store/open.js";

async function main(): Promise<void> {
  let config;
  let policy;
  try {
    config = loadConfig(process.argv.slice(2), process.env);
    policy = resolvePolicy(config.policy);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`council: ${err.message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel);
  process.on("unhandledRejection", (err) => {
    log.fatal({ err }, "unhandled rejection");
    process.exit(1);
  });

  const store = await openStore(config, log);
  const council = new Council(store, policy);
  const server = await CouncilServer.start({
    council,
    store,
    log,
    addr: config.addr,
    metricsAddr: config.metricsAddr,
    maxWatchers: config.maxWatchers,
    watchBufferBytes: config.watchBufferBytes,
  });
  const host = config.addr.slice(0, config.addr.lastIndexOf(":"));
  const metrics = server.metricsPort === undefined ? undefined : `${config.metricsAddr!.slice(0, config.metricsAddr!.lastIndexOf(":"))}:${server.metricsPort}`;
  log.info(
    { addr: `${host}:${server.port}`, store: store.description, policyVersion: policy.version, metrics },
    `council listening on ${host}:${server.port}, store ${store.description}, policy ${policy.version}`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    await server.shutdown(config.shutdownGraceMs);
    await store.close();
    log.info("stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((err) => {
  process.stderr.write(`council: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
