/**
 * Certificates made by the tests with the real `openssl` (never checked-in private keys): a CA,
 * and certificates it signs with the subject and subject alternative names a test needs.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "../support/tools.js";

export interface Pem {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const r = await run("openssl", args, { cwd: dir, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

async function pem(dir: string, name: string): Promise<Pem> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { cert: await readFile(certFile, "utf8"), key: await readFile(keyFile, "utf8"), certFile, keyFile };
}

/** A self-signed CA (P-256), valid for a day. */
export async function makeCa(dir: string, name = "ca"): Promise<Pem> {
  await openssl(dir, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.crt`, "-subj", `/CN=${name} test CA`, "-days", "1",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  return pem(dir, name);
}

export interface CertOptions {
  /** The subject, as openssl writes it: `/CN=ci-bot`, `/O=x/CN=a/CN=b`, or `/O=only` (no CN). */
  subject: string;
  /** subjectAltName entries, each a line of an openssl config (`URI.1 = spiffe://…`, `DNS.1 = …`). */
  altNames?: string[];
  /** serverAuth (default) or clientAuth. */
  usage?: "serverAuth" | "clientAuth";
}

/** A certificate signed by `ca`, valid for a day. */
export async function makeCert(dir: string, name: string, ca: Pem, options: CertOptions): Promise<Pem> {
  const ext = [
    "[ext]",
    "basicConstraints = CA:FALSE",
    `extendedKeyUsage = ${options.usage ?? "serverAuth"}`,
    ...(options.altNames?.length ? ["subjectAltName = @names", "[names]", ...options.altNames] : []),
  ];
  await writeFile(join(dir, `${name}.cnf`), `${ext.join("\n")}\n`);
  await openssl(dir, [
    "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", options.subject, "-multivalue-rdn",
  ]);
  await openssl(dir, [
    "x509", "-req", "-in", `${name}.csr`, "-CA", ca.certFile, "-CAkey", ca.keyFile, "-CAcreateserial",
    "-out", `${name}.crt`, "-days", "1", "-extfile", `${name}.cnf`, "-extensions", "ext",
  ]);
  return pem(dir, name);
}
