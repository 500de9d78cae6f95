/**
 * TLS on the gRPC port (SPEC §8): the server's certificate and key (`COUNCIL_TLS_CERT`,
 * `COUNCIL_TLS_KEY`) and, for mTLS, the CA that client certificates must chain to
 * (`COUNCIL_TLS_CLIENT_CA`), read from PEM files and re-read when they change.
 *
 * grpc-js (1.14) takes certificates that change through its experimental CertificateProvider
 * interface: each update becomes `setSecureContext` on its HTTP/2 server, so new connections get
 * the new certificate while open connections (and the streams on them) keep the session they
 * negotiated. Its own FileWatcherCertificateProvider is not used, because it hands on whatever it
 * reads: a file that is missing for a moment (a rotation that deletes, then writes) or garbage
 * turns the credentials to `null`, and grpc-js then drops EVERY new connection until the next
 * good read; a certificate written before its key is a mismatch that fails the same way. This
 * provider checks each new set of files first (the certificate parses, the key is the
 * certificate's, the CA parses, node builds a TLS context from them) and only then hands it on; a
 * set that fails is logged and the last good one stays in force.
 *
 * Changes are noticed like the auth file's (src/server/auth/authenticator.ts): `fs.watch` on the
 * files' directories reacts at once, and a periodic stat catches what watching misses (a
 * Kubernetes secret swaps a `..data` symlink, which some platforms do not report).
 */
import { X509Certificate, createPrivateKey, createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { createSecureContext } from "node:tls";
import { experimental, type ServerCredentials } from "@grpc/grpc-js";
import type { Logger } from "../../log.js";
import { FileWatch } from "./file_watch.js";

type CertificateProvider = experimental.CertificateProvider;
type CaCertificateUpdate = experimental.CaCertificateUpdate;
type CaCertificateUpdateListener = experimental.CaCertificateUpdateListener;
type IdentityCertificateUpdate = experimental.IdentityCertificateUpdate;
type IdentityCertificateUpdateListener = experimental.IdentityCertificateUpdateListener;

/** A TLS file is unreadable or invalid at start-up; the message names the file and the problem. */
export class TlsFilesError extends Error {
  override name = "TlsFilesError";
}

export interface TlsFilesOptions {
  /** PEM: the server's certificate (chain), `COUNCIL_TLS_CERT`. */
  certFile: string;
  /** PEM: its private key, `COUNCIL_TLS_KEY`. */
  keyFile: string;
  /** PEM: the CA (bundle) client certificates must chain to, `COUNCIL_TLS_CLIENT_CA`; set: mTLS. */
  clientCaFile?: string;
  log: Logger;
  /** How often the files are stat'ed for changes that watching missed (default 2 s). */
  pollIntervalMs?: number;
  /** Watch the files' directories (default true). */
  watch?: boolean;
}

/** The files' absolute paths. */
interface Files {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

function pathsOf(files: Files): string[] {
  return [files.certFile, files.keyFile, ...(files.clientCaFile === undefined ? [] : [files.clientCaFile])];
}

/** One checked set of files. */
interface Loaded {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  /** sha256 of the bytes of every file: equal digests mean nothing changed. */
  digest: string;
  /** The leaf certificate's sha256 fingerprint, subject and validity, for the log. */
  fingerprint: string;
  subject: string;
  validTo: string;
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new TlsFilesError(`${what} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Every certificate of a PEM bundle; throws naming the file when there is none or one is broken. */
function certificatesOf(pem: Buffer, path: string, what: string): X509Certificate[] {
  const blocks = pem.toString("utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new TlsFilesError(`${what} ${path} holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new TlsFilesError(`${what} ${path}: certificate ${i + 1} cannot be parsed: ${(err as Error).message}`);
    }
  });
}

