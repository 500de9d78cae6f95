/**
 * Classifies what a Redis call threw, once, where it enters Council: into the typed errors of
 * src/domain/errors.ts, each with a fixed message for the client. Redis's own text (a reply such as
 * `OOM command not allowed … script: 09538afc…`, a key name, a script's line) only ever reaches the
 * log, as the `cause` and in the message of an internal error, which the transport never sends.
 *
 * - UNAVAILABLE (retry later, with the same request_id): the connection is gone or did not answer
 *   in time; Redis is loading, failing over or read-only (a replica that was just demoted), its
 *   cluster is redirecting or down, a script is running too long (BUSY), or it is out of memory
 *   (OOM: with `maxmemory-policy noeviction` Redis refuses writes until it has room. That is the
 *   store's state, not something wrong with the request, it passes when an operator adds memory,
 *   and a retry with the same request_id is safe, so it is UNAVAILABLE like a failover rather
 *   than RESOURCE_EXHAUSTED, which Council keeps for limits a caller itself ran into).
 * - DATA_LOSS: stored data is damaged (a document that is not JSON) or gone (an index entry or a
 *   request id that names a decision that no longer exists).
 * - INTERNAL: everything else that no retry fixes: a reply of the wrong type (WRONGTYPE), a script
 *   that fails, a document of a version this code cannot read, an ACL or password refused.
 */
import { DataLossError, InternalError, UnavailableError, CouncilError } from "../domain/errors.js";

/** A store call that took longer than its budget (raised by the store's own timer). */
/** `work`, or a StoreTimeoutError once `ms` have passed without it (`work` may still settle later; nobody waits). */
export function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(`timed out after ${ms} ms`)), ms);
  });
  work.catch(() => undefined); // it may settle after the timeout; nobody is waiting any more
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export class StoreTimeoutError extends Error {
  override name = "StoreTimeoutError";
}

/** The fixed messages a client reads for each kind of UNAVAILABLE. */
export const UNAVAILABLE = {
  timeout: "the store did not answer in time; retry later",
  disconnected: "the store is not reachable; retry later",
  failover: "the store is failing over or starting up; retry later",
  busy: "the store is busy; retry later",
  full: "the store is out of memory and refuses writes; retry later",
  replicas: "the store could not confirm the write on enough replicas in time; retry with the same request_id",
  closed: "the store is closed",
} as const;

/** Reply error codes that mean "not now": Redis is in a state that passes on its own or by an operator's hand. */
const TRANSIENT_REPLIES: Record<string, string> = {
  LOADING: UNAVAILABLE.failover,
  MASTERDOWN: UNAVAILABLE.failover,
  READONLY: UNAVAILABLE.failover,
  CLUSTERDOWN: UNAVAILABLE.failover,
  TRYAGAIN: UNAVAILABLE.failover,
  MOVED: UNAVAILABLE.failover,
  ASK: UNAVAILABLE.failover,
  UNBLOCKED: UNAVAILABLE.failover,
  NOREPLICAS: UNAVAILABLE.failover,
  BUSY: UNAVAILABLE.busy,
  OOM: UNAVAILABLE.full,
};

/** ioredis's own errors for a connection that is gone, closing, or not ready (not Redis replies). */
const CONNECTION_ERRORS = new Set(["AbortError", "InterruptError", "MaxRetriesPerRequestError", "ClusterAllFailedError"]);
const CONNECTION_MESSAGES = new RegExp(
  "^(" +
    [
      "Redis was not ready within", // whenReady (redis_connection.ts)
      "Connection is closed",
      "Connection is (discarded|aborted)",
      "Stream isn't writeable",
      "Cluster isn't ready",
      "Cluster is (disconnected|disconnecting|ended)",
      "None of startup nodes is available",
      "Node is disconnected",
      "No master node is available",
      "Too many Cluster redirections",
      "Failed to refresh slots cache",
      "connect ETIMEDOUT",
      "Socket timeout",
    ].join("|") +
    ")",
);
const SYSTEM_CODES = /^(ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ERR_SSL_|ERR_TLS_)/;

/**
 * The error code of a Redis reply: its first word, or, for a script error wrapped by Redis 6.2
 * (`ERR Error running script (call to f_…): @user_script:12: -OOM command not allowed …`), the
 * code of the reply the script ran into.
 */
export function replyCode(message: string): string {
  const code = /^([A-Z]+)\b/.exec(message)?.[1] ?? "";
  if (code === "ERR") {
    const inner = /: -([A-Z]+) /.exec(message)?.[1];
    if (inner && inner in TRANSIENT_REPLIES) return inner;
  }
  return code;
}

/**
 * The typed error for what a store call threw. `op` names the call, for the log. Errors that are
 * already typed (a rule, a shortfall of replicas) pass through unchanged.
 */
export function classify(op: string, err: unknown): CouncilError {
  if (err instanceof CouncilError) return err;
  if (err instanceof StoreTimeoutError) return unavailable(UNAVAILABLE.timeout, err);
  if (!(err instanceof Error)) return new InternalError(`${op}: ${String(err)}`);
  if (err.name === "ReplyError") {
    const fixed = TRANSIENT_REPLIES[replyCode(err.message)];
    if (fixed) return unavailable(fixed, err);
    return withCause(new InternalError(`${op}: Redis replied ${err.message}`), err);
  }
  if (err.message === "Command timed out") return unavailable(UNAVAILABLE.timeout, err);
  const code = (err as NodeJS.ErrnoException).code;
  if (CONNECTION_ERRORS.has(err.name) || CONNECTION_MESSAGES.test(err.message) || (typeof code === "string" && SYSTEM_CODES.test(code))) {
    return unavailable(UNAVAILABLE.disconnected, err);
  }
  // Not Redis at all: reading what Redis returned failed. Text that is not JSON is damaged data;
  // anything else (an unknown document version, say) is a document this code cannot read.
  if (err instanceof SyntaxError) return withCause(new DataLossError(`${op}: a stored document is not valid JSON: ${err.message}`), err);
  return withCause(new InternalError(`${op}: ${err.message}`), err);
}

function unavailable(message: string, cause: Error): UnavailableError {
  return withCause(new UnavailableError(message), cause);
}

function withCause<E extends Error>(err: E, cause: Error): E {
  Object.defineProperty(err, "cause", { value: cause, enumerable: false, configurable: true, writable: true });
  return err;
}

/** Whether a classified error says that Redis could not be reached (health is worth re-checking). */
export function isUnreachable(err: CouncilError): boolean {
  return err instanceof UnavailableError && (err.message === UNAVAILABLE.timeout || err.message === UNAVAILABLE.disconnected);
}
