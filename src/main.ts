/** Entry point: read the config, open the store, serve, and shut down cleanly on SIGINT/SIGTERM. */
import { Council } from "./app/council.js";
import { ConfigError, isLoopback, loadConfig, resolvePolicy } from "./config.js";
import { createLogger } from "./log.js";
import { AuthFileError, Authenticator } from "./server/auth/authenticator.js";
import { TlsFiles, TlsFilesError } from "./server/auth/tls.js";
import { CouncilServer } from "./server/server.js";
import { openReviewerHub, openStore } from "./store/open.js";

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

  // TLS files and the auth file are checked before anything connects: a bad one stops start-up
  // (exit 2, naming the problem), like any other bad configuration.
  let tls: TlsFiles | undefined;
  let authenticator: Authenticator;
  try {
    tls =
      config.tlsCert === undefined
        ? undefined
        : await TlsFiles.open({ certFile: config.tlsCert, keyFile: config.tlsKey!, clientCaFile: config.tlsClientCa, log });
    authenticator = await Authenticator.open({ authFile: config.authFile, mtls: tls?.mtls ?? false, log });
  } catch (err) {
    if (!(err instanceof TlsFilesError || err instanceof AuthFileError)) throw err;
    process.stderr.write(`council: ${err.message}\n`);
    process.exit(2);
  }
  const host = config.addr.slice(0, config.addr.lastIndexOf(":"));
  const access = {
    tls: tls === undefined ? "off" : tls.mtls ? "mtls" : "tls",
    auth: authenticator.mode,
    reviewRate: config.reviewRate ?? "unlimited",
  };
  if (authenticator.mode === "anonymous") {
    // On loopback this is the quick start; elsewhere COUNCIL_ALLOW_UNAUTHENTICATED=true asked for it.
    const msg = "no authentication configured: every caller is anonymous, with every role";
    if (isLoopback(host)) log.info(access, msg);
    else log.warn(access, `${msg}, on a non-loopback address (COUNCIL_ALLOW_UNAUTHENTICATED=true)`);
  } else if (!tls && !isLoopback(host)) {
    log.warn(access, "no TLS on a non-loopback address: bearer tokens travel in clear");
  } else {
    log.info(access, `callers authenticated by ${authenticator.mode === "certificate" ? "client certificate" : "the auth file"}`);
  }

  const store = await openStore(config, log, policy);
  const reviewerHub = await openReviewerHub(config, log, store, policy);
  const council = new Council(store, policy, { reviewerHub });
  const server = await CouncilServer.start({
    council,
    store,
    log,
    addr: config.addr,
    metricsAddr: config.metricsAddr,
    maxWatchers: config.maxWatchers,
    watchBufferBytes: config.watchBufferBytes,
    maxConnections: config.maxConnections,
    callMemoryBytes: config.callMemoryBytes,
    requestReceiveTimeoutMs: config.requestReceiveTimeoutMs,
    streamWriteTimeoutMs: config.streamWriteTimeoutMs,
    tls,
    authenticator,
    reviewRate: config.reviewRate,
  });
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
