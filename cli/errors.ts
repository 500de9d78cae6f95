/**
 * How a failed command ends: one line on stderr that names the problem, and an exit code (1: the
 * call failed or was refused; 2: the command line was wrong). Never a stack trace: set
 * COUNCIL_DEBUG=1 to see one.
 */
import { status } from "@grpc/grpc-js";
import { CouncilError } from "../clients/typescript/src/errors.js";

/** Exit codes (SPEC section 10). */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  rejected: 3,
  pending: 4,
  expired: 5,
  /** Stopped by Ctrl-C (128 + SIGINT), as shells expect. */
  interrupted: 130,
} as const;

/** The command line was wrong: a bad flag, a missing argument, an unreadable suggestion. Exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
  constructor(
    message: string,
    /** The usage of the command it concerns, printed after the message. */
    readonly usage?: string,
  ) {
    super(message);
  }
}

/** A failure that is not the server's answer, with a message ready for people (exit 1). */
export class CliError extends Error {
  override name = "CliError";
}

/** grpc-js's "Last error" of a failed connection, without OpenSSL's codes and source paths. */
function lastError(details: string): string {
  const m = /Last error: ([\s\S]*?)(?:\s*\(\d{4}-\d\d-\d\dT[^)]*\))?\.?\s*(?:Resolution note:[\s\S]*)?$/.exec(details);
  return (m?.[1] ?? details)
    .replace(/^Error(?: \[[A-Z_]+\])?: /, "")
    .replace(/^[0-9A-F]+:error:[0-9A-F]+:SSL routines:[^:]*:/, "")
    .replace(/:\.\.?\/[^\s]*\.c:\d+:.*$/s, "")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * Why a connection failed, from grpc-js's details ("No connection established. Last error: Error:
 * connect ECONNREFUSED 127.0.0.1:50051 …"), in a few words; undefined when the details are the
 * server's own (an UNAVAILABLE store, a shutdown).
 */
function connectionProblem(details: string): string | undefined {
  const d = details;
  if (/ECONNREFUSED/.test(d)) return "connection refused";
  if (/ENOTFOUND|EAI_AGAIN|getaddrinfo|Name resolution failed|DNS resolution failed/i.test(d)) return "unknown host";
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(d)) return "no route to the host";
  if (/ECONNRESET/.test(d)) return "connection reset (a TLS server? then --tls or --ca)";
  if (/wrong version number|packet length too long|unknown protocol/i.test(d)) return "TLS handshake failed: the server does not speak TLS (drop --tls?)";
  if (/certificate required/i.test(d)) return "TLS handshake failed: the server requires a client certificate (--cert and --key)";
  if (/certificate|self[- ]signed|altnames|SSL|TLS|handshake/i.test(d)) {
    return `TLS handshake failed: ${lastError(d)} (check --ca, --cert, --key, --server-name)`;
  }
  if (/Connection dropped|Protocol error|Received HTTP status code|Bad Request|RST_STREAM/i.test(d)) {
    return "the connection dropped (TLS on one side only? check --tls)";
  }
  if (/Failed to connect/i.test(d)) return "failed to connect (a TLS server? then --tls or --ca)";
  if (/No connection established|connection closed/i.test(d)) return `no connection: ${lastError(d)}`;
  return undefined;
}

/** The one line that tells what went wrong, and the exit code. */
export function describeFailure(err: unknown, addr: string): { message: string; code: number } {
  if (err instanceof UsageError) return { message: err.message, code: EXIT.usage };
  if (err instanceof CliError) return { message: err.message, code: EXIT.error };
  if (err instanceof CouncilError || (typeof (err as { code?: unknown })?.code === "number" && "details" in (err as object))) {
    const e = CouncilError.from(err);
    if (e.code === status.UNAVAILABLE) {
      const problem = connectionProblem(e.details);
      if (problem) return { message: `cannot reach ${addr}: ${problem}`, code: EXIT.error };
    }
    if (e.code === status.DEADLINE_EXCEEDED) {
      return { message: `DEADLINE_EXCEEDED: no answer from ${addr} in time (see --timeout)`, code: EXIT.error };
    }
    const details = e.details.split("\n")[0] || "(no details)";
    return { message: `${status[e.code] ?? e.code}: ${details}`, code: EXIT.error };
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code && e.path) {
    const why = e.code === "ENOENT" ? "no such file" : e.code === "EACCES" ? "permission denied" : e.code;
    return { message: `cannot read ${e.path}: ${why}`, code: EXIT.error };
  }
  return { message: `internal error: ${err instanceof Error ? err.message : String(err)}`, code: EXIT.error };
}
