/**
 * Typed errors of the council. Only the transport maps them to gRPC status codes; anything that
 * is not one of these is an internal error whose details never reach the client.
 */
export class CouncilError extends Error {
  override name = "CouncilError";
}

/** A request field is missing, malformed or too large; `field` names it (e.g. `suggestion.title`). */
export class InvalidArgumentError extends CouncilError {
  override name = "InvalidArgumentError";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

export class NotFoundError extends CouncilError {
  override name = "NotFoundError";
}

/** The request contradicts stored state, e.g. a request_id reused for a different suggestion. */
export class FailedPreconditionError extends CouncilError {
  override name = "FailedPreconditionError";
}

/** The store cannot be reached or did not answer in time; the caller may retry. */
export class UnavailableError extends CouncilError {
  override name = "UnavailableError";
}

/** A consumer fell too far behind (a slow watcher), or a bounded resource ran out. */
export class ResourceExhaustedError extends CouncilError {
  override name = "ResourceExhaustedError";
}

/** The fixed message of every authentication failure: it never says which part was wrong. */
export const UNAUTHENTICATED_MESSAGE = "missing or invalid credentials";

/**
 * The caller sent no credentials, or credentials that name no principal. The message is always
 * the same, whatever the reason, so that a caller cannot probe which part was wrong; the reason
 * goes to the debug log.
 */
export class UnauthenticatedError extends CouncilError {
  override name = "UnauthenticatedError";
  constructor() {
    super(UNAUTHENTICATED_MESSAGE);
  }
}

/** A known principal lacks the role a call needs; the message names the role(s) that would do. */
export class PermissionDeniedError extends CouncilError {
  override name = "PermissionDeniedError";
}

/**
 * Something went wrong that no retry will fix and that the client cannot act on: a stored
 * document this version cannot read, a reply of the wrong type, a script that failed. The message
 * is for the server log only; the client reads a fixed one.
 */
export class InternalError extends CouncilError {
  override name = "InternalError";
}

/**
 * Stored data is damaged or gone: a document that is not valid JSON, an index or request id that
 * names a decision that no longer exists. The message is for the server log only; the client
 * reads a fixed one.
 */
export class DataLossError extends CouncilError {
  override name = "DataLossError";
}
