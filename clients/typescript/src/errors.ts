/**
 * Every failed call rejects with a CouncilError, which keeps the gRPC status. Each status family
 * the service uses has its own subclass, so that a caller can branch with `instanceof` instead of
 * comparing codes: `err instanceof PermissionDeniedError`. Codes without a subclass (UNKNOWN,
 * UNIMPLEMENTED, …) are plain CouncilErrors; `err.code` always holds the code.
 */
import { Metadata, status, type ServiceError } from "@grpc/grpc-js";

/** A failed call, with its gRPC status kept: `code` (e.g. status.INVALID_ARGUMENT) and `details`. */
export class CouncilError extends Error {
  override name = "CouncilError";
  readonly code: status;
  readonly details: string;
  readonly metadata: Metadata;

  constructor(code: status, details: string, metadata: Metadata = new Metadata()) {
    super(`${status[code] ?? code}: ${details}`);
    this.code = code;
    this.details = details;
    this.metadata = metadata;
  }

  /**
   * The CouncilError for anything a call failed with: a CouncilError as is, a grpc-js ServiceError
   * as the subclass of its code, anything else as UNKNOWN.
   */
  static from(err: unknown): CouncilError {
    if (err instanceof CouncilError) return err;
    const e = err as Partial<ServiceError> | undefined;
    if (typeof e?.code === "number") return councilError(e.code, e.details ?? e.message ?? "", e.metadata);
    return new CouncilError(status.UNKNOWN, err instanceof Error ? err.message : String(err));
  }

  /**
   * Whether retrying the same call (with the same request_id) may succeed. Only UNAVAILABLE is:
   * RESOURCE_EXHAUSTED (a rate limit, a watcher that fell behind) is not retried, because retrying
   * at once only hits the limit again.
   */
  get retryable(): boolean {
    return this.code === status.UNAVAILABLE;
  }
}

/** INVALID_ARGUMENT: the request was malformed. `field` names the field at fault, when the server said. */
export class InvalidArgumentError extends CouncilError {
  override name = "InvalidArgumentError";
  /** The field path the details start with (`suggestion.title` in `suggestion.title: must not be empty`), if any. */
  readonly field: string | undefined;

  constructor(details: string, metadata?: Metadata) {
    super(status.INVALID_ARGUMENT, details, metadata);
    this.field = /^([A-Za-z_][\w.[\]]*): /.exec(details)?.[1];
  }
}

/** NOT_FOUND: no decision with that id. */
export class NotFoundError extends CouncilError {
  override name = "NotFoundError";
  constructor(details: string, metadata?: Metadata) {
    super(status.NOT_FOUND, details, metadata);
  }
}

/**
 * FAILED_PRECONDITION: the request conflicts with what is stored, e.g. a request_id reused for
 * another suggestion, or for another outcome of the same decision.
 */
export class FailedPreconditionError extends CouncilError {
  override name = "FailedPreconditionError";
  constructor(details: string, metadata?: Metadata) {
    super(status.FAILED_PRECONDITION, details, metadata);
  }
}

/** UNAUTHENTICATED: no credentials, or credentials the server does not accept (missing, wrong or revoked token). */
export class UnauthenticatedError extends CouncilError {
  override name = "UnauthenticatedError";
  constructor(details: string, metadata?: Metadata) {
    super(status.UNAUTHENTICATED, details, metadata);
  }
}

/** PERMISSION_DENIED: the caller is known but lacks the role the call needs (the details name it). */
export class PermissionDeniedError extends CouncilError {
  override name = "PermissionDeniedError";
  constructor(details: string, metadata?: Metadata) {
    super(status.PERMISSION_DENIED, details, metadata);
  }
}

/**
 * RESOURCE_EXHAUSTED: a limit was reached, e.g. the caller's review rate, or a watcher that fell
 * too far behind. Never retried automatically; wait before trying again.
 */
export class ResourceExhaustedError extends CouncilError {
  override name = "ResourceExhaustedError";
  constructor(details: string, metadata?: Metadata) {
    super(status.RESOURCE_EXHAUSTED, details, metadata);
  }
}

/** UNAVAILABLE: the server or its store could not be reached (raised once the retries are spent). */
export class UnavailableError extends CouncilError {
  override name = "UnavailableError";
  constructor(details: string, metadata?: Metadata) {
    super(status.UNAVAILABLE, details, metadata);
  }
}

/** DEADLINE_EXCEEDED: the call's deadline passed before it finished. */
export class DeadlineExceededError extends CouncilError {
  override name = "DeadlineExceededError";
  constructor(details: string, metadata?: Metadata) {
    super(status.DEADLINE_EXCEEDED, details, metadata);
  }
}

/** CANCELLED: the call was cancelled. */
export class CancelledError extends CouncilError {
  override name = "CancelledError";
  constructor(details: string, metadata?: Metadata) {
    super(status.CANCELLED, details, metadata);
  }
}

/** INTERNAL: the server failed (it sends no details), or a stream broke the protocol. */
export class InternalError extends CouncilError {
  override name = "InternalError";
  constructor(details: string, metadata?: Metadata) {
    super(status.INTERNAL, details, metadata);
  }
}

/** DATA_LOSS: the server found stored data damaged or missing. */
export class DataLossError extends CouncilError {
  override name = "DataLossError";
  constructor(details: string, metadata?: Metadata) {
    super(status.DATA_LOSS, details, metadata);
  }
}

const BY_CODE: ReadonlyMap<status, new (details: string, metadata?: Metadata) => CouncilError> = new Map<
  status,
  new (details: string, metadata?: Metadata) => CouncilError
>([
  [status.INVALID_ARGUMENT, InvalidArgumentError],
  [status.NOT_FOUND, NotFoundError],
  [status.FAILED_PRECONDITION, FailedPreconditionError],
  [status.UNAUTHENTICATED, UnauthenticatedError],
  [status.PERMISSION_DENIED, PermissionDeniedError],
  [status.RESOURCE_EXHAUSTED, ResourceExhaustedError],
  [status.UNAVAILABLE, UnavailableError],
  [status.DEADLINE_EXCEEDED, DeadlineExceededError],
  [status.CANCELLED, CancelledError],
  [status.INTERNAL, InternalError],
  [status.DATA_LOSS, DataLossError],
]);

/** The CouncilError subclass for `code` (a plain CouncilError for codes without one). */
export function councilError(code: status, details: string, metadata: Metadata = new Metadata()): CouncilError {
  const Family = BY_CODE.get(code);
  return Family ? new Family(details, metadata) : new CouncilError(code, details, metadata);
}
