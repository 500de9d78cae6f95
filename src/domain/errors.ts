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