/** Reads the files and checks that they make a working TLS server; throws TlsFilesError naming the problem. */
async function load(files: Files): Promise<Loaded> {
  const [cert, key, ca] = await Promise.all([
    readPem(files.certFile, "COUNCIL_TLS_CERT"),
    readPem(files.keyFile, "COUNCIL_TLS_KEY"),
    files.clientCaFile === undefined ? undefined : readPem(files.clientCaFile, "COUNCIL_TLS_CLIENT_CA"),
  ]);
  const leaf = certificatesOf(cert, files.certFile, "COUNCIL_TLS_CERT")[0]!;
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new TlsFilesError(`COUNCIL_TLS_KEY ${files.keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsFilesError(
      `COUNCIL_TLS_KEY ${files.keyFile} is not the key of the certificate in COUNCIL_TLS_CERT ${files.certFile}` +
        " (if they are being replaced, the other file will follow)",
    );
  }
  if (ca) {
    for (const c of certificatesOf(ca, files.clientCaFile!, "COUNCIL_TLS_CLIENT_CA")) {
      if (!c.ca) throw new TlsFilesError(`COUNCIL_TLS_CLIENT_CA ${files.clientCaFile}: ${c.subject.replace(/\n/g, ", ")} is not a CA certificate`);
    }
  }
  try {
    // What grpc-js will do with them: a context node refuses here would fail every handshake.
    createSecureContext({ cert, key, ...(ca ? { ca } : {}) });
  } catch (err) {
    throw new TlsFilesError(`COUNCIL_TLS_CERT/KEY${ca ? "/CLIENT_CA" : ""}: node cannot use them: ${(err as Error).message}`);
  }
  const digest = createHash("sha256").update(cert).update("\u0000").update(key).update("\u0000").update(ca ?? "").digest("hex");
  return { cert, key, ca, digest, fingerprint: leaf.fingerprint256, subject: leaf.subject.replace(/\n/g, ", "), validTo: leaf.validTo };
}

/**
 * The TLS files of the gRPC port, checked and kept current: a grpc-js CertificateProvider for the
 * server's identity and, under mTLS, for the client CA.
 */
export class TlsFiles implements CertificateProvider {
  private readonly identityListeners = new Set<IdentityCertificateUpdateListener>();
  private readonly caListeners = new Set<CaCertificateUpdateListener>();
  private readonly fileWatch: FileWatch;
  private current!: Loaded;

  private constructor(
    private readonly files: Files,
    private readonly log: Logger,
    options: Pick<TlsFilesOptions, "pollIntervalMs" | "watch">,
  ) {
    this.fileWatch = new FileWatch({
      paths: () => pathsOf(files),
      reload: () => this.reload(),
      log,
      what: "TLS files",
      pollIntervalMs: options.pollIntervalMs,
      watch: options.watch,
    });
  }

  /** Reads and checks the files, and starts watching them. Throws TlsFilesError naming the problem. */
  static async open(options: TlsFilesOptions): Promise<TlsFiles> {
    const files: Files = {
      certFile: resolve(options.certFile),
      keyFile: resolve(options.keyFile),
      ...(options.clientCaFile === undefined ? {} : { clientCaFile: resolve(options.clientCaFile) }),
    };
    const t = new TlsFiles(files, options.log, options);
    t.current = await t.fileWatch.read(() => load(files));
    t.logLoaded("TLS certificate loaded");
    t.fileWatch.start();
    return t;
  }

  /** True when client certificates are required and verified against COUNCIL_TLS_CLIENT_CA. */
  get mtls(): boolean {
    return this.files.clientCaFile !== undefined;
  }

  /** The sha256 fingerprint (colon-separated hex, as node writes it) of the certificate being served. */
  get fingerprint(): string {
    return this.current.fingerprint;
  }

  /** How many times the files have been checked for a change. */
  get checks(): number {
    return this.fileWatch.checks;
  }

  /**
   * grpc-js server credentials that follow these files. Under mTLS a client certificate is
   * requested and required (`rejectUnauthorized`), and verified against the client CA alone: node
   * uses the context's `ca` in place of its built-in roots, so a certificate from any other CA,
   * public or not, fails the handshake.
   */
  credentials(): ServerCredentials {
    return experimental.createCertificateProviderServerCredentials(
      // grpc-js 1.14 declares these two parameters as (ca, identity) but passes them on as
      // (identity, ca): the first is the identity provider. test/auth/grpc_tls.test.ts fails if
      // that changes (no handshake would succeed).
      this,
      this.mtls ? this : null,
      this.mtls,
    ) as unknown as ServerCredentials;
  }

  addIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.add(listener);
    const update: IdentityCertificateUpdate = { certificate: this.current.cert, privateKey: this.current.key };
    process.nextTick(listener, update);
  }

  removeIdentityCertificateListener(listener: IdentityCertificateUpdateListener): void {
    this.identityListeners.delete(listener);
  }

  addCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    if (this.current.ca) {
      const update: CaCertificateUpdate = { caCertificate: this.current.ca };
      process.nextTick(listener, update);
    }
  }

  removeCaCertificateListener(listener: CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  /**
   * Re-reads the files now; resolves true when the files on disk are in force afterwards, false
   * when they were refused (logged; the last good ones stay). Reloads run one at a time.
   */
  reload(): Promise<boolean> {
    return this.fileWatch.read(() => this.reloadNow());
  }

  private async reloadNow(): Promise<boolean> {
    let loaded: Loaded;
    try {
      loaded = await load(this.files);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, "new TLS files refused; the last good ones stay in force");
      return false;
    }
    if (loaded.digest === this.current.digest) return true;
    this.current = loaded;
    for (const listener of this.identityListeners) listener({ certificate: loaded.cert, privateKey: loaded.key });
    if (loaded.ca) for (const listener of this.caListeners) listener({ caCertificate: loaded.ca });
    this.logLoaded("TLS certificate reloaded: new connections get it, open ones keep theirs");
    return true;
  }

  /** Stops watching the files; the certificate in force stays. */
  close(): void {
    this.fileWatch.close();
  }

  private logLoaded(msg: string): void {
    const { fingerprint, subject, validTo } = this.current;
    const expired = Date.parse(validTo) < Date.now();
    const line = { certFile: this.files.certFile, subject, fingerprint, validTo, mtls: this.mtls };
    if (expired) this.log.warn(line, `${msg}; it has EXPIRED: clients will refuse it`);
    else this.log.info(line, msg);
  }
}
